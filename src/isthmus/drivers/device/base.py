"""The agent half of a VPN provider: a device driver makes a device match the API."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    from oslo_config.cfg import Opt

    from isthmus.diagnosis import StatusDetail

    from isthmus.rpc.payloads import Service  # for type checkers only: isthmus.rpc loads the server

Statuses = Mapping[str, str]
"""``{object id: status}`` for VPN services and site connections: ACTIVE, DOWN or ERROR."""


@dataclass(frozen=True)
class RouterState:
    """The desired state of one router: its VPN services as ``get_vpn_services_on_host``
    returns them (typed in :mod:`isthmus.rpc.payloads`, schemas in docs/rpc.md).
    No services means: remove everything of this router."""

    router_id: str
    namespace: str | None
    services: Sequence[Service] = ()


@dataclass
class AgentContext:
    """What the agent gives its device drivers."""

    host: str
    conf: Any = None
    report: Callable[[Statuses], None] = field(default=lambda statuses: None)
    """Push status changes at any time (e.g. from device events); the agent sends them,
    with what :meth:`DeviceDriver.details` says then."""
    router: Callable[[str], "RouterState | None"] = field(default=lambda router_id: None)
    """The last state the agent synced for a router (``None`` if it has none)."""


class DeviceDriver(abc.ABC):
    """Base of every device driver. Only :meth:`sync` is required.

    The agent calls :meth:`sync` for one router at a time (never twice at once for the
    same router; different routers in parallel) with the router's full desired state.
    """

    #: Provider names (``[service_providers]``) this driver serves; ``None``: all.
    providers: tuple[str, ...] | None = None

    #: Options this driver reads, as ``[(group, [oslo.config Opt, ...])]`` (the shape of
    #: oslo-config-generator's ``list_opts()``). The loader registers them on the
    #: agent's configuration before building the driver; read them from ``self.agent.conf``.
    options: Sequence[tuple[str, Sequence[Opt]]] = ()

    #: Said with every connection status this driver reports, and shown on the connection
    #: as the message of ``isthmus:status_detail`` when :meth:`details` says nothing of it;
    #: ``None``: nothing.
    status_note: str | None = None

    def __init__(self, agent: AgentContext) -> None:
        self.agent = agent

    @abc.abstractmethod
    def sync(self, router: RouterState) -> Statuses:
        """Make the device match ``router``; return the status of each service and connection."""

    def poll(self, router: RouterState) -> Statuses | None:
        """Current statuses, for the periodic check; ``None`` if the driver cannot tell."""
        return None

    def traffic(self, router: RouterState) -> Mapping[str, Mapping[str, int]]:
        """Counters per connection id (``bytes_in``, ``bytes_out``, ``packets_in``,
        ``packets_out``), reported with each poll; empty if the driver does not count."""
        return {}

    def details(self, router: RouterState) -> Mapping[str, StatusDetail]:
        """Why each connection's status is what it is, by connection id: SA states,
        negotiated algorithms, a reason code of :data:`isthmus.diagnosis.REASONS` and its
        message (build one with :func:`isthmus.diagnosis.detail`). The agent sends a
        detail when it changes; empty if the driver cannot tell."""
        return {}

    def leftover_routers(self) -> set[str]:
        """Ids of routers this driver finds state of on the host (files, daemons), also
        from before a restart. After a successful full fetch, the agent syncs those the
        server no longer assigns to it with no services: removed. Default: none."""
        return set()

    def start(self) -> None:
        """Called once when the agent starts, before the first sync."""

    def stop(self) -> None:
        """Called once when the agent stops."""
