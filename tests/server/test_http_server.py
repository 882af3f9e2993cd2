"""The API's own HTTP/1.1 server (isthmus.api.http) over real sockets, byte by byte."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Iterator

import pytest

from isthmus.api.http import HTTPServer


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Answers what it was given: method, path, query, headers, body."""
    body = environ["wsgi.input"].read()
    seen = {"method": environ["REQUEST_METHOD"], "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"], "body": body.decode(),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
            "content_type": environ.get("CONTENT_TYPE")}
    payload = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [payload]


def streaming_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    """Three pieces without a Content-Length, then waits for the client to go."""
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    for n in range(3):
        yield f"piece {n}\n".encode()
    disconnected = environ["isthmus.client_disconnected"]
    deadline = time.monotonic() + 30
    while not disconnected() and time.monotonic() < deadline:
        time.sleep(0.01)
    GONE.set()


GONE = threading.Event()


@pytest.fixture
def serve():
    servers: list[HTTPServer] = []
    stop = threading.Event()

    def start(app: Any = echo_app, **options: Any) -> tuple[HTTPServer, int]:
        opts = dict(threads=4, connection_limit=50, idle_timeout=30, max_header_bytes=4096)
        opts.update(options)
        server = HTTPServer.bind(app, "127.0.0.1", 0, **opts)
        servers.append(server)

        def loop() -> None:
            while not stop.is_set() and not server.stopping.is_set():
                server.accept_for(0.05)
        threading.Thread(target=loop, daemon=True).start()
        return server, server.address[1]
    yield start
    stop.set()
    for server in servers:
        server.drain(1)


def exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data``, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def split(raw: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return lines[0], headers, body


def test_keep_alive_and_pipelined_requests_on_one_connection(serve):
    _, port = serve()
    raw = exchange(port, b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
                         b"Content-Type: application/json\r\n\r\n{}"
                         b"GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    answers = raw.split(b"HTTP/1.1 200 OK")[1:]
    assert len(answers) == 3, raw
    bodies = [json.loads(a.partition(b"\r\n\r\n")[2]) for a in answers]
    assert [(b["method"], b["path"], b["query"]) for b in bodies] == [
        ("GET", "/a", "x=1"), ("POST", "/b", ""), ("GET", "/c", "")]
    assert bodies[1]["body"] == "{}" and bodies[1]["content_type"] == "application/json"
    assert b"Connection: keep-alive" in answers[0] and b"Connection: close" in answers[2]


def test_header_names_with_underscores_and_forwarding_headers_are_dropped(serve):
    # keystonemiddleware's X-Identity-Status must not be spoofed as X_Identity_Status.
    _, port = serve()
    _, _, body = split(exchange(port, b"GET / HTTP/1.1\r\nX_Identity_Status: Confirmed\r\n"
                                      b"X-Roles: a\r\nX-Roles: b\r\nX-Forwarded-Host: evil\r\n"
                                      b"Connection: close\r\n\r\n"))
    headers = json.loads(body)["headers"]
    assert "HTTP_X_IDENTITY_STATUS" not in headers
    assert "HTTP_X_FORWARDED_HOST" not in headers     # no proxy is trusted
    assert headers["HTTP_X_ROLES"] == "a,b"


def test_too_large_head_gets_431_and_bad_request_line_400(serve):
    _, port = serve(max_header_bytes=4096)
    status, _, _ = split(exchange(port, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 5000
                                        + b"\r\n\r\n"))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    status, _, _ = split(exchange(port, b"NONSENSE\r\n\r\n"))
    assert status == "HTTP/1.1 400 Bad Request"
    status, _, _ = split(exchange(port, b"GET / HTTP/2.0\r\n\r\n"))
    assert status.startswith("HTTP/1.1 505")


def test_chunked_request_body_and_expect_continue(serve):
    _, port = serve()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    _, _, body = split(raw)
    assert json.loads(body)["body"] == "abcdefg"


def test_http_1_0_closes_and_head_has_no_body(serve):
    _, port = serve()
    raw = exchange(port, b"GET / HTTP/1.0\r\n\r\n")
    status, headers, body = split(raw)
    assert status == "HTTP/1.0 200 OK" and headers["connection"] == "close" and body
    raw = exchange(port, b"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n")
    status, headers, body = split(raw)
    assert status == "HTTP/1.1 200 OK" and body == b""


def test_an_answer_without_length_is_chunked_and_a_gone_client_is_noticed(serve):
    GONE.clear()
    _, port = serve(streaming_app)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /stream HTTP/1.1\r\n\r\n")
    raw = b""
    while b"piece 2\n\r\n" not in raw:
        raw += sock.recv(65536)
    _, headers, body = split(raw)
    assert headers["transfer-encoding"] == "chunked"
    assert body == b"8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n8\r\npiece 2\n\r\n"
    sock.close()
    assert GONE.wait(20), "the stream never saw its client go"


def test_a_silent_client_is_dropped_after_the_idle_timeout(serve):
    _, port = serve(idle_timeout=1)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Half: ")
        assert sock.recv(100) == b""     # closed by the server, not by our timeout


def test_drain_closes_idle_connections_and_finishes_requests_in_flight(serve):
    release = threading.Event()

    def slow_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(20)
        start_response("200 OK", [("Content-Length", "4")])
        return [b"done"]
    server, port = serve(slow_app)
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)
    busy.sendall(b"GET / HTTP/1.1\r\n\r\n")
    deadline = time.monotonic() + 10
    while len([c for c in server.connections if not c.idle]) < 1:
        assert time.monotonic() < deadline, "the request never started"
        time.sleep(0.01)
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(server.drain(20)))
    drainer.start()
    assert idle.recv(100) == b""          # the idle keep-alive connection is closed
    release.set()
    raw = b""
    while chunk := busy.recv(65536):
        raw += chunk
    drainer.join(20)
    status, headers, body = split(raw)
    assert status == "HTTP/1.1 200 OK" and body == b"done" and headers["connection"] == "close"
    assert drained == [True]
    assert server.listening.fileno() == -1     # closed: new clients are refused


