"""Real routers for tests: the real privileged daemon with the shipped agent.filters,
bridges and "host"/"internet" namespaces around a router, all removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from isthmus.agent.routers import RouterBuilder
from isthmus.demo import privileged
from isthmus.privileged import Client

REPO = Path(__file__).resolve().parents[3]


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command as the test (root), not through the helper: the lab around the router."""
    return subprocess.run(argv, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module")
def rootwrap_conf() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("router building needs root (network namespaces, bridges)")
    if shutil.which("iptables") is None:
        pytest.skip("iptables is missing: run scripts/install")
    state = Path(tempfile.mkdtemp(prefix="ism-r-", dir="/tmp"))
    os.chmod(state, 0o755)
    filters = state / "rootwrap.d"
    filters.mkdir(mode=0o755)
    shutil.copy(REPO / "etc" / "isthmus" / "rootwrap.d" / "agent.filters", filters / "agent.filters")
    os.chmod(filters / "agent.filters", 0o644)
    conf = state / "rootwrap.conf"
    conf.write_text("[DEFAULT]\n"
                    f"filters_path = {filters}\n"
                    "exec_dirs = /usr/sbin,/usr/bin,/sbin,/bin\n"
                    f"daemon_socket = {state}/rootwrap.sock\n"
                    "daemon_allowed_users = root\n"
                    "daemon_timeout = 0\n")
    os.chmod(conf, 0o644)
    try:
        yield conf
    finally:
        privileged.stop_daemon(conf)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def client(rootwrap_conf) -> Iterator[Client]:
    with Client(config_path=str(rootwrap_conf)) as c:
        yield c


class Lab:
    """Two bridges (external, LAN) and namespaces plugged into them, with unique names."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.tag = tag
        self.ext_bridge, self.lan_bridge = f"brx{tag}e", f"brx{tag}l"
        self.prefix = f"isthmus-t{tag}-"
        self.namespaces: list[str] = []
        self.links: list[str] = []

    def create(self) -> None:
        for bridge in (self.ext_bridge, self.lan_bridge):
            sh("ip", "link", "add", bridge, "type", "bridge")
            self.links.append(bridge)
            sh("ip", "link", "set", bridge, "up")

    def namespace(self, role: str, bridge: str, *addresses: str, routes: tuple[tuple[str, ...], ...] = ()) -> str:
        """A namespace with one veth into ``bridge``, carrying ``addresses``, and ``routes``."""
        ns = f"ism{self.tag}{role}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        outside = f"v{self.tag}{role}"[:15]
        sh("ip", "link", "add", outside, "master", bridge, "up", "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        self.links.append(outside)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        for address in addresses:
            sh("ip", "-n", ns, "address", "add", address, "dev", "eth0",
               *(("nodad",) if ":" in address else ()))
        for route in routes:
            sh("ip", "-n", ns, *route)
        return ns

    def destroy(self) -> None:
        for ns in self.namespaces:
            sh("ip", "netns", "delete", ns, check=False)
        for link in self.links:
            sh("ip", "link", "delete", link, check=False)
        for ns in sh("ip", "netns", "list").stdout.split("\n"):
            name = ns.split(" ")[0]
            if name.startswith(self.prefix):
                sh("ip", "netns", "delete", name, check=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        made.create()
        yield made
    finally:
        made.destroy()


@pytest.fixture
def builder(client, lab) -> RouterBuilder:
    return RouterBuilder(client, {"public": lab.ext_bridge, "lan": lab.lan_bridge}, lab.prefix)
