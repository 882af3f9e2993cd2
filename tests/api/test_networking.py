"""Networks, subnets, routers and ports: the part of Neutron's core VPN services need."""

from __future__ import annotations

import concurrent.futures

import pytest

from tests.api.test_policies import error
from tests.api.topology import ok

NETS, SUBNETS, ROUTERS = "/v2.0/networks", "/v2.0/subnets", "/v2.0/routers"


def network(client, **attrs) -> str:
    return ok(client.post(NETS, json={"network": attrs}))["network"]["id"]


def subnet(client, net: str, cidr: str, version: int = 4, **attrs) -> dict:
    return ok(client.post(SUBNETS, json={"subnet": {"network_id": net, "cidr": cidr,
                                                    "ip_version": version, **attrs}}))["subnet"]


def test_subnet_defaults_match_neutron(member):
    net = network(member)
    v4 = subnet(member, net, "10.1.0.0/24")
    assert (v4["gateway_ip"], v4["allocation_pools"], v4["enable_dhcp"]) == \
        ("10.1.0.1", [{"start": "10.1.0.2", "end": "10.1.0.254"}], True)
    v6 = subnet(member, net, "2001:db8:2::/64", 6, enable_dhcp=False)
    assert v6["gateway_ip"] == "2001:db8:2::"
    assert v6["allocation_pools"] == [{"start": "2001:db8:2::1",
                                       "end": "2001:db8:2:0:ffff:ffff:ffff:ffff"}]
    middle = subnet(member, net, "10.9.0.0/29", gateway_ip="10.9.0.3")
    assert middle["allocation_pools"] == [{"start": "10.9.0.1", "end": "10.9.0.2"},
                                          {"start": "10.9.0.4", "end": "10.9.0.6"}]
    none = subnet(member, net, "10.8.0.0/24", gateway_ip=None)
    assert none["gateway_ip"] is None
    assert ok(member.get(f"{NETS}/{net}"), 200)["network"]["subnets"] == sorted(
        [v4["id"], v6["id"], middle["id"], none["id"]])


@pytest.mark.parametrize("attrs,status,error_type", [
    ({"cidr": "10.1.0.0/24", "ip_version": 6}, 400, "InvalidInput"),
    ({"cidr": "10.1.0.0/33"}, 400, "HTTPBadRequest"),
    ({"ip_version": 5}, 400, "HTTPBadRequest"),
    ({"gateway_ip": "10.7.0.1"}, 400, "InvalidInput"),
    ({"allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.5"}]}, 400,
     "InvalidAllocationPool"),
    ({"allocation_pools": [{"start": "10.1.0.10", "end": "10.1.1.5"}]}, 400,
     "OutOfBoundsAllocationPool"),
    ({"allocation_pools": [{"start": "10.1.0.1", "end": "10.1.0.5"}]}, 409,
     "GatewayConflictWithAllocationPools"),
    ({"allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"},
                           {"start": "10.1.0.15", "end": "10.1.0.30"}]}, 409,
     "OverlappingAllocationPools"),
    ({"allocation_pools": [{"start": "10.1.0.10"}]}, 400, "HTTPBadRequest"),
])
def test_subnet_validation(member, attrs, status, error_type):
    net = network(member)
    body = {"network_id": net, "cidr": "10.1.0.0/24", "ip_version": 4, **attrs}
    assert error(member.post(SUBNETS, json={"subnet": body}), status)["type"] == error_type
    assert ok(member.get(SUBNETS), 200)["subnets"] == []


def test_overlapping_subnets_on_one_network(member):
    net = network(member)
    subnet(member, net, "10.1.0.0/24")
    assert "overlaps" in error(member.post(SUBNETS, json={"subnet": {
        "network_id": net, "cidr": "10.1.0.128/25", "ip_version": 4}}), 400)["message"]


def test_external_and_shared_are_admin_only(admin, member, other):
    err = error(member.post(NETS, json={"network": {"router:external": True}}), 403)
    assert err["message"] == "rule:create_network:router:external is disallowed by policy"
    network(member, **{"router:external": False})
    public = network(admin, **{"router:external": True})
    assert ok(other.get(f"{NETS}/{public}"), 200)["network"]["router:external"] is True
    assert error(other.delete(f"{NETS}/{public}"), 403)["type"] == "PolicyNotAuthorized"


