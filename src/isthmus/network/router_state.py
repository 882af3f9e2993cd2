"""What agents are told of their routers' networks, and what they tell back.

``routers_on_host`` builds the desired network of a host's routers (the payload of
the RPC ``get_routers_on_host``, docs/rpc.md and docs/routers.md): each router's
gateway and interface ports with their addresses, the physical network each port
is on (its network's provider attributes), and the extra routes, in a fixed number
of queries whatever the number of routers. ``nat_exempt`` is left empty: the agent
fills it from the VPN connections it serves. ``apply_router_reports`` stores the
statuses agents report for routers and ports (``update_router_status``), and records
routers' status changes in the event history (:mod:`isthmus.events`).
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus import events
from isthmus.db import models
from isthmus.network.networks import (NETWORK_RESOURCE, NETWORKS, PROVIDER_PHYSNET,
                                      PROVIDER_SEGMENT, SUBNETS)
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER, PORTS
from isthmus.network.routers import ROUTERS
from isthmus.rpc.payloads import FixedIP, RouterNetwork, RouterPort, RouterReport

ALLOCATIONS = models.IPAllocation.__table__
ROUTES = models.RouterRoute.__table__

_CHUNK = 500
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}

FIXED_IP_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["ip_address", "prefixlen", "subnet_id", "cidr", "gateway_ip"],
    "properties": {"ip_address": _STRING, "prefixlen": {"type": "integer", "minimum": 0},
                   "subnet_id": _STRING, "cidr": _STRING, "gateway_ip": _NULLABLE_STRING}}
PORT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "mac_address", "mtu", "physical_network", "network_type",
                 "segmentation_id", "fixed_ips"],
    "properties": {
        "id": _STRING, "mac_address": _STRING, "mtu": {"type": "integer"},
        "physical_network": dict(NETWORK_RESOURCE.attr(PROVIDER_PHYSNET).schema or {}),
        "network_type": {"type": ["string", "null"], "enum": ["flat", "vlan", None]},
        "segmentation_id": dict(NETWORK_RESOURCE.attr(PROVIDER_SEGMENT).schema or {}),
        "fixed_ips": {"type": "array", "items": FIXED_IP_SCHEMA}}}
ROUTER_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "admin_state_up", "mode", "namespace", "gateway", "enable_snat",
                 "interfaces", "routes", "nat_exempt"],
    "properties": {
        "id": _STRING, "admin_state_up": {"type": "boolean"},
        "mode": {"type": "string", "enum": ["managed", "external", "host"]},
        "namespace": _NULLABLE_STRING, "gateway": {"oneOf": [{"type": "null"}, PORT_SCHEMA]},
        "enable_snat": {"type": "boolean"},
        "interfaces": {"type": "array", "items": PORT_SCHEMA},
        "routes": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["destination", "nexthop"],
            "properties": {"destination": _STRING, "nexthop": _STRING}}},
        "nat_exempt": {"type": "array", "items": {
            "type": "array", "items": _STRING, "minItems": 2, "maxItems": 2}}}}
"""One item of ``get_routers_on_host``'s answer (the ``RouterNetwork`` TypedDict)."""

_REPORTED = {"type": "string", "enum": ["ACTIVE", "DOWN", "ERROR"]}
_REASON = {"type": ["string", "null"], "maxLength": 255}
ROUTER_REPORT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "status", "reason", "ports"],
    "properties": {"id": _STRING, "status": _REPORTED, "reason": _REASON,
                   "ports": {"type": "object", "additionalProperties": {
                       "type": "object", "additionalProperties": False,
                       "required": ["status", "reason"],
                       "properties": {"status": _REPORTED, "reason": _REASON}}}}}
"""One item of ``update_router_status``'s ``routers``."""


def _in_chunks(conn: Connection, query: sa.Select, column: Any,
               values: Iterable[str]) -> list[Any]:
    ids = list(dict.fromkeys(values))
    rows: list[Any] = []
    for start in range(0, len(ids), _CHUNK):
        rows += conn.execute(query.where(column.in_(ids[start:start + _CHUNK]))).all()
    return rows


