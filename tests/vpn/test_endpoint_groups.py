"""Endpoint groups: each endpoint is checked against the group's type."""

from __future__ import annotations

import uuid

import pytest

from isthmus.vpn import exceptions as vexc


def test_cidr_and_subnet_groups_keep_their_endpoints(domain):
    topo = domain.topology()
    cidrs = domain.create("endpoint_groups", type="cidr",
                          endpoints=["10.50.0.0/24", "2001:db8:50::/64"])
    assert cidrs["endpoints"] == ["10.50.0.0/24", "2001:db8:50::/64"]
    subnets = domain.create("endpoint_groups", type="subnet", endpoints=[topo["subnet"]])
    assert subnets["endpoints"] == [topo["subnet"]]


@pytest.mark.parametrize("kind, endpoints, error, why", [
    ("cidr", [], vexc.MissingEndpointForEndpointGroup, "No endpoints"),
    ("cidr", ["10.50.0.0/24", "10.50.0.0/24"], vexc.InvalidEndpointInEndpointGroup,
     "unique"),
    ("cidr", ["10.50.0.300/24"], vexc.InvalidEndpointInEndpointGroup, "Invalid CIDR"),
    ("cidr", [""], vexc.InvalidEndpointInEndpointGroup, "non-empty"),
    ("subnet", ["not-a-uuid"], vexc.InvalidEndpointInEndpointGroup, "Invalid UUID"),
    ("subnet", [str(uuid.UUID(int=7))], vexc.NonExistingSubnetInEndpointGroup,
     str(uuid.UUID(int=7))),
])
def test_bad_endpoints_are_refused(domain, kind, endpoints, error, why):
    with pytest.raises(error, match=why):
        domain.create("endpoint_groups", type=kind, endpoints=endpoints)
