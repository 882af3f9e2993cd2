"""SIGTERM and SIGINT against the real commands: drain, stop, exit 0, whatever the state.

A request in flight is made real by holding SQLite's write lock from the test:
the server's handler waits on it, the signal arrives, the lock is released,
and the answer must still come. "The server has read the request" is observed
in /proc/net/tcp (its receive queue is empty), not guessed with a sleep.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.cli.test_commands import ISTHMUS, free_port, wait_for

HANG_GUARD_S = 60


def wait_until(check: Callable[[], object], what: str, timeout_s: float = HANG_GUARD_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s}s: {what}")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(procs: list[subprocess.Popen], *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([ISTHMUS, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    procs.append(proc)
    return proc


def wait_for_output(proc: subprocess.Popen, text: str) -> None:
    """Read ``proc``'s output until a line contains ``text`` (hang guard: a reader thread)."""
    found = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            if text in line:
                found.set()
                return
    threading.Thread(target=read, daemon=True).start()
    assert found.wait(HANG_GUARD_S), f"no line with {text!r} within {HANG_GUARD_S}s"


def exit_code(proc: subprocess.Popen) -> int:
    """The exit code, failing (not hanging) if the process outlives the hang guard."""
    try:
        return proc.wait(timeout=HANG_GUARD_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"still running {HANG_GUARD_S}s after the signal: "
                             f"{proc.communicate()[0]}") from None


def _server_side_unread(port: int, client_port: int) -> int | None:
    """Bytes the server has not read yet on the connection from ``client_port``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[1], 16)
    return None


def send_request_blocked_on_the_database(port: int, database: Path
                                         ) -> tuple[socket.socket, sqlite3.Connection]:
    """A POST that the server has read and is handling, stuck until the lock is released."""
    lock = sqlite3.connect(database, isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")   # the server's writer now waits (busy_timeout 30 s)
    client = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S)
    body = b'{"ikepolicy": {"name": "in-flight"}}'
    client.sendall(b"POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    client_port = client.getsockname()[1]
    wait_until(lambda: _server_side_unread(port, client_port) == 0,
               "the server read the request")
    return client, lock


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def drain_and_exit(proc: subprocess.Popen, port: int, database: Path,
                   signum: signal.Signals) -> None:
    client, lock = send_request_blocked_on_the_database(port, database)
    proc.send_signal(signum)
    wait_until(lambda: refuses_connections(port), "new connections refused after the signal")
    assert proc.poll() is None, "exited with a request in flight"
    lock.execute("COMMIT")
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 201"), answer
    assert b"in-flight" in answer
    assert exit_code(proc) == 0, proc.communicate()[0]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_up_finishes_the_request_in_flight_and_exits_0(tmp_path, processes, signum):
    port = free_port()
    proc = start(processes, "up", "--data-dir", str(tmp_path), "--port", str(port))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    drain_and_exit(proc, port, tmp_path / "isthmus.db", signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_finishes_the_request_in_flight_and_exits_0(tmp_path, processes, signum):
    port = free_port()
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {tmp_path}\ntransport_url = fake://\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True, timeout=HANG_GUARD_S)
    proc = start(processes, "server", "--config-file", str(conf))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    drain_and_exit(proc, port, tmp_path / "isthmus.db", signum)


def test_server_stops_while_its_broker_is_unreachable(tmp_path, processes):
    port = free_port()
    conf = tmp_path / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {tmp_path}\n"
                    f"transport_url = rabbit://guest:guest@127.0.0.1:{free_port()}/\n")
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(conf)], check=True,
                   capture_output=True, timeout=HANG_GUARD_S)
    proc = start(processes, "server", "--config-file", str(conf))
    wait_for(f"http://127.0.0.1:{port}/", proc)
    proc.send_signal(signal.SIGTERM)
    assert exit_code(proc) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_agent_stops_while_connecting_to_an_unreachable_broker(tmp_path, processes, signum):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[DEFAULT]\nhost = agent-lc\n"
                    f"transport_url = rabbit://guest:guest@127.0.0.1:{free_port()}/\n")
    proc = start(processes, "agent", "--config-file", str(conf))
    # oslo.messaging logs each failed attempt: the agent is inside its connect loop.
    wait_for_output(proc, "Connection failed")
    proc.send_signal(signum)
    assert exit_code(proc) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_agent_connected_to_rabbitmq_stops_and_exits_0(tmp_path, processes, signum):
    conf = tmp_path / "agent.conf"
    conf.write_text("[DEFAULT]\nhost = agent-lc-connected\n"
                    "transport_url = rabbit://guest:guest@127.0.0.1:5672/\n")
    proc = start(processes, "agent", "--config-file", str(conf))
    wait_for_output(proc, "VPN agent on host")
    proc.send_signal(signum)
    assert exit_code(proc) == 0
