"""``GET /metrics`` (Prometheus text format) and the timing of every API request.

:class:`RequestMetrics` is Falcon middleware: it counts each request by method,
route and status code and observes its duration. ``route`` is the route's
template (``/v2.0/vpn/ipsec-site-connections/{id_}``), never the path: ids in
labels would make one time series per object. A request no route matched is
``route="unmatched"``.

:func:`with_metrics` answers ``/metrics`` in front of the application, before
any authentication, like ``/healthcheck``: Prometheus scrapers do not speak
Keystone. It carries counts, durations and ids of objects (agents' metrics:
connection ids), never a name, an address, a secret or free text; turn it off
with ``[DEFAULT] metrics_enabled = false`` (docs/metrics.md). Under several
worker processes (``PROMETHEUS_MULTIPROC_DIR`` set: ``isthmus server --workers``
sets it, uWSGI or gunicorn operators do) it answers with every worker's
counters and histograms summed (:func:`served_registry`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

import falcon
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from isthmus.api.health import in_front

PATH = "/metrics"

# Seconds; API requests take milliseconds, a slow list or a retried write up to seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0)
UNMATCHED = "unmatched"


class RequestMetrics:
    """Falcon middleware: ``isthmus_api_requests_total{method,route,code}`` and
    ``isthmus_api_request_duration_seconds{method,route}``; put it first, so that it
    times the other middleware too."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter("isthmus_api_requests", "API requests answered, by method, "
                                 "route template and HTTP status code.",
                                 ["method", "route", "code"], registry=registry)
        self._duration = Histogram("isthmus_api_request_duration_seconds",
                                   "Time to answer an API request, by method and route "
                                   "template.", ["method", "route"], registry=registry,
                                   buckets=LATENCY_BUCKETS)
        # Label look-ups cost microseconds each; the children are few, so keep them.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Note when the request arrived."""
        req.context.metrics_start = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         req_succeeded: bool) -> None:
        """Count the answer and observe its duration (errors included: they are answers)."""
        start = getattr(req.context, "metrics_start", None)
        if start is None:
            return
        key = (req.method, req.uri_template or UNMATCHED, resp.status_code)
        children = self._children.get(key)
        if children is None:
            method, route, code = key
            children = self._children[key] = (
                self._requests.labels(method, route, str(code)),
                self._duration.labels(method, route))
        children[0].inc()
        children[1].observe(time.perf_counter() - start)


def served_registry(registry: CollectorRegistry,
                    shared: Iterable[Collector] = ()) -> CollectorRegistry:
    """What ``/metrics`` answers from: ``registry``, this process's metrics, when it
    is the only process; with ``PROMETHEUS_MULTIPROC_DIR`` set, the counters and
    histograms every worker wrote there (summed by prometheus_client, dead workers'
    included: counters never go back), plus the ``shared`` collectors, which read
    state all processes share (the database) and must be in ``registry`` too."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return registry
    served = CollectorRegistry()
    MultiProcessCollector(served, path=path)
    for collector in shared:
        served.register(collector)
    return served


def with_metrics(app: Any, registry: CollectorRegistry) -> Any:
    """``app`` with ``GET /metrics`` answered in front of it from ``registry``."""
    def answer(environ: dict[str, Any]) -> tuple[str, str, bytes]:
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT"))
        return "200 OK", content_type, encoder(registry)
    return in_front(app, PATH, answer)
