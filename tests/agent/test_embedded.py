"""Server and agent in one process (what ``isthmus up`` runs): statuses follow the agent."""

from __future__ import annotations

from tests.agent.conftest import wait_until
from tests.api.test_vpn_resources import CONNS, SERVICES, make_policies
from tests.api.topology import ok


def status(client, url: str) -> str:
    return client.get(url).json().popitem()[1]["status"]


def create_connection(member, topo, **extra) -> tuple[dict, dict]:
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": "secret",
        "peer_cidrs": ["10.50.0.0/24"], **extra}}))["ipsec_site_connection"]
    return service, conn


def test_connection_goes_active_on_notification_not_resync(embedded, member, topo):
    # The full resync runs every 60 s: ACTIVE well before that means the agent was told.
    # How fast it is, is measured by benchmarks/agent_sync.py, not asserted here.
    service, conn = create_connection(member, topo)
    wait_until(lambda: status(member, f"{CONNS}/{conn['id']}") == "ACTIVE", timeout_s=30)
    assert status(member, f"{SERVICES}/{service['id']}") == "ACTIVE"


def test_noop_statuses_say_they_are_simulated(embedded, member, topo):
    # `isthmus up` runs the noop driver: a connection to a peer that does not exist is
    # ACTIVE, and the connection itself must say that no tunnel stands behind it.
    _, conn = create_connection(member, topo)
    url = f"{CONNS}/{conn['id']}"
    detail = wait_until(lambda: ok(member.get(url), 200)["ipsec_site_connection"][
        "isthmus:status_detail"], timeout_s=30)
    assert detail["reason"] == "simulated" and detail["simulated"] is True
    assert "no tunnel" in detail["message"]
    assert status(member, url) == "ACTIVE"
    # The service rolls its connections up: ACTIVE, and simulated is not a problem.
    shown = ok(member.get(f"{SERVICES}/{conn['vpnservice_id']}"), 200)["vpnservice"]
    assert shown["isthmus:status_detail"] == {
        "reason": None, "message": "all 1 connections ACTIVE", "connections": {"ACTIVE": 1},
        "reasons": {}}


def test_service_without_connections_does_not_stay_pending(embedded, member, topo):
    service = ok(member.post(SERVICES, json={"vpnservice": {"router_id": topo.router}}))
    url = f"{SERVICES}/{service['vpnservice']['id']}"
    wait_until(lambda: status(member, url) == "ACTIVE", timeout_s=2)
    renamed = ok(member.put(url, json={"vpnservice": {"name": "now-updatable"}}), 200)
    assert renamed["vpnservice"]["name"] == "now-updatable"


def test_updates_reach_the_agent(embedded, member, topo):
    _, conn = create_connection(member, topo)
    url = f"{CONNS}/{conn['id']}"
    wait_until(lambda: status(member, url) == "ACTIVE")
    ok(member.put(url, json={"ipsec_site_connection": {"admin_state_up": False}}), 200)
    wait_until(lambda: status(member, url) == "DOWN")
    ok(member.put(url, json={"ipsec_site_connection": {"admin_state_up": True}}), 200)
    wait_until(lambda: status(member, url) == "ACTIVE")


def test_router_is_placed_on_the_agent_and_agents_are_listed(embedded, admin, member, topo):
    create_connection(member, topo)
    router = wait_until(lambda: (r := admin.get(f"/v2.0/routers/{topo.router}").json()[
        "router"])["isthmus:agent_host"] and r)
    assert router["isthmus:agent_host"] == "agent-embedded"
    agents = wait_until(lambda: admin.get("/v2.0/agents").json()["agents"])
    assert [(a["host"], a["alive"], a["agent_type"]) for a in agents] == \
        [("agent-embedded", True, "VPN agent")]
    assert agents[0]["configurations"]["device_drivers"] == ["NoopDeviceDriver"]
    # get_agent is admin-only: Neutron leaves what policy hides out of a list.
    assert member.get("/v2.0/agents").json() == {"agents": []}
    assert member.get(f"/v2.0/agents/{agents[0]['id']}").status_code == 404


def test_deleting_reaches_the_agent(embedded, member, topo):
    service, conn = create_connection(member, topo)
    wait_until(lambda: status(member, f"{CONNS}/{conn['id']}") == "ACTIVE")
    synced = embedded.agent.router_state(topo.router)
    assert [s["id"] for s in synced.services] == [service["id"]]
    assert member.delete(f"{CONNS}/{conn['id']}").status_code == 204
    assert member.delete(f"{SERVICES}/{service['id']}").status_code == 204
    # What the agent hands its drivers for this router: nothing any more.
    wait_until(lambda: embedded.agent.router_state(topo.router) is None)


def test_a_resync_answer_older_than_a_notification_is_not_applied(embedded, member, topo):
    # A full resync fetches, then a change arrives and its notification's sync applies
    # it; the resync's payload, queued afterwards, must not undo it (it once removed
    # routers created while a resync ran, until the next resync a minute later).
    import time
    from isthmus.agent.agent import RouterWork

    before = time.monotonic()
    service, conn = create_connection(member, topo)
    agent = embedded.agent
    wait_until(lambda: agent.router_state(topo.router), timeout_s=30)
    agent._sync_router(topo.router, None)   # the notification's sync: it fetches afresh
    agent._sync_router(topo.router, RouterWork((), fetched_at=before))   # "router gone"
    state = agent.router_state(topo.router)
    assert state is not None and [s["id"] for s in state.services] == [service["id"]]
    agent._sync_router(topo.router, RouterWork((), fetched_at=time.monotonic()))
    assert agent.router_state(topo.router) is None, "a newer payload is applied"
