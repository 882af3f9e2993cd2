"""Assembling and serving the server: API, providers (service drivers), RPC, placement.

:func:`build` only wires: it constructs the parts from configuration, connects
them and returns a :class:`Runtime` whose ``app`` is the WSGI application. The
domain work it connects lives elsewhere (placing routers on agents and the
dead-agent watch in :mod:`isthmus.vpn.placement`). ``isthmus up`` also starts an
agent in the same process on the same in-memory transport.
"""

from __future__ import annotations

import logging
import resource
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, cast

from oslo_config import cfg
from prometheus_client import CollectorRegistry

from isthmus import config, events
from isthmus.api import create_app, with_keystone
from isthmus.api.http import HTTPServer
from isthmus.api.metrics import RequestMetrics, served_registry, with_metrics
from isthmus.api.policy import Policy
from isthmus.api.health import HealthCheck, with_healthcheck
from isthmus.dashboard import with_dashboard
from isthmus.db import Database, upgrade
from isthmus.db.probe import BadDatabaseURL, wait_until_reachable
from isthmus.db.probe import probe as probe_database
from isthmus.leader import LeaderLease
from isthmus.lifecycle import StartupError, StopSignals, serve_until_stopped
from isthmus.periodic import Periodic
from isthmus.drivers.service.providers import (ProviderSpec, Providers, default_provider,
                                                parse_providers)
from isthmus.rpc import get_transport
from isthmus.rpc.probe import probe as probe_bus
from isthmus.rpc.sender import RouterUpdateSender
from isthmus.rpc.server_side import AgentNotifier, ServerEndpoint, start_rpc_server
from isthmus.services import Services
from isthmus.vpn.agents import Agents
from isthmus.vpn.hooks import HookChain
from isthmus.vpn.metrics import StatusCollector
from isthmus.vpn.placement import Placement, RouterChanges

LOG = logging.getLogger(__name__)


@dataclass
class Runtime:
    """A built server: the WSGI app and what must be stopped, in reverse order, at exit."""

    app: Any
    services: Services
    providers: Providers
    transport: Any
    registry: CollectorRegistry
    """The process's metrics (served at /metrics when ``metrics_enabled``); ``isthmus up``
    adds its agent's."""
    _stoppers: list[Callable[[], None]] = field(default_factory=list)
    streams_closing: threading.Event = field(default_factory=threading.Event)

    def close_streams(self) -> None:
        """End the open event streams (within a second): the server is stopping, and a
        stream would otherwise hold the drain for all of graceful_shutdown_timeout."""
        self.streams_closing.set()
        events.BELL.ring()

    def stop(self) -> None:
        """Stop every part; one that fails is logged and the others still stop."""
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:
                LOG.exception("Error while stopping")


EVENT_PURGE_INTERVAL_S = 3600


def load_providers(conf: cfg.ConfigOpts, specs: list[ProviderSpec],
                   lookup: Callable[[str, str, Any], Any],
                   notify_router: Callable[[str], None]) -> Providers:
    """Load the drivers of ``[service_providers]``; raises a clear error for any bad driver."""
    from isthmus.drivers.loader import build_driver

    origin = config.option_origin(conf, "service_providers", "service_provider")
    return Providers(specs, lambda spec, server: build_driver(spec, "service", server,
                                                              origin=origin),
                     lookup, notify_router, conf)


def build(conf: cfg.ConfigOpts, migrate: bool = False, transport: Any = None) -> Runtime:
    """The server for ``conf``: call ``stop()`` on the result to end its threads."""
    policy = Policy(conf)   # first: a broken policy file stops the start, naming the file
    url = config.database_url(conf)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    else:
        require_database(conf, url)
    if migrate:
        upgrade(url)
    specs = parse_providers(conf.service_providers.service_provider,
                            config.option_origin(conf, "service_providers", "service_provider"))
    db = Database(url, max_retries=conf.database.db_max_retries)
    agents = Agents(down_time_s=conf.agent_down_time)
    in_process_transport = transport is not None
    transport = transport or get_transport(conf)
    # Casts leave from a thread of their own: the broker never holds up an API request.
    notifier = RouterUpdateSender(AgentNotifier(transport).vpnservice_updated).start()
    # The dead-agent watch and the event purge run in one server process of the
    # deployment at a time: the holder of the leader lease (isthmus.leader).
    lease = LeaderLease(db, conf.leader_lease_time)
    placement = Placement(db, agents, notifier, watch_if=lease.held,
                          failover=conf.allow_automatic_router_failover)
    services = Services(db, hooks_for=lambda built: HookChain(
        load_providers(conf, specs, built.lookup, placement.notify_router),
        RouterChanges(placement)), agents=agents, default_provider=default_provider(specs))
    providers = cast(Providers, cast(HookChain, services.hooks).members[0])  # built just above
    registry = CollectorRegistry()   # the process's own: tests and ``isthmus up`` never collide
    runtime = Runtime(app=None, services=services, providers=providers, transport=transport,
                      registry=registry)
    metrics = conf.metrics_enabled

    runtime._stoppers.append(notifier.stop)
    runtime._stoppers.append(_start_in_background("RPC server", lambda: start_rpc_server(
        transport, conf.host, ServerEndpoint(db, agents, placement.on_agent_alive,
                                       registry if metrics else None))))
    runtime._stoppers.append(lease.start().stop)   # released after the work below stopped
    runtime._stoppers.append(placement.start().stop)
    runtime._stoppers.append(db.dispose)
    runtime._stoppers.append(runtime.close_streams)
    if conf.event_retention_days:
        retention_days = conf.event_retention_days
        purge = Periodic("event-purge", EVENT_PURGE_INTERVAL_S, lambda: db.write_retrying(
            lambda conn: events.purge(conn, retention_days)), run_first=True,
            only_if=lease.held)
        runtime._stoppers.append(purge.start().stop)

    app = create_app(services, auth_strategy=conf.auth_strategy,
                     pagination_max_limit=conf.pagination_max_limit,
                     service_providers=providers.describe, policy=policy,
                     event_stream_limit=conf.event_stream_limit,
                     streams_closing=runtime.streams_closing,
                     metrics=RequestMetrics(registry) if metrics else None)
    app = with_keystone(app, conf) if conf.auth_strategy == "keystone" else app
    if conf.dashboard_enabled:   # static files only, in front of authentication: no data
        app = with_dashboard(app)
    if metrics:   # in front of authentication, like /healthcheck (docs/metrics.md)
        status = StatusCollector(db, agents)
        registry.register(status)
        app = with_metrics(app, served_registry(registry, [status]))
    # The in-process bus of ``isthmus up`` cannot be unreachable.
    runtime.app = with_healthcheck(app, HealthCheck({
        "database": lambda: probe_database(url),
        "message bus": (lambda: None) if in_process_transport else lambda: probe_bus(conf)}))
    return runtime


