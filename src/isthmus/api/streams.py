"""``GET /v2.0/vpn/events?stream=true``: the event history as Server-Sent Events.

The stream answers ``text/event-stream``: first the stored events after the
client's ``Last-Event-ID`` header (or ``?after=<id>``), then each new one as it
is recorded, as ``id: <id>``, ``event: <kind>`` and ``data: <the event's JSON>``,
with the list's filters, project scoping and policy. Events recorded by this
process wake the stream at once (:data:`isthmus.events.BELL`); it also reads the
table every ``poll_s``, for events recorded by other server processes. A comment
line every ``keepalive_s`` keeps proxies from closing an idle stream and finds
clients that went away.

A stream holds one of the server's ``api_threads`` for as long as it is open,
so at most ``limit`` are served at once; beyond that the answer is Neutron's 503
(docs/api.md, "Events").
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator

import falcon
import orjson

from isthmus import attributes as a
from isthmus.api import listing
from isthmus.api.controllers import CollectionEndpoint, _query
from isthmus.api.policy import Policy
from isthmus.context import RequestContext
from isthmus.db.collection import Range
from isthmus.events import BELL
from isthmus.exceptions import HTTPBadRequest, ServiceUnavailable
from isthmus.services import Services

LOG = logging.getLogger(__name__)

BATCH = 500
"""Events read per query while a stream catches up."""


class EventsEndpoint(CollectionEndpoint):
    """The events list, and with ``stream=true`` its live stream."""

    def __init__(self, services: Services, policy: Policy, resource: a.Resource,
                 max_limit: int = -1, *, limit: int = 4, poll_s: float = 1.0,
                 keepalive_s: float = 15.0, closing: threading.Event | None = None) -> None:
        super().__init__(services, policy, resource, None, max_limit)
        self.slots = threading.BoundedSemaphore(limit)
        self.limit = limit
        self.poll_s = poll_s
        self.keepalive_s = keepalive_s
        self.closing = closing or threading.Event()

    def close(self) -> None:
        """End every open stream (the server is stopping)."""
        self.closing.set()
        BELL.ring()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The list, or with ``stream=true`` the stream."""
        _, params = _query(req)
        stream = params.get("stream")
        try:
            streaming = stream is not None and a.boolean(stream[-1])
        except a.InvalidValue as err:
            raise HTTPBadRequest(f"stream: {err}") from None
        if not streaming:
            super().on_get(req, resp)
            return
        ctx = req.context.ctx
        after = self._resume_from(req, params)
        hidden = self.policy.hidden_fields(ctx, self.resource, {
            "project_id": ctx.project_id, "tenant_id": ctx.project_id})
        query = listing.parse_query(self.resource, {
            k: v for k, v in params.items() if k not in listing.CONTROL_KEYS or k == "fields"},
            {}, -1, hidden)
        if not self.slots.acquire(blocking=False):
            raise ServiceUnavailable(message=(
                f"Too many event streams are open (event_stream_limit is {self.limit}); "
                "retry later, or read GET /v2.0/vpn/events with a marker"))
        disconnected = (req.env.get("isthmus.client_disconnected")
                        or req.env.get("waitress.client_disconnected") or (lambda: False))
        resp.status = falcon.HTTP_200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")   # nginx: pass each event on at once
        resp.stream = _Stream(self._frames(ctx, query, after, disconnected),
                              self.slots.release)
        LOG.info("Event stream opened for project %s after event %s", ctx.project_id, after)

    def _resume_from(self, req: falcon.Request, params: dict[str, list[str]]) -> int:
        raw = req.get_header("Last-Event-ID") or (params.get("after") or [None])[-1]
        if raw is None:
            return self.services.latest_event_id()
        try:
            return a.non_negative_int(raw)
        except a.InvalidValue as err:
            raise HTTPBadRequest(f"Last-Event-ID (or after) must be an event id: {err}") \
                from None

    def _frames(self, ctx: RequestContext, query: listing.ListQuery, after: int,
                disconnected: Callable[[], bool]) -> Iterator[bytes]:
        # The first bytes send the headers: the client knows at once that it is connected.
        yield b"retry: 2000\n: connected\n\n"
        cursor = after
        written = time.monotonic()
        while not self.closing.is_set():
            rung = BELL.count
            latest = self.services.latest_event_id()
            while cursor < latest and not self.closing.is_set():
                filters = {**query.filters, "id": Range(cursor + 1, latest + 1)}
                page, more = self.services.list_page(
                    ctx, self.plural, filters, {}, [], BATCH, None, False,
                    lambda item: self._accepted(ctx, item, query))
                for view in page:
                    shown = listing.project(view, query.fields) if query.fields else view
                    yield (f"id: {view['id']}\nevent: {view['kind']}\ndata: ".encode()
                           + orjson.dumps(shown) + b"\n\n")
                    written = time.monotonic()
                cursor = page[-1]["id"] if more else latest
            if disconnected():
                return
            if not BELL.wait(rung, self.poll_s) and \
                    time.monotonic() - written >= self.keepalive_s:
                yield b": keep-alive\n\n"
                written = time.monotonic()


class _Stream:
    """The response body: the frames, and the stream's slot given back when the server
    closes it (client gone, server stopping), even if it never started."""

    def __init__(self, frames: Iterator[bytes], release: Callable[[], None]) -> None:
        self.frames = frames
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self.frames

    def close(self) -> None:
        """Stop the frames and give the slot back (once)."""
        try:
            self.frames.close()   # type: ignore[attr-defined]
        finally:
            if self._release is not None:
                self._release, release = None, self._release
                release()
                LOG.info("Event stream closed")
