#!/usr/bin/env python3
"""Throughput of ``isthmus server --workers N``: 1 and 2 workers at 8 and 32 concurrent clients.

For each worker count a real ``isthmus server --workers N`` runs on a database
of its own; clients (keep-alive HTTP/1.1 connections, spread over a few client
processes so the load generator is not held by one GIL) run each operation for
``--seconds``: show (GET one of 200 IKE policies) and create (POST an IKE policy).
Prints, side by side, median and p99 latency and requests per second. The
clients run on the same machine and take CPU from the server: on a 2-core machine
the figures are what the machine gives, not what the server would on its own.

    python benchmarks/workers.py                          # PostgreSQL at 127.0.0.1:5432
    python benchmarks/workers.py --backend sqlite --seconds 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from api import free_port, make_database

CLIENT_PROCESSES = 4


def start_server(url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    """``isthmus server --workers N`` on ``url`` (migrated first); returns it and its port."""
    port = free_port()
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {workdir}\ntransport_url = fake://\n"
                    f"[database]\nconnection = {url}\n")
    exe = [sys.executable, "-m", "isthmus.cli"]
    subprocess.run([*exe, "db", "upgrade", "--config-file", str(conf)], check=True,
                   stdout=subprocess.DEVNULL)
    log = open(workdir / f"server-{workers}.log", "w")
    proc = subprocess.Popen([*exe, "server", "--config-file", str(conf), "--workers",
                             str(workers)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if (workdir / f"server-{workers}.log").read_text().count("API listening") >= workers:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc, port
            except OSError:
                pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start; see {log.name}")


def _call(conn: http.client.HTTPConnection, method: str, path: str,
          body: dict | None = None) -> tuple[int, bytes]:
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json", "Accept": "application/json"})
    response = conn.getresponse()
    return response.status, response.read()


def _client_process(port: int, threads: int, op: str, ids: list[str], seconds: float,
                    start_at: float, out: multiprocessing.Queue) -> None:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def run(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine: list[float] = []
        failed = 0
        time.sleep(max(0.0, start_at - time.time()))
        end = start_at + seconds
        i = 0
        while time.time() < end:
            i += 1
            began = time.perf_counter()
            if op == "show":
                status, _ = _call(conn, "GET", f"/v2.0/vpn/ikepolicies/{ids[i % len(ids)]}")
                ok = status == 200
            else:
                status, _ = _call(conn, "POST", "/v2.0/vpn/ikepolicies", {"ikepolicy": {
                    "name": f"w-{os.getpid()}-{index}-{i}"}})
                ok = status == 201
            mine.append((time.perf_counter() - began) * 1000)
            failed += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += failed
        conn.close()

    pool = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put((latencies, errors[0]))


def measure(port: int, clients: int, op: str, ids: list[str], seconds: float
            ) -> tuple[float, float, float, int]:
    """``clients`` concurrent connections doing ``op`` for ``seconds``: median, p99, req/s, errors."""
    processes = min(CLIENT_PROCESSES, clients)
    out: multiprocessing.Queue = multiprocessing.Queue()
    start_at = time.time() + 0.5
    procs = [multiprocessing.Process(target=_client_process, args=(
        port, clients // processes + (n < clients % processes), op, ids, seconds, start_at,
        out)) for n in range(processes)]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        values, failed = out.get()
        latencies += values
        errors += failed
    for p in procs:
        p.join()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, len(ordered) / seconds, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="postgresql",
                        choices=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--clients", default="8,32")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    client_counts = [int(n) for n in args.clients.split(",")]
    results: dict[tuple[str, int, int], tuple[float, float, float, int]] = {}
    for workers in worker_counts:
        with tempfile.TemporaryDirectory(prefix="isthmus-workers-") as tmp:
            url, drop = make_database(args.backend, Path(tmp))
            proc, port = start_server(url, Path(tmp), workers)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port)
                ids = [json.loads(_call(conn, "POST", "/v2.0/vpn/ikepolicies", {
                    "ikepolicy": {"name": f"seed-{i}"}})[1])["ikepolicy"]["id"]
                       for i in range(200)]
                conn.close()
                for op in ("show", "create"):
                    for clients in client_counts:
                        results[op, clients, workers] = measure(port, clients, op, ids,
                                                                args.seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
                drop()
    print(f"\nisthmus server --workers N on {args.backend}, {args.seconds:g} s per cell, "
          f"api_threads 8 (python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          "clients on the same machine)\n")
    cells = "".join(f"{f'{w}w med':>9}{f'{w}w p99':>9}{f'{w}w req/s':>11}"
                    for w in worker_counts)
    header = f"{'operation':<10}{'clients':>8}{cells}{'errors':>8}"
    print(header)
    print("-" * len(header))
    for op in ("show", "create"):
        for clients in client_counts:
            row = f"{op:<10}{clients:>8}"
            errors = 0
            for workers in worker_counts:
                median, p99, rps, failed = results[op, clients, workers]
                row += f"{median:>9.1f}{p99:>9.1f}{rps:>11.0f}"
                errors += failed
            print(row + f"{errors:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