def require_database(conf: cfg.ConfigOpts, url: str) -> None:
    """Wait up to ``[database] startup_timeout`` for the database; :class:`StartupError` if not.

    A database that starts a little after Isthmus is waited for; a wrong URL or a
    database that stays away ends the process with one line saying why.
    """
    origin = config.option_origin(conf, "database", "connection")
    try:
        reason = wait_until_reachable(url, conf.database.startup_timeout)
    except BadDatabaseURL as err:
        raise StartupError(f"{origin} {err}") from None
    if reason is not None:
        raise StartupError(
            f"{origin}: the database did not answer within startup_timeout "
            f"({conf.database.startup_timeout} s): {reason}. Start the database, or fix the "
            "URL's host, port, user, password or database name")


def _start_in_background(name: str, start: Callable[[], Any]) -> Callable[[], None]:
    """Start an RPC server without waiting for the broker; returns its stopper.

    oslo.messaging's ``start()`` retries until RabbitMQ answers. Meanwhile the
    API serves (``/healthcheck`` says the bus is down) and a stop signal is not
    held up: a server still starting has nothing to stop.
    """
    started: list[Any] = []

    def run() -> None:
        started.append(start())
        LOG.info("%s connected", name)

    threading.Thread(target=run, name=f"start-{name}", daemon=True).start()

    def stop() -> None:
        if started:
            started[0].stop()
            started[0].wait()
    return stop


# Descriptors kept free beside client connections: database pool, log files, RPC,
# the listening socket, the agent's work in ``isthmus up``.
FD_RESERVE = 256


def open_files_for(connection_limit: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to hold ``connection_limit`` clients; the limit that fits.

    At the usual soft limit of 1024, ``accept()`` fails with EMFILE long before the
    connection limit, and every new client waits: raising the soft limit needs no
    privilege up to the hard limit. If the hard limit is lower, the connection
    limit shrinks to fit it, with a warning naming the fix.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connection_limit + FD_RESERVE
    if hard != resource.RLIM_INFINITY and wanted > hard:
        fitted = max(1, hard - FD_RESERVE)
        LOG.warning("api_connection_limit %d needs %d open files but the hard limit "
                    "(RLIMIT_NOFILE) is %d; serving at most %d connections. Raise the hard "
                    "limit (LimitNOFILE= in the systemd unit, ulimit -Hn) to serve more",
                    connection_limit, wanted, hard, fitted)
        connection_limit, wanted = fitted, hard
    if soft != resource.RLIM_INFINITY and wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return connection_limit


def serve(app: Any, conf: cfg.ConfigOpts, stop: StopSignals,
          on_stop: Callable[[], None] | None = None,
          listening: socket.socket | None = None) -> None:
    """Serve ``app`` (:mod:`isthmus.api.http`) until a stop signal, sized for many slow clients.

    The connection slots are many, idle clients are dropped after
    ``api_idle_timeout`` and headers are capped, so that clients sending headers
    slowly lock nobody out; docs/api.md (Defences) has the measurements and the
    reverse proxy to put in front.
    On SIGTERM/SIGINT, requests in flight get ``graceful_shutdown_timeout`` to finish;
    ``on_stop`` runs at once then (it ends the event streams, which never finish).
    A worker of ``isthmus server --workers N`` passes the socket its parent bound as
    ``listening`` (:mod:`isthmus.workers`).
    """
    if on_stop is not None:
        threading.Thread(target=lambda: (stop.requested.wait(), on_stop()),
                         name="stop-streams", daemon=True).start()
    connection_limit = open_files_for(conf.api_connection_limit)
    options = dict(threads=conf.api_threads, connection_limit=connection_limit,
                   idle_timeout=conf.api_idle_timeout,
                   max_header_bytes=conf.api_max_header_bytes)
    http = (HTTPServer(app, listening, multiprocess=True, **options) if listening is not None
            else HTTPServer.bind(app, conf.bind_host, conf.bind_port, **options))
    LOG.info("Isthmus API listening on http://%s:%d/ (at most %d connections)",
             conf.bind_host, conf.bind_port, connection_limit)
    serve_until_stopped(http, stop, conf.graceful_shutdown_timeout)
