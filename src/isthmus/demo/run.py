"""``isthmus demo [--check]``: two sites, one tunnel, a ping through it — then a clean machine.

Builds only the physical world (``sites.Fabric``: an internet bridge, a LAN
bridge per site with a host behind it, a host on the internet), runs Isthmus in
this process (one API server and one agent per site, which build the routers,
with the strongSwan driver and the privileged helper), creates networks,
routers and the VPN through the HTTP API, waits for ACTIVE and pings across
the tunnel and, through the router's SNAT, to the internet host. ``--check``
does it unattended and exits 0 only if traffic crossed the tunnel, the API
showed the connections ACTIVE, and nothing was left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from isthmus.demo import privileged
from isthmus.demo.sites import INTERNET_HOST, LAN, WAN, Fabric, stop_charons_under
from isthmus.lifecycle import StopRequested, StopSignals

CHARON = "/usr/lib/ipsec/charon"


class Api:
    """The few HTTP calls the demo makes (admin: no project header, noauth)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        """One JSON request; an HTTP error is a RuntimeError with its status and body."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Content-Type": "application/json"},
            data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path}: {err.code} {err.read().decode()}") from None
        return json.loads(raw) if raw else {}

    def create(self, collection: str, key: str, **attrs: Any) -> dict[str, Any]:
        """POST one object to ``collection``; returns it."""
        return self.call("POST", f"/v2.0/{collection}", {key: attrs})[key]


def _say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def build_vpn(api: Api, fabric: Fabric) -> tuple[list[str], list[str]]:
    """Networks, routers (pinned to each site's agent) and the two-site VPN through the
    API; returns the router ids and the connection ids."""
    internet = api.create("networks", "network", name="internet", **{
        "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    inet_subnet = api.create("subnets", "subnet", network_id=internet["id"], ip_version=4,
                             cidr="198.51.100.0/24", gateway_ip=INTERNET_HOST)
    ike = api.create("vpn/ikepolicies", "ikepolicy", name="ike", ike_version="v2",
                     pfs="group14")
    ipsec = api.create("vpn/ipsecpolicies", "ipsecpolicy", name="esp", pfs="group14")
    routers, services = [], {}
    for side in fabric.SITES:
        lan_net = api.create("networks", "network", name=f"lan-{side}", **{
            "provider:network_type": "flat", "provider:physical_network": f"lan-{side}"})
        lan = api.create("subnets", "subnet", network_id=lan_net["id"], ip_version=4,
                         cidr=f"{LAN[side]}.0/24", gateway_ip=f"{LAN[side]}.1")
        router = api.create("routers", "router", name=f"router-{side}", **{
            "isthmus:agent_host": f"site-{side}",
            "external_gateway_info": {"network_id": internet["id"], "external_fixed_ips": [
                {"subnet_id": inet_subnet["id"], "ip_address": WAN[side]}]}})
        api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": lan["id"]})
        routers.append(router["id"])
        services[side] = api.create("vpn/vpnservices", "vpnservice", name=f"vpn-{side}",
                                    router_id=router["id"], subnet_id=lan["id"])
    conns = []
    psk = os.urandom(12).hex()   # both ends share it
    for own, other in (("a", "b"), ("b", "a")):
        conn = api.create("vpn/ipsec-site-connections", "ipsec_site_connection",
                          name=f"{own}-to-{other}", vpnservice_id=services[own]["id"],
                          ikepolicy_id=ike["id"], ipsecpolicy_id=ipsec["id"],
                          peer_address=WAN[other], peer_id=WAN[other],
                          peer_cidrs=[f"{LAN[other]}.0/24"], psk=psk)
        conns.append(conn["id"])
    return routers, conns


def site_settings(fabric: Fabric, side: str, rootwrap_conf: Path, state: Path
                  ) -> dict[str, Any]:
    """Site ``side``'s agent: its host, state directory, namespace prefix, bridges and
    the strongSwan driver (the demo's and the end-to-end tests' setup)."""
    return {"host": f"site-{side}", "state_path": str(state),
            "vpnagent.physical_networks": fabric.physical_networks(side),
            "vpnagent.router_namespace_prefix": fabric.router_prefix(side),
            "vpnagent.rootwrap_config": str(rootwrap_conf),
            **strongswan_settings(rootwrap_conf)}


def strongswan_settings(rootwrap_conf: Path) -> dict[str, Any]:
    """Options (``group.name``) for the strongSwan driver on kernel-libipsec.

    One definition, so the demo and the end-to-end tests run the same setup.
    """
    return {
        "service_providers.service_provider": ["VPN:strongswan:strongswan:default"],
        "vpnagent.vpn_device_driver": ["strongswan"],
        "vpnagent.status_check_interval": 1,
        "strongswan.kernel_libipsec": True,
        "strongswan.rootwrap_config": str(rootwrap_conf),
    }


def apply_settings(conf: Any, settings: dict[str, Any]) -> None:
    """Set options (``group.name``) on ``conf``: the demo's and the end-to-end tests' way.

    The options of the device drivers ``settings`` names are registered first: the
    agent would register them only when it loads the drivers, after these are set.
    """
    from isthmus.drivers.loader import register_options

    for spec in settings.get("vpnagent.vpn_device_driver", ()):
        register_options(spec, "device", conf)
    for name, value in settings.items():
        group, _, opt = name.rpartition(".")
        conf.set_override(opt, value, group=group or None)


@contextlib.contextmanager
def embedded_isthmus(state: Path, fabric: Fabric) -> Iterator[Api]:
    """The API server and one agent per site (building the routers, strongSwan on
    kernel-libipsec) in this process, on ``state``: site a's agent shares the
    server's configuration, site b's has its own (host, state, prefix, bridges)."""
    from isthmus import config, server
    from isthmus.agent.service import build_agent
    from isthmus.rpc.transport import EMBEDDED_URL, get_transport

    rootwrap = privileged.write_config(state)
    privileged.start_daemon(rootwrap, state / "privileged.log")   # its audit lines: not here
    confs = []
    for side in fabric.SITES:
        (state / side).mkdir(mode=0o755)
        conf = config.load([])
        apply_settings(conf, site_settings(fabric, side, rootwrap, state / side))
        confs.append(conf)
    transport = get_transport(confs[0], EMBEDDED_URL)
    runtime = server.build(confs[0], migrate=True, transport=transport)
    agents: list[Any] = []
    http = None
    try:
        for conf in confs:
            agents.append(build_agent(conf, transport))
            agents[-1].start()
        from isthmus.api.http import HTTPServer
        http = HTTPServer.bind(runtime.app, "127.0.0.1", 0, threads=8, connection_limit=100,
                               idle_timeout=60, max_header_bytes=65536)
        stop_http = http.serve_in_thread()
        yield Api(f"http://127.0.0.1:{http.address[1]}")
    finally:
        for agent in agents:
            agent.stop()
        if http is not None:
            stop_http()
        runtime.stop()
        privileged.stop_daemon(rootwrap)


def demo(check: bool, stop: StopSignals) -> int:
    """Run the demo; SIGTERM/SIGINT (Ctrl-C) at any point cleans up and ends it.

    Exit 0 when nothing was left behind, unless ``--check`` found no traffic
    or was interrupted before its check finished.
    """
    if os.geteuid() != 0:
        print("isthmus demo: run it as root (it creates network namespaces and runs charon)")
        return 2
    if not os.path.exists(CHARON):
        print("isthmus demo: strongSwan is not installed: apt-get install strongswan-charon "
              "libcharon-extra-plugins libstrongswan-standard-plugins")
        return 2
    state = Path(tempfile.mkdtemp(prefix="isthmus-demo-"))
    os.chmod(state, 0o755)
    fabric = Fabric()
    ok = False
    try:
        _say(f"building the physical world: bridges {fabric.internet_bridge} (internet), "
             f"{fabric.lan_bridge('a')} and {fabric.lan_bridge('b')} (LANs), and hosts in "
             f"network namespaces {fabric.prefix}-*")
        fabric.create()
        with embedded_isthmus(state, fabric) as api:
            ok = _show_tunnel(api, fabric, check, stop)
    except StopRequested:
        _say(f"{stop.received} received: stopping")
        ok = not check   # stopping the show is a normal end; an unfinished check is not
    finally:
        _say("cleaning up")
        leftovers = fabric.charon_pids()
        fabric.destroy()
        for side in fabric.SITES:
            stop_charons_under(state / side)
        shutil.rmtree(state, ignore_errors=True)
        remaining = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                               text=True).stdout.split()
                     if n.startswith(fabric.prefix)]
        remaining += [link for link in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                                      text=True).stdout.split("\n")
                      if f": {fabric.prefix}" in link]
        clean = not remaining and not state.exists()
        _say(f"removed namespaces, bridges, {len(leftovers)} charon processes and {state}"
             if clean else f"left behind: {remaining}")
        ok = ok and clean
    return 0 if ok else 1


def _get(api: Api, collection: str, key: str, obj_id: str) -> dict[str, Any]:
    return api.call("GET", f"/v2.0/{collection}/{obj_id}")[key]


def _wait(what: Any, timeout_s: float) -> tuple[bool, float]:
    """Poll ``what()`` until true or ``timeout_s``; (whether it became true, seconds)."""
    started = time.monotonic()
    while not (done := what()) and time.monotonic() - started < timeout_s:
        time.sleep(0.2)
    return bool(done), time.monotonic() - started


def _ping(fabric: Fabric, src: str, dst: str) -> bool:
    ping = subprocess.run(["ip", "netns", "exec", fabric.ns(src), "ping", "-c", "3", "-W",
                           "1", dst], capture_output=True, text=True)
    print(ping.stdout, flush=True)
    return ping.returncode == 0


def _show_tunnel(api: Api, fabric: Fabric, check: bool, stop: StopSignals) -> bool:
    """Create the networks, routers and VPN, wait for ACTIVE, ping across; True if
    traffic crossed.

    Without ``check`` it then waits for a stop signal, leaving the tunnel up to try.
    """
    _say(f"Isthmus API on {api.url}/ (server, an agent per site and the strongSwan "
         "driver in this process)")
    routers, conns = build_vpn(api, fabric)
    _say("created provider networks, routers (one per site's agent), policies, VPN "
         "services and 2 site connections through the API")
    built, _ = _wait(lambda: all(_get(api, "routers", "router", r)["status"] == "ACTIVE"
                                    for r in routers), 30)
    for router_id, side in zip(routers, fabric.SITES):
        router = _get(api, "routers", "router", router_id)
        _say(f"{router['name']}: {router['status']}, built by agent "
             f"site-{side} in namespace {fabric.router_prefix(side)}{router_id}"
             + (f" ({router['isthmus:status_detail']})"
                if router.get("isthmus:status_detail") else ""))
    statuses: list[str] = []

    def active() -> bool:
        statuses[:] = [_get(api, "vpn/ipsec-site-connections", "ipsec_site_connection",
                            c)["status"] for c in conns]
        return all(s == "ACTIVE" for s in statuses)

    up, took = _wait(active, 30)
    _say(f"connection statuses after {took:.1f}s: {statuses}")
    _say(f"host-a ({LAN['a']}.2) pings host-b ({LAN['b']}.2) through the tunnel:")
    ok = _ping(fabric, "ha", f"{LAN['b']}.2") and built and up
    _say("traffic crossed the tunnel" if ok else "the tunnel did NOT carry traffic")
    _say(f"host-a pings the internet host {INTERNET_HOST} (which has no route to the "
         "LANs) through router-a's SNAT:")
    _say("reached through SNAT" if _ping(fabric, "ha", INTERNET_HOST) else
         "the internet host did NOT answer")
    if not check:
        stop.serving()   # from here a signal ends a successful run
        _say(f"try: ip netns exec {fabric.ns('ha')} ping {LAN['b']}.2   — Ctrl-C cleans up")
        stop.requested.wait()
        _say(f"{stop.received} received: stopping")
    return ok
