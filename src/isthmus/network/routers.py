"""Routers: external gateway, interfaces, and where (host, namespace) they live."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import models
from isthmus.db.collection import Collection, new_id, owner_project
from isthmus.exceptions import BadRequest
from isthmus.network import exceptions as nexc
from isthmus.network.networks import Networks, Subnets
from isthmus.network.ports import (GATEWAY_OWNER, INTERFACE_OWNER, FixedIp, Ports,
                                   allocate_ip)

ROUTERS = models.Router.__table__
SUBNETS = models.Subnet.__table__
ALLOCATIONS = models.IPAllocation.__table__
PORTS = models.Port.__table__

AGENT_HOST = "isthmus:agent_host"
NAMESPACE = "isthmus:namespace"


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


def _host_or_none(value: Any) -> str | None:
    return None if value is None else a.string(255)(value)


ROUTER_RESOURCE = a.Resource(
    singular="router", plural="routers", path="/v2.0/routers",
    description="Routers with an external gateway and interfaces",
    not_found=lambda id_: nexc.RouterNotFound(router_id=id_),
    attrs=(*a.COMMON, a.ADMIN_STATE_UP, a.STATUS,
           a.Attr("external_gateway_info", post=True, put=True, default=None,
                  parse=_gateway_info, schema={"type": ["object", "null"]}),
           a.Attr("routes", schema={"type": "array", "items": {"type": "object"}}),
           a.Attr(AGENT_HOST, post=True, put=True, default=None, parse=_host_or_none,
                  admin_only=True, member_visible=False, schema={"type": ["string", "null"]}),
           a.Attr(NAMESPACE, post=True, put=True, default=None, parse=_host_or_none,
                  admin_only=True, member_visible=False,
                  schema={"type": ["string", "null"]})),
)


class Routers(Collection):
    resource = ROUTER_RESOURCE
    table = ROUTERS
    columns = {"id": "id", "name": "name", "description": "description",
               "project_id": "project_id", "tenant_id": "project_id",
               "admin_state_up": "admin_state_up", "status": "status",
               AGENT_HOST: "agent_host", NAMESPACE: "namespace"}

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
        return gateway_ips

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        gateway = None
        if row.gw_network_id:
            fixed = sorted(extras.get(row.id, []),
                           key=lambda f: ipaddress.ip_address(f["ip_address"]).version)
            gateway = {"network_id": row.gw_network_id, "external_fixed_ips": fixed,
                       "enable_snat": row.enable_snat}
        return {"id": row.id, "name": row.name, "tenant_id": row.project_id,
                "project_id": row.project_id, "admin_state_up": row.admin_state_up,
                "status": row.status, "external_gateway_info": gateway,
                "description": row.description, "routes": [],
                AGENT_HOST: row.agent_host, NAMESPACE: row.namespace}

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
        info = body.get("external_gateway_info")
        values = {"id": new_id(), "project_id": owner_project(ctx, body), "name": body["name"],
                  "description": body["description"], "admin_state_up": body["admin_state_up"],
                  "status": "ACTIVE", "enable_snat": True, "gw_network_id": None,
                  "agent_host": body.get(AGENT_HOST), "namespace": body.get(NAMESPACE)}
        router = self.insert(conn, values)
        if info:
            self._set_gateway(conn, ctx, router, info)
        return self.show_row(conn, self.get_row(conn, None, router.id))

    def update(self, conn: Connection, ctx: RequestContext, id_: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
        router = self.get_row(conn, ctx, id_, lock=True)
        values = {k: v for k, v in body.items()
                  if k in ("name", "description", "admin_state_up")}
        if AGENT_HOST in body:
            values["agent_host"] = body[AGENT_HOST]
        if NAMESPACE in body:
            values["namespace"] = body[NAMESPACE]
        self.update_row(conn, id_, values)
        if "external_gateway_info" in body:
            info = body["external_gateway_info"]
            if info and router.gw_network_id == info["network_id"] \
                    and "external_fixed_ips" not in info:
                conn.execute(sa.update(ROUTERS).where(ROUTERS.c.id == id_).values(
                    enable_snat=info.get("enable_snat", router.enable_snat)))
            else:
                if router.gw_network_id:
                    self._clear_gateway(conn, router)
                if info:
                    self._set_gateway(conn, ctx, router, info)
        return self.show_row(conn, self.get_row(conn, None, id_))

    def delete(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        router = self.get_row(conn, ctx, id_, lock=True)
        if self.ports.router_ports(conn, id_, INTERFACE_OWNER):
            raise nexc.RouterInUseByPorts(router_id=id_)
        shown = self.show_row(conn, router)
        if router.gw_network_id:
            self._clear_gateway(conn, router)
        self.delete_row(conn, id_)
        return shown

    # -- interfaces --------------------------------------------------------
    def add_interface(self, conn: Connection, ctx: RequestContext, id_: str,
                      body: Any) -> dict[str, Any]:
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
        return _interface_info(router, port, subnet_id)

    def remove_interface(self, conn: Connection, ctx: RequestContext, id_: str,
                         body: Any) -> dict[str, Any]:
        router = self.get_row(conn, ctx, id_, lock=True)
        subnet_id = _interface_subnet(body)
        for port in self.ports.router_ports(conn, id_, INTERFACE_OWNER):
            if any(f["subnet_id"] == subnet_id for f in port["fixed_ips"]):
                for guard in self.guards:
                    guard.before_interface_removal(conn, id_, subnet_id)
                self.ports.delete_port(conn, port["id"])
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