def test_router_gateway_and_interfaces(admin, member):
    public = network(admin, **{"router:external": True})
    pub = subnet(admin, public, "172.24.5.0/24")
    private = network(member)
    a = subnet(member, private, "10.1.0.0/24")
    overlapping_net = network(member)
    overlap = subnet(member, overlapping_net, "10.1.0.0/25")
    router = ok(member.post(ROUTERS, json={"router": {
        "external_gateway_info": {"network_id": public}}}))["router"]
    gateway = router["external_gateway_info"]
    assert gateway["enable_snat"] is True
    assert gateway["external_fixed_ips"] == [{"subnet_id": pub["id"], "ip_address": "172.24.5.2"}]
    url = f"{ROUTERS}/{router['id']}"
    info = ok(member.put(f"{url}/add_router_interface", json={"subnet_id": a["id"]}), 200)
    assert set(info) == {"id", "project_id", "port_id", "network_id", "subnet_id", "subnet_ids"}
    port = ok(member.get(f"/v2.0/ports/{info['port_id']}"), 200)["port"]
    assert port["fixed_ips"] == [{"subnet_id": a["id"], "ip_address": "10.1.0.1"}]
    assert port["device_owner"] == "network:router_interface"
    assert "already has a port" in error(member.put(f"{url}/add_router_interface",
                                                    json={"subnet_id": a["id"]}), 400)["message"]
    assert "overlaps" in error(member.put(f"{url}/add_router_interface",
                                          json={"subnet_id": overlap["id"]}), 400)["message"]
    assert error(member.put(f"{url}/add_router_interface", json={}), 400)
    assert error(member.put(f"{url}/remove_router_interface",
                            json={"subnet_id": overlap["id"]}), 404)["type"] == \
        "RouterInterfaceNotFoundForSubnet"
    assert error(member.delete(f"{SUBNETS}/{a['id']}"), 409)["type"] == "SubnetInUse"
    assert error(member.delete(f"{NETS}/{private}"), 409)["type"] == "NetworkInUse"
    # A non-external network cannot be a gateway, and the failed update changes nothing.
    assert error(member.put(url, json={"router": {"external_gateway_info": {
        "network_id": private}}}), 400)
    assert ok(member.get(url), 200)["router"]["external_gateway_info"] == gateway
    assert error(admin.put(f"{NETS}/{public}", json={"network": {"router:external": False}}),
                 409)["type"] == "ExternalNetworkInUse"


def test_router_gateway_details_are_admin_only(admin, member):
    public = network(admin, **{"router:external": True})
    subnet(admin, public, "172.24.5.0/24")
    err = error(member.post(ROUTERS, json={"router": {"external_gateway_info": {
        "network_id": public, "external_fixed_ips": [{"ip_address": "172.24.5.50"}]}}}), 403)
    assert err["type"] == "PolicyNotAuthorized"
    router = ok(admin.post(ROUTERS, json={"router": {"project_id": "demoproj",
        "external_gateway_info": {"network_id": public, "enable_snat": False,
                                  "external_fixed_ips": [{"ip_address": "172.24.5.50"}]}}}))
    gateway = router["router"]["external_gateway_info"]
    assert gateway["enable_snat"] is False
    assert gateway["external_fixed_ips"][0]["ip_address"] == "172.24.5.50"
    assert error(admin.post(ROUTERS, json={"router": {"external_gateway_info": {
        "network_id": public, "external_fixed_ips": [{"ip_address": "172.24.5.50"}]}}}),
        409)["type"] == "IpAddressAlreadyAllocated"
    assert ok(member.get(ROUTERS), 200)["routers"][0]["id"] == router["router"]["id"]


def test_router_placement_attributes_are_admin_only(admin, member):
    router = ok(admin.post(ROUTERS, json={"router": {
        "project_id": "demoproj", "isthmus:agent_host": "agent-1",
        "isthmus:namespace": "qrouter-x"}}))["router"]
    assert (router["isthmus:agent_host"], router["isthmus:namespace"]) == ("agent-1", "qrouter-x")
    seen = ok(member.get(f"{ROUTERS}/{router['id']}"), 200)["router"]
    assert "isthmus:agent_host" not in seen and "isthmus:namespace" not in seen
    assert error(member.put(f"{ROUTERS}/{router['id']}", json={"router": {
        "isthmus:agent_host": "mine"}}), 403)["type"] == "PolicyNotAuthorized"
    moved = ok(admin.put(f"{ROUTERS}/{router['id']}", json={"router": {
        "isthmus:agent_host": "agent-2"}}), 200)["router"]
    assert moved["isthmus:agent_host"] == "agent-2"
    hosts = ok(admin.get(ROUTERS, params={"isthmus:agent_host": "agent-2"}), 200)["routers"]
    assert [r["id"] for r in hosts] == [router["id"]]


def test_failed_router_create_leaves_nothing(admin, member):
    private = network(member)
    err = error(member.post(ROUTERS, json={"router": {"external_gateway_info": {
        "network_id": private}}}), 400)
    assert "not a valid external network" in err["message"]
    assert ok(member.get(ROUTERS), 200)["routers"] == []
    assert ok(member.get("/v2.0/ports"), 200)["ports"] == []


def test_concurrent_creates_all_land(member):
    def create(i: int) -> int:
        return member.post("/v2.0/vpn/ikepolicies",
                           json={"ikepolicy": {"name": f"c{i}"}}).status_code
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(80)))
    assert codes == [201] * 80
    assert len(ok(member.get("/v2.0/vpn/ikepolicies"), 200)["ikepolicies"]) == 80
