"""Networks and subnets: the part of Neutron's core that VPN services stand on."""

from __future__ import annotations

import ipaddress
import json
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import models
from isthmus.db.collection import TAGS, Collection, children, new_id, owner_project
from isthmus.exceptions import InvalidInput, shown
from isthmus.network import exceptions as nexc
from isthmus.network import ipam
from isthmus.network.guards import NetworkGuard
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER

NETWORKS = models.Network.__table__
SUBNETS = models.Subnet.__table__
PORTS = models.Port.__table__
ALLOCATIONS = models.IPAllocation.__table__

NETWORK_RESOURCE = a.Resource(
    singular="network", plural="networks", path="/v2.0/networks",
    description="Networks (only what VPN services need)",
    not_found=lambda id_: nexc.NetworkNotFound(net_id=id_),
    attrs=(*a.COMMON, a.ADMIN_STATE_UP, a.STATUS, *a.STANDARD,
           a.Attr("subnets", schema={"type": "array", "items": {"type": "string"}}),
           a.Attr("shared", post=True, put=True, default=False, parse=a.boolean,
                  admin_only=True, schema={"type": "boolean"}, filter_parse=a.boolean),
           a.Attr("router:external", post=True, put=True, default=False, parse=a.boolean,
                  admin_only=True, schema={"type": "boolean"}, filter_parse=a.boolean),
           a.Attr("mtu", schema={"type": "integer"}, filter_parse=a.integer)),
)


def _pool(value: Any) -> dict[str, str]:
    parsed = a.dict_of({"start": a.ip_address, "end": a.ip_address})(value)
    if set(parsed) != {"start", "end"}:
        raise a.InvalidValue(f"Invalid data format for IP pool: '{shown(value)}'")
    return parsed


def _host_route(value: Any) -> dict[str, str]:
    parsed = a.dict_of({"destination": a.cidr, "nexthop": a.ip_address})(value)
    if set(parsed) != {"destination", "nexthop"}:
        raise a.InvalidValue(f"Invalid data format for hostroute: '{shown(value)}'")
    return parsed


def _ip_version(value: Any) -> int:
    version = a.integer(value)
    if version not in (4, 6):
        raise a.InvalidValue(f"{shown(value)} is not in valid_values")
    return version


AUTO: Any = object()  # "compute the default": distinct from an explicit null gateway
_V6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

SUBNET_RESOURCE = a.Resource(
    singular="subnet", plural="subnets", path="/v2.0/subnets",
    description="IPv4 and IPv6 subnets",
    not_found=lambda id_: nexc.SubnetNotFound(subnet_id=id_),
    attrs=(*a.COMMON, *a.STANDARD,
           a.Attr("network_id", post=True, default=a.REQUIRED, parse=a.uuid_str),
           a.Attr("ip_version", post=True, default=a.REQUIRED, parse=_ip_version,
                  schema={"type": "integer", "enum": [4, 6]}, filter_parse=a.integer),
           a.Attr("cidr", post=True, default=a.REQUIRED, parse=a.cidr),
           a.Attr("gateway_ip", post=True, put=True, default=AUTO, parse=a.ip_address_or_none,
                  schema={"type": ["string", "null"]}),
           a.Attr("allocation_pools", post=True, put=True, default=AUTO,
                  parse=a.as_list(_pool, unique=False),
                  schema={"type": "array", "items": {"type": "object"}}),
           a.Attr("enable_dhcp", post=True, put=True, default=True, parse=a.boolean,
                  schema={"type": "boolean"}, filter_parse=a.boolean),
           a.Attr("dns_nameservers", post=True, put=True, default=[],
                  parse=a.as_list(a.ip_address),
                  schema={"type": "array", "items": {"type": "string"}}),
           a.Attr("host_routes", post=True, put=True, default=[],
                  parse=a.as_list(_host_route, unique=False),
                  schema={"type": "array", "items": {"type": "object"}}),
           a.Attr("ipv6_ra_mode", post=True, default=None,
                  parse=lambda v: None if v is None else a.one_of(_V6_MODES)(v),
                  schema={"type": ["string", "null"]}),
           a.Attr("ipv6_address_mode", post=True, default=None,
                  parse=lambda v: None if v is None else a.one_of(_V6_MODES)(v),
                  schema={"type": ["string", "null"]}),
           a.Attr("subnetpool_id", schema={"type": ["string", "null"]}),
           a.Attr("router:external", schema={"type": "boolean"}, filter_parse=a.boolean)),
)


