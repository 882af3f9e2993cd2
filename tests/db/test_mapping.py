"""The attribute table is the one definition of a resource: its table, row and body
conversions, the agents' payload schema and the OpenAPI document all follow from it.

The last test adds an attribute to a real resource the way a developer would (one
``Attr``) and checks that every derived place has it, with nothing else edited.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import sqlalchemy as sa

from isthmus import attributes as a
from isthmus.api import openapi
from isthmus.api.policy import _resource_rules
from isthmus.db import mapping
from isthmus.exceptions import NotFound
from isthmus.vpn import site_connections

FAKE_WIDGETS = a.Resource(
    singular="widget", plural="widgets", path="/v2.0/widgets", table="widgets",
    not_found=lambda id_: NotFound(), attrs=(
        *a.COMMON,
        a.Attr("size", post=True, put=True, default=1, parse=a.int_in_range(1, 9), agent=True,
               store=a.Column(sa.Integer())),
        a.Attr("isthmus:colour", post=True, default=None, parse=a.string_or_none(8),
               store=a.Column(sa.String(8), nullable=True)),
        a.Attr("window", post=True, put=True, default={}, agent=True,
               parse=a.dict_of({"start": a.integer, "end": a.integer}),
               store=a.Nested({"start": a.Column(sa.Integer(), name="window_start"),
                               "end": a.Column(sa.Integer(), name="window_end")})),
        a.Attr("labels", post=True, default=[], parse=a.as_list(a.string(10)),
               store=a.Column(sa.String(100), json=True, default="[]")),
        a.Attr("seen_at", store=a.Column(sa.DateTime(), nullable=True, show=a.timestamp)),
        a.Attr("computed")),
    hidden=(("secret_column", a.Column(sa.String(5), nullable=True)),))


def test_the_table_has_a_column_per_stored_value_and_the_project_index():
    table = mapping.table_of(FAKE_WIDGETS, sa.MetaData())
    assert set(table.c.keys()) == {
        "id", "project_id", "name", "description", "size", "colour", "window_start",
        "window_end", "labels", "seen_at", "secret_column"}
    assert table.c.id.primary_key and table.c.colour.nullable and not table.c.size.nullable
    assert [ix.name for ix in table.indexes] == ["ix_widgets_project_id_id"]


def test_rows_become_api_values_and_bodies_become_rows():
    body = {"name": "w", "description": "", "project_id": "p", "tenant_id": "p", "size": 3,
            "isthmus:colour": "red", "window": {"start": 1, "end": 2}, "labels": ["a"],
            "computed": "not stored"}
    values = mapping.row_values(FAKE_WIDGETS, body)
    assert values == {"name": "w", "description": "", "project_id": "p", "size": 3,
                      "colour": "red", "window_start": 1, "window_end": 2,
                      "labels": json.dumps(["a"])}
    row = {**values, "id": "i1", "seen_at": datetime(2026, 12, 2, 1, 2, 3),
           "secret_column": "x"}
    shown = mapping.show(FAKE_WIDGETS, row)
    assert shown == {"id": "i1", "project_id": "p", "tenant_id": "p", "name": "w",
                     "description": "", "size": 3, "isthmus:colour": "red",
                     "window": {"start": 1, "end": 2}, "labels": ["a"],
                     "seen_at": "2026-12-02T01:02:03Z"}


def test_a_partial_nested_update_sets_only_its_keys():
    assert mapping.row_values(FAKE_WIDGETS, {"window": {"end": 5}}) == {"window_end": 5}


def test_sql_filters_only_plain_columns():
    assert mapping.filter_columns(FAKE_WIDGETS) == {
        "id": "id", "project_id": "project_id", "tenant_id": "project_id", "name": "name",
        "description": "description", "size": "size", "isthmus:colour": "colour"}


def test_parsers_carry_the_schema_they_accept():
    assert a.int_in_range(1, 9).schema == {"type": "integer", "minimum": 1, "maximum": 9}
    assert a.string_or_none(8).schema == {"type": ["string", "null"], "maxLength": 8}
    assert a.as_list(a.cidr).schema == {"type": "array", "items": {"type": "string"}}
    assert FAKE_WIDGETS.attr("window").schema["properties"] == {
        "start": {"type": "integer"}, "end": {"type": "integer"}}


def test_agents_get_the_attributes_marked_for_them_with_every_nested_key():
    schema = FAKE_WIDGETS.agent_schema(extra={"type": "string"})
    assert schema["required"] == ["id", "size", "window", "extra"]
    assert schema["properties"]["window"]["required"] == ["start", "end"]
    assert schema["additionalProperties"] is False


def test_adding_an_attribute_is_one_entry_in_the_table():
    """What adding ``isthmus:rekey_margin`` to site connections takes: this one Attr (and
    a migration adding the column). Every derived place has it."""
    new = a.Attr("isthmus:rekey_margin", post=True, put=True, default=540, admin_only=True,
                 parse=a.int_in_range(60, 3600), agent=True, store=a.Column(sa.Integer()))
    resource = dataclasses.replace(site_connections.RESOURCE,
                                   attrs=(*site_connections.RESOURCE.attrs, new))
    table = mapping.table_of(resource, sa.MetaData())
    assert "rekey_margin" in table.c                                   # the database
    assert mapping.filter_columns(resource)["isthmus:rekey_margin"] == "rekey_margin"
    assert mapping.row_values(resource, {"isthmus:rekey_margin": 600}) == {"rekey_margin": 600}
    row = {c: None for c in table.c.keys()} | {"rekey_margin": 600}
    assert mapping.show(resource, row)["isthmus:rekey_margin"] == 600   # the API answer
    assert resource.agent_schema()["properties"]["isthmus:rekey_margin"] == {  # the RPC
        "type": "integer", "minimum": 60, "maximum": 3600}
    paths = openapi.document([resource])["paths"]                      # the OpenAPI
    create = paths[resource.path]["post"]["requestBody"]["content"]["application/json"]
    assert create["schema"]["properties"]["ipsec_site_connection"]["properties"][
        "isthmus:rekey_margin"]["maximum"] == 3600
    rules = {rule.name for rule in _resource_rules(resource)}           # the policy
    assert {"create_ipsec_site_connection:isthmus:rekey_margin",
            "update_ipsec_site_connection:isthmus:rekey_margin"} <= rules
