"""A RabbitMQ outage: the API keeps answering, and agents recover as soon as it is back.

Server and agent are processes (as in test_rabbitmq.py) whose ``transport_url``
points at a :class:`ForwardingProxy` in front of the machine's RabbitMQ; the
test cuts and restores the proxy, never the shared broker. ``resync_interval``
is 600 s, so only the paths under test (background resend, reconnect resync)
can bring changes and statuses back within the hang guards.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.agent.conftest import wait_until
from tests.agent.test_rabbitmq import (Cluster, conn_status, connection, proxy,  # noqa: F401
                                       site, vhost)  # (proxy, vhost: fixtures)
from tests.api.test_vpn_resources import CONNS, SERVICES
from tests.api.topology import ok
from tests.rpc.forwarding_proxy import ForwardingProxy

HANG_GUARD_S = 20


def proxied_cluster(tmp_path, vhost: str, proxy: ForwardingProxy,  # noqa: F811
                    agent_down_time: int) -> Cluster:
    """A server and one agent ``agent-a`` that reach RabbitMQ through ``proxy``."""
    c = Cluster(tmp_path, proxy.url(vhost), agent_down_time=agent_down_time,
                resync_interval=600)
    c.upgrade_db()
    c.start_server()
    c.start_agent("agent-a")
    return c


@pytest.fixture
def clients():
    made: list[httpx.Client] = []

    def make(url: str) -> tuple[httpx.Client, httpx.Client]:
        admin = httpx.Client(base_url=url, timeout=HANG_GUARD_S,
                             headers={"X-Project-Id": "admin", "X-Roles": "admin"})
        member = httpx.Client(base_url=url, timeout=HANG_GUARD_S,
                              headers={"X-Project-Id": "demo"})
        made.extend((admin, member))
        return admin, member

    yield make
    for client in made:
        client.close()


def vpn_sites(admin: httpx.Client, member: httpx.Client, count: int) -> list[str]:
    """``count`` routers with one connection each, all ACTIVE; returns the connections."""
    wait_until(lambda: any(a["alive"] for a in admin.get("/v2.0/agents").json()["agents"]),
               timeout_s=30)
    public = ok(admin.post("/v2.0/networks", json={"network": {
        "router:external": True}}))["network"]["id"]
    ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": public, "ip_version": 4, "cidr": "172.24.5.0/24"}}))
    conns = []
    for i in range(count):
        router, subnet = site(admin, member, public, f"10.{i + 1}.0.0/24")
        conns.append(connection(member, router, subnet, f"10.{50 + i}.0.0/24"))
    for c in conns:
        wait_until(lambda: conn_status(member, c) == "ACTIVE", timeout_s=30)
    return conns


def test_api_answers_while_the_broker_is_down_and_changes_reach_the_agent_after(
        tmp_path, vhost, proxy, clients):  # noqa: F811
    cluster = proxied_cluster(tmp_path, vhost, proxy, agent_down_time=600)
    try:
        admin, member = clients(cluster.url)
        conns = vpn_sites(admin, member, 2)
        proxy.cut()

        # More writes than the server has API threads (8), and reads among them.
        def put(i: int) -> int:
            body = {"ipsec_site_connection": {"name": f"during-outage-{i}",
                                              "admin_state_up": False}}
            return member.put(f"{CONNS}/{conns[0]}", json=body).status_code

        def get(i: int) -> int:
            return member.get(CONNS if i % 2 else SERVICES).status_code

        with ThreadPoolExecutor(24) as pool:
            puts = [pool.submit(put, i) for i in range(12)]
            gets = [pool.submit(get, i) for i in range(12)]
            answers = [f.result() for f in puts + gets]  # httpx raises on the hang guard
        assert answers == [200] * 24

        proxy.restore()
        # No API write after the broker is back: the queued update has to get there.
        wait_until(lambda: conn_status(member, conns[0]) == "DOWN", timeout_s=HANG_GUARD_S)
        assert conn_status(member, conns[1]) == "ACTIVE"
    finally:
        cluster.stop_all()


def test_agent_declared_dead_during_an_outage_is_active_again_soon_after(
        tmp_path, vhost, proxy, clients):  # noqa: F811
    cluster = proxied_cluster(tmp_path, vhost, proxy, agent_down_time=3)
    try:
        admin, member = clients(cluster.url)
        conns = vpn_sites(admin, member, 3)
        proxy.cut()
        wait_until(lambda: not admin.get("/v2.0/agents").json()["agents"][0]["alive"],
                   timeout_s=HANG_GUARD_S)
        wait_until(lambda: all(conn_status(member, c) == "DOWN" for c in conns),
                   timeout_s=HANG_GUARD_S)

        proxy.restore()
        # resync_interval is 600 s: only a resync on reconnect makes these ACTIVE again.
        wait_until(lambda: all(conn_status(member, c) == "ACTIVE" for c in conns),
                   timeout_s=HANG_GUARD_S * 2)
        assert admin.get("/v2.0/agents").json()["agents"][0]["alive"]
        services = member.get(SERVICES).json()["vpnservices"]
        assert {s["status"] for s in services} == {"ACTIVE"}
    finally:
        cluster.stop_all()
