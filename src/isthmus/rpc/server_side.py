"""Server side of the RPC: answers agents from the database, and casts router updates.

Only the server imports this module (it loads the database layer); agents use
:mod:`isthmus.rpc.agent_side`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import oslo_messaging as messaging
from prometheus_client import CollectorRegistry, Histogram

from isthmus.db import Database
from isthmus.rpc import topics
from isthmus.network.router_state import apply_router_reports, routers_on_host
from isthmus.rpc.payloads import RouterNetwork, RouterReport, Service, ServiceReport
from isthmus.vpn.agents import Agents
from isthmus.vpn.desired_state import apply_reports, services_on_host

LOG = logging.getLogger(__name__)

# Seconds; a call is one transaction, a host's whole state at most a few seconds.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerEndpoint:
    """The agent → server calls of docs/rpc.md.

    With a ``registry``, the time each call takes here (from the dispatch to the
    answer, the bus excluded) is observed in ``isthmus_rpc_server_seconds{method}``.
    """

    target = messaging.Target(version=topics.VERSION)

    def __init__(self, db: Database, agents: Agents,
                 on_agent_alive: Callable[[str, str], None] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.db = db
        self.agents = agents
        self.on_agent_alive = on_agent_alive
        self._seconds = None if registry is None else Histogram(
            "isthmus_rpc_server_seconds", "Time the server takes to handle an agent's RPC "
            "call or cast, by method.", ["method"], registry=registry, buckets=RPC_BUCKETS)

    @contextlib.contextmanager
    def _timed(self, method: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._seconds is not None:
                self._seconds.labels(method).observe(time.perf_counter() - start)

    def get_vpn_services_on_host(self, ctxt: Mapping[str, Any], host: str,
                                 router_ids: Sequence[str] | None = None) -> list[Service]:
        """The desired state of every VPN service on ``host``'s routers, read in one
        transaction."""
        with self._timed("get_vpn_services_on_host"):
            services = self.db.read_retrying(
                lambda conn: services_on_host(conn, host, router_ids))
        LOG.debug("Agent %s fetched %d services", host, len(services))
        return services

    def get_routers_on_host(self, ctxt: Mapping[str, Any], host: str,
                            router_ids: Sequence[str] | None = None) -> list[RouterNetwork]:
        """The desired network of every router ``host`` serves (version 1.2)."""
        with self._timed("get_routers_on_host"):
            routers = self.db.read_retrying(lambda conn: routers_on_host(conn, host, router_ids))
        LOG.debug("Agent %s fetched %d routers", host, len(routers))
        return routers

    def update_router_status(self, ctxt: Mapping[str, Any], host: str,
                             routers: list[RouterReport]) -> int:
        """Store the statuses ``host`` reports for its routers and ports (version 1.2)."""
        with self._timed("update_router_status"):
            changed = self.db.write_retrying(
                lambda conn: apply_router_reports(conn, routers, host))
        if changed:
            LOG.info("Agent %s router report changed %d objects", host, changed)
        return changed

    def update_status(self, ctxt: Mapping[str, Any], statuses: list[ServiceReport]) -> int:
        """Apply an agent's reports; only changed objects are written (the count is returned)."""
        with self._timed("update_status"):
            changed = self.db.write_retrying(lambda conn: apply_reports(conn, statuses))
        if changed:
            LOG.info("Agent status report changed %d objects", changed)
        return changed

    def report_state(self, ctxt: Mapping[str, Any], agent_state: Mapping[str, Any]) -> None:
        """A heartbeat; an agent new, restarted or back from the dead is announced to
        ``on_agent_alive`` (any mapping is accepted: older agents send fewer keys)."""
        with self._timed("report_state"):
            revived = self.db.write_retrying(
                lambda conn: self.agents.heartbeat(conn, agent_state))
        if revived and self.on_agent_alive is not None:
            self.on_agent_alive(agent_state["host"], revived)


class AgentNotifier:
    """Server → agent: ``vpnservice_updated(router_id)``, cast to the router's host.

    One attempt per cast (``retry=0``): with the broker down it raises at once
    instead of reconnecting forever; :class:`~isthmus.rpc.sender.RouterUpdateSender`
    calls it from its own thread and owns the retries.
    """

    def __init__(self, transport: Any) -> None:
        target = messaging.Target(topic=topics.AGENT_TOPIC, version=topics.BASE_VERSION)
        self.client = messaging.get_rpc_client(transport, target)

    def vpnservice_updated(self, host: str, router_id: str) -> None:
        """Cast to ``host`` that ``router_id`` changed; raises if the broker is unreachable."""
        LOG.debug("Casting vpnservice_updated(%s) to %s", router_id, host)
        self.client.prepare(server=host, retry=0).cast({}, "vpnservice_updated",
                                                       router_id=router_id)


def start_rpc_server(transport: Any, host: str, endpoint: ServerEndpoint) -> Any:
    """Listen for agents' calls on the server topic; blocks until the broker answers."""
    target = messaging.Target(topic=topics.SERVER_TOPIC, server=host)
    server = messaging.get_rpc_server(transport, target, [endpoint], executor="threading")
    server.start()
    return server
