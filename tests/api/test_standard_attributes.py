"""Neutron's standard attributes on networks, subnets and routers: timestamps, revision
numbers and tags (``standard-attr-timestamp``, ``-revisions``, ``-tag``).

Isthmus showed ``created_at``, ``updated_at`` and ``revision_number`` as null and had no
tags API, which openstacksdk's ``set_tags`` and Terraform's ``tags`` use. The revision
numbers expected here are the ones a Neutron 29 server showed for the same calls
(2026-12-01): a new network is at 1, a subnet at 0, a router at 1 (2 with a gateway);
every change that alters something (attributes, an interface added or removed, a subnet
created or deleted on a network, the tag set) is one more; an update that changes
nothing is none.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.api.topology import ok

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def show(client, path: str) -> dict:
    return next(iter(ok(client.get(path), 200).values()))


def revision(client, path: str) -> int:
    return show(client, path)["revision_number"]


def test_timestamps_are_utc_seconds_and_revisions_start_as_neutrons(member, admin, topo):
    before = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    network = ok(member.post("/v2.0/networks", json={"network": {"name": "n"}}))["network"]
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    for key in ("created_at", "updated_at"):
        assert TIMESTAMP.fullmatch(network[key]), network
        stamp = datetime.strptime(network[key], "%Y-%m-%dT%H:%M:%SZ")
        assert before <= stamp <= after + timedelta(seconds=1)
    assert network["revision_number"] == 1 and network["tags"] == []
    subnet = ok(member.post("/v2.0/subnets", json={"subnet": {
        "network_id": network["id"], "ip_version": 4, "cidr": "10.9.0.0/24"}}))["subnet"]
    assert subnet["revision_number"] == 0 and subnet["tags"] == []
    assert TIMESTAMP.fullmatch(subnet["created_at"])
    assert revision(member, f"/v2.0/networks/{network['id']}") == 2   # a subnet was added
    plain = ok(member.post("/v2.0/routers", json={"router": {"name": "r"}}))["router"]
    assert plain["revision_number"] == 1
    assert show(member, f"/v2.0/routers/{topo.router}")["revision_number"] == 2 + 3  # +3 ifaces


def test_each_change_is_one_revision_and_no_change_none(member, topo):
    path = f"/v2.0/routers/{topo.router}"
    start = revision(member, path)
    ok(member.put(path, json={"router": {"name": "r1"}}), 200)              # same name
    assert revision(member, path) == start
    updated = ok(member.put(path, json={"router": {"name": "x", "admin_state_up": False}}),
                 200)["router"]
    assert updated["revision_number"] == start + 1                       # one per request
    ok(member.put(f"{path}/remove_router_interface", json={"subnet_id": topo.subnet_a}), 200)
    assert revision(member, path) == start + 2
    ok(member.put(f"{path}/add_router_interface", json={"subnet_id": topo.subnet_a}), 200)
    assert revision(member, path) == start + 3
    ok(member.put(path, json={"router": {"routes": [
        {"destination": "10.50.0.0/24", "nexthop": "10.1.0.5"}]}}), 200)
    assert revision(member, path) == start + 4
    network = f"/v2.0/networks/{topo.private_net}"
    net_start = revision(member, network)
    ok(member.put(network, json={"network": {"name": "private"}}), 200)   # same name
    ok(member.put(f"/v2.0/subnets/{topo.subnet_unattached}",
                  json={"subnet": {"name": "s"}}), 200)
    assert revision(member, f"/v2.0/subnets/{topo.subnet_unattached}") == 1
    member.delete(f"/v2.0/subnets/{topo.subnet_unattached}")
    assert revision(member, network) == net_start + 1                    # a subnet went


@pytest.mark.parametrize("kind", ["networks", "subnets", "routers"])
def test_tags_api(member, topo, kind):
    object_id = {"networks": topo.private_net, "subnets": topo.subnet_a,
                 "routers": topo.router}[kind]
    base = f"/v2.0/{kind}/{object_id}"
    start = revision(member, base)
    assert ok(member.put(f"{base}/tags", json={"tags": ["b", "a"]}), 200)["tags"] == ["a", "b"]
    assert show(member, base)["tags"] == ["a", "b"]
    assert revision(member, base) == start + 1
    response = member.put(f"{base}/tags/c")
    assert response.status_code == 201 and response.json() is None
    ok(member.put(f"{base}/tags/c"), 201)                                 # already there
    assert ok(member.get(f"{base}/tags"), 200) == {"tags": ["a", "b", "c"]}
    assert revision(member, base) == start + 2
    assert member.get(f"{base}/tags/c").status_code == 204
    missing = member.get(f"{base}/tags/zz")
    assert missing.status_code == 404
    assert missing.json()["NeutronError"] == {"type": "TagNotFound", "detail": "",
                                              "message": "Tag zz could not be found."}
    assert member.delete(f"{base}/tags/zz").status_code == 404
    assert member.delete(f"{base}/tags/c").status_code == 204
    ok(member.put(f"{base}/tags/a,b"), 201)                               # commas: as Neutron
    assert ok(member.post(f"{base}/tags", json={"tags": ["p"]})) == {"tags": ["p"]}
    assert show(member, base)["tags"] == ["a", "a,b", "b", "p"]
    assert member.delete(f"{base}/tags").status_code == 204
    assert show(member, base)["tags"] == []
    assert revision(member, base) == start + 6


@pytest.mark.parametrize("body,message", [
    ({"x": []}, "Invalid tags body"),
    ({"tags": "a"}, "'a' is not a list"),
    ({"tags": [1]}, "'1' is not a valid string"),
    ({"tags": ["a", "a"]}, "Duplicate items in the list: 'a'"),
    ({"tags": ["x" * 256]}, f"'{'x' * 256}' exceeds maximum length of 255"),
])
def test_bad_tags_are_neutrons_invalid_input(member, topo, body, message):
    response = member.put(f"/v2.0/networks/{topo.private_net}/tags", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["NeutronError"] == {
        "type": "InvalidInput", "detail": "",
        "message": f"Invalid input for operation: {message}."}


def test_more_than_50_tags_are_refused(member, topo):
    base = f"/v2.0/routers/{topo.router}/tags"
    response = member.put(base, json={"tags": [str(i) for i in range(51)]})
    assert response.status_code == 400
    assert response.json()["NeutronError"]["message"] == \
        "Bad routers request: The number of tags exceed the per-resource limit of 50."
    ok(member.put(base, json={"tags": [str(i) for i in range(50)]}), 200)
    assert member.put(f"{base}/extra").status_code == 400
    assert member.put(f"{base}/x" + "y" * 255).status_code == 400


def test_tags_are_read_only_in_the_resource_body(member, topo):
    response = member.put(f"/v2.0/networks/{topo.private_net}",
                          json={"network": {"tags": ["a"]}})
    assert response.json()["NeutronError"]["message"] == \
        "Cannot update read-only attribute tags"


def test_tag_rules_others_get_404_and_readers_403(member, reader, other, topo):
    base = f"/v2.0/routers/{topo.router}/tags"
    ok(member.put(base, json={"tags": ["a"]}), 200)
    assert other.get(base).status_code == 404
    assert other.put(f"{base}/b").status_code == 404
    assert ok(reader.get(base), 200) == {"tags": ["a"]}
    denied = reader.put(f"{base}/b")
    assert denied.status_code == 403
    assert denied.json()["NeutronError"]["message"] == \
        "rule:update_router:tags is disallowed by policy"
    assert reader.delete(base).json()["NeutronError"]["message"] == \
        "rule:delete_router:tags is disallowed by policy"


def test_list_filters_by_tags(member):
    ids = {}
    for name, tags in (("red", ["red"]), ("red-blue", ["red", "blue"]), ("none", [])):
        ids[name] = ok(member.post("/v2.0/networks", json={"network": {"name": name}}))[
            "network"]["id"]
        ok(member.put(f"/v2.0/networks/{ids[name]}/tags", json={"tags": tags}), 200)

    def names(**params) -> set[str]:
        found = ok(member.get("/v2.0/networks", params=params), 200)["networks"]
        return {n["name"] for n in found}
    assert names(tags="red") == {"red", "red-blue"}
    assert names(tags="red,blue") == {"red-blue"}
    assert names(tags=["red", "blue"]) == {"red-blue"}
    assert names(**{"tags-any": "blue,green"}) == {"red-blue"}
    assert names(**{"not-tags": "red,blue"}) == {"red", "none"}
    assert names(**{"not-tags-any": "blue"}) == {"red", "none"}
    assert names(tags="") == set()


def test_vpn_objects_are_not_tagged_as_in_neutron_29(member):
    """Neutron 29's standard-attr-tag covers port, subnet, subnetpool, network,
    security_group, router, floatingip, policy, trunk, network_segment_range; VPN
    objects have no tags, timestamps or revision and no /tags URL (404)."""
    policy = ok(member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {}}))["ikepolicy"]
    assert not {"tags", "created_at", "revision_number"} & set(policy)
    assert member.put(f"/v2.0/vpn/ikepolicies/{policy['id']}/tags",
                      json={"tags": ["a"]}).status_code == 404


def test_extensions_are_listed(member):
    aliases = {e["alias"]: e for e in ok(member.get("/v2.0/extensions"), 200)["extensions"]}
    assert aliases["standard-attr-tag"]["name"] == \
        "Tag support for resources with standard attribute: subnet, network, router"
    assert {"standard-attr-timestamp", "standard-attr-revisions"} <= set(aliases)
