"""Lists filtered, sorted and paged in SQL give exactly what the in-memory reference
(:func:`isthmus.api.listing.apply` over the whole list) gives, on every backend:
strings by code point, None first, ``id`` breaking ties, markers and ``page_reverse``."""

from __future__ import annotations

import itertools

import pytest

from isthmus.api import listing
from isthmus.vpn.vpnservices import RESOURCE
from tests.api.test_policies import error
from tests.api.topology import ok

SERVICES = "/v2.0/vpn/vpnservices"
# Upper case before "_" before lower case by code point, unlike most locales.
NAMES = ["b", "B", "a", "é", "_x", "Z", "a", "10", "9", ""]
SORTS = [[], [("name", "asc")], [("name", "desc")], [("subnet_id", "asc")],
         [("subnet_id", "desc"), ("name", "asc")], [("admin_state_up", "desc"),
                                                    ("subnet_id", "asc")]]
FILTERS = [[], [("name", "a")], [("admin_state_up", "true"), ("name", "b"), ("name", "B")]]


def expected(items: list[dict], params: list[tuple[str, str]]) -> tuple[list[str], bool]:
    grouped: dict[str, list[str]] = {}
    for key, value in params:
        grouped.setdefault(key, []).append(value)
    query = listing.parse_query(RESOURCE, grouped, {})
    page, more = listing.apply([dict(i) for i in items], query, RESOURCE.not_found)
    return [i["id"] for i in page], more


def test_sql_pages_match_the_reference(member, topo):
    for n, name in enumerate(NAMES):
        subnet = [None, topo.subnet_a, topo.subnet_b][n % 3]
        ok(member.post(SERVICES, json={"vpnservice": {
            "name": name, "router_id": topo.router, "subnet_id": subnet,
            "admin_state_up": n % 2 == 0}}))
    everything = ok(member.get(SERVICES), 200)["vpnservices"]
    assert len(everything) == len(NAMES)
    for sort, filters, limit, reverse in itertools.product(SORTS, FILTERS, ("1", "3", ""),
                                                           (False, True)):
        base = [*filters, *(("sort_key", k) for k, _ in sort),
                *(("sort_dir", d) for _, d in sort)] + ([("limit", limit)] if limit else [])
        for marker in [None, *(i["id"] for i in everything)]:
            params = base + ([("marker", marker)] if marker else []) + \
                ([("page_reverse", "True")] if reverse else [])
            response = member.get(SERVICES, params=params)
            try:
                ids, more = expected(everything, params)
            except Exception:   # the marker is filtered out: a 404 naming it
                assert error(response, 404)["type"] == "VPNServiceNotFound", params
                continue
            body = ok(response, 200)
            assert [i["id"] for i in body["vpnservices"]] == ids, params
            if limit and ids:
                rels = {link["rel"] for link in body["vpnservices_links"]}
                assert ("next" in rels) == (more or reverse), params


@pytest.mark.parametrize("params", [{"sort_key": "name", "limit": "2"},
                                    {"name": "a", "limit": "5"}])
def test_other_projects_rows_stay_out_of_sql_pages(member, other, params):
    ok(other.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "a"}}))
    mine = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {"name": "a"}}))
    listed = ok(member.get("/v2.0/vpn/ikepolicies", params=params), 200)["ikepolicies"]
    assert [p["id"] for p in listed] == [mine["ikepolicy"]["id"]]


def test_tag_filters_in_sql_pages(member):
    tagged = {}
    for name, tags in (("r0", []), ("r1", ["red"]), ("r2", ["red", "blue"]),
                       ("r3", ["blue"]), ("r4", ["Red"])):
        router = ok(member.post("/v2.0/routers", json={"router": {"name": name}}))["router"]
        ok(member.put(f"/v2.0/routers/{router['id']}/tags", json={"tags": tags}), 200)
        tagged[name] = router["id"]
    everything = ok(member.get("/v2.0/routers"), 200)["routers"]
    for kind, value in itertools.product(("tags", "tags-any", "not-tags", "not-tags-any"),
                                         ("red", "red,blue", "Red", "green")):
        params = [(kind, value), ("sort_key", "name"), ("limit", "2")]
        wanted = [r["name"] for r in everything
                  if listing.tags_match(set(r["tags"]), {kind: set(value.split(","))})]
        names, url = [], "/v2.0/routers"
        while True:   # follow the next links: every match once, in name order
            body = ok(member.get(url, params=params), 200)
            names += [r["name"] for r in body["routers"]]
            following = [k["href"] for k in body.get("routers_links", [])
                         if k["rel"] == "next"]
            if not following:
                break
            url, params = following[0], None
        assert names == sorted(wanted), (kind, value)


