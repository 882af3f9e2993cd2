"""An agent and a server of different RPC versions keep working together (docs/rpc.md)."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest
from oslo_config import cfg

from isthmus.rpc import topics
from isthmus.rpc.agent_side import ServerClient
from isthmus.rpc.transport import get_transport

DETAIL = {"reason": "authentication_failed", "message": "the peer refused our PSK",
          "ike": None, "child": None, "last_failure": None, "warnings": []}


class RecordingServer:
    """A fake server endpoint that keeps each ``update_status`` it is sent."""

    def __init__(self, version: str) -> None:
        self.target = messaging.Target(version=version)
        self.received: list = []

    def update_status(self, ctxt, statuses):
        self.received.append(statuses)
        return 0


@pytest.fixture
def rpc():
    transport = get_transport(cfg.ConfigOpts(), "fake://")
    servers = []

    def serve(version: str) -> RecordingServer:
        endpoint = RecordingServer(version)
        target = messaging.Target(topic=topics.SERVER_TOPIC, server=f"server-{version}")
        server = messaging.get_rpc_server(transport, target, [endpoint], executor="threading")
        server.start()
        servers.append(server)
        return endpoint

    yield transport, serve
    for server in servers:
        server.stop()
        server.wait()
    transport.cleanup()


def report(detail) -> list:
    return [{"id": "s1", "status": "DOWN", "updated_pending_status": False,
             "ipsec_site_connections": {"c1": {"status": "DOWN",
                                               "updated_pending_status": False,
                                               "status_detail": detail}}}]


def sent_detail(endpoint: RecordingServer, index: int = -1):
    return endpoint.received[index][0]["ipsec_site_connections"]["c1"]["status_detail"]


def test_a_server_of_1_3_gets_the_detail_as_an_object(rpc):
    transport, serve = rpc
    server = serve("1.3")
    client = ServerClient(transport, "agent-host", timeout_s=5)
    client.update_status(report(DETAIL))
    assert sent_detail(server) == DETAIL
    assert client.structured_details


def test_a_server_older_than_1_3_gets_sentences_from_then_on(rpc):
    transport, serve = rpc
    server = serve("1.2")
    client = ServerClient(transport, "agent-host", timeout_s=5)
    client.update_status(report(DETAIL))
    assert sent_detail(server) == "authentication_failed: the peer refused our PSK"
    assert not client.structured_details
    client.update_status(report(DETAIL))   # no second refusal: straight to sentences
    assert len(server.received) == 2
    assert sent_detail(server) == "authentication_failed: the peer refused our PSK"


def test_a_report_without_objects_goes_as_1_1(rpc):
    transport, serve = rpc
    server = serve("1.1")
    client = ServerClient(transport, "agent-host", timeout_s=5)
    client.update_status(report("a sentence"))
    client.update_status(report(None))
    assert [sent_detail(server, i) for i in (0, 1)] == ["a sentence", None]
    assert client.structured_details   # never refused: it never tried 1.3
