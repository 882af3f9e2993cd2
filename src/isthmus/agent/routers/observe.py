"""What exists now: a router namespace's devices, addresses, routes, forwarding and NAT.

Read through the privileged helper with ``ip -j`` (JSON), ``sysctl -n`` and
``iptables -t nat -S``; parsed here into plain values the plan compares with
``desired.py``'s. Only what the agent owns is kept: devices named by ``names.py``
(and ``lo``), global-scope addresses, routes with protocol :data:`ROUTE_PROTO`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field

from isthmus.agent.routers.desired import RouteSpec

ROUTE_PROTO = "77"
"""The routing protocol number the agent's routes carry (``ip route add ... proto 77``):
how it tells its routes from the kernel's and anyone else's. Unassigned in
/etc/iproute2/rt_protos."""


@dataclass
class Link:
    """One device as ``ip -j -d addr show`` reports it."""

    name: str
    kind: str | None
    mac: str
    mtu: int
    up: bool
    master: str | None = None
    parent: str | None = None
    vlan: int | None = None
    addresses: set[str] = field(default_factory=set)
    ifindex: int | None = None
    parent_index: int | None = None
    """The parent's ifindex when it lives in another namespace (a macvlan on a host
    interface): ``ip`` prints ``link_index`` then, not the parent's name."""
    macvlan_mode: str | None = None


@dataclass
class ObservedNamespace:
    """A managed router namespace as it is: links by name, our routes, forwarding."""

    exists: bool
    links: dict[str, Link] = field(default_factory=dict)
    routes: set[RouteSpec] = field(default_factory=set)
    forwarding: bool = False
    nat_lines: list[str] = field(default_factory=list)


def parse_links(ip_json: str) -> dict[str, Link]:
    """``ip -j -d [addr|link] show`` output -> links by name, with global addresses."""
    links: dict[str, Link] = {}
    for item in json.loads(ip_json or "[]"):
        info = item.get("linkinfo") or {}
        data = info.get("info_data") or {}
        addresses = {
            f"{a['local']}/{a['prefixlen']}" for a in item.get("addr_info", [])
            if a.get("scope") == "global" and "local" in a}
        links[item["ifname"]] = Link(
            name=item["ifname"], kind=info.get("info_kind"), mac=item.get("address", "").lower(),
            mtu=int(item.get("mtu", 0)), up="UP" in item.get("flags", []),
            master=item.get("master"), parent=item.get("link"),
            vlan=data.get("id") if info.get("info_kind") == "vlan" else None,
            addresses=addresses, ifindex=item.get("ifindex"), parent_index=item.get("link_index"),
            macvlan_mode=data.get("mode") if info.get("info_kind") == "macvlan" else None)
    return links


def parse_routes(ip_json: str) -> set[RouteSpec]:
    """``ip -j route show table all proto 77`` output -> the agent's routes (main table)."""
    routes: set[RouteSpec] = set()
    for item in json.loads(ip_json or "[]"):
        if item.get("table", "main") != "main" or "gateway" not in item:
            continue
        nexthop = ipaddress.ip_address(item["gateway"])
        destination = item["dst"]
        if destination == "default":
            destination = "0.0.0.0/0" if nexthop.version == 4 else "::/0"
        routes.add(RouteSpec(str(ipaddress.ip_network(destination, strict=False)), str(nexthop)))
    return routes


SYSCTLS = {
    "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1",
    # ARP as Neutron's routers have it: answer only for an address of the device asked
    # on (else every port on one LAN answers for every router address, and a host that
    # learnt another port's MAC loses the router when that port goes), and announce the
    # best local source address.
    "net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2",
    # Gratuitous ARP / unsolicited NA when a port comes up with its addresses: LAN hosts
    # that knew an address on another MAC (a router re-created, or moved) switch at once,
    # not when their neighbour cache expires (plan adds addresses before link up).
    "net.ipv4.conf.all.arp_notify": "1", "net.ipv6.conf.all.ndisc_notify": "1",
}
"""The router namespace's sysctls and their values (``plan.FORWARDING`` sets them, in
this order; read back with ``sysctl -n``)."""


def parse_forwarding(sysctl_output: str) -> bool:
    """``sysctl -n`` of :data:`SYSCTLS` -> each at the value the router needs."""
    return sysctl_output.split() == list(SYSCTLS.values())
