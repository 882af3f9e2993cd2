"""RouterBuilder against the real kernel and the real privileged helper (root only).

A router with a gateway on an "external" bridge and two interfaces on a LAN bridge;
a "host" namespace per LAN subnet and an "internet" namespace on the external bridge
that has no route to the LANs, so only SNAT can bring its answers back.
"""

from __future__ import annotations

import json
import uuid

import pytest

from isthmus.agent.routers import RouterBuilder, names
from tests.agent.routers.conftest import Lab, sh
from tests.agent.routers.payload import fixed_ip, port, router

GATEWAY_IP, INTERNET_IP = "198.51.100.2", "198.51.100.1"


def ping(ns: str, address: str) -> bool:
    """A few tries: the first packets may wait for neighbour resolution."""
    family = ("-6",) if ":" in address else ()
    return any(sh("ip", "netns", "exec", ns, "ping", *family, "-c", "1", "-W", "2", address,
                  check=False).returncode == 0 for _ in range(3))


def source_seen(lab: Lab, sender: str, receiver: str, address: str) -> str:
    """The source address ``receiver`` sees on a UDP datagram ``sender`` sends to ``address``."""
    listener = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.bind(('0.0.0.0',9999))\ns.settimeout(20)\nprint('ready',flush=True)\n"
                "print(s.recvfrom(64)[1][0],flush=True)\n")
    import subprocess
    proc = subprocess.Popen(["ip", "netns", "exec", receiver, "python3", "-c", listener],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        send = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                f"[s.sendto(b'x',('{address}',9999)) for _ in range(3)]\n")
        sh("ip", "netns", "exec", sender, "python3", "-c", send)
        return proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait()


def topology(lab: Lab):
    gateway = port("public", fixed_ip(GATEWAY_IP, "198.51.100.0/24", INTERNET_IP),
                   fixed_ip("2001:db8:e::2", "2001:db8:e::/64", "2001:db8:e::1"))
    lan1 = port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24"), fixed_ip("2001:db8:1::1", "2001:db8:1::/64"))
    lan2 = port("lan", fixed_ip("10.10.2.1", "10.10.2.0/24"), mtu=1400)
    payload = router(gateway, [lan1, lan2], nat_exempt=[("10.10.2.0/24", f"{INTERNET_IP}/32")],
                     routes=[{"destination": "10.99.0.0/16", "nexthop": "10.10.1.254"}])
    internet = lab.namespace("inet", lab.ext_bridge, f"{INTERNET_IP}/24", "2001:db8:e::1/64",
                             routes=(("-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:e::2"),))
    host1 = lab.namespace("h1", lab.lan_bridge, "10.10.1.10/24", "2001:db8:1::10/64",
                          routes=(("route", "add", "default", "via", "10.10.1.1"),
                                  ("-6", "route", "add", "default", "via", "2001:db8:1::1")))
    host2 = lab.namespace("h2", lab.lan_bridge, "10.10.2.10/24",
                          routes=(("route", "add", "default", "via", "10.10.2.1"),))
    return payload, internet, host1, host2


def host_ends(builder: RouterBuilder, payload) -> list[str]:
    ns = builder.namespace_of(payload["id"])
    ports = [payload["gateway"], *payload["interfaces"]]
    return [names.host_device(ns, p["id"]) for p in ports]


def link_exists(name: str, ns: str | None = None) -> bool:
    where = ("-n", ns) if ns else ()
    return sh("ip", *where, "link", "show", "dev", name, check=False).returncode == 0


def ifindexes(ns: str) -> dict[str, int]:
    return {l["ifname"]: l["ifindex"] for l in json.loads(sh("ip", "-j", "-n", ns, "link", "show").stdout)}


