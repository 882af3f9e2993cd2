"""What an agent is told (services_on_host) and how its reports land (apply_reports)."""

from __future__ import annotations

import pytest

from isthmus.vpn import status
from isthmus.vpn.desired_state import (apply_reports, connection_state, mark_routers_down,
                                       services_on_host)
from tests.domain import ADMIN, MEMBER


@pytest.fixture
def site(domain):
    topo = domain.topology()
    service = domain.create("vpnservices", router_id=topo["router"], subnet_id=topo["subnet"])
    conn = domain.create("ipsec_site_connections", vpnservice_id=service["id"],
                         ikepolicy_id=topo["ike"], ipsecpolicy_id=topo["ipsec"],
                         peer_address="203.0.113.5", peer_id="203.0.113.5", psk="secret",
                         peer_cidrs=["10.50.0.0/24", "10.40.0.0/24"])
    return topo, service, conn


def _state(domain, host="host-a", router_ids=None):
    with domain.services.db.read() as conn:
        return services_on_host(conn, host, router_ids)


def test_desired_state_resolves_what_a_device_needs(domain, site):
    topo, service, conn = site
    [wanted] = _state(domain)
    assert (wanted["id"], wanted["router_id"], wanted["namespace"]) == \
        (service["id"], topo["router"], "ns-r1")
    assert wanted["status"] == status.PENDING_CREATE
    [connection] = wanted["ipsec_site_connections"]
    assert connection["id"] == conn["id"]
    assert connection["psk"] == "secret"  # agents need it in clear: the bus must be trusted
    assert connection["local_cidrs"] == ["10.1.0.0/24"]
    assert connection["peer_cidrs"] == ["10.40.0.0/24", "10.50.0.0/24"]
    assert connection["local_ip_version"] == 4
    assert connection["external_ip"] == wanted["external_v4_ip"] is not None
    assert connection["ikepolicy"]["id"] == topo["ike"]
    assert set(connection["ipsecpolicy"]["lifetime"]) == {"units", "value"}


def test_one_connections_state_is_what_its_agent_gets(domain, site):
    topo, service, conn = site
    other = domain.create("ipsec_site_connections", vpnservice_id=service["id"],
                          ikepolicy_id=topo["ike"], ipsecpolicy_id=topo["ipsec"],
                          peer_address="203.0.113.9", peer_id="203.0.113.9", psk="other",
                          peer_cidrs=["10.60.0.0/24"])
    [wanted] = _state(domain)
    with domain.services.db.read() as db:
        for item in wanted["ipsec_site_connections"]:
            assert connection_state(db, item["id"]) == item
        assert connection_state(db, "no-such-connection") is None
    assert {c["id"] for c in wanted["ipsec_site_connections"]} == {conn["id"], other["id"]}


def test_desired_state_is_per_host_and_per_router(domain, site):
    topo, _, _ = site
    assert _state(domain, host="host-b") == []
    assert _state(domain, router_ids=["no-such-router"]) == []
    assert [s["router_id"] for s in _state(domain, router_ids=[topo["router"]])] == \
        [topo["router"]]


def test_reports_go_through_the_status_machine(domain, site):
    _, service, conn = site

    def report(resolves: bool, state: str = status.ACTIVE) -> int:
        with domain.services.db.write() as db_conn:
            return apply_reports(db_conn, [{
                "id": service["id"], "status": state, "updated_pending_status": resolves,
                "ipsec_site_connections": {conn["id"]: {
                    "status": state, "updated_pending_status": resolves,
                    "traffic": {"bytes_in": 7, "bytes_out": 8, "packets_in": 1,
                                "packets_out": 2}}}}])

    assert report(resolves=False) == 0  # a poll does not end PENDING_CREATE
    assert report(resolves=True) == 2
    shown = domain.services.get(MEMBER, "ipsec_site_connections", conn["id"])
    assert shown["status"] == status.ACTIVE
    assert shown["isthmus:traffic"] == {"bytes_in": 7, "bytes_out": 8, "packets_in": 1,
                                        "packets_out": 2}
    assert report(resolves=False, state=status.DOWN) == 2
    assert domain.services.get(MEMBER, "vpnservices", service["id"])["status"] == status.DOWN


