"""What ``isthmus peer test`` reads from a real API server before it builds anything
(:func:`isthmus.peers.peertest.make_plan`), and every reason it refuses to test."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from isthmus.peers.peertest import Api, UsageError, make_plan
from tests.api.test_peer_config import make_connection
from tests.api.test_policy_overrides import served  # noqa: F401  (fixture)
from tests.api.test_vpn_resources import CONNS, legacy, make_policies  # noqa: F401
from tests.api.topology import build, ok


def as_admin(server) -> Api:
    return Api(server.url, {"X-Project-Id": "adminproj", "X-Roles": "admin,member,reader"})


def test_plan_of_a_connection_whose_peer_is_on_the_external_subnet(api, member, legacy,
                                                                   topo):
    conn = make_connection(member, legacy, peer_address="172.24.5.50")
    plan = make_plan(as_admin(api), conn["id"], "br-test", None, None)
    assert plan.peer_address == ipaddress.IPv4Interface("172.24.5.50/24")
    assert plan.router_address == topo.gateway_v4 and plan.uplink == "br-test"
    [child] = plan.children
    assert (child.local_ts, child.remote_ts) == (("10.50.0.0/24",), ("10.1.0.0/24",))
    assert child.start_action == "trap"
    assert plan.peer_cidrs == ("10.50.0.0/24",)
    assert plan.ping == "10.1.0.1"   # the router's interface on the local subnet
    assert "secret" in plan.swanctl_text and plan.connection["id"] == conn["id"]


def test_an_explicit_ping_target_is_kept(api, member, legacy):
    conn = make_connection(member, legacy, peer_address="172.24.5.50")
    plan = make_plan(as_admin(api), conn["id"], "br-test", None, "10.1.0.20")
    assert plan.ping == "10.1.0.20" and plan.ping_note == ""


def test_a_peer_beyond_the_routers_gateway_cannot_be_stood_in_for(api, member, legacy):
    conn = make_connection(member, legacy)   # peer_address 203.0.113.5
    with pytest.raises(UsageError, match=r"203\.0\.113\.5 is not on the router's external "
                                         r"subnet 172\.24\.5\.0/24: .* its gateway"):
        make_plan(as_admin(api), conn["id"], "br-test", None, None)


def test_unknown_connection(api):
    with pytest.raises(UsageError, match="no site connection no-such-id"):
        make_plan(as_admin(api), "no-such-id", "br-test", None, None)


def test_without_bridge_the_external_network_needs_a_physical_network(api, member, legacy,
                                                                      tmp_path):
    conn = make_connection(member, legacy, peer_address="172.24.5.50")
    with pytest.raises(UsageError, match="has no provider:physical_network .* --bridge"):
        make_plan(as_admin(api), conn["id"], None, str(tmp_path / "isthmus.conf"), None)


def connection_on(admin, member, **provider: Any) -> str:
    """A connection of a router whose external network has these provider attributes,
    to a peer on its external subnet; its id."""
    net = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "internet", "router:external": True, **provider}}))["network"]["id"]
    ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net, "ip_version": 4, "cidr": "198.51.100.0/24",
        "gateway_ip": "198.51.100.1"}}))
    lan = ok(member.post("/v2.0/networks", json={"network": {"name": "lan"}}))["network"]["id"]
    lan_subnet = ok(member.post("/v2.0/subnets", json={"subnet": {
        "network_id": lan, "ip_version": 4, "cidr": "10.71.0.0/24"}}))["subnet"]["id"]
    router = ok(member.post("/v2.0/routers", json={"router": {
        "name": "r", "external_gateway_info": {"network_id": net}}}))["router"]["id"]
    ok(member.put(f"/v2.0/routers/{router}/add_router_interface",
                  json={"subnet_id": lan_subnet}), 200)
    ike, ipsec = make_policies(member)
    service = ok(member.post("/v2.0/vpn/vpnservices", json={"vpnservice": {
        "router_id": router, "subnet_id": lan_subnet}}))["vpnservice"]["id"]
    return ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "198.51.100.12", "peer_id": "198.51.100.12", "psk": "s3cret",
        "peer_cidrs": ["10.72.0.0/24"]}}))["ipsec_site_connection"]["id"]


def test_the_uplink_comes_from_the_agents_physical_networks(api, admin, member, tmp_path):
    conn = connection_on(admin, member, **{"provider:network_type": "flat",
                                           "provider:physical_network": "public"})
    conf = tmp_path / "isthmus.conf"
    conf.write_text("[vpnagent]\nphysical_networks = lan:br-lan,public:br-ex\n")
    assert make_plan(as_admin(api), conn, None, str(conf), None).uplink == "br-ex"
    conf.write_text("[vpnagent]\nphysical_networks = lan:br-lan\n")
    with pytest.raises(UsageError, match="physical network 'public' .* not in \\[vpnagent\\] "
                                         "physical_networks"):
        make_plan(as_admin(api), conn, None, str(conf), None)
    with pytest.raises(UsageError, match="no agent configuration .*/missing.conf"):
        make_plan(as_admin(api), conn, None, str(tmp_path / "missing.conf"), None)


def test_a_vlan_external_network_is_refused(api, admin, member):
    conn = connection_on(admin, member, **{
        "provider:network_type": "vlan", "provider:physical_network": "public",
        "provider:segmentation_id": 42})
    with pytest.raises(UsageError, match="vlan network \\(segmentation id 42\\)"):
        make_plan(as_admin(api), conn, "br-ex", None, None)


def test_a_caller_who_may_not_read_the_psk_cannot_test(served):  # noqa: F811
    server = served('"get_ipsec_site_connection:psk": "rule:admin_only"\n')
    with server.client("adminproj", roles="admin,member,reader", user="admin") as admin, \
            server.client("demoproj") as member:
        topo = build(admin, member)
        ike, ipsec = make_policies(member)
        service = ok(member.post("/v2.0/vpn/vpnservices", json={"vpnservice": {
            "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
        conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
            "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": "172.24.5.50", "peer_id": "172.24.5.50", "psk": "s3cret-psk",
            "peer_cidrs": ["10.50.0.0/24"]}}))["ipsec_site_connection"]
    as_member = Api(server.url, {"X-Project-Id": "demoproj", "X-Roles": "member,reader"})
    with pytest.raises(UsageError, match="holds no pre-shared key"):
        make_plan(as_member, conn["id"], "br-test", None, None)
    assert make_plan(as_admin(server), conn["id"], "br-test", None, None).peer_cidrs == (
        "10.50.0.0/24",)
