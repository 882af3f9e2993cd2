"""``isthmus server --workers N``: the parent binds the port, N forked workers serve it.

Each worker is a whole server (:func:`isthmus.server.build` runs in the worker,
after the fork, so no thread, database connection or broker connection is ever
shared between processes). The parent binds one socket per worker, all on the
same port with ``SO_REUSEPORT``, and keeps them: the kernel spreads new
connections evenly over them by their addresses. One socket shared by all
workers would let whichever worker wakes first take most keep-alive connections
(measured: 24 of 32 on one worker of two); a socket of one's own also keeps the
connections that arrive while its worker is being replaced, in its backlog, for
the next worker. The parent only supervises:

- SIGTERM or SIGINT: the parent sends SIGTERM to every worker, each drains its
  requests in flight (``graceful_shutdown_timeout``) and stops; the parent exits 0
  once all have, killing any still there after the drain plus 15 s.
- a worker that dies after it started serving (a crash, the OOM killer, kill -9),
  or is killed by a signal at any time, is logged with how it ended and started again;
- a worker that exits before serving (a bad option, a driver that does not load,
  the database away for longer than ``startup_timeout``) ends the server: the
  parent stops the others and exits 1, since a new worker would fail the same
  way; so does a crash loop (more than ``RESTART_LIMIT`` deaths within
  ``RESTART_WINDOW_S``).

Workers die with the parent (``PR_SET_PDEATHSIG``), so a parent killed with -9
leaves no orphan serving. The deployment's background work runs in one process
of all, whichever holds the leader lease (:mod:`isthmus.leader`). The workers'
Prometheus metrics are kept in files of a directory the parent makes
(:func:`shared_metrics`), so whichever worker answers ``/metrics`` sums them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

from isthmus.lifecycle import STOP_SIGNALS, StopSignals

LOG = logging.getLogger(__name__)

RESTART_LIMIT = 5
RESTART_WINDOW_S = 60.0
_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1

RunWorker = Callable[[socket.socket, StopSignals, Callable[[], None]], int]
"""A worker's whole life: serve on the socket until the stop signals say stop, calling
the third argument once it serves; returns the worker's exit status."""


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_metrics() -> Iterator[str]:
    """Have the workers keep their metrics in files that ``/metrics`` sums
    (prometheus_client's multiprocess mode); removes the directory afterwards.

    Without it, each worker counted alone and a scrape saw whichever worker the
    kernel gave the connection to: counters that go back and forth between
    workers, which Prometheus reads as resets. An operator's own
    ``PROMETHEUS_MULTIPROC_DIR`` is used (and kept) as it is. Must run before
    prometheus_client is imported: it picks where values live at import."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("shared_metrics() must run before prometheus_client is imported")
    given = os.environ.get(METRICS_DIR_ENV)
    if given:
        yield given
        return
    path = tempfile.mkdtemp(prefix="isthmus-metrics-")
    os.environ[METRICS_DIR_ENV] = path
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bind(host: str, port: int, count: int, backlog: int = 1024) -> list[socket.socket]:
    """``count`` listening sockets on one port, one per worker (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return [socket.create_server((host, port), family=family, backlog=backlog,
                                 reuse_port=True) for _ in range(count)]


@dataclass
class _Worker:
    index: int
    pid: int
    ready_fd: int
    ready: bool = False
    started: float = field(default_factory=time.monotonic)


def describe_status(status: int) -> str:
    """``os.waitpid``'s status as words: "exited with status 1", "was killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Forks a worker running ``run_worker`` per socket of ``listening`` and keeps them
    running until a stop signal (:meth:`run`); see the module for the policy."""

    def __init__(self, run_worker: RunWorker, listening: list[socket.socket],
                 stop: StopSignals, stop_timeout_s: float) -> None:
        self.count = len(listening)
        self.run_worker = run_worker
        self.listening = listening
        self.stop = stop
        self.stop_timeout_s = stop_timeout_s
        self.workers: dict[int, _Worker] = {}
        self._deaths: list[float] = []
        self._index = -1   # in a worker: which socket is its own

    def run(self) -> int:
        """Supervise until a stop signal (exit status 0) or a worker that cannot run (1)."""
        self.stop.serving()
        for index in range(self.count):
            self._spawn(index)
        LOG.info("%d workers started (pids %s)", self.count,
                 ", ".join(str(pid) for pid in self.workers))
        while not self.stop.requested.wait(_POLL_S):
            self._read_ready()
            for pid, status in self._reap():
                worker = self.workers.pop(pid)
                self._read_ready([worker])
                if worker.ready_fd >= 0:   # died before it said it was ready
                    os.close(worker.ready_fd)
                    worker.ready_fd = -1
                if self.stop.requested.is_set():
                    break
                if not worker.ready and not os.WIFSIGNALED(status):
                    LOG.error("Worker %d (pid %d) %s before it served; stopping the server "
                              "(a new worker would fail the same way: its error is above)",
                              worker.index, pid, describe_status(status))
                    self._stop_all()
                    return 1
                now = time.monotonic()
                self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S]
                self._deaths.append(now)
                if len(self._deaths) > RESTART_LIMIT:
                    LOG.error("Worker %d (pid %d) %s: %d workers died within %gs; stopping "
                              "the server", worker.index, pid, describe_status(status),
                              len(self._deaths), RESTART_WINDOW_S)
                    self._stop_all()
                    return 1
                LOG.warning("Worker %d (pid %d) %s; starting a new one", worker.index, pid,
                            describe_status(status))
                self._spawn(worker.index)
        LOG.info("%s received: stopping %d workers", self.stop.received, len(self.workers))
        self._stop_all()
        return 0

    def _spawn(self, index: int) -> None:
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        with _stop_signals_blocked():
            pid = os.fork()
            if pid == 0:   # the worker: never returns
                os.close(read_fd)
                self._index = index
                self._be_worker(parent, write_fd)
        os.close(write_fd)
        self.workers[pid] = _Worker(index, pid, read_fd)

    def _be_worker(self, parent: int, ready_fd: int) -> None:
        status = 1
        try:
            for worker in self.workers.values():   # the parent's ends still open
                if worker.ready_fd >= 0:
                    os.close(worker.ready_fd)
            _die_with(parent)
            stop = StopSignals().install()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

            def ready() -> None:
                os.write(ready_fd, b"1")
                os.close(ready_fd)
            own = self.listening[self._index]
            for sock in self.listening:
                if sock is not own:
                    sock.close()
            status = self.run_worker(own, stop, ready)
        except BaseException:   # the worker must end here, never return into the parent's code
            LOG.exception("Worker failed")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _read_ready(self, workers: list[_Worker] | None = None) -> None:
        waiting = {w.ready_fd: w for w in (workers or self.workers.values()) if not w.ready}
        if not waiting:
            return
        readable, _, _ = select.select(list(waiting), [], [], 0)
        for fd in readable:
            if os.read(fd, 1):
                waiting[fd].ready = True
                # Closed, and forgotten: a worker forked later must not close the number
                # again, by then another file's (its own ready pipe, say).
                waiting[fd].ready_fd = -1
                os.close(fd)

    def _reap(self) -> Iterator[tuple[int, int]]:
        while self.workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.workers:
                yield pid, status

    def _stop_all(self) -> None:
        for sock in self.listening:   # draining workers close theirs: new clients are refused
            sock.close()
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while self.workers and time.monotonic() < deadline:
            for pid, status in self._reap():
                worker = self.workers.pop(pid)
                if status != 0:
                    LOG.warning("Worker %d (pid %d) %s while stopping", worker.index, pid,
                                describe_status(status))
            time.sleep(0.05)
        for pid in self.workers:
            LOG.warning("Worker pid %d still running %gs after SIGTERM; killing it", pid,
                        self.stop_timeout_s)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        for worker in self.workers.values():
            with contextlib.suppress(OSError):
                os.close(worker.ready_fd)
        self.workers.clear()


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Hold SIGTERM/SIGINT across the fork: a new worker gets them only once its own
    handlers are installed, the parent once it is back in its loop."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _die_with(parent: int) -> None:
    """Have the kernel send SIGTERM to this worker when ``parent`` dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:   # the parent died before prctl
        os.kill(os.getpid(), signal.SIGTERM)
