"""A router's extra routes are validated as Neutron 29 validates them."""

from __future__ import annotations

import pytest

from isthmus.attributes import InvalidValue
from isthmus.network.routers import parse_routes


def test_routes_are_kept_as_written_and_null_is_none():
    routes = [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.5"},
              {"destination": "2001:db8:1::/48", "nexthop": "2001:db8::5"}]
    assert parse_routes(routes) == routes
    assert parse_routes(None) == []


@pytest.mark.parametrize("value, message", [
    ("10.1.0.0/16", "Invalid data format for hostroute"),
    (["10.1.0.0/16"], "must be a dictionary with keys"),
    ([{"destination": "10.1.0.0/16"}], "Expected keys"),
    ([{"destination": "10.1.0.0/16", "nexthop": "10.0.0.5", "x": 1}], "Provided keys"),
    ([{"destination": "10.1.0.1/16", "nexthop": "10.0.0.5"}], "is not a valid CIDR"),
    ([{"destination": "10.1.0.0", "nexthop": "10.0.0.5"}], "is not a valid CIDR"),
    ([{"destination": " 10.1.0.0/16", "nexthop": "10.0.0.5"}], "is not a valid CIDR"),
    ([{"destination": "10.1.0.0/16", "nexthop": "10.0.0.500"}], "10.0.0.500"),
    ([{"destination": "10.1.0.0/16", "nexthop": "10.0.0.5"}] * 2, "Duplicate hostroute"),
])
def test_bad_routes_are_refused_with_what_is_wrong(value, message):
    with pytest.raises(InvalidValue, match=message):
        parse_routes(value)
