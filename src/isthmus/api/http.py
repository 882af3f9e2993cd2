"""The API's HTTP/1.1 server: one thread per client connection, no hand-offs.

waitress reads requests in a poll loop, hands each to a worker thread, and
hands the answer back to the loop to send: three thread switches per request,
which cost more than Isthmus's own work on a ``GET`` (benchmarks/http_server.py
measures both on the same requests). Here the thread that reads a request runs
the application and writes the answer, and stays with its connection while it
is kept alive.

Defences kept from the waitress set-up (docs/api.md, Defences): at most
``connection_limit`` connections are open (beyond it clients wait in the listen
backlog); a connection silent for ``idle_timeout`` seconds, between requests or
part way through one, is closed; a request head larger than ``max_header_bytes``
gets 431; at most ``threads`` requests run the application at once, whatever
the number of connections (writing an answer, an event stream's included, is
not running it); header names with ``_`` are dropped (a client's
``X_Identity_Status`` must not pass for keystonemiddleware's
``X-Identity-Status``), and so are forwarding headers (no proxy is trusted).
The request body is read whole before the application
runs (``Content-Length`` or chunked, at most :data:`MAX_BODY_BYTES`;
``Expect: 100-continue`` is answered); framing a proxy in front could read
otherwise (both headers, other transfer codings, several lengths) is refused.
An answer without ``Content-Length`` is sent chunked and flushed piece by piece
(event streams); ``isthmus.client_disconnected`` in the environ tells a stream
that its client went away.
"""

from __future__ import annotations

import io
import json
import logging
import select
import socket
import sys
import threading
import time
from email.utils import formatdate
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes

LOG = logging.getLogger(__name__)

STACK_BYTES = 1 << 20
"""Stack of each connection thread: thousands of idle connections cost address space only."""

_STATUSES_WITHOUT_BODY = ("1", "204", "304")   # prefixes of status lines: 1xx, 204, 304
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade",
                         "proxy-connection", "te", "trailer"})
_UNTRUSTED = frozenset({"HTTP_FORWARDED", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
                        "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_PORT",
                        "HTTP_X_FORWARDED_BY"})
