#!/usr/bin/env python3
"""Agent sync benchmark: N VPN services (two connections each) on one agent over RabbitMQ.

For each N, seeds a fresh SQLite database (10 services per router), starts a real
``isthmus server`` and then a real ``isthmus agent`` (noop device driver), both
talking through the local RabbitMQ in a vhost of their own, and measures:

* start → all ACTIVE: from starting the agent process to the API showing every
  service and connection ACTIVE, broken down by the "Agent start-up:" lines the
  agent logs at INFO (their timestamps, from the start of the agent process):
  connected to the broker, first fetch (``get_vpn_services_on_host``) answered,
  device drivers done with every router, statuses written back (``update_status``
  answered), and the API showing all ACTIVE;
* one update: from a PUT on one connection (admin_state_up=false) to the API
  showing the status the device driver reported (DOWN).

    python benchmarks/agent_sync.py                 # N = 100, 1000, 10000
    python benchmarks/agent_sync.py --sizes 100,1000
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from isthmus.db import upgrade
import isthmus.vpn  # noqa: F401  (declares the resource tables on the metadata)
from isthmus.db import models as m

HOST = "bench-agent"
PER_ROUTER = 10
EXE = str(Path(sys.executable).with_name("isthmus"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed(url: str, services: int) -> str:
    """Rows straight into the tables (seeding speed is not what is measured)."""
    upgrade(url)
    engine = sa.create_engine(url)
    ids = lambda n: [str(uuid.uuid4()) for _ in range(n)]  # noqa: E731
    routers = ids(-(-services // PER_ROUTER))
    subnets = ids(len(routers))
    service_ids = ids(services)
    with engine.begin() as conn:
        net = str(uuid.uuid4())
        conn.execute(sa.insert(m.Base.metadata.tables["networks"]).values(
            id=net, project_id="bench", name="", description="", admin_state_up=True,
            shared=False, router_external=False, mtu=1500, status="ACTIVE"))
        conn.execute(sa.insert(m.Base.metadata.tables["subnets"]), [
            {"id": s, "project_id": "bench", "name": "", "description": "", "network_id": net,
             "ip_version": 4, "cidr": f"10.{i // 256}.{i % 256}.0/24",
             "gateway_ip": f"10.{i // 256}.{i % 256}.1", "enable_dhcp": True,
             "allocation_pools": "[]", "dns_nameservers": "[]", "host_routes": "[]"}
            for i, s in enumerate(subnets)])
        conn.execute(sa.insert(m.Base.metadata.tables["routers"]), [
            {"id": r, "project_id": "bench", "name": "", "description": "",
             "admin_state_up": True, "status": "ACTIVE", "enable_snat": True,
             "agent_host": HOST} for r in routers])
        ike, ipsec = str(uuid.uuid4()), str(uuid.uuid4())
        policy = {"project_id": "bench", "name": "", "description": "",
                  "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
                  "lifetime_units": "seconds", "lifetime_value": 3600, "pfs": "group14"}
        conn.execute(sa.insert(m.Base.metadata.tables["ikepolicies"]).values(
            id=ike, ike_version="v2", phase1_negotiation_mode="main", **policy))
        conn.execute(sa.insert(m.Base.metadata.tables["ipsecpolicies"]).values(
            id=ipsec, transform_protocol="esp", encapsulation_mode="tunnel", **policy))
        conn.execute(sa.insert(m.Base.metadata.tables["vpnservices"]), [
            {"id": s, "project_id": "bench", "name": "", "description": "",
             "router_id": routers[i // PER_ROUTER], "subnet_id": subnets[i // PER_ROUTER],
             "admin_state_up": True, "status": "PENDING_CREATE",
             "external_v4_ip": "172.24.5.2", "provider": "ipsec"}
            for i, s in enumerate(service_ids)])
        connections = []
        for s in service_ids:
            for _ in range(2):
                connections.append({
                    "id": str(uuid.uuid4()), "project_id": "bench", "name": "",
                    "description": "", "peer_address": "203.0.113.5", "peer_id": "peer",
                    "local_id": "", "route_mode": "static", "mtu": 1500,
                    "initiator": "bi-directional", "auth_mode": "psk", "psk": "secret",
                    "dpd_action": "hold", "dpd_interval": 30, "dpd_timeout": 120,
                    "status": "PENDING_CREATE", "admin_state_up": True, "vpnservice_id": s,
                    "ikepolicy_id": ike, "ipsecpolicy_id": ipsec})
        conn.execute(sa.insert(m.Base.metadata.tables["ipsec_site_connections"]), connections)
        conn.execute(sa.insert(m.Base.metadata.tables["ipsec_peer_cidrs"]), [
            {"cidr": "10.200.0.0/24", "ipsec_site_connection_id": c["id"]}
            for c in connections])
    engine.dispose()
    return connections[0]["id"]


def get(port: int, path: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("GET", path)
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def pending(port: int) -> bool:
    """Whether any service or connection is not ACTIVE yet (one id asked for: the poll
    must not load the server whose work it measures)."""
    for path, key in (("/v2.0/vpn/vpnservices", "vpnservices"),
                      ("/v2.0/vpn/ipsec-site-connections", "ipsec_site_connections")):
        for status in ("PENDING_CREATE", "DOWN"):
            if get(port, f"{path}?status={status}&fields=id&limit=1")[key]:
                return True
    return False


STEPS = (("connected", "connected to the message bus"), ("fetched", "first fetch answered"),
         ("drivers", "device drivers synced"), ("written", "statuses of"))


def startup_steps(log: Path, spawned: float) -> dict[str, float]:
    """Seconds from ``spawned`` (the agent's process start, epoch) to each start-up line."""
    steps = {}
    for line in log.read_text().splitlines():
        if "Agent start-up: " not in line:
            continue
        at = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        text = line.split("Agent start-up: ", 1)[1]
        for name, prefix in STEPS:
            if text.startswith(prefix) and name not in steps:
                steps[name] = at - spawned
    return steps


def run(size: int, workdir: Path, vhost: str) -> tuple[float, float, dict[str, float]]:
    url = f"sqlite:///{workdir}/bench.db"
    first_conn = seed(url, size)
    port = free_port()
    conf = workdir / "isthmus.conf"
    conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nhost = {HOST}\n"
                    f"state_path = {workdir}\ntransport_url = "
                    f"rabbit://guest:guest@127.0.0.1:5672/{vhost}\n\n[database]\n"
                    f"connection = {url}\n\n[vpnagent]\nrpc_timeout = 120\n")
    log = open(workdir / "bench.log", "w")
    procs = [subprocess.Popen([EXE, "server", "--config-file", str(conf)], stdout=log,
                              stderr=subprocess.STDOUT)]
    try:
        deadline = time.time() + 60
        while True:
            try:
                get(port, "/")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        agent_log = workdir / "agent.log"
        spawned = time.time()
        started = time.perf_counter()
        procs.append(subprocess.Popen([EXE, "agent", "--config-file", str(conf)],
                                      stdout=open(agent_log, "w"), stderr=subprocess.STDOUT))
        while pending(port):
            time.sleep(0.02)
        all_active = time.perf_counter() - started
        steps = startup_steps(agent_log, spawned)

        body = json.dumps({"ipsec_site_connection": {"admin_state_up": False}})
        started = time.perf_counter()
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        client.request("PUT", f"/v2.0/vpn/ipsec-site-connections/{first_conn}", body=body,
                       headers={"Content-Type": "application/json"})
        assert client.getresponse().status == 200
        path = f"/v2.0/vpn/ipsec-site-connections/{first_conn}?fields=status"
        while get(port, path)["ipsec_site_connection"]["status"] != "DOWN":
            time.sleep(0.005)
        return all_active, time.perf_counter() - started, steps
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        vhost = f"isthmus-bench-{uuid.uuid4().hex[:8]}"
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*",
                        ".*"], check=True, capture_output=True)
        try:
            with tempfile.TemporaryDirectory(prefix="isthmus-agent-bench-") as tmp:
                rows.append((size, *run(size, Path(tmp), vhost)))
        finally:
            subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)
    print("\nIsthmus agent sync over RabbitMQ, noop device driver, one agent, "
          f"{PER_ROUTER} services per router, 2 connections per service\n")
    print(f"{'services':>9}{'connections':>13}{'start → all ACTIVE':>21}{'per 1000 svc':>14}"
          f"{'one update → status':>22}")
    for size, all_active, update, _ in rows:
        print(f"{size:>9}{2 * size:>13}{all_active:>19.2f} s{all_active * 1000 / size:>12.2f} s"
              f"{update * 1000:>19.1f} ms")
    print("\nBreakdown, seconds from the agent process's start (from the agent's INFO lines"
          " 'Agent start-up: ...'):\n")
    print(f"{'services':>9}{'connected':>11}{'fetched':>10}{'drivers':>10}{'written':>10}"
          f"{'API ACTIVE':>12}")
    for size, all_active, _, steps in rows:
        cells = "".join(f"{steps[name]:>{w}.2f}" if name in steps else f"{'?':>{w}}"
                        for (name, _), w in zip(STEPS, (11, 10, 10, 10)))
        print(f"{size:>9}{cells}{all_active:>12.2f}")
    print("\nconnected: python start-up and imports, the broker connection and the agent's"
          " RPC listener;\nfetched: + heartbeat and get_vpn_services_on_host answered;"
          " drivers: + every router through\nthe device driver; written: + every"
          " update_status answered; API ACTIVE: + the API shows it.")
    print("\ngoal: 1000 services ACTIVE in under 2 s, 10 000 under 10 s, growing linearly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
