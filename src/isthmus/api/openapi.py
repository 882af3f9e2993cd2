"""The OpenAPI 3 document, derived from the same attribute tables the API enforces."""

from __future__ import annotations

from typing import Any, Iterable

from isthmus import __version__
from isthmus import attributes as a
from isthmus.services import READ_ONLY

ERROR = {"$ref": "#/components/schemas/NeutronError"}


def _schema_of(attr: a.Attr) -> dict[str, Any]:
    return dict(attr.schema)


def _object(attrs: Iterable[a.Attr], required: Iterable[str] = ()) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object",
                              "properties": {x.name: _schema_of(x) for x in attrs}}
    req = list(required)
    if req:
        schema["required"] = req
    return schema


def _wrapped(key: str, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {key: inner}, "required": [key]}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "Neutron error",
                        "content": {"application/json": {"schema": ERROR}}}
            for code in codes}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_parameters(resource: a.Resource) -> list[dict[str, Any]]:
    params = [{"name": x.name, "in": "query", "required": False,
               "schema": {"type": "string"}, "description": "filter (repeat for OR)"}
              for x in resource.attrs if x.kind != "dict"]
    params += [
        {"name": "fields", "in": "query", "schema": {"type": "array",
                                                      "items": {"type": "string"}},
         "style": "form", "explode": True},
        {"name": "sort_key", "in": "query", "schema": {"type": "string"}},
        {"name": "sort_dir", "in": "query", "schema": {"type": "string",
                                                        "enum": ["asc", "desc"]}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "marker", "in": "query", "schema": {"type": "string"}},
        {"name": "page_reverse", "in": "query", "schema": {"type": "boolean"}},
    ]
    return params


def _paths_for(resource: a.Resource, writable: bool) -> dict[str, Any]:
    singular, plural = resource.singular, resource.plural
    shown = _object(resource.attrs)
    create = _object([x for x in resource.attrs if x.post],
                     [x.name for x in resource.attrs if x.required])
    update = _object([x for x in resource.attrs if x.put])
    collection: dict[str, Any] = {"get": {
        "summary": f"List {resource.description}", "operationId": f"list_{plural}",
        "parameters": _list_parameters(resource),
        "responses": {"200": _json_response("the list", {
            "type": "object", "properties": {plural: {"type": "array", "items": shown}}}),
            **_errors(400, 404)}}}
    member: dict[str, Any] = {
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "get": {"summary": f"Show one of {resource.description}",
                "operationId": f"show_{singular}",
                "responses": {"200": _json_response("the object", _wrapped(singular, shown)),
                              **_errors(404)}}}
    if writable:
        collection["post"] = {
            "summary": f"Create one of {resource.description}",
            "operationId": f"create_{singular}",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _wrapped(singular, create)}}},
            "responses": {"201": _json_response("created", _wrapped(singular, shown)),
                          **_errors(400, 403, 404, 409)}}
        member["put"] = {
            "summary": f"Update one of {resource.description}",
            "operationId": f"update_{singular}",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _wrapped(singular, update)}}},
            "responses": {"200": _json_response("updated", _wrapped(singular, shown)),
                          **_errors(400, 403, 404, 409)}}
        member["delete"] = {"summary": f"Delete one of {resource.description}",
                            "operationId": f"delete_{singular}",
                            "responses": {"204": {"description": "deleted"},
                                          **_errors(400, 403, 404, 409)}}
    return {resource.path: collection, resource.path + "/{id}": member}


def _peer_config_path() -> dict[str, Any]:
    """``GET .../ipsec-site-connections/{id}/peer-config`` (extension isthmus-peer-config)."""
    text = {"type": "string"}
    return {"get": {
        "summary": "The configuration of the device at the other end of a site connection",
        "description": "With format: the configuration as text/plain (attachment), or as "
                       "JSON with Accept: application/json; the PSK only for callers allowed "
                       "get_ipsec_site_connection:psk. Without format: the formats.",
        "operationId": "show_ipsec_site_connection_peer_config",
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": text},
            {"name": "format", "in": "query", "required": False, "schema": text,
             "description": "a format name from the list answered without it"}],
        "responses": {
            "200": {"description": "the configuration, or the list of formats", "content": {
                "text/plain": {"schema": text},
                "application/json": {"schema": {"oneOf": [
                    _wrapped("peer_config", {"type": "object", "properties": {
                        "format": text, "filename": text, "content_type": text,
                        "config": text}}),
                    _wrapped("peer_config_formats", {"type": "array", "items": {
                        "type": "object", "properties": {
                            "name": text, "description": text, "filename": text}}})]}}}},
            **_errors(400, 404, 409)}}}


def document(resources: Iterable[a.Resource]) -> dict[str, Any]:
    """The OpenAPI 3 document of the API, built from the resources' attribute tables."""
    resources = list(resources)
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "API versions", "operationId": "list_versions",
                      "responses": {"200": {"description": "versions document"}}}},
        "/v2.0/extensions": {"get": {"summary": "API extensions",
                                     "operationId": "list_extensions",
                                     "responses": {"200": {"description": "extensions"}}}},
    }
    for resource in resources:
        paths.update(_paths_for(resource, writable=resource.plural not in READ_ONLY))
    for action in ("add", "remove"):
        paths[f"/v2.0/routers/{{id}}/{action}_router_interface"] = {"put": {
            "summary": f"{action.capitalize()} a router interface",
            "operationId": f"{action}_router_interface",
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"subnet_id": {"type": "string"}}}}}},
            "responses": {"200": {"description": "interface info"},
                          **_errors(400, 404, 409)}}}
    for resource in resources:
        if resource.singular == "ipsec_site_connection":
            paths[resource.path + "/{id}/peer-config"] = _peer_config_path()
    return {
        "openapi": "3.1.0",
        "info": {"title": "Isthmus (Neutron VPNaaS v2.0 compatible)", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"NeutronError": {
            "type": "object", "required": ["NeutronError"],
            "properties": {"NeutronError": {"type": "object", "properties": {
                "type": {"type": "string"}, "message": {"type": "string"},
                "detail": {"type": "string"}}}}}}},
    }
