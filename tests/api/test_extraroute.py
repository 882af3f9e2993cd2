"""Router extra routes (``extraroute``, ``extraroute-atomic``), checked against Neutron 29.

neutron-tempest-plugin cleans up every router with ``PUT {"router": {"routes": null}}``;
Isthmus answered 400 "Cannot update read-only attribute routes" and the suite leaked
its routers. Messages and codes below are the ones a Neutron 29 server gave.
"""

from __future__ import annotations

import pytest

from tests.api.topology import ok


def routes_of(client, router_id: str) -> list[dict[str, str]]:
    return ok(client.get(f"/v2.0/routers/{router_id}"), 200)["router"]["routes"]


def put_routes(client, router_id: str, routes):
    return client.put(f"/v2.0/routers/{router_id}", json={"router": {"routes": routes}})


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["NeutronError"]


@pytest.mark.parametrize("cleared", [None, []])
def test_tempest_cleanup_clears_routes_with_null_or_empty_list(member, topo, cleared):
    route = {"destination": "10.50.0.0/24", "nexthop": "10.1.0.50"}
    updated = ok(put_routes(member, topo.router, [route]), 200)["router"]
    assert updated["routes"] == [route]
    assert routes_of(member, topo.router) == [route]
    assert ok(put_routes(member, topo.router, cleared), 200)["router"]["routes"] == []
    assert routes_of(member, topo.router) == []
    ok(member.put(f"/v2.0/routers/{topo.router}", json={"router": {"routes": None}}), 200)


def test_routes_are_shown_sorted_and_on_the_gateway_subnet_too(member, topo):
    routes = [{"destination": "10.60.0.0/24", "nexthop": "172.24.5.60"},
              {"destination": "10.50.0.0/24", "nexthop": "10.1.0.50"},
              {"destination": "10.50.0.0/24", "nexthop": "10.1.0.51"},
              {"destination": "2001:DB8:99::/64", "nexthop": "2001:db8:10::99"}]
    shown = ok(put_routes(member, topo.router, routes), 200)["router"]["routes"]
    assert shown == sorted(routes, key=lambda r: (r["destination"], r["nexthop"]))
    listed = ok(member.get("/v2.0/routers", params={"id": topo.router}), 200)["routers"]
    assert listed[0]["routes"] == shown


@pytest.mark.parametrize("nexthop,reason", [
    ("10.99.0.5", "the nexthop is not connected with router"),
    ("10.3.0.5", "the nexthop is not connected with router"),   # a subnet not attached
    ("10.1.0.1", "the nexthop is used by router"),
])
def test_nexthop_must_be_on_a_router_subnet_and_not_the_router(member, topo, nexthop, reason):
    routes = [{"destination": "10.50.0.0/24", "nexthop": "10.1.0.50"},
              {"destination": "10.51.0.0/24", "nexthop": nexthop}]
    err = error(put_routes(member, topo.router, routes), 400)
    assert err["type"] == "InvalidRoutes"
    assert err["message"] == f"Invalid format for routes: {routes}, {reason}"
    assert routes_of(member, topo.router) == []


@pytest.mark.parametrize("routes,reason", [
    ("abc", "Invalid data format for hostroute: 'abc'"),
    (["x"], "Invalid input. 'x' must be a dictionary with keys: ['destination', 'nexthop']"),
    ([{"destination": "10.50.0.0/24"}], "Validation of dictionary's keys failed. Expected "
     "keys: {'destination', 'nexthop'} Provided keys: {'destination'}"),
    ([{"destination": "10.50.0.0/24", "nexthop": "10.1.0.5", "x": 1}],
     "Validation of dictionary's keys failed. Expected keys: {'destination', 'nexthop'} "
     "Provided keys: {'destination', 'nexthop', 'x'}"),
    ([{"destination": "10.50.0.1/24", "nexthop": "10.1.0.5"}],
     "'10.50.0.1/24' is not a valid CIDR"),
    ([{"destination": "10.50.0.0", "nexthop": "10.1.0.5"}], "'10.50.0.0' is not a valid CIDR"),
    ([{"destination": 10, "nexthop": "10.1.0.5"}], "'10' is not a valid CIDR"),
    ([{"destination": "10.50.0.0/24", "nexthop": None}], "'None' is not a valid IP address"),
    ([{"destination": "10.50.0.0/24", "nexthop": "10.1.0.5"}] * 2,
     "Duplicate hostroute '{'destination': '10.50.0.0/24', 'nexthop': '10.1.0.5'}'"),
])
def test_malformed_routes_are_refused_with_neutrons_reasons(member, topo, routes, reason):
    err = error(put_routes(member, topo.router, routes), 400)
    assert err["message"] == f"Invalid input for routes. Reason: {reason}."


