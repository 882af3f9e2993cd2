"""The WSGI application: routes for every resource, errors, identity."""

from __future__ import annotations

import threading
from typing import Any, Callable

import falcon
import orjson

from isthmus.api import controllers, faults, openapi, request, streams
from isthmus.api.metrics import RequestMetrics
from isthmus.api.policy import Policy
from isthmus.services import READ_ONLY, Services
from isthmus.vpn.endpoint_groups import FILTER_ALIASES

WSGIApp = Callable[..., Any]

DEFAULT_PROVIDERS = [{"service_type": "VPN", "name": "ipsec", "default": True}]


def create_app(services: Services, *, auth_strategy: str = "noauth",
               pagination_max_limit: int = -1,
               service_providers: Callable[[], list[dict[str, Any]]] | None = None,
               policy: Policy | None = None, event_stream_limit: int = 4,
               event_poll_s: float = 1.0,
               streams_closing: threading.Event | None = None,
               metrics: RequestMetrics | None = None) -> falcon.App:
    """The Falcon app serving the Neutron-compatible API over ``services``.

    ``policy`` authorizes every call; without one, the default rules apply. At most
    ``event_stream_limit`` event streams are open at once; setting ``streams_closing``
    ends them all (the server is stopping). ``metrics`` (docs/metrics.md) counts and
    times every request the app answers.
    """
    policy = policy or Policy()
    timing = [metrics] if metrics is not None else []
    app = falcon.App(middleware=[*timing, request.RefuseNulInURL(), controllers.ContextMiddleware(
        anonymous_is_admin=auth_strategy == "noauth", policy=policy,
        secret_params=frozenset(name for c in services.collections.values()
                                for name in c.resource.secrets))])
    app.req_options.strip_url_path_trailing_slash = False
    faults.install(app)
    app.add_route("/", controllers.VersionsEndpoint())
    app.add_route("/v2.0", controllers.ResourcesEndpoint())
    app.add_route("/v2.0/", controllers.ResourcesEndpoint())
    app.add_route("/v2.0/extensions", controllers.ExtensionsEndpoint())
    app.add_route("/v2.0/extensions/{alias}", controllers.ExtensionEndpoint())
    app.add_route("/v2.0/service-providers", controllers.ServiceProvidersEndpoint(
        service_providers or (lambda: DEFAULT_PROVIDERS)))
    resources = [c.resource for c in services.collections.values()]
    for resource in resources:
        aliases = FILTER_ALIASES if resource.plural == "endpoint_groups" else None
        writable = resource.plural not in READ_ONLY
        collection_cls = (controllers.WritableCollectionEndpoint if writable
                          else controllers.CollectionEndpoint)
        member_cls = controllers.WritableMemberEndpoint if writable else controllers.MemberEndpoint
        if resource.plural == "events":
            app.add_route(resource.path, streams.EventsEndpoint(
                services, policy, resource, pagination_max_limit, limit=event_stream_limit,
                poll_s=event_poll_s, closing=streams_closing))
        else:
            app.add_route(resource.path, collection_cls(services, policy, resource, aliases,
                                                        pagination_max_limit))
        app.add_route(resource.path + "/{id_}", member_cls(services, policy, resource,
                                                           aliases))
    for action in ("add", "remove"):
        app.add_route(f"/v2.0/routers/{{id_}}/{action}_router_interface",
                      controllers.RouterInterfaceEndpoint(services, policy, action))
        app.add_route(f"/v2.0/routers/{{id_}}/{action}_extraroutes",
                      controllers.RouterRoutesEndpoint(services, policy, action))
    for resource in resources:
        if "tags" in resource.by_name:
            app.add_route(resource.path + "/{id_}/tags",
                          controllers.TagsEndpoint(services, policy, resource))
            app.add_route(resource.path + "/{id_}/tags/{tag}",
                          controllers.TagEndpoint(services, policy, resource))
    connections = services.site_connections.resource
    app.add_route(connections.path + "/{id_}/peer-config",
                  controllers.PeerConfigEndpoint(services, policy, connections))
    app.add_route("/openapi.json", controllers.OpenAPIEndpoint(openapi.document(resources)))
    return app


# keystonemiddleware's own refusal, so a client sees the same 401 whichever decides.
UNAUTHORIZED_BODY = orjson.dumps({"error": {
    "code": 401, "title": "Unauthorized",
    "message": "The request you have made requires authentication."}})


def _refuse_unconfirmed(app: WSGIApp) -> WSGIApp:
    """Answer 401 unless keystonemiddleware confirmed the caller's (and service's) token.

    With ``delay_auth_decision = true`` keystonemiddleware passes requests without
    a valid token on, marked ``X-Identity-Status: Invalid``, and leaves the refusal
    to the service; it sets the header itself (a client's copy is removed) and adds
    ``WWW-Authenticate`` to the 401 on the way out.
    """
    def refuse_unconfirmed(environ: dict[str, Any], start_response: Any) -> Any:
        for header in ("HTTP_X_IDENTITY_STATUS", "HTTP_X_SERVICE_IDENTITY_STATUS"):
            if environ.get(header, "Confirmed") != "Confirmed":
                start_response("401 Unauthorized", [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(UNAUTHORIZED_BODY)))])
                return [UNAUTHORIZED_BODY]
        return app(environ, start_response)
    return refuse_unconfirmed


def with_keystone(app: WSGIApp, conf: Any) -> WSGIApp:
    """Validate tokens with keystonemiddleware; the version document stays public."""
    from keystonemiddleware import auth_token

    protected = auth_token.AuthProtocol(_refuse_unconfirmed(app), {"oslo_config_config": conf})

    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO", "/") in ("", "/"):
            return app(environ, start_response)
        return protected(environ, start_response)
    return dispatch
