#!/usr/bin/env python3
"""API latency benchmark: create 1000 IKE policies, then time create, show and list-1000.

Runs a real ``isthmus server`` process (one process, as configured) per backend
and drives it over HTTP/1.1 keep-alive from this process. Prints median and p99
latency and sequential requests per second, beside the Neutron 29 reference
measured on this kind of machine (one uWSGI worker, MariaDB).

    python benchmarks/api.py                       # sqlite, mariadb, postgresql
    python benchmarks/api.py --backends sqlite --count 200
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
import uuid
from pathlib import Path

import sqlalchemy as sa

NEUTRON_29 = {"create": "27–35 ms", "show": "8–9 ms", "list": "~680 ms"}
TARGETS = {"create": 3.0, "show": 1.0, "list": 50.0}
SERVER_URLS = {"postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/",
               "mariadb": "mysql+pymysql://root@127.0.0.1:3306/"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_database(backend: str, workdir: Path) -> tuple[str, callable]:
    if backend == "sqlite":
        return f"sqlite:///{workdir}/bench.db", lambda: None
    name = f"isthmus_bench_{uuid.uuid4().hex[:8]}"
    maint = SERVER_URLS[backend] + ("postgres" if backend == "postgresql" else "")
    engine = sa.create_engine(maint, isolation_level="AUTOCOMMIT")
    suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend == "mariadb" else ""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}{suffix}")

    def drop() -> None:
        with engine.connect() as conn:
            force = " WITH (FORCE)" if backend == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        engine.dispose()
    return SERVER_URLS[backend] + name, drop


def start_server(url: str, workdir: Path, port: int, default_opts: str = "",
                 database_opts: str = "") -> subprocess.Popen:
    """``isthmus server`` on ``url``; ``*_opts``: more INI lines for those sections."""
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {workdir}\n{default_opts}\n"
                    f"[database]\nconnection = {url}\n{database_opts}")
    exe = Path(sys.executable).with_name("isthmus")
    subprocess.run([str(exe), "db", "upgrade", "--config-file", str(conf)], check=True,
                   stdout=subprocess.DEVNULL)
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen([str(exe), "server", "--config-file", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[float, int, bytes]:
        data = None if body is None else json.dumps(body)
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        return (time.perf_counter() - start) * 1000, response.status, payload


def stats(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, 1000 * len(samples) / sum(samples)


def run_backend(backend: str, count: int, shows: int, lists: int) -> dict[str, tuple]:
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        workdir = Path(tmp)
        url, drop = make_database(backend, workdir)
        port = free_port()
        proc = start_server(url, workdir, port)
        try:
            client = Client(port)
            creates, ids = [], []
            for i in range(count):
                ms, status, payload = client.call("POST", "/v2.0/vpn/ikepolicies", {
                    "ikepolicy": {"name": f"bench-{i}", "ike_version": "v2", "pfs": "group14"}})
                assert status == 201, payload
                creates.append(ms)
                ids.append(json.loads(payload)["ikepolicy"]["id"])
            show_times = []
            for i in range(shows):
                ms, status, _ = client.call("GET", f"/v2.0/vpn/ikepolicies/{ids[i % len(ids)]}")
                assert status == 200
                show_times.append(ms)
            list_times = []
            for _ in range(lists):
                ms, status, payload = client.call("GET", "/v2.0/vpn/ikepolicies")
                assert status == 200 and len(json.loads(payload)["ikepolicies"]) == count
                list_times.append(ms)
            return {"create": stats(creates), "show": stats(show_times),
                    "list": stats(list_times)}
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    parser.add_argument("--count", type=int, default=1000, help="IKE policies to create")
    parser.add_argument("--shows", type=int, default=2000)
    parser.add_argument("--lists", type=int, default=50)
    args = parser.parse_args()
    results = {b: run_backend(b, args.count, args.shows, args.lists)
               for b in args.backends.split(",")}
    print(f"\nIsthmus API, one server process, {args.count} IKE policies "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    header = f"{'operation':<12}{'backend':<12}{'median ms':>11}{'p99 ms':>10}{'req/s':>9}" \
             f"{'target':>10}{'Neutron 29':>14}"
    print(header)
    print("-" * len(header))
    for op, label in (("create", "create"), ("show", "show"), ("list", f"list {args.count}")):
        for backend, result in results.items():
            median, p99, rps = result[op]
            mark = "ok" if median <= TARGETS[op] else "MISS"
            print(f"{label:<12}{backend:<12}{median:>11.2f}{p99:>10.2f}{rps:>9.0f}"
                  f"{'≤' + str(TARGETS[op]):>8} {mark:<4}{NEUTRON_29[op]:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
