"""Agents that take over (issue 14 item 4): a router fails over to a live agent, and
the dead agent, back, removes what it left (``isthmus.demo.failover``).

Two agents for site a (``site-a``, ``site-a2``: own host names, namespace
prefixes and state directories) are plugged into the same bridges; site a's router
is on ``site-a`` with a live tunnel to site b. "kill -9" stops ``site-a`` at once
and kills its data plane (its charons get SIGKILL, its routers' devices go down:
a dead host's NICs), leaving its namespace and charon files behind. Then:

1. the server declares it dead after ``agent_down_time`` (4 s here) and moves the
   router to ``site-a2``, which builds it (namespace, devices, NAT, charon) and the
   tunnel: pings cross again (the time is printed; deadlines are bounds, not goals);
2. ``site-a`` started again (empty memory) asks the server, removes its old
   namespace and charon files, and leaves ``site-a2``'s charon and namespace alone:
   pings still cross, and the router stays on ``site-a2``.
"""

from __future__ import annotations

import os
import time

import pytest

from isthmus.demo.failover import SECOND, failover_world
from isthmus.demo.sites import _is_charon, _pids_in_namespaces
from tests.agent.conftest import wait_until

DOWN_TIME_S = 4


@pytest.fixture
def world(privileged_conf):
    with failover_world(down_time_s=DOWN_TIME_S) as made:
        yield made


def charons(world, name: str) -> list[int]:
    return [p for p in _pids_in_namespaces(world.namespaces(name)) if _is_charon(p)]


def test_router_fails_over_and_the_old_agent_cleans_up(world):
    router_a = world.routers[0]
    wait_until(world.tunnel_pings, timeout_s=60, step_s=0.2)
    old_ns = world.namespaces("a")
    assert len(old_ns) == 1 and router_a in old_ns[0]
    assert world.namespaces(SECOND) == []

    # 1. kill -9 site-a (and its data plane): the router moves, traffic comes back.
    killed = time.monotonic()
    world.kill("a")
    assert not world.tunnel_pings(timeout_s=1)
    recovered = world.wait_for_tunnel(timeout_s=DOWN_TIME_S + 40)
    assert recovered is not None, "no traffic through site-a2"
    print(f"traffic back {time.monotonic() - killed:.1f}s after the kill "
          f"(agent_down_time {DOWN_TIME_S}s)")
    assert world.router_host(router_a) == f"site-{SECOND}"
    new_ns = world.namespaces(SECOND)
    assert len(new_ns) == 1 and router_a in new_ns[0]
    new_charons = charons(world, SECOND)
    assert new_charons
    assert world.namespaces("a") == old_ns          # leftovers, until site-a returns
    assert os.path.isdir(world.state / "a" / "strongswan" / router_a)

    # 2. site-a returns: it removes its leftovers only, after asking the server.
    world.start_agent("a")
    wait_until(lambda: not world.namespaces("a"), timeout_s=20, step_s=0.1)
    wait_until(lambda: not os.path.exists(world.state / "a" / "strongswan" / router_a),
               timeout_s=10, step_s=0.1)
    time.sleep(2)   # heartbeats and a status poll of every agent have run
    assert world.router_host(router_a) == f"site-{SECOND}"
    assert world.namespaces(SECOND) == new_ns
    assert charons(world, SECOND) == new_charons
    assert world.tunnel_pings(timeout_s=2)
