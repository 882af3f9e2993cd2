"""IPAM rules on ``ipaddress`` objects: defaults as Neutron 29 answers, pool checks."""

from __future__ import annotations

import json
from ipaddress import ip_address as ip
from ipaddress import ip_network as net

import pytest

from isthmus.network import exceptions as nexc
from isthmus.network import ipam


@pytest.mark.parametrize("cidr, gateway, pools", [
    ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
    ("10.0.0.0/31", "10.0.0.0", [("10.0.0.1", "10.0.0.1")]),
    ("10.0.0.4/32", "10.0.0.4", []),
    # IPv6: the subnet-router anycast address is the gateway; the pool runs to the end.
    ("2001:db8::/64", "2001:db8::", [("2001:db8::1", "2001:db8::ffff:ffff:ffff:ffff")]),
])
def test_default_gateway_and_pools(cidr, gateway, pools):
    network = net(cidr)
    assert ipam.default_gateway(network) == ip(gateway)
    assert ipam.default_pools(network, ip(gateway)) == [(ip(a), ip(b)) for a, b in pools]


def test_default_pools_split_around_a_gateway_inside_the_range():
    assert ipam.default_pools(net("10.0.0.0/29"), ip("10.0.0.3")) == [
        (ip("10.0.0.1"), ip("10.0.0.2")), (ip("10.0.0.4"), ip("10.0.0.6"))]


def test_default_pools_without_gateway_are_the_usable_range():
    assert ipam.default_pools(net("10.0.0.0/29"), None) == [(ip("10.0.0.1"), ip("10.0.0.6"))]


@pytest.mark.parametrize("pools, gateway, error", [
    ([("10.0.0.9", "10.0.0.5")], None, nexc.InvalidAllocationPool),
    ([("2001:db8::1", "2001:db8::5")], None, nexc.InvalidAllocationPool),
    ([("10.0.0.2", "10.0.1.5")], None, nexc.OutOfBoundsAllocationPool),
    ([("10.0.0.2", "10.0.0.20"), ("10.0.0.20", "10.0.0.30")], None,
     nexc.OverlappingAllocationPools),
    ([("10.0.0.1", "10.0.0.20")], "10.0.0.1", nexc.GatewayConflictWithAllocationPools),
])
def test_check_pools_refuses(pools, gateway, error):
    with pytest.raises(error):
        ipam.check_pools(net("10.0.0.0/24"), [(ip(a), ip(b)) for a, b in pools],
                         ip(gateway) if gateway else None)


def test_check_pools_accepts_disjoint_pools_beside_the_gateway():
    ipam.check_pools(net("10.0.0.0/24"), [(ip("10.0.0.20"), ip("10.0.0.30")),
                                          (ip("10.0.0.2"), ip("10.0.0.10"))], ip("10.0.0.1"))


def test_first_free_skips_used_addresses_and_pools():
    pools = [(ip("10.0.0.2"), ip("10.0.0.3")), (ip("10.0.0.10"), ip("10.0.0.11"))]
    assert ipam.first_free(pools, set()) == ip("10.0.0.2")
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3"}) == ip("10.0.0.10")
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"}) is None


def test_stored_pools_read_what_subnets_store():
    stored = json.dumps([{"start": "10.0.0.2", "end": "10.0.0.9"},
                         {"start": "2001:db8::2", "end": "2001:db8::9"}])
    assert ipam.stored_pools(stored) == [(ip("10.0.0.2"), ip("10.0.0.9")),
                                         (ip("2001:db8::2"), ip("2001:db8::9"))]
    assert ipam.pool_text(ipam.stored_pools(stored)[0]) == "10.0.0.2-10.0.0.9"
