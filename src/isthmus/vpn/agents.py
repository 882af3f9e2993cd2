"""VPN agents: heartbeats, which agent serves which router, and what a dead agent means.

An agent is alive while its last heartbeat is younger than ``agent_down_time``.
Routers with VPN services are placed on a live agent (the one with the fewest
routers) when they get their first service or when an agent appears; a router
whose agent has been dead for longer shows its services and connections DOWN and,
with automatic failover (``[DEFAULT] allow_automatic_router_failover``), moves to
a live agent that can plug it into the physical networks its ports are on
(:meth:`Agents.fail_over`).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection
from isthmus.exceptions import NotFound
from isthmus.network.networks import NETWORKS
from isthmus.network.ports import GATEWAY_OWNER, INTERFACE_OWNER, PORTS
from isthmus.network.routers import ROUTERS
from isthmus.vpn.desired_state import mark_routers_down
from isthmus.vpn.vpnservices import SERVICES

LOG = logging.getLogger(__name__)

AGENT_TYPE = "VPN agent"


class AgentNotFound(NotFound):
    message = "Agent %(id)s could not be found."


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _text(size: int = 255, **column: Any) -> a.Column:
    return a.Column(sa.String(size), **column)


def _moment() -> a.Column:
    return a.Column(sa.DateTime(), show=_time)


# Written by heartbeats (Agents.heartbeat), never by the API.
RESOURCE = a.Resource(
    singular="agent", plural="agents", path="/v2.0/agents", description="VPN agents",
    table="agents", not_found=lambda id_: AgentNotFound(id=id_),
    attrs=(a.ID, a.Attr("agent_type", store=_text()), a.Attr("binary", store=_text()),
           a.Attr("host", store=_text(unique=True)), a.Attr("topic", store=_text()),
           a.Attr("admin_state_up", filter_parse=a.boolean,
                  store=a.Column(sa.Boolean(), default=True)),
           a.Attr("alive", schema={"type": "boolean"}, filter_parse=a.boolean),
           a.Attr("configurations", schema={"type": "object"},
                  store=_text(4096, json=True, default="{}")),
           a.Attr("created_at", store=_moment()), a.Attr("started_at", store=_moment()),
           a.Attr("heartbeat_timestamp", store=_moment()),
           a.Attr("description"), a.Attr("availability_zone", schema={"type": ["string", "null"]})),
)
AGENTS = mapping.table_of(RESOURCE, models.Base.metadata)


def _physical_networks(row: Row) -> frozenset[str]:
    """The physical networks an agent said it can plug routers into (its heartbeat's
    ``configurations.physical_networks``)."""
    try:
        nets = json.loads(row.configurations or "{}").get("physical_networks") or []
    except (ValueError, AttributeError):
        return frozenset()
    return frozenset(n for n in nets if isinstance(n, str))


def now() -> datetime:
    """The time as the agents table stores it: UTC, naive, whole seconds."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


