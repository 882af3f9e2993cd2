"""VPN services, endpoint groups and site connections: every Neutron rule, and no half writes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from isthmus.db import models
from tests.api.test_policies import error
from tests.api.topology import ok

SERVICES = "/v2.0/vpn/vpnservices"
GROUPS = "/v2.0/vpn/endpoint-groups"
CONNS = "/v2.0/vpn/ipsec-site-connections"


def make_policies(client) -> tuple[str, str]:
    ike = ok(client.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "ike"}}))
    ipsec = ok(client.post("/v2.0/vpn/ipsecpolicies", json={"ipsecpolicy": {"name": "esp"}}))
    return ike["ikepolicy"]["id"], ipsec["ipsecpolicy"]["id"]


def group(client, kind: str, endpoints: list) -> str:
    return ok(client.post(GROUPS, json={"endpoint_group": {"type": kind,
                                                           "endpoints": endpoints}}))[
        "endpoint_group"]["id"]


def count(api, table) -> int:
    with api.db.read() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def set_status(api, table, id_: str, status: str) -> None:
    with api.db.write() as conn:
        conn.execute(sa.update(table).where(table.c.id == id_).values(status=status))


@pytest.fixture
def legacy(member, topo):
    """A legacy-mode service (subnet_id set) and a valid connection body for it."""
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_a}}))["vpnservice"]
    body = {"vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": "secret",
            "peer_cidrs": ["10.50.0.0/24"]}
    return service, body


@pytest.fixture
def epg(member, topo):
    """An endpoint-group-mode service and a valid connection body for it."""
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {"router_id": topo.router}}))[
        "vpnservice"]
    local = group(member, "subnet", [topo.subnet_a, topo.subnet_b])
    peer = group(member, "cidr", ["10.20.0.0/24", "10.21.0.0/24"])
    body = {"vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": "203.0.113.5", "peer_id": "203.0.113.5", "psk": "secret",
            "local_ep_group_id": local, "peer_ep_group_id": peer}
    return service, body


def test_service_gets_gateway_addresses(member, topo, legacy):
    service, _ = legacy
    assert service["external_v4_ip"] == topo.gateway_v4
    assert service["external_v6_ip"] == topo.gateway_v6
    assert service["status"] == "PENDING_CREATE"
    ports = ok(member.get("/v2.0/ports", params={"device_id": topo.router}), 200)["ports"]
    owners = sorted(p["device_owner"] for p in ports)
    assert owners == ["network:router_gateway"] + ["network:router_interface"] * 3
    gw = next(p for p in ports if p["device_owner"] == "network:router_gateway")
    assert {f["ip_address"] for f in gw["fixed_ips"]} == {topo.gateway_v4, topo.gateway_v6}


def test_service_needs_gateway_and_attached_subnet(api, member, topo):
    bare = ok(member.post("/v2.0/routers", json={"router": {"name": "nogw"}}))["router"]["id"]
    assert error(member.post(SERVICES, json={"vpnservice": {"router_id": bare}}), 400)[
        "type"] == "RouterIsNotExternal"
    assert error(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_unattached}}), 400)[
        "type"] == "SubnetIsNotConnectedToRouter"
    assert error(member.post(SERVICES, json={"vpnservice": {"router_id": "not-a-uuid"}}),
                 400)["message"] == "Invalid input for router_id. Reason: 'not-a-uuid' is not " \
                                    "a valid UUID."
    assert count(api, models.Base.metadata.tables["vpnservices"]) == 0


def test_service_update_refused_while_pending_then_allowed(api, member, legacy):
    service, _ = legacy
    err = error(member.put(f"{SERVICES}/{service['id']}",
                           json={"vpnservice": {"name": "x"}}), 400)
    assert err["type"] == "VPNStateInvalidToUpdate"
    set_status(api, models.Base.metadata.tables["vpnservices"], service["id"], "ACTIVE")
    updated = ok(member.put(f"{SERVICES}/{service['id']}", json={"vpnservice": {
        "name": "x", "admin_state_up": "false"}}), 200)["vpnservice"]
    assert (updated["name"], updated["admin_state_up"], updated["status"]) == ("x", False, "ACTIVE")
    assert error(member.put(f"{SERVICES}/{service['id']}", json={"vpnservice": {
        "router_id": service["router_id"]}}), 400)["message"] == \
        "Cannot update read-only attribute router_id"


def test_legacy_connection_defaults(member, legacy):
    _, body = legacy
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": body}))["ipsec_site_connection"]
    assert conn["dpd"] == {"action": "hold", "interval": 30, "timeout": 120}
    assert (conn["mtu"], conn["initiator"], conn["auth_mode"], conn["route_mode"]) == \
        (1500, "bi-directional", "psk", "static")
    assert (conn["local_id"], conn["local_ep_group_id"], conn["status"]) == \
        ("", None, "PENDING_CREATE")


@pytest.mark.parametrize("change,error_type", [
    ({"peer_cidrs": []}, "MissingPeerCidrs"),
    ({"peer_cidrs": ["10.50.0.0/24", "2001:db8:99::/64"]}, "MixedIPVersionsForPeerCidrs"),
    ({"peer_cidrs": ["2001:db8:99::/64"]}, "MixedIPVersionsForIPSecConnection"),
    ({"dpd": {"interval": 30, "timeout": 30}}, "IPsecSiteConnectionDpdIntervalValueError"),
    ({"dpd": {"interval": 200}}, "IPsecSiteConnectionDpdIntervalValueError"),
    ({"mtu": 67}, "IPsecSiteConnectionMtuError"),
    ({"peer_address": "no such host.invalid"}, "VPNPeerAddressNotResolved"),
    ({"peer_address": "2001:db8:77::1"}, None),
    ({"ikepolicy_id": "00000000-0000-0000-0000-000000000000"}, "IKEPolicyNotFound"),
    ({"ipsecpolicy_id": "00000000-0000-0000-0000-000000000000"}, "IPsecPolicyNotFound"),
    ({"vpnservice_id": "00000000-0000-0000-0000-000000000000"}, "VPNServiceNotFound"),
])
def test_legacy_connection_rules(api, member, legacy, change, error_type):
    _, body = legacy
    response = member.post(CONNS, json={"ipsec_site_connection": {**body, **change}})
    if error_type is None:
        assert response.status_code == 201, response.text
        return
    assert error(response, 404 if error_type.endswith("NotFound") else 400)["type"] == error_type
    assert count(api, models.Base.metadata.tables["ipsec_site_connections"]) == 0 and count(api, models.Base.metadata.tables["ipsec_peer_cidrs"]) == 0


@pytest.mark.parametrize("change,reason", [
    ({"peer_cidrs": ["10.50.0.0/33"]}, "'10.50.0.0/33' is not a valid IP subnet"),
    ({"peer_cidrs": ["10.50.0/24"]}, "'10.50.0/24' is not a valid IP subnet"),
    ({"peer_cidrs": ["10.50.0.0/24", "10.50.0.0/24"]}, "Duplicate items in the list"),
    ({"mtu": "big"}, "'big' is not an integer"),
    ({"mtu": 70000}, "too large"),
    ({"dpd": {"action": "explode"}}, "explode is not in valid_values"),
    ({"dpd": {"interval": -1}}, "should be non-negative"),
    ({"initiator": "sometimes"}, "sometimes is not in valid_values"),
    ({"psk": "x" * 256}, "exceeds maximum length of 255"),
    ({"psk": "a\x00b"}, "contains a NUL character"),
])
def test_connection_attribute_validation(member, legacy, change, reason):
    _, body = legacy
    err = error(member.post(CONNS, json={"ipsec_site_connection": {**body, **change}}), 400)
    assert err["type"] == "HTTPBadRequest" and reason in err["message"], err


def test_mtu_minimum_is_per_ip_version_and_zero_skips(member, topo):
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": topo.router, "subnet_id": topo.subnet_v6}}))["vpnservice"]
    body = {"vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
            "peer_address": "2001:db8:77::1", "peer_id": "peer", "psk": "s",
            "peer_cidrs": ["2001:db8:99::/64"]}
    err = error(member.post(CONNS, json={"ipsec_site_connection": {**body, "mtu": 1279}}), 400)
    assert err["message"] == "ipsec_site_connection MTU 1279 is too small for ipv6"
    ok(member.post(CONNS, json={"ipsec_site_connection": {**body, "mtu": 1280}}))
    ok(member.post(CONNS, json={"ipsec_site_connection": {**body, "mtu": 0}}))


def test_peer_without_matching_gateway_family(admin, member, topo):
    ike, ipsec = make_policies(member)
    net = ok(admin.post("/v2.0/networks", json={"network": {"router:external": True}}))
    ok(admin.post("/v2.0/subnets", json={"subnet": {"network_id": net["network"]["id"],
                                                    "ip_version": 4, "cidr": "198.51.100.0/24"}}))
    router = ok(member.post("/v2.0/routers", json={"router": {
        "external_gateway_info": {"network_id": net["network"]["id"]}}}))["router"]["id"]
    ok(member.put(f"/v2.0/routers/{router}/add_router_interface",
                  json={"subnet_id": topo.subnet_unattached}), 200)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": router, "subnet_id": topo.subnet_unattached}}))["vpnservice"]
    assert service["external_v6_ip"] is None
    err = error(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service["id"], "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "2001:db8:77::1", "peer_id": "p", "psk": "s",
        "peer_cidrs": ["10.60.0.0/24"]}}), 400)
    assert err["message"] == f"Router's {router} external network has no IPv6 subnet"


def test_fqdn_peer_is_stored_resolved(member, legacy):
    _, body = legacy
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": {
        **body, "peer_address": "localhost"}}))["ipsec_site_connection"]
    assert conn["peer_address"] in ("127.0.0.1", "::1")


def test_endpoint_group_connection(member, epg):
    _, body = epg
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": body}))["ipsec_site_connection"]
    assert conn["peer_cidrs"] == [] and conn["local_ep_group_id"] == body["local_ep_group_id"]


def test_endpoint_group_mode_rules(member, topo, epg, legacy):
    _, body = epg
    def post(**change):
        return member.post(CONNS, json={"ipsec_site_connection": {**body, **change}})
    assert error(post(peer_cidrs=["10.9.0.0/24"]), 400)["type"] == "PeerCidrsInvalid"
    err = error(post(local_ep_group_id=None, peer_ep_group_id=None), 400)
    assert err["message"] == ("Missing endpoint groups local and peer for IPSec site-to-site "
                              "connection")
    assert error(post(local_ep_group_id=body["peer_ep_group_id"]), 400)["type"] == \
        "WrongEndpointGroupType"
    v6_peer = group(member, "cidr", ["2001:db8:9::/64"])
    assert error(post(peer_ep_group_id=v6_peer), 400)["type"] == \
        "MixedIPVersionsForIPSecConnection"
    mixed_local = group(member, "subnet", [topo.subnet_a, topo.subnet_v6])
    assert error(post(local_ep_group_id=mixed_local), 400)["type"] == \
        "MixedIPVersionsForIPSecEndpoints"
    not_attached = group(member, "subnet", [topo.subnet_unattached])
    assert error(post(local_ep_group_id=not_attached), 400)["type"] == \
        "SubnetIsNotConnectedToRouter"
    # A legacy service refuses groups.
    _, legacy_body = legacy
    err = error(member.post(CONNS, json={"ipsec_site_connection": {
        **legacy_body, "local_ep_group_id": body["local_ep_group_id"]}}), 400)
    assert err["message"] == ("Endpoint group local cannot be specified, when VPN Service has "
                              "subnet specified")


@pytest.mark.parametrize("kind,endpoints,error_type", [
    ("cidr", [], "MissingEndpointForEndpointGroup"),
    ("cidr", ["10.0.0.300/24"], "InvalidEndpointInEndpointGroup"),
    ("cidr", ["2000::1"], "InvalidEndpointInEndpointGroup"),
    ("cidr", ["10.0.0.0/24", "10.0.0.0/24"], "InvalidEndpointInEndpointGroup"),
    ("subnet", ["not-a-uuid"], "InvalidEndpointInEndpointGroup"),
    ("subnet", ["00000000-0000-0000-0000-000000000000"], "NonExistingSubnetInEndpointGroup"),
    ("vlan", [5], "InvalidEndpointInEndpointGroup"),
])
def test_endpoint_group_validation(api, member, kind, endpoints, error_type):
    err = error(member.post(GROUPS, json={"endpoint_group": {"type": kind,
                                                             "endpoints": endpoints}}), 400)
    assert err["type"] == error_type
    assert count(api, models.Base.metadata.tables["vpn_endpoint_groups"]) == 0 and count(api, models.Base.metadata.tables["vpn_endpoints"]) == 0


def test_endpoint_group_scalar_is_wrapped_and_updates_limited(member):
    gid = group(member, "cidr", "10.0.0.0/24")
    assert ok(member.get(f"{GROUPS}/{gid}"), 200)["endpoint_group"]["endpoints"] == ["10.0.0.0/24"]
    assert error(member.put(f"{GROUPS}/{gid}", json={"endpoint_group": {"type": "subnet"}}),
                 400)["message"] == "Cannot update read-only attribute type"
    assert ok(member.get(GROUPS, params={"endpoint_type": "cidr"}), 200)["endpoint_groups"]
    assert not ok(member.get(GROUPS, params={"type": "subnet"}), 200)["endpoint_groups"]


def test_connection_update_rules(api, member, legacy):
    _, body = legacy
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": body}))["ipsec_site_connection"]
    url = f"{CONNS}/{conn['id']}"
    assert error(member.put(url, json={"ipsec_site_connection": {"name": "x"}}), 400)[
        "type"] == "VPNStateInvalidToUpdate"
    set_status(api, models.Base.metadata.tables["ipsec_site_connections"], conn["id"], "ACTIVE")
    updated = ok(member.put(url, json={"ipsec_site_connection": {
        "dpd": {"interval": 10, "timeout": 50}, "peer_cidrs": ["10.51.0.0/24", "10.50.0.0/24"],
        "mtu": "1300"}}), 200)["ipsec_site_connection"]
    assert updated["dpd"] == {"action": "hold", "interval": 10, "timeout": 50}
    assert updated["peer_cidrs"] == ["10.50.0.0/24", "10.51.0.0/24"] and updated["mtu"] == 1300
    assert error(member.put(url, json={"ipsec_site_connection": {"dpd": {"interval": 60}}}),
                 400)["type"] == "IPsecSiteConnectionDpdIntervalValueError"
    assert error(member.put(url, json={"ipsec_site_connection": {"peer_cidrs": []}}), 400)[
        "type"] == "MissingPeerCidrs"
    assert error(member.put(url, json={"ipsec_site_connection": {
        "vpnservice_id": body["vpnservice_id"]}}), 400)["message"] == \
        "Cannot update read-only attribute vpnservice_id"
    # Isthmus extension: policies may be switched (the old one is then free to delete).
    other_ike, other_ipsec = make_policies(member)
    switched = ok(member.put(url, json={"ipsec_site_connection": {
        "ikepolicy_id": other_ike, "ipsecpolicy_id": other_ipsec}}), 200)["ipsec_site_connection"]
    assert (switched["ikepolicy_id"], switched["ipsecpolicy_id"]) == (other_ike, other_ipsec)
    assert member.delete(f"/v2.0/vpn/ikepolicies/{body['ikepolicy_id']}").status_code == 204
    assert error(member.put(url, json={"ipsec_site_connection": {
        "ipsecpolicy_id": "00000000-0000-0000-0000-000000000000"}}), 404)["type"] == \
        "IPsecPolicyNotFound"
    assert ok(member.get(url), 200)["ipsec_site_connection"]["peer_cidrs"] == \
        ["10.50.0.0/24", "10.51.0.0/24"]


def test_in_use_protection(admin, member, topo, legacy, epg):
    service, body = legacy
    conn = ok(member.post(CONNS, json={"ipsec_site_connection": body}))["ipsec_site_connection"]
    epg_service, epg_body = epg
    epg_conn = ok(member.post(CONNS, json={"ipsec_site_connection": epg_body}))[
        "ipsec_site_connection"]
    ike, ipsec = body["ikepolicy_id"], body["ipsecpolicy_id"]
    assert error(member.delete(f"/v2.0/vpn/ikepolicies/{ike}"), 409)["type"] == "IKEPolicyInUse"
    assert error(member.put(f"/v2.0/vpn/ikepolicies/{ike}", json={"ikepolicy": {"name": "n"}}),
                 409)["type"] == "IKEPolicyInUse"
    assert error(member.delete(f"/v2.0/vpn/ipsecpolicies/{ipsec}"), 409)["type"] == \
        "IPsecPolicyInUse"
    assert error(member.delete(f"{SERVICES}/{service['id']}"), 409)["type"] == "VPNServiceInUse"
    assert error(member.delete(f"{GROUPS}/{epg_body['local_ep_group_id']}"), 400)["type"] == \
        "EndpointGroupInUse"
    router = topo.router
    assert error(member.put(f"/v2.0/routers/{router}", json={"router": {
        "external_gateway_info": {}}}), 409)["type"] == "RouterInUse"
    assert error(member.put(f"/v2.0/routers/{router}/remove_router_interface",
                            json={"subnet_id": topo.subnet_a}), 409)["type"] == \
        "SubnetInUseByVPNService"
    assert error(member.put(f"/v2.0/routers/{router}/remove_router_interface",
                            json={"subnet_id": topo.subnet_b}), 409)["type"] == \
        "SubnetInUseByIPsecSiteConnection"
    err = error(member.delete(f"/v2.0/subnets/{topo.subnet_b}"), 409)
    assert err["type"] == "SubnetInUse"
    assert error(member.delete(f"/v2.0/routers/{router}"), 409)["type"] == "RouterInUse"
    # Delete in the right order and everything goes.
    for url in (f"{CONNS}/{conn['id']}", f"{CONNS}/{epg_conn['id']}",
                f"{SERVICES}/{service['id']}", f"{SERVICES}/{epg_service['id']}",
                f"{GROUPS}/{epg_body['local_ep_group_id']}", f"/v2.0/vpn/ikepolicies/{ike}"):
        assert member.delete(url).status_code == 204, url
    for subnet in (topo.subnet_a, topo.subnet_b, topo.subnet_v6):
        ok(member.put(f"/v2.0/routers/{router}/remove_router_interface",
                      json={"subnet_id": subnet}), 200)
    ok(member.put(f"/v2.0/routers/{router}", json={"router": {"external_gateway_info": None}}),
       200)
    assert member.delete(f"/v2.0/routers/{router}").status_code == 204
    assert ok(member.get("/v2.0/ports"), 200)["ports"] == []
