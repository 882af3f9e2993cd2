"""The agent's metrics: in the API's /metrics in one process, on its own port otherwise."""

from __future__ import annotations

import socket
import threading
from typing import Any, Mapping

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from isthmus.agent.service import build_agent
from isthmus.drivers.device.base import RouterState, Statuses
from isthmus.drivers.device.noop import NoopDeviceDriver
from isthmus.lifecycle import StartupError
from tests.agent.conftest import make_embedded, running_embedded, wait_until
from tests.agent.test_embedded import create_connection, status
from tests.api.test_vpn_resources import CONNS
from tests.api.topology import build

FAKE_DRIVER = f"{__name__}.FakeCountingDriver"


class FakeCountingDriver(NoopDeviceDriver):
    """A fake device driver: noop statuses, and traffic counters the test sets."""

    def __init__(self, agent: Any) -> None:
        super().__init__(agent)
        self.counters: dict[str, dict[str, int]] = {}
        self.lock = threading.Lock()

    def traffic(self, router: RouterState) -> Mapping[str, Mapping[str, int]]:
        with self.lock:
            return {k: dict(v) for k, v in self.counters.items()}

    def set(self, conn_id: str, bytes_in: int, bytes_out: int) -> None:
        with self.lock:
            self.counters[conn_id] = {"bytes_in": bytes_in, "bytes_out": bytes_out,
                                      "packets_in": bytes_in // 100,
                                      "packets_out": bytes_out // 100}

    def poll(self, router: RouterState) -> Statuses | None:
        return self.sync(router)


def scrape(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == name}


def one(url: str, name: str, **labels: str) -> float | None:
    return scrape(url, name).get(tuple(sorted(labels.items())))


def test_agent_metrics_join_the_api_metrics_in_one_process(embedded, member, topo):
    _, conn = create_connection(member, topo)
    wait_until(lambda: status(member, f"{CONNS}/{conn['id']}") == "ACTIVE", timeout_s=30)
    url = embedded.api.url
    assert wait_until(lambda: one(url, "isthmus_connection_up", connection_id=conn["id"]))
    assert one(url, "isthmus_agent_sync_seconds_count") >= 1
    assert one(url, "isthmus_agent_routers") == 1
    assert one(url, "isthmus_agent_queue_depth") is not None
    assert one(url, "isthmus_connection_status_changes_total",
               connection_id=conn["id"], status="ACTIVE") is None   # first status: no change
    assert one(url, "isthmus_rpc_server_seconds_count", method="update_status") >= 1
    assert one(url, "isthmus_rpc_server_seconds_count", method="get_vpn_services_on_host") >= 1
    assert one(url, "isthmus_agents", state="alive") == 1
    assert "secret" not in httpx.get(f"{url}/metrics").text   # create_connection's PSK

    member.put(f"{CONNS}/{conn['id']}", json={"ipsec_site_connection": {
        "admin_state_up": False}})
    wait_until(lambda: one(url, "isthmus_connection_up", connection_id=conn["id"]) == 0)
    assert one(url, "isthmus_connection_status_changes_total",
               connection_id=conn["id"], status="DOWN") == 1
    member.delete(f"{CONNS}/{conn['id']}")
    wait_until(lambda: one(url, "isthmus_connection_up", connection_id=conn["id"]) is None)


def embedded_with(tmp_path, driver: str):
    """Isthmus in this process with an agent on ``driver``, polling every second."""
    with running_embedded(tmp_path, **{"vpnagent.status_check_interval": 1,
                                       "vpnagent.vpn_device_driver": [driver]}) as env:
        yield env


@pytest.fixture
def counting(tmp_path):
    yield from embedded_with(tmp_path, FAKE_DRIVER)


def test_traffic_counters_stay_monotonic_across_a_rekey(counting):
    with counting.api.client("adminproj", roles="admin,member,reader") as admin, \
            counting.api.client("demoproj") as member:
        _, conn = create_connection(member, build(admin, member))
    driver = counting.agent.drivers[0]
    url, cid = counting.api.url, conn["id"]

    def total(direction: str, unit: str = "bytes") -> float | None:
        return one(url, f"isthmus_connection_{unit}_total", connection_id=cid,
                   direction=direction)

    driver.set(cid, bytes_in=1000, bytes_out=5000)
    wait_until(lambda: total("out") == 5000, timeout_s=10)
    assert total("in") == 1000 and total("out", "packets") == 50
    driver.set(cid, bytes_in=1500, bytes_out=5200)
    wait_until(lambda: total("out") == 5200, timeout_s=10)
    assert total("in") == 1500
    driver.set(cid, bytes_in=300, bytes_out=100)   # a rekey: the new CHILD_SA counts from 0
    wait_until(lambda: total("out") == 5300, timeout_s=10)
    assert total("in") == 1800


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_agent_serves_its_metrics_on_its_own_port_until_stopped(tmp_path):
    env = make_embedded(tmp_path)
    port = free_port()
    env.conf.set_override("metrics_bind", f"127.0.0.1:{port}", group="vpnagent")
    agent = build_agent(env.conf, env.transport)   # `isthmus agent`: no registry given
    try:
        agent.start()
        url = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: one(url, "isthmus_agent_routers") == 0) is not None
        assert one(url, "isthmus_agent_queue_depth") is not None
        assert one(url, "isthmus_api_requests_total") is None   # the server's stay apart
        assert one(env.api.url, "isthmus_agent_routers") is None
    finally:
        agent.stop()
        env.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/metrics", timeout=2)


