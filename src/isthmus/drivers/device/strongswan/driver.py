"""The strongSwan device driver: one charon per router, driven over VICI, status from events.

``sync`` loads exactly the connections the router should have (see
:mod:`.mapping`), touching only those that changed; ``poll`` restarts a charon
that died and reads SA state and traffic counters; an event listener per charon
reports a tunnel going up or down at once through ``agent.report``.

Everything that starts, stops or reloads one router's charon holds that
router's lifecycle lock: the agent's work queue already runs one ``sync`` per
router at a time, but the status poll runs beside it. A poll that finds the
lock held skips the router (the sync under way reports its own statuses), and
it restarts only a router whose last sync wanted a charon, with that sync's
state: a poll that read the router before its delete could otherwise start
charon again while (or after) the delete stopped it, leaving an orphan.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from typing import Any, Mapping

from isthmus import diagnosis
from isthmus.diagnosis import StatusDetail
from isthmus.drivers.device.base import AgentContext, DeviceDriver, RouterState, Statuses
from isthmus.drivers.device.strongswan import explain, launcher, mapping
from isthmus.drivers.device.strongswan.charon import Charon, CharonRefused
from isthmus.drivers.device.strongswan.options import GROUP, list_opts
from isthmus.rpc.payloads import TRAFFIC_COUNTERS

LOG = logging.getLogger(__name__)

ONE_WAY_CHECK_S = 2.0   # how often a router with a tunnel up is read for one-way traffic
# A tunnel going down comes as an updown event and log lines saying why, not always in
# that order: news is reported once the events of the next 0.1 s are in too.
COALESCE_S = 0.1
LISTEN_READY_S = 2.0   # at most this long for a new event listener to register


class StrongSwanDeviceDriver(DeviceDriver):
    """Runs charon per router network namespace; options in ``[strongswan]``."""

    options = list_opts()

    def __init__(self, agent: AgentContext) -> None:
        super().__init__(agent)
        opts = agent.conf[GROUP]
        self.base_dir = os.path.join(agent.conf.state_path, "strongswan")
        self.libipsec: bool = opts.kernel_libipsec
        self.one_way_after_s: float = opts.one_way_after
        self.rootwrap_config: str = opts.rootwrap_config
        self._client: Any = None
        self._charons: dict[str, Charon] = {}          # routers that should have a charon
        self._wanted: dict[str, RouterState] = {}      # ... and the state last synced for them
        # One per router id ever synced (a few bytes each): dropping one while a poll
        # holds it would let a second lock for the same router appear.
        self._lifecycle: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._listeners: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._traffic: dict[str, dict[str, int]] = {}
        self._explainers: defaultdict[str, explain.Explainer] = defaultdict(
            lambda: explain.Explainer(one_way_after_s=self.one_way_after_s))
        self._stamps: defaultdict[str, explain.Stamps] = defaultdict(dict)
        self._details: dict[str, StatusDetail] = {}
        self._lock = threading.Lock()

    # -- privileged work -------------------------------------------------------
    def _run_privileged(self, argv: list[str]) -> Any:
        if self._client is None:
            from isthmus.privileged import Client
            self._client = Client(config_path=self.rootwrap_config)
        return self._client.execute(argv, timeout=30)

    def _lifecycle_lock(self, router_id: str) -> threading.Lock:
        with self._lock:
            return self._lifecycle[router_id]

    def _new_charon(self, router: RouterState) -> Charon:
        return Charon(self.base_dir, router.router_id, router.namespace, self.libipsec,
                      self._run_privileged)

    # -- DeviceDriver ------------------------------------------------------------
    def start(self) -> None:
        os.makedirs(self.base_dir, mode=0o700, exist_ok=True)

    def stop(self) -> None:
        # Charons keep running: a restarted agent adopts them without dropping tunnels.
        for _, stop in list(self._listeners.values()):
            stop.set()
        if self._client is not None:
            self._client.close()

    def leftover_routers(self) -> set[str]:
        """Routers with a charon directory under this agent's state path (charons keep
        running across agent restarts)."""
        try:
            entries = os.listdir(self.base_dir)
        except OSError:
            return set()
        return {e for e in entries if launcher.ROUTER_ID.fullmatch(e)}

    def sync(self, router: RouterState) -> Statuses:
        with self._lifecycle_lock(router.router_id):
            return self._sync_locked(router)

    def _sync_locked(self, router: RouterState) -> Statuses:
        router_id = router.router_id
        with self._lock:
            charon = self._charons.get(router_id)
            if not router.services:
                # Unwanted from here on, even if the stop below fails (the next resync retries).
                self._charons.pop(router_id, None)
                gone = self._wanted.pop(router_id, None)
                for service in gone.services if gone else ():
                    for conn in service["ipsec_site_connections"]:
                        self._details.pop(conn["id"], None)
                        self._traffic.pop(conn["id"], None)
            else:
                if charon is None or charon.namespace != router.namespace:
                    charon = self._charons[router_id] = self._new_charon(router)
                self._wanted[router_id] = router
        if not router.services:
            self._stop_listener(router_id)
            (charon or self._new_charon(router)).stop_and_remove()
            with self._lock:
                self._explainers.pop(router_id, None)
                self._stamps.pop(router_id, None)
            return {}
        charon.ensure_running()
        self._ensure_listener(router, charon)
        desired = self._desired(router)
        self._explainer(router_id).expect({name: spec[name]
                                           for name, (spec, _) in desired.items()})
        explainer = self._explainer(router_id)
        try:
            charon.apply(desired, changing=lambda name: explainer.reloaded([name]))
        except CharonRefused as err:
            self._remember(router, "configuration_rejected", str(err))
            raise
        return self._statuses(router, charon)

    def poll(self, router: RouterState) -> Statuses | None:
        lifecycle = self._lifecycle_lock(router.router_id)
        if not lifecycle.acquire(blocking=False):
            return None   # a sync of this router is under way and reports its own statuses
        try:
            with self._lock:
                charon = self._charons.get(router.router_id)
                wanted = self._wanted.get(router.router_id)
            if charon is None or wanted is None:
                return None   # removed (or not synced yet): nothing to poll, nothing to restart
            if not charon.running():
                LOG.warning("charon of router %s is not answering: restarting it",
                            router.router_id)
                return self._sync_locked(wanted)
            return self._statuses(wanted, charon)
        finally:
            lifecycle.release()

    def traffic(self, router: RouterState) -> Mapping[str, Mapping[str, int]]:
        ids = {c["id"] for s in router.services for c in s["ipsec_site_connections"]}
        return {k: v for k, v in self._traffic.items() if k in ids}

    def details(self, router: RouterState) -> Mapping[str, StatusDetail]:
        found: dict[str, StatusDetail] = {}
        for service in router.services:
            for conn in service["ipsec_site_connections"]:
                if not (service["admin_state_up"] and conn["admin_state_up"]):
                    found[conn["id"]] = diagnosis.detail("admin_down", (
                        "the VPN service" if not service["admin_state_up"]
                        else "the connection") + " has admin_state_up false: not loaded")
                elif conn["id"] in self._details:
                    found[conn["id"]] = self._details[conn["id"]]
        return found

    # -- helpers -------------------------------------------------------------------
    def _desired(self, router: RouterState) -> dict[str, tuple[dict, dict]]:
        desired: dict[str, tuple[dict, dict]] = {}
        for service in router.services:
            if not service["admin_state_up"]:
                continue
            for conn in service["ipsec_site_connections"]:
                if not conn["admin_state_up"] or not conn.get("external_ip"):
                    continue
                spec = mapping.to_vici(service, conn)
                name = mapping.connection_name(conn["id"])
                if self.libipsec:  # libipsec only handles ESP in UDP
                    spec[name]["encap"] = "yes"
                desired[name] = (spec, mapping.shared_secret(service, conn))
        return desired

    def _explainer(self, router_id: str) -> explain.Explainer:
        with self._lock:
            return self._explainers[router_id]

    def _remember(self, router: RouterState, reason: str, message: str | None) -> None:
        """A failure of the whole router's daemon, on each of its connections."""
        for service in router.services:
            for conn in service["ipsec_site_connections"]:
                self._details[conn["id"]] = diagnosis.detail(reason, message)

    def _statuses(self, router: RouterState, charon: Charon) -> dict[str, str]:
        try:
            entries = charon.list_sas()
            alive = True
            charon.retire_replaced(entries)   # a changed connection's new SAs may be up now
        except OSError:
            entries, alive = [], False
        sas = charon.sas(entries)
        with self._lock:
            stamps = self._stamps[router.router_id]
            snapshots = explain.sa_details(entries, time.time(), self.one_way_after_s, stamps)
        explainer = self._explainer(router.router_id)
        statuses: dict[str, str] = {}
        for service in router.services:
            statuses[service["id"]] = "ACTIVE" if alive and service["admin_state_up"] else "DOWN"
            for conn in service["ipsec_site_connections"]:
                name = mapping.connection_name(conn["id"])
                info = sas.get(name)
                up = bool(info and info["up"])
                statuses[conn["id"]] = "ACTIVE" if up else "DOWN"
                if info:
                    self._traffic[conn["id"]] = {k: info[k] for k in TRAFFIC_COUNTERS}
                if not alive:
                    self._details[conn["id"]] = diagnosis.detail("daemon_not_running")
                else:
                    self._details[conn["id"]] = explainer.detail(name, snapshots.get(name), up)
        return statuses

    def _ensure_listener(self, router: RouterState, charon: Charon) -> None:
        current = self._listeners.get(router.router_id)
        if current is not None and current[0].is_alive():
            return
        stop = threading.Event()
        listening = threading.Event()
        thread = threading.Thread(target=self._listen,
                                  args=(router.router_id, charon, stop, listening),
                                  name=f"vici-events-{router.router_id[:8]}", daemon=True)
        self._listeners[router.router_id] = (thread, stop)
        thread.start()
        # Registered before anything is loaded: a connection refused at its first
        # negotiation is never tried again, and its log lines are the only reason.
        listening.wait(LISTEN_READY_S)

    def _stop_listener(self, router_id: str) -> None:
        current = self._listeners.pop(router_id, None)
        if current is not None:
            current[1].set()

    def _listen(self, router_id: str, charon: Charon, stop: threading.Event,
                listening: threading.Event) -> None:
        """Report a router's statuses and details at once when one of its SAs goes up or
        down or charon logs a failure, and look for one-way traffic every
        ``ONE_WAY_CHECK_S`` while a tunnel is up."""
        explainer = self._explainer(router_id)
        checked = time.monotonic()
        due: float | None = None    # news to report, once the events around it are in
        try:
            for label, data in charon.events(stop, tick_s=COALESCE_S):
                listening.set()   # the first event or tick comes after the registration
                if label == "log":
                    if explainer.log(data) is not None:
                        due = due or time.monotonic() + COALESCE_S
                elif label is not None and explainer.updown(label, data):
                    due = due or time.monotonic() + COALESCE_S
                now = time.monotonic()
                if due is not None and now < due:
                    continue
                if due is None and now - checked < ONE_WAY_CHECK_S:
                    continue
                news, due, checked = due is not None, None, now
                state = self.agent.router(router_id)
                if state is None:
                    continue
                if not news and not any(d.get("child") for d in self.details(state).values()):
                    continue   # no tunnel up: no traffic to look at
                self.agent.report(self._statuses(state, charon))
        except OSError:
            LOG.info("Event stream of router %s ended (charon stopped)", router_id)
        finally:
            listening.set()

