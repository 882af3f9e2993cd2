"""``isthmus up --physical-network``: real routers from the API alone, and a clean exit.

Root only for the real run: ``public`` maps to a plain veth end whose peer sits in an
"upstream" namespace; the router built through the API answers pings from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import httpx
import pytest

from tests.cli.test_commands import ISTHMUS, free_port, stop_all, wait_for


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def wait_until(check, what: str, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@pytest.fixture
def upstream():
    """A plain interface (veth end) on the host whose peer is in an "upstream" namespace."""
    if os.geteuid() != 0:
        pytest.skip("real routers need root")
    if not os.path.exists("/usr/lib/ipsec/charon") or shutil.which("iptables") is None:
        pytest.skip("strongSwan or iptables missing: run scripts/install")
    tag = uuid.uuid4().hex[:6]
    uplink, ns = f"upl{tag}", f"ism{tag}up"
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", uplink, "up", "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "address", "add", "198.51.100.1/24", "dev", "eth0")
    try:
        yield uplink, ns
    finally:
        sh("ip", "netns", "delete", ns, check=False)
        sh("ip", "link", "delete", uplink, check=False)


def test_up_with_a_physical_network_builds_the_router_and_cleans_up(tmp_path, upstream):
    uplink, upstream_ns = upstream
    port = free_port()
    data = tmp_path / "data"
    proc = subprocess.Popen([ISTHMUS, "up", "--data-dir", str(data), "--port", str(port),
                             "--physical-network", f"public:{uplink}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/", proc)
        base = f"http://127.0.0.1:{port}/v2.0"
        with httpx.Client(base_url=base, timeout=30) as api:   # admin: no project header
            net = api.post("/networks", json={"network": {
                "name": "public", "router:external": True, "provider:network_type": "flat",
                "provider:physical_network": "public"}}).json()["network"]
            subnet = api.post("/subnets", json={"subnet": {
                "network_id": net["id"], "ip_version": 4, "cidr": "198.51.100.0/24",
                "gateway_ip": "198.51.100.1"}}).json()["subnet"]
            router = api.post("/routers", json={"router": {
                "name": "r1", "external_gateway_info": {"network_id": net["id"], "external_fixed_ips": [
                    {"subnet_id": subnet["id"], "ip_address": "198.51.100.2"}]}}}).json()["router"]
            ns = f"isthmus-{router['id']}"

            def gateway_address() -> bool:
                shown = sh("ip", "-j", "-n", ns, "address", "show", check=False)
                return shown.returncode == 0 and "198.51.100.2" in [
                    a["local"] for link in json.loads(shown.stdout) for a in link.get("addr_info", [])]

            wait_until(gateway_address, f"namespace {ns} with the gateway address")
            shown = wait_until(lambda: (r := api.get(f"/routers/{router['id']}").json()["router"])[
                "isthmus:agent_host"] and r, "router placed on the agent")
            assert shown["status"] == "ACTIVE" and shown["isthmus:status_detail"] is None, shown
        assert sh("ip", "netns", "exec", upstream_ns, "ping", "-c", "1", "-W", "2", "198.51.100.2",
                  check=False).returncode == 0
        rootwrap = str(data / "privileged" / "rootwrap.conf")
        assert sh("pgrep", "-f", rootwrap, check=False).stdout.split()
    finally:
        stop_all([proc])
    output = proc.stdout.read() if proc.stdout else ""
    assert proc.returncode == 0, output
    assert "real routers on public:" in output and "strongSwan driver" in output
    assert ns not in sh("ip", "netns", "list").stdout
    assert not sh("pgrep", "-f", rootwrap, check=False).stdout.split()


def test_up_with_a_physical_network_refuses_without_root(tmp_path):
    """One line on stderr, exit 1; run as nobody (setpriv) when the test runs as root."""
    argv = [ISTHMUS, "up", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()),
            "--physical-network", "public:eth0"]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv missing")
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root" in lines[0] and "sudo" in lines[0] and "--physical-network" in lines[0]


def test_bad_physical_network_entry_is_a_clear_error(tmp_path):
    result = subprocess.run([ISTHMUS, "up", "--data-dir", str(tmp_path / "data"),
                             "--port", str(free_port()), "--physical-network", "public"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "--physical-network entry 'public' is not NAME:DEVICE" in result.stderr