@pytest.mark.parametrize("paged", [False, True], ids=["whole list", "SQL page"])
def test_fields_read_only_their_columns_and_answer_the_same(api, member, paged):
    """``fields`` narrows the SELECT to what the answer, the filters, the sort and the
    policy rules read (issue 11 item 2), and the answer is the projection of the full one."""
    import sqlalchemy as sa

    for i in range(5):
        ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
            "name": f"f{i}", "ike_version": "v2" if i % 2 else "v1"}}))
    params = [("fields", "id"), ("fields", "name"), ("ike_version", "v2"),
              ("sort_key", "name"), ("sort_dir", "desc")] + ([("limit", "1")] if paged else [])
    full = ok(member.get("/v2.0/vpn/ikepolicies",
                         params=[p for p in params if p[0] != "fields"]), 200)["ikepolicies"]
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(api.db.engine, "before_cursor_execute", record)
    try:
        narrow = ok(member.get("/v2.0/vpn/ikepolicies", params=params), 200)["ikepolicies"]
    finally:
        sa.event.remove(api.db.engine, "before_cursor_execute", record)
    assert narrow == [{"id": p["id"], "name": p["name"]} for p in full]
    assert len(narrow) == (1 if paged else 2)
    selects = [s for s in statements if "FROM ikepolicies" in s]
    assert selects and all("encryption_algorithm" not in s and "lifetime_value" not in s
                           for s in selects), selects
    assert all("ike_version" in s for s in selects)   # the filter reads it


def test_subnet_pages_in_sql_match_the_reference_for_owner_and_outsider(api, admin, member,
                                                                        other):
    """Subnets page in SQL too: their policy target (the network's owner, whether it is
    shared) is looked up per network; a shared network's subnets reach other projects."""
    from isthmus.network.networks import SUBNET_RESOURCE

    private = ok(member.post("/v2.0/networks", json={"network": {"name": "p"}}))["network"]
    shared = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "s", "shared": True, "project_id": "demoproj"}}))["network"]
    for i, name in enumerate(["b", "a", "", "c", "a"]):
        for net in (private, shared):
            ok(member.post("/v2.0/subnets", json={"subnet": {
                "network_id": net["id"], "ip_version": 4, "name": name,
                "cidr": f"10.{100 + (net is shared)}.{i}.0/24"}}))
    import sqlalchemy as sa

    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(api.db.engine, "before_cursor_execute", record)
    for client in (member, other):
        everything = ok(client.get("/v2.0/subnets"), 200)["subnets"]
        for sort in ([], [("sort_key", "name"), ("sort_dir", "desc")]):
            params = [*sort, ("limit", "3")]
            pages, marker = [], None
            while True:
                got = ok(client.get("/v2.0/subnets", params=[
                    *params, *([("marker", marker)] if marker else [])]), 200)
                pages += [s["id"] for s in got["subnets"]]
                if not any(link["rel"] == "next" for link in got.get("subnets_links", [])):
                    break
                marker = got["subnets"][-1]["id"]
            grouped: dict[str, list[str]] = {}
            for key, value in sort:
                grouped.setdefault(key, []).append(value)
            query = listing.parse_query(SUBNET_RESOURCE, grouped, {})
            reference, _ = listing.apply([dict(s) for s in everything], query,
                                         SUBNET_RESOURCE.not_found)
            assert pages == [s["id"] for s in reference]
        assert len(everything) == (10 if client is member else 5)
    sa.event.remove(api.db.engine, "before_cursor_execute", record)
    assert any("FROM subnets" in q and "LIMIT" in q for q in statements)   # paged in SQL
