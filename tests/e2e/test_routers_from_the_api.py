"""Two sites whose routers the agents build from the API (issue 12 item 5).

The test builds only the physical world (``isthmus.demo.sites.Fabric``): an
"internet" bridge with a host on it that has no route back to the LANs, and per
site a LAN bridge with a host behind it. One server and one agent per site run
in this process (in-memory RPC); each agent has its own host, state directory,
namespace prefix and ``physical_networks``. Everything else is made through
openstacksdk: provider networks, routers pinned to the sites' agents, interfaces,
the VPN. In order:

1. a router on a network without ``provider:physical_network`` is ERROR, and says why;
2. routers and ports are ACTIVE; the LAN hosts ping each other through the tunnel
   (ESP-in-UDP on the internet bridge, no ICMP between the LANs) while a LAN host
   reaches the internet host through SNAT (sources seen: the router's WAN IP), so
   the NAT exemption is exactly the VPN's CIDRs;
3. an agent killed and restarted drops no tunnel (same CHILD_SA SPIs, same devices,
   no privileged write) and pings pass right after;
4. removing an interface, clearing a gateway and deleting routers leave nothing
   behind: no device in the namespace, no ``ih-*`` on the bridges, no SNAT rule, no
   namespace.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from isthmus import config
from isthmus.agent.routers import names
from isthmus.agent.service import build_agent
from isthmus.demo import privileged
from isthmus.demo.run import apply_settings, site_settings
from isthmus.demo.sites import INTERNET_HOST, LAN, WAN, Fabric, sh, stop_charons_under
from tests.agent.conftest import Embedded, make_embedded, wait_until
from tests.e2e.conftest import sdk_for

PSK = "e2e-routers-from-the-api"
EXTRA = "10.73.0"   # a second subnet on site a's LAN network: the interface removed mid-test


@dataclass
class World:
    fabric: Fabric
    env: Embedded                  # the server, and site a's agent (env.agent)
    confs: dict[str, Any]
    agents: dict[str, Any]

    def restart_agent(self, side: str) -> Any:
        """Stop site ``side``'s agent object and start a new one with the same configuration."""
        self.agents[side].stop()
        self.agents[side] = build_agent(self.confs[side], self.env.transport)
        self.agents[side].start()
        return self.agents[side]


@pytest.fixture
def world(short_tmp, privileged_conf, fabric) -> Iterator[World]:
    states = {side: short_tmp / side for side in ("a", "b")}
    for state in states.values():
        state.mkdir(mode=0o755)
    env = make_embedded(states["a"], **site_settings(fabric, "a", privileged_conf, states["a"]))
    conf_b = config.load([])
    apply_settings(conf_b, site_settings(fabric, "b", privileged_conf, states["b"]))
    made = World(fabric, env, {"a": env.conf, "b": conf_b}, {})
    try:
        for side in ("a", "b"):
            made.agents[side] = build_agent(made.confs[side], env.transport)
            made.agents[side].start()
        yield made
    finally:
        for agent in made.agents.values():
            agent.stop()
        env.stop()
        privileged.stop_daemon(privileged_conf)
        for state in states.values():
            stop_charons_under(state)


@pytest.fixture
def sdk(world) -> Iterator[Any]:
    yield from sdk_for(world.env.api.url)


# -- API helpers ------------------------------------------------------------------------------

def post(sdk, collection: str, key: str, **body: Any) -> dict:
    """POST with attributes the SDK does not know (provider:*, isthmus:agent_host)."""
    response = sdk.network.post(f"/{collection}", json={key: body})
    assert response.status_code == 201, response.text
    return response.json()[key]


def provider_network(sdk, name: str, physnet: str | None, **extra: Any) -> dict:
    provider = {"provider:network_type": "flat", "provider:physical_network": physnet} \
        if physnet else {}
    return post(sdk, "networks", "network", name=name, **provider, **extra)


def router_of(sdk, router_id: str) -> dict:
    return sdk.network.get(f"/routers/{router_id}").json()["router"]


def port_statuses(sdk, router_id: str) -> dict[str, str]:
    return {p.id: p.status for p in sdk.network.ports(device_id=router_id)}


def conn_status(sdk, conn) -> str:
    return sdk.network.get_vpn_ipsec_site_connection(conn.id).status


# -- what exists on the host ----------------------------------------------------------------

def devices(ns: str) -> dict[str, int]:
    """Device name -> ifindex in namespace ``ns``."""
    return {link["ifname"]: link["ifindex"]
            for link in json.loads(sh("ip", "-j", "-n", ns, "link", "show").stdout)}


def snat_rules(ns: str) -> list[str]:
    return [line for line in sh("ip", "netns", "exec", ns, "iptables", "-t", "nat",
                                "-S").stdout.splitlines() if "isthmus-snat" in line]


