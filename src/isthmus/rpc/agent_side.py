"""Agent side of the RPC: calls to the server, and the endpoint for its casts.

Imports only oslo.messaging and the shared names: it runs in every agent process.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator, Mapping, Sequence

import oslo_messaging as messaging

from isthmus.diagnosis import summary
from isthmus.rpc import topics
from isthmus.rpc.payloads import AgentState, RouterNetwork, RouterReport, Service, ServiceReport

LOG = logging.getLogger(__name__)


def _has_details(statuses: Sequence[ServiceReport]) -> bool:
    return any(isinstance(c.get("status_detail"), dict)
               for s in statuses for c in s["ipsec_site_connections"].values())


def _as_sentences(statuses: Sequence[ServiceReport]) -> list[ServiceReport]:
    """The reports as a server older than 1.3 takes them: each detail a sentence."""
    if not _has_details(statuses):
        return list(statuses)
    result = []
    for service in statuses:
        conns = {}
        for conn_id, report in service["ipsec_site_connections"].items():
            report = dict(report)  # type: ignore[assignment]
            if isinstance(report.get("status_detail"), dict):
                text = summary(report["status_detail"])  # type: ignore[arg-type]
                report["status_detail"] = None if text is None else text[:255]
            conns[conn_id] = report
        result.append({**service, "ipsec_site_connections": conns})
    return result  # type: ignore[return-value]


class ServerClient:
    """Agent → server calls (``get_vpn_services_on_host``, ``update_status``, ``report_state``,
    and since 1.2 ``get_routers_on_host`` and ``update_router_status``).

    Each message is published once (``retry=0``): with the broker down a call fails
    at once instead of reconnecting forever, and ``on_unreachable(error)`` tells the
    agent, which then resyncs as soon as the server answers again.
    """

    def __init__(self, transport: Any, host: str, timeout_s: int = 20,
                 on_unreachable: Callable[[Exception], None] | None = None) -> None:
        self.host = host
        self.on_unreachable = on_unreachable
        target = messaging.Target(topic=topics.SERVER_TOPIC, version=topics.BASE_VERSION)
        self.client = messaging.get_rpc_client(transport, target, timeout=timeout_s,
                                               retry=0)
        self.routers_client = self.client.prepare(version=topics.ROUTERS_VERSION)
        self.details_client = self.client.prepare(version=topics.DETAILS_VERSION)
        self.structured_details = True   # until the server says it is older than 1.3

    def get_vpn_services_on_host(self, router_ids: Sequence[str] | None = None
                                 ) -> list[Service]:
        """The desired state of this host's VPN services (all, or of ``router_ids``)."""
        kwargs: dict[str, Any] = {"host": self.host}
        if router_ids is not None:
            kwargs["router_ids"] = list(router_ids)
        with self._watch():
            return self.client.call({}, "get_vpn_services_on_host", **kwargs)

    def get_routers_on_host(self, router_ids: Sequence[str] | None = None
                            ) -> list[RouterNetwork]:
        """The desired network of this host's routers (all, or of ``router_ids``); an
        older server raises ``messaging.RemoteError``."""
        kwargs: dict[str, Any] = {"host": self.host}
        if router_ids is not None:
            kwargs["router_ids"] = list(router_ids)
        with self._watch():
            return self.routers_client.call({}, "get_routers_on_host", **kwargs)

    def update_router_status(self, routers: list[RouterReport]) -> int:
        """Report routers' and ports' statuses; the server answers how many changed."""
        with self._watch():
            return self.routers_client.call({}, "update_router_status", host=self.host,
                                            routers=routers)

    def update_status(self, statuses: list[ServiceReport]) -> int:
        """Report statuses and counters; the server answers how many objects changed.

        Status details go as objects (1.3); a server older than that refuses the
        version, and from then on gets each detail as the sentence it understands.
        """
        if self.structured_details and _has_details(statuses):
            try:
                with self._watch():
                    return self.details_client.call({}, "update_status", statuses=statuses)
            except (messaging.UnsupportedVersion, messaging.RemoteError) as err:
                # Re-raised as its own class where oslo.messaging may rebuild it, else
                # as a RemoteError naming it.
                if isinstance(err, messaging.RemoteError) and \
                        err.exc_type != "UnsupportedVersion":
                    raise
                LOG.warning("The server is older than RPC %s: status details are sent as "
                            "sentences", topics.DETAILS_VERSION)
                self.structured_details = False
        with self._watch():
            return self.client.call({}, "update_status", statuses=_as_sentences(statuses))

    def report_state(self, agent_state: AgentState) -> None:
        """The heartbeat: a cast, so a slow server never delays the agent."""
        with self._watch():
            self.client.cast({}, "report_state", agent_state=dict(agent_state))

    @contextlib.contextmanager
    def _watch(self) -> Iterator[None]:
        """Report a lost broker or server (not an error raised by the server) and re-raise."""
        try:
            yield
        except messaging.RemoteError:
            raise
        except messaging.MessagingException as err:
            if self.on_unreachable is not None:
                self.on_unreachable(err)
            raise


class AgentEndpoint:
    """The server → agent cast ``vpnservice_updated(router_id)``."""

    target = messaging.Target(version=topics.VERSION)

    def __init__(self, on_router_updated: Callable[[str], None]) -> None:
        self.on_router_updated = on_router_updated

    def vpnservice_updated(self, ctxt: Mapping[str, Any], router_id: str | None = None,
                           router: Mapping[str, str] | None = None) -> None:
        """Queue a re-sync of the router; ``router={"id": ...}`` is what Neutron servers
        send, and is accepted too."""
        rid = router_id or (router or {}).get("id")
        if rid:
            self.on_router_updated(rid)


def start_agent_rpc_server(transport: Any, host: str, endpoint: AgentEndpoint) -> Any:
    """Listen for casts to this host on the agent topic (threads, not eventlet)."""
    target = messaging.Target(topic=topics.AGENT_TOPIC, server=host)
    server = messaging.get_rpc_server(transport, target, [endpoint], executor="threading")
    server.start()
    return server