def test_router_routes_snats_adopts_and_is_removed(client, builder, lab):
    payload, internet, host1, host2 = topology(lab)
    before = builder.calls.counts
    report = builder.sync(payload)
    built = builder.calls.counts
    assert report["status"] == "ACTIVE", report
    assert {p["status"] for p in report["ports"].values()} == {"ACTIVE"} and len(report["ports"]) == 3
    print(f"build: {built.reads - before.reads} reads, {built.writes - before.writes} writes")

    # The LAN reaches the router, and through SNAT the internet (which has no route back
    # to 10.10.0.0/16: only the gateway address can be answered).
    assert ping(host1, "10.10.1.1")
    assert ping(host1, INTERNET_IP)
    assert source_seen(lab, host1, internet, INTERNET_IP) == GATEWAY_IP
    # nat_exempt: LAN 2 to the internet host leaves with its own address.
    assert source_seen(lab, host2, internet, INTERNET_IP) == "10.10.2.10"
    # IPv6 is routed (forwarding on), not NATed.
    assert ping(host1, "2001:db8:1::1")
    assert ping(host1, "2001:db8:e::1")
    ns = builder.namespace_of(payload["id"])
    assert "10.99.0.0/16 via 10.10.1.254" in sh("ip", "-n", ns, "route").stdout
    # ARP as Neutron's routers: only the port with the address answers for it (both
    # interfaces share the LAN bridge; a host that learnt the wrong port's MAC for its
    # gateway lost the router when that port was removed: tests/e2e).
    assert sh("ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.conf.all.arp_ignore",
              "net.ipv4.conf.all.arp_announce").stdout.split() == ["1", "2"]

    # An agent restart with the same desired state: reads only, zero writes.
    restarted = RouterBuilder(client, builder.physical_networks, builder.namespace_prefix)
    assert restarted.sync(payload)["status"] == "ACTIVE"
    assert restarted.calls.counts.writes == 0
    print(f"re-sync: {restarted.calls.counts.reads} reads, 0 writes")

    # Removing one interface touches only it.
    kept = ifindexes(ns)
    gone = payload["interfaces"].pop()
    before = builder.calls.counts
    assert builder.sync(payload)["status"] == "ACTIVE"
    assert builder.calls.counts.writes - before.writes == 1
    gone_dev = names.interface_device(gone["id"])
    assert not link_exists(gone_dev, ns)
    assert not link_exists(names.host_device(ns, gone["id"]))
    assert {k: v for k, v in kept.items() if k != gone_dev} == ifindexes(ns)
    assert ping(host1, INTERNET_IP)

    # Deleting the router leaves no namespace, host end or rule.
    ends = host_ends(builder, payload)
    assert builder.remove(payload["id"]) is True
    assert ns not in sh("ip", "netns", "list").stdout
    assert not any(link_exists(end) for end in ends)
    assert "isthmus-snat" not in sh("iptables", "-t", "nat", "-S").stdout
    assert not ping(host1, "10.10.1.1")
    assert builder.remove(payload["id"]) is False


def test_admin_down_sets_ports_down_and_up_again(builder, lab):
    payload, internet, host1, _ = topology(lab)
    assert builder.sync(payload)["status"] == "ACTIVE"
    payload["admin_state_up"] = False
    report = builder.sync(payload)
    assert report["status"] == "DOWN" and {p["status"] for p in report["ports"].values()} == {"DOWN"}
    assert not ping(host1, "10.10.1.1")
    before = builder.calls.counts.writes
    assert builder.sync(payload)["status"] == "DOWN"
    assert builder.calls.counts.writes == before
    payload["admin_state_up"] = True
    assert builder.sync(payload)["status"] == "ACTIVE"
    assert ping(host1, INTERNET_IP)
    builder.remove(payload["id"])


