#!/usr/bin/env python3
"""List paging benchmark: list-1000 old against new, and ``limit=100`` at 1 000 to 100 000 rows.

Runs real ``isthmus server`` processes over HTTP/1.1 keep-alive, one database per
server. ``--old-src`` names the ``src`` folder of a checkout of the code to compare
with (e.g. ``git worktree add /tmp/sqlold main``): its server runs from there, on its
own database holding the same rows, and the two are timed in alternating batches.
Rows are inserted with SQL (an IKE policy each, one project), not through the API.

    python benchmarks/list_paging.py --old-src /tmp/sqlold/src
    python benchmarks/list_paging.py --backends sqlite --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from api import Client, free_port, make_database, stats  # noqa: E402

PROJECT = "benchproj"
LIST = "/v2.0/vpn/ikepolicies"


def start(url: str, workdir: Path, src: str | None) -> tuple[subprocess.Popen, int]:
    """An ``isthmus server`` on ``url`` running the code in ``src`` (default: installed)."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\n"
                    f"state_path = {workdir}\n[database]\nconnection = {url}\n")
    env = dict(os.environ, PYTHONPATH=src) if src else dict(os.environ)
    cli = [sys.executable, "-c", "import sys; from isthmus.cli import main; sys.exit(main())"]
    subprocess.run([*cli, "db", "upgrade", "--config-file", str(conf)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    log = open(workdir / "server.log", "w")
    proc = subprocess.Popen([*cli, "server", "--config-file", str(conf)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            Client(port).call("GET", "/")
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")


def fill(url: str, total: int) -> None:
    """IKE policies up to ``total`` rows, inserted in batches with plain SQL."""
    engine = sa.create_engine(url)
    table = sa.table("ikepolicies", *(sa.column(c) for c in (
        "id", "project_id", "name", "description", "auth_algorithm", "encryption_algorithm",
        "phase1_negotiation_mode", "lifetime_units", "lifetime_value", "ike_version", "pfs")))
    with engine.begin() as conn:
        have = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        rows = [{"id": str(uuid.uuid4()), "project_id": PROJECT, "name": f"bench-{n}",
                 "description": "", "auth_algorithm": "sha1",
                 "encryption_algorithm": "aes-128", "phase1_negotiation_mode": "main",
                 "lifetime_units": "seconds", "lifetime_value": 3600, "ike_version": "v2",
                 "pfs": "group14"} for n in range(have, total)]
        for start_at in range(0, len(rows), 5000):
            conn.execute(sa.insert(table), rows[start_at:start_at + 5000])
    engine.dispose()


def timed(client: Client, path: str, times: list[float], expect: int) -> None:
    ms, status, payload = client.call("GET", path)
    assert status == 200 and len(json.loads(payload)["ikepolicies"]) == expect, payload[:200]
    times.append(ms)


def member(port: int) -> Client:
    client = Client(port)
    client.headers.update({"X-Project-Id": PROJECT, "X-User-Id": "bench",
                           "X-Roles": "member,reader"})
    return client


def run_backend(backend: str, sizes: list[int], old_src: str | None, batches: int,
                per_batch: int) -> list[tuple[str, str, tuple]]:
    out: list[tuple[str, str, tuple]] = []
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        servers = {"new": None} | ({"old": old_src} if old_src else {})
        running, drops = {}, []
        try:
            for label, src in servers.items():
                url, drop = make_database(backend, Path(tmp) / label)
                drops.append(drop)
                running[label] = (url, *start(url, Path(tmp) / label, src))
            for size in sizes:
                for url, _, _ in running.values():
                    fill(url, size)
                # "list all" runs the Python path in both; "limit=1000" is the SQL path.
                plans = [("list all", LIST, size), ("limit=1000", f"{LIST}?limit=1000", size)
                         ] if size <= 1000 else []
                plans += [("limit=100", f"{LIST}?limit=100", 100),
                          ("limit=100 mid", None, 100)]
                for name, path, expect in plans:
                    times: dict[str, list[float]] = {label: [] for label in running}
                    clients = {label: member(port) for label, (_, _, port) in running.items()}
                    for label, client in clients.items():
                        if path is None:   # a page in the middle: marker = the size/2-th id
                            _, _, body = client.call("GET", f"{LIST}?fields=id")
                            ids = sorted(p["id"] for p in json.loads(body)["ikepolicies"])
                            client.mid = f"{LIST}?limit=100&marker={ids[len(ids) // 2]}"
                        else:
                            client.mid = path
                        timed(client, client.mid, [], expect)   # warm up
                    for _ in range(batches):   # alternate old and new, batch by batch
                        for label, client in clients.items():
                            if label == "old" and size > 10000:
                                continue   # the old code reads the whole table: seconds
                            for _ in range(per_batch):
                                timed(client, client.mid, times[label], expect)
                    for label, samples in times.items():
                        if samples:
                            out.append((f"{name} @{size}", f"{backend} {label}",
                                        stats(samples)))
        finally:
            for _, proc, _ in running.values():
                proc.terminate()
                proc.wait(timeout=10)
            for drop in drops:
                drop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,mariadb,postgresql")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--old-src", help="src folder of the code to compare with")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--per-batch", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [r for b in args.backends.split(",")
            for r in run_backend(b, sizes, args.old_src, args.batches, args.per_batch)]
    print(f"\nIsthmus list paging, one server process per code version, as a project member "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cores)\n")
    header = f"{'request':<22}{'backend code':<18}{'median ms':>11}{'p99 ms':>10}{'req/s':>9}"
    print(header)
    print("-" * len(header))
    medians = {(req, who): result[0] for req, who, result in rows}
    for req, who, (median, p99, rps) in rows:
        ratio = ""
        if who.endswith(" new") and (req, who[:-4] + " old") in medians:
            ratio = f"  old/new {medians[(req, who[:-4] + ' old')] / median:.2f}"
        print(f"{req:<22}{who:<18}{median:>11.2f}{p99:>10.2f}{rps:>9.0f}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
