"""HTTP endpoints: one generic pair (collection, member) serves every resource."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode

import falcon
import orjson

from isthmus import attributes as a
from isthmus.api import discovery, listing, request
from isthmus.context import RequestContext
from isthmus.exceptions import IsthmusError, PolicyNotAuthorized, shown
from isthmus.services import Services

LOG = logging.getLogger("isthmus.api")


def _json(resp: falcon.Response, body: Any, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = orjson.dumps(body)


def _read_body(req: falcon.Request) -> Any:
    raw = req.bounded_stream.read(request.MAX_BODY_BYTES + 1)
    if len(raw) > request.MAX_BODY_BYTES:
        err = IsthmusError(message=f"Request body is larger than {request.MAX_BODY_BYTES} bytes")
        err.status, err.error_type = 413, "HTTPRequestEntityTooLarge"
        raise err
    return request.decode_json(raw)


def _query(req: falcon.Request) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    pairs = parse_qsl(req.query_string, keep_blank_values=True)
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return pairs, grouped


def base_url(req: falcon.Request) -> str:
    return f"{req.scheme}://{req.netloc}"


class ContextMiddleware:
    """Builds the caller's :class:`RequestContext`, tags the request id, logs access."""

    def __init__(self, anonymous_is_admin: bool, secret_params: frozenset[str] = frozenset()
                 ) -> None:
        self.anonymous_is_admin = anonymous_is_admin
        self.secret_params = secret_params   # query keys whose values the log masks (?psk=)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        request_id = f"req-{uuid.uuid4()}"
        req.context.request_id = request_id
        resp.set_header("X-OpenStack-Request-Id", request_id)
        if req.path.endswith(".json") and req.path.startswith("/v2.0/"):
            req.path = req.path[:-5]
        ctx = RequestContext.from_headers(req.get_header, request_id)
        if ctx.is_admin and not self.anonymous_is_admin and not (
                req.get_header("X-Project-Id") or req.get_header("X-Tenant-Id")):
            ctx = RequestContext(project_id="", roles=frozenset(), request_id=request_id)
        req.context.ctx = ctx

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        started = getattr(req.context, "started", None)
        if started is not None and LOG.isEnabledFor(logging.INFO):
            LOG.info("%s %s %s %.1fms %s", req.method, self._loggable_uri(req), resp.status[:3],
                     (time.perf_counter() - started) * 1000, req.context.request_id)

    def _loggable_uri(self, req: falcon.Request) -> str:
        """The request URI with the value of any secret filter (``?psk=``) masked."""
        pairs, _ = _query(req)
        if not any(key in self.secret_params for key, _ in pairs):
            return req.relative_uri
        masked = [(k, a.REDACTED if k in self.secret_params else v) for k, v in pairs]
        return f"{req.relative_uri.partition('?')[0]}?{urlencode(masked, safe='*')}"


class _Endpoint:
    def __init__(self, services: Services, resource: a.Resource,
                 aliases: Mapping[str, str] | None = None, max_limit: int = -1) -> None:
        self.services = services
        self.resource = resource
        self.plural = resource.plural
        self.aliases = aliases or {}
        self.max_limit = max_limit
        self.admin_only_fields = [x.name for x in resource.attrs if not x.member_visible]

    def shape(self, ctx: RequestContext, item: dict[str, Any],
              fields: list[str] | None = None) -> dict[str, Any]:
        if not ctx.is_admin:
            for name in self.admin_only_fields:
                item.pop(name, None)
        return listing.project(item, fields) if fields else item

    def require_write(self, ctx: RequestContext, action: str, id_: str | None = None) -> None:
        if ctx.can_write:
            return
        if id_ is not None:
            self.services.get(ctx, self.plural, id_)   # hidden objects stay a 404
        raise PolicyNotAuthorized(action=f"{action}_{self.resource.singular}")


    def require_read(self, ctx: RequestContext) -> None:
        if self.resource.admin_only and not ctx.is_admin:
            raise PolicyNotAuthorized(action=f"get_{self.resource.singular}")


class CollectionEndpoint(_Endpoint):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = req.context.ctx
        self.require_read(ctx)
        pairs, params = _query(req)
        query = listing.parse_query(self.resource, params, self.aliases, self.max_limit)
        items = self.services.list(ctx, self.plural, query.filters)
        page, more = listing.apply(items, query, self.resource.not_found)
        body: dict[str, Any] = {self.plural: [self.shape(ctx, i, query.fields) for i in page]}
        body.update(listing.links(self.plural, base_url(req) + req.path, pairs, page,
                                  query, more))
        _json(resp, body)


class WritableCollectionEndpoint(CollectionEndpoint):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = req.context.ctx
        self.require_write(ctx, "create")
        body = request.parse_create(self.resource, ctx, _read_body(req))
        item = self.services.create(ctx, self.plural, body)
        _json(resp, {self.resource.singular: self.shape(ctx, item)}, falcon.HTTP_201)


class MemberEndpoint(_Endpoint):
    def on_get(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        ctx = req.context.ctx
        self.require_read(ctx)
        _, params = _query(req)
        item = self.services.get(ctx, self.plural, id_)
        fields = [f for f in params.get("fields", []) if f]
        _json(resp, {self.resource.singular: self.shape(ctx, item, fields)})


class WritableMemberEndpoint(MemberEndpoint):
    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        ctx = req.context.ctx
        self.require_write(ctx, "update", id_)
        body = request.parse_update(self.resource, ctx, _read_body(req))
        item = self.services.update(ctx, self.plural, id_, body)
        _json(resp, {self.resource.singular: self.shape(ctx, item)})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        ctx = req.context.ctx
        self.require_write(ctx, "delete", id_)
        self.services.delete(ctx, self.plural, id_)
        resp.status = falcon.HTTP_204


class RouterInterfaceEndpoint:
    """``PUT /v2.0/routers/{id}/add_router_interface`` and ``remove_router_interface``."""

    def __init__(self, services: Services, action: str) -> None:
        self.services = services
        self.action = action

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        ctx = req.context.ctx
        if not ctx.can_write:
            self.services.get(ctx, "routers", id_)
            raise PolicyNotAuthorized(action=f"{self.action}_router_interface")
        _json(resp, self.services.router_interface(ctx, id_, self.action, _read_body(req)))


class VersionsEndpoint:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, discovery.versions(base_url(req)))


class ResourcesEndpoint:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, discovery.resources(base_url(req)))


class ExtensionsEndpoint:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, {"extensions": discovery.EXTENSIONS})


class ExtensionEndpoint:
    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        ext = discovery.BY_ALIAS.get(alias)
        if ext is None:
            err = IsthmusError(message=f"Extension with alias {shown(alias)} does not exist")
            err.status, err.error_type = 404, "HTTPNotFound"
            raise err
        _json(resp, {"extension": ext})


class ServiceProvidersEndpoint:
    def __init__(self, providers: Callable[[], list[dict[str, Any]]]) -> None:
        self.providers = providers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        _json(resp, {"service_providers": self.providers()})


class OpenAPIEndpoint:
    def __init__(self, document: dict[str, Any]) -> None:
        self.data = orjson.dumps(document)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.data


