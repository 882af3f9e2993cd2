"""What agents are told and what they tell back, read and written in bulk.

``services_on_host`` builds the full desired state of a host's routers (the
payload of the RPC ``get_vpn_services_on_host``, schema in docs/rpc.md) with a
fixed number of queries whatever the number of services. Each object in it is
the attributes its resource marks ``agent`` (values and JSON schema derived from
the attribute table) plus the few values computed here for agents, whose
schemas are written beside the code that computes them. ``apply_reports``
takes ``update_status`` reports through the status machine in one transaction,
recording each status change in the event history (:mod:`isthmus.events`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import diagnosis, events
from isthmus.attributes import Resource
from isthmus.db import mapping, models
from isthmus.db.collection import children
from isthmus.network.networks import SUBNETS
from isthmus.network.routers import ROUTERS
from isthmus.rpc.payloads import TRAFFIC_COUNTERS
from isthmus.vpn import status as vpn_status
from isthmus.vpn.policies import IKE_POLICIES, IKE_RESOURCE, IPSEC_POLICIES, IPSEC_RESOURCE
from isthmus.vpn.site_connections import CONNECTIONS
from isthmus.vpn.site_connections import RESOURCE as CONNECTION_RESOURCE
from isthmus.vpn.vpnservices import RESOURCE as SERVICE_RESOURCE
from isthmus.vpn.vpnservices import SERVICES

if TYPE_CHECKING:
    from isthmus.rpc.payloads import Connection as ConnectionState
    from isthmus.rpc.payloads import Service, ServiceReport

LOG = logging.getLogger(__name__)

PEER_CIDRS = models.PeerCidr.__table__
ENDPOINTS = models.Endpoint.__table__

_CHUNK = 500

# The agents' payload: each resource's ``agent`` attributes plus what is computed below.
_CIDRS = {"type": "array", "items": {"type": "string"}}
CONNECTION_SCHEMA = CONNECTION_RESOURCE.agent_schema(
    ikepolicy=IKE_RESOURCE.agent_schema(), ipsecpolicy=IPSEC_RESOURCE.agent_schema(),
    local_cidrs=_CIDRS, peer_cidrs=_CIDRS,
    local_ip_version={"type": "integer", "enum": [4, 6]},
    external_ip={"type": ["string", "null"]})
SERVICE_SCHEMA = SERVICE_RESOURCE.agent_schema(
    namespace={"type": ["string", "null"]},
    ipsec_site_connections={"type": "array", "items": CONNECTION_SCHEMA})


def _rows_in(conn: Connection, table: sa.Table, column: str, values: Iterable[str],
             columns: Sequence[str] | None = None) -> list[Any]:
    ids = list(dict.fromkeys(values))
    rows: list[Any] = []
    query = sa.select(table) if columns is None else sa.select(*(table.c[c] for c in columns))
    for start in range(0, len(ids), _CHUNK):
        rows += conn.execute(query.where(
            table.c[column].in_(ids[start:start + _CHUNK]))).all()
    return rows


class _Memo(dict):
    """``fn(key)``, computed once per key."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.fn(key)
        return value

    def __call__(self, key: str) -> Any:
        return self[key]


