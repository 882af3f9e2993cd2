"""Automatic router failover (Agents.fail_over, Placement's dead-agent watch)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from isthmus.network.routers import ROUTERS
from isthmus.vpn.agents import AGENTS, Agents, now
from isthmus.vpn.placement import Placement
from tests.domain import ADMIN


class Casts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def vpnservice_updated(self, host: str, router_id: str) -> None:
        self.sent.append((host, router_id))


def _router(domain, host: str, physnets: tuple[str, str]) -> str:
    wan, lan = (domain.create("networks", ADMIN, name=n, **{
        "provider:network_type": "flat", "provider:physical_network": n,
        "router:external": n == physnets[0]}) for n in physnets)
    wan_subnet = domain.create("subnets", ADMIN, network_id=wan["id"], ip_version=4,
                               cidr="172.24.5.0/24")
    lan_subnet = domain.create("subnets", ADMIN, network_id=lan["id"], ip_version=4,
                               cidr="10.1.0.0/24")
    router = domain.create("routers", ADMIN, name="r", external_gateway_info={
        "network_id": wan["id"], "external_fixed_ips": [{"subnet_id": wan_subnet["id"]}]},
        **{"isthmus:agent_host": host})
    domain.services.router_interface(ADMIN, router["id"], "add", {"subnet_id": lan_subnet["id"]})
    return router["id"]


def _beat(domain, agents: Agents, host: str, physnets: list[str], age_s: int = 0) -> None:
    with domain.services.db.write() as conn:
        agents.heartbeat(conn, {"host": host, "configurations": {"physical_networks": physnets}})
        if age_s:
            conn.execute(sa.update(AGENTS).where(AGENTS.c.host == host).values(
                heartbeat_timestamp=now() - timedelta(seconds=age_s)))


def _host_of(domain, router_id: str) -> str:
    return domain.services.get(ADMIN, "routers", router_id)["isthmus:agent_host"]


def test_a_dead_agents_router_moves_only_where_its_physical_networks_are(domain):
    agents = Agents(down_time_s=10)
    router_id = _router(domain, "dead", ("public", "lan"))
    _beat(domain, agents, "dead", ["lan", "public"], age_s=60)
    _beat(domain, agents, "no-lan", ["public"])
    with domain.services.db.write() as conn:
        assert agents.fail_over(conn) == {}          # nowhere to go: it stays
    assert _host_of(domain, router_id) == "dead"
    _beat(domain, agents, "fits", ["lan", "public", "other"])
    casts = Casts()
    placement = Placement(domain.services.db, agents, casts)
    placement.mark_dead_routers_down()
    assert _host_of(domain, router_id) == "fits"
    assert casts.sent == [("fits", router_id)]
    placement.mark_dead_routers_down()              # moved once
    assert casts.sent == [("fits", router_id)]


def test_failover_can_be_turned_off(domain):
    agents = Agents(down_time_s=10)
    router_id = _router(domain, "dead", ("public", "lan"))
    _beat(domain, agents, "dead", ["lan", "public"], age_s=60)
    _beat(domain, agents, "live", ["lan", "public"])
    casts = Casts()
    Placement(domain.services.db, agents, casts, failover=False).mark_dead_routers_down()
    assert _host_of(domain, router_id) == "dead" and casts.sent == []


def test_agents_that_build_no_routers_take_over_only_from_their_kind(domain):
    agents = Agents(down_time_s=10)
    built = _router(domain, "dead-builder", ("public", "lan"))
    _beat(domain, agents, "dead-builder", ["lan", "public"], age_s=60)
    _beat(domain, agents, "plain", [])
    with domain.services.db.write() as conn:
        assert agents.fail_over(conn) == {}          # "plain" cannot plug it anywhere
    topo = domain.topology(agent_host="dead-plain")  # an isthmus:namespace router
    _beat(domain, agents, "dead-plain", [], age_s=60)
    casts = Casts()
    Placement(domain.services.db, agents, casts).on_agent_alive("plain", "restarted")
    assert _host_of(domain, topo["router"]) == "plain"
    assert _host_of(domain, built) == "dead-builder"
    assert casts.sent == [("plain", topo["router"])]