def test_status_detail_is_set_cleared_and_left_alone_by_older_agents(domain, site):
    _, service, conn = site

    def report(**extra) -> dict:
        with domain.services.db.write() as db_conn:
            apply_reports(db_conn, [{
                "id": service["id"], "status": status.ACTIVE, "updated_pending_status": True,
                "ipsec_site_connections": {conn["id"]: {
                    "status": status.ACTIVE, "updated_pending_status": True, **extra}}}])
        return domain.services.get(MEMBER, "ipsec_site_connections", conn["id"])

    assert report()["isthmus:status_detail"] is None
    # An agent older than RPC 1.3 sends a sentence: it becomes the message.
    assert report(status_detail="simulated")["isthmus:status_detail"] == {
        "reason": None, "message": "simulated"}
    assert report()["isthmus:status_detail"] == {   # an older agent says nothing
        "reason": None, "message": "simulated"}
    structured = {"reason": "authentication_failed", "message": "the peer said no",
                  "ike": {"state": "DELETING", "version": 2}, "child": None,
                  "last_failure": {"reason": "authentication_failed",
                                   "message": "the peer said no", "at": "2026-12-02T04:00:00Z"},
                  "warnings": []}
    assert report(status_detail=structured)["isthmus:status_detail"] == structured
    assert report(status_detail=None)["isthmus:status_detail"] is None


def test_a_new_reason_is_an_event_even_when_the_status_stays(domain, site):
    _, service, conn = site

    def report(state: str, reason: str | None, message: str = "",
               failure: dict | None = None) -> None:
        detail = {"reason": reason, "message": message or reason, "last_failure": failure}
        with domain.services.db.write() as db_conn:
            apply_reports(db_conn, [{
                "id": service["id"], "status": state, "updated_pending_status": True,
                "ipsec_site_connections": {conn["id"]: {
                    "status": state, "updated_pending_status": True,
                    "status_detail": detail}}}])

    def reasons() -> list[tuple[str, str, str | None]]:
        found = domain.services.list(ADMIN, "events", {"resource_id": [conn["id"]],
                                                        "kind": ["status"]})
        return [(e["old_status"], e["status"], e["reason"]) for e in found]

    report(status.DOWN, "peer_not_responding", "no answer")
    report(status.DOWN, "peer_not_responding", "no answer, again")   # same code: no event
    report(status.DOWN, "authentication_failed", "the peer refused our PSK")
    report(status.ACTIVE, None, "up")
    # A failure while an SA still stands: ACTIVE, no reason, but a new last failure.
    report(status.ACTIVE, None, "up", failure={"reason": "ike_proposal_mismatch",
                                              "message": "no match", "at": "T1"})
    report(status.ACTIVE, None, "still up", failure={"reason": "ike_proposal_mismatch",
                                                    "message": "no match", "at": "T1"})
    assert reasons() == [
        (status.PENDING_CREATE, status.DOWN, "peer_not_responding: no answer"),
        (status.DOWN, status.DOWN, "authentication_failed: the peer refused our PSK"),
        (status.DOWN, status.ACTIVE, "up"),
        (status.ACTIVE, status.ACTIVE, "ike_proposal_mismatch: no match")]


def test_reports_of_deleted_objects_change_nothing(domain, site):
    with domain.services.db.write() as db_conn:
        assert apply_reports(db_conn, [{"id": "gone", "status": status.ACTIVE,
                                        "updated_pending_status": True,
                                        "ipsec_site_connections": {}}]) == 0


def test_routers_of_a_dead_agent_go_down(domain, site):
    topo, service, conn = site
    with domain.services.db.write() as db_conn:
        assert mark_routers_down(db_conn, [topo["router"]]) == 2
    assert domain.services.get(MEMBER, "vpnservices", service["id"])["status"] == status.DOWN
    assert domain.services.get(MEMBER, "ipsec_site_connections",
                               conn["id"])["status"] == status.DOWN
