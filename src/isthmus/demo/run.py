"""``isthmus demo [--check]``: two sites, one tunnel, a ping through it — then a clean machine.

Builds two routers and two hosts in network namespaces, runs Isthmus (API,
agent and the strongSwan driver, with the privileged helper) in this process,
creates the VPN through the HTTP API, waits for ACTIVE and pings across.
``--check`` does it unattended and exits 0 only if traffic crossed the tunnel,
the API showed the connections ACTIVE, and nothing was left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

from isthmus.demo import privileged
from isthmus.demo.sites import LAN, WAN, Sites, charon_pids, stop_charons_under
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_vpn(api: Api, sites: Sites) -> list[str]:
    """The two-site VPN through the API; returns the connection ids."""
    wan = api.create("networks", "network", name="wan", **{"router:external": True})
    wan_subnet = api.create("subnets", "subnet", network_id=wan["id"], ip_version=4,
                            cidr="198.51.100.0/24", gateway_ip=None)
    ike = api.create("vpn/ikepolicies", "ikepolicy", name="ike", ike_version="v2",
                     pfs="group14")
    ipsec = api.create("vpn/ipsecpolicies", "ipsecpolicy", name="esp", pfs="group14")
    services = {}
    for side in ("a", "b"):
        lan_net = api.create("networks", "network", name=f"lan-{side}")
        lan = api.create("subnets", "subnet", network_id=lan_net["id"], ip_version=4,
                         cidr=f"{LAN[side]}.0/24", gateway_ip=f"{LAN[side]}.1")
        router = api.create("routers", "router", name=f"router-{side}", **{
            "isthmus:namespace": sites.ns(f"r{side}"),
            "external_gateway_info": {"network_id": wan["id"], "external_fixed_ips": [
                {"subnet_id": wan_subnet["id"], "ip_address": WAN[side]}]}})
        api.call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": lan["id"]})
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
    return conns


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
def embedded_isthmus(state: Path, host: str = "demo-agent") -> Iterator[Api]:
    """API, agent and the strongSwan driver (kernel-libipsec) in this process, on ``state``."""
    from isthmus import config, server
    from isthmus.agent.service import build_agent
    from isthmus.rpc.transport import EMBEDDED_URL, get_transport

    rootwrap = privileged.write_config(state)
    conf = config.load([])
    apply_settings(conf, {"state_path": str(state), "host": host,
                          **strongswan_settings(rootwrap)})
    transport = get_transport(conf, EMBEDDED_URL)
    runtime = server.build(conf, migrate=True, transport=transport)
    agent = http = None
    try:
        agent = build_agent(conf, transport)
        agent.start()
        import waitress
        http = waitress.create_server(runtime.app, host="127.0.0.1", port=_free_port(),
                                      threads=8)
        threading.Thread(target=http.run, daemon=True).start()
        yield Api(f"http://127.0.0.1:{http.socket.getsockname()[1]}")
    finally:
        if agent is not None:
            agent.stop()
        if http is not None:
            http.close()
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
    sites = Sites()
    ok = False
    try:
        _say(f"building two sites in network namespaces {sites.prefix}-*")
        sites.create()
        with embedded_isthmus(state) as api:
            ok = _show_tunnel(api, sites, check, stop)
    except StopRequested:
        _say(f"{stop.received} received: stopping")
        ok = not check   # stopping the show is a normal end; an unfinished check is not
    finally:
        _say("cleaning up")
        leftovers = charon_pids(sites, "ra") + charon_pids(sites, "rb")
        sites.destroy()
        stop_charons_under(state)
        shutil.rmtree(state, ignore_errors=True)
        remaining = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                               text=True).stdout.split()
                     if n.startswith(sites.prefix)]
        clean = not remaining and not state.exists()
        _say(f"removed namespaces, {len(leftovers)} charon processes and {state}"
             if clean else f"left behind: {remaining}")
        ok = ok and clean
    return 0 if ok else 1


def _show_tunnel(api: Api, sites: Sites, check: bool, stop: StopSignals) -> bool:
    """Create the VPN, wait for ACTIVE, ping across; True if traffic crossed.

    Without ``check`` it then waits for a stop signal, leaving the tunnel up to try.
    """
    _say(f"Isthmus API on {api.url}/ (server, agent and strongSwan driver in this process)")
    conns = build_vpn(api, sites)
    _say("created networks, routers, policies, VPN services and 2 site connections")
    started = time.monotonic()
    statuses: list[str] = []
    while time.monotonic() - started < 30:
        statuses = [api.call("GET", f"/v2.0/vpn/ipsec-site-connections/{c}")[
            "ipsec_site_connection"]["status"] for c in conns]
        if all(s == "ACTIVE" for s in statuses):
            break
        time.sleep(0.2)
    _say(f"connection statuses after {time.monotonic() - started:.1f}s: {statuses}")
    ping = subprocess.run(["ip", "netns", "exec", sites.ns("ha"), "ping", "-c", "3", "-W",
                           "1", f"{LAN['b']}.2"], capture_output=True, text=True)
    print(ping.stdout, flush=True)
    ok = ping.returncode == 0 and all(s == "ACTIVE" for s in statuses)
    _say("traffic crossed the tunnel" if ok else "the tunnel did NOT carry traffic")
    if not check:
        stop.serving()   # from here a signal ends a successful run
        _say(f"try: ip netns exec {sites.ns('ha')} ping {LAN['b']}.2   — Ctrl-C cleans up")
        stop.requested.wait()
        _say(f"{stop.received} received: stopping")
    return ok