@pytest.mark.parametrize("bind", ["9697", "localhost:", "127.0.0.1:http", "[::1]:70000"])
def test_a_bad_metrics_bind_stops_the_agent_naming_the_option(tmp_path, bind):
    env = make_embedded(tmp_path)
    try:
        env.conf.set_override("metrics_bind", bind, group="vpnagent")
        with pytest.raises(StartupError, match=r"\[vpnagent\] metrics_bind.*HOST:PORT"):
            build_agent(env.conf, env.transport)
    finally:
        env.stop()


def test_an_agent_started_again_in_the_process_replaces_the_metrics_of_the_first(embedded):
    url = embedded.api.url
    assert wait_until(lambda: one(url, "isthmus_agent_routers") == 0) is not None
    embedded.stop_agent()
    assert one(url, "isthmus_agent_routers") is None
    embedded.start_agent()
    assert one(url, "isthmus_agent_routers") == 0
    assert one(url, "isthmus_api_requests_total") is None   # /metrics is not counted


def test_metrics_enabled_false_serves_no_metrics(tmp_path):
    env = make_embedded(tmp_path, metrics_enabled=False)
    try:
        assert httpx.get(f"{env.api.url}/metrics").status_code == 404
        assert list(env.runtime.registry.collect()) == []
    finally:
        env.stop()


FAKE_EXPLAINING = f"{__name__}.FakeExplainingDriver"


class FakeExplainingDriver(FakeCountingDriver):
    """A fake device driver whose statuses and details the test sets and pushes."""

    def __init__(self, agent: Any) -> None:
        super().__init__(agent)
        self.told: dict[str, Any] = {}
        self.down: set[str] = set()

    def sync(self, router: RouterState) -> Statuses:
        statuses = dict(super().sync(router))
        with self.lock:
            statuses.update({k: "DOWN" for k in self.down if k in statuses})
        return statuses

    def details(self, router: RouterState) -> Mapping[str, Any]:
        with self.lock:
            return dict(self.told)

    def tell(self, conn_id: str, detail: Any, down: bool = False) -> None:
        with self.lock:
            self.told[conn_id] = detail
            (self.down.add if down else self.down.discard)(conn_id)
        self.agent.report({conn_id: "DOWN" if down else "ACTIVE"})


@pytest.fixture
def explaining(tmp_path):
    yield from embedded_with(tmp_path, FAKE_EXPLAINING)


def test_status_details_reach_the_api_the_events_and_the_metrics(explaining):
    with explaining.api.client("adminproj", roles="admin,member,reader") as admin, \
            explaining.api.client("demoproj") as member:
        service, conn = create_connection(member, build(admin, member))
        driver = explaining.agent.drivers[0]
        url, cid = explaining.api.url, conn["id"]
        wait_until(lambda: status(member, f"{CONNS}/{cid}") == "ACTIVE", timeout_s=30)

        def shown() -> dict:
            return member.get(f"{CONNS}/{cid}").json()["ipsec_site_connection"][
                "isthmus:status_detail"]

        ike = {"state": "ESTABLISHED", "version": 2, "encryption": "AES_CBC-128",
               "local_spi": "aa11"}
        child = {"state": "INSTALLED", "local_spi": "c1"}
        driver.tell(cid, {"reason": None, "message": None, "ike": ike, "child": child,
                          "last_failure": None, "warnings": []})
        wait_until(lambda: (shown() or {}).get("ike") == ike, timeout_s=10)
        assert one(url, "isthmus_connection_ike_state", connection_id=cid,
                   state="ESTABLISHED") == 1
        failure = {"reason": "authentication_failed", "message": "the peer said no",
                   "at": "2026-12-02T05:00:00Z"}
        driver.tell(cid, {"reason": "authentication_failed", "message": "the peer said no",
                          "ike": None, "child": None, "last_failure": failure,
                          "warnings": []}, down=True)
        wait_until(lambda: status(member, f"{CONNS}/{cid}") == "DOWN", timeout_s=10)
        assert shown()["reason"] == "authentication_failed"
        events = member.get("/v2.0/vpn/events", params={"resource_id": cid,
                                                        "kind": "status"}).json()["events"]
        assert events[-1]["reason"] == "authentication_failed: the peer said no"
        rolled = member.get(f"/v2.0/vpn/vpnservices/{service['id']}").json()["vpnservice"]
        assert rolled["isthmus:status_detail"]["reasons"] == {"authentication_failed": 1}
        assert one(url, "isthmus_connection_failures_total", connection_id=cid,
                   reason="authentication_failed") == 1
        assert one(url, "isthmus_connection_ike_state", connection_id=cid,
                   state="ESTABLISHED") is None
        # Back up on a new SA, sending without an answer: a rekey and a one-way warning.
        warning = {"reason": "one_way_traffic", "message": "nothing back",
                   "at": "2026-12-02T05:01:00Z"}
        driver.tell(cid, {"reason": "one_way_traffic", "message": "nothing back",
                          "ike": {**ike, "local_spi": "bb22"}, "child": child,
                          "last_failure": failure, "warnings": [warning]})
        wait_until(lambda: one(url, "isthmus_connection_one_way", connection_id=cid) == 1,
                   timeout_s=10)
        assert one(url, "isthmus_connection_rekeys_total", connection_id=cid, sa="ike") == 1
        assert one(url, "isthmus_connection_failures_total", connection_id=cid,
                   reason="authentication_failed") == 1   # the same failure, counted once
        wait_until(lambda: status(member, f"{CONNS}/{cid}") == "ACTIVE", timeout_s=10)
        rolled = member.get(f"/v2.0/vpn/vpnservices/{service['id']}").json()["vpnservice"]
        assert rolled["isthmus:status_detail"]["reason"] == "one_way_traffic"
