#!/usr/bin/env python3
"""Slowloris benchmark: latency of ordinary requests with 0, then N slow clients connected.

Starts a real ``isthmus up`` (soft open-files limit 1024, as on most hosts),
times ordinary ``GET /v2.0/vpn/ikepolicies`` requests, each on a new
connection, then opens N connections that send a partial request header and
trickle one more header line every few seconds (never finishing it, never
silent long enough to be dropped), and times the same requests again. Prints
median and p99 side by side; a request that gets no answer within
``--timeout`` seconds counts as a timeout (a phase stops after five).

    python benchmarks/slowloris.py                 # 1000 slow connections
    python benchmarks/slowloris.py --slow 3000 --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ISTHMUS = str(Path(sys.executable).with_name("isthmus"))
TRICKLE_EVERY_S = 5.0
MAX_TIMEOUTS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_isthmus(data_dir: Path, port: int) -> subprocess.Popen:
    def default_open_files() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    proc = subprocess.Popen([ISTHMUS, "up", "--data-dir", str(data_dir), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=default_open_files)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("isthmus up did not start listening within 60 s")


def one_request(port: int, timeout_s: float) -> float | None:
    """Seconds for one GET on a fresh connection, or None if it got no answer in time."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/v2.0/vpn/ikepolicies")
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"unexpected status {response.status}")
        return time.perf_counter() - started
    except (TimeoutError, socket.timeout, ConnectionError):
        return None
    finally:
        conn.close()


def measure(port: int, count: int, timeout_s: float) -> tuple[list[float], int]:
    latencies, timeouts = [], 0
    for _ in range(count):
        latency = one_request(port, timeout_s)
        if latency is None:
            timeouts += 1
            if timeouts >= MAX_TIMEOUTS:
                break
        else:
            latencies.append(latency)
    return latencies, timeouts


class SlowClients:
    """``count`` connections that keep sending a request header and never end it."""

    def __init__(self, port: int, count: int) -> None:
        self.socks: list[socket.socket] = []
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(f"GET /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: x\r\nX-Slow-{n}: ".encode())
            self.socks.append(sock)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stopped.wait(TRICKLE_EVERY_S):
            for sock in self.socks:
                try:
                    sock.sendall(b"a")
                except OSError:
                    pass   # the server closed it: that is its defence working

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()
        for sock in self.socks:
            sock.close()


def summary(latencies: list[float], timeouts: int) -> str:
    if not latencies:
        return f"{'—':>10} {'—':>10} {timeouts:>9}"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1000:>8.1f}ms {p99 * 1000:>8.1f}ms {timeouts:>9}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=1000, help="slow connections to hold open")
    parser.add_argument("--requests", type=int, default=200, help="ordinary requests per phase")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds an ordinary request may wait before it counts as a timeout")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))   # this process holds them all

    with tempfile.TemporaryDirectory(prefix="isthmus-slowloris-") as workdir:
        port = free_port()
        proc = start_isthmus(Path(workdir) / "data", port)
        try:
            measure(port, 20, args.timeout)   # warm-up
            quiet = measure(port, args.requests, args.timeout)
            slow = SlowClients(port, args.slow)
            try:
                time.sleep(1)   # let the server accept them all
                attacked = measure(port, args.requests, args.timeout)
            finally:
                slow.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print(f"ordinary GET /v2.0/vpn/ikepolicies, new connection each, {args.requests} per row "
          f"(timeout {args.timeout:.0f} s)")
    print(f"{'slow connections':>16} {'median':>10} {'p99':>10} {'timeouts':>9}")
    print(f"{0:>16} {summary(*quiet)}")
    print(f"{args.slow:>16} {summary(*attacked)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
