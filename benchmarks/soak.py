#!/usr/bin/env python3
"""Soak: mixed load with faults against 2 workers on PostgreSQL + RabbitMQ + 2 agents.

Starts a whole deployment of its own on this machine:

* database ``isthmus_soak`` on PostgreSQL 127.0.0.1:5432 (user postgres, trust),
  migrated with ``isthmus db upgrade``;
* vhost ``isthmus_soak`` on RabbitMQ 127.0.0.1:5672 (guest/guest);
* ``isthmus server --workers 2`` and two ``isthmus agent`` processes (noop
  device driver, hosts ``soak-agent-a`` and ``soak-agent-b``);

builds a small topology (external network and subnet, routers with a gateway,
each with a private subnet on an interface), then runs ``--clients`` threads,
each with its own keep-alive HTTP connection, for ``--duration`` seconds doing
a mixed workload: create / show / list / update / delete of IKE policies, IPsec
policies, VPN services and site connections, and routers created and deleted.
Each client only deletes and updates what it created itself, and a ledger keeps
every acknowledged (2xx) create, update and delete; an answer that did not come
(connection error, timeout, 5xx) is resolved by reading the object back.

Faults, once each, at 25 %, 50 % and 75 % of the run:

1. SIGKILL of agent ``soak-agent-a``, restarted after ``agent_down_time`` + 2 s;
2. RabbitMQ restarted (``rabbitmqctl stop_app`` then ``start_app``: every
   connection dropped, queues of the vhost kept or recreated);
3. PostgreSQL restarted (``pg_ctlcluster --skip-systemctl-redirect VER main restart``).

**The RabbitMQ and PostgreSQL restarts hit every other user of those servers
on this machine.** Use ``--no-service-restarts`` (kill the agent only) when
anything else runs against them, ``--no-faults`` for none at all.

After the run it waits up to ``--settle`` seconds for nothing to be PENDING and
checks, in the database (read-only SQL) and through the API:

* every acknowledged create not later deleted is there, with the name of its
  last acknowledged update; every acknowledged delete is gone;
* no router, VPN service or site connection in ``PENDING_*``;
* no orphan rows: connections without their service or policies, services
  without their router or subnet, router ports whose router is gone, IP
  allocations without their port, peer CIDRs without their connection.

Prints when each fault happens and the errors in the 5 s before to 30 s after
it, then: requests and throughput overall and per minute, p50/p99 per operation,
errors by HTTP code and by connection error, and PASS/FAIL of the consistency
check with details. Exit status 0 only on PASS. Processes, the database and the
vhost are removed at the end, also on Ctrl-C (logs are kept in ``--workdir``
or a temporary directory printed at the start).

    .venv/bin/python benchmarks/soak.py                         # 600 s, 64 clients, all faults
    .venv/bin/python benchmarks/soak.py --duration 60 --clients 16 --no-service-restarts
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import sqlalchemy as sa

EXE = str(Path(sys.executable).with_name("isthmus"))
DB_NAME = "isthmus_soak"
VHOST = "isthmus_soak"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
AGENTS = ("soak-agent-a", "soak-agent-b")
AGENT_DOWN_TIME = 10
ROUTERS = 4
PROJECT = "soak"
IKE, IPSEC = "/v2.0/vpn/ikepolicies", "/v2.0/vpn/ipsecpolicies"
SERVICES, CONNS = "/v2.0/vpn/vpnservices", "/v2.0/vpn/ipsec-site-connections"
# kind -> (collection path, body key, table)
KINDS = {"ike": (IKE, "ikepolicy", "ikepolicies"),
         "ipsec": (IPSEC, "ipsecpolicy", "ipsecpolicies"),
         "service": (SERVICES, "vpnservice", "vpnservices"),
         "conn": (CONNS, "ipsec_site_connection", "ipsec_site_connections"),
         "router": ("/v2.0/routers", "router", "routers")}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- deployment

class Deployment:
    """Database, vhost, server and agents of this run; ``close()`` removes them all."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.workdir = workdir
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = PG + DB_NAME
        self.procs: dict[str, subprocess.Popen] = {}
        self.maint = sa.create_engine(PG + "postgres", isolation_level="AUTOCOMMIT",
                                      pool_pre_ping=True)
        self.engine: sa.Engine | None = None
        self.db_created = self.vhost_created = False

    def conf(self, name: str) -> Path:
        state = self.workdir / name
        state.mkdir(exist_ok=True)
        path = self.workdir / f"{name}.conf"
        path.write_text(
            f"[DEFAULT]\nhost = {name}\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
            f"state_path = {state}\n"
            f"transport_url = rabbit://guest:guest@127.0.0.1:5672/{VHOST}\n"
            f"agent_down_time = {AGENT_DOWN_TIME}\n"
            f"[database]\nconnection = {self.db_url}\n"
            "[vpnagent]\nreport_interval = 1\nresync_interval = 5\n"
            "status_check_interval = 2\nrpc_timeout = 10\n")
        return path

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "a") as out:
            self.procs[name] = subprocess.Popen([EXE, *args], stdout=out,
                                                stderr=subprocess.STDOUT)
        return self.procs[name]

    def up(self) -> None:
        with self.maint.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {DB_NAME}")
        self.db_created = True
        rabbitmqctl("delete_vhost", VHOST, check=False)
        rabbitmqctl("add_vhost", VHOST)
        self.vhost_created = True
        rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
        subprocess.run([EXE, "db", "upgrade", "--config-file", str(self.conf("migrate"))],
                       check=True, capture_output=True)
        self.engine = sa.create_engine(self.db_url, pool_pre_ping=True)
        server_log = self.workdir / "server.log"
        proc = self.start("server", "server", "--config-file", str(self.conf("server")),
                          "--workers", str(self.workers))
        deadline = time.time() + 90
        while server_log.read_text().count("API listening") < self.workers:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"server did not start; see {server_log}")
            time.sleep(0.2)
        for host in AGENTS:
            self.start_agent(host)
        admin = api_client(self.url, admin=True)
        deadline = time.time() + 60
        while sorted(a["host"] for a in admin.get("/v2.0/agents").json()["agents"]
                     if a["alive"]) != sorted(AGENTS):
            if time.time() > deadline:
                raise RuntimeError("agents not alive after 60 s")
            time.sleep(0.5)
        admin.close()

    def start_agent(self, host: str) -> None:
        self.start(host, "agent", "--config-file", str(self.conf(host)))

    def close(self) -> None:
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.engine is not None:
            self.engine.dispose()
        if self.vhost_created:
            rabbitmqctl("delete_vhost", VHOST, check=False)
        if self.db_created:
            for _ in range(30):   # PostgreSQL may be coming back from its restart
                try:
                    with self.maint.connect() as conn:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
                    break
                except sa.exc.OperationalError:
                    time.sleep(1)
        self.maint.dispose()


def rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", *args], check=check, capture_output=True, timeout=120)


def pg_version() -> str:
    versions = sorted((p.name for p in Path("/etc/postgresql").iterdir()
                       if (p / "main").is_dir()), key=int)
    return versions[-1]


def api_client(url: str, admin: bool = False) -> httpx.Client:
    headers = ({"X-Project-Id": "admin", "X-Roles": "admin"} if admin
               else {"X-Project-Id": PROJECT})
    return httpx.Client(base_url=url, timeout=30, headers=headers,
                        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))


@dataclass
class Topology:
    routers: list[tuple[str, str]]   # (router, private subnet attached to it)
    public: str


def build_topology(url: str) -> Topology:
    admin, member = api_client(url, admin=True), api_client(url)

    def ok(resp: httpx.Response, status: int = 201) -> dict:
        assert resp.status_code == status, resp.text
        return resp.json()
    public = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "public", "router:external": True}}))["network"]["id"]
    ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": public, "ip_version": 4, "cidr": "172.24.0.0/16",
        "enable_dhcp": False}}))
    net = ok(member.post("/v2.0/networks", json={"network": {"name": "private"}}))[
        "network"]["id"]
    routers = []
    for i in range(ROUTERS):
        subnet = ok(member.post("/v2.0/subnets", json={"subnet": {
            "network_id": net, "ip_version": 4, "cidr": f"10.{i + 1}.0.0/24"}}))[
            "subnet"]["id"]
        router = ok(member.post("/v2.0/routers", json={"router": {
            "name": f"soak-r{i}", "external_gateway_info": {"network_id": public}}}))[
            "router"]["id"]
        ok(member.put(f"/v2.0/routers/{router}/add_router_interface",
                      json={"subnet_id": subnet}), 200)
        routers.append((router, subnet))
    admin.close()
    member.close()
    return Topology(routers, public)


