"""VPN services: a router (with an external gateway) that terminates tunnels."""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

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
STATUS_DETAIL = "isthmus:status_detail"
ROLLUP_SCHEMA = {"type": "object", "properties": {
    "reason": {"type": ["string", "null"]}, "message": {"type": ["string", "null"]},
    "connections": {"type": "object", "additionalProperties": {"type": "integer"}},
    "reasons": {"type": "object", "additionalProperties": {"type": "integer"}}}}


def roll_up(connections: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """A service's status detail from its connections' ``(status, status detail JSON)``:
    how many are in each status, and why those that are not ACTIVE are not (the most
    frequent reason first); one-way warnings count as reasons too."""
    by_status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for state, detail_json in connections:
        by_status[state] = by_status.get(state, 0) + 1
        detail = json.loads(detail_json) if detail_json else None
        reason = (detail or {}).get("reason")
        if reason and reason != "simulated" and (state != status.ACTIVE or
                                                 reason == "one_way_traffic"):
            reasons[reason] = reasons.get(reason, 0) + 1
    total = sum(by_status.values())
    troubled = total - by_status.get(status.ACTIVE, 0)
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    if not total:
        message = "no connections"
    elif not troubled and not reasons:
        message = f"all {total} connections ACTIVE"
    else:
        message = f"{troubled} of {total} connections not ACTIVE"
        if ranked:
            message += ": " + ", ".join(f"{code} ({count})" for code, count in ranked)
    return {"reason": ranked[0][0] if ranked else None, "message": message,
            "connections": by_status, "reasons": reasons}


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
           status.STATUS,
           # Its connections' statuses and reasons, rolled up (docs/diagnosis.md).
           a.Attr(STATUS_DETAIL, schema=ROLLUP_SCHEMA)),
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

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        connections = models.Base.metadata.tables["ipsec_site_connections"]  # imports us
        found: dict[str, list[tuple[str, str | None]]] = {r.id: [] for r in rows}
        ids = list(found)
        for start in range(0, len(ids), 500):
            query = sa.select(connections.c.vpnservice_id, connections.c.status,
                              connections.c.status_detail).where(
                connections.c.vpnservice_id.in_(ids[start:start + 500]))
            for service_id, state, detail in conn.execute(query):
                found[service_id].append((state, detail))
        return found

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {STATUS_DETAIL: roll_up((extras or {}).get(row.id, ()))}

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
        updated = self.update_row(conn, id_, mapping.row_values(self.resource, body),
                                  current=row)
        return self.to_api(updated, self.load_extras(conn, [updated]))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a service no connection uses; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        connections = models.Base.metadata.tables["ipsec_site_connections"]  # imports us
        used = conn.execute(sa.select(connections.c.id)
                            .where(connections.c.vpnservice_id == id_).limit(1)).first()
        if used is not None:
            raise vexc.VPNServiceInUse(vpnservice_id=id_)
        self.delete_row(conn, id_)
        return self.to_api(row, {id_: []})
