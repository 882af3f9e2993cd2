"""`Client`: run allowed commands as root through the daemon.

One Client is safe to share between threads and does not serialize them:
each call borrows a connection from a small pool (opening one if none is
idle), so N threads run N commands at once. If the daemon is not running
the client starts it (directly when we are root, else through `sudo -n`);
if the daemon restarted, dead pooled connections are noticed before use and
replaced. A call whose connection breaks after the request was sent raises
ConnectionLost and is never re-sent: the command may have run.
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Sequence

from isthmus.privileged import protocol
from isthmus.privileged.auth import peer_credentials
from isthmus.privileged.config import DEFAULT_CONFIG_PATH, DEFAULT_SOCKET_PATH
from isthmus.privileged.exceptions import (
    CallerLimitExceeded,
    CommandFailed,
    CommandTimeout,
    ConnectionLost,
    DaemonError,
    DaemonStartError,
    ExecutableNotFound,
    NotAllowed,
    PeerNotAuthorized,
    ProtocolError,
)
from isthmus.privileged.ini import parse_ini

_MAX_IDLE_CONNECTIONS = 16
_REPLY_GRACE_S = 10.0


@dataclass(frozen=True)
class ExecResult:
    """Outcome of a command: exit code (-N if killed by signal N) and raw output."""

    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def stdout_text(self) -> str:
        """stdout as text; bytes that are not UTF-8 are kept (surrogateescape)."""
        return self.stdout.decode("utf-8", "surrogateescape")

    @property
    def stderr_text(self) -> str:
        """stderr as text; bytes that are not UTF-8 are kept (surrogateescape)."""
        return self.stderr.decode("utf-8", "surrogateescape")


class Client:
    """Connection to the privileged daemon.

    `socket_path` defaults to `daemon_socket` from `config_path` (or
    /run/isthmus/rootwrap.sock). `start_command` overrides how the daemon is
    started; `autostart=False` only connects.
    """

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        config_path: str = DEFAULT_CONFIG_PATH,
        start_command: Sequence[str] | None = None,
        autostart: bool = True,
        start_timeout_s: float = 15.0,
    ) -> None:
        configured = _configured_socket(config_path)
        self.socket_path = socket_path or configured or DEFAULT_SOCKET_PATH
        self.config_path = config_path
        self.autostart = autostart
        self.start_timeout_s = start_timeout_s
        self._start_command = list(start_command) if start_command else None
        self._pass_socket = socket_path is not None and socket_path != configured
        self._idle: list[_Connection] = []
        self._pool_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._closed = False

    # -- public API ----------------------------------------------------------

    def execute(
        self,
        cmd: Sequence[str],
        stdin: bytes | str | None = None,
        timeout: float | None = None,
        check: bool = True,
    ) -> ExecResult:
        """Run `cmd` as allowed by the daemon's filters and return its result.

        Raises NotAllowed (filters refused it), ExecutableNotFound,
        CommandTimeout (killed after `timeout` seconds, or the daemon's
        default when None; the daemon caps it at its maximum), CommandFailed
        (non-zero exit and `check`), or a DaemonError subclass
        (CallerLimitExceeded when this uid already runs its share).
        """
        argv = [os.fsdecode(word) for word in cmd]
        data = stdin.encode() if isinstance(stdin, str) else stdin
        # The wire field is 32 bits; the daemon caps it far below that anyway.
        timeout_ms = 0 if timeout is None else min(0xFFFFFFFF, max(1, int(timeout * 1000)))
        request = protocol.ExecRequest(next(self._ids) & 0xFFFFFFFF, argv, data, timeout_ms)
        # The daemon enforces `timeout`; our own deadline only guards
        # against a daemon that stopped answering altogether.
        reply = self._call(request, None if timeout is None else timeout + _REPLY_GRACE_S)
        result = ExecResult(reply.returncode, reply.stdout, reply.stderr)
        Status = protocol.Status
        if reply.status == Status.OK:
            if check and result.returncode != 0:
                raise CommandFailed(argv, result)
            return result
        if reply.status == Status.NOT_ALLOWED:
            raise NotAllowed(argv, reply.message or "no filter matched")
        if reply.status == Status.EXECUTABLE_NOT_FOUND:
            exec_path, filter_name, detail = (reply.message.split("\0") + ["", "", ""])[:3]
            raise ExecutableNotFound(exec_path, filter_name, detail)
        if reply.status == Status.TIMEOUT:
            raise CommandTimeout(argv, timeout or 0.0, result)
        raise DaemonError(f"daemon could not run {argv!r}: {reply.message} (status {reply.status.name})")

    def list_netns(self) -> list[str]:
        """Network namespace names, read in the daemon without spawning `ip`."""
        return self._netns(protocol.NetnsOp.LIST).stdout_text.split()

    def add_netns(self, name: str) -> None:
        """Create a network namespace in the daemon (authorized as `ip netns add NAME`)."""
        self._netns(protocol.NetnsOp.ADD, name)

    def delete_netns(self, name: str) -> None:
        """Delete a network namespace in the daemon (authorized as `ip netns delete NAME`)."""
        self._netns(protocol.NetnsOp.DELETE, name)

    def close(self) -> None:
        """Close pooled connections; the daemon keeps running until its idle timeout."""
        with self._pool_lock:
            idle, self._idle = self._idle, []
            self._closed = True
        for conn in idle:
            conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------

    def _netns(self, op: protocol.NetnsOp, name: str = "") -> ExecResult:
        reply = self._call(protocol.NetnsRequest(next(self._ids) & 0xFFFFFFFF, op, name))
        argv = ["ip", "netns", op.name.lower()] + ([name] if name else [])
        result = ExecResult(reply.returncode, reply.stdout, reply.stderr)
        if reply.status == protocol.Status.NOT_ALLOWED:
            raise NotAllowed(argv, reply.message or "no filter matched")
        if reply.status != protocol.Status.OK:
            raise DaemonError(f"daemon could not run {argv!r}: {reply.message}")
        if result.returncode != 0:
            raise CommandFailed(argv, result)
        return result

    def _call(
        self, request: protocol.ExecRequest | protocol.NetnsRequest, reply_timeout_s: float | None = None
    ) -> protocol.Reply:
        frame = protocol.encode(request)
        if len(frame) - 4 > protocol.MAX_REQUEST_BYTES:
            raise ProtocolError(
                f"request of {len(frame)} bytes exceeds the daemon's limit of "
                f"{protocol.MAX_REQUEST_BYTES} bytes; pass less stdin"
            )
        reply = self._send_and_receive(request, frame, reply_timeout_s)
        if reply.status == protocol.Status.BUSY:
            # Refused before running (the daemon is exiting): safe to resend
            # once; a new daemon is started if needed.
            reply = self._send_and_receive(request, frame, reply_timeout_s)
        if reply.status == protocol.Status.OVER_LIMIT:
            raise CallerLimitExceeded(reply.message)
        return reply

    def _send_and_receive(
        self,
        request: protocol.ExecRequest | protocol.NetnsRequest,
        frame: bytes,
        reply_timeout_s: float | None,
    ) -> protocol.Reply:
        conn = self._acquire()
        try:
            conn.sock.sendall(frame)
        except OSError:
            # The daemon cannot have read a complete request from a socket
            # that failed mid-send, so one fresh attempt is safe.
            conn.close()
            conn = self._connect()
            try:
                conn.sock.sendall(frame)
            except OSError as exc:
                conn.close()
                raise ConnectionLost(f"cannot send to the daemon at {self.socket_path}: {exc}") from None
        try:
            if reply_timeout_s is not None:
                conn.sock.settimeout(reply_timeout_s)
            reply = conn.reader.read_message()
            if reply_timeout_s is not None:
                conn.sock.settimeout(None)
        except (OSError, ProtocolError) as exc:
            conn.close()
            raise ConnectionLost(
                f"lost the daemon at {self.socket_path} during the call ({exc}); "
                "the command may or may not have run and was not retried"
            ) from None
        if reply is None or not isinstance(reply, protocol.Reply):
            conn.close()
            raise ConnectionLost(
                f"the daemon at {self.socket_path} closed the connection during the call; "
                "the command may or may not have run and was not retried"
            )
        if reply.status == protocol.Status.BAD_REQUEST or reply.request_id != request.request_id:
            conn.close()
            raise DaemonError(f"daemon rejected the request: {reply.message or 'mismatched reply id'}")
        if reply.status == protocol.Status.BUSY:
            conn.close()
        else:
            self._release(conn)
        return reply

    def _acquire(self) -> _Connection:
        while True:
            with self._pool_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if _still_open(conn):
                return conn
            conn.close()  # the daemon restarted or timed out: try the next one

    def _release(self, conn: _Connection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def _connect(self) -> _Connection:
        try:
            return self._open_connection()
        except (FileNotFoundError, ConnectionRefusedError):
            if not self.autostart:
                raise DaemonError(
                    f"no daemon listening on {self.socket_path}; start isthmus-rootwrap-daemon "
                    "or create the Client with autostart=True"
                ) from None
        with self._start_lock:
            try:  # another thread may have started it meanwhile
                return self._open_connection()
            except (FileNotFoundError, ConnectionRefusedError):
                self._start_daemon()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                return self._open_connection()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                if time.monotonic() > deadline:
                    raise DaemonStartError(f"daemon started but {self.socket_path} refuses connections: {exc}") from None
                time.sleep(0.02)

    def _open_connection(self) -> _Connection:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            conn.connect(self.socket_path)
            server_uid = peer_credentials(conn).uid
            if server_uid not in (0, os.geteuid()):
                # Whoever listens there is not root: do not hand it our
                # commands (or their stdin, which may hold secrets).
                raise DaemonError(
                    f"{self.socket_path} is served by uid {server_uid}, not root; refusing to use it"
                )
            conn.settimeout(self.start_timeout_s)
            connection = _Connection(conn)
            hello = connection.reader.read_message()
            conn.settimeout(None)
        except BaseException:
            conn.close()
            raise
        if not isinstance(hello, protocol.Hello):
            conn.close()
            raise DaemonError(f"unexpected greeting from {self.socket_path}: {hello!r}")
        if hello.status == protocol.Status.UNAUTHORIZED:
            conn.close()
            raise PeerNotAuthorized(hello.message)
        if hello.status == protocol.Status.OVER_LIMIT:
            conn.close()
            raise CallerLimitExceeded(hello.message)
        if hello.status != protocol.Status.OK:
            conn.close()
            raise DaemonError(f"daemon at {self.socket_path} refused the connection: {hello.message}")
        return connection

    def _start_command_line(self) -> list[str]:
        if self._start_command:
            return list(self._start_command)
        extra = ["--socket", self.socket_path] if self._pass_socket else []
        if os.geteuid() == 0:
            return [sys.executable, "-m", "isthmus.privileged.daemon", self.config_path, *extra]
        script = os.path.join(os.path.dirname(sys.executable), "isthmus-rootwrap-daemon")
        return ["sudo", "-n", script, self.config_path, *extra]

    def _start_daemon(self) -> None:
        command = self._start_command_line()
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise DaemonStartError(f"cannot run {command[0]}: {exc.strerror}") from None
        assert process.stdout is not None
        line = _read_line(process.stdout, self.start_timeout_s)
        process.stdout.close()
        exit_code = process.poll()
        # Reap it whenever it exits, so it never lingers as a zombie.
        threading.Thread(target=process.wait, name="isthmus-rootwrap-daemon-reaper", daemon=True).start()
        if line.startswith("ready"):
            return
        if line.startswith("error "):
            raise DaemonStartError(f"daemon failed to start ({' '.join(command)}): {line[6:]}")
        if exit_code is not None:
            raise DaemonStartError(
                f"daemon exited with code {exit_code} before becoming ready ({' '.join(command)}); "
                "its stderr says why; if started through sudo, check the sudoers line in docs/privileged.md"
            )
        raise DaemonStartError(
            f"daemon did not report ready within {self.start_timeout_s:g} s ({' '.join(command)}); "
            "if started through sudo, check the sudoers line in docs/privileged.md"
        )


def _configured_socket(config_path: str) -> str | None:
    """daemon_socket from rootwrap.conf if we can read it; callers need not be root."""
    try:
        with open(config_path, encoding="utf-8") as handle:
            section = parse_ini(handle.read()).sections.get("DEFAULT")
    except (OSError, UnicodeDecodeError):
        return None
    entry = section.entries.get("daemon_socket") if section else None
    return entry.value.strip() if entry else None


class _Connection:
    """One pooled connection: the socket and its buffered frame reader."""

    __slots__ = ("sock", "reader")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = protocol.FrameReader(sock, protocol.MAX_REPLY_BYTES)

    def close(self) -> None:
        self.sock.close()


def _still_open(conn: _Connection) -> bool:
    """An idle connection with anything readable has been closed by the daemon."""
    if conn.reader.pending():
        return False
    poller = select.poll()
    poller.register(conn.sock, select.POLLIN)
    return not poller.poll(0)


def _read_line(stream, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    data = b""
    fd = stream.fileno()
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8", "replace")
