"""Routers: external gateway, interfaces, extra routes, and where (host, namespace) they live.

Extra routes (Neutron's ``extraroute`` and ``extraroute-atomic``) are stored and
shown, validated as Neutron 29 validates them; Isthmus's agents serve VPN
connections only and do not install them in the router's namespace.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, new_id, owner_project
from isthmus.exceptions import BadRequest, shown
from isthmus.network import exceptions as nexc
from isthmus.network import ipam
from isthmus.network.networks import SUBNETS, Networks, Subnets
from isthmus.network.ports import (GATEWAY_OWNER, INTERFACE_OWNER, PORTS, FixedIp, Ports,
                                   allocate_ip)

ALLOCATIONS = models.IPAllocation.__table__
ROUTES = models.RouterRoute.__table__

MAX_ROUTES = 30
"""Extra routes per router: Neutron 29's default ``quota_router_route`` (was ``max_routes``)."""

AGENT_HOST = "isthmus:agent_host"
NAMESPACE = "isthmus:namespace"
STATUS_DETAIL = "isthmus:status_detail"


def _fixed_ip(value: Any) -> dict[str, str]:
    return a.dict_of({"subnet_id": a.uuid_str, "ip_address": a.ip_address})(value)


_GATEWAY = a.dict_of({"network_id": a.uuid_str, "enable_snat": a.boolean,
                      "external_fixed_ips": a.as_list(_fixed_ip, unique=False)})


def _gateway_info(value: Any) -> dict[str, Any] | None:
    parsed = _GATEWAY(value)
    if not parsed:
        return None
    if "network_id" not in parsed:
        raise a.InvalidValue("network_id is required in external_gateway_info")
    return parsed


def _route_destination(value: Any) -> str:
    """A network with its prefix and no host bits, kept as written (Neutron's hostroute)."""
    try:
        valid = isinstance(value, str) and value == value.strip() and "/" in value and \
            bool(ipaddress.ip_network(value, strict=True))
    except ValueError:
        valid = False
    if not valid:
        raise a.InvalidValue(f"'{shown(value)}' is not a valid CIDR")
    return value


Route = dict[str, str]


