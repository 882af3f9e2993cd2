"""Server and two agents as separate processes over the RabbitMQ of this machine.

Each run uses its own RabbitMQ vhost. The agents must survive a server restart
and a RabbitMQ outage: afterwards, changes still reach them and statuses come back.
The RabbitMQ of the machine is shared, so the outage is a cut of the
:class:`ForwardingProxy` that Isthmus reaches it through, never a broker restart.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.agent.conftest import wait_until
from tests.api.test_vpn_resources import CONNS, SERVICES, make_policies
from tests.api.topology import ok
from tests.cli.test_commands import free_port, wait_for
from tests.rpc.forwarding_proxy import ForwardingProxy

ISTHMUS = str(Path(sys.executable).with_name("isthmus"))


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def drop_queues(vhost: str) -> None:
    """Delete the queues of ``vhost``: what a broker restart does to non-durable queues."""
    names = subprocess.run(["rabbitmqctl", "list_queues", "-p", vhost, "name", "--quiet",
                            "--no-table-headers"], check=True, capture_output=True, text=True,
                           timeout=120).stdout.split()
    for name in names:
        rabbitmqctl("delete_queue", "-p", vhost, name)


@pytest.fixture
def vhost():
    name = f"isthmus-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    rabbitmqctl("delete_vhost", name)


class Cluster:
    """An Isthmus server and agents, each its own process, logs under ``tmp``."""

    def __init__(self, tmp: Path, transport_url: str, agent_down_time: int = 8,
                 resync_interval: int = 2) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.common = (f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {self.port}\n"
                       f"state_path = {tmp}\ntransport_url = {transport_url}\n"
                       f"agent_down_time = {agent_down_time}\n\n[vpnagent]\n"
                       f"report_interval = 1\nresync_interval = {resync_interval}\n"
                       "status_check_interval = 1\nrpc_timeout = 5\n")

    def conf(self, host: str) -> Path:
        path = self.tmp / f"{host}.conf"
        path.write_text(self.common.replace("[DEFAULT]\n", f"[DEFAULT]\nhost = {host}\n"))
        return path

    def start(self, name: str, *args: str) -> None:
        log = open(self.tmp / f"{name}.log", "a")
        self.procs[name] = subprocess.Popen([ISTHMUS, *args], stdout=log,
                                            stderr=subprocess.STDOUT)

    def start_server(self) -> None:
        self.start("server", "server", "--config-file", str(self.conf("server-host")))
        wait_for(f"{self.url}/", self.procs["server"])

    def start_agent(self, host: str) -> None:
        self.start(host, "agent", "--config-file", str(self.conf(host)))

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.tmp.glob("*.log")))


    def upgrade_db(self) -> None:
        subprocess.run([ISTHMUS, "db", "upgrade", "--config-file",
                        str(self.conf("server-host"))], check=True, capture_output=True)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        print(self.logs())


@pytest.fixture
def proxy():
    """RabbitMQ, through a proxy that a test may cut (the broker itself is shared)."""
    p = ForwardingProxy(5672).start()
    yield p
    p.close()


@pytest.fixture
def cluster(tmp_path, vhost, proxy):
    c = Cluster(tmp_path, proxy.url(vhost))
    c.upgrade_db()
    c.start_server()
    c.start_agent("agent-a")
    c.start_agent("agent-b")
    yield c
    c.stop_all()


def site(admin: httpx.Client, member: httpx.Client, public: str, cidr: str) -> tuple[str, str]:
    """A router with a gateway and one private subnet; returns (router, subnet)."""
    net = ok(member.post("/v2.0/networks", json={"network": {}}))["network"]["id"]
    subnet = ok(member.post("/v2.0/subnets", json={"subnet": {
        "network_id": net, "ip_version": 4, "cidr": cidr}}))["subnet"]["id"]
    router = ok(member.post("/v2.0/routers", json={"router": {
        "external_gateway_info": {"network_id": public}}}))["router"]["id"]
    ok(member.put(f"/v2.0/routers/{router}/add_router_interface",
                  json={"subnet_id": subnet}), 200)
    return router, subnet


def connection(member: httpx.Client, router: str, subnet: str, peer: str) -> str:
    ike, ipsec = make_policies(member)
    service = ok(member.post(SERVICES, json={"vpnservice": {
        "router_id": router, "subnet_id": subnet}}))["vpnservice"]["id"]
    return ok(member.post(CONNS, json={"ipsec_site_connection": {
        "vpnservice_id": service, "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
        "peer_address": "203.0.113.9", "peer_id": "peer", "psk": "s",
        "peer_cidrs": [peer]}}))["ipsec_site_connection"]["id"]


def conn_status(member: httpx.Client, conn_id: str) -> str:
    return member.get(f"{CONNS}/{conn_id}").json()["ipsec_site_connection"]["status"]


def test_two_agents_over_rabbitmq_survive_restarts(cluster, proxy, vhost):
    admin = httpx.Client(base_url=cluster.url, timeout=30,
                         headers={"X-Project-Id": "admin", "X-Roles": "admin"})
    member = httpx.Client(base_url=cluster.url, timeout=30, headers={"X-Project-Id": "demo"})
    try:
        hosts = wait_until(lambda: sorted(a["host"] for a in admin.get(
            "/v2.0/agents").json()["agents"] if a["alive"]) == ["agent-a", "agent-b"],
            timeout_s=30)
        assert hosts
        public = ok(admin.post("/v2.0/networks", json={"network": {
            "router:external": True}}))["network"]["id"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": public, "ip_version": 4, "cidr": "172.24.5.0/24"}}))
        r1, s1 = site(admin, member, public, "10.1.0.0/24")
        r2, s2 = site(admin, member, public, "10.2.0.0/24")
        c1 = connection(member, r1, s1, "10.51.0.0/24")
        c2 = connection(member, r2, s2, "10.52.0.0/24")
        for c in (c1, c2):
            wait_until(lambda: conn_status(member, c) == "ACTIVE", timeout_s=15)
        placement = {admin.get(f"/v2.0/routers/{r}").json()["router"]["isthmus:agent_host"]
                     for r in (r1, r2)}
        assert placement == {"agent-a", "agent-b"}, "routers go to the least loaded agent"

        # The server restarts: the agents carry on, and new changes reach them.
        cluster.stop("server")
        cluster.start_server()
        c3 = connection(member, r1, s1, "10.53.0.0/24")
        wait_until(lambda: conn_status(member, c3) == "ACTIVE", timeout_s=20)

        # RabbitMQ goes away and comes back: the agents reconnect, changes still reach them.
        proxy.cut()
        drop_queues(vhost)
        proxy.restore()
        ok(member.put(f"{CONNS}/{c2}", json={"ipsec_site_connection": {
            "admin_state_up": False}}), 200)
        wait_until(lambda: conn_status(member, c2) == "DOWN", timeout_s=60)
        # Dropping the queues takes a few rabbitmqctl runs: agent-a may have been declared
        # dead meanwhile (its connection DOWN); it must be back without any API call.
        wait_until(lambda: conn_status(member, c1) == "ACTIVE", timeout_s=30)
    finally:
        admin.close()
        member.close()
