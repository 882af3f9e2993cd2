#!/usr/bin/env python3
"""Isthmus beside the real Neutron 29 + VPNaaS: the IKE policy API, phase by phase.

Starts ``isthmus server`` (one process) on a MariaDB database of its own and
drives it and an already running Neutron (``../shared/anchors/neutron/anchor.sh``:
one uWSGI worker, its own MariaDB) from this process, one request at a time,
alternating small batches between the two inside every phase so that both see
the same machine load:

    create   POST   /v2.0/vpn/ikepolicies        --count objects
    show     GET    /v2.0/vpn/ikepolicies/{id}   --shows requests
    list     GET    /v2.0/vpn/ikepolicies        --lists requests, --count objects each
    update   PUT    /v2.0/vpn/ikepolicies/{id}   --updates requests
    delete   DELETE /v2.0/vpn/ikepolicies/{id}   every object created

It prints per phase the median and p99 latency of both and the ratio
Neutron / Isthmus (goal: 10 or more everywhere), beside Isthmus's targets
(create 3 ms, show 1 ms, list of 1000 30 ms). A third server takes its turn in
the same batches: the floor (``benchmarks/floor_server.py``: bare sockets, the
fewest database round trips, no application), whose median is what no server
code can remove from a request in this run; Neutron over the floor ("best") is
the highest ratio any implementation could reach here.

    bash ../shared/anchors/neutron/anchor.sh install && ... start   # see its README
    python benchmarks/vs_neutron.py [--neutron-url http://127.0.0.1:9696]
    python benchmarks/vs_neutron.py --isthmus-db mysql+mysqldb://root@127.0.0.1:3317/

``--isthmus-db`` is the MariaDB server Isthmus uses (its database
``--database`` is created there and dropped at the end): by default the one on
3306; the anchor's own MariaDB (port 3317 unless ``ANCHOR_DB_PORT`` said
otherwise) is the same engine, and pointing Isthmus at it puts both on the same
server instance too. Both are identified as a member of a fresh project
(Neutron answers an admin's list with every project's objects).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api import free_port, start_server  # noqa: E402  (a sibling script)

# Beside the checkout (../shared/anchors/neutron), as the issue that asked for this put it.
ANCHOR = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "neutron"
if not ANCHOR.is_dir():
    ANCHOR = Path("../shared/anchors/neutron")
try:
    import MySQLdb  # noqa: F401  (mysqlclient: the faster driver, docs/deployment.md)
    MYSQL_DRIVER = "mysqldb"
except ImportError:
    MYSQL_DRIVER = "pymysql"
TARGETS_MS = {"create": 3.0, "show": 1.0, "list": 30.0}
GOAL_RATIO = 10.0
PATH = "/v2.0/vpn/ikepolicies"


class Client:
    """One HTTP connection, opened again when the server closed it (Neutron answers
    ``Connection: close``: its reconnect is part of its time, as for any client)."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.headers = {"Content-Type": "application/json", "Accept": "application/json",
                        **headers}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)

    def call(self, method: str, path: str, body: dict | None = None
             ) -> tuple[float, int, bytes]:
        """One request: milliseconds, status, body."""
        data = None if body is None else json.dumps(body)
        start = time.perf_counter()
        self.conn.request(method, path, body=data, headers=self.headers)
        response = self.conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - start) * 1000
        if response.will_close:
            self.conn.close()
        return elapsed, response.status, payload


def neutron_running(url: str, headers: dict[str, str]) -> bool:
    """Whether Neutron answers its IKE policy list at ``url``."""
    try:
        _, status, _ = Client(url, headers).call("GET", PATH + "?limit=1")
    except OSError:
        return False
    return status == 200


def make_database(server_url: str, name: str) -> tuple[str, Callable[[], None]]:
    """The MariaDB database ``name`` on ``server_url``, created afresh (binary
    collation, as README.md says); returns its URL and a function dropping it."""
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 "
                             "COLLATE utf8mb4_bin")

    def drop() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()
    return server_url.rstrip("/") + "/" + name, drop