def test_cleanup_deletes_only_this_agents_unwanted_routers(client, builder, lab):
    wanted = router(port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24")))
    unwanted = router(port("lan", fixed_ip("10.10.2.1", "10.10.2.0/24")))
    other_agent = RouterBuilder(client, builder.physical_networks, builder.namespace_prefix + "b-")
    foreign = router(port("lan", fixed_ip("10.10.3.1", "10.10.3.0/24")))
    try:
        for payload in (wanted, unwanted):
            assert builder.sync(payload)["status"] == "ACTIVE"
        assert other_agent.sync(foreign)["status"] == "ACTIVE"
        assert builder.cleanup(keep={wanted["id"]}) == [unwanted["id"]]
        listed = sh("ip", "netns", "list").stdout
        assert builder.namespace_of(unwanted["id"]) not in listed
        assert builder.namespace_of(wanted["id"]) in listed
        assert other_agent.namespace_of(foreign["id"]) in listed
        assert not link_exists(host_ends(builder, unwanted)[0])
    finally:
        other_agent.cleanup(keep=())
        builder.cleanup(keep=())


def test_unknown_physical_network_and_vlan_on_a_plain_interface_are_errors(client, builder, lab):
    dummy = f"dmy{lab.tag}"   # a plain interface (this kernel has no dummy module)
    sh("ip", "link", "add", dummy, "type", "veth", "peer", "name", f"dmz{lab.tag}")
    lab.links.append(dummy)
    odd = RouterBuilder(client, {**builder.physical_networks, "plain": dummy}, builder.namespace_prefix)
    unknown = port("nowhere", fixed_ip("10.10.5.1", "10.10.5.0/24"))
    tagged = port("plain", fixed_ip("10.10.6.1", "10.10.6.0/24"), vlan=6)
    good = port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24"))
    payload = router(None, [unknown, tagged, good])
    try:
        report = odd.sync(payload)
        assert report["status"] == "ERROR"
        assert "'nowhere'" in report["reason"] and "physical_networks" in report["reason"]
        assert report["ports"][unknown["id"]]["status"] == "ERROR"
        assert "not a Linux bridge" in report["ports"][tagged["id"]]["reason"]
        assert report["ports"][good["id"]]["status"] == "ACTIVE"
    finally:
        odd.remove(payload["id"])


def test_gateway_on_a_plain_interface_is_a_macvlan_that_answers_and_goes(client, builder, lab):
    """public maps to a plain veth end whose peer is in an "upstream" namespace: no bridge."""
    uplink, far_end = f"up{lab.tag}", f"uq{lab.tag}"
    upstream = f"ism{lab.tag}up"
    sh("ip", "netns", "add", upstream)
    lab.namespaces.append(upstream)
    sh("ip", "link", "add", uplink, "up", "type", "veth", "peer", "name", far_end, "netns", upstream)
    lab.links.append(uplink)
    sh("ip", "-n", upstream, "link", "set", far_end, "up")
    sh("ip", "-n", upstream, "address", "add", f"{INTERNET_IP}/24", "dev", far_end)
    plain = RouterBuilder(client, {"public": uplink, "lan": lab.lan_bridge}, builder.namespace_prefix)
    gateway = port("public", fixed_ip(GATEWAY_IP, "198.51.100.0/24", INTERNET_IP))
    lan = port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24"))
    payload = router(gateway, [lan])
    host1 = lab.namespace("h1", lab.lan_bridge, "10.10.1.10/24",
                          routes=(("route", "add", "default", "via", "10.10.1.1"),))
    ns = plain.namespace_of(payload["id"])
    gw = names.gateway_device(gateway["id"])
    report = plain.sync(payload)
    assert report["status"] == "ACTIVE", report
    link = json.loads(sh("ip", "-j", "-d", "-n", ns, "link", "show", "dev", gw).stdout)[0]
    assert link["linkinfo"]["info_kind"] == "macvlan" and link["linkinfo"]["info_data"]["mode"] == "bridge"
    assert link["address"] == gateway["mac_address"]
    assert not link_exists(names.host_device(ns, gateway["id"]))
    assert ping(upstream, GATEWAY_IP)
    # SNAT out of the macvlan: the LAN host reaches upstream, which has no route back.
    assert ping(host1, INTERNET_IP)
    assert source_seen(lab, host1, upstream, INTERNET_IP) == GATEWAY_IP

    # The same state again, also from a restarted agent: zero writes.
    restarted = RouterBuilder(client, plain.physical_networks, plain.namespace_prefix)
    assert restarted.sync(payload)["status"] == "ACTIVE"
    assert restarted.calls.counts.writes == 0

    # Removing the gateway port deletes the macvlan, and the router deletes the rest.
    payload["gateway"] = None
    assert plain.sync(payload)["status"] == "ACTIVE"
    assert not link_exists(gw, ns)
    assert not ping(upstream, GATEWAY_IP)
    payload["gateway"] = gateway
    assert plain.sync(payload)["status"] == "ACTIVE"
    assert ping(upstream, GATEWAY_IP)
    assert plain.remove(payload["id"]) is True
    assert ns not in sh("ip", "netns", "list").stdout
    assert not [l for l in json.loads(sh("ip", "-j", "link", "show").stdout) if l.get("link") == uplink]
    assert not ping(upstream, GATEWAY_IP)


def test_external_and_host_modes_build_nothing(builder, lab):
    existing = lab.namespace("ext", lab.lan_bridge)
    payload = router(port("lan", fixed_ip("10.10.1.1", "10.10.1.0/24")), mode="external", namespace=existing)
    before = builder.calls.counts.writes
    assert builder.sync(payload)["status"] == "ACTIVE"
    missing = router(mode="external", namespace=f"qrouter-{uuid.uuid4()}")
    report = builder.sync(missing)
    assert report["status"] == "ERROR" and "does not exist" in report["reason"]
    assert builder.sync(router(mode="host"))["status"] == "ACTIVE"
    assert builder.calls.counts.writes == before
