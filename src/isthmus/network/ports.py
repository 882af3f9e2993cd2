"""Ports: read-only through the API; routers create them for gateways and interfaces."""

from __future__ import annotations

import ipaddress
import random
from typing import Any, NamedTuple, Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, new_id
from isthmus.db.retry import RetryRequest, is_unique_violation
from isthmus.network import exceptions as nexc
from isthmus.network import ipam

ALLOCATIONS = models.IPAllocation.__table__

GATEWAY_OWNER = "network:router_gateway"
INTERFACE_OWNER = "network:router_interface"


def _fixed_ip_filter(value: Any) -> Any:
    """``fixed_ips=ip_address=1.2.3.4`` / ``subnet_id=...`` as Neutron accepts them."""
    if isinstance(value, str) and "=" in value:
        key, _, val = value.partition("=")
        return (key, val)
    return value


PORT_RESOURCE = a.Resource(
    singular="port", plural="ports", path="/v2.0/ports",
    description="Router gateway and interface ports (read-only)", table="ports",
    not_found=lambda id_: nexc.PortNotFound(port_id=id_),
    attrs=(*a.COMMON, a.ADMIN_STATE_UP, a.STATUS,
           a.Attr("network_id", store=a.Column(a.UUID_TYPE, foreign_key="networks.id",
                                               index=True)),
           a.Attr("device_id", store=a.Column(a.NAME_TYPE, default="", index=True)),
           a.Attr("device_owner", store=a.Column(a.NAME_TYPE, default="")),
           a.Attr("mac_address", store=a.Column(sa.String(32))),
           # Rows of ip_allocations (isthmus.db.models.IPAllocation).
           a.Attr("fixed_ips", schema={"type": "array", "items": {"type": "object"}},
                  filter_parse=_fixed_ip_filter)),
)
PORTS = mapping.table_of(PORT_RESOURCE, models.Base.metadata)


class FixedIp(NamedTuple):
    """An address for a new port, and whether the client named it."""

    subnet_id: str
    ip_address: str
    # A named address that turns out taken is the client's 409; one the server
    # picked is a lost race, and the transaction runs again to pick another.
    requested: bool


class Ports(Collection):
    """Ports, read-only through the API: routers create them for gateways and interfaces."""

    resource = PORT_RESOURCE
    table = PORTS

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        ids = [r.id for r in rows]
        out: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
        if ids:
            query = sa.select(ALLOCATIONS).where(ALLOCATIONS.c.port_id.in_(ids))
            for alloc in conn.execute(query):
                out[alloc.port_id].append({"subnet_id": alloc.subnet_id,
                                           "ip_address": alloc.ip_address})
        return out

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"fixed_ips": extras[row.id]}

    # -- used by routers ---------------------------------------------------
    def create_port(self, conn: Connection, project_id: str, network_id: str,
                    device_id: str, device_owner: str,
                    fixed_ips: list[FixedIp]) -> dict[str, Any]:
        """A port with the given allocations (the unique key on them settles races)."""
        port_id = new_id()
        mac = "fa:16:3e:%02x:%02x:%02x" % tuple(random.randrange(256) for _ in range(3))
        conn.execute(sa.insert(PORTS).values(
            id=port_id, project_id=project_id, name="", description="",
            network_id=network_id, device_id=device_id, device_owner=device_owner,
            mac_address=mac, status="ACTIVE", admin_state_up=True))
        for fixed in fixed_ips:
            try:
                conn.execute(sa.insert(ALLOCATIONS).values(
                    subnet_id=fixed.subnet_id, ip_address=fixed.ip_address, port_id=port_id))
            except sa_exc.IntegrityError as err:
                if not is_unique_violation(err):
                    raise
                if fixed.requested:
                    raise nexc.IpAddressAlreadyAllocated(
                        ip=fixed.ip_address, subnet_id=fixed.subnet_id) from None
                raise RetryRequest(f"IP address {fixed.ip_address} of subnet "
                                   f"{fixed.subnet_id} was taken concurrently") from None
        return self.show_row(conn, self.get_row(conn, None, port_id))

    def delete_port(self, conn: Connection, port_id: str) -> None:
        """Delete a port and its IP allocations."""
        conn.execute(sa.delete(ALLOCATIONS).where(ALLOCATIONS.c.port_id == port_id))
        self.delete_row(conn, port_id)

    def router_ports(self, conn: Connection, router_id: str,
                     owner: str) -> list[dict[str, Any]]:
        """The ports of ``router_id`` owned as ``owner`` (GATEWAY_OWNER or INTERFACE_OWNER),
        as the API shows them, ordered by id."""
        rows = conn.execute(sa.select(PORTS).where(PORTS.c.device_id == router_id,
                                                   PORTS.c.device_owner == owner)
                            .order_by(PORTS.c.id)).all()
        extras = self.load_extras(conn, rows)
        return [self.to_api(r, extras) for r in rows]


def allocate_ip(conn: Connection, subnet: Row, requested: str | None = None) -> FixedIp:
    """A free address of ``subnet`` (or check that ``requested`` is usable).

    Allocations on one subnet take turns on a lock of its row until their
    transactions end, so racing requests pick different addresses instead of
    colliding on the same first free one.
    """
    subnets = models.Base.metadata.tables["subnets"]   # isthmus.network.networks imports us
    locked = conn.execute(sa.select(subnets).where(subnets.c.id == subnet.id)
                          .with_for_update(key_share=True)).first()
    if locked is None:
        raise nexc.SubnetNotFound(subnet_id=subnet.id)
    subnet = locked  # the pools in force now, not when the caller read the row
    used_query = sa.select(ALLOCATIONS.c.ip_address).where(ALLOCATIONS.c.subnet_id == subnet.id)
    if conn.dialect.name in ("mysql", "mariadb"):
        # InnoDB's plain reads see the snapshot of the transaction's first read, from
        # before the lock was ours; a locking read sees what the last holder committed.
        used_query = used_query.with_for_update(read=True)
    used = {ip for (ip,) in conn.execute(used_query)}
    if requested is not None:
        if ipaddress.ip_address(requested) not in ipaddress.ip_network(subnet.cidr):
            raise nexc.InvalidIpForSubnet(ip_address=requested)
        if requested in used:
            raise nexc.IpAddressAlreadyAllocated(ip=requested, subnet_id=subnet.id)
        return FixedIp(subnet.id, requested, requested=True)
    if subnet.gateway_ip:
        used.add(subnet.gateway_ip)
    free = ipam.first_free(ipam.stored_pools(subnet.allocation_pools), used)
    if free is None:
        raise nexc.IpAddressGenerationFailure(net_id=subnet.network_id)
    return FixedIp(subnet.id, str(free), requested=False)