def _for_agents(resource: Resource, rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """The attributes of each of ``rows`` (one result) that their resource sends to
    agents, by id."""
    if not rows:
        return {}
    read = mapping.reader(resource, rows[0], resource.to_agents)
    return {row.id: read(row) for row in rows}


def services_on_host(conn: Connection, host: str,
                     router_ids: Sequence[str] | None = None) -> list[Service]:
    """Every VPN service on routers served by ``host`` (or only on ``router_ids``)."""
    query = sa.select(ROUTERS.c.id, ROUTERS.c.namespace).where(ROUTERS.c.agent_host == host)
    routers = {}
    if router_ids is not None:
        for start in range(0, len(router_ids), _CHUNK):
            chunk = list(router_ids[start:start + _CHUNK])
            routers.update(dict(conn.execute(query.where(ROUTERS.c.id.in_(chunk))).all()))
    else:
        routers = dict(conn.execute(query).all())
    services = _rows_in(conn, SERVICES, "router_id", routers)
    connections = _rows_in(conn, CONNECTIONS, "vpnservice_id", [s.id for s in services])
    return _desired(conn, routers, services, connections)


def connection_state(conn: Connection, connection_id: str) -> ConnectionState | None:
    """One connection's desired state, exactly as its agent gets it (None if gone).

    The same code as :func:`services_on_host`, for one row: what the API hands a
    peer device (:mod:`isthmus.peers`) is what the Isthmus side is built from.
    """
    connections = _rows_in(conn, CONNECTIONS, "id", [connection_id])
    if not connections:
        return None
    services = _rows_in(conn, SERVICES, "id", [connections[0].vpnservice_id])
    routers = dict(conn.execute(sa.select(ROUTERS.c.id, ROUTERS.c.namespace).where(
        ROUTERS.c.id == services[0].router_id)).all())
    return _desired(conn, routers, services, connections)[0]["ipsec_site_connections"][0]


def _desired(conn: Connection, routers: Mapping[str, str | None], services: Sequence[Row],
             connections: Sequence[Row]) -> list[Service]:
    """The desired state of ``services`` on ``routers`` (id: namespace), each with those
    of ``connections`` that belong to it."""
    peer_cidrs = children(conn, PEER_CIDRS, "ipsec_site_connection_id", "cidr",
                          [c.id for c in connections])
    ike = _for_agents(IKE_RESOURCE, _rows_in(conn, IKE_POLICIES, "id",
                                             [c.ikepolicy_id for c in connections]))
    ipsec = _for_agents(IPSEC_RESOURCE, _rows_in(conn, IPSEC_POLICIES, "id",
                                                 [c.ipsecpolicy_id for c in connections]))
    conn_views = _for_agents(CONNECTION_RESOURCE, connections)
    service_views = _for_agents(SERVICE_RESOURCE, services)
    groups = [g for c in connections for g in (c.local_ep_group_id, c.peer_ep_group_id) if g]
    endpoints = children(conn, ENDPOINTS, "endpoint_group_id", "endpoint", set(groups))
    subnet_ids = [s.subnet_id for s in services if s.subnet_id]
    for c in connections:
        if c.local_ep_group_id:
            subnet_ids += endpoints[c.local_ep_group_id]
    cidr_of = {r.id: r.cidr for r in _rows_in(conn, SUBNETS, "id", subnet_ids)}

    by_service: dict[str, list[ConnectionState]] = {s.id: [] for s in services}
    service_rows = {s.id: s for s in services}
    # Parsed once per distinct address or CIDR: thousands of connections share a few.
    address_version = _Memo(lambda a: ipaddress.ip_address(a).version)
    network_version = _Memo(lambda n: ipaddress.ip_network(n, strict=False).version)
    for c in sorted(connections, key=lambda r: r.id):
        service = service_rows[c.vpnservice_id]
        if c.local_ep_group_id:
            local = sorted(cidr_of[s] for s in endpoints[c.local_ep_group_id] if s in cidr_of)
            peer = endpoints[c.peer_ep_group_id] if c.peer_ep_group_id else []
        else:
            local = [cidr_of[service.subnet_id]] if service.subnet_id in cidr_of else []
            peer = peer_cidrs[c.id]
        version = address_version(c.peer_address)
        by_service[c.vpnservice_id].append({  # type: ignore[typeddict-item]
            **conn_views[c.id],
            "ikepolicy": ike[c.ikepolicy_id], "ipsecpolicy": ipsec[c.ipsecpolicy_id],
            "local_cidrs": local, "peer_cidrs": sorted(peer),
            "local_ip_version": network_version(local[0]) if local else version,
            "external_ip": service.external_v4_ip if version == 4 else service.external_v6_ip,
        })
    return [{  # type: ignore[typeddict-item]
        **service_views[s.id], "namespace": routers[s.router_id],
        "ipsec_site_connections": by_service[s.id],
    } for s in sorted(services, key=lambda r: r.id)]


def _apply(conn: Connection, resource: Resource, table: sa.Table,
           reports: Mapping[str, tuple[str, bool]],
           reasons: Mapping[str, str | None] | None = None, reason: str | None = None,
           reason_changed: Iterable[str] = ()) -> int:
    """Statuses after ``reports`` (``id: (reported, resolves pending)``); each change is
    recorded in the event history with its reason (``reasons[id]``, else ``reason``), and
    so is a new reason for an unchanged status (ids in ``reason_changed``)."""
    if not reports:
        return 0
    current = {r.id: r for r in _rows_in(conn, table, "id", reports,
                                         ("id", "status", "project_id"))}
    changes = []
    transitions = []
    explained = set(reason_changed)
    for id_, (reported, resolves) in reports.items():
        row = current.get(id_)
        if row is None:
            continue  # deleted since the agent looked: nothing to do
        new = vpn_status.after_report(row.status, reported, resolves)
        if new != row.status:
            changes.append({"_id": id_, "status": new})
        if new != row.status or id_ in explained:
            transitions.append(events.Transition(
                resource.singular, id_, row.project_id, row.status, new,
                (reasons or {}).get(id_, reason)))
    if changes:
        conn.execute(sa.update(table).where(table.c.id == sa.bindparam("_id"))
                     .values(status=sa.bindparam("status")), changes)
    if transitions:
        events.record_transitions(conn, transitions)
    return len(changes)


def _detail_of(report: Mapping[str, Any]) -> diagnosis.StatusDetail | None:
    """A report's ``status_detail``: an object since RPC 1.3, a sentence before."""
    value = report["status_detail"]
    return diagnosis.from_text(value) if isinstance(value, str) else value


def _store_details(conn: Connection, details: Mapping[str, diagnosis.StatusDetail | None]
                   ) -> dict[str, str | None]:
    """Write connections' status details; for each whose reason code changed, or that
    has a new ``last_failure`` (a failure can come while an SA still stands), the reason
    to record in the event history."""
    if not details:
        return {}
    before = {r.id: r.status_detail for r in _rows_in(conn, CONNECTIONS, "id", details,
                                                      ("id", "status_detail"))}
    changed: dict[str, str | None] = {}
    rows = []
    for id_, value in details.items():
        if id_ not in before:
            continue
        text = None if value is None else json.dumps(value, sort_keys=True)
        if text == before[id_]:
            continue
        rows.append({"_id": id_, "detail": text})
        old = (json.loads(before[id_]) if before[id_] else None) or {}
        new = value or {}
        failure = new.get("last_failure")
        if old.get("reason") != new.get("reason"):
            changed[id_] = diagnosis.summary(value)
        elif failure and failure != old.get("last_failure"):
            changed[id_] = f"{failure['reason']}: {failure['message']}"
    if rows:
        conn.execute(sa.update(CONNECTIONS).where(CONNECTIONS.c.id == sa.bindparam("_id"))
                     .values(status_detail=sa.bindparam("detail")), rows)
    return changed


def apply_reports(conn: Connection, reports: Sequence[ServiceReport]) -> int:
    """Apply ``update_status`` reports; returns how many objects changed status."""
    services: dict[str, tuple[str, bool]] = {}
    connections: dict[str, tuple[str, bool]] = {}
    traffic = []
    details: dict[str, diagnosis.StatusDetail | None] = {}
    for report in reports:
        services[report["id"]] = (report["status"], bool(report.get("updated_pending_status")))
        for conn_id, conn_report in (report.get("ipsec_site_connections") or {}).items():
            connections[conn_id] = (conn_report["status"],
                                    bool(conn_report.get("updated_pending_status")))
            if "status_detail" in conn_report:
                details[conn_id] = _detail_of(conn_report)
            if conn_report.get("traffic"):
                traffic.append({"_id": conn_id, **{k: int(conn_report["traffic"].get(k, 0))
                                                   for k in TRAFFIC_COUNTERS}})
    if traffic:
        conn.execute(sa.update(CONNECTIONS).where(CONNECTIONS.c.id == sa.bindparam("_id"))
                     .values({k: sa.bindparam(k) for k in TRAFFIC_COUNTERS}), traffic)
    news = _store_details(conn, details)
    reasons = {id_: diagnosis.summary(value) for id_, value in details.items()}
    reasons.update(news)
    return _apply(conn, SERVICE_RESOURCE, SERVICES, services) + \
        _apply(conn, CONNECTION_RESOURCE, CONNECTIONS, connections, reasons,
               reason_changed=news)


def mark_routers_down(conn: Connection, router_ids: Sequence[str]) -> int:
    """Set every VPN service and connection on ``router_ids`` DOWN (their agent is dead)."""
    services = [s.id for s in _rows_in(conn, SERVICES, "router_id", router_ids)]
    down = (vpn_status.DOWN, True)
    connections = {c.id: down for c in _rows_in(conn, CONNECTIONS, "vpnservice_id", services)}
    return _apply(conn, SERVICE_RESOURCE, SERVICES, {s: down for s in services},
                  reason=events.HEARTBEATS_STOPPED) + \
        _apply(conn, CONNECTION_RESOURCE, CONNECTIONS, connections,
               reason=events.HEARTBEATS_STOPPED)
