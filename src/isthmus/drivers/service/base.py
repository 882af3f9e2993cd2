"""The server half of a VPN provider: what a service driver is and what it gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

from isthmus.context import RequestContext

if TYPE_CHECKING:
    from oslo_config.cfg import Opt


class DriverServer(Protocol):
    """What the server offers its service drivers."""

    conf: Any
    """The server's configuration (oslo.config), for drivers' own options."""

    def notify_router(self, router_id: str) -> None:
        """Tell the agent hosting ``router_id`` to re-sync it (RPC ``vpnservice_updated``)."""


@dataclass(frozen=True)
class Change:
    """One create/update/delete of a VPN resource, as a service driver sees it.

    ``new`` is the validated request (before the write, in :meth:`ServiceDriver.validate`)
    or the stored object (after the commit, in :meth:`ServiceDriver.changed`); ``old``
    is the object before the change. ``router_id`` is the router the change affects,
    when there is one (VPN services and site connections).
    """

    context: RequestContext
    resource: str                 # "vpnservices", "ipsec_site_connections", "ikepolicies", ...
    action: str                   # "create", "update" or "delete"
    new: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    router_id: str | None = None
    lookup: Callable[[str, str], Mapping[str, Any]] = field(default=lambda c, i: {}, repr=False)
    """``lookup(collection, id)``: another object, read in the same transaction."""


class ServiceDriver:
    """Base of every service driver; override what you need, nothing is abstract.

    The server builds one instance per configured provider, passing itself as
    ``server``; ``name`` is the provider name from ``[service_providers]``.
    """

    name: str = ""

    #: Options this driver reads, as ``[(group, [oslo.config Opt, ...])]`` (the shape of
    #: oslo-config-generator's ``list_opts()``). The loader registers them on the
    #: server's configuration before building the driver; read them from ``self.server.conf``.
    options: Sequence[tuple[str, Sequence[Opt]]] = ()

    def __init__(self, server: DriverServer) -> None:
        self.server = server

    def validate(self, change: Change) -> None:
        """Refuse a change by raising an Isthmus error (a 400 or 409 for the client).

        Runs inside the request's transaction, before anything is written.
        """

    def changed(self, change: Change) -> None:
        """Called after a change is committed."""
