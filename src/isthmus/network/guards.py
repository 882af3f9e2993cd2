"""Vetoes other services place on core networking changes.

Neutron does this with callbacks; here a service (VPN) registers one object
whose methods raise to refuse a change. Networking itself never imports the
services that stand on it.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.engine import Connection


class NetworkGuard(Protocol):
    def before_subnet_delete(self, conn: Connection, subnet_id: str) -> None: ...

    def before_gateway_removal(self, conn: Connection, router_id: str) -> None: ...

    def before_interface_removal(self, conn: Connection, router_id: str,
                                 subnet_id: str) -> None: ...
