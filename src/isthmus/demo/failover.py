"""Agent failover on one machine: two agents for site a on the same bridges, one for b.

Used by ``tests/e2e/test_failover.py`` and ``benchmarks/failover.py``. Site a's
router is pinned to agent ``site-a``; ``site-a2`` has the same physical networks
(the same bridges) but its own host name, state directory and namespace prefix,
as a second machine on the same wires would. :meth:`FailoverWorld.kill` is what
"kill -9 the agent" means here: the agent stops at once (no heartbeat, no RPC
listener, no cleanup of anything) **and its data plane dies with it**: its
charons get SIGKILL and the devices of its router namespaces go down, as the
NICs of a host that died would. The namespaces and the charons' state files are
left on the machine: the leftovers the agent must remove when it comes back.
Without taking the data plane down, the dead agent's router would keep answering
on the bridges with the same MAC and addresses as the router the other agent
builds: two agents serving one router, which failover must never cause.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from isthmus.demo import privileged
from isthmus.demo.run import Api, apply_settings, build_vpn, site_settings
from isthmus.demo.sites import LAN, Fabric, _netns_list, _pids_in_namespaces, sh

SECOND = "a2"    # the second agent of site a


@dataclass
class FailoverWorld:
    """The server, the agents ``a``, ``a2`` and ``b`` (by name), and the VPN."""

    fabric: Fabric
    state: Path
    down_time_s: int
    confs: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    api: Api | None = None
    routers: list[str] = field(default_factory=list)
    transport: Any = None

    def prefix(self, name: str) -> str:
        """The router namespace prefix of agent ``name``."""
        return f"{self.fabric.prefix}-r{'x' if name == SECOND else name}-"

    def namespaces(self, name: str) -> list[str]:
        """The router namespaces agent ``name`` has on this machine."""
        return [n for n in _netns_list() if n.startswith(self.prefix(name))]

    def start_agent(self, name: str) -> Any:
        """Build and start agent ``name`` (again: a restart with empty memory)."""
        from isthmus.agent.service import build_agent

        self.agents[name] = build_agent(self.confs[name], self.transport)
        self.agents[name].start()
        return self.agents[name]

    def kill(self, name: str) -> None:
        """"kill -9" agent ``name``: it stops at once and its data plane dies (module doc)."""
        agent = self.agents.pop(name)
        agent.stop()   # loops, RPC listener and event listeners gone; nothing removed
        namespaces = self.namespaces(name)
        for pid in _pids_in_namespaces(namespaces):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for ns in namespaces:
            out = sh("ip", "-n", ns, "-o", "link", "show", check=False).stdout
            for line in out.splitlines():
                dev = line.split(":")[1].strip().split("@")[0]
                if dev != "lo":
                    sh("ip", "-n", ns, "link", "set", dev, "down", check=False)

    def router_host(self, router_id: str) -> str:
        """The agent host serving ``router_id`` according to the server."""
        assert self.api is not None
        return self.api.call("GET", f"/v2.0/routers/{router_id}")["router"]["isthmus:agent_host"]

    def tunnel_pings(self, timeout_s: float = 0.5) -> bool:
        """Whether host a reaches host b across the tunnel (one ping)."""
        result = sh("ip", "netns", "exec", self.fabric.ns("ha"), "ping", "-c", "1", "-W",
                    str(timeout_s), f"{LAN['b']}.2", check=False)
        return result.returncode == 0

    def wait_for_tunnel(self, timeout_s: float) -> float | None:
        """Seconds until a ping crosses the tunnel (``None``: not within ``timeout_s``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.tunnel_pings():
                return time.monotonic() - started
        return None


@contextlib.contextmanager
def failover_world(down_time_s: int = 4, report_interval_s: int = 1) -> Iterator[FailoverWorld]:
    """The fabric, a server with ``agent_down_time`` = ``down_time_s``, the three agents
    (heartbeats every ``report_interval_s``) and the VPN, router a on agent ``site-a``,
    everything removed on exit (namespaces, charons, bridges, state)."""
    import tempfile

    from isthmus import config, server
    from isthmus.rpc.transport import EMBEDDED_URL, get_transport

    fabric = Fabric()
    state = Path(tempfile.mkdtemp(prefix="ismfo-", dir="/tmp"))
    os.chmod(state, 0o755)
    world = FailoverWorld(fabric, state, down_time_s)
    rootwrap = privileged.write_config(state)
    runtime = http = None
    try:
        fabric.create()
        privileged.start_daemon(rootwrap, state / "privileged.log")
        for name in ("a", SECOND, "b"):
            (state / name).mkdir(mode=0o755)
            conf = config.load([])
            settings = site_settings(fabric, name[0], rootwrap, state / name)
            settings.update({"host": f"site-{name}", "agent_down_time": down_time_s,
                             "vpnagent.report_interval": report_interval_s,
                             "vpnagent.router_namespace_prefix": world.prefix(name)})
            apply_settings(conf, settings)
            world.confs[name] = conf
        world.transport = get_transport(world.confs["a"], EMBEDDED_URL)
        runtime = server.build(world.confs["a"], migrate=True, transport=world.transport)
        for name in ("a", SECOND, "b"):
            world.start_agent(name)
        from isthmus.api.http import HTTPServer
        http = HTTPServer.bind(runtime.app, "127.0.0.1", 0, threads=8, connection_limit=100,
                               idle_timeout=60, max_header_bytes=65536)
        stop_http = http.serve_in_thread()
        world.api = Api(f"http://127.0.0.1:{http.address[1]}")
        world.routers, _ = build_vpn(world.api, fabric)
        yield world
    finally:
        for agent in world.agents.values():
            agent.stop()
        if http is not None:
            stop_http()
        if runtime is not None:
            runtime.stop()
        namespaces = [n for name in ("a", SECOND, "b") for n in world.namespaces(name)]
        for pid in _pids_in_namespaces(namespaces):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for ns in namespaces:
            sh("ip", "netns", "del", ns, check=False)
        fabric.destroy()
        privileged.stop_daemon(rootwrap)
        from isthmus.demo.sites import stop_charons_under
        for name in ("a", SECOND, "b"):
            if (state / name).exists():
                stop_charons_under(state / name)
        import shutil
        shutil.rmtree(state, ignore_errors=True)