def test_routes_are_not_allowed_in_post(member):
    err = error(member.post("/v2.0/routers", json={"router": {"routes": []}}), 400)
    assert err["message"] == "Attribute 'routes' not allowed in POST"


def test_more_than_30_routes_exceed_the_quota(member, topo):
    routes = [{"destination": f"10.{100 + i}.0.0/24", "nexthop": "10.1.0.5"}
              for i in range(31)]
    err = error(put_routes(member, topo.router, routes), 409)
    assert (err["type"], err["message"]) == ("OverQuota",
                                             "Quota exceeded for resources: ['router_route'].")
    ok(put_routes(member, topo.router, routes[:30]), 200)


def test_interface_whose_subnet_a_nexthop_uses_cannot_be_removed(member, topo):
    ok(put_routes(member, topo.router, [{"destination": "10.50.0.0/24",
                                         "nexthop": "10.2.0.50"}]), 200)
    path = f"/v2.0/routers/{topo.router}/remove_router_interface"
    err = error(member.put(path, json={"subnet_id": topo.subnet_b}), 409)
    assert err["type"] == "RouterInterfaceInUseByRoute"
    assert err["message"] == (
        f"Router interface for subnet {topo.subnet_b} on router {topo.router} cannot be "
        "deleted, as it is required by one or more routes.")
    ok(member.put(path, json={"subnet_id": topo.subnet_a}), 200)   # unused by routes
    ok(put_routes(member, topo.router, None), 200)
    ok(member.put(path, json={"subnet_id": topo.subnet_b}), 200)


def test_add_and_remove_extraroutes_atomically(member, topo):
    base = f"/v2.0/routers/{topo.router}"
    first = {"destination": "10.50.0.0/24", "nexthop": "10.1.0.50"}
    second = {"destination": "10.51.0.0/24", "nexthop": "10.2.0.51"}
    added = ok(member.put(f"{base}/add_extraroutes",
                          json={"router": {"routes": [second, first]}}), 200)["router"]
    assert added["routes"] == [first, second] and added["id"] == topo.router
    again = ok(member.put(f"{base}/add_extraroutes",
                          json={"router": {"routes": [first]}}), 200)["router"]
    assert again["routes"] == [first, second]                      # no duplicate
    bad = {"destination": "10.52.0.0/24", "nexthop": "10.99.0.5"}
    err = error(member.put(f"{base}/add_extraroutes", json={"router": {"routes": [bad]}}), 400)
    assert err["message"] == ("Invalid format for routes: "
                              f"{[first, second, bad]}, the nexthop is not connected with router")
    gone = {"destination": "10.77.0.0/24", "nexthop": "10.1.0.77"}   # absent: ignored
    removed = ok(member.put(f"{base}/remove_extraroutes",
                            json={"router": {"routes": [first, gone]}}), 200)["router"]
    assert removed["routes"] == [second]
    assert routes_of(member, topo.router) == [second]


@pytest.mark.parametrize("body", [{"routes": []}, {"router": {"name": "x"}},
                                  {"router": {"routes": [], "name": "x"}}, [1]])
def test_extraroutes_bodies_other_than_router_routes_are_a_400(member, topo, body):
    response = member.put(f"/v2.0/routers/{topo.router}/add_extraroutes", json=body)
    assert response.status_code == 400, response.text


def test_extraroutes_of_another_project_are_a_404_and_readers_a_403(other, reader, topo):
    body = {"router": {"routes": []}}
    path = f"/v2.0/routers/{topo.router}/add_extraroutes"
    assert other.put(path, json=body).status_code == 404
    err = error(reader.put(path, json=body), 403)
    assert err["message"] == "rule:add_extraroutes is disallowed by policy"
    assert error(put_routes(reader, topo.router, []), 403)["message"] == \
        "rule:update_router is disallowed by policy"


def test_extraroute_extensions_are_listed(member):
    extensions = {e["alias"]: e for e in ok(member.get("/v2.0/extensions"), 200)["extensions"]}
    assert extensions["extraroute"] == {
        "alias": "extraroute", "name": "Neutron Extra Route",
        "description": "Extra routes configuration for L3 router",
        "updated": "2013-02-01T10:00:00-00:00", "links": []}
    assert "extraroute-atomic" in extensions
    assert ok(member.get("/v2.0/extensions/extraroute"), 200)["extension"]["alias"] == \
        "extraroute"