class Agents(Collection):
    """VPN agents (``GET /v2.0/agents``), written by heartbeats, never by the API.

    An agent is alive while its last heartbeat is at most ``down_time_s`` old
    (``[DEFAULT] agent_down_time``)."""

    resource = RESOURCE
    table = AGENTS
    def __init__(self, down_time_s: int = 75) -> None:
        self.down_time_s = down_time_s

    def visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        return None

    def alive(self, row: Row, at: datetime | None = None) -> bool:
        """Whether the agent of ``row`` sent a heartbeat within ``down_time_s`` of ``at`` (now)."""
        return (at or now()) - row.heartbeat_timestamp <= timedelta(seconds=self.down_time_s)

    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        return {"alive": self.alive(row), "description": "", "availability_zone": None}

    # -- heartbeats and placement -----------------------------------------
    def heartbeat(self, conn: Connection, state: Mapping[str, Any]) -> str | None:
        """Record an agent's ``report_state``; says whether the agent is ``"new"``,
        ``"restarted"`` or ``"back"`` (it had been dead: its heartbeats did not arrive,
        e.g. while the broker was down); ``None`` for an agent that was alive.
        """
        at = now()
        row = conn.execute(sa.select(AGENTS).where(AGENTS.c.host == state["host"])
                           .with_for_update()).first()
        values = {"binary": state.get("binary", "isthmus-agent"),
                  "topic": state.get("topic", ""), "agent_type": AGENT_TYPE,
                  "configurations": json.dumps(state.get("configurations", {}))[:4096],
                  "heartbeat_timestamp": at}
        if row is None:
            conn.execute(sa.insert(AGENTS).values(id=str(uuid.uuid4()), host=state["host"],
                                                  admin_state_up=True, created_at=at,
                                                  started_at=at, **values))
            LOG.info("New agent on host %s", state["host"])
            return "new"
        revived = "restarted" if state.get("start_flag") else \
            None if self.alive(row, at) else "back"
        if state.get("start_flag"):
            values["started_at"] = at
        conn.execute(sa.update(AGENTS).where(AGENTS.c.id == row.id).values(**values))
        if revived:
            LOG.info("Agent on host %s is alive (%s)", state["host"], revived)
        return revived

    def live_hosts(self, conn: Connection) -> list[str]:
        """Hosts of agents that sent a heartbeat within ``down_time_s`` and are enabled."""
        cutoff = now() - timedelta(seconds=self.down_time_s)
        return [h for (h,) in conn.execute(sa.select(AGENTS.c.host).where(
            AGENTS.c.heartbeat_timestamp >= cutoff, AGENTS.c.admin_state_up))]

    def schedule(self, conn: Connection, router_ids: Sequence[str]) -> dict[str, str]:
        """Place unplaced ``router_ids`` on the live agent with the fewest routers."""
        hosts = self.live_hosts(conn)
        if not hosts or not router_ids:
            return {}
        load = dict.fromkeys(hosts, 0)
        for host, count in conn.execute(
                sa.select(ROUTERS.c.agent_host, sa.func.count()).where(
                    ROUTERS.c.agent_host.in_(hosts)).group_by(ROUTERS.c.agent_host)):
            load[host] = count
        placed: dict[str, str] = {}
        for router_id in router_ids:
            host = min(load, key=lambda h: (load[h], h))
            result = conn.execute(sa.update(ROUTERS).where(
                ROUTERS.c.id == router_id, ROUTERS.c.agent_host.is_(None)).values(agent_host=host))
            if result.rowcount:
                load[host] += 1
                placed[router_id] = host
                LOG.info("Router %s placed on agent host %s", router_id, host)
        return placed

    def unplaced_routers(self, conn: Connection) -> list[str]:
        """Routers that no agent serves yet."""
        return [r for (r,) in conn.execute(
            sa.select(ROUTERS.c.id).where(ROUTERS.c.agent_host.is_(None)).order_by(ROUTERS.c.id))]

    def routers_on(self, conn: Connection, host: str) -> list[str]:
        """The routers that ``host`` serves."""
        return [r for (r,) in conn.execute(
            sa.select(ROUTERS.c.id).where(ROUTERS.c.agent_host == host))]

    def routers_of_dead_agents(self, conn: Connection) -> list[str]:
        """Routers placed on agents whose last heartbeat is older than ``down_time_s``."""
        cutoff = now() - timedelta(seconds=self.down_time_s)
        dead = sa.select(AGENTS.c.host).where(AGENTS.c.heartbeat_timestamp < cutoff)
        return [r for (r,) in conn.execute(sa.select(ROUTERS.c.id).where(
            ROUTERS.c.agent_host.in_(dead)))]

    def mark_dead_routers_down(self, conn: Connection) -> int:
        """Set the VPN objects of dead agents' routers DOWN; how many changed."""
        routers = self.routers_of_dead_agents(conn)
        changed = mark_routers_down(conn, routers) if routers else 0
        if changed:
            LOG.warning("%d VPN objects set DOWN: their agent stopped sending heartbeats",
                        changed)
        return changed

    def physical_networks_needed(self, conn: Connection,
                                 router_ids: Sequence[str]) -> dict[str, frozenset[str]]:
        """The ``provider:physical_network`` of the networks of each router's gateway and
        interface ports (routers without ports: an empty set)."""
        needed: dict[str, set[str]] = {r: set() for r in router_ids}
        ids = list(needed)
        for start in range(0, len(ids), 500):
            for router_id, physnet in conn.execute(
                    sa.select(PORTS.c.device_id, NETWORKS.c.provider_physical_network)
                    .join(NETWORKS, NETWORKS.c.id == PORTS.c.network_id)
                    .where(PORTS.c.device_owner.in_([GATEWAY_OWNER, INTERFACE_OWNER]),
                           PORTS.c.device_id.in_(ids[start:start + 500]))):
                if physnet:
                    needed[router_id].add(physnet)
        return {r: frozenset(n) for r, n in needed.items()}

    def fail_over(self, conn: Connection) -> dict[str, tuple[str, str]]:
        """Move the routers of dead agents to live agents; ``{router: (old, new host)}``.

        A router goes to the live, enabled agent with the fewest routers among those that
        can serve it: an agent that builds routers (``physical_networks`` in its
        heartbeat) must have every physical network the router's ports are on; one that
        builds none (host or ``isthmus:namespace`` routers) only takes routers from an
        agent that built none either. A router no live agent can serve stays where it is
        (its services DOWN) and is tried again at the next look. The move is a
        conditional update (``agent_host`` still the dead one): two servers watching at
        once move a router once.
        """
        cutoff = now() - timedelta(seconds=self.down_time_s)
        dead: dict[str, frozenset[str]] = {}
        live: dict[str, frozenset[str]] = {}
        for row in conn.execute(sa.select(AGENTS.c.host, AGENTS.c.configurations,
                                          AGENTS.c.heartbeat_timestamp,
                                          AGENTS.c.admin_state_up)):
            if row.heartbeat_timestamp < cutoff:
                dead[row.host] = _physical_networks(row)
            elif row.admin_state_up:
                live[row.host] = _physical_networks(row)
        if not dead or not live:
            return {}
        routers = conn.execute(sa.select(ROUTERS.c.id, ROUTERS.c.agent_host, ROUTERS.c.namespace)
                               .where(ROUTERS.c.agent_host.in_(list(dead)))
                               .order_by(ROUTERS.c.id)).all()
        if not routers:
            return {}
        needed = self.physical_networks_needed(conn, [r.id for r in routers if not r.namespace])
        load = dict.fromkeys(live, 0)
        for host, count in conn.execute(
                sa.select(ROUTERS.c.agent_host, sa.func.count()).where(
                    ROUTERS.c.agent_host.in_(list(live))).group_by(ROUTERS.c.agent_host)):
            load[host] = count
        moved: dict[str, tuple[str, str]] = {}
        for router in routers:
            wants = needed.get(router.id, frozenset())
            fits = [h for h, nets in live.items()
                    if (wants <= nets if nets else not dead[router.agent_host])]
            if not fits:
                LOG.warning("Router %s stays on dead agent host %s: no live agent has the "
                            "physical networks %s", router.id, router.agent_host,
                            sorted(wants) or "(none)")
                continue
            host = min(fits, key=lambda h: (load[h], h))
            result = conn.execute(sa.update(ROUTERS).where(
                ROUTERS.c.id == router.id, ROUTERS.c.agent_host == router.agent_host)
                .values(agent_host=host))
            if result.rowcount:
                load[host] += 1
                moved[router.id] = (router.agent_host, host)
                LOG.warning("Router %s moved from dead agent host %s to %s",
                            router.id, router.agent_host, host)
        return moved
