"""The VPN agent: keeps the devices of its routers equal to the server's desired state.

On start it fetches everything for its host and syncs all routers in parallel;
``vpnservice_updated(router_id)`` re-syncs one router; a periodic full resync
catches anything missed (and removes routers that are gone); statuses go back
as they change, a periodic poll catches device-side changes, and heartbeats
tell the server the agent is alive. When the server or RabbitMQ is away, calls
fail at once (they are never queued in the client) and the agent notes it; it
then tries a heartbeat and a full resync after 0.5 s, 1 s, 2 s ... (at most
every 4 s) until one succeeds, so that everything set DOWN meanwhile is synced
and reported within seconds of the broker's return, not at the next periodic
resync. Nothing is lost, because the server's state is always fetched whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import oslo_messaging as messaging
from prometheus_client import CollectorRegistry

from isthmus import diagnosis
from isthmus.agent.metrics import AgentMetrics, serve_metrics
from isthmus.agent.reporter import StatusReporter
from isthmus.agent.workqueue import RouterWorkQueue
from isthmus.drivers.device.base import DeviceDriver, RouterState, Statuses
from isthmus.periodic import Periodic
from isthmus.rpc.agent_side import AgentEndpoint, ServerClient, start_agent_rpc_server
from isthmus.rpc.payloads import (AgentState, Connection, ConnectionReport, RouterNetwork,
                                  RouterReport, Service, ServiceReport)
from isthmus.rpc.topics import AGENT_TOPIC

if TYPE_CHECKING:
    from isthmus.agent.routers import RouterBuilder
    from isthmus.diagnosis import StatusDetail

LOG = logging.getLogger(__name__)

BINARY = "isthmus-agent"
_UNKNOWN: Any = object()   # the server could not say the router's network: leave it as it is
_NEVER: Any = object()     # no status detail sent yet
RECONNECT_FIRST_S = 0.5   # first retry of a resync after the server was unreachable
RECONNECT_MAX_S = 4.0     # the retries double up to this
STOP_FLUSH_S = 5.0        # at stop, how long queued status reports may still take
# Reason codes not logged connection by connection: the noop driver's, which its
# start-up line already states for every connection.
QUIET_REASONS = frozenset({"simulated"})


@dataclass(frozen=True)
class RouterWork:
    """A router's state as fetched: its VPN services, and its network (``None``: the
    router has none on this host, or routers are not built here). ``fetched_at``
    (``time.monotonic()`` when the fetch began) lets a sync drop a payload older than
    one a sync of that router has fetched since: a full resync's answer must not undo
    a change a notification brought meanwhile (nor remove a router created meanwhile)."""

    services: Sequence[Service]
    network: RouterNetwork | None = None
    fetched_at: float = float("-inf")


def nat_exempt(services: Sequence[Service]) -> list[tuple[str, str]]:
    """(local CIDR, peer CIDR) pairs of the connections of ``services``: traffic the
    router must not SNAT, or it would not match the tunnels' traffic selectors."""
    pairs = {(local, peer) for service in services if service["admin_state_up"]
             for conn in service["ipsec_site_connections"] if conn["admin_state_up"]
             for local in conn["local_cidrs"] for peer in conn["peer_cidrs"]}
    return sorted(pairs)


