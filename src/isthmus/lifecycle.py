"""Process lifecycle: SIGTERM/SIGINT, draining the API, stopping in bounded time.

Every long-running command (``up``, ``server``, ``agent``, ``demo``) installs
:class:`StopSignals` first. While the process is still starting (connecting to
a broker that does not answer, migrating) a signal interrupts that work at
once; once it serves, a signal only asks it to stop, so the API can finish the
requests already in flight (:func:`serve_until_stopped`) before the RPC and
the database are closed (:func:`run_bounded`). Either way the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any, Callable

LOG = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

# How often the serving loop looks at the stop flag; a signal is noticed within this.
_POLL_S = 0.2


def setup_logging(debug: bool = False) -> None:
    """Log to stderr for operators; the chatty libraries only from WARNING up.

    Here, not in the server module, because agents log the same way and must not
    import the server. The process id is in every line: several workers share stderr.
    """
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO,
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    for noisy in ("oslo_messaging", "amqp", "kombu", "stevedore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class StopRequested(BaseException):
    """Raised in the main thread when a stop signal arrives during start-up.

    A BaseException, like KeyboardInterrupt, so start-up code that retries on
    ``except Exception`` (oslo.messaging connecting to an absent broker) lets it through.
    """


class StartupError(Exception):
    """A process cannot start: the message is one line naming the option, cause and fix."""


class StopSignals:
    """SIGTERM and SIGINT as a request to stop, installed for the whole process."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: str | None = None
        self._interrupt = True

    def install(self) -> "StopSignals":
        """Catch SIGTERM and SIGINT from now on."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def serving(self) -> None:
        """From now on a signal sets :attr:`requested` instead of interrupting."""
        self._interrupt = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self.requested.set()
        if self._interrupt:
            # Interrupt once: the clean-up that follows must not be interrupted too.
            self._interrupt = False
            raise StopRequested(self.received)


def serve_until_stopped(server: Any, stop: StopSignals, grace_s: float) -> None:
    """Accept clients on ``server`` (:class:`isthmus.api.http.HTTPServer`) until a stop
    signal, then drain for up to ``grace_s``.

    Draining: the listening socket is closed (new clients are refused), idle
    keep-alive connections are closed, and requests already received are
    answered; whatever is still running after ``grace_s`` is abandoned.
    """
    stop.serving()
    while not stop.requested.is_set():
        server.accept_for(_POLL_S)
    LOG.info("%s received: refusing new connections, finishing requests in flight "
             "(at most %ss)", stop.received, grace_s)
    server.drain(grace_s)


def run_bounded(name: str, fn: Callable[[], None], timeout_s: float) -> None:
    """Run ``fn`` (a stop step), giving up after ``timeout_s`` with a warning.

    Stopping RPC can block on a broker that went away; the process must still end.
    """
    worker = threading.Thread(target=fn, name=f"stop-{name}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        LOG.warning("Stopping %s took longer than %ss; exiting without waiting", name,
                    timeout_s)
