"""The agent's Prometheus metrics: syncs, its work queue, and each connection's tunnel.

Connections are counted from what the agent already sees: the statuses its
device drivers return or push, and the traffic counters of each poll. Their
series are built at scrape time from that state and disappear with the
connection (a deleted connection leaves no stale series).

Traffic counters are monotonic here although drivers' are not: strongSwan
counts per CHILD_SA, so a rekey starts its counters again at zero. A reading
lower than the previous one is taken as such a restart and counted whole, as
Prometheus treats a counter reset; what the old SA carried after the last poll
before the rekey is lost (at most one ``status_check_interval`` of traffic).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from isthmus.diagnosis import StatusDetail
from isthmus.drivers.device.base import RouterState, Statuses

# Seconds; a noop sync takes a millisecond, a strongSwan one starting charon seconds.
SYNC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
UP = "ACTIVE"
DIRECTIONS = ("in", "out")


@dataclass
class _Connection:
    """What the agent knows of one connection between scrapes."""

    router_id: str
    status: str | None = None
    readings: dict[str, int] = field(default_factory=dict)   # the driver's last counters
    totals: dict[str, int] = field(default_factory=dict)     # monotonic sums of them
    changes: dict[str, int] = field(default_factory=dict)    # status -> times it became it
    ike_state: str | None = None
    child_state: str | None = None
    spis: dict[str, str] = field(default_factory=dict)       # "ike"/"child" -> last local SPI
    rekeys: dict[str, int] = field(default_factory=dict)     # "ike"/"child" -> new SPIs seen
    failure_at: str | None = None                            # the last failure counted
    failures: dict[str, int] = field(default_factory=dict)   # reason code -> count
    one_way: bool = False


class ConnectionCollector(Collector):
    """Per connection: ``isthmus_connection_{bytes,packets}_total{connection_id,direction}``,
    ``isthmus_connection_up`` and ``isthmus_connection_status_changes_total``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[str, _Connection] = {}

    def synced(self, router: RouterState) -> None:
        """Forget the connections of ``router`` that its newest state no longer has."""
        ids = _connection_ids(router)
        with self._lock:
            for conn_id in [c for c, known in self._connections.items()
                            if known.router_id == router.router_id and c not in ids]:
                del self._connections[conn_id]

    def observe(self, router: RouterState, statuses: Statuses,
                traffic: Mapping[str, Mapping[str, int]],
                details: Mapping[str, StatusDetail | None] | None = None) -> None:
        """Take the statuses, counters and details a sync, poll or event brought for
        ``router``."""
        with self._lock:
            for service in router.services:
                for conn in service["ipsec_site_connections"]:
                    known = self._connections.setdefault(conn["id"],
                                                         _Connection(router.router_id))
                    status = statuses.get(conn["id"]) or known.status or conn["status"]
                    if known.status is not None and status != known.status:
                        known.changes[status] = known.changes.get(status, 0) + 1
                    known.status = status
                    if conn["id"] in traffic:
                        _accumulate(known, traffic[conn["id"]])
                    if details and conn["id"] in details:
                        _take_detail(known, details[conn["id"]])

    def collect(self) -> Iterator[Metric]:
        """The four families, from the connections known now."""
        with self._lock:
            connections = sorted(self._connections.items())
            families = {
                "bytes": CounterMetricFamily(
                    "isthmus_connection_bytes", "Bytes through the connection's tunnel, "
                    "by direction (in: received from the peer), summed over rekeys.",
                    labels=["connection_id", "direction"]),
                "packets": CounterMetricFamily(
                    "isthmus_connection_packets", "Packets through the connection's "
                    "tunnel, by direction, summed over rekeys.",
                    labels=["connection_id", "direction"])}
            up = GaugeMetricFamily("isthmus_connection_up", "1 while the connection's "
                                   "status is ACTIVE, else 0.", labels=["connection_id"])
            changes = CounterMetricFamily(
                "isthmus_connection_status_changes", "Times the connection's status "
                "changed, by the status it changed to.", labels=["connection_id", "status"])
            ike = GaugeMetricFamily("isthmus_connection_ike_state", "1 for the IKE SA's "
                                    "state as the device names it (ESTABLISHED, CONNECTING...); "
                                    "no series without an IKE SA.",
                                    labels=["connection_id", "state"])
            child = GaugeMetricFamily("isthmus_connection_child_state", "1 for the CHILD "
                                      "SA's state (INSTALLED, REKEYING...); no series without "
                                      "one.", labels=["connection_id", "state"])
            rekeys = CounterMetricFamily("isthmus_connection_rekeys", "New SAs seen for an "
                                         "established connection (rekeys and re-"
                                         "establishments), by SA (ike, child).",
                                         labels=["connection_id", "sa"])
            failures = CounterMetricFamily("isthmus_connection_failures", "Failures by "
                                           "reason code (docs/diagnosis.md).",
                                           labels=["connection_id", "reason"])
            one_way = GaugeMetricFamily("isthmus_connection_one_way", "1 while traffic "
                                        "leaves through the tunnel and nothing comes back "
                                        "(the one_way_traffic warning).",
                                        labels=["connection_id"])
            for conn_id, known in connections:
                up.add_metric([conn_id], 1 if known.status == UP else 0)
                one_way.add_metric([conn_id], 1 if known.one_way else 0)
                if known.ike_state:
                    ike.add_metric([conn_id, known.ike_state], 1)
                if known.child_state:
                    child.add_metric([conn_id, known.child_state], 1)
                for sa_kind, count in sorted(known.rekeys.items()):
                    rekeys.add_metric([conn_id, sa_kind], count)
                for reason, count in sorted(known.failures.items()):
                    failures.add_metric([conn_id, reason], count)
                for status, count in sorted(known.changes.items()):
                    changes.add_metric([conn_id, status], count)
                for unit, family in families.items():
                    for direction in DIRECTIONS:
                        total = known.totals.get(f"{unit}_{direction}")
                        if total is not None:
                            family.add_metric([conn_id, direction], total)
        yield from families.values()
        yield from (up, changes, ike, child, rekeys, failures, one_way)


