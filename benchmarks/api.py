#!/usr/bin/env python3
"""API latency benchmark: create 1000 IKE policies, then time create, show and list-1000.

Runs a real ``isthmus server`` process (one process, as configured) per backend
and drives it over HTTP/1.1 keep-alive from this process. Prints median and p99
latency and sequential requests per second, beside the Neutron 29 reference
measured on this kind of machine (one uWSGI worker, MariaDB).

    python benchmarks/api.py                       # sqlite, mariadb, postgresql
    python benchmarks/api.py --backends sqlite --count 200
    python benchmarks/api.py --objects 1000,100000   # large tables, PostgreSQL

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


OBJECT_PROJECTS = 1000
MEASURED_CONNECTIONS = 10   # the measured project's, on its own router and host


def _build_measured_project(client: Client) -> dict[str, str]:
    """Through the API, as a client would: an external network, a router with a
    gateway and an interface, a VPN service, both policies and a site connection
    (``MEASURED_CONNECTIONS`` of them); returns their ids."""
    def ok(method: str, path: str, body: dict, status: int = 201) -> dict:
        _, got, payload = client.call(method, path, body)
        assert got == status, payload
        return json.loads(payload)

    admin_headers = dict(client.headers, **{"X-Roles": "admin,member,reader"})
    member_headers = dict(client.headers)
    client.headers = admin_headers
    public = ok("POST", "/v2.0/networks", {"network": {"name": "public",
                                                      "router:external": True}})["network"]
    ok("POST", "/v2.0/subnets", {"subnet": {"network_id": public["id"], "ip_version": 4,
                                            "cidr": "172.24.0.0/16", "enable_dhcp": False}})
    client.headers = member_headers
    private = ok("POST", "/v2.0/networks", {"network": {"name": "private"}})["network"]
    subnet = ok("POST", "/v2.0/subnets", {"subnet": {"network_id": private["id"],
                                                     "ip_version": 4,
                                                     "cidr": "10.1.0.0/24"}})["subnet"]
    router = ok("POST", "/v2.0/routers", {"router": {
        "name": "r", "external_gateway_info": {"network_id": public["id"]}}})["router"]
    ok("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
       {"subnet_id": subnet["id"]}, 200)
    service = ok("POST", "/v2.0/vpn/vpnservices", {"vpnservice": {
        "router_id": router["id"], "subnet_id": subnet["id"]}})["vpnservice"]
    ike = ok("POST", "/v2.0/vpn/ikepolicies", {"ikepolicy": {"name": "ike"}})["ikepolicy"]
    ipsec = ok("POST", "/v2.0/vpn/ipsecpolicies", {"ipsecpolicy": {"name": "esp"}})[
        "ipsecpolicy"]
    connections = [ok("POST", "/v2.0/vpn/ipsec-site-connections", {"ipsec_site_connection": {
        "name": f"c{i}", "vpnservice_id": service["id"], "ikepolicy_id": ike["id"],
        "ipsecpolicy_id": ipsec["id"], "peer_address": f"198.51.100.{i + 1}",
        "peer_id": f"198.51.100.{i + 1}", "peer_cidrs": [f"192.168.{i}.0/24"],
        "psk": "secret"}})["ipsec_site_connection"]["id"] for i in range(MEASURED_CONNECTIONS)]
    return {"router": router["id"], "vpnservice": service["id"], "ikepolicy": ike["id"],
            "ipsecpolicy": ipsec["id"], "connection": connections[0]}


def _fill(url: str, ids: dict[str, str], objects: int) -> None:
    """``objects`` site connections in all (the measured project's among them), the
    others spread over ``OBJECT_PROJECTS`` projects, each project with a router (on
    one of 100 other hosts), a VPN service and both policies: copies of the measured
    project's rows, written in bulk with new ids."""
    from isthmus.db.models import Base
    import isthmus.vpn  # noqa: F401  (declares the VPN tables)
    tables = Base.metadata.tables
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        def template(table: str, id_: str) -> dict:
            row = conn.execute(sa.select(tables[table])
                               .where(tables[table].c.id == id_)).mappings().one()
            return dict(row)
        router, service = template("routers", ids["router"]), template("vpnservices",
                                                                        ids["vpnservice"])
        ike, ipsec = template("ikepolicies", ids["ikepolicy"]), template("ipsecpolicies",
                                                                          ids["ipsecpolicy"])
        connection = template("ipsec_site_connections", ids["connection"])
        conn.execute(sa.update(tables["routers"]).where(tables["routers"].c.id == ids["router"])
                     .values(agent_host="measured-host"))
        per_project = (objects - MEASURED_CONNECTIONS) // OBJECT_PROJECTS
        rows: dict[str, list[dict]] = {name: [] for name in (
            "routers", "vpnservices", "ikepolicies", "ipsecpolicies",
            "ipsec_site_connections", "ipsec_peer_cidrs")}
        for p in range(OBJECT_PROJECTS):
            project = f"filler-{p:04d}"
            rid, sid, kid, pid = (str(uuid.uuid4()) for _ in range(4))
            rows["routers"].append({**router, "id": rid, "project_id": project,
                                    "agent_host": f"host-{p % 100}"})
            rows["vpnservices"].append({**service, "id": sid, "project_id": project,
                                        "router_id": rid})
            rows["ikepolicies"].append({**ike, "id": kid, "project_id": project})
            rows["ipsecpolicies"].append({**ipsec, "id": pid, "project_id": project})
            for c in range(per_project):
                cid = str(uuid.uuid4())
                rows["ipsec_site_connections"].append({
                    **connection, "id": cid, "project_id": project, "vpnservice_id": sid,
                    "ikepolicy_id": kid, "ipsecpolicy_id": pid, "name": f"c{c}"})
                rows["ipsec_peer_cidrs"].append({"ipsec_site_connection_id": cid,
                                                 "cidr": "192.168.0.0/24"})
        for name, values in rows.items():
            for start in range(0, len(values), 5000):
                conn.execute(sa.insert(tables[name]), values[start:start + 5000])
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def run_objects(backend: str, objects: int, shows: int, lists: int) -> dict[str, tuple]:
    """A project's list of its site connections, a show, and the agent's fetch for its
    host (what ``get_vpn_services_on_host`` runs) with ``objects`` site connections in
    the tables; the measured project and host hold ``MEASURED_CONNECTIONS`` whatever
    ``objects`` is."""
    from isthmus.db import Database
    from isthmus.vpn.desired_state import services_on_host
    with tempfile.TemporaryDirectory(prefix="isthmus-bench-") as tmp:
        workdir = Path(tmp)
        url, drop = make_database(backend, workdir)
        port = free_port()
        proc = start_server(url, workdir, port)
        try:
            client = Client(port)
            client.headers.update({"X-Project-Id": "measured", "X-User-Id": "bench",
                                   "X-Roles": "member,reader"})
            ids = _build_measured_project(client)
            _fill(url, ids, objects)
            path = "/v2.0/vpn/ipsec-site-connections"
            show_times, list_times = [], []
            for _ in range(shows):
                ms, status, _ = client.call("GET", f"{path}/{ids['connection']}")
                assert status == 200
                show_times.append(ms)
            for _ in range(lists):
                ms, status, payload = client.call("GET", path)
                assert status == 200 and len(json.loads(payload)[
                    "ipsec_site_connections"]) == MEASURED_CONNECTIONS
                list_times.append(ms)
            db = Database(url)
            fetch_times = []
            for _ in range(lists):
                start = time.perf_counter()
                found = db.read_retrying(lambda conn: services_on_host(conn, "measured-host"))
                fetch_times.append((time.perf_counter() - start) * 1000)
                assert len(found) == 1 and len(found[0]["ipsec_site_connections"]) == \
                    MEASURED_CONNECTIONS, found
            db.dispose()
            return {"show": stats(show_times), "list": stats(list_times),
                    "fetch": stats(fetch_times)}
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
    parser.add_argument("--baseline-src", help="src/ of another checkout to run beside this one")
    parser.add_argument("--objects", help="large tables instead: site connections in all, "
                        "e.g. 1000,100000 (default backend postgresql)")
    args = parser.parse_args()
    if args.objects:
        return main_objects(args)
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


def main_objects(args: argparse.Namespace) -> int:
    """``--objects``: one project's list and show, one host's agent fetch, per table size."""
    backends = args.backends if args.backends != "sqlite,mariadb,postgresql" else "postgresql"
    sizes = [int(n) for n in args.objects.split(",")]
    shows, lists = min(args.shows, 500), max(args.lists, 50)
    results = {(b, n): run_objects(b, n, shows, lists)
               for b in backends.split(",") for n in sizes}
    print(f"\nLarge tables: site connections in {OBJECT_PROJECTS} projects; the measured project "
          f"and host hold {MEASURED_CONNECTIONS} (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores)\n")
    header = f"{'operation':<26}{'backend':<12}{'objects':>9}{'median ms':>11}{'p99 ms':>10}"
    print(header)
    print("-" * len(header))
    for op, label in (("list", "project's list (API)"), ("show", "show (API)"),
                      ("fetch", "agent fetch for one host")):
        for (backend, n), result in results.items():
            median, p99, _ = result[op]
            print(f"{label:<26}{backend:<12}{n:>9}{median:>11.2f}{p99:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
