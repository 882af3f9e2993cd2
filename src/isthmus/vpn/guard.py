"""VPN's vetoes on networking changes that would break a VPN service."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus.db import models
from isthmus.network import exceptions as nexc
from isthmus.vpn import exceptions as vexc
from isthmus.vpn.endpoint_groups import GROUPS
from isthmus.vpn.site_connections import CONNECTIONS
from isthmus.vpn.vpnservices import SERVICES

ENDPOINTS = models.Endpoint.__table__


class VPNNetworkGuard:
    """Implements :class:`isthmus.network.NetworkGuard` for VPN resources."""

    def before_subnet_delete(self, conn: Connection, subnet_id: str) -> None:
        # Neutron wraps the VPN refusal in a core SubnetInUse; so do we.
        """Refuse while a subnet endpoint group or a VPN service uses the subnet (as Neutron,
        a core ``SubnetInUse``)."""
        group = conn.execute(
            sa.select(ENDPOINTS.c.endpoint_group_id)
            .join(GROUPS, GROUPS.c.id == ENDPOINTS.c.endpoint_group_id)
            .where(ENDPOINTS.c.endpoint == subnet_id, GROUPS.c.endpoint_type == "subnet")
            .limit(1)).first()
        if group is not None:
            reason = vexc.SubnetInUseByEndpointGroup(subnet_id=subnet_id, group_id=group[0]).msg
            raise nexc.SubnetInUse(subnet_id=subnet_id, reason=reason)
        service = conn.execute(sa.select(SERVICES.c.id).where(SERVICES.c.subnet_id == subnet_id)
                               .limit(1)).first()
        if service is not None:
            reason = vexc.SubnetInUseByVPNService(subnet_id=subnet_id,
                                                  vpnservice_id=service[0]).msg
            raise nexc.SubnetInUse(subnet_id=subnet_id, reason=reason)

    def before_gateway_removal(self, conn: Connection, router_id: str) -> None:
        """Refuse while a VPN service is on the router: it needs the gateway's external IPs."""
        ids = sorted(i for (i,) in conn.execute(
            sa.select(SERVICES.c.id).where(SERVICES.c.router_id == router_id)))
        if ids:
            plural = "s" if len(ids) > 1 else ""
            raise vexc.RouterInUse(router_id=router_id, reason=(
                f"is currently used by VPN service{plural} ({','.join(ids)})"))

    def before_interface_removal(self, conn: Connection, router_id: str,
                                 subnet_id: str) -> None:
        """Refuse while a VPN service of the router is on the subnet."""
        service = conn.execute(sa.select(SERVICES.c.id).where(
            SERVICES.c.router_id == router_id, SERVICES.c.subnet_id == subnet_id)
            .limit(1)).first()
        if service is not None:
            raise vexc.SubnetInUseByVPNService(subnet_id=subnet_id, vpnservice_id=service[0])
        connection = conn.execute(
            sa.select(CONNECTIONS.c.id)
            .join(SERVICES, SERVICES.c.id == CONNECTIONS.c.vpnservice_id)
            .join(ENDPOINTS, ENDPOINTS.c.endpoint_group_id == CONNECTIONS.c.local_ep_group_id)
            .where(SERVICES.c.router_id == router_id, ENDPOINTS.c.endpoint == subnet_id)
            .limit(1)).first()
        if connection is not None:
            raise vexc.SubnetInUseByIPsecSiteConnection(subnet_id=subnet_id,
                                                        ipsec_site_connection_id=connection[0])