class VPNAgent:
    """One host's VPN agent: fetches the desired state of its routers, hands it to its
    device drivers router by router, and reports statuses and heartbeats to the server.

    With a ``routers`` builder (``[vpnagent] physical_networks`` set) it first builds
    each router's network (namespace, ports, routes, SNAT: docs/routers.md) and
    reports the router's and ports' statuses; without one, a router is the namespace
    its ``isthmus:namespace`` names, or the host's own stack.

    Its metrics (docs/metrics.md) join ``registry`` (the server's, in ``isthmus up``)
    until it stops; with ``metrics_bind`` (host, port) it serves them there while it runs.

    Start and stop it with :meth:`start` and :meth:`stop`; everything else runs on its
    own threads (the work queue, the periodic loops, the resync loop)."""

    def __init__(self, host: str, transport: Any, drivers: Sequence[DeviceDriver],
                 *, workers: int = 8, resync_interval_s: float = 60,
                 status_interval_s: float = 10, report_interval_s: float = 10,
                 rpc_timeout_s: int = 20, routers: RouterBuilder | None = None,
                 registry: CollectorRegistry | None = None,
                 metrics_bind: tuple[str, int] | None = None) -> None:
        self.host = host
        self.transport = transport
        self.drivers = list(drivers)
        self.routers = routers
        self.server = ServerClient(transport, host, timeout_s=rpc_timeout_s,
                                   on_unreachable=self._server_unreachable)
        self.queue = RouterWorkQueue(self._timed_sync, workers)
        # What the server knows is noted when a report is queued (_note_sent), not when
        # it went: polls that come faster than calls would otherwise queue the same news
        # again and again ahead of everything else.
        self.reporter = StatusReporter(self.server.update_status)
        self._startup: _StartupTimer | None = None
        self.intervals = (resync_interval_s, status_interval_s, report_interval_s)
        self._known: dict[str, RouterState] = {}        # router id -> last synced state
        self._reported: dict[str, str] = {}            # object id -> last status sent
        self._traffic_sent: dict[str, dict[str, int]] = {}
        self._detail_sent: dict[str, StatusDetail | None] = {}
        self._router_reports: dict[str, RouterReport] = {}   # router id -> last sent
        self._fetched_at: dict[str, float] = {}   # router id -> start of its newest fetch used
        self._lock = threading.Lock()
        self._started = False
        self._loops: list[Periodic] = []
        self._rpc_server: Any = None
        self._unreachable_since: float | None = None   # set while RPC to the server fails
        self._resync_wake = threading.Condition(self._lock)
        self._stopping = False
        self._resync_thread = threading.Thread(target=self._resync_loop, name="full-resync",
                                               daemon=True)
        self.metrics = AgentMetrics(self.queue.depth, lambda: len(self._known), registry)
        self._metrics_bind = metrics_bind
        self._stop_metrics: Any = None

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        """Start the drivers, the RPC listener, the heartbeat and status loops and the resync loop."""
        started = time.monotonic()
        for driver in self.drivers:
            driver.agent.report = self.report_event
            driver.agent.router = self.router_state
            driver.start()
        self.reporter.start()
        self._rpc_server = start_agent_rpc_server(self.transport, self.host,
                                                  AgentEndpoint(self.router_updated))
        LOG.info("Agent start-up: connected to the message bus in %.3fs",
                 time.monotonic() - started)
        resync, status, report = self.intervals
        # The first heartbeat goes from the resync loop, just before the first fetch.
        self._loops = [Periodic("heartbeat", report, self.heartbeat).start(),
                       Periodic("status-poll", status, self.poll_statuses).start()]
        self._resync_thread.start()
        if self._metrics_bind is not None:
            self._stop_metrics = serve_metrics(self.metrics.registry, self._metrics_bind)
            LOG.info("Agent metrics on http://%s:%d/metrics", *self._metrics_bind)
        LOG.info("VPN agent on host %s started with %s", self.host,
                 ", ".join(type(d).__name__ for d in self.drivers))

    def stop(self) -> None:
        """Stop the loops and the RPC listener, let running syncs finish, then stop the drivers."""
        for loop in self._loops:
            loop.stop()
        with self._lock:
            self._stopping = True
            self._resync_wake.notify_all()
        if self._rpc_server is not None:
            self._rpc_server.stop()
            self._rpc_server.wait()
        self.queue.shutdown()
        self.reporter.stop(STOP_FLUSH_S)
        for driver in self.drivers:
            driver.stop()
        if self._stop_metrics is not None:
            self._stop_metrics()
            self._stop_metrics = None
        self.metrics.close()

    # -- triggers ---------------------------------------------------------
    def heartbeat(self) -> None:
        """Cast ``report_state``; a lost server is not an error here (the resync loop handles it)."""
        try:
            self._report_state()
        except Exception:
            if self._unreachable_since is None:  # not a lost server: say what went wrong
                raise

    def _report_state(self) -> None:
        state: AgentState = {
            "host": self.host, "binary": BINARY, "topic": AGENT_TOPIC,
            "start_flag": not self._started,
            "configurations": {"device_drivers": [type(d).__name__ for d in self.drivers],
                               "routers": len(self._known),
                               "physical_networks": sorted(
                                   self.routers.physical_networks if self.routers else [])}}
        self.server.report_state(state)
        self._started = True

    def router_state(self, router_id: str) -> RouterState | None:
        """The state last synced for ``router_id``, ``None`` if the agent has none (for drivers)."""
        with self._lock:
            return self._known.get(router_id)

    def router_updated(self, router_id: str) -> None:
        """The server's ``vpnservice_updated``: queue a sync of the router (it fetches afresh)."""
        self.queue.submit(router_id)

    def _server_unreachable(self, error: Exception) -> None:
        """An RPC to the server failed (broker or server away): resync once it answers."""
        with self._lock:
            if self._unreachable_since is not None:
                return
            self._unreachable_since = time.monotonic()
            self._resync_wake.notify_all()
        LOG.warning("Server unreachable (%s); resyncing as soon as it answers again", error)

    def _resync_loop(self) -> None:
        """Full resync at start, every ``resync_interval``, and soon after the server is back.

        While the server is unreachable the next attempt comes after 0.5 s, 1 s, 2 s ...
        (at most ``RECONNECT_MAX_S``), not after ``resync_interval``; a heartbeat goes
        first so that the server counts the agent alive before its status reports. The
        agent's first heartbeat also goes from here, just before the first fetch (the
        heartbeat loop sends the next ones), so that it is sent before any status report
        whatever the threads do; nothing waits for it to be acknowledged (it is a cast).
        """
        resync_interval_s = self.intervals[0]
        retry_s = RECONNECT_FIRST_S
        wait_s = 0.0
        first = True
        while True:
            with self._lock:
                # A loss noticed elsewhere (a heartbeat, a status report) wakes the loop.
                self._resync_wake.wait_for(lambda: self._stopping or (
                    self._unreachable_since is not None and wait_s > retry_s), wait_s)
                if self._stopping:
                    return
                lost_since = self._unreachable_since
            try:
                if lost_since is not None:
                    self._report_state()
                elif first:
                    self._first_heartbeat()
                self.full_resync(startup=first)
                first = False
            except Exception:
                if self._unreachable_since is None:
                    LOG.exception("Full resync failed; retrying in %ss", resync_interval_s)
                    wait_s = resync_interval_s
                else:
                    wait_s, retry_s = retry_s, min(retry_s * 2, RECONNECT_MAX_S)
                continue
            with self._lock:
                if self._unreachable_since is not None:
                    LOG.info("Server reachable again after %.1fs; full resync started",
                             time.monotonic() - self._unreachable_since)
                    self._unreachable_since = None
            wait_s, retry_s = resync_interval_s, RECONNECT_FIRST_S

    def _first_heartbeat(self) -> None:
        """The first ``report_state``; if it fails for another reason than a lost server,
        say so and sync anyway (the heartbeat loop tries again)."""
        try:
            self._report_state()
        except Exception:
            if self._unreachable_since is not None:
                raise
            LOG.exception("First heartbeat failed; the heartbeat loop retries it")

    def full_resync(self, startup: bool = False) -> None:
        """Fetch the whole host's state and queue every router, with nothing for routers
        gone (and for namespaces of routers this host no longer serves).

        With ``startup``, it logs at INFO when the fetch was answered, when the device
        drivers have synced every router, and when their statuses are written back
        (``benchmarks/agent_sync.py`` reads these lines)."""
        fetched_at = time.monotonic()
        services = self.server.get_vpn_services_on_host()
        networks = self._fetch_networks()
        fetch_s = time.monotonic() - fetched_at
        by_router: dict[str, list[Service]] = defaultdict(list)
        for service in services:
            by_router[service["router_id"]].append(service)
        wanted = set(by_router) | set(networks or {})
        with self._lock:
            gone = {r for r in self._known if r not in wanted}
        if networks is not None and self.routers is not None:
            gone |= self.routers.managed_routers() - wanted
        if networks is not None or self.routers is None:
            # What the drivers left on the host (charons of a previous run): a router
            # that failed over to another agent while this one was dead is removed here.
            for driver in self.drivers:
                gone |= driver.leftover_routers() - wanted
        if startup:
            LOG.info("Agent start-up: first fetch answered in %.3fs: %d services on %d "
                     "routers", fetch_s, len(services), len(wanted))
            self._startup = _StartupTimer(wanted | gone)
        for router_id in wanted:
            self.queue.submit(router_id, RouterWork(by_router.get(router_id, ()),
                                                    (networks or {}).get(router_id), fetched_at))
        for router_id in gone:
            self.queue.submit(router_id, RouterWork((), fetched_at=fetched_at))
        LOG.debug("Full resync: %d routers, %d removed", len(wanted), len(gone))

    def _fetch_networks(self, router_ids: Sequence[str] | None = None
                        ) -> dict[str, RouterNetwork] | None:
        """The routers' networks by id; ``None`` when routers are not built here or the
        server is older than ``get_routers_on_host`` (then nothing is built or removed)."""
        if self.routers is None:
            return None
        try:
            networks = self.server.get_routers_on_host(router_ids)
        except messaging.RemoteError as err:
            LOG.warning("The server cannot say which routers to build (%s: it is older than "
                        "this agent); routers are not built", err.exc_type)
            return None
        return {n["id"]: n for n in networks}

    # -- the work ---------------------------------------------------------
    @staticmethod
    def _share(driver: DeviceDriver, router: RouterState) -> RouterState:
        """The part of ``router`` that ``driver`` serves (its ``providers``)."""
        if driver.providers is None:
            return router
        return RouterState(router.router_id, router.namespace, tuple(
            s for s in router.services if s.get("provider") in driver.providers))

    def _details(self, router: RouterState) -> dict[str, StatusDetail | None]:
        """Each connection's status detail from its driver: what ``details`` says, else the
        driver's ``status_note`` as the message (None: the driver says nothing)."""
        found: dict[str, StatusDetail | None] = {}
        for driver in self.drivers:
            share = self._share(driver, router)
            try:
                told = driver.details(share)
            except Exception:   # a driver's bug must not stop status reports
                LOG.exception("Device driver %s failed to give status details",
                              type(driver).__name__)
                told = {}
            for service in share.services:
                for conn in service["ipsec_site_connections"]:
                    found[conn["id"]] = told.get(conn["id"]) or \
                        diagnosis.from_text(driver.status_note)
        return found

    def _timed_sync(self, router_id: str, work: RouterWork | None) -> None:
        synced = False
        try:
            with self.metrics.timing_sync():
                self._sync_router(router_id, work)
            synced = True
        finally:
            startup = self._startup
            if startup is not None:
                if startup.synced(router_id, reported=not synced):
                    self._startup = None

    def _sync_router(self, router_id: str, work: RouterWork | None) -> None:
        with self._lock:
            newest = self._fetched_at.get(router_id, float("-inf"))
            if work is not None and work.fetched_at < newest:
                work = None   # stale: this router was fetched afresh after it
        if work is None:
            fetched_at = time.monotonic()
            services = self.server.get_vpn_services_on_host(router_ids=[router_id])
            networks = self._fetch_networks([router_id])
            work = RouterWork(services, (networks or {}).get(router_id), fetched_at)
            if networks is None and self.routers is not None:
                work = RouterWork(services, _UNKNOWN, fetched_at)
        with self._lock:
            self._fetched_at[router_id] = max(newest, work.fetched_at)
        services = work.services
        namespace = services[0].get("namespace") if services else None
        removing = self.routers is not None and work.network is None and not services
        if removing:
            # The drivers stop what runs in the router's namespace first (a charon of a
            # previous run is recognised by it), then the namespace goes.
            assert self.routers is not None
            if router_id in self.routers.managed_routers():
                namespace = self.routers.namespace_of(router_id)
        elif self.routers is not None and work.network is not _UNKNOWN:
            namespace = self._build_router(router_id, work.network, services) or namespace
        state = RouterState(router_id, namespace, tuple(services))
        statuses: dict[str, str] = {}
        for driver in self.drivers:
            statuses.update(driver.sync(self._share(driver, state)))
        if removing:
            self._build_router(router_id, None, services)
        with self._lock:
            if services:
                self._known[router_id] = state
            else:
                self._known.pop(router_id, None)
        self.metrics.connections.synced(state)
        self._report(state, statuses, resolves_pending=True, details=self._details(state),
                     done=self._startup_reported(router_id))

    def _build_router(self, router_id: str, network: RouterNetwork | None,
                      services: Sequence[Service]) -> str | None:
        """Build (or remove, with no network) the router's network; its namespace."""
        assert self.routers is not None
        if network is None:
            if self.routers.remove(router_id):
                LOG.info("Router %s removed: its namespace and devices are gone", router_id)
            self._router_reports.pop(router_id, None)
            return None
        report = self.routers.sync({**network, "nat_exempt": nat_exempt(services)})
        if self._router_reports.get(router_id) != report:
            if report["status"] == "ERROR":
                LOG.warning("Router %s: ERROR: %s", router_id, report["reason"])
            try:
                self.server.update_router_status([report])
                self._router_reports[router_id] = report
            except messaging.RemoteError as err:
                LOG.warning("Router %s status not stored: the server is older than this "
                            "agent (%s)", router_id, err.exc_type)
        if network["mode"] == "external":
            return network["namespace"]
        if network["mode"] == "managed":
            return self.routers.namespace_of(router_id)
        return None

    def poll_statuses(self) -> None:
        """Ask each driver for current statuses and traffic, and report what changed."""
        with self._lock:
            routers = list(self._known.values())
        for router in routers:
            statuses: dict[str, str] = {}
            traffic: dict[str, Mapping[str, int]] = {}
            for driver in self.drivers:
                share = self._share(driver, router)
                polled = driver.poll(share)
                if polled:
                    statuses.update(polled)
                traffic.update(driver.traffic(share))
            details = self._details(router)
            if statuses or traffic or details:
                self._report(router, statuses, resolves_pending=False, traffic=traffic,
                             details=details)

    def report_event(self, statuses: Statuses) -> None:
        """For drivers: push status changes seen on the device (e.g. a tunnel went down)."""
        with self._lock:
            routers = list(self._known.values())
        for router in routers:
            ids = {s["id"] for s in router.services} | {
                c["id"] for s in router.services for c in s["ipsec_site_connections"]}
            mine = {k: v for k, v in statuses.items() if k in ids}
            if mine:
                self._report(router, mine, resolves_pending=False,
                             details=self._details(router))

    def _startup_reported(self, router_id: str) -> Callable[[bool], None] | None:
        """While the start-up sync runs: what tells it that ``router_id``'s statuses went."""
        startup = self._startup
        if startup is None:
            return None

        def done(sent: bool) -> None:
            if startup.reported(router_id) and self._startup is startup:
                self._startup = None
        return done

    def _report(self, router: RouterState, statuses: Statuses, resolves_pending: bool,
                traffic: Mapping[str, Mapping[str, int]] | None = None,
                details: Mapping[str, StatusDetail | None] | None = None,
                done: Callable[[bool], None] | None = None) -> None:
        """Queue the statuses, counters and details that differ from what the server last
        knew, for the reporter to send (batched with other routers'); ``done(sent)`` is
        called once they went (at once if nothing differs).

        After a sync the reference is the status in the payload (the server's own view,
        pending states included); after a poll or an event it is the last status sent.
        A detail is sent when it differs from the last one sent (all, after a restart).
        """
        self.metrics.connections.observe(router, statuses, traffic or {}, details or {})

        def differs(obj: Service | Connection) -> str | None:
            status = statuses.get(obj["id"])
            if status is None:
                return None
            known = obj["status"] if resolves_pending else \
                self._reported.get(obj["id"], obj["status"])
            return status if status != known else None

        traffic = {k: dict(v) for k, v in (traffic or {}).items()
                   if self._traffic_sent.get(k) != dict(v)}
        details = {k: v for k, v in (details or {}).items()
                   if self._detail_sent.get(k, _NEVER) != v}
        for conn_id, detail in details.items():
            before = self._detail_sent.get(conn_id)
            reason = (detail or {}).get("reason")
            if reason and reason != (before or {}).get("reason"):
                LOG.log(logging.DEBUG if reason in QUIET_REASONS else logging.INFO,
                        "Connection %s: %s", conn_id, diagnosis.summary(detail))
        reports: list[ServiceReport] = []
        for service in router.services:
            conns: dict[str, ConnectionReport] = {}
            for c in service["ipsec_site_connections"]:
                st = differs(c)
                if st or c["id"] in traffic or c["id"] in details:
                    conns[c["id"]] = {"status": st or statuses.get(c["id"]) or
                                      self._reported.get(c["id"], c["status"]),
                                      "updated_pending_status": resolves_pending and bool(st)}
                    if c["id"] in traffic:
                        conns[c["id"]]["traffic"] = traffic[c["id"]]
                    if c["id"] in details:
                        conns[c["id"]]["status_detail"] = details[c["id"]]
            status = differs(service)
            if status or conns:
                reports.append({"id": service["id"],
                                "status": status or statuses.get(service["id"],
                                                                 service["status"]),
                                "updated_pending_status": resolves_pending and bool(status),
                                "ipsec_site_connections": conns})
        if not reports:
            self.reporter.submit(reports, done)
            return
        self._note_sent(reports)

        def finished(sent: bool) -> None:
            if not sent:
                self._forget(reports)
            if done is not None:
                done(sent)
        self.reporter.submit(reports, finished)

    def _forget(self, reports: Sequence[ServiceReport]) -> None:
        """A call carrying ``reports`` failed: what they said is sent again when next seen."""
        with self._lock:
            for report in reports:
                self._reported.pop(report["id"], None)
                for conn_id in report["ipsec_site_connections"]:
                    self._reported.pop(conn_id, None)
                    self._traffic_sent.pop(conn_id, None)
                    self._detail_sent.pop(conn_id, None)

    def _note_sent(self, reports: Sequence[ServiceReport]) -> None:
        """``reports`` are queued: they are what the server will know."""
        with self._lock:
            for report in reports:
                self._reported[report["id"]] = report["status"]
                for conn_id, conn in report["ipsec_site_connections"].items():
                    self._reported[conn_id] = conn["status"]
                    if "traffic" in conn:
                        self._traffic_sent[conn_id] = conn["traffic"]
                    if "status_detail" in conn:
                        self._detail_sent[conn_id] = conn["status_detail"]