def routers_on_host(conn: Connection, host: str,
                    router_ids: Sequence[str] | None = None) -> list[RouterNetwork]:
    """The desired network of every router ``host`` serves (or only of ``router_ids``)."""
    query = sa.select(ROUTERS).where(ROUTERS.c.agent_host == host)
    routers = conn.execute(query).all() if router_ids is None else \
        _in_chunks(conn, query, ROUTERS.c.id, router_ids)
    ids = [r.id for r in routers]
    ports = _in_chunks(conn, sa.select(PORTS).where(
        PORTS.c.device_owner.in_([GATEWAY_OWNER, INTERFACE_OWNER])), PORTS.c.device_id, ids)
    allocations = _in_chunks(conn, sa.select(ALLOCATIONS), ALLOCATIONS.c.port_id,
                             [p.id for p in ports])
    subnets = {s.id: s for s in _in_chunks(conn, sa.select(SUBNETS), SUBNETS.c.id,
                                           [a.subnet_id for a in allocations])}
    networks = {n.id: n for n in _in_chunks(conn, sa.select(NETWORKS), NETWORKS.c.id,
                                            [p.network_id for p in ports])}
    routes: dict[str, list[dict[str, str]]] = {i: [] for i in ids}
    for route in sorted(_in_chunks(conn, sa.select(ROUTES), ROUTES.c.router_id, ids),
                        key=lambda r: (r.destination, r.nexthop)):
        routes[route.router_id].append({"destination": route.destination,
                                        "nexthop": route.nexthop})
    fixed: dict[str, list[FixedIP]] = {p.id: [] for p in ports}
    for alloc in sorted(allocations, key=lambda a: (a.port_id, a.subnet_id, a.ip_address)):
        subnet = subnets[alloc.subnet_id]
        fixed[alloc.port_id].append({
            "ip_address": alloc.ip_address, "subnet_id": subnet.id, "cidr": subnet.cidr,
            "prefixlen": ipaddress.ip_network(subnet.cidr).prefixlen,
            "gateway_ip": subnet.gateway_ip})
    gateways: dict[str, RouterPort] = {}
    interfaces: dict[str, list[RouterPort]] = {i: [] for i in ids}
    for port in sorted(ports, key=lambda p: p.id):
        network = networks[port.network_id]
        shown: RouterPort = {
            "id": port.id, "mac_address": port.mac_address, "mtu": network.mtu,
            "physical_network": network.provider_physical_network,
            "network_type": network.provider_network_type,
            "segmentation_id": network.provider_segmentation_id,
            "fixed_ips": fixed[port.id]}
        if port.device_owner == GATEWAY_OWNER:
            gateways[port.device_id] = shown
        else:
            interfaces[port.device_id].append(shown)
    return [{
        "id": r.id, "admin_state_up": r.admin_state_up,
        "mode": "external" if r.namespace else "managed", "namespace": r.namespace,
        "gateway": gateways.get(r.id), "enable_snat": r.enable_snat,
        "interfaces": interfaces[r.id], "routes": routes[r.id], "nat_exempt": [],
    } for r in sorted(routers, key=lambda r: r.id)]


def apply_router_reports(conn: Connection, reports: Sequence[RouterReport],
                         host: str) -> int:
    """Store the statuses ``host`` reports for its routers and their ports; how many
    changed. Routers another host serves now are skipped: their report is stale."""
    ids = [r["id"] for r in reports]
    current = {r.id: r for r in _in_chunks(conn, sa.select(
        ROUTERS.c.id, ROUTERS.c.status, ROUTERS.c.status_detail, ROUTERS.c.agent_host,
        ROUTERS.c.project_id), ROUTERS.c.id, ids)}
    changed = 0
    transitions = []
    port_status: dict[str, str] = {}
    for report in reports:
        row = current.get(report["id"])
        if row is None or row.agent_host != host:
            continue
        reason = (report.get("reason") or None)
        if (row.status, row.status_detail) != (report["status"], reason):
            conn.execute(sa.update(ROUTERS).where(ROUTERS.c.id == row.id).values(
                status=report["status"], status_detail=reason))
            changed += 1
            if row.status != report["status"]:
                transitions.append(events.Transition("router", row.id, row.project_id,
                                                     row.status, report["status"], reason))
        for port_id, port in (report.get("ports") or {}).items():
            port_status[port_id] = port["status"]
    if port_status:
        owned = {p.id: p for p in _in_chunks(conn, sa.select(
            PORTS.c.id, PORTS.c.status, PORTS.c.device_id), PORTS.c.id, port_status)}
        for port_id, status in port_status.items():
            port = owned.get(port_id)
            if port is not None and port.device_id in current and port.status != status:
                conn.execute(sa.update(PORTS).where(PORTS.c.id == port_id)
                             .values(status=status))
                changed += 1
    events.record_transitions(conn, transitions)
    return changed

