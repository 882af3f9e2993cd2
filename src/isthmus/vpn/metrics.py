"""Objects by status and agents alive, counted in the database when Prometheus scrapes.

A custom collector: nothing is kept up to date between scrapes, and the counts
come from the database that every server shares, so any server behind a load
balancer answers the same. The answer is cached for ``cache_s`` so that a scrape
storm (several Prometheus servers, a dashboard refreshing) costs at most one
round of queries per ``cache_s``.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from isthmus.db import Database
from isthmus.network.routers import ROUTERS
from isthmus.vpn.agents import AGENTS, Agents, now
from isthmus.vpn.site_connections import CONNECTIONS
from isthmus.vpn.vpnservices import SERVICES

CACHE_S = 5.0

# the ``resource`` label -> the table whose ``status`` column is counted
COUNTED = {"vpnservice": SERVICES, "ipsec_site_connection": CONNECTIONS, "router": ROUTERS}

Counts = tuple[dict[tuple[str, str], int], dict[str, int]]


class StatusCollector(Collector):
    """``isthmus_vpn_objects{resource,status}`` and ``isthmus_agents{state}``, read when
    scraped."""

    def __init__(self, db: Database, agents: Agents, cache_s: float = CACHE_S) -> None:
        self.db = db
        self.agents = agents
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._counts: Counts | None = None
        self._read_at = float("-inf")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The two families, from counts at most ``cache_s`` old."""
        objects, agents = self._read()
        family = GaugeMetricFamily("isthmus_vpn_objects",
                                   "VPN services, site connections and routers by status.",
                                   labels=["resource", "status"])
        for (resource, status), count in sorted(objects.items()):
            family.add_metric([resource, status], count)
        yield family
        alive = GaugeMetricFamily("isthmus_agents", "VPN agents by liveness (heartbeat "
                                  "within agent_down_time: alive).", labels=["state"])
        for state in ("alive", "dead"):
            alive.add_metric([state], agents[state])
        yield alive

    def _read(self) -> Counts:
        """The counts, from the cache when younger than ``cache_s`` (one reader at a time)."""
        with self._lock:
            if self._counts is None or time.monotonic() - self._read_at >= self.cache_s:
                self._counts = self._query()
                self._read_at = time.monotonic()
            return self._counts

    def _query(self) -> Counts:
        return self.db.read_retrying(self._count)

    def _count(self, conn: Connection) -> Counts:
        objects: dict[tuple[str, str], int] = {}
        cutoff = now() - timedelta(seconds=self.agents.down_time_s)
        for resource, table in COUNTED.items():
            rows = conn.execute(sa.select(table.c.status, sa.func.count())
                                .group_by(table.c.status))
            for status, count in rows:
                objects[(resource, status)] = count
        alive = sa.case((AGENTS.c.heartbeat_timestamp >= cutoff, "alive"), else_="dead")
        agents = dict.fromkeys(("alive", "dead"), 0)
        for state, count in conn.execute(sa.select(alive, sa.func.count())
                                         .group_by(alive)):
            agents[state] = count
        return objects, agents
