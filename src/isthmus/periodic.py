"""Background loops that run a function every N seconds until stopped."""

from __future__ import annotations

import logging
import threading
from typing import Callable

LOG = logging.getLogger(__name__)

ONLY_IF_RECHECK_S = 1.0


class Periodic:
    """Runs ``fn`` every ``interval_s`` in a daemon thread; an exception is logged, not fatal.

    With ``only_if``, a round runs only when it returns true: work for the whole
    deployment passes :meth:`isthmus.leader.LeaderLease.held`, so that one
    server process of all runs it. A round skipped so is looked at again within
    ``ONLY_IF_RECHECK_S``, not a whole interval later: an hourly job runs as soon
    as its process becomes the leader.
    """

    def __init__(self, name: str, interval_s: float, fn: Callable[[], object],
                 run_first: bool = False, only_if: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self.run_first = run_first
        self.only_if = only_if
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> "Periodic":
        """Start the thread; returns ``self`` so that it can be built and started in one line."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to stop (a run under way finishes)."""
        self._stop.set()

    def _run(self) -> None:
        if not self.run_first and self._stop.wait(self.interval_s):
            return
        while not self._stop.is_set():
            wait_s = self.interval_s
            try:
                if self.only_if is None or self.only_if():
                    LOG.debug("Running %s", self.name)
                    self.fn()
                else:
                    wait_s = min(wait_s, ONLY_IF_RECHECK_S)
            except Exception:  # one failed round must not end the loop
                LOG.exception("%s failed; retrying in %ss", self.name, self.interval_s)
            if self._stop.wait(wait_s):
                return
