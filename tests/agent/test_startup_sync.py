"""The agent's start-up sync: heartbeat first, every router's statuses in few batched
``update_status`` calls, and the "Agent start-up:" lines benchmarks/agent_sync.py reads."""

from __future__ import annotations

import logging
import threading
import uuid

import oslo_messaging as messaging
from oslo_config import cfg

from isthmus.agent.agent import VPNAgent
from isthmus.drivers.device.base import AgentContext
from isthmus.drivers.device.noop import NoopDeviceDriver
from isthmus.rpc import topics
from isthmus.rpc.transport import get_transport
from tests.agent.conftest import wait_until

ROUTERS = 50


def service(router_id: str) -> dict:
    return {"id": str(uuid.uuid4()), "router_id": router_id, "admin_state_up": True,
            "status": "PENDING_CREATE", "namespace": None, "provider": "ipsec",
            "ipsec_site_connections": [{"id": str(uuid.uuid4()), "admin_state_up": True,
                                        "status": "PENDING_CREATE"}]}


class FakeServer:
    """Answers the fetch with two services on each of ``ROUTERS`` routers; the first
    ``update_status`` waits for ``release`` so that the other routers' reports queue up."""

    target = messaging.Target(version=topics.VERSION)

    def __init__(self) -> None:
        self.services = [service(r) for r in (str(uuid.uuid4()) for _ in range(ROUTERS))
                         for _ in range(2)]
        self.log: list[str] = []
        self.reported: dict[str, str] = {}
        self.release = threading.Event()

    def report_state(self, ctxt, agent_state):
        self.log.append("report_state")

    def get_vpn_services_on_host(self, ctxt, host, router_ids=None):
        self.log.append("get_vpn_services_on_host")
        return [s for s in self.services if router_ids is None or s["router_id"] in router_ids]

    def update_status(self, ctxt, statuses):
        self.log.append("update_status")
        self.release.wait(10)
        for report in statuses:
            self.reported[report["id"]] = report["status"]
            for conn_id, conn in report["ipsec_site_connections"].items():
                self.reported[conn_id] = conn["status"]
        return len(statuses)


def test_startup_sync_heartbeat_first_and_reports_batched(caplog):
    caplog.set_level(logging.INFO, logger="isthmus.agent.agent")
    transport = get_transport(cfg.ConfigOpts(), "fake://")
    fake = FakeServer()
    server = messaging.get_rpc_server(
        transport, messaging.Target(topic=topics.SERVER_TOPIC, server="server"), [fake],
        executor="threading")
    server.start()
    agent = VPNAgent("host-1", transport, [NoopDeviceDriver(AgentContext(host="host-1"))],
                     resync_interval_s=600, status_interval_s=600, report_interval_s=600)
    try:
        agent.start()
        wait_until(lambda: "update_status" in fake.log)
        # Every router went through the driver while the first report was out ...
        assert agent.queue.wait_idle(10)
        fake.release.set()
        objects = {s["id"] for s in fake.services} | {
            c["id"] for s in fake.services for c in s["ipsec_site_connections"]}
        wait_until(lambda: set(fake.reported) == objects)
        # ... so all their reports went in one more call, not one per router.
        assert fake.log.count("update_status") == 2
        assert set(fake.reported.values()) == {"ACTIVE"}
        # The agent said it was alive before it reported anything.
        assert fake.log.index("report_state") < fake.log.index("update_status")
        wait_until(lambda: "statuses of" in caplog.text)
        lines = [r.getMessage() for r in caplog.records
                 if r.getMessage().startswith("Agent start-up: ")]
        assert [line.split(": ")[1].split(" in ")[0] for line in lines] == [
            "connected to the message bus", "first fetch answered",
            f"device drivers synced {ROUTERS} routers",
            f"statuses of {ROUTERS} routers written back"]
        assert f"{2 * ROUTERS} services on {ROUTERS} routers" in lines[1]
    finally:
        fake.release.set()
        agent.stop()
        server.stop()
        server.wait()
        transport.cleanup()
