"""Router interfaces and gateways: the rules Neutron applies, on a real database."""

from __future__ import annotations

import pytest

from isthmus.exceptions import BadRequest
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER
from tests.domain import MEMBER


def _ports(domain, router_id: str, owner: str) -> list[dict]:
    with domain.services.db.read() as conn:
        return domain.services.ports.router_ports(conn, router_id, owner)


def test_a_router_gets_a_gateway_port_and_one_port_per_interface(domain):
    topo = domain.topology()
    [gateway] = _ports(domain, topo["router"], GATEWAY_OWNER)
    assert {f["ip_address"].count(":") > 0 for f in gateway["fixed_ips"]} == {False, True}
    [interface] = _ports(domain, topo["router"], INTERFACE_OWNER)
    assert interface["fixed_ips"] == [{"subnet_id": topo["subnet"], "ip_address": "10.1.0.1"}]


def _private_subnet(domain, cidr: str, **extra) -> str:
    net = domain.create("networks", name="more")
    return domain.create("subnets", network_id=net["id"], ip_version=4, cidr=cidr,
                         **extra)["id"]


@pytest.mark.parametrize("subnet, message", [
    (lambda d, topo: topo["subnet"], "already has a port on subnet"),
    (lambda d, topo: _private_subnet(d, "10.1.0.128/25"), "overlaps with cidr 10.1.0.0/24"),
    (lambda d, topo: _private_subnet(d, "10.9.0.0/24", gateway_ip=None), "gateway IP"),
    (lambda d, topo: topo["public_v4"], "on external network"),
])
def test_interfaces_that_neutron_refuses(domain, subnet, message):
    topo = domain.topology()
    with pytest.raises(BadRequest, match=message):
        domain.services.router_interface(MEMBER, topo["router"], "add",
                                         {"subnet_id": subnet(domain, topo)})
    assert len(_ports(domain, topo["router"], INTERFACE_OWNER)) == 1