def parse_routes(value: Any) -> list[Route]:
    """A router's ``routes``: ``[{"destination": CIDR, "nexthop": IP}]``, no duplicates;
    ``null`` is ``[]``. Whether each nexthop is reachable is checked against the router."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise a.InvalidValue(f"Invalid data format for hostroute: '{shown(value)}'")
    routes: list[Route] = []
    for item in value:
        if not isinstance(item, dict):
            raise a.InvalidValue(f"Invalid input. '{shown(item)}' must be a dictionary with "
                                 "keys: ['destination', 'nexthop']")
        if set(item) != {"destination", "nexthop"}:
            provided = ", ".join(repr(shown(k)) for k in sorted(map(str, item)))
            raise a.InvalidValue("Validation of dictionary's keys failed. Expected keys: "
                                 f"{{'destination', 'nexthop'}} Provided keys: {{{provided}}}")
        route = {"destination": _route_destination(item["destination"]),
                 "nexthop": a.ip_address(item["nexthop"])}
        if route in routes:
            raise a.InvalidValue(f"Duplicate hostroute '{route}'")
        routes.append(route)
    return routes


ROUTER_RESOURCE = a.Resource(
    singular="router", plural="routers", path="/v2.0/routers",
    description="Routers with an external gateway and interfaces", table="routers",
    not_found=lambda id_: nexc.RouterNotFound(router_id=id_),
    attrs=(*a.COMMON, a.ADMIN_STATE_UP, a.STATUS, *a.STANDARD,
           # Stored as the hidden gw_network_id and enable_snat, and the gateway port.
           a.Attr("external_gateway_info", post=True, put=True, default=None,
                  parse=_gateway_info, schema={"type": ["object", "null"]}),
           # Rows of router_routes (isthmus.db.models.RouterRoute).
           a.Attr("routes", put=True, default=[], parse=parse_routes,
                  schema={"type": ["array", "null"], "items": {"type": "object"}}),
           a.Attr(AGENT_HOST, post=True, put=True, default=None, parse=a.string_or_none(255),
                  admin_only=True, member_visible=False,
                  store=a.Column(a.NAME_TYPE, nullable=True, index=True)),
           a.Attr(NAMESPACE, post=True, put=True, default=None, parse=a.string_or_none(255),
                  admin_only=True, member_visible=False,
                  store=a.Column(a.NAME_TYPE, nullable=True)),
           # Why the status is what it is, as the serving agent last said (docs/routers.md).
           a.Attr(STATUS_DETAIL, schema={"type": ["string", "null"]},
                  store=a.Column(sa.String(255), nullable=True))),
    hidden=(("gw_network_id", a.Column(a.UUID_TYPE, nullable=True,
                                       foreign_key="networks.id")),
            ("enable_snat", a.Column(sa.Boolean(), default=True))),
)
ROUTERS = mapping.table_of(ROUTER_RESOURCE, models.Base.metadata)


class Routers(Collection):
    """Routers: external gateway, interfaces, extra routes, and the agent host serving them.

    Interfaces and gateways are ports (:class:`Ports`); removing one a VPN service
    needs is refused by the guards."""

    resource = ROUTER_RESOURCE
    table = ROUTERS
    standard_attributes = True
    created_revision = 1

    def __init__(self, networks: Networks, subnets: Subnets, ports: Ports) -> None:
        self.networks = networks
        self.subnets = subnets
        self.ports = ports
        self.guards = networks.guards

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        ids = [r.id for r in rows if r.gw_network_id]
        gateway_ips: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        if ids:
            query = (sa.select(PORTS.c.device_id, ALLOCATIONS.c.subnet_id,
                               ALLOCATIONS.c.ip_address)
                     .join(ALLOCATIONS, ALLOCATIONS.c.port_id == PORTS.c.id)
                     .where(PORTS.c.device_id.in_(ids), PORTS.c.device_owner == GATEWAY_OWNER))
            for device_id, subnet_id, ip in conn.execute(query):
                gateway_ips[device_id].append({"subnet_id": subnet_id, "ip_address": ip})
        routes: dict[str, list[Route]] = {r.id: [] for r in rows}
        if routes:
            query = sa.select(ROUTES).where(ROUTES.c.router_id.in_(list(routes))).order_by(
                ROUTES.c.destination, ROUTES.c.nexthop)
            for route in conn.execute(query):
                routes[route.router_id].append({"destination": route.destination,
                                                "nexthop": route.nexthop})
        return gateway_ips, routes

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        gateway_ips, routes = extras
        gateway = None
        if row.gw_network_id:
            fixed = sorted(gateway_ips.get(row.id, []),
                           key=lambda f: ipaddress.ip_address(f["ip_address"]).version)
            gateway = {"network_id": row.gw_network_id, "external_fixed_ips": fixed,
                       "enable_snat": row.enable_snat}
        return {"external_gateway_info": gateway, "routes": routes[row.id]}

    # -- gateway -----------------------------------------------------------
    def _set_gateway(self, conn: Connection, ctx: RequestContext, router: Row,
                     info: Mapping[str, Any]) -> None:
        network = self.networks.get_row(conn, ctx, info["network_id"])
        if not network.router_external:
            raise BadRequest(resource="router", msg=(
                f"Network {network.id} is not a valid external network"))
        subnets = conn.execute(sa.select(SUBNETS).where(SUBNETS.c.network_id == network.id)
                               .order_by(SUBNETS.c.ip_version, SUBNETS.c.id)).all()
        by_id = {s.id: s for s in subnets}
        fixed: list[FixedIp] = []
        requested = info.get("external_fixed_ips")
        if requested:
            for item in requested:
                subnet = by_id.get(item.get("subnet_id", "")) if "subnet_id" in item else \
                    next((s for s in subnets if "ip_address" in item and
                          ipaddress.ip_address(item["ip_address"])
                          in ipaddress.ip_network(s.cidr)), None)
                if subnet is None:
                    raise BadRequest(resource="router", msg=(
                        f"Invalid external_fixed_ips {item}: no such subnet on network "
                        f"{network.id}"))
                fixed.append(allocate_ip(conn, subnet, item.get("ip_address")))
        else:
            # One address per IP version, from the first subnet that has room.
            for version in (4, 6):
                for subnet in (s for s in subnets if s.ip_version == version):
                    try:
                        fixed.append(allocate_ip(conn, subnet))
                        break
                    except nexc.IpAddressGenerationFailure:
                        continue
            if not fixed:
                raise nexc.IpAddressGenerationFailure(net_id=network.id)
        self.ports.create_port(conn, router.project_id, network.id, router.id,
                               GATEWAY_OWNER, fixed)
        conn.execute(sa.update(ROUTERS).where(ROUTERS.c.id == router.id).values(
            gw_network_id=network.id, enable_snat=info.get("enable_snat", True)))

    def _clear_gateway(self, conn: Connection, router: Row) -> None:
        for guard in self.guards:
            guard.before_gateway_removal(conn, router.id)
        for port in self.ports.router_ports(conn, router.id, GATEWAY_OWNER):
            self.ports.delete_port(conn, port["id"])
        conn.execute(sa.update(ROUTERS).where(ROUTERS.c.id == router.id)
                     .values(gw_network_id=None, enable_snat=True))

    # -- CRUD --------------------------------------------------------------
    def create(self, conn: Connection, ctx: RequestContext,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Insert a router, with a gateway port on its external network if one is given."""
        info = body.get("external_gateway_info")
        values = {**mapping.row_values(self.resource, body), "id": new_id(),
                  "project_id": owner_project(ctx, body)}
        router = self.insert(conn, values)
        if info:
            self._set_gateway(conn, ctx, router, info)
            self.revise(conn, router.id)   # Neutron 29 shows revision 2 for this create
        return self.show_row(conn, self.get_row(conn, None, router.id))

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        """Change a router: a new gateway replaces the old port; routes are checked against the
        interfaces as they are before the change (as Neutron does). One revision per request."""
        router = self.get_row(conn, ctx, id_, lock=True)
        values = mapping.row_values(self.resource, body)
        # One new revision for the whole request, whatever changed.
        changed = bool(self.changes(router, values))
        self.update_row(conn, id_, values, revise=False, current=router)
        if "routes" in body:   # first, against the interfaces as they are (as Neutron)
            changed |= self._set_routes(conn, id_, body["routes"])
        if "external_gateway_info" in body:
            info = body["external_gateway_info"]
            if info and router.gw_network_id == info["network_id"] \
                    and "external_fixed_ips" not in info:
                snat = info.get("enable_snat", router.enable_snat)
                changed |= snat != router.enable_snat
                conn.execute(sa.update(ROUTERS).where(ROUTERS.c.id == id_).values(
                    enable_snat=snat))
            else:
                changed |= bool(router.gw_network_id or info)
                if router.gw_network_id:
                    self._clear_gateway(conn, router)
                if info:
                    self._set_gateway(conn, ctx, router, info)
        if changed:
            self.revise(conn, id_)
        return self.show_row(conn, self.get_row(conn, None, id_))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """Delete a router without interfaces, and its gateway port; answer what was deleted."""
        router = self.get_row(conn, ctx, id_, lock=True)
        if self.ports.router_ports(conn, id_, INTERFACE_OWNER):
            raise nexc.RouterInUseByPorts(router_id=id_)
        shown = self.show_row(conn, router)
        if router.gw_network_id:
            self._clear_gateway(conn, router)
        conn.execute(sa.delete(ROUTES).where(ROUTES.c.router_id == id_))
        self.delete_row(conn, id_)
        return shown

    # -- extra routes ------------------------------------------------------
    def _routes(self, conn: Connection, id_: str) -> list[Route]:
        query = sa.select(ROUTES.c.destination, ROUTES.c.nexthop).where(
            ROUTES.c.router_id == id_).order_by(ROUTES.c.destination, ROUTES.c.nexthop)
        return [{"destination": d, "nexthop": n} for d, n in conn.execute(query)]

    def _connected(self, conn: Connection, id_: str) -> tuple[list[ipam.IPNetwork],
                                                             set[ipam.IPAddress]]:
        """The subnets the router has a port on (gateway included), and its own addresses."""
        query = (sa.select(SUBNETS.c.cidr, ALLOCATIONS.c.ip_address)
                 .join(ALLOCATIONS, ALLOCATIONS.c.subnet_id == SUBNETS.c.id)
                 .join(PORTS, PORTS.c.id == ALLOCATIONS.c.port_id)
                 .where(PORTS.c.device_id == id_))
        rows = conn.execute(query).all()
        return ([ipaddress.ip_network(cidr) for cidr, _ in rows],
                {ipaddress.ip_address(ip) for _, ip in rows})

    def _set_routes(self, conn: Connection, id_: str, routes: list[Route]) -> bool:
        """Make ``routes`` the router's extra routes, checked as Neutron checks them
        (each nexthop on one of the router's subnets and not the router's own address,
        then the count); say whether anything changed."""
        networks, own = self._connected(conn, id_)
        for route in routes:
            nexthop = ipaddress.ip_address(route["nexthop"])
            if not any(nexthop in network for network in networks):
                raise nexc.InvalidRoutes(routes=str(routes),
                                         reason="the nexthop is not connected with router")
            if nexthop in own:
                raise nexc.InvalidRoutes(routes=str(routes),
                                         reason="the nexthop is used by router")
        if len(routes) > MAX_ROUTES:
            raise nexc.OverQuota(overs="['router_route']")
        old = self._routes(conn, id_)
        gone = [r for r in old if r not in routes]
        added = [r for r in routes if r not in old]
        for route in gone:
            conn.execute(sa.delete(ROUTES).where(ROUTES.c.router_id == id_,
                                                 ROUTES.c.destination == route["destination"],
                                                 ROUTES.c.nexthop == route["nexthop"]))
        if added:
            conn.execute(sa.insert(ROUTES), [{"router_id": id_, **r} for r in added])
        return bool(gone or added)

    def change_routes(self, conn: Connection, ctx: RequestContext, id_: str, action: str,
                      routes: list[Route]) -> dict[str, Any]:
        """``add`` or ``remove`` extra routes (``extraroute-atomic``): routes already
        there are not added twice, routes not there are not an error, as in Neutron."""
        self.get_row(conn, ctx, id_, lock=True)
        old = self._routes(conn, id_)
        new = old + [r for r in routes if r not in old] if action == "add" \
            else [r for r in old if r not in routes]
        if self._set_routes(conn, id_, new):
            self.revise(conn, id_)
        return self.show_row(conn, self.get_row(conn, None, id_))

    # -- interfaces --------------------------------------------------------
    def add_interface(self, conn: Connection, ctx: RequestContext, id_: str,
                      body: Any) -> dict[str, Any]:
        """Attach a subnet: a port with the subnet's gateway IP, refused on overlapping CIDRs."""
        router = self.get_row(conn, ctx, id_, lock=True)
        subnet_id = _interface_subnet(body)
        subnet = self.subnets.get_row(conn, ctx, subnet_id)
        network = self.networks.get_row(conn, None, subnet.network_id)
        if network.router_external:
            raise BadRequest(resource="router", msg=(
                f"Subnet {subnet_id} is on external network {network.id}; "
                "use external_gateway_info for it"))
        if not subnet.gateway_ip:
            raise BadRequest(resource="router", msg=(
                "Subnet for router interface must have a gateway IP"))
        new_net = ipaddress.ip_network(subnet.cidr)
        for port in self.ports.router_ports(conn, id_, INTERFACE_OWNER):
            for fixed in port["fixed_ips"]:
                if fixed["subnet_id"] == subnet_id:
                    raise BadRequest(resource="router", msg=(
                        f"Router already has a port on subnet {subnet_id}"))
                other = self.subnets.get_row(conn, None, fixed["subnet_id"])
                if ipaddress.ip_network(other.cidr).overlaps(new_net):
                    raise BadRequest(resource="router", msg=(
                        f"Cidr {subnet.cidr} of subnet {subnet_id} overlaps with cidr "
                        f"{other.cidr} of subnet {other.id}"))
        port = self.ports.create_port(conn, router.project_id, subnet.network_id, id_,
                                      INTERFACE_OWNER,
                                      [allocate_ip(conn, subnet, subnet.gateway_ip)])
        self.revise(conn, id_)
        return _interface_info(router, port, subnet_id)

    def remove_interface(self, conn: Connection, ctx: RequestContext, id_: str,
                         body: Any) -> dict[str, Any]:
        """Detach a subnet, unless an extra route or (through the guards) a VPN service needs it."""
        router = self.get_row(conn, ctx, id_, lock=True)
        subnet_id = _interface_subnet(body)
        for port in self.ports.router_ports(conn, id_, INTERFACE_OWNER):
            if any(f["subnet_id"] == subnet_id for f in port["fixed_ips"]):
                for guard in self.guards:
                    guard.before_interface_removal(conn, id_, subnet_id)
                network = ipaddress.ip_network(self.subnets.get_row(conn, None, subnet_id).cidr)
                if any(ipaddress.ip_address(r["nexthop"]) in network
                       for r in self._routes(conn, id_)):
                    raise nexc.RouterInterfaceInUseByRoute(router_id=id_, subnet_id=subnet_id)
                self.ports.delete_port(conn, port["id"])
                self.revise(conn, id_)
                return _interface_info(router, port, subnet_id)
        raise nexc.RouterInterfaceNotFoundForSubnet(router_id=id_, subnet_id=subnet_id)


def _interface_subnet(body: Any) -> str:
    if not isinstance(body, dict):
        raise BadRequest(resource="router", msg="Body must be a JSON object")
    if "port_id" in body and "subnet_id" not in body:
        raise BadRequest(resource="router", msg=(
            "Isthmus ports are read-only: attach interfaces by subnet_id"))
    if "subnet_id" not in body:
        raise BadRequest(resource="router", msg="Either subnet_id or port_id must be specified")
    unknown = sorted(set(body) - {"subnet_id", "port_id"})
    if unknown:
        raise BadRequest(resource="router", msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    try:
        return a.uuid_str(body["subnet_id"])
    except a.InvalidValue as err:
        raise BadRequest(resource="router", msg=str(err)) from None


def _interface_info(router: Row, port: Mapping[str, Any], subnet_id: str) -> dict[str, Any]:
    return {"id": router.id, "project_id": router.project_id, "port_id": port["id"], "network_id": port["network_id"], "subnet_id": subnet_id,
            "subnet_ids": [subnet_id]}
