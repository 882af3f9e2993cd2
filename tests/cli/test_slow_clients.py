"""Slowloris against the real ``isthmus up``: clients that send headers slowly lock no one out.

The server starts with the usual soft open-files limit of 1024, as on most
hosts; waitress's defaults (100 connections, select()) let 100 such clients
take every slot until ``channel_timeout``, before any authentication.
"""

from __future__ import annotations

import resource
import socket
import subprocess
from typing import Callable, Iterator

import httpx
import pytest

from tests.cli.test_commands import ISTHMUS, free_port, stop_all, wait_for

SLOW_CLIENTS = 1000


def _open_files(soft: int, hard: int | None = None) -> Callable[[], None]:
    def limit() -> None:
        _, current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        new_hard = current_hard if hard is None else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, new_hard), new_hard))
    return limit


@pytest.fixture
def isthmus_up(tmp_path) -> Iterator[Callable[..., tuple[subprocess.Popen, str]]]:
    procs: list[subprocess.Popen] = []

    def start(hard_open_files: int | None = None) -> tuple[subprocess.Popen, str]:
        port = free_port()
        proc = subprocess.Popen(
            [ISTHMUS, "up", "--data-dir", str(tmp_path / "data"), "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=_open_files(1024, hard_open_files))
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for(url + "/", proc)
        return proc, url
    yield start
    stop_all(procs)


@pytest.fixture
def many_open_files() -> Iterator[None]:
    """This test process holds the slow clients' sockets: raise its own soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SLOW_CLIENTS + 200:
        pytest.skip(f"the hard open-files limit ({hard}) is too low for {SLOW_CLIENTS} clients")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_ordinary_requests_are_answered_while_1000_clients_send_headers_slowly(
        isthmus_up, many_open_files):
    _, url = isthmus_up()
    port = int(url.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for n in range(SLOW_CLIENTS):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET /v2.0/networks HTTP/1.1\r\nHost: x\r\nX-Slow-{n}: ".encode())
            slow.append(sock)
        for _ in range(5):
            # A hang guard, not a speed check: waitress's defaults leave this waiting
            # for channel_timeout (120 s).
            response = httpx.get(url + "/v2.0/vpn/ikepolicies", timeout=20)
            assert response.status_code == 200
        created = httpx.post(url + "/v2.0/vpn/ikepolicies", timeout=20,
                             json={"ikepolicy": {"name": "during-the-attack"}})
        assert created.status_code == 201
    finally:
        for sock in slow:
            sock.close()


def test_connection_limit_shrinks_to_fit_a_low_hard_open_files_limit(isthmus_up):
    proc, url = isthmus_up(hard_open_files=600)
    assert httpx.get(url + "/v2.0/vpn/ikepolicies", timeout=20).status_code == 200
    proc.terminate()
    output, _ = proc.communicate(timeout=10)
    assert "api_connection_limit 4096 needs 4352 open files but the hard limit " \
           "(RLIMIT_NOFILE) is 600; serving at most 344 connections" in output
