"""Placement: which agent serves each router, and telling that agent when it changes.

Four events move routers between agents and ask agents to look again:

- a service driver's ``notify_router(router_id)``: a router without an agent is
  placed on the live agent with the fewest routers, then its agent is told;
- a router created, changed, given or rid of an interface, or deleted
  (:class:`RouterChanges`, the change hooks of routers): the same, so that the
  agent builds the router's network (or removes it);
- an agent that comes alive (``new``, ``restarted``, or ``back`` from the dead):
  routers still waiting for an agent are placed, and an agent that was dead
  re-syncs its own routers at once, since they were set DOWN meanwhile;
- the dead-agent watch: every third of ``agent_down_time`` (at most every 2 s) the
  routers of agents that stopped sending heartbeats are set DOWN and, with
  ``allow_automatic_router_failover`` (the default), moved to live agents that have
  the physical networks they need (:meth:`Agents.fail_over`); the new agent is
  told, and builds the router (network, strongSwan, tunnels); the old one removes
  it at its first full resync when it returns. An agent that
  comes alive also triggers a failover pass, for routers nothing could take before.

Telling goes through a notifier (the server's background
:class:`~isthmus.rpc.sender.RouterUpdateSender`), so no database transaction
ever waits for the message bus: placement commits first, then notifies.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus.context import RequestContext
from isthmus.db import Database
from isthmus.network.exceptions import RouterNotFound
from isthmus.network.routers import AGENT_HOST, ROUTERS
from isthmus.periodic import Periodic
from isthmus.vpn.agents import Agents

LOG = logging.getLogger(__name__)



class RouterNotifier(Protocol):
    """Tells the agent on ``host`` to re-sync ``router_id`` (without waiting for it)."""

    def vpnservice_updated(self, host: str, router_id: str) -> None:
        """Queue or send the notification; must not block on the message bus."""


class Placement:
    """Schedules VPN routers onto live agents, notifies them, and watches for dead ones.

    :meth:`start` starts the dead-agent watch, :meth:`stop` ends it. With several
    server processes, ``watch_if`` (the leader lease's ``held``) lets one of them watch.
    """

    def __init__(self, db: Database, agents: Agents, notifier: RouterNotifier,
                 failover: bool = True, watch_if: Callable[[], bool] | None = None) -> None:
        self.db = db
        self.agents = agents
        self.notifier = notifier
        self.failover = failover
        # Three looks per down time (at most 2 s apart): a dead agent's routers go DOWN,
        # and move, within min(4/3 of it, it + 2 s) of its last heartbeat. Only the
        # holder of the leader lease looks (``watch_if``), once per deployment.
        self._watch = Periodic("dead-agent-watch", min(2.0, max(1.0, agents.down_time_s / 3)),
                               self.mark_dead_routers_down, only_if=watch_if)

    def start(self) -> "Placement":
        """Start the dead-agent watch."""
        self._watch.start()
        return self

    def stop(self) -> None:
        """End the dead-agent watch."""
        self._watch.stop()

    def notify_router(self, router_id: str) -> None:
        """Tell the router's agent to re-sync it, placing the router first if it has none."""
        def place(conn: Connection) -> str | None:
            row = conn.execute(sa.select(ROUTERS.c.agent_host)
                               .where(ROUTERS.c.id == router_id)).first()
            if row is None:
                raise RouterNotFound(router_id=router_id)
            if row.agent_host is not None:
                return row.agent_host
            return self.agents.schedule(conn, [router_id]).get(router_id)
        host = self.db.write_retrying(place)
        if host is None:
            LOG.warning("Router %s changed but no live agent serves it; it will be placed "
                        "when an agent reports", router_id)
            return
        self.notifier.vpnservice_updated(host, router_id)

    def on_agent_alive(self, host: str, how: str) -> None:
        """An agent is ``"new"``, ``"restarted"`` or ``"back"``: place waiting routers on it."""
        def place(conn: Connection) -> tuple[dict[str, str], list[str],
                                             Mapping[str, tuple[str, str]]]:
            placed = self.agents.schedule(conn, self.agents.unplaced_routers(conn))
            # Back from the dead: its routers were set DOWN, so have it re-sync them now
            # (and report their real statuses) instead of at its next periodic resync.
            own = self.agents.routers_on(conn, host) if how == "back" else []
            moved = self.agents.fail_over(conn) if self.failover else {}
            return placed, own, moved
        placed, own, moved = self.db.write_retrying(place)
        for router_id, router_host in [*placed.items(), *((r, host) for r in own)]:
            self.notifier.vpnservice_updated(router_host, router_id)
        self._notify_moved(moved)

    def mark_dead_routers_down(self) -> None:
        """Set DOWN the VPN objects of routers whose agent stopped sending heartbeats and,
        with failover, move those routers to live agents and tell both agents."""
        def watch(conn: Connection) -> Mapping[str, tuple[str, str]]:
            self.agents.mark_dead_routers_down(conn)
            return self.agents.fail_over(conn) if self.failover else {}
        self._notify_moved(self.db.write_retrying(watch))

    def _notify_moved(self, moved: Mapping[str, tuple[str, str]]) -> None:
        """Tell the new agent to build each moved router. The old one is not told: it is
        dead, and the sender keeps one pending host per router (a cast to the old host
        would replace the new one's). Back, it removes the router at its first full
        resync, which every start and every return of the server begins with."""
        for router_id, (_old, new) in moved.items():
            self.notifier.vpnservice_updated(new, router_id)


class RouterChanges:
    """Change hooks of routers: the router's agent builds what changed (its ports,
    routes, gateway), and removes a deleted router. Nothing is refused here."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement

    def validate(self, conn: Connection, ctx: RequestContext, collection: str, action: str,
                 request: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        """Accept every change (the domain's rules have checked it)."""
        return None

    def changed(self, ctx: RequestContext, collection: str, action: str,
                new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """Tell the agent of a changed router; the old agent too when it moved or went."""
        if collection != "routers":
            return
        router_id = (new or old or {}).get("id")
        if router_id is None:
            return
        old_host = (old or {}).get(AGENT_HOST)
        if new is None:
            if old_host:
                self.placement.notifier.vpnservice_updated(old_host, router_id)
            return
        if old_host and new.get(AGENT_HOST, old_host) != old_host:
            self.placement.notifier.vpnservice_updated(old_host, router_id)
        try:
            self.placement.notify_router(router_id)
        except RouterNotFound:   # deleted since: its delete tells the agent
            pass
