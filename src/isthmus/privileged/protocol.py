"""The daemon's wire format: length-prefixed binary frames with hard size limits.

Every frame is a 4-byte big-endian payload length followed by the payload.
A payload starts with a version byte and a kind byte; the rest depends on
the kind. Strings are UTF-8 (surrogateescape, so any argv survives), byte
strings travel as they are: no JSON, no base64, nothing executable. A
length over the receiver's limit is refused before any of it is read.

Conversation: on connect the daemon sends HELLO (accepted or why not);
then the client sends EXEC or NETNS requests, one at a time per
connection, each answered by one REPLY with the same request id.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

from isthmus.privileged.exceptions import ProtocolError

VERSION = 1
MAX_REQUEST_BYTES = 8 * 1024 * 1024
MAX_REPLY_BYTES = 64 * 1024 * 1024
MAX_ARGS = 4096

_LENGTH = struct.Struct("!I")
_HEAD = struct.Struct("!BB")


class Kind(IntEnum):
    """The type of a frame on the daemon's socket."""

    HELLO = 1
    EXEC = 2
    NETNS = 3
    REPLY = 4


class Status(IntEnum):
    """Outcome of a request, as the daemon reports it."""

    OK = 0
    NOT_ALLOWED = 1
    EXECUTABLE_NOT_FOUND = 2
    TIMEOUT = 3
    BAD_REQUEST = 4
    UNAUTHORIZED = 5
    BUSY = 6
    INTERNAL_ERROR = 7
    FAILED = 8
    OVER_LIMIT = 9  # this uid already has its share of connections or running commands


class NetnsOp(IntEnum):
    """What a :class:`NetnsRequest` asks for."""

    LIST = 1
    ADD = 2
    DELETE = 3


@dataclass(frozen=True)
class Hello:
    """The daemon's first frame: whether it accepts this client, and why not."""

    status: Status
    message: str = ""


@dataclass(frozen=True)
class ExecRequest:
    """Run ``argv`` (checked against the filters) with ``stdin``; killed after ``timeout_ms``
    (0: no timeout)."""

    request_id: int
    argv: list[str]
    stdin: bytes | None = None
    timeout_ms: int = 0


@dataclass(frozen=True)
class NetnsRequest:
    """List, add or delete a network namespace."""

    request_id: int
    op: NetnsOp
    name: str = ""


@dataclass(frozen=True)
class Reply:
    """The answer to one request, matched to it by ``request_id``."""

    request_id: int
    status: Status
    returncode: int = 0
    stdout: bytes = b""
    stderr: bytes = b""
    message: str = ""


Message = Hello | ExecRequest | NetnsRequest | Reply


def encode(message: Message) -> bytes:
    """The full frame (length prefix included) for one message."""
    out = bytearray(_LENGTH.size)
    if isinstance(message, Hello):
        out += _HEAD.pack(VERSION, Kind.HELLO)
        out.append(message.status)
        _put_str(out, message.message)
    elif isinstance(message, ExecRequest):
        out += _HEAD.pack(VERSION, Kind.EXEC)
        out += struct.pack("!IIBH", message.request_id, message.timeout_ms,
                           message.stdin is not None, len(message.argv))
        for word in message.argv:
            _put_str(out, word)
        if message.stdin is not None:
            _put_bytes(out, message.stdin)
    elif isinstance(message, NetnsRequest):
        out += _HEAD.pack(VERSION, Kind.NETNS)
        out += struct.pack("!IB", message.request_id, message.op)
        _put_str(out, message.name)
    else:
        out += _HEAD.pack(VERSION, Kind.REPLY)
        out += struct.pack("!IBi", message.request_id, message.status, message.returncode)
        _put_bytes(out, message.stdout)
        _put_bytes(out, message.stderr)
        _put_str(out, message.message)
    _LENGTH.pack_into(out, 0, len(out) - _LENGTH.size)
    return bytes(out)


def decode(payload: bytes) -> Message:
    """Parse one payload (without its length prefix); ProtocolError if malformed."""
    reader = _Reader(payload)
    version, kind = reader.unpack(_HEAD)
    if version != VERSION:
        raise ProtocolError(f"unsupported protocol version {version}, expected {VERSION}")
    try:
        if kind == Kind.HELLO:
            message: Message = Hello(Status(reader.byte()), reader.string())
        elif kind == Kind.EXEC:
            request_id, timeout_ms, has_stdin, argc = reader.unpack(struct.Struct("!IIBH"))
            if argc > MAX_ARGS:
                raise ProtocolError(f"{argc} arguments, at most {MAX_ARGS} allowed")
            argv = [reader.string() for _ in range(argc)]
            stdin = reader.blob() if has_stdin else None
            message = ExecRequest(request_id, argv, stdin, timeout_ms)
        elif kind == Kind.NETNS:
            request_id, op = reader.unpack(struct.Struct("!IB"))
            message = NetnsRequest(request_id, NetnsOp(op), reader.string())
        elif kind == Kind.REPLY:
            request_id, status, returncode = reader.unpack(struct.Struct("!IBi"))
            message = Reply(request_id, Status(status), returncode,
                            reader.blob(), reader.blob(), reader.string())
        else:
            raise ProtocolError(f"unknown message kind {kind}")
    except ValueError as exc:  # an enum value out of range
        raise ProtocolError(f"invalid field: {exc}") from None
    reader.finish()
    return message