def stats(samples: list[float]) -> tuple[float, float]:
    """Median and p99 of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def start_floor(server_url: str, database: str, port: int) -> subprocess.Popen:
    """``floor_server.py`` on ``port``, on ``database`` of the MariaDB at ``server_url``."""
    url = sa.engine.make_url(server_url)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("floor_server.py")),
                             str(port), url.host or "127.0.0.1", str(url.port or 3306),
                             database], stdout=subprocess.PIPE, text=True)
    if proc.stdout is None or proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("floor_server.py did not start")
    return proc


def run(args: argparse.Namespace, isthmus_port: int,
        floor_port: int) -> dict[str, dict[str, list[float]]]:
    """Every phase, alternating batches between the servers; the samples by side."""
    project = f"bench-{uuid.uuid4().hex[:12]}"
    headers = {"X-Project-Id": project, "X-User-Id": "bench", "X-Roles": "member,reader"}
    sides = {"isthmus": Client(f"http://127.0.0.1:{isthmus_port}", headers),
             "neutron": Client(args.neutron_url, headers),
             "floor": Client(f"http://127.0.0.1:{floor_port}", headers)}
    ids: dict[str, list[str]] = {side: [] for side in sides}
    samples: dict[str, dict[str, list[float]]] = {side: {} for side in sides}

    def alternate(phase: str, total: int, batch: int,
                  request: Callable[[str, Client, int], float]) -> None:
        for side in sides:
            samples[side][phase] = []
        done = 0
        while done < total:
            n = min(batch, total - done)
            order = list(sides) if done // batch % 2 == 0 else list(sides)[::-1]
            for side in order:
                for i in range(done, done + n):
                    samples[side][phase].append(request(side, sides[side], i))
            done += n
        print(f"  {phase}: {total} requests each", file=sys.stderr)

    def create(side: str, client: Client, i: int) -> float:
        # sha256: Neutron 29's column has no sha1, its own default (a 500 without it).
        ms, status, payload = client.call("POST", PATH, {"ikepolicy": {
            "name": f"bench-{i}", "ike_version": "v2", "pfs": "group14",
            "auth_algorithm": "sha256"}})
        assert status == 201, (side, status, payload)
        ids[side].append(json.loads(payload)["ikepolicy"]["id"])
        return ms

    def show(side: str, client: Client, i: int) -> float:
        ms, status, payload = client.call("GET", f"{PATH}/{ids[side][i % args.count]}")
        assert status == 200, (side, status, payload)
        return ms

    def listing(side: str, client: Client, i: int) -> float:
        ms, status, payload = client.call("GET", PATH)
        assert status == 200, (side, status, payload)
        found = len(json.loads(payload)["ikepolicies"])
        assert found == args.count, f"{side} listed {found} IKE policies, not {args.count}"
        return ms

    def update(side: str, client: Client, i: int) -> float:
        ms, status, payload = client.call("PUT", f"{PATH}/{ids[side][i % args.count]}",
                                          {"ikepolicy": {"name": f"renamed-{i}"}})
        assert status == 200, (side, status, payload)
        return ms

    def delete(side: str, client: Client, i: int) -> float:
        ms, status, payload = client.call("DELETE", f"{PATH}/{ids[side][i]}")
        assert status == 204, (side, status, payload)
        return ms

    alternate("create", args.count, 20, create)
    alternate("show", args.shows, 50, show)
    alternate("list", args.lists, 2, listing)
    alternate("update", args.updates, 20, update)
    alternate("delete", args.count, 20, delete)
    return samples


def main() -> int:
    """Parse the options, check Neutron runs, start Isthmus, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--neutron-url", default="http://127.0.0.1:"
                        + os.environ.get("ANCHOR_PORT", "9696"))
    parser.add_argument("--isthmus-db", default=f"mysql+{MYSQL_DRIVER}://root@127.0.0.1:3306/",
                        help="the MariaDB server for Isthmus (URL without a database; "
                             "mysqlclient's mysql+mysqldb:// when installed)")
    parser.add_argument("--database", default="isthmus_bench_vs_neutron",
                        help="Isthmus's database there: created afresh, dropped at the end")
    parser.add_argument("--count", type=int, default=1000, help="IKE policies per server")
    parser.add_argument("--shows", type=int, default=1000)
    parser.add_argument("--lists", type=int, default=20)
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--isthmus-src", help="run the Isthmus of this src/ directory "
                        "(another checkout: the numbers before a change)")
    parser.add_argument("--json", help="also write the samples' medians and p99s here")
    args = parser.parse_args()
    probe = {"X-Project-Id": "bench", "X-User-Id": "bench", "X-Roles": "member,reader"}
    if not neutron_running(args.neutron_url, probe):
        print(f"Neutron does not answer at {args.neutron_url}. Start the anchor first:\n"
              f"  bash {ANCHOR}/anchor.sh install && bash {ANCHOR}/anchor.sh db-start && "
              f"bash {ANCHOR}/anchor.sh db-init && bash {ANCHOR}/anchor.sh start\n"
              f"(or pass --neutron-url)", file=sys.stderr)
        return 2
    url, drop = make_database(args.isthmus_db, args.database)
    floor_db = args.database + "_floor"
    _, drop_floor = make_database(args.isthmus_db, floor_db)
    try:
        with tempfile.TemporaryDirectory(prefix="isthmus-vs-neutron-") as tmp:
            port, floor_port = free_port(), free_port()
            proc = start_server(url, Path(tmp), port, src=args.isthmus_src)
            floor = start_floor(args.isthmus_db, floor_db, floor_port)
            try:
                print(f"Isthmus on :{port} ({url}), Neutron at {args.neutron_url}, "
                      f"floor on :{floor_port}", file=sys.stderr)
                samples = run(args, port, floor_port)
            finally:
                floor.kill()
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        drop()
        drop_floor()
    print(f"\nIKE policies, Isthmus (one process, {args.isthmus_db}) beside Neutron 29 "
          f"(one uWSGI worker), alternating batches; python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores\n")
    header = (f"{'phase':<12}{'Isthmus med':>12}{'p99':>9}{'Neutron med':>13}{'p99':>9}"
              f"{'ratio med':>11}{'ratio p99':>11}{'floor med':>11}{'best':>7}   target")
    print(header)
    print("-" * len(header))
    report = {}
    for phase in ("create", "show", "list", "update", "delete"):
        (im, ip), (nm, np_) = stats(samples["isthmus"][phase]), stats(samples["neutron"][phase])
        fm, fp = stats(samples["floor"][phase])
        label = f"list {args.count}" if phase == "list" else phase
        marks = [f"ratio {'ok' if nm / im >= GOAL_RATIO else 'MISS'}"]
        if phase in TARGETS_MS:
            marks.append(f"≤{TARGETS_MS[phase]:g} ms {'ok' if im <= TARGETS_MS[phase] else 'MISS'}")
        print(f"{label:<12}{im:>12.2f}{ip:>9.2f}{nm:>13.2f}{np_:>9.2f}{nm / im:>11.1f}"
              f"{np_ / ip:>11.1f}{fm:>11.2f}{nm / fm:>7.1f}   {', '.join(marks)}")
        report[phase] = {"isthmus_median_ms": im, "isthmus_p99_ms": ip,
                         "neutron_median_ms": nm, "neutron_p99_ms": np_,
                         "floor_median_ms": fm, "floor_p99_ms": fp}
    print("(milliseconds; ratio: Neutron / Isthmus; floor: benchmarks/floor_server.py, no "
          "application at all; best: Neutron / floor, the most any server could reach)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
