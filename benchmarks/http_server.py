#!/usr/bin/env python3
"""The API's HTTP server (isthmus.api.http) beside waitress, on the same applications.

Four servers run at once, each in a process of its own: waitress (configured as
``isthmus server`` configured it before: poll loop, 8 worker threads) and
Isthmus's own server, each serving (a) a bare WSGI application answering a small
JSON body and (b) the Isthmus API on SQLite, where ``GET
/v2.0/vpn/ikepolicies/{id}`` is timed. One keep-alive client per server sends
requests one at a time, alternating batches between the servers of a pair so
that both see the same machine load; medians, p99s and the ratio are printed.

    python benchmarks/http_server.py [--requests 4000] [--batch 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEADERS = {"X-Project-Id": "bench", "X-User-Id": "bench", "X-Roles": "member,reader",
           "Content-Type": "application/json"}
BODY = json.dumps({"ikepolicy": {"id": "x" * 36, "name": "bench"}}).encode()


def bare_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The smallest JSON answer: what the server alone costs."""
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]


def isthmus_app(state_dir: str) -> Any:
    """The Isthmus API (no RPC bus needed for IKE policies) on a fresh SQLite database."""
    from isthmus import config, server
    conf_path = Path(state_dir) / "isthmus.conf"
    conf_path.write_text(f"[DEFAULT]\nstate_path = {state_dir}\n"
                         f"transport_url = fake://\n")
    conf = config.load([], [str(conf_path)])
    from isthmus.rpc.transport import EMBEDDED_URL, get_transport
    transport = get_transport(conf, EMBEDDED_URL)     # the in-process bus of isthmus up
    return server.build(conf, migrate=True, transport=transport).app


def serve(kind: str, app_name: str, port: int, state_dir: str) -> None:
    """Child process: serve ``app_name`` with ``kind`` on ``port`` until killed."""
    app = bare_app if app_name == "bare" else isthmus_app(state_dir)
    if kind == "waitress":
        from waitress.server import create_server
        create_server(app, host="127.0.0.1", port=port, threads=8, asyncore_use_poll=True,
                      connection_limit=4096, channel_request_lookahead=5).run()
    else:
        from isthmus.api.http import HTTPServer
        server = HTTPServer.bind(app, "127.0.0.1", port, threads=8, connection_limit=4096,
                                 idle_timeout=60, max_header_bytes=65536)
        while True:
            server.accept_for(1.0)


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive connection; each call returns its milliseconds."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[float, bytes]:
        """One request: milliseconds and the body (asserting a 2xx)."""
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=HEADERS)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        assert 200 <= response.status < 300, (response.status, payload)
        return elapsed, payload


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    """Until ``port`` accepts connections (the child started)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def stats(samples: list[float]) -> tuple[float, float]:
    """Median and p99."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> int:
    """Start the four servers, alternate batches, print the table."""
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    procs: list[subprocess.Popen] = []
    rows = []
    with tempfile.TemporaryDirectory(prefix="isthmus-http-bench-") as tmp:
        try:
            ports: dict[tuple[str, str], int] = {}
            for app_name in ("bare", "isthmus"):
                for kind in ("waitress", "isthmus"):
                    port = free_port()
                    state = Path(tmp) / f"{kind}-{app_name}"
                    state.mkdir()
                    procs.append(subprocess.Popen(
                        [sys.executable, __file__, "--serve", kind, app_name, str(port),
                         str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    ports[(kind, app_name)] = port
            for (kind, app_name), port in ports.items():
                wait_listening(port, procs[list(ports).index((kind, app_name))])
            for app_name in ("bare", "isthmus"):
                clients = {kind: Client(ports[(kind, app_name)])
                           for kind in ("waitress", "isthmus")}
                paths = {}
                for kind, client in clients.items():
                    if app_name == "bare":
                        paths[kind] = "/"
                    else:
                        _, body = client.call("POST", "/v2.0/vpn/ikepolicies", json.dumps(
                            {"ikepolicy": {"name": "bench"}}).encode())
                        policy_id = json.loads(body)["ikepolicy"]["id"]
                        paths[kind] = f"/v2.0/vpn/ikepolicies/{policy_id}"
                samples: dict[str, list[float]] = {kind: [] for kind in clients}
                for kind, client in clients.items():   # warm up
                    for _ in range(100):
                        client.call("GET", paths[kind])
                done = 0
                while done < args.requests:
                    order = list(clients) if (done // args.batch) % 2 == 0 else \
                        list(clients)[::-1]
                    for kind in order:
                        for _ in range(args.batch):
                            samples[kind].append(clients[kind].call("GET", paths[kind])[0])
                    done += args.batch
                (wm, wp), (im, ip) = stats(samples["waitress"]), stats(samples["isthmus"])
                label = "bare WSGI app" if app_name == "bare" else "Isthmus GET ikepolicy"
                rows.append((label, wm, wp, im, ip))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    print(f"\n{args.requests} keep-alive requests each, alternating batches of {args.batch}; "
          f"python {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    header = (f"{'application':<24}{'waitress med':>14}{'p99':>9}{'isthmus.api.http med':>22}"
              f"{'p99':>9}{'ratio med':>11}")
    print(header)
    print("-" * len(header))
    for label, wm, wp, im, ip in rows:
        print(f"{label:<24}{wm:>13.3f}m{wp:>8.3f}m{im:>21.3f}m{ip:>8.3f}m{wm / im:>11.2f}")
    print("(m: milliseconds; ratio: waitress / isthmus.api.http)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
