"""Fixtures for the privileged helper: configs in temp dirs, real daemons, namespaces.

Everything created here (directories, sockets, daemons, namespaces) is
removed in the fixture's teardown, also when the test fails. Socket
directories are made with mkdtemp + 0755 (not pytest's 0700 tmp_path) so
tests can connect as `nobody`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

SYSTEM_EXEC_DIRS = "/usr/sbin,/usr/bin,/sbin,/bin"

# Filters used by most daemon and CLI tests: small commands, ip, and a few
# deliberately tempting ones for the bypass corpus.
DEFAULT_FILTERS = textwrap.dedent(
    r"""
    [Filters]
    true: CommandFilter, true, root
    false: CommandFilter, false, root
    echo: CommandFilter, echo, root
    cat: CommandFilter, cat, root
    sleep: RegExpFilter, sleep, root, sleep, [0-9]+(\.[0-9]+)?
    sh: CommandFilter, sh, root
    env_cmd: CommandFilter, env, root
    id: CommandFilter, id, root
    id_nobody: RegExpFilter, id, nobody, id, -u
    ip: IpFilter, ip, root
    ip_exec: IpNetnsExecFilter, ip, root
    kill_sleep: KillFilter, root, /usr/bin/sleep, -9, -15
    """
)


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (CI runs these tests as root)")


def make_world_readable_dir(prefix: str) -> str:
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o755)
    return path


class RootwrapSetup:
    """A rootwrap.conf plus filter directory in a private temp dir."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.filters_dir = self.root / "rootwrap.d"
        self.filters_dir.mkdir(mode=0o755)
        self.bin_dir = self.root / "bin"
        self.bin_dir.mkdir(mode=0o755)
        self.socket_path = str(self.root / "run" / "rootwrap.sock")
        self.config_path = str(self.root / "rootwrap.conf")
        self.options: dict[str, str] = {}

    def write_config(self, **options: str) -> str:
        self.options.update(options)
        values = {
            "filters_path": str(self.filters_dir),
            "exec_dirs": f"{self.bin_dir},{SYSTEM_EXEC_DIRS}",
            "daemon_socket": self.socket_path,
            "daemon_timeout": "120",
            **self.options,
        }
        body = "".join(f"{key} = {value}\n" for key, value in values.items())
        Path(self.config_path).write_text("[DEFAULT]\n" + body)
        os.chmod(self.config_path, 0o644)
        return self.config_path

    def write_filters(self, text: str, name: str = "test.filters") -> Path:
        path = self.filters_dir / name
        path.write_text(textwrap.dedent(text))
        os.chmod(path, 0o644)
        return path

    def add_script(self, name: str, body: str) -> Path:
        path = self.bin_dir / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path


class DaemonProcess:
    """A running isthmus-rootwrap-daemon started for one test (or module)."""

    def __init__(self, setup: RootwrapSetup, process: subprocess.Popen, log_path: Path) -> None:
        self.setup = setup
        self.process = process
        self.log_path = log_path
        self.socket_path = setup.socket_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def audit_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if "isthmus.privileged.audit" in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_daemon(setup: RootwrapSetup, *extra_args: str) -> DaemonProcess:
    log_path = setup.root / f"daemon-{uuid.uuid4().hex[:6]}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "isthmus.privileged.daemon", setup.config_path, *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    process.stdout.close()
    daemon = DaemonProcess(setup, process, log_path)
    if not line.startswith("ready"):
        daemon.stop()
        raise AssertionError(f"daemon did not start: {line!r}\n{daemon.log()}")
    return daemon


@pytest.fixture
def rootwrap(request) -> Iterator[RootwrapSetup]:
    require_root()
    root = make_world_readable_dir("isthmus-rw-")
    setup = RootwrapSetup(root)
    setup.write_filters(DEFAULT_FILTERS)
    setup.write_config()
    try:
        yield setup
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def daemon(rootwrap: RootwrapSetup) -> Iterator[DaemonProcess]:
    """A daemon of its own for tests that stop, restart or break it."""
    process = start_daemon(rootwrap)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def shared_daemon() -> Iterator[DaemonProcess]:
    """One daemon per test module for tests that only send requests."""
    require_root()
    root = make_world_readable_dir("isthmus-rw-shared-")
    setup = RootwrapSetup(root)
    setup.write_filters(DEFAULT_FILTERS)
    setup.add_script("fake-tool", 'echo "fake-tool $*"')
    setup.write_filters("[Filters]\nfake: CommandFilter, fake-tool, root\n", name="extra.filters")
    setup.write_config(daemon_allowed_groups="nogroup")
    process = start_daemon(setup)
    try:
        yield process
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def netns_names() -> Iterator[list[str]]:
    """Unique namespace names; every one of them is deleted afterwards."""
    require_root()
    names = [f"isth-test-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    try:
        yield names
    finally:
        for name in names:
            if os.path.exists(f"/run/netns/{name}"):
                subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def wait_for(predicate, timeout_s: float = 10.0, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def run_as_nobody(code: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    """Run Python `code` in a child process that drops to uid/gid nobody first (see python_as_user)."""
    return subprocess.run(
        python_as_user(65534, 65534, code),
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def python_as_user(uid: int, gid: int, code: str) -> list[str]:
    """argv running Python `code` as uid/gid, with no supplementary groups.

    The child imports the client while still root (the interpreter may live
    under /root, unreadable to other users), then calls
    setgroups/setgid/setuid and only then runs `code`, so every connection
    it makes carries that user's credentials.
    """
    prelude = (
        "import json, os, select, socket, sys\n"
        "import isthmus.privileged, isthmus.privileged.client, isthmus.privileged.protocol\n"
        "from isthmus.privileged import Client, PeerNotAuthorized, NotAllowed\n"
        f"os.setgroups([]); os.setgid({gid}); os.setuid({uid})\n"
        f"assert os.getuid() == {uid} and os.geteuid() == {uid}\n"
    )
    return [sys.executable, "-c", prelude + code]
