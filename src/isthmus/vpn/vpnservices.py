"""VPN services: a router (with an external gateway) that terminates tunnels."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, new_id, owner_project
from isthmus.exceptions import NotFound
from isthmus.network import Routers
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER, PORTS
from isthmus.vpn import exceptions as vexc
from isthmus.vpn import status

ALLOCATIONS = models.IPAllocation.__table__


class FlavorsPluginNotLoaded(NotFound):
    message = "Flavors plugin not found"


RESOURCE = a.Resource(
    singular="vpnservice", plural="vpnservices", path="/v2.0/vpn/vpnservices",
    description="VPN services", table="vpnservices",
    not_found=lambda id_: vexc.VPNServiceNotFound(vpnservice_id=id_),
    attrs=(a.ID, a.to_agents(a.PROJECT_ID), a.TENANT_ID, a.to_agents(a.NAME), a.DESCRIPTION,
           a.Attr("router_id", post=True, default=a.REQUIRED, parse=a.uuid_str, agent=True,
                  store=a.Column(a.UUID_TYPE, foreign_key="routers.id", index=True)),
           a.Attr("subnet_id", post=True, default=None, parse=a.uuid_or_none, agent=True,
                  store=a.Column(a.UUID_TYPE, nullable=True, foreign_key="subnets.id")),
           a.Attr("flavor_id", post=True, default=None, parse=a.uuid_or_none,
                  store=a.Column(a.UUID_TYPE, nullable=True)),
           a.to_agents(a.ADMIN_STATE_UP),
           a.Attr("provider", post=True, default=None, parse=a.string_or_none(255), agent=True,
                  store=a.Column(a.NAME_TYPE, nullable=True)),
           a.Attr("external_v4_ip", schema={"type": ["string", "null"]}, agent=True,
                  store=a.Column(sa.String(16), nullable=True)),
           a.Attr("external_v6_ip", schema={"type": ["string", "null"]}, agent=True,
                  store=a.Column(sa.String(64), nullable=True)),
           status.STATUS),
)
SERVICES = mapping.table_of(RESOURCE, models.Base.metadata)


def router_subnet_ids(conn: Connection, router_id: str) -> set[str]:
    """Subnets attached to ``router_id`` through an interface port."""
    query = (sa.select(ALLOCATIONS.c.subnet_id)
             .join(PORTS, PORTS.c.id == ALLOCATIONS.c.port_id)
             .where(PORTS.c.device_id == router_id, PORTS.c.device_owner == INTERFACE_OWNER))
    return {subnet_id for (subnet_id,) in conn.execute(query)}


def gateway_ips(conn: Connection, router_id: str) -> tuple[str | None, str | None]:
    """First IPv4 and first IPv6 address of the router's gateway port."""
    query = (sa.select(ALLOCATIONS.c.ip_address)
             .join(PORTS, PORTS.c.id == ALLOCATIONS.c.port_id)
             .where(PORTS.c.device_id == router_id, PORTS.c.device_owner == GATEWAY_OWNER)
             .order_by(ALLOCATIONS.c.ip_address))
    v4 = v6 = None
    for (ip,) in conn.execute(query):
        if ipaddress.ip_address(ip).version == 4:
            v4 = v4 or ip
        else:
            v6 = v6 or ip
    return v4, v6


class VPNServices(Collection):
    """VPN services: one router (and, in legacy mode, one of its subnets) each.

    The external IPs are taken from the router's gateway when the service is created."""

    resource = RESOURCE
    table = SERVICES

    def __init__(self, routers: Routers, default_provider: str | None = None) -> None:
        self.routers = routers
        self.default_provider = default_provider   # of [service_providers], for the server

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a service (born PENDING_CREATE) on a router with a gateway; its external IPs
        are the gateway's, copied now."""
        router = self.routers.get_row(conn, ctx, body["router_id"], lock=True)
        if not router.gw_network_id:
            raise vexc.RouterIsNotExternal(router_id=router.id)
        subnet_id = body["subnet_id"]
        if subnet_id is not None and subnet_id not in router_subnet_ids(conn, router.id):
            raise vexc.SubnetIsNotConnectedToRouter(subnet_id=subnet_id, router_id=router.id)
        if body["flavor_id"] is not None:
            raise FlavorsPluginNotLoaded()
        v4, v6 = gateway_ips(conn, router.id)
        values = {**mapping.row_values(self.resource, body), "id": new_id(),
                  "project_id": owner_project(ctx, body), "status": status.on_create(),
                  "external_v4_ip": v4, "external_v6_ip": v6,
                  "provider": body.get("provider") or self.default_provider}
        return self.to_api(self.insert(conn, values), None)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a service that is not pending (the API lets only some attributes change)."""
        row = self.get_row(conn, ctx, id_, lock=True)
        if not status.can_update(row.status):
            raise vexc.VPNStateInvalidToUpdate(state=row.status, id=id_)
        return self.to_api(self.update_row(conn, id_, mapping.row_values(self.resource, body)),
                           None)

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a service no connection uses; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        connections = models.Base.metadata.tables["ipsec_site_connections"]  # imports us
        used = conn.execute(sa.select(connections.c.id)
                            .where(connections.c.vpnservice_id == id_).limit(1)).first()
        if used is not None:
            raise vexc.VPNServiceInUse(vpnservice_id=id_)
        self.delete_row(conn, id_)
        return self.to_api(row, None)
