#!/usr/bin/env python3
"""API latency benchmark: create 1000 IKE policies, then time create, show and list-1000.

Runs a real ``isthmus server`` process (one process, as configured) per backend
and drives it over HTTP/1.1 keep-alive from this process. Prints median and p99
latency and sequential requests per second, beside the Neutron 29 reference
measured on this kind of machine (one uWSGI worker, MariaDB).

    python benchmarks/api.py                       # sqlite, mariadb, postgresql
    python benchmarks/api.py --backends sqlite --count 200

``--baseline-src DIR`` (the ``src`` of another checkout, e.g. a ``git worktree`` of
the previous release) runs that code's server beside this one, each on a database
of its own, and alternates small batches of every operation between the two, so
both see the same machine load; it prints both and the ratio (this / baseline):

    git worktree add --detach /tmp/base v0.1 && \
        python benchmarks/api.py --backends sqlite --baseline-src /tmp/base/src
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
                 database_opts: str = "", src: str | None = None) -> subprocess.Popen:
    """``isthmus server`` on ``url``; ``*_opts``: more INI lines for those sections;
    ``src``: run the Isthmus of that source tree instead of the installed one."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {workdir}\n{default_opts}\n"
                    f"[database]\nconnection = {url}\n{database_opts}")
    exe = Path(sys.executable).with_name("isthmus")
    subprocess.run([sys.executable, "-m", "isthmus.cli", "db", "upgrade", "--config-file",
                    str(conf)], check=True, stdout=subprocess.DEVNULL, env=env)
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "isthmus.cli", "server", "--config-file",
                             str(conf)], stdout=log, stderr=subprocess.STDOUT, env=env)
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


def run_side_by_side(backend: str, count: int, shows: int, lists: int,
                     baseline_src: str) -> dict[str, dict[str, tuple]]:
    """This checkout's server and the baseline's, fed alternating batches of each operation."""
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        servers, drops = {}, []
        try:
            for side, src in (("this", None), ("baseline", baseline_src)):
                workdir = Path(tmp) / side
                workdir.mkdir()
                url, drop = make_database(backend, workdir)
                drops.append(drop)
                port = free_port()
                servers[side] = (start_server(url, workdir, port, src=src), Client(port), [])
            samples: dict[str, dict[str, list[float]]] = {
                side: {"create": [], "show": [], "list": []} for side in servers}

            def alternate(op: str, total: int, batch: int, request) -> None:
                done = 0
                while done < total:
                    n = min(batch, total - done)
                    for side in (("this", "baseline") if done // batch % 2 == 0
                                 else ("baseline", "this")):
                        _, client, ids = servers[side]
                        for i in range(n):
                            samples[side][op].append(request(client, ids, done + i))
                    done += n

            def create(client: Client, ids: list[str], i: int) -> float:
                ms, status, payload = client.call("POST", "/v2.0/vpn/ikepolicies", {
                    "ikepolicy": {"name": f"bench-{i}", "ike_version": "v2", "pfs": "group14"}})
                assert status == 201, payload
                ids.append(json.loads(payload)["ikepolicy"]["id"])
                return ms

            def show(client: Client, ids: list[str], i: int) -> float:
                ms, status, _ = client.call("GET", f"/v2.0/vpn/ikepolicies/{ids[i % len(ids)]}")
                assert status == 200
                return ms

            def listing(client: Client, ids: list[str], i: int) -> float:
                ms, status, payload = client.call("GET", "/v2.0/vpn/ikepolicies")
                assert status == 200 and len(json.loads(payload)["ikepolicies"]) == count
                return ms

            alternate("create", count, 20, create)
            alternate("show", shows, 50, show)
            alternate("list", lists, 2, listing)
            return {side: {op: stats(values) for op, values in ops.items()}
                    for side, ops in samples.items()}
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=10)
            for drop in drops:
                drop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    parser.add_argument("--count", type=int, default=1000, help="IKE policies to create")
    parser.add_argument("--shows", type=int, default=2000)
    parser.add_argument("--lists", type=int, default=50)
    parser.add_argument("--baseline-src", help="src/ of another checkout to run beside this one")
    args = parser.parse_args()
    if args.baseline_src:
        print(f"\nThis checkout beside {args.baseline_src}, {args.count} IKE policies, "
              f"alternating batches (python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
        header = f"{'operation':<12}{'backend':<12}{'this med':>10}{'this p99':>10}" \
                 f"{'base med':>10}{'base p99':>10}{'ratio':>8}"
        print(header)
        print("-" * len(header))
        for backend in args.backends.split(","):
            both = run_side_by_side(backend, args.count, args.shows, args.lists,
                                    args.baseline_src)
            for op in ("create", "show", "list"):
                (tm, tp, _), (bm, bp, _) = both["this"][op], both["baseline"][op]
                label = f"list {args.count}" if op == "list" else op
                print(f"{label:<12}{backend:<12}{tm:>10.2f}{tp:>10.2f}{bm:>10.2f}{bp:>10.2f}"
                      f"{tm / bm:>8.2f}")
        return 0
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
