"""Hostile input is a 400 in Neutron's format, never a 5xx: every resource, every attribute.

A handful of nasty values (deep nesting, huge strings, NaN/Infinity, Unicode
digits, nulls, wrong types) is sent as each writable attribute of each resource
(POST and PUT), as each list filter and list control key, and to every
attribute parser directly. Schemathesis (test_schemathesis.py) fuzzes from the
OpenAPI schema; these values are the ones a schema-driven generator rarely tries.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import orjson
import pytest

from isthmus import attributes as a
from isthmus.api import request
from isthmus.db import Database
from isthmus.services import READ_ONLY, Services
from tests.api.test_policies import error

DEEP_LISTS = "[" * 1000 + '"x"' + "]" * 1000    # under orjson's own limit of 1024
DEEP_OBJECTS = '{"a":' * 2000 + "1" + "}" * 2000  # over it
HUGE_STRING = orjson.dumps("x" * 100_000).decode()

# Raw JSON text, so that values orjson would refuse to write can still be sent.
NASTY_JSON = {
    "deep lists": DEEP_LISTS,
    "deep objects": DEEP_OBJECTS,
    "huge string": HUGE_STRING,
    "NaN": "NaN",
    "Infinity": "Infinity",
    "1e400": "1e400",
    "huge number": "1" + "0" * 40,
    "negative": "-1",
    "superscript two": '"²"',
    "Arabic-Indic digits": '"٣٦٠٠"',
    "null": "null",
    "object": '{"value": [1, {"x": null}]}',
    "list of containers": "[[], {}, [1]]",
    "boolean": "true",
    "NUL character": '"a\\u0000b"',
    "lone surrogate": '"\\ud800"',
}

NASTY_QUERY = ["²", "٣", "x" * 10_000, "%00", "%FF%FE", "NaN", "-1", "", "[[[[[["]


def _resources() -> list[a.Resource]:
    return [c.resource for c in Services(Database("sqlite://")).collections.values()]


RESOURCES = _resources()
WRITABLE = [r for r in RESOURCES if r.plural not in READ_ONLY]


def _assert_client_error(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code >= 400:
        body = error(response, response.status_code)
        assert len(body["message"]) < 2000, "error messages are bounded"


def _send(client, method: str, path: str, singular: str, name: str, raw_value: str):
    body = f'{{"{singular}": {{"{name}": {raw_value}}}}}'.encode()
    return client.request(method, path, content=body,
                          headers={"Content-Type": "application/json"})


def test_nested_lists_in_a_string_attribute_are_a_400(admin):
    response = _send(admin, "POST", "/v2.0/vpn/ikepolicies", "ikepolicy", "description",
                     DEEP_LISTS)
    assert error(response, 400)["type"] == "MalformedRequestBody"
    assert "nested more than" in error(response, 400)["message"]


def test_objects_deeper_than_orjson_allows_are_a_400(admin):
    response = _send(admin, "POST", "/v2.0/vpn/ikepolicies", "ikepolicy", "description",
                     DEEP_OBJECTS)
    assert error(response, 400)["type"] == "MalformedRequestBody"


def test_moderately_nested_value_is_a_bounded_400(admin):
    nested = "[" * (request.MAX_BODY_DEPTH - 3) + '"x"' + "]" * (request.MAX_BODY_DEPTH - 3)
    response = _send(admin, "POST", "/v2.0/vpn/ikepolicies", "ikepolicy", "description",
                     nested)
    message = error(response, 400)["message"]
    assert message.startswith("Invalid input for description") and len(message) < 400


@pytest.mark.parametrize("limit", ["²", "٣", "1²"])
def test_unicode_digits_in_limit_are_a_400(member, limit):
    response = member.get("/v2.0/vpn/ikepolicies", params={"limit": limit})
    assert error(response, 400) == {
        "type": "HTTPBadRequest", "detail": "",
        "message": f"Limit must be an integer 0 or greater and not '{limit}'"}


@pytest.mark.parametrize("value", ["²", "٣٦٠٠", "３６００"])
def test_integer_attributes_take_ascii_digits_only(member, value):
    response = member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
        "lifetime": {"units": "seconds", "value": value}}})
    assert error(response, 400)["message"] == \
        f"Invalid input for lifetime. Reason: '{value}' is not an integer."


def test_ascii_numeric_strings_still_parse(member):
    response = member.post("/v2.0/vpn/ikepolicies", json={"ikepolicy": {
        "lifetime": {"units": "seconds", "value": " 7200 "}}})
    assert response.status_code == 201
    policy_id = response.json()["ikepolicy"]["id"]
    shown = member.get(f"/v2.0/vpn/ikepolicies/{policy_id}").json()["ikepolicy"]
    assert shown["lifetime"]["value"] == 7200


@pytest.mark.parametrize("resource", WRITABLE, ids=lambda r: r.plural)
def test_no_nasty_attribute_value_is_a_server_error(admin, resource):
    member_path = f"{resource.path}/{uuid.uuid4()}"
    for attr in resource.attrs:
        for raw in NASTY_JSON.values():
            if attr.post:
                _assert_client_error(_send(admin, "POST", resource.path, resource.singular,
                                           attr.name, raw))
            if attr.put:
                _assert_client_error(_send(admin, "PUT", member_path, resource.singular,
                                           attr.name, raw))


@pytest.mark.parametrize("action", ["add", "remove"])
def test_no_nasty_router_interface_body_is_a_server_error(admin, action):
    path = f"/v2.0/routers/{uuid.uuid4()}/{action}_router_interface"
    for key in ("subnet_id", "port_id"):
        for raw in NASTY_JSON.values():
            body = f'{{"{key}": {raw}}}'.encode()
            _assert_client_error(admin.put(path, content=body))


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.plural)
def test_no_nasty_query_is_a_server_error(admin, resource):
    keys = [attr.name for attr in resource.attrs] + ["limit", "marker", "sort_key",
                                                     "sort_dir", "page_reverse", "fields"]
    for key in keys:
        for value in NASTY_QUERY:
            _assert_client_error(admin.get(f"{resource.path}?{quote(key)}={value}"))


NASTY_VALUES = [orjson.loads(DEEP_LISTS), "x" * 100_000, float("nan"), float("inf"),
                10**40, -1, "²", "٣٦٠٠", None, {"value": [1]}, [[], {}], True, "a\x00b",
                {"k" * 10_000: 1}, ["dup", "dup"]]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.plural)
def test_every_parser_refuses_nasty_values_with_a_bounded_reason(resource):
    for attr in resource.attrs:
        for parser in (attr.parse, attr.filter_parse):
            if parser is None:
                continue
            for value in NASTY_VALUES:
                try:
                    parser(value)
                except a.InvalidValue as err:
                    assert len(str(err)) < 1000, (attr.name, str(err)[:200])


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.plural)
def test_nul_in_an_id_or_a_filter_is_a_400(admin, resource):
    # PostgreSQL text cannot hold NUL: the database driver failed on these (a 500).
    for method, url in [("GET", f"{resource.path}/a%00b"), ("PUT", f"{resource.path}/%00"),
                        ("DELETE", f"{resource.path}/%00"), ("GET", f"{resource.path}?id=%00"),
                        ("GET", f"{resource.path}?marker=%00")]:
        response = admin.request(method, url, json={resource.singular: {}})
        assert error(response, 400)["message"].startswith(
            "The request URL contains a NUL character"), (method, url)
