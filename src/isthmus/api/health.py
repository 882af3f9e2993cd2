"""``GET /healthcheck``: 200 ``OK`` when the database and the message bus answer, else 503.

oslo.middleware's healthcheck semantics: text by default, JSON detail with
``Accept: application/json``. Unauthenticated (load balancers call it), so the
reasons name hosts and errors but never URLs or passwords. One check runs at a
time and callers that arrive meanwhile share its result: a flood of health
checks opens at most one database and one broker connection at a time.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Callable

PATH = "/healthcheck"

# name -> a check returning None when healthy, else the reason (one line, no secrets)
Probe = Callable[[], "str | None"]


class HealthCheck:
    """The probes, run one round at a time."""

    def __init__(self, probes: dict[str, Probe]) -> None:
        self.probes = probes
        self._lock = threading.Lock()
        self._round = 0
        self._last: dict[str, str | None] = {}

    def run(self) -> dict[str, str | None]:
        """Each probe's reason (None: healthy), from a round that ended after this call."""
        seen = self._round
        with self._lock:
            if self._round > seen:
                return self._last   # a round ended while we waited: share its answer
            results: dict[str, str | None] = {}
            for name, probe in self.probes.items():
                try:
                    results[name] = probe()
                except Exception as err:   # a probe that breaks reports, never 500s
                    results[name] = f"check failed: {type(err).__name__}"
            self._last, self._round = results, self._round + 1
            return results


Answer = Callable[[dict[str, Any]], "tuple[str, str, bytes]"]
"""What an endpoint in front says to a GET: ``(status line, content type, body)``."""


def only_get_and_head(start_response: Any) -> list[bytes]:
    """The 405 of the read-only paths answered before authentication."""
    body = b"Only GET and HEAD\n"
    start_response("405 Method Not Allowed", [
        ("Allow", "GET, HEAD"), ("Content-Type", "text/plain"),
        ("Content-Length", str(len(body)))])
    return [body]


def in_front(app: Any, path: str, answer: Answer) -> Any:
    """``app`` with ``path`` answered by ``answer`` before anything else runs (no
    authentication: load balancers and scrapers call these); GET and HEAD only, never cached."""
    def dispatch(environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != path:
            return app(environ, start_response)
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return only_get_and_head(start_response)
        status, content_type, body = answer(environ)
        start_response(status, [("Content-Type", content_type),
                                ("Content-Length", str(len(body))),
                                ("Cache-Control", "no-store")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [body]
    return dispatch


def with_healthcheck(app: Any, health: HealthCheck) -> Any:
    """``app`` with ``/healthcheck`` answered in front of it (before any authentication)."""
    def answer(environ: dict[str, Any]) -> tuple[str, str, bytes]:
        results = health.run()
        failures = [f"{name}: {reason}" for name, reason in results.items() if reason]
        status = "503 Service Unavailable" if failures else "200 OK"
        if "application/json" in environ.get("HTTP_ACCEPT", ""):
            return status, "application/json", json.dumps({
                "detailed": True, "reasons": failures, "checks": {
                    name: {"available": reason is None, "reason": reason or "OK"}
                    for name, reason in results.items()}}).encode()
        return status, "text/plain", ("\n".join(failures) if failures else "OK").encode() + b"\n"
    return in_front(app, PATH, answer)