def _take_detail(known: _Connection, detail: StatusDetail | None) -> None:
    """Follow SA states, new SAs and failures from a connection's status detail."""
    detail = detail or {}
    for kind in ("ike", "child"):
        sa_info = detail.get(kind) or {}
        setattr(known, f"{kind}_state", sa_info.get("state"))
        spi = sa_info.get("local_spi")
        if spi and known.spis.get(kind) not in (None, spi):
            known.rekeys[kind] = known.rekeys.get(kind, 0) + 1
        if spi:
            known.spis[kind] = spi
    failure = detail.get("last_failure")
    if failure and failure.get("at") != known.failure_at:
        known.failure_at = failure.get("at")
        known.failures[failure["reason"]] = known.failures.get(failure["reason"], 0) + 1
    known.one_way = any(w.get("reason") == "one_way_traffic"
                        for w in detail.get("warnings") or ())


def _accumulate(known: _Connection, counters: Mapping[str, int]) -> None:
    """Add what ``counters`` grew by since the last reading (all of it after a reset)."""
    for name, value in counters.items():
        last = known.readings.get(name)
        grown = value if last is None or value < last else value - last
        known.totals[name] = known.totals.get(name, 0) + grown
        known.readings[name] = value


def _connection_ids(router: RouterState) -> set[str]:
    return {c["id"] for s in router.services for c in s["ipsec_site_connections"]}


class AgentMetrics:
    """Every metric of one agent, in a registry of its own (:attr:`registry`).

    With ``shared`` (the server's registry, in ``isthmus up``) that registry joins it
    until :meth:`close`, so that an agent started again in the same process (tests)
    does not collide with the metrics of the one before it.
    """

    def __init__(self, queue_depth: Callable[[], int], routers: Callable[[], int],
                 shared: CollectorRegistry | None = None) -> None:
        self.registry = registry = CollectorRegistry()
        self._shared = shared
        self._sync_seconds = Histogram(
            "isthmus_agent_sync_seconds", "Time one router's sync takes (fetch, network, "
            "device drivers, report).", registry=registry, buckets=SYNC_BUCKETS)
        self._sync_failures = Counter(
            "isthmus_agent_sync_failures", "Router syncs that raised (retried at the next "
            "resync).", registry=registry)
        Gauge("isthmus_agent_queue_depth", "Routers syncing or waiting to sync.",
              registry=registry).set_function(queue_depth)
        Gauge("isthmus_agent_routers", "Routers with VPN services this agent serves.",
              registry=registry).set_function(routers)
        self.connections = ConnectionCollector()
        registry.register(self.connections)
        if shared is not None:
            shared.register(registry)

    def close(self) -> None:
        """Leave the shared registry (the agent stopped)."""
        if self._shared is not None:
            self._shared.unregister(self.registry)
            self._shared = None

    @contextmanager
    def timing_sync(self) -> Iterator[None]:
        """Observe the sync run in the block; count it failed if it raises."""
        start = time.perf_counter()
        try:
            yield
        except Exception:
            self._sync_failures.inc()
            raise
        finally:
            self._sync_seconds.observe(time.perf_counter() - start)


class BadMetricsBind(ValueError):
    """``[vpnagent] metrics_bind`` is not ``HOST:PORT``."""


def parse_bind(value: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[::1]:9697`` for IPv6) as (host, port); ``None`` for empty (off)."""
    if not value.strip():
        return None
    host, sep, port = value.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadMetricsBind(f"expected HOST:PORT (e.g. 127.0.0.1:9697 or [::1]:9697), "
                             f"found {value!r}")
    return host.strip("[]"), int(port)


def serve_metrics(registry: CollectorRegistry, bind: tuple[str, int]
                  ) -> Callable[[], None]:
    """Serve ``registry`` over HTTP on ``bind`` from a thread; returns its stopper."""
    httpd, thread = start_http_server(bind[1], bind[0], registry=registry)

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    return stop

