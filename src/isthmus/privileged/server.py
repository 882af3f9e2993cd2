"""The daemon's server: the socket, the accept loop, per-uid limits, dispatch and shutdown.

Each connection gets a thread and runs its requests one at a time;
connections run in parallel with no lock around execution. A request is
checked against the filters, run without a shell in a clean environment,
and answered with exit code, stdout and stderr; one audit line per
request. Bad frames close only their own connection.

No caller can hold the daemon hostage: every command has a timeout (the
caller's, capped at `daemon_command_timeout_max`), is killed with its
process group as soon as its caller disconnects, and each non-root uid has
its own cap on connections and on running commands, below a global cap
that keeps a reserve for root. Who may connect is `auth`'s question.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import socket
import stat
import threading
import time

from isthmus.privileged import protocol
from isthmus.privileged.auth import Caller, is_allowed, peer_credentials
from isthmus.privileged.audit import audit_line, escape_for_log
from isthmus.privileged.config import RootwrapConfig, load_config
from isthmus.privileged.exceptions import ConfigError, ExecutableNotFound, NotAllowed, ProtocolError
from isthmus.privileged.execution import check_executables, child_environment, run
from isthmus.privileged.filterfile import FilterSet, load_filters
from isthmus.privileged.filters import match_command
from isthmus.privileged.trust import untrusted_reason

LOG = logging.getLogger("isthmus.privileged.daemon")  # the name operators filter on

MAX_CONNECTIONS = 256
# Connections only root may open: others together stop at 256 - 16.
ROOT_RESERVED_CONNECTIONS = 16
FRAME_BODY_TIMEOUT_S = 30.0
SHUTDOWN_GRACE_S = 30.0


class AlreadyRunning(Exception):
    """Another daemon holds the lock for this socket path."""


class Daemon:
    """The server: socket, authentication, dispatch, idle timeout, shutdown."""

    def __init__(self, config: RootwrapConfig, filter_set: FilterSet, socket_path: str | None = None) -> None:
        self.config = config
        self.filter_set = filter_set
        self.socket_path = socket_path or config.daemon_socket
        self.audit = logging.getLogger("isthmus.privileged.audit")
        self._listener: socket.socket | None = None
        self._lock_fd: int | None = None
        self._socket_inode: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._state = threading.Lock()
        self._connections: dict[socket.socket, bool] = {}  # conn -> busy
        self._connections_by_uid: dict[int, int] = {}
        self._commands_by_uid: dict[int, int] = {}
        self._filter_paths = _absolute_exec_paths(filter_set)
        self._threads: set[threading.Thread] = set()
        self._active_requests = 0
        self._last_activity = time.monotonic()
        self._reload_requested = False

    # -- lifecycle ---------------------------------------------------------

    def listen(self) -> None:
        """Create the socket directory, take the lock, bind and listen."""
        directory = os.path.dirname(self.socket_path) or "/"
        os.makedirs(directory, mode=0o755, exist_ok=True)
        reason = untrusted_reason(os.path.realpath(directory)) if os.geteuid() == 0 else None
        if reason:
            raise OSError(errno.EPERM, f"refusing socket directory: {reason}")
        lock_path = self.socket_path + ".lock"
        self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise AlreadyRunning(self.socket_path) from None
        try:
            st = os.lstat(self.socket_path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise OSError(errno.EEXIST, f"{self.socket_path} exists and is not a socket; remove it")
            os.unlink(self.socket_path)  # stale: we hold the lock, so nobody serves it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind(self.socket_path)
        # Anyone may connect; who gets served is decided by SO_PEERCRED.
        os.chmod(self.socket_path, 0o666)
        st = os.stat(self.socket_path)
        self._socket_inode = (st.st_dev, st.st_ino)
        listener.listen(128)
        self._listener = listener

    def request_stop(self) -> None:
        """Ask the accept loop to stop (signal-safe)."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def request_reload(self) -> None:
        """Reload the filters at the next turn of the loop (safe from a signal handler)."""
        self._reload_requested = True
        try:
            os.write(self._wake_w, b"r")
        except OSError:
            pass

    def serve_forever(self) -> int:
        """Accept connections until stopped or idle for daemon_timeout seconds."""
        assert self._listener is not None, "call listen() first"
        poller = select.poll()
        poller.register(self._listener.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        idle_limit = self.config.daemon_timeout
        while not self._stop.is_set():
            events = poller.poll(1000 if idle_limit > 0 else None)
            for fd, _ in events:
                if fd == self._wake_r:
                    _drain(self._wake_r)
                elif fd == self._listener.fileno():
                    self._accept()
            if self._reload_requested:
                self._reload_requested = False
                self._reload_config_and_filters()
            if idle_limit > 0 and self._idle_for() >= idle_limit:
                LOG.info("no request for %d s; exiting (daemon_timeout)", idle_limit)
                break
        self._shutdown()
        return 0

    def _idle_for(self) -> float:
        with self._state:
            if self._active_requests:
                return 0.0
            return time.monotonic() - self._last_activity

    def _reload_config_and_filters(self) -> None:
        """SIGHUP: re-read rootwrap.conf and the filter files, with the same trust checks as at start."""
        try:
            config = load_config(self.config.path)
        except ConfigError as exc:
            LOG.error("reload refused, keeping the previous configuration and filters: %s", exc)
            return
        for warning in config.warnings:
            LOG.warning("%s", warning)
        filter_set = load_filters(config.filters_path)
        for problem in filter_set.problems:
            LOG.warning("filter file problem: %s", problem)
        # The socket and idle timeout stay as started; exec_dirs, users, limits and filters change.
        config.daemon_socket, config.daemon_timeout = self.config.daemon_socket, self.config.daemon_timeout
        self.config, self.filter_set = config, filter_set
        self._filter_paths = _absolute_exec_paths(filter_set)
        LOG.info("reloaded %s and %d filters from %d files", config.path, len(filter_set.filters),
                 len(filter_set.files))

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:  # EMFILE and friends: keep serving the others
            LOG.warning("accept failed: %s", exc)
            time.sleep(0.01)
            return
        thread = threading.Thread(target=self._serve_connection, args=(conn,), daemon=True)
        with self._state:
            self._threads.add(thread)
        thread.start()

    def _shutdown(self) -> None:
        """Stop listening, remove the socket, let running requests finish."""
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        self._remove_socket()
        with self._state:
            for conn, busy in self._connections.items():
                if not busy:
                    _shutdown_socket(conn)
            threads = list(self._threads)
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _remove_socket(self) -> None:
        # Only our own socket: a newer daemon may already own the path.
        try:
            st = os.lstat(self.socket_path)
            if (st.st_dev, st.st_ino) == self._socket_inode:
                os.unlink(self.socket_path)
        except OSError:
            pass

    # -- one connection ----------------------------------------------------

    def _serve_connection(self, conn: socket.socket) -> None:
        caller: Caller | None = None
        try:
            with conn:
                caller = peer_credentials(conn)
                refusal = self._refuse_peer(conn, caller)
                if refusal is not None:
                    status, message = refusal
                    verdict = "over-limit" if status == protocol.Status.OVER_LIMIT else "connection-refused"
                    self.audit.warning(
                        "uid=%d pid=%d verdict=%s reason=%s", caller.uid, caller.pid, verdict, escape_for_log(message)
                    )
                    protocol.send_message(conn, protocol.Hello(status, message))
                    return
                protocol.send_message(conn, protocol.Hello(protocol.Status.OK))
                self._request_loop(conn, caller)
        except OSError as exc:
            # The client vanished (EPIPE, ECONNRESET): nothing to answer.
            LOG.debug("connection closed: %s", exc)
        except Exception:  # noqa: BLE001 - one bad connection must not take the daemon down
            LOG.exception("unexpected error while serving a connection")
        finally:
            with self._state:
                if self._connections.pop(conn, None) is not None and caller is not None:
                    _decrement(self._connections_by_uid, caller.uid)
                self._threads.discard(threading.current_thread())

    def _refuse_peer(self, conn: socket.socket, caller: Caller) -> tuple[protocol.Status, str] | None:
        config = self.config
        if not is_allowed(conn, caller, config):
            return protocol.Status.UNAUTHORIZED, (
                f"uid {caller.uid} (gid {caller.gid}) is not allowed to use this daemon; "
                f"add the user to daemon_allowed_users or a group to daemon_allowed_groups in {config.path}"
            )
        with self._state:
            if self._stop.is_set():
                return protocol.Status.BUSY, "daemon is shutting down; retry"
            limit = MAX_CONNECTIONS if caller.uid == 0 else MAX_CONNECTIONS - ROOT_RESERVED_CONNECTIONS
            if len(self._connections) >= limit:
                return protocol.Status.BUSY, (
                    f"too many connections ({limit} for non-root callers, {MAX_CONNECTIONS} in all); retry later"
                )
            mine = self._connections_by_uid.get(caller.uid, 0)
            if caller.uid != 0 and mine >= config.daemon_max_connections_per_user:
                return protocol.Status.OVER_LIMIT, (
                    f"uid {caller.uid} already has {mine} connections open, the limit per uid "
                    f"(daemon_max_connections_per_user in {config.path}); close idle connections "
                    "or raise the limit"
                )
            self._connections[conn] = False
            self._connections_by_uid[caller.uid] = mine + 1
        return None

    def _request_loop(self, conn: socket.socket, caller: Caller) -> None:
        reader = protocol.FrameReader(conn, protocol.MAX_REQUEST_BYTES, FRAME_BODY_TIMEOUT_S)
        while not self._stop.is_set():
            try:
                payload = reader.read_frame()
                if payload is None:
                    return
                message = protocol.decode(payload)
                if not isinstance(message, (protocol.ExecRequest, protocol.NetnsRequest)):
                    raise ProtocolError(f"expected a request, got {type(message).__name__}")
            except ProtocolError as exc:
                self.audit.warning("uid=%d pid=%d verdict=bad-request reason=%s", caller.uid, caller.pid,
                                   escape_for_log(str(exc)))
                protocol.send_message(conn, protocol.Reply(0, protocol.Status.BAD_REQUEST, message=str(exc)))
                return  # framing cannot be trusted any more: drop this connection only
            with self._state:
                if self._stop.is_set():
                    # Shutting down: refuse *before* running, so the client
                    # knows the command did not run and may retry elsewhere.
                    protocol.send_message(conn, protocol.Reply(
                        message.request_id, protocol.Status.BUSY,
                        message="daemon is shutting down; the command was not run"))
                    return
                running = self._commands_by_uid.get(caller.uid, 0)
                over_limit = caller.uid != 0 and running >= self.config.daemon_max_commands_per_user
                if not over_limit:
                    self._connections[conn] = True
                    self._commands_by_uid[caller.uid] = running + 1
                    self._active_requests += 1
                self._last_activity = time.monotonic()
            if over_limit:
                protocol.send_message(conn, self._over_command_limit(caller, message, running))
                continue
            try:
                if isinstance(message, protocol.ExecRequest):
                    reply = self.execute(caller, message, conn.fileno())
                else:
                    reply = self.netns(caller, message)
            finally:
                with self._state:
                    self._connections[conn] = False
                    _decrement(self._commands_by_uid, caller.uid)
                    self._active_requests -= 1
                    self._last_activity = time.monotonic()
            protocol.send_message(conn, reply)

    def _over_command_limit(
        self, caller: Caller, request: protocol.ExecRequest | protocol.NetnsRequest, running: int
    ) -> protocol.Reply:
        """Refuse, without running it, a request from a uid already at its limit."""
        argv = request.argv if isinstance(request, protocol.ExecRequest) else ["ip", "netns", request.op.name.lower()]
        self._audit(caller, argv, "over-limit", "-", None, time.perf_counter())
        return protocol.Reply(request.request_id, protocol.Status.OVER_LIMIT, message=(
            f"uid {caller.uid} already runs {running} commands, the limit per uid "
            f"(daemon_max_commands_per_user in {self.config.path}); the command was not run, "
            "wait for the others or raise the limit"
        ))

    def _timeout_s(self, requested_ms: int) -> float:
        """The caller's timeout, or the default when it gave none, never above the maximum."""
        config = self.config
        requested_s = requested_ms / 1000 if requested_ms else config.daemon_command_timeout
        return min(requested_s, config.daemon_command_timeout_max)

    # -- requests ----------------------------------------------------------

    def execute(self, caller: Caller, request: protocol.ExecRequest, client_fd: int | None = None) -> protocol.Reply:
        """Check one command against the filters and run it; killed if `client_fd` hangs up."""
        started = time.perf_counter()
        argv = request.argv
        Status = protocol.Status
        config = self.config
        try:
            match = match_command(self.filter_set.filters, argv, config.exec_dirs)
            check_executables(match, config.exec_dirs, self._filter_paths)
        except NotAllowed as exc:
            self._audit(caller, argv, "refused", "-", None, started)
            return protocol.Reply(request.request_id, Status.NOT_ALLOWED, exc.exit_code, message=exc.reason)
        except ExecutableNotFound as exc:
            self._audit(caller, argv, "not-executable", exc.filter_name, None, started)
            # NUL-separated fields so the client can rebuild the same exception.
            detail = "\0".join((exc.exec_path, exc.filter_name, exc.detail))
            return protocol.Reply(request.request_id, Status.EXECUTABLE_NOT_FOUND, exc.exit_code,
                                  message=detail)
        env = child_environment(config.exec_dirs, match.env)
        timeout_s = self._timeout_s(request.timeout_ms)
        try:
            outcome = run(match, env, request.stdin, timeout_s, concurrent=self._active_requests > 1,
                          client_fd=client_fd)
        except OSError as exc:
            self._audit(caller, argv, "spawn-failed", match.filter_name, None, started)
            return protocol.Reply(request.request_id, Status.FAILED, 126,
                                  message=f"cannot execute {match.command[0]}: {exc.strerror}")
        if outcome.client_gone:
            verdict, status, message = "client-gone", Status.FAILED, "the caller disconnected; command killed"
        elif outcome.timed_out:
            verdict, status, message = "timeout", Status.TIMEOUT, f"killed after {timeout_s:g} s"
        elif outcome.output_truncated:
            verdict, status, message = "output-too-large", Status.FAILED, "output exceeded the limit; command killed"
        else:
            verdict, status, message = "allowed", Status.OK, ""
        self._audit(caller, argv, verdict, match.filter_name, outcome.returncode, started)
        return protocol.Reply(request.request_id, status, outcome.returncode,
                              outcome.stdout, outcome.stderr, message)

    def netns(self, caller: Caller, request: protocol.NetnsRequest) -> protocol.Reply:
        """Namespace fast path, authorized as the equivalent `ip netns` command."""
        from isthmus.privileged import netns

        started = time.perf_counter()
        argv = netns.equivalent_command(request.op, request.name)
        Status = protocol.Status
        try:
            match = match_command(self.filter_set.filters, argv, self.config.exec_dirs)
        except (NotAllowed, ExecutableNotFound) as exc:
            self._audit(caller, argv, "refused", "-", None, started, fast=True)
            return protocol.Reply(request.request_id, Status.NOT_ALLOWED, 99, message=str(exc))
        try:
            output = netns.perform(request.op, request.name)
        except netns.NetnsError as exc:
            self._audit(caller, argv, "allowed", match.filter_name, 1, started, fast=True)
            return protocol.Reply(request.request_id, Status.OK, 1, b"", f"{exc}\n".encode())
        self._audit(caller, argv, "allowed", match.filter_name, 0, started, fast=True)
        return protocol.Reply(request.request_id, Status.OK, 0, output)

    def _audit(
        self,
        caller: Caller,
        argv: list[str],
        verdict: str,
        filter_name: str,
        returncode: int | None,
        started: float,
        fast: bool = False,
    ) -> None:

        line = audit_line(uid=caller.uid, pid=caller.pid, argv=argv, verdict=verdict,
                          filter_name=filter_name + (" (in-process)" if fast else ""),
                          returncode=returncode, duration_s=time.perf_counter() - started)
        self.audit.log(logging.INFO if verdict == "allowed" else logging.WARNING, "%s", line)


def _absolute_exec_paths(filter_set: FilterSet) -> frozenset[str]:
    """Executables filters name by absolute path (checked like exec_dirs entries before each run)."""
    return frozenset(
        path for path in (getattr(f, "exec_path", "") for f in filter_set.filters) if path.startswith("/")
    )


def _decrement(counts: dict[int, int], uid: int) -> None:
    remaining = counts[uid] - 1
    if remaining:
        counts[uid] = remaining
    else:
        del counts[uid]


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _shutdown_socket(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
