"""docs/rpc.md shows the real schemas, and real RPC payloads match them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from isthmus.rpc.agent_side import ServerClient
from isthmus.rpc.schema import SCHEMAS
from isthmus.rpc.server_side import AgentNotifier, ServerEndpoint
from tests.agent.conftest import wait_until
from tests.agent.test_embedded import create_connection, status
from tests.api.test_vpn_resources import CONNS, SERVICES, group, make_policies
from tests.api.topology import ok

DOC = Path(__file__).resolve().parents[2] / "docs" / "rpc.md"
ROUTER_CALLS = {"get_routers_on_host", "get_routers_on_host.result", "update_router_status",
                "update_router_status.result"}


def test_docs_show_exactly_the_schemas():
    text = DOC.read_text()
    shown = dict(re.findall(r"<!-- schema: (\S+) -->\n```json\n(.*?)\n```", text, re.S))
    assert set(shown) == set(SCHEMAS)
    for name, block in shown.items():
        assert json.loads(block) == SCHEMAS[name], f"docs/rpc.md is stale for {name}"


@pytest.fixture
def captured(monkeypatch):
    """Record every payload crossing the RPC boundary, in both directions."""
    seen: dict[str, list] = {name: [] for name in SCHEMAS}

    def wrap(cls, method, record):
        original = getattr(cls, method)

        def wrapper(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            record(args, kwargs, result)
            return result
        monkeypatch.setattr(cls, method, wrapper)

    wrap(AgentNotifier, "vpnservice_updated",
         lambda a, k, r: seen["vpnservice_updated"].append({"router_id": a[1]}))
    # oslo.messaging dispatches endpoint methods as func(ctxt, **arguments).
    wrap(ServerEndpoint, "get_vpn_services_on_host", lambda a, k, r: (
        seen["get_vpn_services_on_host"].append(k),
        seen["get_vpn_services_on_host.result"].append(r)))
    wrap(ServerEndpoint, "update_status", lambda a, k, r: (
        seen["update_status"].append(k), seen["update_status.result"].append(r)))
    wrap(ServerClient, "report_state",
         lambda a, k, r: seen["report_state"].append({"agent_state": a[0]}))
    return seen


def test_real_payloads_match_the_schemas(captured, embedded, member, topo):
    _, legacy = create_connection(member, topo, dpd={"action": "restart", "interval": 5,
                                                     "timeout": 20})
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {"router_id": topo.router}}))
    epg = ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service["vpnservice"]["id"], "ikepolicy_id": ike,
        "ipsecpolicy_id": ipsec, "peer_address": "2001:db8:77::1", "peer_id": "p", "psk": "s",
        "local_ep_group_id": group(member, "subnet", [topo.subnet_v6]),
        "peer_ep_group_id": group(member, "cidr", ["2001:db8:99::/64"])}}))
    for conn in (legacy, epg["ipsec_site_connection"]):
        wait_until(lambda: status(member, f"{CONNS}/{conn['id']}") == "ACTIVE")
    wait_until(lambda: captured["report_state"])
    for name, payloads in captured.items():
        if name in ROUTER_CALLS:   # this agent builds no routers: the next test calls them
            continue
        assert payloads, f"no {name} payload was seen"
        for payload in payloads:
            jsonschema.validate(payload, SCHEMAS[name])
    services = [s for result in captured["get_vpn_services_on_host.result"] for s in result]
    epg_conn = next(c for s in services for c in s["ipsec_site_connections"]
                    if c["id"] == epg["ipsec_site_connection"]["id"])
    assert epg_conn["local_cidrs"] == ["2001:db8:10::/64"]
    assert epg_conn["peer_cidrs"] == ["2001:db8:99::/64"]
    assert epg_conn["local_ip_version"] == 6 and ":" in epg_conn["external_ip"]
    legacy_conn = next(c for s in services for c in s["ipsec_site_connections"]
                       if c["id"] == legacy["id"])
    assert legacy_conn["local_cidrs"] == ["10.1.0.0/24"]
    assert legacy_conn["dpd"] == {"action": "restart", "interval": 5, "timeout": 20}
    assert legacy_conn["ikepolicy"]["lifetime"] == {"units": "seconds", "value": 3600}


def test_router_calls_carry_what_the_schemas_say_and_store_the_reports(embedded, admin,
                                                                        member, topo):
    """get_routers_on_host and update_router_status through the real RPC (in memory),
    as an agent that builds routers sends them."""
    client = ServerClient(embedded.transport, embedded.conf.host)
    host = embedded.conf.host
    wait_until(lambda: ok(admin.get(f"/v2.0/routers/{topo.router}"), 200)["router"][
        "isthmus:agent_host"] == host)   # placed when it was created
    jsonschema.validate({"host": host}, SCHEMAS["get_routers_on_host"])
    routers = client.get_routers_on_host()
    jsonschema.validate(routers, SCHEMAS["get_routers_on_host.result"])
    router = next(r for r in routers if r["id"] == topo.router)
    assert router["mode"] == "managed" and router["nat_exempt"] == []
    gateway_ips = {f["ip_address"]: f for f in router["gateway"]["fixed_ips"]}
    assert gateway_ips[topo.gateway_v4]["gateway_ip"] == "172.24.5.1"
    assert gateway_ips[topo.gateway_v4]["prefixlen"] == 24
    assert sorted(f["ip_address"] for p in router["interfaces"] for f in p["fixed_ips"]) == [
        "10.1.0.1", "10.2.0.1", "2001:db8:10::"]
    assert client.get_routers_on_host([topo.router]) == [router]

    port = router["interfaces"][0]["id"]
    report = {"id": topo.router, "status": "ERROR", "reason": "bridge br-x is missing",
              "ports": {port: {"status": "DOWN", "reason": "bridge br-x is missing"}}}
    arguments = {"host": host, "routers": [report]}
    jsonschema.validate(arguments, SCHEMAS["update_router_status"])
    changed = client.update_router_status([report])
    jsonschema.validate(changed, SCHEMAS["update_router_status.result"])
    assert changed == 2
    shown = ok(admin.get(f"/v2.0/routers/{topo.router}"), 200)["router"]
    assert (shown["status"], shown["isthmus:status_detail"]) == (
        "ERROR", "bridge br-x is missing")
    assert ok(admin.get(f"/v2.0/ports/{port}"), 200)["port"]["status"] == "DOWN"
    assert client.update_router_status([report]) == 0      # nothing new
    stale = ServerClient(embedded.transport, "another-host")
    assert stale.update_router_status([{**report, "status": "ACTIVE", "reason": None}]) == 0
