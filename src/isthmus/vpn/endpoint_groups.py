"""Endpoint groups: named sets of local subnets or peer CIDRs for connections."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, children, new_id, owner_project
from isthmus.network import Subnets
from isthmus.vpn import constants as c
from isthmus.vpn import exceptions as vexc

ENDPOINTS = models.Endpoint.__table__


def _endpoints(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


RESOURCE = a.Resource(
    singular="endpoint_group", plural="endpoint_groups", path="/v2.0/vpn/endpoint-groups",
    description="VPN endpoint groups", table="vpn_endpoint_groups",
    not_found=lambda id_: vexc.VPNEndpointGroupNotFound(endpoint_group_id=id_),
    attrs=(*a.COMMON,
           a.Attr("type", post=True, default=a.REQUIRED, parse=a.one_of(c.ENDPOINT_TYPES),
                  store=a.Column(sa.String(16), name="endpoint_type")),
           # Rows of ENDPOINTS; each is checked against the type (_validate).
           a.Attr("endpoints", post=True, default=[], parse=_endpoints,
                  schema={"type": "array", "items": {"type": "string"}})),
)
GROUPS = mapping.table_of(RESOURCE, models.Base.metadata)
FILTER_ALIASES = {"endpoint_type": "type"}


class EndpointGroups(Collection):
    """Endpoint groups: sets of local subnets (``subnet``) or peer CIDRs (``cidr``).

    Endpoints are checked against the type when the group is created; a group in
    use by a connection cannot be deleted."""

    resource = RESOURCE
    table = GROUPS

    def __init__(self, subnets: Subnets) -> None:
        self.subnets = subnets

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        return children(conn, ENDPOINTS, "endpoint_group_id", "endpoint", [r.id for r in rows])

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"endpoints": extras[row.id]}

    def _validate(self, conn: Connection, ctx: RequestContext, group_type: str,
                  endpoints: list[Any], shown: Mapping[str, Any]) -> None:
        if not endpoints:
            raise vexc.MissingEndpointForEndpointGroup(group=dict(shown))
        seen: set[Any] = set()
        for endpoint in endpoints:
            if not isinstance(endpoint, str) or not endpoint or len(endpoint) > 255:
                raise vexc.InvalidEndpointInEndpointGroup(
                    endpoint=endpoint, group_type=group_type,
                    why="Endpoints must be non-empty strings of at most 255 characters")
            if endpoint in seen:
                raise vexc.InvalidEndpointInEndpointGroup(
                    endpoint=endpoint, group_type=group_type, why="Endpoints have to be unique")
            seen.add(endpoint)
            if group_type == "cidr":
                try:
                    a.cidr(endpoint)
                except a.InvalidValue:
                    raise vexc.InvalidEndpointInEndpointGroup(
                        endpoint=endpoint, group_type=group_type, why="Invalid CIDR") from None
            elif group_type == "subnet":
                if not a.is_uuid(endpoint):
                    raise vexc.InvalidEndpointInEndpointGroup(
                        endpoint=endpoint, group_type=group_type, why="Invalid UUID")
                if self.subnets.find_row(conn, ctx, endpoint) is None:
                    raise vexc.NonExistingSubnetInEndpointGroup(subnet=endpoint)

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a group after checking each endpoint against its type."""
        project = owner_project(ctx, body)
        shown = {"type": body["type"], "endpoints": body["endpoints"], "project_id": project,
                 "tenant_id": project, "name": body["name"], "description": body["description"]}
        self._validate(conn, ctx, body["type"], body["endpoints"], shown)
        values = {**mapping.row_values(self.resource, body), "id": new_id(),
                  "project_id": project}
        row = self.insert(conn, values)
        if body["endpoints"]:
            conn.execute(sa.insert(ENDPOINTS), [{"endpoint": e, "endpoint_group_id": row.id}
                                                for e in body["endpoints"]])
        return self.show_row(conn, row)

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a group's name or description (its endpoints are fixed, as in Neutron)."""
        current = self.get_row(conn, ctx, id_, lock=True)
        return self.show_row(conn, self.update_row(conn, id_,
                                                   mapping.row_values(self.resource, body),
                                                   current=current))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a group no connection uses; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        connections = models.Base.metadata.tables["ipsec_site_connections"]  # imports us
        used = conn.execute(sa.select(connections.c.id).where(sa.or_(
            connections.c.local_ep_group_id == id_, connections.c.peer_ep_group_id == id_))
            .limit(1)).first()
        if used is not None:
            raise vexc.EndpointGroupInUse(group_id=id_)
        shown = self.show_row(conn, row)
        conn.execute(sa.delete(ENDPOINTS).where(ENDPOINTS.c.endpoint_group_id == id_))
        self.delete_row(conn, id_)
        return shown

    def endpoints_of(self, conn: Connection, id_: str) -> list[str]:
        """The endpoints of group ``id_`` (subnet ids or CIDRs, after its type)."""
        return children(conn, ENDPOINTS, "endpoint_group_id", "endpoint", [id_])[id_]
