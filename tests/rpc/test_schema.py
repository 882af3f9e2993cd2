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