"""Forwarding headers: no proxy is trusted, so a client cannot claim another address,
host or scheme for the links in answers."""
_ERROR_TYPES = {"400": "HTTPBadRequest", "413": "HTTPRequestEntityTooLarge",
                "431": "HTTPRequestHeaderFieldsTooLarge", "501": "HTTPNotImplemented",
                "505": "HTTPVersionNotSupported"}
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (413 beyond), the application's own limit. Neutron
requests are a few kilobytes
(oslo.middleware's sizelimit allows 112 KiB); bodies are held in memory, one per
connection being read, so this bounds what slow senders can make the server hold."""


_TOO_LARGE = f"Request body is larger than {MAX_BODY_BYTES} bytes"


class _BadRequest(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Closed(Exception):
    """The client closed the connection, or was silent too long."""


class Connection:
    """One client: requests read, answered and kept alive by a single thread."""

    def __init__(self, server: HTTPServer, sock: socket.socket, address: Any) -> None:
        self.server, self.sock = server, sock
        self.remote = address if isinstance(address, tuple) else ("", 0)
        self.buffer = b""
        self.idle = True          # between requests: the drain may close it

    # -- reading -------------------------------------------------------------------------
    def _recv(self) -> bytes:
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, OSError):
            raise _Closed() from None
        if not data:
            raise _Closed()
        return data

    def _head(self) -> bytes:
        limit = self.server.max_header_bytes
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
                if len(head) > limit:
                    raise _BadRequest("431 Request Header Fields Too Large",
                                      "request line and headers are too large")
                return head
            if len(self.buffer) > limit:
                raise _BadRequest("431 Request Header Fields Too Large",
                                  "request line and headers are too large")
            data = self._recv()
            self.idle = False
            self.buffer += data

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self.buffer += self._recv()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > 4096:
                raise _BadRequest("400 Bad Request", "malformed chunked body")
            self.buffer += self._recv()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            try:
                size = int(self._line().split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("400 Bad Request", "malformed chunk size") from None
            if size == 0:
                while self._line():     # trailers, up to the empty line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY_BYTES:
                raise _BadRequest("413 Payload Too Large", _TOO_LARGE)
            parts.append(self._exactly(size))
            self._exactly(2)

    # -- one request ---------------------------------------------------------------------
    def _environ(self, head: bytes) -> tuple[dict[str, Any], bool]:
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise _BadRequest("400 Bad Request", "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise _BadRequest("505 HTTP Version Not Supported", "HTTP/1.x only")
        path, _, query = target.partition("?")
        if path.startswith(("http://", "https://")):     # absolute form
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        host, port = self.server.address
        env: dict[str, Any] = {
            "REQUEST_METHOD": method, "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"), "QUERY_STRING": query,
            "REQUEST_URI": target, "RAW_URI": target,
            "SERVER_NAME": host, "SERVER_PORT": str(port), "SERVER_PROTOCOL": version,
            "SERVER_SOFTWARE": "isthmus", "REMOTE_ADDR": str(self.remote[0]),
            "REMOTE_PORT": str(self.remote[1]) if len(self.remote) > 1 else "",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": self.server.multiprocess,
            "wsgi.run_once": False, "isthmus.client_disconnected": self._disconnected,
        }
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest("400 Bad Request", "malformed header line")
            if "_" in name:
                continue
            key = name.upper().replace("-", "_")
            value = value.strip()
            if key == "CONTENT_LENGTH" and env.get(key, value) != value:
                raise _BadRequest("400 Bad Request", "several Content-Length values")
            if key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                env[key] = value
                continue
            key = "HTTP_" + key
            if key in _UNTRUSTED:
                continue
            env[key] = f"{env[key]},{value}" if key in env else value
        connection = env.get("HTTP_CONNECTION", "").lower()
        keep_alive = ("close" not in connection if version == "HTTP/1.1"
                      else "keep-alive" in connection)
        return env, keep_alive

    def _body(self, env: dict[str, Any]) -> bytes:
        # Framing a proxy in front could read otherwise is refused (request smuggling):
        # both Content-Length and Transfer-Encoding, codings other than "chunked",
        # several Content-Length values.
        coding = env.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
        length = env.get("CONTENT_LENGTH", "")
        if coding and coding != "chunked":
            raise _BadRequest("501 Not Implemented",
                              f"Transfer-Encoding {coding!r}: only chunked is supported")
        chunked = coding == "chunked"
        if chunked and length:
            raise _BadRequest("400 Bad Request",
                              "both Content-Length and Transfer-Encoding are given")
        if not chunked and not length:
            return b""
        if env.get("HTTP_EXPECT", "").lower() == "100-continue":
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if chunked:
            body = self._chunked_body()
            env.pop("HTTP_TRANSFER_ENCODING", None)
            env["CONTENT_LENGTH"] = str(len(body))
            return body
        if not length.isdigit():
            raise _BadRequest("400 Bad Request", "Content-Length is not a number")
        if int(length) > MAX_BODY_BYTES:
            raise _BadRequest("413 Payload Too Large", _TOO_LARGE)
        return self._exactly(int(length))

    def _disconnected(self) -> bool:
        """Whether the client closed its side: a poll that does not wait, then a peek (the
        socket's timeout would make a bare peek wait while nothing arrives)."""
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | select.POLLPRI)
        try:
            events = poller.poll(0)
        except OSError:
            return True
        if not events:
            return False
        if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _respond(self, env: dict[str, Any], keep_alive: bool) -> bool:
        """Run the application for one request; whether the connection stays open."""
        state: dict[str, Any] = {}
        head_sent = False

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info and head_sent:
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"], state["headers"] = status, headers
            return write

        def head(length: int | None) -> bytes:
            nonlocal keep_alive
            status, headers = state["status"], state["headers"]
            lines = [f"{env['SERVER_PROTOCOL']} {status}"]
            for name, value in headers:
                lower = name.lower()
                if lower in _HOP_BY_HOP:
                    if lower == "connection" and value.lower() == "close":
                        keep_alive = False
                    continue
                if lower == "content-length":   # written once, below
                    continue
                lines.append(f"{name}: {value}")
            no_body = status.startswith(_STATUSES_WITHOUT_BODY) or env["REQUEST_METHOD"] == "HEAD"
            declared = next((v for n, v in headers if n.lower() == "content-length"), None)
            if declared is not None:
                lines.append(f"Content-Length: {declared}")
            elif length is not None and not no_body:
                lines.append(f"Content-Length: {length}")
            elif length is None and not no_body:   # a length only the end of the body tells
                if env["SERVER_PROTOCOL"] == "HTTP/1.1":
                    state["chunked"] = True
                    lines.append("Transfer-Encoding: chunked")
                else:
                    keep_alive = False
            if self.server.stopping.is_set():
                keep_alive = False
            lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
            lines.append(f"Date: {formatdate(usegmt=True)}")
            lines.append("Server: isthmus")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

        def write(data: bytes) -> None:
            nonlocal head_sent
            out = b""
            if not head_sent:
                out, head_sent = head(None), True
            if data and env["REQUEST_METHOD"] != "HEAD":
                out += (b"%x\r\n%s\r\n" % (len(data), data)) if state.get("chunked") else data
            if out:
                self.sock.sendall(out)

        # ``threads`` bounds the application's runs, not the writing of their answers:
        # a slow reader, or an event stream waiting for events, holds no slot.
        with self.server.running:
            result: Iterable[bytes] = self.server.app(env, start_response)
        try:
            if isinstance(result, list) and not head_sent:
                body = b"".join(result)
                out = head(len(body))
                head_sent = True
                self.sock.sendall(out + body if env["REQUEST_METHOD"] != "HEAD" else out)
            else:
                for data in result:
                    if data:
                        write(data)
                if not head_sent:
                    write(b"")
                if state.get("chunked"):
                    self.sock.sendall(b"0\r\n\r\n")
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return keep_alive

    def serve(self) -> None:
        """Answer requests until the client goes, is silent too long, or the server drains."""
        self.sock.settimeout(self.server.idle_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while not self.server.stopping.is_set():
                self.idle = True
                try:
                    head = self._head()
                    self.idle = False
                    env, keep_alive = self._environ(head)
                    env["wsgi.input"] = io.BytesIO(self._body(env))
                except _BadRequest as err:
                    self._refuse(err.status, str(err))
                    return
                keep_alive = self._respond(env, keep_alive)
                if not keep_alive:
                    return
        except (_Closed, ConnectionError, socket.timeout):
            pass
        except Exception:  # noqa: BLE001 - a broken connection must not end the server
            LOG.exception("Error serving a client connection")
        finally:
            self.idle = True
            try:
                self.sock.close()
            except OSError:
                pass

    def _refuse(self, status: str, message: str) -> None:
        """Answer a request the server itself refuses, in Neutron's error format (as the
        application answers its own errors), and close."""
        error_type = _ERROR_TYPES.get(status[:3], "HTTPBadRequest")
        body = json.dumps({"NeutronError": {"type": error_type, "message": message,
                                            "detail": ""}}).encode()
        try:
            self.sock.sendall(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: "
                f"{len(body)}\r\nConnection: close\r\nServer: isthmus\r\n\r\n".encode() + body)
        except OSError:
            pass


class HTTPServer:
    """Accepts connections on ``listening`` and serves each on a thread of its own."""

    def __init__(self, app: Any, listening: socket.socket, *, threads: int,
                 connection_limit: int, idle_timeout: float, max_header_bytes: int,
                 multiprocess: bool = False) -> None:
        self.app, self.listening = app, listening
        self.address = listening.getsockname()[:2]
        self.running = threading.BoundedSemaphore(threads)
        self.slots = threading.BoundedSemaphore(connection_limit)
        self.idle_timeout, self.max_header_bytes = idle_timeout, max_header_bytes
        self.multiprocess = multiprocess
        self.stopping = threading.Event()
        self.connections: set[Connection] = set()
        self._lock = threading.Lock()

    @classmethod
    def bind(cls, app: Any, host: str, port: int, **options: Any) -> HTTPServer:
        """A server on a new listening socket bound to ``host``:``port`` (0: any free port)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        return cls(app, sock, **options)

    def accept_for(self, seconds: float) -> None:
        """Accept the connections that arrive within ``seconds`` (the caller loops)."""
        if not self.slots.acquire(timeout=seconds):
            return
        try:
            self.listening.settimeout(seconds)
            sock, address = self.listening.accept()
        except (socket.timeout, OSError):
            self.slots.release()
            return
        connection = Connection(self, sock, address)
        with self._lock:
            self.connections.add(connection)
        old = threading.stack_size(STACK_BYTES)
        try:
            threading.Thread(target=self._serve, args=(connection,), daemon=True,
                             name=f"http-{address[0]}:{address[1]}"
                             if isinstance(address, tuple) else "http").start()
        finally:
            threading.stack_size(old)

    def serve_in_thread(self, grace_s: float = 1.0) -> Callable[[], None]:
        """Accept clients on a daemon thread (tests, the demo); returns the function that
        stops it (draining for up to ``grace_s``)."""
        def loop() -> None:
            while not self.stopping.is_set():
                self.accept_for(0.05)
        thread = threading.Thread(target=loop, name="http-accept", daemon=True)
        thread.start()

        def stop() -> None:
            self.drain(grace_s)
            thread.join(5)
        return stop

    def _serve(self, connection: Connection) -> None:
        try:
            connection.serve()
        finally:
            with self._lock:
                self.connections.discard(connection)
            self.slots.release()

    def drain(self, grace_s: float) -> bool:
        """Stop accepting, close idle connections, wait up to ``grace_s`` for requests in
        flight; whether every one finished."""
        self.stopping.set()
        try:
            self.listening.close()
        except OSError:
            pass
        deadline = time.monotonic() + grace_s
        while True:
            with self._lock:
                connections = list(self.connections)
            busy = 0
            for connection in connections:
                if connection.idle:
                    try:
                        connection.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                else:
                    busy += 1
            if not busy:
                return True
            if time.monotonic() >= deadline:
                LOG.warning("graceful_shutdown_timeout (%ss) reached with %d requests "
                            "unfinished", grace_s, busy)
                return False
            time.sleep(0.05)