class Networks(Collection):
    """Networks (Neutron's ``networks``), with ``router:external`` for gateways.

    Deleting a network deletes its subnets, after each :class:`NetworkGuard` agreed."""

    resource = NETWORK_RESOURCE
    table = NETWORKS
    columns = {"id": "id", "name": "name", "description": "description",
               "project_id": "project_id", "tenant_id": "project_id",
               "admin_state_up": "admin_state_up", "status": "status", "shared": "shared",
               "router:external": "router_external", "mtu": "mtu"}
    standard_attributes = True
    created_revision = 1

    def __init__(self, guards: list[NetworkGuard]) -> None:
        self.guards = guards

    def visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        if ctx.is_admin:
            return None
        return sa.or_(NETWORKS.c.project_id == ctx.project_id, NETWORKS.c.shared,
                      NETWORKS.c.router_external)

    def load_extras(self, conn: Connection, rows: Any) -> Any:
        return children(conn, SUBNETS, "network_id", "id", [r.id for r in rows])

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "tenant_id": row.project_id,
                "project_id": row.project_id, "admin_state_up": row.admin_state_up,
                "mtu": row.mtu, "status": row.status, "subnets": extras[row.id],
                "shared": row.shared, "router:external": row.router_external,
                "description": row.description}

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a network from a parsed API body; answer it as the API shows it."""
        values = {"id": new_id(), "project_id": owner_project(ctx, body), "name": body["name"],
                  "description": body["description"], "admin_state_up": body["admin_state_up"],
                  "shared": body["shared"], "router_external": body["router:external"],
                  "mtu": 1500, "status": "ACTIVE"}
        return self.show_row(conn, self.insert(conn, values))

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a network; ``router:external`` cannot be turned off while a router uses it."""
        row = self.get_row(conn, ctx, id_, lock=True)
        values = {("router_external" if k == "router:external" else k): v
                  for k, v in body.items()}
        if row.router_external and values.get("router_external") is False:
            gateway = conn.execute(sa.select(PORTS.c.id).where(
                PORTS.c.network_id == id_,
                PORTS.c.device_owner == GATEWAY_OWNER).limit(1)).first()
            if gateway is not None:
                raise nexc.ExternalNetworkInUse(net_id=id_)
        return self.show_row(conn, self.update_row(conn, id_, values))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a network and its subnets; answer what was deleted (for change hooks)."""
        row = self.get_row(conn, ctx, id_, lock=True)
        port = conn.execute(sa.select(PORTS.c.id).where(PORTS.c.network_id == id_)
                            .limit(1)).first()
        if port is not None:
            raise nexc.NetworkInUse(net_id=id_)
        shown = self.show_row(conn, row)
        for subnet_id in shown["subnets"]:
            for guard in self.guards:
                guard.before_subnet_delete(conn, subnet_id)
        conn.execute(sa.delete(TAGS).where(TAGS.c.resource_id.in_(shown["subnets"])))
        conn.execute(sa.delete(SUBNETS).where(SUBNETS.c.network_id == id_))
        self.delete_row(conn, id_)
        return shown


class Subnets(Collection):
    """Subnets of a network, with the gateway and allocation pools Neutron 29 would choose."""

    resource = SUBNET_RESOURCE
    table = SUBNETS
    columns = {"id": "id", "name": "name", "description": "description",
               "project_id": "project_id", "tenant_id": "project_id",
               "network_id": "network_id", "ip_version": "ip_version", "cidr": "cidr",
               "gateway_ip": "gateway_ip", "enable_dhcp": "enable_dhcp"}
    standard_attributes = True

    def __init__(self, networks: Networks) -> None:
        self.networks = networks
        self.guards = networks.guards

    def visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        if ctx.is_admin:
            return None
        shared = sa.select(NETWORKS.c.id).where(sa.or_(NETWORKS.c.shared,
                                                       NETWORKS.c.router_external))
        return sa.or_(SUBNETS.c.project_id == ctx.project_id, SUBNETS.c.network_id.in_(shared))

    def load_extras(self, conn: Connection, rows: Any) -> Any:
        ids = {r.network_id for r in rows}
        if not ids:
            return {}
        return dict(conn.execute(sa.select(NETWORKS.c.id, NETWORKS.c.router_external)
                                 .where(NETWORKS.c.id.in_(ids))).all())

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "tenant_id": row.project_id,
                "project_id": row.project_id, "network_id": row.network_id,
                "ip_version": row.ip_version, "subnetpool_id": None,
                "enable_dhcp": row.enable_dhcp, "ipv6_ra_mode": row.ipv6_ra_mode,
                "ipv6_address_mode": row.ipv6_address_mode, "gateway_ip": row.gateway_ip,
                "cidr": row.cidr, "allocation_pools": json.loads(row.allocation_pools),
                "host_routes": json.loads(row.host_routes),
                "dns_nameservers": json.loads(row.dns_nameservers),
                "description": row.description,
                "router:external": bool(extras.get(row.network_id, False))}

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a subnet: default or check gateway and pools, refuse overlapping CIDRs."""
        self.networks.get_row(conn, ctx, body["network_id"])  # unseen: a 404
        net = ipaddress.ip_network(body["cidr"], strict=False)
        if net.version != body["ip_version"]:
            raise InvalidInput(error_message="Cidr %s does not match ip_version %s"
                               % (body["cidr"], body["ip_version"]))
        self._check_overlap(conn, body["network_id"], net)
        gateway = self._gateway(net, body["gateway_ip"])
        pools = self._pools(net, body["allocation_pools"], gateway)
        for attr in ("ipv6_ra_mode", "ipv6_address_mode"):
            if body[attr] is not None and net.version != 6:
                raise InvalidInput(error_message=f"{attr} is not valid when ip_version is 4")
        values = {"id": new_id(), "project_id": owner_project(ctx, body),
                  "name": body["name"], "description": body["description"],
                  "network_id": body["network_id"], "ip_version": net.version,
                  "cidr": str(net), "gateway_ip": None if gateway is None else str(gateway),
                  "enable_dhcp": body["enable_dhcp"],
                  "allocation_pools": json.dumps(_pools_json(pools)),
                  "dns_nameservers": json.dumps(body["dns_nameservers"]),
                  "host_routes": json.dumps(body["host_routes"]),
                  "ipv6_ra_mode": body["ipv6_ra_mode"],
                  "ipv6_address_mode": body["ipv6_address_mode"]}
        subnet = self.insert(conn, values)
        self.networks.revise(conn, body["network_id"])   # Neutron: a new network revision
        return self.show_row(conn, subnet)

    def _check_overlap(self, conn: Connection, network_id: str, net: ipam.IPNetwork) -> None:
        for (other,) in conn.execute(sa.select(SUBNETS.c.cidr)
                                     .where(SUBNETS.c.network_id == network_id)):
            if ipaddress.ip_network(other).overlaps(net):
                raise InvalidInput(error_message=(
                    f"Requested subnet with cidr: {net} for network: {network_id} overlaps "
                    "with another subnet"))

    @staticmethod
    def _gateway(net: ipam.IPNetwork, requested: Any) -> ipam.IPAddress | None:
        if requested is AUTO:
            return ipam.default_gateway(net)
        if requested is None:
            return None
        gateway = ipaddress.ip_address(requested)
        if gateway not in net or (net.version == 4 and net.prefixlen < 31 and gateway in (
                net.network_address, net.broadcast_address)):
            raise InvalidInput(error_message=(
                f"Gateway IP {requested} is not a valid host address of subnet {net}"))
        return gateway

    @staticmethod
    def _pools(net: ipam.IPNetwork, requested: Any,
               gateway: ipam.IPAddress | None) -> list[ipam.Pool]:
        if requested is AUTO:
            return ipam.default_pools(net, gateway)
        pools = [(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"]))
                 for p in requested]
        ipam.check_pools(net, pools, gateway)
        return pools

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a subnet; the gateway cannot move while a router interface uses it, and the
        pools are checked against the (new) gateway again."""
        row = self.get_row(conn, ctx, id_, lock=True)
        net = ipaddress.ip_network(row.cidr)
        values: dict[str, Any] = {k: v for k, v in body.items()
                                  if k in ("name", "description", "enable_dhcp")}
        for key in ("dns_nameservers", "host_routes"):
            if key in body:
                values[key] = json.dumps(body[key])
        gateway = None if row.gateway_ip is None else ipaddress.ip_address(row.gateway_ip)
        if "gateway_ip" in body and body["gateway_ip"] != row.gateway_ip:
            if _router_interface_on(conn, id_) is not None:
                raise nexc.SubnetInUse(subnet_id=id_, reason=(
                    "the gateway IP is used by a router interface; remove it first"))
            gateway = self._gateway(net, body["gateway_ip"])
            values["gateway_ip"] = None if gateway is None else str(gateway)
        if "allocation_pools" in body:
            pools = self._pools(net, body["allocation_pools"], gateway)
        else:
            pools = ipam.stored_pools(row.allocation_pools)
            if gateway is not None:
                ipam.check_pools(net, pools, gateway)
        values["allocation_pools"] = json.dumps(_pools_json(pools))
        return self.show_row(conn, self.update_row(conn, id_, values))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a subnet no port or guard still needs; answer what was deleted."""
        row = self.get_row(conn, ctx, id_, lock=True)
        used = conn.execute(sa.select(ALLOCATIONS.c.port_id)
                            .where(ALLOCATIONS.c.subnet_id == id_).limit(1)).first()
        if used is not None:
            raise nexc.SubnetInUse(subnet_id=id_, reason=(
                "One or more ports have an IP allocation from this subnet"))
        for guard in self.guards:
            guard.before_subnet_delete(conn, id_)
        shown = self.show_row(conn, row)
        self.delete_row(conn, id_)
        self.networks.revise(conn, row.network_id)
        return shown


def _router_interface_on(conn: Connection, subnet_id: str) -> str | None:
    found = conn.execute(
        sa.select(PORTS.c.id).join(ALLOCATIONS, ALLOCATIONS.c.port_id == PORTS.c.id)
        .where(ALLOCATIONS.c.subnet_id == subnet_id,
               PORTS.c.device_owner == INTERFACE_OWNER).limit(1)).first()
    return None if found is None else found[0]


def _pools_json(pools: list[ipam.Pool]) -> list[dict[str, str]]:
    return [{"start": str(start), "end": str(end)} for start, end in pools]
