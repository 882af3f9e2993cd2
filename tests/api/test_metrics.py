"""``GET /metrics`` of the API: requests by route template, objects by status, no secrets."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from isthmus.api import create_app
from isthmus.api.metrics import RequestMetrics, with_metrics
from isthmus.db import Database
from isthmus.services import Services
from isthmus.vpn.agents import Agents
from isthmus.vpn.metrics import StatusCollector
from tests.api.test_vpn_resources import CONNS, SERVICES, make_policies
from tests.api.topology import Topology, build, ok
from tests.conftest import RunningServer, empty_database, start_server

PSK = "pr0metheus-must-never-see-this-psk"


def samples(client: httpx.Client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Each sample called ``name`` on /metrics, by its sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples if s.name == name}


def served(request, tmp_path, migrated_sqlite, cache_s: float) -> Iterator[RunningServer]:
    url = empty_database(request, tmp_path, migrated_sqlite)
    services = Services(Database(url))
    registry = CollectorRegistry()
    registry.register(StatusCollector(services.db, Agents(), cache_s=cache_s))
    app = with_metrics(create_app(services, metrics=RequestMetrics(registry)), registry)
    running = start_server(url, migrate=False, app=app, services=services)
    yield running
    running.stop()  # type: ignore[attr-defined]
    running.db.dispose()


@pytest.fixture(params=["sqlite"])
def api(request, tmp_path, migrated_sqlite) -> Iterator[RunningServer]:
    """A server with metrics; database counts never cached."""
    yield from served(request, tmp_path, migrated_sqlite, cache_s=0)


@pytest.fixture(params=["sqlite"])
def cached_api(request, tmp_path, migrated_sqlite) -> Iterator[RunningServer]:
    yield from served(request, tmp_path, migrated_sqlite, cache_s=60)


def create_connection(member: httpx.Client, topo: Topology) -> dict:
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
    return ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": PSK,
        "peer_cidrs": ["10.50.0.0/24"]}}))["ipsec_site_connection"]


def test_requests_are_counted_by_route_template_never_by_path(api, admin, member):
    topo = build(admin, member)
    conn = create_connection(member, topo)
    member_route = f"{CONNS}/{{id_}}"
    for _ in range(3):
        ok(member.get(f"{CONNS}/{conn['id']}"), 200)
    assert member.get(f"{CONNS}/00000000-0000-0000-0000-000000000000").status_code == 404
    assert member.get("/v2.0/no-such-thing/at-all").status_code == 404

    requests = samples(member, "isthmus_api_requests_total")
    assert requests[(("code", "200"), ("method", "GET"), ("route", member_route))] == 3
    assert requests[(("code", "404"), ("method", "GET"), ("route", member_route))] == 1
    assert requests[(("code", "201"), ("method", "POST"), ("route", CONNS))] == 1
    assert requests[(("code", "404"), ("method", "GET"), ("route", "unmatched"))] == 1
    durations = samples(member, "isthmus_api_request_duration_seconds_count")
    assert durations[(("method", "GET"), ("route", member_route))] == 4
    assert samples(member, "isthmus_api_request_duration_seconds_sum")[
        (("method", "GET"), ("route", member_route))] > 0

    text = member.get("/metrics").text
    assert PSK not in text
    assert conn["id"] not in text and "no-such-thing" not in text
    assert "00000000-0000" not in text


def test_objects_by_status_follow_the_database(api, admin, member):
    topo = build(admin, member)
    assert samples(member, "isthmus_vpn_objects").get(
        (("resource", "ipsec_site_connection"), ("status", "PENDING_CREATE"))) is None
    conn = create_connection(member, topo)
    objects = samples(member, "isthmus_vpn_objects")
    assert objects[(("resource", "ipsec_site_connection"), ("status", "PENDING_CREATE"))] == 1
    assert objects[(("resource", "vpnservice"), ("status", "PENDING_CREATE"))] == 1
    assert objects[(("resource", "router"), ("status", "ACTIVE"))] == 1

    with api.db.write() as db:
        db.exec_driver_sql("UPDATE ipsec_site_connections SET status = 'ACTIVE'")
    objects = samples(member, "isthmus_vpn_objects")
    assert objects[(("resource", "ipsec_site_connection"), ("status", "ACTIVE"))] == 1
    assert (("resource", "ipsec_site_connection"), ("status", "PENDING_CREATE")) not in objects
    ok(member.delete(f"{CONNS}/{conn['id']}"), 204)
    objects = samples(member, "isthmus_vpn_objects")
    assert (("resource", "ipsec_site_connection"), ("status", "ACTIVE")) not in objects
    assert samples(member, "isthmus_agents") == {(("state", "alive"),): 0,
                                                 (("state", "dead"),): 0}


def test_a_scrape_storm_reads_the_database_once_per_cache_period(cached_api):
    with cached_api.client("demoproj", roles="admin,member,reader") as client:
        before = samples(client, "isthmus_vpn_objects")
        topo_router = ok(client.post("/v2.0/routers", json={"router": {"name": "r"}}))
        assert topo_router["router"]["status"] == "ACTIVE"
        assert samples(client, "isthmus_vpn_objects") == before == {}


def test_metrics_take_only_get_and_head(api):
    with api.client() as client:
        assert client.post("/metrics").status_code == 405
        assert client.head("/metrics").status_code == 200
