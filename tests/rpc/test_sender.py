"""Router updates cast in the background: never blocking, coalesced, resent after an outage.

Real RabbitMQ (a vhost of this test's own) behind a :class:`ForwardingProxy`
that the test cuts and restores; the shared broker itself is never stopped.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from oslo_config import cfg

from isthmus.rpc import get_transport
from isthmus.rpc.agent_side import AgentEndpoint, start_agent_rpc_server
from isthmus.rpc.sender import RouterUpdateSender
from isthmus.rpc.server_side import AgentNotifier
from tests.agent.conftest import wait_until
from tests.agent.test_rabbitmq import proxy, vhost  # noqa: F401  (fixtures)


def test_updates_made_while_the_broker_is_down_are_coalesced_and_sent_when_it_is_back(
        proxy, vhost, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger="isthmus.rpc.sender")
    conf = cfg.ConfigOpts()
    conf([])
    transport = get_transport(conf, proxy.url(vhost))
    received: Counter[str] = Counter()
    lock = threading.Lock()

    def on_update(router_id: str) -> None:
        with lock:
            received[router_id] += 1

    agent = start_agent_rpc_server(transport, "agent-x", AgentEndpoint(on_update))
    sender = RouterUpdateSender(AgentNotifier(transport).vpnservice_updated).start()
    try:
        sender.vpnservice_updated("agent-x", "r0")
        wait_until(lambda: received["r0"] == 1, timeout_s=20)

        proxy.cut()
        done = threading.Event()

        def burst() -> None:
            for _ in range(5):
                sender.vpnservice_updated("agent-x", "r1")
            sender.vpnservice_updated("agent-x", "r2")
            done.set()

        threading.Thread(target=burst, daemon=True).start()
        assert done.wait(10), "queueing an update blocked while the broker was down"
        wait_until(lambda: "Cannot cast router updates" in caplog.text, timeout_s=20)

        proxy.restore()
        wait_until(lambda: received["r1"] and received["r2"], timeout_s=30)
        assert received["r1"] == 1, "five updates of one router while down: one cast"
        wait_until(lambda: "reach agents again" in caplog.text, timeout_s=10)
        messages = [r.getMessage() for r in caplog.records if r.name == "isthmus.rpc.sender"]
        assert sum("Cannot cast" in m for m in messages) == 1, messages
        assert sum("reach agents again" in m for m in messages) == 1, messages
    finally:
        sender.stop()
        agent.stop()
        agent.wait()
        transport.cleanup()