def send_message(sock: socket.socket, message: Message) -> None:
    """Encode ``message`` as one frame and send all of it."""
    sock.sendall(encode(message))


class FrameReader:
    """Buffered frame reader for one connection: one recv per frame in the common case.

    A request or reply usually fits one recv (length and payload
    together), so the hot path makes one system call. `body_timeout_s`
    bounds how long a frame may take to complete once its first byte has
    arrived (an idle connection may wait forever between frames).
    """

    def __init__(self, sock: socket.socket, max_bytes: int, body_timeout_s: float | None = None) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s
        self.buffer = bytearray()
        self._deadline: float | None = None

    def pending(self) -> bool:
        """True if bytes of a next frame are already buffered."""
        return bool(self.buffer)

    def read_message(self) -> Message | None:
        """The next decoded message, or None on a clean EOF between frames."""
        payload = self.read_frame()
        return None if payload is None else decode(payload)

    def read_frame(self) -> bytes | None:
        """The next payload, or None on a clean EOF between frames."""
        self._deadline = None
        if len(self.buffer) < _LENGTH.size and not self._fill(_LENGTH.size, allow_eof=True):
            return None
        (length,) = _LENGTH.unpack_from(self.buffer)
        if length > self.max_bytes:
            raise ProtocolError(f"frame of {length} bytes exceeds the limit of {self.max_bytes} bytes")
        if length < _HEAD.size:
            raise ProtocolError(f"frame of {length} bytes is too short to hold a message")
        end = _LENGTH.size + length
        if len(self.buffer) < end:
            self._fill(end, allow_eof=False)
        payload = bytes(self.buffer[_LENGTH.size : end])
        del self.buffer[:end]
        return payload

    def _fill(self, size: int, *, allow_eof: bool) -> bool:
        while len(self.buffer) < size:
            if self.buffer and self.body_timeout_s is not None:
                self._wait_readable()
            chunk = self.sock.recv(min(max(size - len(self.buffer), 65536), 1 << 20))
            if not chunk:
                if allow_eof and not self.buffer:
                    return False
                raise ProtocolError(
                    f"connection closed with {size - len(self.buffer)} bytes of the frame missing"
                )
            self.buffer += chunk
        return True

    def _wait_readable(self) -> None:
        import select
        import time

        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + (self.body_timeout_s or 0.0)
        remaining = self._deadline - now
        poller = select.poll()
        poller.register(self.sock, select.POLLIN)
        if remaining <= 0 or not poller.poll(remaining * 1000):
            raise ProtocolError(f"frame not completed within {self.body_timeout_s:g} s")


def _put_bytes(out: bytearray, data: bytes) -> None:
    out += _LENGTH.pack(len(data))
    out += data


def _put_str(out: bytearray, text: str) -> None:
    _put_bytes(out, text.encode("utf-8", "surrogateescape"))


class _Reader:
    """Bounds-checked cursor over a payload."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def unpack(self, layout: struct.Struct) -> tuple:
        end = self.offset + layout.size
        if end > len(self.data):
            raise ProtocolError(f"payload truncated: needed {layout.size} bytes at offset {self.offset}")
        values = layout.unpack_from(self.data, self.offset)
        self.offset = end
        return values

    def byte(self) -> int:
        return self.unpack(_BYTE)[0]

    def blob(self) -> bytes:
        (size,) = self.unpack(_LENGTH)
        end = self.offset + size
        if end > len(self.data):
            raise ProtocolError(f"field of {size} bytes runs past the end of the payload")
        value = bytes(self.data[self.offset : end])
        self.offset = end
        return value

    def string(self) -> str:
        try:
            return self.blob().decode("utf-8", "surrogateescape")
        except UnicodeDecodeError as exc:  # pragma: no cover - surrogateescape never fails
            raise ProtocolError(f"invalid text field: {exc}") from None

    def finish(self) -> None:
        if self.offset != len(self.data):
            raise ProtocolError(f"{len(self.data) - self.offset} unexpected bytes after the message")


_BYTE = struct.Struct("!B")
