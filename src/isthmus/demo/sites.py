"""Two VPN sites built from network namespaces, and their cleanup.

:class:`Fabric` is the physical world only (bridges and hosts): the routers are
built by Isthmus agents (``[vpnagent] physical_networks``) from what the API says.
:class:`Sites` builds the routers too, for a router whose namespace exists
already (``isthmus:namespace``, mode ``external``):

    host-a (10.71.0.2) ── router-a ══ WAN 198.51.100.0/24 ══ router-b ── host-b (10.72.0.2)
                          .11                               .12

Router namespaces also carry a second LAN each (10.73.0.1 / 10.74.0.1 on their
loopback) for a second connection between the same routers.
Everything is named with a per-run prefix and removed by :meth:`Sites.destroy`,
whatever state the test left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from isthmus.drivers.device.strongswan import launcher

WAN = {"a": "198.51.100.11", "b": "198.51.100.12"}
LAN = {"a": "10.71.0", "b": "10.72.0"}
LAN2 = {"a": "10.73.0", "b": "10.74.0"}
INTERNET_HOST = "198.51.100.1"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (no shell), capturing its output; failing raises unless not ``check``."""
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=60)


@dataclass
class Sites:
    """Two sites in network namespaces: a router and a host each, the routers joined by a WAN link.

    Names carry a random prefix, so that several demos (or a crashed one) never collide."""

    prefix: str = field(default_factory=lambda: "ism" + uuid.uuid4().hex[:5])

    def ns(self, role: str) -> str:        # role: ra, rb, ha, hb
        """The namespace of ``role``: ``ra``/``rb`` (routers) or ``ha``/``hb`` (hosts)."""
        return f"{self.prefix}-{role}"

    def create(self) -> None:
        """Create the namespaces, links and addresses of both sites."""
        for role in ("ra", "rb", "ha", "hb"):
            sh("ip", "netns", "add", self.ns(role))
            sh("ip", "-n", self.ns(role), "link", "set", "lo", "up")
        p = self.prefix
        sh("ip", "link", "add", f"{p}wa", "netns", self.ns("ra"), "type", "veth",
           "peer", "name", f"{p}wb", "netns", self.ns("rb"))
        for side in ("a", "b"):
            router, host = self.ns(f"r{side}"), self.ns(f"h{side}")
            sh("ip", "-n", router, "addr", "add", f"{WAN[side]}/24", "dev", f"{p}w{side}")
            sh("ip", "-n", router, "link", "set", f"{p}w{side}", "up")
            sh("ip", "link", "add", f"{p}l{side}", "netns", router, "type", "veth",
               "peer", "name", f"{p}h{side}", "netns", host)
            sh("ip", "-n", router, "addr", "add", f"{LAN[side]}.1/24", "dev", f"{p}l{side}")
            sh("ip", "-n", router, "link", "set", f"{p}l{side}", "up")
            sh("ip", "-n", router, "addr", "add", f"{LAN2[side]}.1/24", "dev", "lo")
            sh("ip", "-n", host, "addr", "add", f"{LAN[side]}.2/24", "dev", f"{p}h{side}")
            sh("ip", "-n", host, "link", "set", f"{p}h{side}", "up")
            sh("ip", "-n", host, "route", "add", "default", "via", f"{LAN[side]}.1")
            sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def ping(self, src: str, dst: str, count: int = 3) -> bool:
        """Whether ``dst`` answers pings from namespace ``src``."""
        result = sh("ip", "netns", "exec", self.ns(src), "ping", "-c", str(count), "-W", "1",
                    "-i", "0.2", dst, check=False)
        return result.returncode == 0

    def capture_wan(self, side: str, seconds: float, packets: int = 20) -> subprocess.Popen:
        """tcpdump on a router's WAN link (start before traffic, then ``.communicate()``)."""
        return subprocess.Popen(
            ["timeout", str(seconds), "ip", "netns", "exec", self.ns(f"r{side}"), "tcpdump",
             "-l", "-n", "-c", str(packets), "-i", f"{self.prefix}w{side}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def set_wan(self, side: str, up: bool) -> None:
        """Take the WAN link of router ``side`` up or down (to show a tunnel coming back)."""
        sh("ip", "-n", self.ns(f"r{side}"), "link", "set", f"{self.prefix}w{side}",
           "up" if up else "down")

    def destroy(self, state_dir: Path | None = None) -> None:
        """Kill every charon of this run, remove namespaces and files."""
        for pid in _pids_in_namespaces([self.ns(r) for r in ("ra", "rb", "ha", "hb")]):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for role in ("ra", "rb", "ha", "hb"):
            sh("ip", "netns", "del", self.ns(role), check=False)


def _pids_in_namespaces(names: list[str]) -> list[int]:
    pids: list[int] = []
    for name in names:
        result = sh("ip", "netns", "pids", name, check=False)
        pids += [int(p) for p in result.stdout.split()]
    return pids


def charon_pids(sites: Sites, role: str) -> list[int]:
    """The charon processes in the namespace of ``role``."""
    return [p for p in _pids_in_namespaces([sites.ns(role)])
            if os.path.exists(f"/proc/{p}/exe") and
            os.readlink(f"/proc/{p}/exe") == "/usr/lib/ipsec/charon"]


def stop_charons_under(state_path: Path) -> int:
    """Stop the charon of every router the agent on ``state_path`` started (even in a
    namespace that is already gone) and remove its files; returns how many routers."""
    routers = state_path / "strongswan"
    names = [p.name for p in routers.iterdir()] if routers.is_dir() else []
    ids = [n for n in names if launcher.ROUTER_ID.fullmatch(n)]
    for router_id in ids:
        launcher.stop(router_id)
    return len(ids)


@dataclass
class Fabric:
    """The physical world of two sites, without their routers::

        host-a ── lan-a bridge ──(router-a)── internet bridge ──(router-b)── lan-b bridge ── host-b
        10.71.0.2                               │                              10.72.0.2
                                       internet host 198.51.100.1 (no route to the LANs)

    Agents plug routers into the bridges: :meth:`physical_networks` is each site's
    ``[vpnagent] physical_networks`` and :meth:`router_prefix` its
    ``router_namespace_prefix``. Everything is named after a random prefix and
    removed by :meth:`destroy`, routers' namespaces included, whatever state was left.
    """

    prefix: str = field(default_factory=lambda: "ism" + uuid.uuid4().hex[:5])
    SITES = ("a", "b")

    def ns(self, role: str) -> str:        # role: ha, hb (LAN hosts), inet (internet host)
        """The namespace of host ``role``: ``ha``, ``hb`` or ``inet``."""
        return f"{self.prefix}-{role}"

    @property
    def internet_bridge(self) -> str:
        """The bridge between the sites' routers and the internet host."""
        return f"{self.prefix}-in"

    def lan_bridge(self, side: str) -> str:
        """The bridge of one site's LAN (``side`` a or b)."""
        return f"{self.prefix}-l{side}"

    def physical_networks(self, side: str) -> list[str]:
        """``[vpnagent] physical_networks`` of site ``side``'s agent."""
        return [f"public:{self.internet_bridge}", f"lan-{side}:{self.lan_bridge(side)}"]

    def router_prefix(self, side: str) -> str:
        """``[vpnagent] router_namespace_prefix`` of site ``side``'s agent."""
        return f"{self.prefix}-r{side}-"

    def router_namespaces(self, side: str | None = None) -> list[str]:
        """The namespaces the agents built for their routers (of one site or both)."""
        prefixes = tuple(self.router_prefix(s) for s in ((side,) if side else self.SITES))
        return [n for n in _netns_list() if n.startswith(prefixes)]

    def _hosts(self) -> dict[str, tuple[str, str, str]]:
        """role -> (bridge, address/prefixlen, default gateway or "")."""
        hosts = {f"h{side}": (self.lan_bridge(side), f"{LAN[side]}.2/24", f"{LAN[side]}.1")
                 for side in self.SITES}
        hosts["inet"] = (self.internet_bridge, f"{INTERNET_HOST}/24", "")
        return hosts

    def create(self) -> None:
        """Create the bridges and the three hosts (the routers are the agents' work)."""
        for bridge in (self.internet_bridge, *(self.lan_bridge(s) for s in self.SITES)):
            sh("ip", "link", "add", bridge, "type", "bridge")
            sh("ip", "link", "set", bridge, "up")
        for role, (bridge, address, gateway) in self._hosts().items():
            ns = self.ns(role)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "link", "add", f"{self.prefix}{role}", "master", bridge, "up", "type",
               "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            if gateway:   # the internet host has no route back to the LANs: only SNAT answers
                sh("ip", "-n", ns, "route", "add", "default", "via", gateway)

    def ping(self, src: str, dst: str, count: int = 3) -> bool:
        """Whether ``dst`` answers pings from host ``src``."""
        result = sh("ip", "netns", "exec", self.ns(src), "ping", "-c", str(count), "-W", "1",
                    "-i", "0.2", dst, check=False)
        return result.returncode == 0

    def capture_internet(self, seconds: float, packets: int = 20) -> subprocess.Popen:
        """tcpdump on the internet bridge (start before traffic, then ``.communicate()``)."""
        return subprocess.Popen(
            ["timeout", str(seconds), "tcpdump", "-l", "-n", "-c", str(packets), "-i",
             self.internet_bridge], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def bridge_ports(self) -> dict[str, list[str]]:
        """The devices plugged into each of this world's bridges, by bridge."""
        ports: dict[str, list[str]] = {}
        for bridge in (self.internet_bridge, *(self.lan_bridge(s) for s in self.SITES)):
            out = sh("ip", "-o", "link", "show", "master", bridge, check=False).stdout
            ports[bridge] = [line.split(":")[1].strip().split("@")[0]
                             for line in out.splitlines() if line.strip()]
        return ports

    def charon_pids(self) -> list[int]:
        """The charon processes in this world's router namespaces."""
        return [p for p in _pids_in_namespaces(self.router_namespaces()) if _is_charon(p)]

    def destroy(self) -> None:
        """Kill what runs in the routers' namespaces, remove them, the hosts and the bridges."""
        routers = self.router_namespaces()
        for pid in _pids_in_namespaces(routers):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for ns in routers + [self.ns(role) for role in self._hosts()]:
            sh("ip", "netns", "del", ns, check=False)
        for bridge, ports in self.bridge_ports().items():
            for port in ports:   # host ends left by a router namespace something kept alive
                sh("ip", "link", "del", port, check=False)
            sh("ip", "link", "del", bridge, check=False)


def _netns_list() -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list", check=False).stdout.splitlines()
            if line.strip()]


def _is_charon(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/exe") == "/usr/lib/ipsec/charon"
    except OSError:
        return False
