"""Status reports to the server, batched: many routers per ``update_status`` call.

Syncs hand their reports to a :class:`StatusReporter` and go on; its thread sends
everything queued meanwhile in one call (at most ``max_objects`` services and
connections per call, so a payload stays bounded), then the next batch. A host's
start-up sync of thousands of routers is then tens of calls, not one per router.

Order is kept: reports are sent in the order they were queued, and a batch is cut
before a service already in it, so the server applies two reports of one object
one after the other, as it would have had they come in two calls (the second may
not resolve a pending status that the first resolved).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

import oslo_messaging as messaging

from isthmus.rpc.payloads import ServiceReport

LOG = logging.getLogger(__name__)

MAX_OBJECTS = 1000   # services + connections in one update_status call

Done = Callable[[bool], None]


def _size(report: ServiceReport) -> int:
    return 1 + len(report["ipsec_site_connections"])


class StatusReporter:
    """Sends queued ``update_status`` reports from a thread of its own, in batches.

    ``send(reports)`` makes the call (raising when it fails); ``on_sent(reports)``, if
    given, is called with each batch the server took. A batch that fails is dropped and logged:
    the server's state is fetched whole at the next resync, which sends again whatever
    still differs (and a lost server triggers that resync within seconds).
    """

    def __init__(self, send: Callable[[list[ServiceReport]], Any],
                 on_sent: Callable[[list[ServiceReport]], None] | None = None,
                 max_objects: int = MAX_OBJECTS) -> None:
        self._send = send
        self._on_sent = on_sent
        self.max_objects = max_objects
        self._queue: deque[tuple[ServiceReport, Done | None]] = deque()
        self._cond = threading.Condition()
        self._sending = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="status-reports", daemon=True)

    def start(self) -> "StatusReporter":
        """Start the sending thread; returns ``self``."""
        self._thread.start()
        return self

    def submit(self, reports: Sequence[ServiceReport], done: Done | None = None) -> None:
        """Queue ``reports``; ``done(sent)`` is called once all of them were handled:
        ``sent`` says whether the call that carried the last one succeeded. With nothing
        to send it is called at once, with ``True``."""
        if not reports:
            if done is not None:
                done(True)
            return
        with self._cond:
            for i, report in enumerate(reports):
                self._queue.append((report, done if i == len(reports) - 1 else None))
            self._cond.notify_all()

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything queued so far was sent or dropped; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._sending,
                                       timeout_s)

    def stop(self, timeout_s: float | None = None) -> None:
        """Send what is queued (for at most ``timeout_s``), then end the thread."""
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _next_batch(self) -> list[tuple[ServiceReport, Done | None]]:
        """Reports from the head of the queue: up to ``max_objects`` objects (at least one
        report), and never two of one service."""
        batch: list[tuple[ServiceReport, Done | None]] = []
        ids: set[str] = set()
        objects = 0
        while self._queue:
            report, done = self._queue[0]
            if batch and (report["id"] in ids or objects + _size(report) > self.max_objects):
                break
            self._queue.popleft()
            batch.append((report, done))
            ids.add(report["id"])
            objects += _size(report)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stopping)
                if not self._queue:
                    return
                batch = self._next_batch()
                self._sending = True
            reports = [report for report, _ in batch]
            sent = False
            try:
                started = time.perf_counter()
                self._send(reports)
                LOG.debug("Status report of %d services sent in %.3fs", len(reports),
                          time.perf_counter() - started)
                sent = True
                if self._on_sent is not None:
                    self._on_sent(reports)
            except messaging.RemoteError as err:
                LOG.error("The server refused a status report of %d services (%s: %s); "
                          "the next resync reports them again", len(reports), err.exc_type,
                          err.value)
            except messaging.MessagingException as err:
                # The agent has been told (ServerClient's on_unreachable): it resyncs soon.
                LOG.debug("Status report of %d services not sent: %s", len(reports), err)
            except Exception:
                LOG.exception("Status report of %d services failed; the next resync "
                              "reports them again", len(reports))
            finally:
                for _, done in batch:
                    if done is not None:
                        try:
                            done(sent)
                        except Exception:
                            LOG.exception("Status report callback failed")
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()
