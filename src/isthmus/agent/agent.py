"""The VPN agent: keeps the devices of its routers equal to the server's desired state.

On start it fetches everything for its host and syncs all routers in parallel;
``vpnservice_updated(router_id)`` re-syncs one router; a periodic full resync
catches anything missed (and removes routers that are gone); statuses go back
as they change, a periodic poll catches device-side changes, and heartbeats
tell the server the agent is alive. When the server or RabbitMQ is away, calls
fail, are logged, and the next round retries: nothing is lost, because the
server's state is always fetched whole.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Mapping, Sequence

from isthmus.agent.workqueue import RouterWorkQueue
from isthmus.drivers.device.base import AgentContext, DeviceDriver, RouterState, Statuses
from isthmus.periodic import Periodic
from isthmus.rpc.client import AgentEndpoint, ServerClient, start_agent_rpc_server
from isthmus.rpc.topics import AGENT_TOPIC

LOG = logging.getLogger(__name__)

BINARY = "isthmus-agent"


class VPNAgent:
    def __init__(self, host: str, transport: Any, drivers: Sequence[DeviceDriver],
                 *, workers: int = 8, resync_interval_s: float = 60,
                 status_interval_s: float = 10, report_interval_s: float = 10,
                 rpc_timeout_s: int = 20) -> None:
        self.host = host
        self.transport = transport
        self.drivers = list(drivers)
        self.server = ServerClient(transport, host, timeout_s=rpc_timeout_s)
        self.queue = RouterWorkQueue(self._sync_router, workers)
        self.intervals = (resync_interval_s, status_interval_s, report_interval_s)
        self._known: dict[str, RouterState] = {}        # router id -> last synced state
        self._reported: dict[str, str] = {}            # object id -> last status sent
        self._traffic_sent: dict[str, dict[str, int]] = {}
        self._lock = threading.Lock()
        self._started = False
        self._loops: list[Periodic] = []
        self._rpc_server: Any = None

    @staticmethod
    def context(host: str, conf: Any = None) -> AgentContext:
        return AgentContext(host=host, conf=conf)

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        for driver in self.drivers:
            driver.agent.report = self.report_event
            driver.agent.router = self.router_state
            driver.start()
        self._rpc_server = start_agent_rpc_server(self.transport, self.host,
                                                  AgentEndpoint(self.router_updated))
        resync, status, report = self.intervals
        self._loops = [Periodic("heartbeat", report, self.heartbeat, run_first=True).start(),
                       Periodic("full-resync", resync, self.full_resync, run_first=True).start(),
                       Periodic("status-poll", status, self.poll_statuses).start()]
        LOG.info("VPN agent on host %s started with %s", self.host,
                 ", ".join(type(d).__name__ for d in self.drivers))

    def stop(self) -> None:
        for loop in self._loops:
            loop.stop()
        if self._rpc_server is not None:
            self._rpc_server.stop()
            self._rpc_server.wait()
        self.queue.shutdown()
        for driver in self.drivers:
            driver.stop()

    # -- triggers ---------------------------------------------------------
    def heartbeat(self) -> None:
        self.server.report_state({
            "host": self.host, "binary": BINARY, "topic": AGENT_TOPIC,
            "start_flag": not self._started,
            "configurations": {"device_drivers": [type(d).__name__ for d in self.drivers],
                               "routers": len(self._known)}})
        self._started = True

    def router_state(self, router_id: str) -> RouterState | None:
        with self._lock:
            return self._known.get(router_id)

    def router_updated(self, router_id: str) -> None:
        self.queue.submit(router_id)

    def full_resync(self) -> None:
        services = self.server.get_vpn_services_on_host()
        by_router: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for service in services:
            by_router[service["router_id"]].append(service)
        with self._lock:
            gone = [r for r in self._known if r not in by_router]
        for router_id, router_services in by_router.items():
            self.queue.submit(router_id, router_services)
        for router_id in gone:
            self.queue.submit(router_id, [])
        LOG.debug("Full resync: %d routers, %d removed", len(by_router), len(gone))

    # -- the work ---------------------------------------------------------
    @staticmethod
    def _share(driver: DeviceDriver, router: RouterState) -> RouterState:
        """The part of ``router`` that ``driver`` serves (its ``providers``)."""
        if driver.providers is None:
            return router
        return RouterState(router.router_id, router.namespace, tuple(
            s for s in router.services if s.get("provider") in driver.providers))

    def _sync_router(self, router_id: str, services: Sequence[Mapping[str, Any]] | None) -> None:
        if services is None:
            services = self.server.get_vpn_services_on_host(router_ids=[router_id])
        namespace = services[0].get("namespace") if services else None
        state = RouterState(router_id, namespace, tuple(services))
        statuses: dict[str, str] = {}
        for driver in self.drivers:
            statuses.update(driver.sync(self._share(driver, state)))
        with self._lock:
            if services:
                self._known[router_id] = state
            else:
                self._known.pop(router_id, None)
        self._report(state, statuses, resolves_pending=True)

    def poll_statuses(self) -> None:
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
            if statuses or traffic:
                self._report(router, statuses, resolves_pending=False, traffic=traffic)

    def report_event(self, statuses: Statuses) -> None:
        """For drivers: push status changes seen on the device (e.g. a tunnel went down)."""
        with self._lock:
            routers = list(self._known.values())
        for router in routers:
            ids = {s["id"] for s in router.services} | {
                c["id"] for s in router.services for c in s["ipsec_site_connections"]}
            mine = {k: v for k, v in statuses.items() if k in ids}
            if mine:
                self._report(router, mine, resolves_pending=False)

    def _report(self, router: RouterState, statuses: Statuses, resolves_pending: bool,
                traffic: Mapping[str, Mapping[str, int]] | None = None) -> None:
        """Send the statuses that differ from what the server last knew.

        After a sync the reference is the status in the payload (the server's own view,
        pending states included); after a poll or an event it is the last status sent.
        """
        def differs(obj: Mapping[str, Any]) -> str | None:
            status = statuses.get(obj["id"])
            if status is None:
                return None
            known = obj["status"] if resolves_pending else \
                self._reported.get(obj["id"], obj["status"])
            return status if status != known else None

        traffic = {k: dict(v) for k, v in (traffic or {}).items()
                   if self._traffic_sent.get(k) != dict(v)}
        reports = []
        for service in router.services:
            conns: dict[str, dict[str, Any]] = {}
            for c in service["ipsec_site_connections"]:
                st = differs(c)
                if st or c["id"] in traffic:
                    conns[c["id"]] = {"status": st or statuses.get(c["id"]) or
                                      self._reported.get(c["id"], c["status"]),
                                      "updated_pending_status": resolves_pending and bool(st)}
                    if c["id"] in traffic:
                        conns[c["id"]]["traffic"] = traffic[c["id"]]
            status = differs(service)
            if status or conns:
                reports.append({"id": service["id"],
                                "status": status or statuses.get(service["id"],
                                                                 service["status"]),
                                "updated_pending_status": resolves_pending and bool(status),
                                "ipsec_site_connections": conns})
        if not reports:
            return
        self.server.update_status(reports)
        with self._lock:
            for report in reports:
                self._reported[report["id"]] = report["status"]
                for conn_id, conn in report["ipsec_site_connections"].items():
                    self._reported[conn_id] = conn["status"]
                    if "traffic" in conn:
                        self._traffic_sent[conn_id] = conn["traffic"]
