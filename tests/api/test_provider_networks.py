"""Neutron's ``provider`` extension on networks: admin-only, checked as ML2 checks it.

The agents plug a router's ports into the host device of the network's physical
network (docs/routers.md), so a network says where it is: ``flat`` on a physical
network, or ``vlan`` with a tag. Messages are those of Neutron's ML2 type drivers.
"""

from __future__ import annotations

import pytest

from tests.api.topology import ok

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def create(client, **attrs):
    return client.post("/v2.0/networks", json={"network": {"name": "n", **attrs}})


def error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["NeutronError"]


def test_admin_creates_a_flat_network_and_sees_where_it_is(admin):
    net = ok(create(admin, **{"router:external": True, "provider:network_type": "flat",
                              "provider:physical_network": "public"}), 201)["network"]
    assert {k: net[k] for k in PROVIDER} == {"provider:network_type": "flat",
                                             "provider:physical_network": "public",
                                             "provider:segmentation_id": None}
    shown = ok(admin.get(f"/v2.0/networks/{net['id']}"), 200)["network"]
    assert {k: shown[k] for k in PROVIDER} == {k: net[k] for k in PROVIDER}


def test_vlan_network_keeps_its_tag_and_lists_filter_on_provider_attributes(admin):
    vlan = ok(create(admin, **{"provider:network_type": "vlan",
                               "provider:physical_network": "lan",
                               "provider:segmentation_id": "42"}), 201)["network"]
    assert vlan["provider:segmentation_id"] == 42
    ok(create(admin, **{"provider:network_type": "flat",
                        "provider:physical_network": "public"}), 201)
    found = ok(admin.get("/v2.0/networks", params={"provider:physical_network": "lan"}),
               200)["networks"]
    assert [n["id"] for n in found] == [vlan["id"]]
    tagged = ok(admin.get("/v2.0/networks", params={"provider:segmentation_id": "42"}),
                200)["networks"]
    assert [n["id"] for n in tagged] == [vlan["id"]]


def test_a_network_without_a_segment_is_on_no_physical_network(admin):
    net = ok(create(admin), 201)["network"]
    assert [net[k] for k in PROVIDER] == [None, None, None]


def test_members_neither_see_nor_set_provider_attributes(admin, member):
    net = ok(create(admin, **{"shared": True, "provider:network_type": "flat",
                              "provider:physical_network": "public"}), 201)["network"]
    seen = ok(member.get(f"/v2.0/networks/{net['id']}"), 200)["network"]
    assert not set(PROVIDER) & set(seen)
    refused = create(member, **{"provider:network_type": "flat",
                                "provider:physical_network": "public"})
    assert refused.status_code == 403, refused.text


@pytest.mark.parametrize("attrs,message", [
    ({"provider:physical_network": "public"}, "network_type required"),
    ({"provider:network_type": "vxlan"}, "network_type value 'vxlan' not supported"),
    ({"provider:network_type": "flat"}, "physical_network required for flat provider network"),
    ({"provider:network_type": "flat", "provider:physical_network": "public",
      "provider:segmentation_id": 5}, "segmentation_id prohibited for flat provider network"),
    ({"provider:network_type": "vlan", "provider:physical_network": "lan"},
     "segmentation_id required for VLAN provider network"),
    ({"provider:network_type": "vlan", "provider:segmentation_id": 5},
     "segmentation_id requires physical_network for VLAN provider network"),
    ({"provider:network_type": "vlan", "provider:physical_network": "lan",
      "provider:segmentation_id": 4095}, "segmentation_id out of range (1 through 4094)"),
])
def test_bad_segments_are_refused_as_ml2_refuses_them_and_nothing_is_stored(
        admin, attrs, message):
    before = ok(admin.get("/v2.0/networks"), 200)["networks"]
    err = error(create(admin, **attrs), 400)
    assert err["type"] == "InvalidInput"
    assert err["message"] == f"Invalid input for operation: {message}."
    assert ok(admin.get("/v2.0/networks"), 200)["networks"] == before


def test_segments_are_fixed_after_create(admin):
    net = ok(create(admin, **{"provider:network_type": "flat",
                              "provider:physical_network": "public"}), 201)["network"]
    changed = admin.put(f"/v2.0/networks/{net['id']}",
                        json={"network": {"provider:physical_network": "other"}})
    assert changed.status_code == 400, changed.text


def test_the_provider_extension_is_listed(member):
    aliases = {e["alias"] for e in ok(member.get("/v2.0/extensions"), 200)["extensions"]}
    assert "provider" in aliases
