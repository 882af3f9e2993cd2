"""The reference service driver: every VPN change re-syncs the router's agent."""

from __future__ import annotations

from isthmus.drivers.service.base import Change, ServiceDriver

ROUTER_RESOURCES = frozenset({"vpnservices", "ipsec_site_connections"})


class IPsecServiceDriver(ServiceDriver):
    """Casts ``vpnservice_updated(router_id)`` to the agent hosting the changed router.

    Policies and endpoint groups in use cannot change, so only VPN services and
    site connections reach agents.
    """

    def changed(self, change: Change) -> None:
        if change.resource in ROUTER_RESOURCES and change.router_id:
            self.server.notify_router(change.router_id)
