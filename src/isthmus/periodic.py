"""Background loops that run a function every N seconds until stopped."""

from __future__ import annotations

import logging
import threading
from typing import Callable

LOG = logging.getLogger(__name__)


class Periodic:
    """Runs ``fn`` every ``interval_s`` in a daemon thread; an exception is logged, not fatal."""

    def __init__(self, name: str, interval_s: float, fn: Callable[[], object],
                 run_first: bool = False) -> None:
        self.name = name
        self.interval_s = interval_s
        self.fn = fn
        self.run_first = run_first
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
            try:
                self.fn()
            except Exception:  # one failed round must not end the loop
                LOG.exception("%s failed; retrying in %ss", self.name, self.interval_s)
            if self._stop.wait(self.interval_s):
                return