def test_connection_limit_makes_new_clients_wait_not_fail(serve):
    _, port = serve(connection_limit=1)
    first = socket.create_connection(("127.0.0.1", port), timeout=10)
    first.sendall(b"GET /first HTTP/1.1\r\n\r\n")
    assert b"/first" in first.recv(65536)
    waiting: list[bytes] = []
    second = threading.Thread(target=lambda: waiting.append(
        exchange(port, b"GET /second HTTP/1.1\r\nConnection: close\r\n\r\n", timeout=30)))
    second.start()
    time.sleep(0.3)
    assert not waiting, "a second connection was served beyond the limit"
    first.close()
    second.join(30)
    assert waiting and b"/second" in waiting[0]


@pytest.mark.parametrize("head, status", [
    (b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1 400 Bad Request"),
    (b"Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1 501 Not Implemented"),
    (b"Transfer-Encoding: xchunked\r\n", "HTTP/1.1 501 Not Implemented"),
    (b"Content-Length: 3\r\nContent-Length: 4\r\n", "HTTP/1.1 400 Bad Request"),
    (b"Content-Length: -1\r\n", "HTTP/1.1 400 Bad Request"),
    (b"Content-Length: 2000000\r\n", "HTTP/1.1 413 Payload Too Large"),
])
def test_ambiguous_or_oversized_bodies_are_refused_before_the_app(serve, head, status):
    # Framing a proxy could read otherwise (request smuggling) never reaches the app.
    _, port = serve()
    raw = exchange(port, b"POST /x HTTP/1.1\r\n" + head + b"\r\nabc0\r\n\r\n")
    assert split(raw)[0] == status, raw
    assert b'"method"' not in raw
    assert json.loads(split(raw)[2])["NeutronError"]["type"].startswith("HTTP")


def test_the_same_content_length_twice_is_accepted(serve):
    _, port = serve()
    raw = exchange(port, b"POST /x HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n"
                         b"Connection: close\r\n\r\n{}")
    assert json.loads(split(raw)[2])["body"] == "{}"
