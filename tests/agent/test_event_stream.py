"""Status transitions from a real agent's reports reach the event history and its
stream: a tunnel goes down and comes back, seen by an HTTP client on the stream."""

from __future__ import annotations

from tests.agent.conftest import wait_until
from tests.agent.test_embedded import create_connection, status
from tests.api.test_events import EVENTS, read_frames
from tests.api.test_vpn_resources import CONNS
from tests.api.topology import ok


def transitions(client, resource_id: str) -> list[tuple]:
    return [(e["old_status"], e["status"], e["reason"]) for e in ok(client.get(
        EVENTS, params={"resource_id": resource_id, "kind": "status"}), 200)["events"]]


def test_agent_reports_are_status_transitions(embedded, member, topo):
    service, conn = create_connection(member, topo)
    wait_until(lambda: transitions(member, conn["id"]), timeout_s=30)
    [(old, new, reason)] = transitions(member, conn["id"])
    assert (old, new) == ("PENDING_CREATE", "ACTIVE") and "simulated" in reason
    assert [t[:2] for t in transitions(member, service["id"])] == [("PENDING_CREATE", "ACTIVE")]
    # The router's own status, as the agent reported it, is in its history too.
    routers = ok(member.get(EVENTS, params={"resource_type": "router", "kind": "status"}),
                 200)["events"]
    assert all(e["resource_id"] == topo.router for e in routers)


def test_stream_sees_a_tunnel_go_down_and_come_back(embedded, member, topo):
    _, conn = create_connection(member, topo)
    url = f"{CONNS}/{conn['id']}"
    wait_until(lambda: status(member, url) == "ACTIVE", timeout_s=30)
    with member.stream("GET", EVENTS, params={"stream": "true", "resource_id": conn["id"]}
                       ) as stream:
        ok(member.put(url, json={"ipsec_site_connection": {"admin_state_up": False}}), 200)
        down = read_frames(stream, 2)
        wait_until(lambda: status(member, url) == "DOWN")
        ok(member.put(url, json={"ipsec_site_connection": {"admin_state_up": True}}), 200)
        up = read_frames(stream, 2)
    seen = [(f["event"], f["data"]["action"], f["data"]["old_status"], f["data"]["status"])
            for f in down + up]
    assert seen == [("api", "update", None, "ACTIVE"), ("status", None, "ACTIVE", "DOWN"),
                    ("api", "update", None, "DOWN"), ("status", None, "DOWN", "ACTIVE")]
    ids = [int(f["id"]) for f in down + up]
    assert ids == sorted(ids) and len(set(ids)) == 4
    assert down[0]["data"]["changed"] == ["admin_state_up"]
    assert "secret" not in str(down + up)   # the connection's PSK
