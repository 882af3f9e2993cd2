"""Heartbeats: a dead agent's routers go DOWN, and come back when it does."""

from __future__ import annotations

import pytest

from tests.agent.conftest import running_embedded, wait_until
from tests.agent.test_embedded import create_connection, status
from tests.api.test_vpn_resources import CONNS, SERVICES
from tests.api.topology import build


@pytest.fixture
def short_lived(tmp_path):
    with running_embedded(tmp_path, agent_down_time=2, **{"vpnagent.report_interval": 1,
                                                           "vpnagent.resync_interval": 1}) as env:
        yield env


def test_dead_agent_shows_down_then_recovers(short_lived):
    env = short_lived
    with env.api.client("adminproj", roles="admin") as admin, \
            env.api.client("demoproj") as member:
        topo = build(admin, member)
        service, conn = create_connection(member, topo)
        conn_url, service_url = f"{CONNS}/{conn['id']}", f"{SERVICES}/{service['id']}"
        wait_until(lambda: status(member, conn_url) == "ACTIVE", timeout_s=3)

        env.stop_agent()
        wait_until(lambda: status(member, conn_url) == "DOWN", timeout_s=6)
        assert status(member, service_url) == "DOWN"
        agent = admin.get("/v2.0/agents").json()["agents"][0]
        assert agent["alive"] is False

        env.start_agent()
        wait_until(lambda: status(member, conn_url) == "ACTIVE", timeout_s=6)
        assert status(member, service_url) == "ACTIVE"
        assert wait_until(lambda: admin.get("/v2.0/agents").json()["agents"][0]["alive"])
