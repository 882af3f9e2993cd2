"""VPN services: a router (with an external gateway) that terminates tunnels."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import models
from isthmus.db.collection import Collection, new_id, owner_project
from isthmus.exceptions import NotFound
from isthmus.network import Routers
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER
from isthmus.vpn import exceptions as vexc
from isthmus.vpn import status

SERVICES = models.VPNService.__table__
CONNECTIONS = models.SiteConnection.__table__
PORTS = models.Port.__table__
ALLOCATIONS = models.IPAllocation.__table__


class FlavorsPluginNotLoaded(NotFound):
    message = "Flavors plugin not found"


RESOURCE = a.Resource(
    singular="vpnservice", plural="vpnservices", path="/v2.0/vpn/vpnservices",
    description="VPN services",
    not_found=lambda id_: vexc.VPNServiceNotFound(vpnservice_id=id_),
    attrs=(*a.COMMON,
           a.Attr("router_id", post=True, default=a.REQUIRED, parse=a.uuid_str,
                  schema={"type": "string", "format": "uuid"}),
           a.Attr("subnet_id", post=True, default=None, parse=a.uuid_or_none,
                  schema={"type": ["string", "null"]}),
           a.Attr("flavor_id", post=True, default=None, parse=a.uuid_or_none,
                  schema={"type": ["string", "null"]}),
           a.ADMIN_STATE_UP,
           a.Attr("provider", post=True, default=None, parse=a.string_or_none(255),
                  schema={"type": ["string", "null"]}),
           a.Attr("external_v4_ip", schema={"type": ["string", "null"]}),
           a.Attr("external_v6_ip", schema={"type": ["string", "null"]}),
           a.STATUS),
)


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
    columns = {"id": "id", "name": "name", "description": "description",
               "project_id": "project_id", "tenant_id": "project_id",
               "router_id": "router_id", "subnet_id": "subnet_id", "flavor_id": "flavor_id",
               "admin_state_up": "admin_state_up", "external_v4_ip": "external_v4_ip",
               "external_v6_ip": "external_v6_ip", "status": "status", "provider": "provider"}

    def __init__(self, routers: Routers, default_provider: str | None = None) -> None:
        self.routers = routers
        self.default_provider = default_provider   # of [service_providers], for the server

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "description": row.description,
                "project_id": row.project_id, "subnet_id": row.subnet_id,
                "router_id": row.router_id, "flavor_id": row.flavor_id,
                "admin_state_up": row.admin_state_up, "external_v4_ip": row.external_v4_ip,
                "external_v6_ip": row.external_v6_ip, "status": row.status,
                "provider": row.provider, "tenant_id": row.project_id}

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
        values = {"id": new_id(), "project_id": owner_project(ctx, body), "name": body["name"],
                  "description": body["description"], "router_id": router.id,
                  "subnet_id": subnet_id, "flavor_id": None,
                  "admin_state_up": body["admin_state_up"], "status": status.on_create(),
                  "external_v4_ip": v4, "external_v6_ip": v6,
                  "provider": body.get("provider") or self.default_provider}
        return self.to_api(self.insert(conn, values), None)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a service that is not pending (the API lets only some attributes change)."""
        row = self.get_row(conn, ctx, id_, lock=True)
        if not status.can_update(row.status):
            raise vexc.VPNStateInvalidToUpdate(state=row.status, id=id_)
        return self.to_api(self.update_row(conn, id_, dict(body)), None)

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a service no connection uses; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        used = conn.execute(sa.select(CONNECTIONS.c.id)
                            .where(CONNECTIONS.c.vpnservice_id == id_).limit(1)).first()
        if used is not None:
            raise vexc.VPNServiceInUse(vpnservice_id=id_)
        self.delete_row(conn, id_)
        return self.to_api(row, None)