def host_ends(fabric: Fabric) -> list[str]:
    """The routers' veth ends (``ih-*``) plugged into this world's bridges."""
    return [p for ports in fabric.bridge_ports().values() for p in ports
            if p.startswith(names.HOST_PREFIX)]


def child_spis(agent, router_id: str) -> dict[str, list[str]]:
    charon = agent.drivers[0]._charons[router_id]
    return {name: sorted(info["spis"]) for name, info in charon.sas().items()}


# -- the scenario ---------------------------------------------------------------------------

def test_routers_built_from_the_api(world, sdk):
    fabric, net = world.fabric, sdk.network
    started = time.monotonic()

    # The internet and the LANs: flat provider networks on the agents' physical networks.
    internet = provider_network(sdk, "internet", "public", **{"router:external": True})
    inet_subnet = net.create_subnet(network_id=internet["id"], ip_version=4,
                                    cidr="198.51.100.0/24", gateway_ip=INTERNET_HOST)
    sites: dict[str, dict[str, Any]] = {}
    for side in ("a", "b"):
        lan_net = provider_network(sdk, f"lan-{side}", f"lan-{side}")
        lan = net.create_subnet(network_id=lan_net["id"], ip_version=4,
                                cidr=f"{LAN[side]}.0/24", gateway_ip=f"{LAN[side]}.1")
        router = post(sdk, "routers", "router", name=f"router-{side}", **{
            "isthmus:agent_host": f"site-{side}",
            "external_gateway_info": {"network_id": internet["id"], "external_fixed_ips": [
                {"subnet_id": inet_subnet.id, "ip_address": WAN[side]}]}})
        net.add_interface_to_router(router["id"], subnet_id=lan.id)
        sites[side] = {"router": router, "lan": lan, "lan_net": lan_net,
                       "ns": names.namespace_name(fabric.router_prefix(side), router["id"])}
    a, b = sites["a"], sites["b"]
    extra = net.create_subnet(network_id=a["lan_net"]["id"], ip_version=4,
                              cidr=f"{EXTRA}.0/24", gateway_ip=f"{EXTRA}.1")
    net.add_interface_to_router(a["router"]["id"], subnet_id=extra.id)

    # A router on a network the agents cannot place: ERROR, and why.
    nowhere = provider_network(sdk, "nowhere", None)
    nowhere_subnet = net.create_subnet(network_id=nowhere["id"], ip_version=4,
                                       cidr="10.79.0.0/24")
    broken = post(sdk, "routers", "router", name="broken", **{"isthmus:agent_host": "site-a"})
    net.add_interface_to_router(broken["id"], subnet_id=nowhere_subnet.id)

    # The VPN between the two LANs.
    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2", pfs="group14",
                                    encryption_algorithm="aes-256")
    esp = net.create_vpn_ipsec_policy(name="esp", pfs="group14")
    conns = {}
    for own, other in (("a", "b"), ("b", "a")):
        site = sites[own]
        site["service"] = net.create_vpn_service(router_id=site["router"]["id"],
                                                 name=f"vpn-{own}")
        local = net.create_vpn_endpoint_group(type="subnet", endpoints=[site["lan"].id])
        peer = net.create_vpn_endpoint_group(type="cidr", endpoints=[f"{LAN[other]}.0/24"])
        conns[own] = net.create_vpn_ipsec_site_connection(
            name=f"{own}-to-{other}", vpnservice_id=site["service"].id, ikepolicy_id=ike.id,
            ipsecpolicy_id=esp.id, psk=PSK, local_ep_group_id=local.id,
            peer_ep_group_id=peer.id, peer_address=WAN[other], peer_id=f"@{other}.example",
            local_id=f"@{own}.example", dpd={"action": "restart", "interval": 2, "timeout": 10})

    # 1. Statuses: the broken router says why; the others and their ports are ACTIVE.
    detail = wait_until(lambda: (r := router_of(sdk, broken["id"]))["status"] == "ERROR" and
                        r["isthmus:status_detail"], timeout_s=20)
    assert "provider:physical_network" in detail, detail
    for side in ("a", "b"):
        router_id = sites[side]["router"]["id"]
        wait_until(lambda: router_of(sdk, router_id)["status"] == "ACTIVE", timeout_s=20)
        assert router_of(sdk, router_id)["isthmus:status_detail"] is None
        wait_until(lambda: set(port_statuses(sdk, router_id).values()) == {"ACTIVE"},
                   timeout_s=10)
    for conn in conns.values():
        wait_until(lambda: conn_status(sdk, conn) == "ACTIVE", timeout_s=30)

    # 2. Through the tunnel and, at the same time, to the internet through SNAT.
    gateway_dev = next(d for d in devices(a["ns"]) if d.startswith(names.GATEWAY_PREFIX))
    assert snat_rules(a["ns"]) == [
        "-N isthmus-snat", "-A POSTROUTING -j isthmus-snat",
        f"-A isthmus-snat -s {LAN['a']}.0/24 -d {LAN['b']}.0/24 -j ACCEPT",
        f"-A isthmus-snat -o {gateway_dev} -j SNAT --to-source {WAN['a']}"], snat_rules(a["ns"])
    capture = fabric.capture_internet(seconds=20, packets=200)
    time.sleep(1)   # tcpdump is listening
    pings = [subprocess.Popen(["ip", "netns", "exec", fabric.ns("ha"), "ping", "-c", "5", "-i",
                               "0.2", "-W", "2", dst], stdout=subprocess.PIPE, text=True)
             for dst in (f"{LAN['b']}.2", INTERNET_HOST)]
    results = [(p.wait(timeout=30), p.stdout.read()) for p in pings]
    assert fabric.ping("hb", f"{LAN['a']}.2", count=3)
    time.sleep(0.5)
    capture.terminate()
    wire, _ = capture.communicate(timeout=10)
    assert results[0][0] == 0, f"no answer through the tunnel: {results[0][1]}"
    assert results[1][0] == 0, f"no answer from the internet host: {results[1][1]}"
    assert "UDP-encap: ESP" in wire, wire
    assert f"{WAN['a']}.4500 > {WAN['b']}.4500" in wire, wire
    icmp = [line for line in wire.splitlines() if " IP " in line and "ICMP" in line]
    assert icmp and all(f"{WAN['a']} > {INTERNET_HOST}: ICMP echo request" in line or
                        f"{INTERNET_HOST} > {WAN['a']}: ICMP echo reply" in line
                        for line in icmp), wire   # LAN addresses never cross in clear

    # 3. Site a's agent killed and restarted: it adopts everything, no tunnel drops.
    spis = child_spis(world.agents["a"], a["router"]["id"])
    before = devices(a["ns"])
    agent = world.restart_agent("a")
    wait_until(lambda: a["router"]["id"] in agent.drivers[0]._charons, timeout_s=15)
    wait_until(lambda: agent.routers.calls.counts.reads >= 6, timeout_s=15)
    time.sleep(1.5)   # a status poll and the resync of every router of the site have run
    assert agent.routers.calls.counts.writes == 0, agent.routers.calls.counts
    assert devices(a["ns"]) == before
    assert child_spis(agent, a["router"]["id"]) == spis
    assert fabric.ping("ha", f"{LAN['b']}.2", count=2)

    # 4a. Removing an interface: its device and host end go; the tunnel stays.
    extra_ports = [p for p in net.ports(device_id=a["router"]["id"])
                   if p.fixed_ips[0]["subnet_id"] == extra.id]
    extra_dev = names.interface_device(extra_ports[0].id)
    extra_end = names.host_device(a["ns"], extra_ports[0].id)
    assert extra_dev in devices(a["ns"]) and extra_end in host_ends(fabric)
    net.remove_interface_from_router(a["router"]["id"], subnet_id=extra.id)
    wait_until(lambda: extra_dev not in devices(a["ns"]), timeout_s=10)
    assert extra_end not in host_ends(fabric)
    assert fabric.ping("ha", f"{LAN['b']}.2", count=2)

    # 4b. Without the VPN, clearing the gateway takes its device, routes and SNAT rules.
    for side in ("a", "b"):
        net.delete_vpn_ipsec_site_connection(conns[side], ignore_missing=False)
        net.delete_vpn_service(sites[side]["service"], ignore_missing=False)
    wait_until(lambda: not fabric.charon_pids(), timeout_s=15)
    net.update_router(a["router"]["id"], external_gateway_info={})
    wait_until(lambda: gateway_dev not in devices(a["ns"]), timeout_s=10)
    # No rule left; the empty chain and its jump stay by design (firewall.nat_steps).
    wait_until(lambda: snat_rules(a["ns"]) == ["-N isthmus-snat",
                                                "-A POSTROUTING -j isthmus-snat"], timeout_s=10)
    routes = sh("ip", "-n", a["ns"], "route", "show", "table", "all", "proto", "77").stdout
    assert not routes.strip(), routes
    assert sorted(devices(a["ns"])) == sorted(
        ["lo", *(d for d in before if d.startswith(names.INTERFACE_PREFIX) and d != extra_dev)])
    wait_until(lambda: router_of(sdk, a["router"]["id"])["status"] == "ACTIVE", timeout_s=10)

    # 4c. Deleting routers: namespaces and host ends gone.
    for router in (a["router"], b["router"], broken):
        for port in net.ports(device_id=router["id"], device_owner="network:router_interface"):
            for fixed_ip in port.fixed_ips:
                net.remove_interface_from_router(router["id"], subnet_id=fixed_ip["subnet_id"])
        net.delete_router(router["id"], ignore_missing=False)
    wait_until(lambda: not fabric.router_namespaces(), timeout_s=15)
    wait_until(lambda: not host_ends(fabric), timeout_s=10)
    print(f"scenario took {time.monotonic() - started:.1f}s")
