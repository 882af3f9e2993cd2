"""Per-router work on a bounded pool: routers in parallel, one router never twice at once.

Asking for a router that is being synced marks it dirty: it is synced once more
when the current run ends, so a burst of updates costs at most two runs and the
last one always sees the newest state.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

LOG = logging.getLogger(__name__)


class RouterWorkQueue:
    """Runs syncs on a thread pool, never two at once for the same router.

    A request for a router that is being synced waits and is coalesced with later
    ones: the newest payload wins, and a request to fetch wins over any payload."""

    def __init__(self, work: Callable[[str, Any], None], workers: int) -> None:
        self._work = work
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="router-sync")
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._again: dict[str, Any] = {}
        self._idle = threading.Condition(self._lock)

    def submit(self, router_id: str, payload: Any = None) -> None:
        """Sync ``router_id``; ``payload`` is state already fetched (None: fetch it)."""
        with self._lock:
            if router_id in self._running:
                # A newer request replaces an older one; a fetch-request wins over a payload.
                previous = self._again.get(router_id, payload)
                self._again[router_id] = None if previous is None or payload is None \
                    else payload
                return
            self._running.add(router_id)
        self._pool.submit(self._run, router_id, payload)

    def _run(self, router_id: str, payload: Any) -> None:
        while True:
            try:
                self._work(router_id, payload)
            except Exception:
                LOG.exception("Sync of router %s failed; the next resync retries it", router_id)
            with self._lock:
                if router_id in self._again:
                    payload = self._again.pop(router_id)
                    continue
                self._running.discard(router_id)
                if not self._running:
                    self._idle.notify_all()
                return

    def depth(self) -> int:
        """Routers syncing or waiting for a worker, plus those due to sync once more."""
        with self._lock:
            return len(self._running) + len(self._again)

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until no router is syncing; ``False`` if ``timeout_s`` passed first."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._running, timeout_s)

    def shutdown(self) -> None:
        """Wait for running syncs and drop the queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)
