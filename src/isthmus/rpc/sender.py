"""Background delivery of ``vpnservice_updated``: an API request never waits for the broker.

The database is the truth; the cast only tells an agent to look sooner. So the
request that committed a change hands the router to :class:`RouterUpdateSender`
and answers at once. The sender keeps at most one pending update per router
(several changes before a send are one cast, so memory is bounded by the number
of routers), casts from a thread of its own, and while the broker is away keeps
the pending updates and tries again with a backoff (0.5 s doubling to 8 s), so
a change made during an outage reaches its agent soon after the broker is back.
It logs one line when casts start failing and one when they work again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

LOG = logging.getLogger(__name__)

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 8.0


class RouterUpdateSender:
    """Runs ``cast(host, router_id)`` in the background, one per router, again on failure."""

    def __init__(self, cast: Callable[[str, str], None], *, first_retry_s: float = FIRST_RETRY_S,
                 max_retry_s: float = MAX_RETRY_S) -> None:
        self._cast = cast
        self._first_retry_s = first_retry_s
        self._max_retry_s = max_retry_s
        self._pending: dict[str, str] = {}   # router id -> host, oldest first
        self._wake = threading.Condition()
        self._stopping = False
        self._failing_since: float | None = None
        self._thread = threading.Thread(target=self._run, name="rpc-router-updates",
                                        daemon=True)

    def start(self) -> "RouterUpdateSender":
        """Start the sending thread."""
        self._thread.start()
        return self

    def vpnservice_updated(self, host: str, router_id: str) -> None:
        """Queue the cast and return at once; a router already queued is sent once."""
        with self._wake:
            self._pending[router_id] = host
            self._wake.notify()

    def pending(self) -> int:
        """Routers waiting to be cast (at most one entry per router)."""
        with self._wake:
            return len(self._pending)

    def stop(self, timeout_s: float = 5) -> None:
        """End the thread; updates still queued are dropped (agents resync on their own)."""
        with self._wake:
            self._stopping = True
            dropped = len(self._pending)
            self._wake.notify()
        self._thread.join(timeout_s)
        if dropped:
            LOG.info("Stopped with %d router updates unsent; their agents pick the changes "
                     "up at their next resync", dropped)

    def _run(self) -> None:
        retry_s = self._first_retry_s
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._stopping)
                if self._stopping:
                    return
                router_id, host = next(iter(self._pending.items()))
                del self._pending[router_id]
            try:
                self._cast(host, router_id)
            except Exception as err:
                with self._wake:
                    # Keep it for later, unless a newer update for the router came meanwhile.
                    self._pending.setdefault(router_id, host)
                    waiting = len(self._pending)
                    if self._failing_since is None:
                        self._failing_since = time.monotonic()
                        LOG.warning("Cannot cast router updates to agents (%s); %d waiting, "
                                    "retrying every %g-%gs until the message bus is back",
                                    err, waiting, self._first_retry_s, self._max_retry_s)
                    self._wake.wait_for(lambda: self._stopping, retry_s)
                retry_s = min(retry_s * 2, self._max_retry_s)
                continue
            if self._failing_since is not None:
                LOG.info("Router updates reach agents again after %.1fs; %d more to send",
                         time.monotonic() - self._failing_since, self.pending())
                self._failing_since = None
            retry_s = self._first_retry_s