class _StartupTimer:
    """Tracks the routers of the agent's first full resync: logs at INFO when the device
    drivers have synced them all, and when all their statuses are written back."""

    def __init__(self, routers: set[str]) -> None:
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._total = len(routers)
        self._to_sync = set(routers)
        self._to_report = set(routers)
        self._synced_logged = self._done = False
        self._check()

    def synced(self, router_id: str, reported: bool = False) -> bool:
        """``router_id`` went through the drivers (or failed: ``reported`` too, nothing
        will be sent); ``True`` once everything is written back."""
        with self._lock:
            self._to_sync.discard(router_id)
            if reported:
                self._to_report.discard(router_id)
            return self._check()

    def reported(self, router_id: str) -> bool:
        """``router_id``'s statuses were sent; ``True`` once everything is written back."""
        with self._lock:
            self._to_report.discard(router_id)
            self._to_sync.discard(router_id)
            return self._check()

    def _check(self) -> bool:
        if self._done:
            return True
        if not self._synced_logged and not self._to_sync:
            LOG.info("Agent start-up: device drivers synced %d routers in %.3fs",
                     self._total, time.monotonic() - self.started)
            self._synced_logged = True
        if self._synced_logged and not self._to_report:
            LOG.info("Agent start-up: statuses of %d routers written back in %.3fs",
                     self._total, time.monotonic() - self.started)
            self._done = True
        return self._done
