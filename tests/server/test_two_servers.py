"""One deployment, two API servers: the same SQLite file, the same RabbitMQ vhost, two agents.

Server one runs two workers, server two one process; agents ``agent-a`` and
``agent-b`` (noop driver) report to whichever server RabbitMQ hands their calls
to. Any request works on either server, statuses from either agent show on
both, the event history and the placement read the same from both, and the
deployment's background work runs in exactly one of the three server processes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.agent.conftest import wait_until
from tests.agent.test_rabbitmq import (ISTHMUS, conn_status, connection, site,
                                       vhost)  # noqa: F401  (a fixture)
from tests.api.test_vpn_resources import CONNS
from tests.api.topology import ok
from tests.cli.test_commands import free_port, wait_for
from tests.cli.test_workers import WATCH_RUN

class Deployment:
    """Processes sharing ``tmp`` (the SQLite file) and one RabbitMQ vhost; logs in ``tmp``."""

    def __init__(self, tmp: Path, vhost_name: str) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.common = (f"state_path = {tmp}\n"
                       f"transport_url = rabbit://guest:guest@127.0.0.1:5672/{vhost_name}\n"
                       "agent_down_time = 6\nleader_lease_time = 9\ndebug = true\n"
                       "[vpnagent]\nreport_interval = 1\nresync_interval = 2\n"
                       "status_check_interval = 1\nrpc_timeout = 5\n")

    def conf(self, host: str, port: int = 0) -> Path:
        path = self.tmp / f"{host}.conf"
        path.write_text(f"[DEFAULT]\nhost = {host}\nbind_host = 127.0.0.1\n"
                        f"bind_port = {port or free_port()}\n{self.common}")
        return path

    def start(self, name: str, *args: str) -> subprocess.Popen:
        with open(self.tmp / f"{name}.log", "w") as log:
            proc = self.procs[name] = subprocess.Popen([ISTHMUS, *args], stdout=log,
                                                       stderr=subprocess.STDOUT)
        return proc

    def server(self, name: str, *args: str) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        wait_for(f"{url}/", self.start(name, "server", "--config-file",
                                       str(self.conf(name, port)), *args))
        return url

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for name, proc in self.procs.items():
            proc.terminate()
            try:
                assert proc.wait(timeout=30) == 0, f"{name} exit status"
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise


@pytest.fixture
def deployment(tmp_path, vhost):  # noqa: F811
    d = Deployment(tmp_path, vhost)
    subprocess.run([ISTHMUS, "db", "upgrade", "--config-file", str(d.conf("migrate"))],
                   check=True, capture_output=True)
    yield d
    try:
        d.stop_all()
    finally:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")


def clients(url: str) -> tuple[httpx.Client, httpx.Client]:
    """An admin and a member of project ``demo`` on the server at ``url``."""
    return (httpx.Client(base_url=url, timeout=30,
                         headers={"X-Project-Id": "admin", "X-Roles": "admin"}),
            httpx.Client(base_url=url, timeout=30, headers={"X-Project-Id": "demo"}))


def test_two_servers_two_agents_one_deployment(deployment):
    url_one = deployment.server("server-one", "--workers", "2")
    url_two = deployment.server("server-two")
    for host in ("agent-a", "agent-b"):
        deployment.start(host, "agent", "--config-file", str(deployment.conf(host)))
    admin1, member1 = clients(url_one)
    admin2, member2 = clients(url_two)
    for admin in (admin1, admin2):
        wait_until(lambda: sorted(a["host"] for a in admin.get("/v2.0/agents").json()[
            "agents"] if a["alive"]) == ["agent-a", "agent-b"], timeout_s=30)

    # The topology is built half on each server; the routers go one to each agent.
    public = ok(admin1.post("/v2.0/networks", json={"network": {
        "router:external": True}}))["network"]["id"]
    ok(admin2.post("/v2.0/subnets", json={"subnet": {
        "network_id": public, "ip_version": 4, "cidr": "172.24.5.0/24"}}))
    r1, s1 = site(admin1, member1, public, "10.1.0.0/24")
    r2, s2 = site(admin2, member2, public, "10.2.0.0/24")
    c1 = connection(member1, r1, s1, "10.51.0.0/24")
    c2 = connection(member2, r2, s2, "10.52.0.0/24")
    for member in (member1, member2):
        for c in (c1, c2):
            wait_until(lambda: conn_status(member, c) == "ACTIVE", timeout_s=20)
    placements = [{r: admin.get(f"/v2.0/routers/{r}").json()["router"]["isthmus:agent_host"]
                   for r in (r1, r2)} for admin in (admin1, admin2)]
    assert placements[0] == placements[1]
    assert set(placements[0].values()) == {"agent-a", "agent-b"}

    # A change on one server reaches the agent and shows on the other.
    ok(member2.put(f"{CONNS}/{c1}", json={"ipsec_site_connection": {
        "admin_state_up": False}}), 200)
    wait_until(lambda: conn_status(member1, c1) == "DOWN", timeout_s=20)
    ok(member1.put(f"{CONNS}/{c1}", json={"ipsec_site_connection": {
        "admin_state_up": True}}), 200)
    wait_until(lambda: conn_status(member2, c1) == "ACTIVE", timeout_s=20)

    # One event history: the same events, in the same order, on both servers.
    histories = [member.get("/v2.0/vpn/events", params={"resource_id": c1}).json()["events"]
                 for member in (member1, member2)]
    assert histories[0] == histories[1]
    statuses = [(e["old_status"], e["status"]) for e in histories[0] if e["kind"] == "status"]
    assert ("ACTIVE", "DOWN") in statuses and ("DOWN", "ACTIVE") in statuses, statuses

    # Deleted on one, gone on the other.
    ok(member1.delete(f"{CONNS}/{c2}"), 204)
    assert member2.get(f"{CONNS}/{c2}").status_code == 404

    # The dead-agent watch (every 2 s) ran in exactly one of the three server processes.
    wait_until(lambda: len(watch_runs(deployment)) >= 2, timeout_s=20)
    assert len(set(watch_runs(deployment))) == 1, watch_runs(deployment)
    for client in (admin1, member1, admin2, member2):
        client.close()


def watch_runs(deployment: Deployment) -> list[str]:
    """Process ids of the dead-agent watch's rounds, in both servers' logs."""
    return [pid for name in ("server-one", "server-two")
            for pid in WATCH_RUN.findall(deployment.log(name))]
