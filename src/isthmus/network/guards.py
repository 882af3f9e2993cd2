"""Vetoes other services place on core networking changes.

Neutron does this with callbacks; here a service (VPN) registers one object
whose methods raise to refuse a change. Networking itself never imports the
services that stand on it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Connection


class NetworkGuard(Protocol):
    """A veto on networking changes that something above networking still needs.

    Networking knows nothing of VPN; the VPN layer passes a guard in (see
    :class:`isthmus.vpn.guard.VPNNetworkGuard`). Each method raises an Isthmus error
    to refuse, inside the transaction of the change.
    """

    def before_subnet_delete(self, conn: Connection, subnet_id: str) -> None:
        """Refuse to delete ``subnet_id`` (e.g. a VPN service or endpoint group uses it)."""

    def before_gateway_removal(self, conn: Connection, router_id: str) -> None:
        """Refuse to remove or replace the gateway of ``router_id``."""

    def before_interface_removal(self, conn: Connection, router_id: str,
                                 subnet_id: str) -> None:
        """Refuse to detach ``subnet_id`` from ``router_id``."""
