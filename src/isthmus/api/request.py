"""Request bodies → validated attribute dicts, in the order Neutron checks them.

POST: singular key present; project of the caller (or, for an admin, the one
named); unknown keys; keys not allowed in POST; missing required keys;
defaults; then each value's parser. PUT: the same without defaults, and
read-only keys refused. Who may set what is the policy's (:mod:`isthmus.api.policy`),
checked on the parsed body, as Neutron checks after its attribute layer.
"""

from __future__ import annotations

from typing import Any

import falcon
import orjson

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.exceptions import HTTPBadRequest, InvalidAttribute, MalformedRequestBody, shown

MAX_BODY_BYTES = 1024 * 1024
MAX_BODY_DEPTH = 32
"""Nesting of objects and arrays a body may have; Neutron's resources need 4."""


def decode_json(raw: bytes) -> Any:
    """The body's JSON, refused (400) if malformed or nested deeper than ``MAX_BODY_DEPTH``.

    orjson refuses more than 1024 levels itself (a ``JSONDecodeError``, so a 400);
    the lower limit here protects every recursive walk after parsing (comparisons,
    ``repr``, database drivers) from the RecursionError a deep value would cause.
    """
    if not raw:
        raise HTTPBadRequest("Resource body required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedRequestBody(reason="Cannot understand JSON") from None
    _check_depth(body)
    return body


def _check_depth(body: Any) -> None:
    # A stack, not recursion: the walk must not fail the way it guards against.
    stack = [(body, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth == MAX_BODY_DEPTH:
                raise MalformedRequestBody(reason=(
                    f"JSON nested more than {MAX_BODY_DEPTH} levels deep; "
                    "send attribute values as strings, numbers or shallow lists"))
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


class RefuseNulInURL:
    """Falcon middleware: a NUL character anywhere in the path or query string is a 400.

    PostgreSQL text cannot hold NUL, so an id or filter holding one made the
    database driver fail (a 500); no identifier or filter value needs it.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Refuse the request before routing if its path or query string holds a NUL."""
        if "\x00" in req.path or "%00" in req.query_string:
            raise HTTPBadRequest("The request URL contains a NUL character (%00); "
                                 "identifiers and filter values cannot hold one")


def _resource_body(resource: a.Resource, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HTTPBadRequest("Body contains invalid data")
    if resource.singular not in body:
        raise HTTPBadRequest(f"Unable to find '{resource.singular}' in request body")
    data = body[resource.singular]
    if not isinstance(data, dict):
        raise HTTPBadRequest("Body contains invalid data")
    return data


def _check_keys(resource: a.Resource, data: dict[str, Any]) -> None:
    unknown = [k for k in data if k not in resource.by_name]
    if unknown:
        raise HTTPBadRequest(f"Unrecognized attribute(s) '{shown(', '.join(unknown))}'")


def _parse(attr: a.Attr, value: Any) -> Any:
    if attr.parse is None:
        return value
    try:
        return attr.parse(value)
    except a.InvalidValue as err:
        raise InvalidAttribute(attr.name, str(err)) from None


def _project(ctx: RequestContext, data: dict[str, Any]) -> str:
    project = data.get("project_id")
    tenant = data.get("tenant_id")
    for value in (project, tenant):
        if value is not None and not isinstance(value, str):
            raise InvalidAttribute("project_id", f"'{shown(value)}' is not a valid string")
    if project is not None and tenant is not None and project != tenant:
        raise HTTPBadRequest("'project_id' and 'tenant_id' do not match")
    chosen = project or tenant or ctx.project_id
    if chosen != ctx.project_id and not ctx.is_admin:
        raise HTTPBadRequest("Specifying 'project_id' other than the authenticated project "
                             "in request is not allowed for the current user.")
    return chosen


def parse_create(resource: a.Resource, ctx: RequestContext, body: Any) -> dict[str, Any]:
    """A POST body as the collection expects it: every attribute, given or defaulted.

    Refuses what Neutron refuses (unknown or read-only keys, a missing required
    attribute, another project's id from a non-admin) with Neutron's messages."""
    data = _resource_body(resource, body)
    _check_keys(resource, data)
    project = _project(ctx, data)
    for key in data:
        if not resource.by_name[key].post:
            raise HTTPBadRequest(f"Attribute '{shown(key)}' not allowed in POST")
    out: dict[str, Any] = {}
    for attr in resource.attrs:
        if not attr.post or attr.name in ("project_id", "tenant_id"):
            continue
        if attr.name in data:
            out[attr.name] = _parse(attr, data[attr.name])
        elif attr.required:
            raise HTTPBadRequest(
                f"Failed to parse request. Required attribute '{attr.name}' not specified")
        else:
            out[attr.name] = attr.default
    out["project_id"] = out["tenant_id"] = _string_project(project)
    return out


def _string_project(project: str) -> str:
    try:
        return a.string(255)(project)
    except a.InvalidValue as err:
        raise InvalidAttribute("project_id", str(err)) from None


def parse_update(resource: a.Resource, body: Any) -> dict[str, Any]:
    """A PUT body: only the attributes given, each parsed; read-only ones are refused."""
    data = _resource_body(resource, body)
    _check_keys(resource, data)
    for key in data:
        if not resource.by_name[key].put:
            raise HTTPBadRequest(f"Cannot update read-only attribute {shown(key)}")
    return {key: _parse(resource.by_name[key], value) for key, value in data.items()}


def parse_routes_body(resource: a.Resource, body: Any) -> list[dict[str, str]]:
    """The routes of an ``add_extraroutes``/``remove_extraroutes`` body,
    ``{"router": {"routes": [...]}}`` and nothing else."""
    data = _resource_body(resource, body)
    if set(data) != {"routes"}:
        raise HTTPBadRequest(f"Expected only 'routes' in '{resource.singular}', found "
                             f"{shown(', '.join(sorted(map(str, data))) or 'nothing')}")
    return _parse(resource.by_name["routes"], data["routes"])
