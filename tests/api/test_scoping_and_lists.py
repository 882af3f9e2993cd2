"""Projects and roles (noauth headers), list filters, fields, sorting and pagination."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.api.test_policies import error
from tests.api.topology import ok

IKE = "/v2.0/vpn/ikepolicies"


def create(client, **attrs) -> dict:
    return ok(client.post(IKE, json={"ikepolicy": attrs}))["ikepolicy"]


def test_projects_see_only_their_own(admin, member, other):
    mine = create(member, name="mine")
    assert error(other.get(f"{IKE}/{mine['id']}"), 404)["type"] == "IKEPolicyNotFound"
    assert error(other.delete(f"{IKE}/{mine['id']}"), 404)["type"] == "IKEPolicyNotFound"
    assert error(other.put(f"{IKE}/{mine['id']}", json={"ikepolicy": {"name": "x"}}), 404)
    assert ok(other.get(IKE), 200)["ikepolicies"] == []
    assert ok(admin.get(f"{IKE}/{mine['id']}"), 200)["ikepolicy"]["name"] == "mine"
    assert [p["id"] for p in ok(admin.get(IKE), 200)["ikepolicies"]] == [mine["id"]]


def test_admin_creates_for_another_project(admin, member):
    made = create(admin, name="for-demo", project_id="demoproj")
    assert made["tenant_id"] == "demoproj"
    assert [p["id"] for p in ok(member.get(IKE), 200)["ikepolicies"]] == [made["id"]]


def test_member_cannot_create_for_another_project(member):
    err = error(member.post(IKE, json={"ikepolicy": {"tenant_id": "otherproj"}}), 400)
    assert err["message"] == ("Specifying 'project_id' other than the authenticated project "
                              "in request is not allowed for the current user.")
    err = error(member.post(IKE, json={"ikepolicy": {"tenant_id": "a", "project_id": "b"}}), 400)
    assert err["message"] == "'project_id' and 'tenant_id' do not match"


def test_reader_reads_but_cannot_write(member, reader):
    # Readers read their project's VPN objects (the PSK too); writing is for members.
    mine = create(member)
    assert ok(reader.get(f"{IKE}/{mine['id']}"), 200)
    assert [p["id"] for p in ok(reader.get(IKE), 200)["ikepolicies"]] == [mine["id"]]
    err = error(reader.post(IKE, json={"ikepolicy": {}}), 403)
    assert err == {"type": "PolicyNotAuthorized", "detail": "",
                   "message": "rule:create_ikepolicy is disallowed by policy"}
    assert error(reader.delete(f"{IKE}/{mine['id']}"), 403)["type"] == "PolicyNotAuthorized"
    assert error(reader.delete(f"{IKE}/00000000-0000-0000-0000-000000000000"), 404)


def test_no_project_header_is_admin_in_default_project(api, member):
    create(member)
    with api.client() as anonymous:
        made = create(anonymous)
        assert made["project_id"] == "default"
        assert len(ok(anonymous.get(IKE), 200)["ikepolicies"]) == 2


def test_filters_or_and_types(member):
    a = create(member, name="a", ike_version="v2")
    b = create(member, name="b", ike_version="v1")
    create(member, name="c", ike_version="v2")
    names = lambda params: sorted(p["name"] for p in ok(member.get(IKE, params=params),
                                                       200)["ikepolicies"])
    assert names([("name", "a"), ("name", "b")]) == ["a", "b"]
    assert names([("name", "a"), ("name", "b"), ("ike_version", "v2")]) == ["a"]
    assert names([("id", b["id"])]) == ["b"]
    assert names([("bogus", "1")]) == ["a", "b", "c"]
    assert names([("lifetime", "x")]) == ["a", "b", "c"]
    assert names([("tenant_id", "demoproj"), ("name", "c")]) == ["c"]
    assert a


def test_boolean_and_list_filters(api, member, topo):
    routers = ok(member.get("/v2.0/routers", params={"admin_state_up": "True"}), 200)["routers"]
    assert [r["id"] for r in routers] == [topo.router]
    assert ok(member.get("/v2.0/routers", params={"admin_state_up": "false"}), 200)[
        "routers"] == []
    assert error(member.get("/v2.0/routers", params={"admin_state_up": "maybe"}), 400)
    by_subnet = ok(member.get("/v2.0/ports", params={
        "fixed_ips": f"subnet_id={topo.subnet_a}"}), 200)["ports"]
    assert [p["device_owner"] for p in by_subnet] == ["network:router_interface"]


def test_fields(member):
    made = create(member, name="f")
    shown = ok(member.get(f"{IKE}/{made['id']}", params=[("fields", "id"), ("fields", "pfs")]),
               200)
    assert shown == {"ikepolicy": {"id": made["id"], "pfs": "group5"}}
    listed = ok(member.get(IKE, params={"fields": "name"}), 200)
    assert listed == {"ikepolicies": [{"name": "f"}]}


def test_sorting(member):
    for name in ("b", "c", "a"):
        create(member, name=name)
    desc = ok(member.get(IKE, params={"sort_key": "name", "sort_dir": "desc"}), 200)
    assert [p["name"] for p in desc["ikepolicies"]] == ["c", "b", "a"]
    assert error(member.get(IKE, params={"sort_key": "lifetime"}), 400)["message"] == \
        "['lifetime'] is invalid attribute for sort_keys"
    assert error(member.get(IKE, params=[("sort_key", "name"), ("sort_dir", "asc"),
                                         ("sort_dir", "asc")]), 400)
    assert error(member.get(IKE, params={"sort_key": "name", "sort_dir": "up"}), 400)


def test_pagination_walks_every_item_once(member):
    made = sorted(create(member, name=f"p{i:02d}")["name"] for i in range(7))
    seen, url, params = [], IKE, {"sort_key": "name", "sort_dir": "asc", "limit": "3"}
    for _ in range(10):
        page = ok(member.get(url, params=params), 200)
        seen += [p["name"] for p in page["ikepolicies"]]
        nxt = [link for link in page.get("ikepolicies_links", []) if link["rel"] == "next"]
        if not nxt:
            break
        query = parse_qs(urlparse(nxt[0]["href"]).query)
        params = {k: v[-1] for k, v in query.items()}
    assert seen == made
    p03 = next(p["id"] for p in ok(member.get(IKE), 200)["ikepolicies"] if p["name"] == "p03")
    back = ok(member.get(IKE, params={"sort_key": "name", "limit": "2", "page_reverse": "True",
                                      "marker": p03}), 200)
    assert [p["name"] for p in back["ikepolicies"]] == ["p01", "p02"]


@pytest.mark.parametrize("params,status", [({"limit": "-1"}, 400), ({"limit": "x"}, 400),
                                           ({"marker": "00000000-0000-0000-0000-000000000000"},
                                            404)])
def test_bad_paging_parameters(member, params, status):
    error(member.get(IKE, params=params), status)


def test_discovery_documents(api, member):
    versions = ok(member.get("/"), 200)
    assert versions["versions"][0]["id"] == "v2.0"
    assert versions["versions"][0]["links"][0]["href"] == f"{api.url}/v2.0/"
    aliases = {e["alias"] for e in ok(member.get("/v2.0/extensions"), 200)["extensions"]}
    assert {"vpnaas", "vpn-endpoint-groups", "vpn-no-sha1-3des", "vpn-aes-ccm-gcm",
            "vpn-aes-ctr"} <= aliases
    assert ok(member.get("/v2.0/extensions/vpnaas"), 200)["extension"]["name"] == "VPN service"
    assert error(member.get("/v2.0/extensions/nope"), 404)
    assert ok(member.get("/v2.0/"), 200)["resources"]
    assert ok(member.get("/openapi.json"), 200)["openapi"].startswith("3.")
