"""An embedded Isthmus (server + agent in one process, in-memory RPC) for agent tests."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import httpx
import pytest

from isthmus import config, server
from isthmus.agent.service import build_agent
from isthmus.demo.run import apply_settings
from isthmus.rpc.transport import EMBEDDED_URL, get_transport
from tests.api.topology import Topology, build
from tests.conftest import RunningServer, start_server


@dataclass
class Embedded:
    api: RunningServer
    runtime: server.Runtime
    conf: Any
    transport: Any
    agent: Any = None

    def start_agent(self, host: str | None = None):
        if host:
            self.conf.set_override("host", host)
        self.agent = build_agent(self.conf, self.transport, self.runtime.registry)  # as `up`
        self.agent.start()
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def stop(self) -> None:
        """Stop the agent (if one runs), the API and the server's threads."""
        self.stop_agent()
        self.api.stop()
        self.runtime.stop()


def wait_until(check: Callable[[], Any], timeout_s: float = 5, step_s: float = 0.02) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with its last value."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"condition not met within {timeout_s}s: last value {value!r}")


def make_embedded(tmp_path, config_files: list[str] | None = None,
                  **overrides: Any) -> Embedded:
    conf = config.load([], config_files)
    conf.set_override("state_path", str(tmp_path))
    conf.set_override("host", "agent-embedded")
    apply_settings(conf, overrides)
    transport = get_transport(conf, EMBEDDED_URL)
    runtime = server.build(conf, migrate=True, transport=transport)
    api = start_server(config.database_url(conf), migrate=False, app=runtime.app,
                       services=runtime.services)
    return Embedded(api, runtime, conf, transport)


@contextlib.contextmanager
def running_embedded(tmp_path, config_files: list[str] | None = None,
                     **overrides: Any) -> Iterator[Embedded]:
    """:func:`make_embedded` with its agent started; everything stopped at the end."""
    env = make_embedded(tmp_path, config_files, **overrides)
    try:
        env.start_agent()
        yield env
    finally:
        env.stop()


@pytest.fixture
def embedded(tmp_path) -> Iterator[Embedded]:
    with running_embedded(tmp_path, **{"vpnagent.status_check_interval": 1}) as env:
        yield env


@pytest.fixture
def admin(embedded) -> Iterator[httpx.Client]:
    with embedded.api.client("adminproj", roles="admin,member,reader") as client:
        yield client


@pytest.fixture
def member(embedded) -> Iterator[httpx.Client]:
    with embedded.api.client("demoproj") as client:
        yield client


@pytest.fixture
def topo(admin, member) -> Topology:
    return build(admin, member)
