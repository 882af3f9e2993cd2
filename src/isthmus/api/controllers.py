"""HTTP endpoints: one generic pair (collection, member) serves every resource."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlencode

import falcon
import orjson

from isthmus import attributes as a
from isthmus.api import discovery, listing, request
from isthmus.api.policy import Policy
from isthmus.context import RequestContext
from isthmus.db.collection import Range
from isthmus.exceptions import (BadRequest, Conflict, HTTPNotFound, InvalidInput,
                                IsthmusError, shown)
from isthmus.network.exceptions import TagNotFound
from isthmus.peers import PeerView, Unsupported, formats
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
    """``scheme://host:port`` of the request, for the links discovery documents carry."""
    return f"{req.scheme}://{req.netloc}"


class ContextMiddleware:
    """Builds the caller's :class:`RequestContext`, tags the request id, logs access."""

    def __init__(self, anonymous_is_admin: bool, policy: Policy,
                 secret_params: frozenset[str] = frozenset()) -> None:
        self.anonymous_is_admin = anonymous_is_admin
        self.policy = policy
        self.secret_params = secret_params   # query keys whose values the log masks (?psk=)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Give the request an id and the caller's context; ``/v2.0/x.json`` is ``/v2.0/x``.

        Without identity headers the caller is an admin only with ``anonymous_is_admin``
        (no Keystone in front); otherwise it is nobody."""
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
        self.policy.refresh()
        req.context.ctx = dataclasses.replace(ctx, is_admin=self.policy.is_admin(ctx))

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        """Log one access line: method, URI with secret query values masked, status, time, id."""
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
    def __init__(self, services: Services, policy: Policy, resource: a.Resource,
                 aliases: Mapping[str, str] | None = None, max_limit: int = -1) -> None:
        self.services = services
        self.policy = policy
        self.resource = resource
        self.plural = resource.plural
        self.aliases = aliases or {}
        self.max_limit = max_limit

    def targets(self, items: list[dict[str, Any]],
                networks: dict[str, dict[str, Any] | None] | None = None
                ) -> list[dict[str, Any]]:
        """What policy checks see: each object, plus its network's owner (and, for a
        subnet, whether that network is shared) for Neutron's network-owner rules.
        ``networks`` keeps the networks looked up across calls (one request's page)."""
        networks = {} if networks is None else networks
        out = []
        for item in items:
            network_id = item.get("network_id")
            if self.plural == "networks" or not isinstance(network_id, str):
                out.append(item)
                continue
            if network_id not in networks:
                networks[network_id] = self.services.lookup("networks", network_id)
            network = networks[network_id]
            extra = {} if network is None else {"network:project_id": network["project_id"],
                                                 "shared": network["shared"]}
            out.append({**extra, **item})
        return out

    def readable(self, ctx: RequestContext, target: Mapping[str, Any]) -> bool:
        return self.policy.check(ctx, f"get_{self.resource.singular}", target)

    def view(self, ctx: RequestContext, item: dict[str, Any],
             target: Mapping[str, Any]) -> dict[str, Any]:
        """``item`` without the attributes a ``get_<resource>:<attr>`` rule hides."""
        hidden = self.policy.hidden_fields(ctx, self.resource, target)
        return {k: v for k, v in item.items() if k not in hidden} if hidden else item

    def visible_item(self, ctx: RequestContext, id_: str) -> tuple[dict[str, Any],
                                                                   dict[str, Any]]:
        """The object and its policy target; 404 if ``get_<resource>`` hides it."""
        item = self.services.get(ctx, self.plural, id_)
        return item, self.visible_target(ctx, item)

    def visible_target(self, ctx: RequestContext, item: dict[str, Any]) -> dict[str, Any]:
        """The policy target of ``item``; 404 if ``get_<resource>`` hides it."""
        target = self.targets([item])[0]
        if not self.readable(ctx, target):
            raise HTTPNotFound()
        return target


class CollectionEndpoint(_Endpoint):
    """``GET /v2.0/<resource>``: the list, filtered, sorted, paged, with only allowed fields."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The caller's list: filtered, sorted and paged in SQL where it can be (policy
        still decides on each object), otherwise in memory; ``*_links`` for the pages."""
        ctx = req.context.ctx
        pairs, params = _query(req)
        own = {"project_id": ctx.project_id, "tenant_id": ctx.project_id}
        hidden = self.policy.hidden_fields(ctx, self.resource, own)
        query = listing.parse_query(self.resource, params, self.aliases, self.max_limit,
                                    hidden)
        # A guarded attribute may be hidden on some objects: filter it on what the
        # caller is shown (below), never in SQL on the stored value.
        guarded = self.policy.guarded_fields(self.resource)
        attrs = self._attributes_to_read(query)
        if self._pages_in_sql(query, guarded):
            networks: dict[str, dict[str, Any] | None] = {}   # subnets' and ports' owners
            page, more = self.services.list_page(
                ctx, self.plural, query.filters, query.tag_filters, query.sort, query.limit,
                query.marker, query.page_reverse,
                lambda item: self._accepted(ctx, item, query, networks), attrs)
        else:
            items = self.services.list(ctx, self.plural, {
                k: v for k, v in query.filters.items() if k not in guarded}, attrs)
            views = [self.view(ctx, item, target)
                     for item, target in zip(items, self.targets(items))
                     if self.readable(ctx, target)]
            page, more = listing.apply(views, query, self.resource.not_found)
        fields = query.fields
        body: dict[str, Any] = {self.plural: [listing.project(v, fields) if fields else v
                                              for v in page]}
        body.update(listing.links(self.plural, base_url(req) + req.path, pairs, page,
                                  query, more))
        _json(resp, body)


    def _attributes_to_read(self, query: listing.ListQuery) -> set[str] | None:
        """With ``fields``, the attributes the answer depends on (None: all): the fields,
        ``id``, the owner, what the filters and the sort read, and what the policy rules
        read; the SELECT then reads only their columns."""
        if not query.fields:
            return None
        policy_keys = self.policy.keys_read(self.resource)
        if policy_keys is None:
            return None
        needed = {*query.fields, *query.filters, *(key for key, _ in query.sort),
                  *policy_keys, "id", "project_id", "tenant_id"}
        if "network_id" in self.resource.by_name:   # targets() looks up the network
            needed.add("network_id")
        if query.tag_filters:
            needed.add("tags")
        return needed

    def _pages_in_sql(self, query: listing.ListQuery, guarded: set[str]) -> bool:
        """Whether SQL can filter, sort and page this list: every filter and sort key a
        plain column no policy rule guards (a guarded value may be hidden on some
        objects, so SQL must not decide on it). Subnets and ports too: their policy
        target needs their network's owner, which :meth:`_accepted` looks up once per
        network of the page. Tag filters pass :func:`listing.parse_query` only
        when the caller may see tags. A list neither paged nor tag-filtered returns
        every row anyway: it runs as before (filters on plain columns still in SQL)."""
        if query.limit is None and query.marker is None and not query.tag_filters:
            return False
        # Range filters (since/until) are SQL conditions of their own, on any column.
        keys = [*(k for k, v in query.filters.items() if not isinstance(v, Range)),
                *(key for key, _ in query.sort)]
        collection = self.services.collections[self.plural]
        return (collection.sortable(keys)
                and not guarded.intersection([*keys, *(["tags"] if query.tag_filters else [])]))

    def _accepted(self, ctx: RequestContext, item: dict[str, Any], query: listing.ListQuery,
                  networks: dict[str, dict[str, Any] | None] | None = None
                  ) -> dict[str, Any] | None:
        """The caller's view of ``item`` if policy lets it read it and the view passes
        the filters exactly (SQL collations may match more), else ``None``."""
        target = self.targets([item], networks)[0]
        if not self.readable(ctx, target):
            return None
        view = self.view(ctx, item, target)
        if not listing.matches(view, query.filters) or query.tag_filters and \
                not listing.tags_match(set(view.get("tags", ())), query.tag_filters):
            return None
        return view


class WritableCollectionEndpoint(CollectionEndpoint):
    """``POST /v2.0/<resource>`` besides the list: create one object, after policy."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create one object: parse, 404 for a network the caller cannot see, policy, create."""
        ctx = req.context.ctx
        body = request.parse_create(self.resource, ctx, _read_body(req))
        if isinstance(body.get("network_id"), str):
            # A network the caller cannot see is a 404, before policy could say 403.
            self.services.get(ctx, "networks", body["network_id"])
        self.policy.authorize_write(ctx, "create", self.resource, self.targets([body])[0],
                                    body)
        item = self.services.create(ctx, self.plural, body)
        _json(resp, {self.resource.singular: self.view(ctx, item, self.targets([item])[0])},
              falcon.HTTP_201)


class MemberEndpoint(_Endpoint):
    """``GET /v2.0/<resource>/{id}``: one object, 404 if the caller may not see it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Show one object, with ``fields`` as asked and hidden attributes left out."""
        ctx = req.context.ctx
        _, params = _query(req)
        item, target = self.visible_item(ctx, id_)
        fields = [f for f in params.get("fields", []) if f]
        shown = self.view(ctx, item, target)
        _json(resp, {self.resource.singular: listing.project(shown, fields) if fields
                     else shown})


class WritableMemberEndpoint(MemberEndpoint):
    """``PUT`` and ``DELETE`` of one object besides ``GET``."""

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Update: policy is checked on the object as it would be after the change."""
        ctx = req.context.ctx
        body = request.parse_update(self.resource, _read_body(req))

        def authorize(current: dict[str, Any]) -> None:
            target = self.visible_target(ctx, current)
            self.policy.authorize_write(ctx, "update", self.resource, {**target, **body},
                                        body)
        # Checked in the update's transaction, on the object it reads anyway.
        item = self.services.update(ctx, self.plural, id_, body, authorize)
        _json(resp, {self.resource.singular: self.view(ctx, item, self.targets([item])[0])})

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Delete: 404 before 403, as Neutron (a caller learns nothing of what it cannot see)."""
        ctx = req.context.ctx

        def authorize(current: dict[str, Any]) -> None:
            self.policy.authorize(ctx, f"delete_{self.resource.singular}",
                                  self.visible_target(ctx, current))
        self.services.delete(ctx, self.plural, id_, authorize)
        resp.status = falcon.HTTP_204


class RouterInterfaceEndpoint:
    """``PUT /v2.0/routers/{id}/add_router_interface`` and ``remove_router_interface``."""

    def __init__(self, services: Services, policy: Policy, action: str) -> None:
        self.services = services
        self.policy = policy
        self.action = action

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Add or remove the interface; the answer is Neutron's interface info, not the router."""
        ctx = req.context.ctx
        router = self.services.get(ctx, "routers", id_)
        self.policy.authorize_change(ctx, f"{self.action}_router_interface",
                                     self.services.routers.resource, router)
        _json(resp, self.services.router_interface(ctx, id_, self.action, _read_body(req)))


class RouterRoutesEndpoint(_Endpoint):
    """``PUT /v2.0/routers/{id}/add_extraroutes`` and ``remove_extraroutes``
    (``extraroute-atomic``): body ``{"router": {"routes": [...]}}``, answer the router."""

    def __init__(self, services: Services, policy: Policy, action: str) -> None:
        super().__init__(services, policy, services.routers.resource)
        self.action = action

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Add or remove the routes given; the answer is the whole router."""
        ctx = req.context.ctx
        _, target = self.visible_item(ctx, id_)
        self.policy.authorize(ctx, f"{self.action}_extraroutes", target)
        routes = request.parse_routes_body(self.resource, _read_body(req))
        item = self.services.router_routes(ctx, id_, self.action, routes)
        _json(resp, {"router": self.view(ctx, item, self.targets([item])[0])})


def _tags_body(body: Any) -> list[str]:
    """``{"tags": [...]}``, refused with Neutron's ``InvalidInput`` messages."""
    if not isinstance(body, dict) or "tags" not in body:
        raise InvalidInput(error_message="Invalid tags body")
    try:
        return a.tag_list(body["tags"])
    except a.InvalidValue as err:
        raise InvalidInput(error_message=str(err)) from None


def _tag(value: str) -> str:
    try:
        return a.tag(value)
    except a.InvalidValue as err:
        raise InvalidInput(error_message=str(err)) from None


class _TagsBase(_Endpoint):
    """Tags of one object (``standard-attr-tag``): ``<action>_<resource>:tags`` rules
    on the object, after the 404 a caller who may not see it gets."""

    def authorize_tags(self, ctx: RequestContext, id_: str, action: str) -> None:
        _, target = self.visible_item(ctx, id_)
        self.policy.authorize(ctx, f"{action}_{self.resource.singular}:tags", target)

    def check_count(self, tags: list[str]) -> list[str]:
        if len(tags) > a.MAX_TAGS:
            raise BadRequest(resource=self.plural, msg=(
                f"The number of tags exceed the per-resource limit of {a.MAX_TAGS}"))
        return tags


class TagsEndpoint(_TagsBase):
    """``/v2.0/<resource>/{id}/tags``: list (GET), replace (PUT), add several (POST),
    remove all (DELETE)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """The object's tags."""
        ctx = req.context.ctx
        self.authorize_tags(ctx, id_, "get")
        _json(resp, {"tags": self.services.tags(ctx, self.plural, id_)})

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Replace all the object's tags."""
        ctx = req.context.ctx
        tags = _tags_body(_read_body(req))
        self.authorize_tags(ctx, id_, "update")
        self.check_count(tags)
        _json(resp, {"tags": self.services.change_tags(ctx, self.plural, id_,
                                                       lambda current: tags)})

    def on_post(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Add several tags (those already there are kept once)."""
        ctx = req.context.ctx
        tags = _tags_body(_read_body(req))
        self.authorize_tags(ctx, id_, "create")
        self.check_count(tags)
        self.services.change_tags(ctx, self.plural, id_, lambda current: self.check_count(
            current + [t for t in tags if t not in current]))
        _json(resp, {"tags": tags}, falcon.HTTP_201)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """Remove all the object's tags."""
        ctx = req.context.ctx
        self.authorize_tags(ctx, id_, "delete")
        self.services.change_tags(ctx, self.plural, id_, lambda current: [])
        resp.status = falcon.HTTP_204


class TagEndpoint(_TagsBase):
    """``/v2.0/<resource>/{id}/tags/{tag}``: check (GET, 204 or 404), add (PUT, 201),
    remove (DELETE, 204 or 404)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, id_: str, tag: str) -> None:
        """204 if the object has the tag, 404 if not."""
        ctx = req.context.ctx
        tag = _tag(tag)
        self.authorize_tags(ctx, id_, "get")
        if tag not in self.services.tags(ctx, self.plural, id_):
            raise TagNotFound(tag=tag)
        resp.status = falcon.HTTP_204

    def on_put(self, req: falcon.Request, resp: falcon.Response, id_: str, tag: str) -> None:
        """Add one tag (adding one already there is not an error)."""
        ctx = req.context.ctx
        tag = _tag(tag)
        self.authorize_tags(ctx, id_, "update")
        self.services.change_tags(ctx, self.plural, id_, lambda current: current if tag in
                                  current else self.check_count(current + [tag]))
        _json(resp, None, falcon.HTTP_201)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, id_: str,
                  tag: str) -> None:
        """Remove one tag; 404 if the object does not have it."""
        ctx = req.context.ctx
        tag = _tag(tag)
        self.authorize_tags(ctx, id_, "delete")

        def without(current: list[str]) -> list[str]:
            if tag not in current:
                raise TagNotFound(tag=tag)
            return [t for t in current if t != tag]
        self.services.change_tags(ctx, self.plural, id_, without)
        resp.status = falcon.HTTP_204


class PeerConfigEndpoint(_Endpoint):
    """``GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config``: the other end's
    configuration in ``?format=`` (extension ``isthmus-peer-config``, docs/peers.md);
    without ``format``, the list of formats.

    Whoever may read the connection may download it; the PSK is in it only for a
    caller ``get_ipsec_site_connection:psk`` lets read it. It is rendered from the
    connection's desired state, built by the code that builds its agent's, so both
    ends are configured from one source.
    """

    TEXT = "text/plain; charset=utf-8"

    def on_get(self, req: falcon.Request, resp: falcon.Response, id_: str) -> None:
        """404 as ``GET`` of the connection; 400 for an unknown format or what the format
        cannot express; 409 while the router has no external address for the peer."""
        ctx = req.context.ctx
        _, target = self.visible_item(ctx, id_)
        _, params = _query(req)
        name = (params.get("format") or [""])[-1]
        if not name:
            _json(resp, {"peer_config_formats": [f.listing() for f in
                                                  formats.FORMATS.values()]})
            return
        try:
            fmt = formats.get(name)
        except formats.UnknownFormat as err:
            raise BadRequest(resource=self.resource.singular, msg=str(err)) from None
        state = self.services.connection_state(id_)
        if state is None:   # deleted since visible_item read it
            raise HTTPNotFound()
        if not state["external_ip"]:
            raise Conflict(msg=(
                f"the router of IPsec site connection {id_} has no external IPv"
                f"{state['local_ip_version']} address yet, which the peer must reach; "
                "set the router's external gateway and ask again"))
        psk_visible = "psk" not in self.policy.hidden_fields(ctx, self.resource, target)
        view = PeerView.of(state, psk_visible)
        try:
            text = fmt.render(view)
        except Unsupported as err:
            raise BadRequest(resource=self.resource.singular, msg=str(err)) from None
        filename = fmt.filename(view)
        resp.set_header("Cache-Control", "no-store")   # it may hold the PSK
        if self._wants_json(req):
            _json(resp, {"peer_config": {"format": fmt.name, "filename": filename,
                                         "content_type": self.TEXT, "config": text}})
            return
        resp.content_type = self.TEXT
        resp.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        resp.data = text.encode()

    def _wants_json(self, req: falcon.Request) -> bool:
        """JSON only when the client prefers it to text (``Accept: application/json``)."""
        return "application/json" in (req.get_header("Accept") or "") and \
            req.client_prefers([self.TEXT, falcon.MEDIA_JSON]) == falcon.MEDIA_JSON


class VersionsEndpoint:
    """``GET /``: the API versions (only ``v2.0``), as Neutron lists them."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The versions document, with links on the address the client used."""
        _json(resp, discovery.versions(base_url(req)))


class ResourcesEndpoint:
    """``GET /v2.0/``: the core resources, as Neutron lists them."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The resources document, with links on the address the client used."""
        _json(resp, discovery.resources(base_url(req)))


class ExtensionsEndpoint:
    """``GET /v2.0/extensions``: the Neutron extensions Isthmus implements."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Every extension, as clients (openstacksdk, the neutron CLI) probe for them."""
        _json(resp, {"extensions": discovery.EXTENSIONS})


class ExtensionEndpoint:
    """``GET /v2.0/extensions/{alias}``: one extension."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, alias: str) -> None:
        """The extension with ``alias``, or Neutron's 404 ``HTTPNotFound``."""
        ext = discovery.BY_ALIAS.get(alias)
        if ext is None:
            err = IsthmusError(message=f"Extension with alias {shown(alias)} does not exist")
            err.status, err.error_type = 404, "HTTPNotFound"
            raise err
        _json(resp, {"extension": ext})


class ServiceProvidersEndpoint:
    """``GET /v2.0/service-providers``: the VPN providers configured in ``[service_providers]``."""

    def __init__(self, providers: Callable[[], list[dict[str, Any]]]) -> None:
        self.providers = providers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The providers, read when asked (the loader owns them)."""
        _json(resp, {"service_providers": self.providers()})


class OpenAPIEndpoint:
    """``GET /openapi.json``: the OpenAPI document, serialised once at start."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.data = orjson.dumps(document)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The document's bytes."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.data