# ---------------------------------------------------------------- ledger and stats

@dataclass
class Ledger:
    """What the API acknowledged. ``alive``: kind -> id -> expected name (None: any)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    alive: dict = field(default_factory=lambda: collections.defaultdict(dict))
    deleted: dict = field(default_factory=lambda: collections.defaultdict(set))
    unresolved_creates: collections.Counter = field(default_factory=collections.Counter)

    def created(self, kind: str, id_: str, name: str | None) -> None:
        with self.lock:
            self.alive[kind][id_] = name

    def renamed(self, kind: str, id_: str, name: str | None) -> None:
        with self.lock:
            if id_ in self.alive[kind]:
                self.alive[kind][id_] = name

    def gone(self, kind: str, id_: str) -> None:
        with self.lock:
            self.alive[kind].pop(id_, None)
            self.deleted[kind].add(id_)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[float]] = collections.defaultdict(list)
        self.done: list[float] = []                       # completion times (monotonic)
        self.errors: list[tuple[float, str, str]] = []    # (time, op, code)

    def record(self, op: str, started: float, code: str | None) -> None:
        now = time.monotonic()
        with self.lock:
            self.samples[op].append(now - started)
            self.done.append(now)
            if code is not None:
                self.errors.append((now, op, code))


# ---------------------------------------------------------------- clients

class Client(threading.Thread):
    """One keep-alive connection; owns (creates, updates, deletes) its own objects."""

    MAX = {"ike": 4, "ipsec": 4, "service": 3, "conn": 4}

    def __init__(self, n: int, url: str, topo: Topology, ledger: Ledger, stats: Stats,
                 stop: threading.Event) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.n, self.url, self.topo = n, url, topo
        self.ledger, self.stats, self.stop = ledger, stats, stop
        self.rng = random.Random(n)
        self.mine: dict[str, dict[str, str]] = {k: {} for k in KINDS}   # kind -> id -> name
        self.conn_refs: dict[str, tuple[str, str, str]] = {}          # conn -> (svc, ike, ipsec)
        self.counter = 0
        self.http = api_client(url)

    # One request: returns the response, or None when no answer came.
    def call(self, op: str, method: str, path: str, body: dict | None = None
             ) -> httpx.Response | None:
        started = time.monotonic()
        try:
            resp = self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            self.stats.record(op, started, f"conn:{type(exc).__name__}")
            return None
        ok = resp.status_code < 400
        self.stats.record(op, started, None if ok else str(resp.status_code))
        return resp

    def name(self, kind: str) -> str:
        self.counter += 1
        return f"c{self.n}-{kind}-{self.counter}"

    def read_back(self, kind: str, id_: str) -> dict | None | bool:
        """The object as stored (None: it does not exist); retried until the server
        answers, False if it never did (the run is stopping)."""
        path, key, _ = KINDS[kind]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                resp = self.http.get(f"{path}/{id_}")
                if resp.status_code == 200:
                    return resp.json()[key]
                if resp.status_code == 404:
                    return None
            except httpx.TransportError:
                pass
            time.sleep(1)
        return False

    def create(self, kind: str, body: dict) -> str | None:
        path, key, _ = KINDS[kind]
        name = self.name(kind)
        body = {key: {"name": name, **body}}
        resp = self.call(f"create {kind}", "POST", path, body)
        if resp is not None and resp.status_code == 201:
            id_ = resp.json()[key]["id"]
            self.ledger.created(kind, id_, name)
            self.mine[kind][id_] = name
            return id_
        if resp is None or resp.status_code >= 500:
            # It may exist without its id ever reaching us: counted, not checked.
            with self.ledger.lock:
                self.ledger.unresolved_creates[kind] += 1
        return None

    def update(self, kind: str, id_: str) -> None:
        path, key, _ = KINDS[kind]
        name = self.name(kind)
        resp = self.call(f"update {kind}", "PUT", f"{path}/{id_}", {key: {"name": name}})
        if resp is not None and resp.status_code == 200:
            self.ledger.renamed(kind, id_, name)
            self.mine[kind][id_] = name
        elif resp is None or resp.status_code >= 500:
            found = self.read_back(kind, id_)
            if found is False:
                self.ledger.renamed(kind, id_, None)    # either name will do
            elif found is not None:
                self.ledger.renamed(kind, id_, found["name"])
                self.mine[kind][id_] = found["name"]

    def delete(self, kind: str, id_: str) -> None:
        path, _, _ = KINDS[kind]
        resp = self.call(f"delete {kind}", "DELETE", f"{path}/{id_}")
        if resp is not None and resp.status_code in (204, 404):
            gone = resp.status_code == 204 or self.read_back(kind, id_) is None
        elif resp is None or resp.status_code >= 500:
            found = self.read_back(kind, id_)
            if found is False:
                return                                   # unknown: keep it as alive
            gone = found is None
        else:
            return                                       # 409 (in use, pending): stays
        if gone:
            self.ledger.gone(kind, id_)
            del self.mine[kind][id_]
            self.conn_refs.pop(id_, None)

    def pick(self, kind: str) -> str | None:
        ids = list(self.mine[kind])
        return self.rng.choice(ids) if ids else None

    def step(self) -> None:
        r = self.rng.random()
        m = self.mine
        if r < 0.30:                                     # show
            kind = self.rng.choice(("ike", "ipsec", "service", "conn"))
            id_ = self.pick(kind)
            if id_:
                self.call(f"show {kind}", "GET", f"{KINDS[kind][0]}/{id_}")
                return
            r = 0.5
        if r < 0.40:                                     # list (a page of the project's)
            kind = self.rng.choice(("ike", "ipsec", "service", "conn"))
            self.call(f"list {kind}", "GET", f"{KINDS[kind][0]}?limit=50")
            return
        if r < 0.52:                                     # update (a policy only while unused)
            kind = self.rng.choice(("ike", "ipsec", "service", "conn"))
            used = {x for refs in self.conn_refs.values() for x in refs}
            free = [i for i in m[kind] if kind in ("service", "conn") or i not in used]
            id_ = self.rng.choice(free) if free else None
            if id_:
                self.update(kind, id_)
                return
        if r < 0.80:                                     # create (or delete when full)
            for kind in self.rng.sample(("ike", "ipsec", "service", "conn"), 4):
                if len(m[kind]) >= self.MAX[kind]:
                    continue
                if kind in ("ike", "ipsec"):
                    self.create(kind, {})
                elif kind == "service":
                    router, subnet = self.rng.choice(self.topo.routers)
                    self.create(kind, {"router_id": router, "subnet_id": subnet})
                else:
                    svc, ike, ipsec = self.pick("service"), self.pick("ike"), self.pick("ipsec")
                    if not (svc and ike and ipsec):
                        continue
                    conn = self.create(kind, {
                        "vpnservice_id": svc, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
                        "peer_address": f"203.0.113.{self.rng.randint(1, 254)}",
                        "peer_id": "peer", "psk": "secret",
                        "peer_cidrs": [f"10.{self.rng.randint(100, 250)}."
                                       f"{self.rng.randint(0, 255)}.0/24"]})
                    if conn:
                        self.conn_refs[conn] = (svc, ike, ipsec)
                return
        if r < 0.95:                                     # delete what nothing uses
            used = {x for refs in self.conn_refs.values() for x in refs}
            for kind in self.rng.sample(("conn", "service", "ike", "ipsec"), 4):
                free = [i for i in m[kind] if i not in used]
                if free:
                    self.delete(kind, self.rng.choice(free))
                    return
            return
        # routers: one created with a gateway and deleted again (its ports must go)
        router = self.create("router", {"external_gateway_info": {
            "network_id": self.topo.public}})
        if router:
            self.delete("router", router)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.http.close()


# ---------------------------------------------------------------- faults

@dataclass
class Fault:
    name: str
    started: float = 0.0
    ended: float = 0.0
    note: str = ""


def run_fault(kind: str, dep: Deployment, fault: Fault) -> None:
    fault.started = time.monotonic()
    if kind == "agent":
        proc = dep.procs[AGENTS[0]]
        log(f"FAULT: SIGKILL agent {AGENTS[0]} (pid {proc.pid})")
        proc.kill()
        proc.wait()
        time.sleep(AGENT_DOWN_TIME + 2)
        log(f"FAULT: restarting agent {AGENTS[0]}")
        dep.start_agent(AGENTS[0])
    elif kind == "rabbitmq":
        log("FAULT: RabbitMQ stop_app")
        rabbitmqctl("stop_app")
        time.sleep(5)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup", check=False)
        log("FAULT: RabbitMQ start_app done")
    elif kind == "postgresql":
        version = pg_version()
        log(f"FAULT: PostgreSQL {version}/main restart")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main",
                        "restart"], check=True, capture_output=True, timeout=120)
        log("FAULT: PostgreSQL back")
    fault.ended = time.monotonic()
    fault.note = f"took {fault.ended - fault.started:.1f} s"


# ---------------------------------------------------------------- consistency

ORPHANS = {
    "connections without their service":
        "SELECT c.id FROM ipsec_site_connections c LEFT JOIN vpnservices s "
        "ON s.id = c.vpnservice_id WHERE s.id IS NULL",
    "connections without their IKE/IPsec policy":
        "SELECT c.id FROM ipsec_site_connections c LEFT JOIN ikepolicies i "
        "ON i.id = c.ikepolicy_id LEFT JOIN ipsecpolicies p ON p.id = c.ipsecpolicy_id "
        "WHERE i.id IS NULL OR p.id IS NULL",
    "peer CIDRs without their connection":
        "SELECT p.ipsec_site_connection_id FROM ipsec_peer_cidrs p LEFT JOIN "
        "ipsec_site_connections c ON c.id = p.ipsec_site_connection_id WHERE c.id IS NULL",
    "services without their router or subnet":
        "SELECT s.id FROM vpnservices s LEFT JOIN routers r ON r.id = s.router_id "
        "LEFT JOIN subnets n ON n.id = s.subnet_id WHERE r.id IS NULL OR n.id IS NULL",
    "router ports whose router is gone":
        "SELECT p.id FROM ports p LEFT JOIN routers r ON r.id = p.device_id "
        "WHERE p.device_owner LIKE 'network:router%' AND r.id IS NULL",
    "IP allocations without their port":
        "SELECT a.port_id FROM ip_allocations a LEFT JOIN ports p ON p.id = a.port_id "
        "WHERE p.id IS NULL",
}
PENDING = {t: f"SELECT id, status FROM {t} WHERE status LIKE 'PENDING%'"
           for t in ("routers", "vpnservices", "ipsec_site_connections")}


def pending_rows(engine: sa.Engine) -> dict[str, list]:
    with engine.connect() as conn:
        return {t: conn.execute(sa.text(q)).all() for t, q in PENDING.items()}


def consistency(dep: Deployment, ledger: Ledger, settle_s: float) -> list[str]:
    """Problems found (empty: PASS)."""
    problems: list[str] = []
    deadline = time.monotonic() + settle_s
    while True:
        try:
            pending = pending_rows(dep.engine)
            if not any(pending.values()) or time.monotonic() > deadline:
                break
        except sa.exc.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(1)
    for table, rows in pending.items():
        if rows:
            problems.append(f"{len(rows)} {table} still PENDING after {settle_s:.0f} s: "
                            f"{[tuple(r) for r in rows[:5]]}")
    with dep.engine.connect() as conn:
        for kind, (_, _, table) in KINDS.items():
            stored = dict(conn.exec_driver_sql(f"SELECT id, name FROM {table}").all())
            missing = [i for i in ledger.alive[kind] if i not in stored]
            wrong = [(i, n, stored[i]) for i, n in ledger.alive[kind].items()
                     if i in stored and n is not None and stored[i] != n]
            back = [i for i in ledger.deleted[kind] if i in stored]
            if missing:
                problems.append(f"{kind}: {len(missing)} acknowledged creates missing: "
                                f"{missing[:5]}")
            if wrong:
                problems.append(f"{kind}: {len(wrong)} with a name other than the last "
                                f"acknowledged update (id, expected, stored): {wrong[:5]}")
            if back:
                problems.append(f"{kind}: {len(back)} acknowledged deletes still present: "
                                f"{back[:5]}")
        for what, query in ORPHANS.items():
            rows = conn.execute(sa.text(query)).all()
            if rows:
                problems.append(f"orphans, {what}: {len(rows)}: {[r[0] for r in rows[:5]]}")
    # And through the API: every acknowledged live connection answers, not PENDING.
    admin = api_client(dep.url, admin=True)
    try:
        for kind in ("service", "conn"):
            path, key, _ = KINDS[kind]
            for id_ in list(ledger.alive[kind]):
                resp = admin.get(f"{path}/{id_}")
                if resp.status_code != 200:
                    problems.append(f"API: {kind} {id_} answers {resp.status_code}")
                elif resp.json()[key]["status"].startswith("PENDING"):
                    problems.append(f"API: {kind} {id_} is {resp.json()[key]['status']}")
    finally:
        admin.close()
    return problems


# ---------------------------------------------------------------- report

def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def report(stats: Stats, started: float, ended: float, faults: list[Fault]) -> None:
    total = len(stats.done)
    elapsed = ended - started
    print(f"\n== throughput: {total} requests in {elapsed:.0f} s = {total / elapsed:.1f} req/s")
    per_min = collections.Counter(int((t - started) // 60) for t in stats.done if t <= ended)
    for minute in sorted(per_min):
        span = min(60.0, elapsed - 60 * minute)
        if span < 1:
            continue
        errs = sum(1 for t, _, _ in stats.errors if int((t - started) // 60) == minute)
        print(f"   minute {minute + 1:>2}: {per_min[minute]:>7} requests "
              f"{per_min[minute] / span:>8.1f} req/s  {errs:>5} errors")
    print(f"\n== latency per operation (ms)\n   {'operation':<18}{'count':>8}{'p50':>9}"
          f"{'p99':>9}{'max':>9}{'errors':>8}")
    errors_by_op = collections.Counter(op for _, op, _ in stats.errors)
    for op in sorted(stats.samples):
        s = stats.samples[op]
        print(f"   {op:<18}{len(s):>8}{pct(s, .5) * 1e3:>9.1f}{pct(s, .99) * 1e3:>9.1f}"
              f"{max(s) * 1e3:>9.1f}{errors_by_op[op]:>8}")
    codes = collections.Counter(code for _, _, code in stats.errors)
    print("\n== errors by code: " + (", ".join(f"{c}: {n}" for c, n in codes.most_common())
                                    or "none"))
    print("   (400/409: the API refusing a change to a PENDING service or connection, an"
          " answer, not a failure;\n    5xx and conn:* are failures)")
    by_op_code = collections.Counter((op, code) for _, op, code in stats.errors)
    for (op, code), n in by_op_code.most_common(15):
        print(f"   {code:<28}{op:<18}{n:>6}")
    for f in faults:
        if not f.started:
            continue
        lo, hi = f.started - 5, f.ended + 30
        window = collections.Counter(code for t, _, code in stats.errors if lo <= t <= hi)
        reqs = sum(1 for t in stats.done if lo <= t <= hi)
        print(f"\n== fault {f.name} at +{f.started - started:.0f} s ({f.note}): "
              f"{reqs} requests, {sum(window.values())} errors from 5 s before to 30 s "
              f"after: {dict(window.most_common()) or 'none'}")


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--settle", type=float, default=60,
                        help="seconds to wait for nothing PENDING after the load")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--no-service-restarts", action="store_true",
                        help="kill the agent only: leave RabbitMQ and PostgreSQL alone")
    parser.add_argument("--workdir", help="logs here (default: a new temporary directory)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="isthmus-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    log(f"logs in {workdir}")
    dep = Deployment(workdir, args.workers)
    stop = threading.Event()
    clients: list[Client] = []
    try:
        dep.up()
        log(f"server ({args.workers} workers) on {dep.url}, agents {', '.join(AGENTS)} alive")
        topo = build_topology(dep.url)
        log(f"topology: {len(topo.routers)} routers with a gateway and a subnet each")
        ledger, stats = Ledger(), Stats()
        plan = [] if args.no_faults else (
            ["agent"] if args.no_service_restarts else ["agent", "rabbitmq", "postgresql"])
        at = [args.duration * (i + 1) / (len(plan) + 1) for i in range(len(plan))]
        faults = [Fault(k) for k in plan]
        clients = [Client(n, dep.url, topo, ledger, stats, stop) for n in range(args.clients)]
        started = time.monotonic()
        for c in clients:
            c.start()
        log(f"{args.clients} clients for {args.duration:.0f} s; faults: "
            + (", ".join(f"{k} at +{t:.0f} s" for k, t in zip(plan, at)) or "none"))
        for fault, when in zip(faults, at):
            time.sleep(max(0.0, started + when - time.monotonic()))
            run_fault(fault.name, dep, fault)
        time.sleep(max(0.0, started + args.duration - time.monotonic()))
        stop.set()
        ended = time.monotonic()
        for c in clients:
            c.join(timeout=150)     # a client may be reading back an unanswered write
        log("load stopped")
        report(stats, started, ended, faults)
        unresolved = dict(ledger.unresolved_creates)
        log(f"consistency check (settle up to {args.settle:.0f} s)...")
        problems = consistency(dep, ledger, args.settle)
        counts = {k: len(v) for k, v in ledger.alive.items()}
        deleted = {k: len(v) for k, v in ledger.deleted.items()}
        print(f"\n== consistency: acknowledged and alive {counts}, acknowledged deleted "
              f"{deleted}; creates without an answer (not checked): {unresolved or 'none'}")
        if problems:
            print("   FAIL")
            for p in problems:
                print(f"   - {p}")
            return 1
        print("   PASS: every acknowledged write present, every acknowledged delete gone, "
              "nothing PENDING, no orphan rows")
        return 0
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        stop.set()
        dep.close()
        log(f"processes stopped, database {DB_NAME} and vhost {VHOST} removed; logs in {workdir}")


if __name__ == "__main__":
    sys.exit(main())
