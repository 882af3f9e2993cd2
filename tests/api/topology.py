"""Builds the networking a VPN service needs, through the API, as a client would."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


def ok(response: httpx.Response, status: int = 201) -> dict:
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


@dataclass
class Topology:
    public_net: str
    public_v4: str
    public_v6: str
    private_net: str
    subnet_a: str          # attached to the router
    subnet_b: str          # attached to the router
    subnet_unattached: str
    subnet_v6: str         # attached to the router
    router: str
    gateway_v4: str
    gateway_v6: str


def build(admin: httpx.Client, member: httpx.Client) -> Topology:
    net = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "public", "router:external": True}}))["network"]["id"]
    v4 = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net, "ip_version": 4, "cidr": "172.24.5.0/24",
        "gateway_ip": "172.24.5.1", "enable_dhcp": False}}))["subnet"]["id"]
    v6 = ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net, "ip_version": 6, "cidr": "2001:db8:2::/64",
        "enable_dhcp": False}}))["subnet"]["id"]
    private = ok(member.post("/v2.0/networks", json={"network": {"name": "private"}}))
    private_id = private["network"]["id"]

    def subnet(cidr: str, version: int = 4) -> str:
        return ok(member.post("/v2.0/subnets", json={"subnet": {
            "network_id": private_id, "ip_version": version, "cidr": cidr}}))["subnet"]["id"]

    a, b, c = subnet("10.1.0.0/24"), subnet("10.2.0.0/24"), subnet("10.3.0.0/24")
    s6 = subnet("2001:db8:10::/64", 6)
    router = ok(member.post("/v2.0/routers", json={"router": {
        "name": "r1", "external_gateway_info": {"network_id": net}}}))["router"]
    for sid in (a, b, s6):
        ok(member.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                      json={"subnet_id": sid}), 200)
    fixed = {("6" if ":" in f["ip_address"] else "4"): f["ip_address"]
             for f in router["external_gateway_info"]["external_fixed_ips"]}
    return Topology(net, v4, v6, private_id, a, b, c, s6, router["id"], fixed["4"], fixed["6"])
