"""Networks and subnets: the part of Neutron's core that VPN services stand on."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import TAGS, Collection, children, new_id, owner_project
from isthmus.exceptions import InvalidInput, shown
from isthmus.network import exceptions as nexc
from isthmus.network import ipam
from isthmus.network.guards import NetworkGuard
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER, PORTS

ALLOCATIONS = models.IPAllocation.__table__

PROVIDER_TYPE = "provider:network_type"
PROVIDER_PHYSNET = "provider:physical_network"
PROVIDER_SEGMENT = "provider:segmentation_id"
NETWORK_TYPES = ("flat", "vlan")
VLAN_TAGS = (1, 4094)


def _provider_segment(body: Mapping[str, Any]) -> None:
    """Neutron ML2's checks of a provider segment, with its messages (type_flat.py,
    type_vlan.py, managers.py); a network without one is on no physical network."""
    kind, physnet, segment = body[PROVIDER_TYPE], body[PROVIDER_PHYSNET], body[PROVIDER_SEGMENT]
    if kind is None:
        if physnet is not None or segment is not None:
            raise InvalidInput(error_message="network_type required")
        return
    if kind not in NETWORK_TYPES:
        raise InvalidInput(error_message=f"network_type value '{shown(kind)}' not supported")
    if kind == "flat":
        if not physnet:
            raise InvalidInput(error_message="physical_network required for flat provider "
                                             "network")
        if segment is not None:
            raise InvalidInput(error_message="segmentation_id prohibited for flat provider "
                                             "network")
    else:
        if not physnet:
            raise InvalidInput(error_message="segmentation_id requires physical_network for "
                                             "VLAN provider network" if segment is not None
                               else "physical_network required for VLAN provider network")
        if segment is None:
            raise InvalidInput(error_message="segmentation_id required for VLAN provider "
                                             "network")
        if not VLAN_TAGS[0] <= segment <= VLAN_TAGS[1]:
            raise InvalidInput(error_message="segmentation_id out of range "
                                             f"({VLAN_TAGS[0]} through {VLAN_TAGS[1]})")


NETWORK_RESOURCE = a.Resource(
    singular="network", plural="networks", path="/v2.0/networks",
    description="Networks (only what VPN services need)", table="networks",
    not_found=lambda id_: nexc.NetworkNotFound(net_id=id_),
    attrs=(*a.COMMON, a.ADMIN_STATE_UP, a.STATUS, *a.STANDARD,
           a.Attr("subnets", schema={"type": "array", "items": {"type": "string"}}),
           a.Attr("shared", post=True, put=True, default=False, parse=a.boolean,
                  admin_only=True, filter_parse=a.boolean,
                  store=a.Column(sa.Boolean(), default=False)),
           a.Attr("router:external", post=True, put=True, default=False, parse=a.boolean,
                  admin_only=True, filter_parse=a.boolean,
                  store=a.Column(sa.Boolean(), default=False, index=True)),
           a.Attr("mtu", schema={"type": "integer"}, filter_parse=a.integer,
                  store=a.Column(sa.Integer(), default=1500)),
           # Neutron's provider extension: where the network is on the agents' hosts
           # (docs/routers.md); checked together by _provider_segment.
           a.Attr(PROVIDER_TYPE, post=True, default=None, parse=a.string_or_none(16),
                  admin_only=True, member_visible=False,
                  store=a.Column(sa.String(16), nullable=True)),
           a.Attr(PROVIDER_PHYSNET, post=True, default=None, parse=a.string_or_none(64),
                  admin_only=True, member_visible=False,
                  store=a.Column(sa.String(64), nullable=True)),
           a.Attr(PROVIDER_SEGMENT, post=True, default=None, parse=a.or_none(a.integer),
                  admin_only=True, member_visible=False, filter_parse=a.integer,
                  store=a.Column(sa.Integer(), nullable=True))),
)
NETWORKS = mapping.table_of(NETWORK_RESOURCE, models.Base.metadata)


_POOL = a.dict_of({"start": a.ip_address, "end": a.ip_address})
_HOST_ROUTE = a.dict_of({"destination": a.cidr, "nexthop": a.ip_address})


def _pool(value: Any) -> dict[str, str]:
    parsed = _POOL(value)
    if set(parsed) != {"start", "end"}:
        raise a.InvalidValue(f"Invalid data format for IP pool: '{shown(value)}'")
    return parsed


def _host_route(value: Any) -> dict[str, str]:
    parsed = _HOST_ROUTE(value)
    if set(parsed) != {"destination", "nexthop"}:
        raise a.InvalidValue(f"Invalid data format for hostroute: '{shown(value)}'")
    return parsed


def _ip_version(value: Any) -> int:
    version = a.integer(value)
    if version not in (4, 6):
        raise a.InvalidValue(f"{shown(value)} is not in valid_values")
    return version


a.with_schema(_pool, {**a.schema_of(_POOL), "required": ["start", "end"]})
a.with_schema(_host_route, {**a.schema_of(_HOST_ROUTE), "required": ["destination", "nexthop"]})
a.with_schema(_ip_version, {"type": "integer", "enum": [4, 6]})


AUTO: Any = object()  # "compute the default": distinct from an explicit null gateway
_V6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

SUBNET_RESOURCE = a.Resource(
    singular="subnet", plural="subnets", path="/v2.0/subnets",
    description="IPv4 and IPv6 subnets", table="subnets",
    not_found=lambda id_: nexc.SubnetNotFound(subnet_id=id_),
    attrs=(*a.COMMON, *a.STANDARD,
           a.Attr("network_id", post=True, default=a.REQUIRED, parse=a.uuid_str,
                  store=a.Column(a.UUID_TYPE, foreign_key="networks.id", index=True)),
           a.Attr("ip_version", post=True, default=a.REQUIRED, parse=_ip_version,
                  filter_parse=a.integer,
                  store=a.Column(sa.Integer())),
           a.Attr("cidr", post=True, default=a.REQUIRED, parse=a.cidr,
                  store=a.Column(sa.String(64))),
           a.Attr("gateway_ip", post=True, put=True, default=AUTO, parse=a.ip_address_or_none,
                  store=a.Column(sa.String(64), nullable=True)),
           # Pools, DNS servers and host routes are read whole, never queried: JSON text.
           a.Attr("allocation_pools", post=True, put=True, default=AUTO,
                  parse=a.as_list(_pool, unique=False),
                  store=a.Column(sa.String(4096), json=True, default="[]")),
           a.Attr("enable_dhcp", post=True, put=True, default=True, parse=a.boolean,
                  filter_parse=a.boolean, store=a.Column(sa.Boolean(), default=True)),
           a.Attr("dns_nameservers", post=True, put=True, default=[],
                  parse=a.as_list(a.ip_address),
                  store=a.Column(sa.String(4096), json=True, default="[]")),
           a.Attr("host_routes", post=True, put=True, default=[],
                  parse=a.as_list(_host_route, unique=False),
                  store=a.Column(sa.String(4096), json=True, default="[]")),
           a.Attr("ipv6_ra_mode", post=True, default=None, parse=a.or_none(a.one_of(_V6_MODES)),
                  store=a.Column(sa.String(16), nullable=True)),
           a.Attr("ipv6_address_mode", post=True, default=None,
                  parse=a.or_none(a.one_of(_V6_MODES)),
                  store=a.Column(sa.String(16), nullable=True)),
           a.Attr("subnetpool_id", schema={"type": ["string", "null"]}),
           a.Attr("router:external", schema={"type": "boolean"}, filter_parse=a.boolean)),
)
SUBNETS = mapping.table_of(SUBNET_RESOURCE, models.Base.metadata)


class Networks(Collection):
    """Networks (Neutron's ``networks``), with ``router:external`` for gateways.

    Deleting a network deletes its subnets, after each :class:`NetworkGuard` agreed."""

    resource = NETWORK_RESOURCE
    table = NETWORKS
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

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"subnets": extras[row.id]}

    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a network from a parsed API body; answer it as the API shows it."""
        _provider_segment(body)
        values = {**mapping.row_values(self.resource, body), "id": new_id(),
                  "project_id": owner_project(ctx, body)}
        return self.show_row(conn, self.insert(conn, values))

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a network; ``router:external`` cannot be turned off while a router uses it."""
        row = self.get_row(conn, ctx, id_, lock=True)
        values = mapping.row_values(self.resource, body)
        if row.router_external and values.get("router_external") is False:
            gateway = conn.execute(sa.select(PORTS.c.id).where(
                PORTS.c.network_id == id_,
                PORTS.c.device_owner == GATEWAY_OWNER).limit(1)).first()
            if gateway is not None:
                raise nexc.ExternalNetworkInUse(net_id=id_)
        return self.show_row(conn, self.update_row(conn, id_, values, current=row))

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

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"subnetpool_id": None,
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
        values = {**mapping.row_values(self.resource, {
                      **body, "ip_version": net.version, "cidr": str(net),
                      "gateway_ip": None if gateway is None else str(gateway),
                      "allocation_pools": _pools_json(pools)}),
                  "id": new_id(), "project_id": owner_project(ctx, body)}
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
        values = mapping.row_values(self.resource, {
            k: v for k, v in body.items() if k not in ("gateway_ip", "allocation_pools")})
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
        values.update(mapping.row_values(self.resource,
                                         {"allocation_pools": _pools_json(pools)}))
        return self.show_row(conn, self.update_row(conn, id_, values, current=row))

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
