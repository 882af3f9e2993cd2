"""Issue 9, item 8: an attribute policy hides must not be found out by filters or sorting.

Before the fix ``GET /v2.0/routers?isthmus:agent_host=vm`` answered a member
yes or no about a value it may not see. Every hidden attribute of every
resource is tried, taken from the attribute table (``member_visible=False``):
a filter on it must not change the list, a sort on it must not order it,
``fields`` must not show it.
"""

from __future__ import annotations

from typing import Any

import pytest

from isthmus import attributes as a
from isthmus.db import Database
from isthmus.services import Services
from tests.api.topology import ok

# The smallest body that creates each resource; a resource that gains a hidden
# attribute needs an entry here (the test says so), not a new test.
MINIMAL_BODY: dict[str, dict[str, Any]] = {"routers": {}, "networks": {}, "ikepolicies": {},
                                           "ipsecpolicies": {}}

# Attributes checked together with others: two valid bodies, each setting the attribute.
TOGETHER: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "provider:network_type": (
        {"provider:network_type": "flat", "provider:physical_network": "leak"},
        {"provider:network_type": "vlan", "provider:physical_network": "leak",
         "provider:segmentation_id": 7}),
    "provider:physical_network": (
        {"provider:network_type": "flat", "provider:physical_network": "leak-a"},
        {"provider:network_type": "flat", "provider:physical_network": "leak-b"}),
    "provider:segmentation_id": (
        {"provider:network_type": "vlan", "provider:physical_network": "leak",
         "provider:segmentation_id": 1},
        {"provider:network_type": "vlan", "provider:physical_network": "leak",
         "provider:segmentation_id": 2}),
}

RESOURCES = [c.resource for c in Services(Database("sqlite://")).collections.values()]
HIDDEN = [(resource, attr) for resource in RESOURCES for attr in resource.attrs
          if not attr.member_visible]


def _two_values(attr: a.Attr) -> tuple[Any, Any]:
    kinds = attr.schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "boolean" in kinds:
        return True, False
    if "integer" in kinds:
        return 1, 2
    return "leak-a", "leak-b"


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    (items,) = [v for k, v in response.json().items() if not k.endswith("_links")]
    return [item["id"] for item in items]


def test_there_are_hidden_attributes_to_test():
    assert HIDDEN, "no attribute is hidden by default: this test would prove nothing"


@pytest.mark.parametrize("resource,attr", HIDDEN,
                         ids=[f"{r.plural}:{x.name}" for r, x in HIDDEN])
def test_hidden_attribute_cannot_be_filtered_sorted_or_selected(admin, member, resource, attr):
    assert resource.plural in MINIMAL_BODY, f"add a minimal {resource.plural} body above"
    assert attr.post, f"{attr.name} cannot be set on create: extend this test to set it"
    bodies = TOGETHER.get(attr.name) or tuple({attr.name: v} for v in _two_values(attr))
    first, second = (body[attr.name] for body in bodies)
    made = [ok(admin.post(resource.path, json={resource.singular: {
        **MINIMAL_BODY[resource.plural], **body, "project_id": "demoproj"}}))[
        resource.singular]["id"] for body in bodies]
    # The filter works for whom may see the attribute: the checks below can fail.
    assert _ids(admin.get(resource.path, params={attr.name: first})) == [made[0]]

    everything = sorted(_ids(member.get(resource.path)))
    assert set(made) <= set(everything)
    for value in (first, second, "no-such-value"):
        assert sorted(_ids(member.get(resource.path, params={attr.name: value}))) == \
            everything, f"a filter on {attr.name} changed the list: its value leaks"

    orders = []
    for direction in ("asc", "desc"):
        response = member.get(resource.path, params={"sort_key": attr.name,
                                                     "sort_dir": direction})
        if response.status_code == 400:
            assert attr.name in response.json()["NeutronError"]["message"]
            continue
        orders.append([i for i in _ids(response) if i in made])
    assert len({tuple(o) for o in orders}) <= 1, f"sorting by {attr.name} orders by its value"

    listed = ok(member.get(resource.path, params={"fields": attr.name}), 200)[resource.plural]
    assert all(attr.name not in item for item in listed)
    for id_ in made:
        shown = ok(member.get(f"{resource.path}/{id_}"), 200)[resource.singular]
        assert attr.name not in shown
        assert attr.name not in ok(member.get(f"{resource.path}/{id_}",
                                              params={"fields": attr.name}), 200)[
            resource.singular]
