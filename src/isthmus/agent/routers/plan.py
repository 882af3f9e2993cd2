"""The difference between a managed router's desired and observed state, as steps.

:func:`plan_router` is pure: from ``desired.py``'s DesiredRouter, ``observe.py``'s
ObservedNamespace and the host's links it returns the privileged calls to make, in
order, and the ports it cannot build (e.g. their bridge is missing or not a bridge).
Nothing that already matches gets a step, so a re-sync of an unchanged router plans
nothing, and adding or removing one port plans only that port's steps.

Order: namespace, ``lo`` and forwarding; then what must go (routes, NAT rules,
addresses, devices: deleting the namespace end of a veth deletes its host end);
then devices, their drift (MAC, MTU, bridge, up/down), addresses, routes, NAT.
A router that is administratively down keeps its devices, set down, and gets no
address, route or NAT step (the kernel drops routes of a down device).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from isthmus.agent.routers import firewall, names
from isthmus.agent.routers.desired import DesiredRouter, DeviceSpec
from isthmus.agent.routers.observe import ROUTE_PROTO, Link, ObservedNamespace

FORWARDING = ["sysctl", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
              "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"]
"""Forwarding on, and ARP as Neutron's routers have it: answer only for an address of
the device asked on (else every port on one LAN answers for every router address, and
a host that learnt another port's MAC loses the router when that port goes), and
announce the best local source address."""


@dataclass(frozen=True)
class Step:
    """One privileged call: ``argv`` (``add_netns`` when ``netns_add``), for a port or the router.

    ``in_namespace`` runs argv through ``ip netns exec NS`` (sysctl, iptables).
    """

    argv: tuple[str, ...]
    port_id: str | None = None
    in_namespace: bool = False
    netns_add: bool = False


@dataclass
class Plan:
    """The steps for one router and the ports that cannot be built, with reasons."""

    steps: list[Step] = field(default_factory=list)
    port_errors: dict[str, str] = field(default_factory=dict)


def plan_router(desired: DesiredRouter, observed: ObservedNamespace, host_links: dict[str, Link]) -> Plan:
    """The steps that make ``observed`` (and the host's links) what ``desired`` says."""
    assert desired.namespace is not None
    ns = desired.namespace
    plan = Plan(port_errors=dict(desired.port_errors))
    devices = [d for d in desired.devices if not _bridge_error(d, host_links, plan)]
    if any(d.role == "gateway" for d in desired.devices) and not any(d.role == "gateway" for d in devices):
        # No gateway device: no default route through it, nothing to SNAT to.
        desired = replace(desired, nat=None, routes=frozenset(
            r for r in desired.routes if r.destination not in ("0.0.0.0/0", "::/0")))
    up = desired.admin_state_up
    steps = plan.steps

    if not observed.exists:
        steps.append(Step(("ip", "netns", "add", ns), netns_add=True))
    lo = observed.links.get("lo")
    if lo is None or not lo.up:
        steps.append(Step(("ip", "-n", ns, "link", "set", "lo", "up")))
    if not observed.forwarding:
        steps.append(Step(tuple(FORWARDING), in_namespace=True))

    # What must go.
    wanted_routes = desired.routes if up else observed.routes
    for route in sorted(observed.routes - wanted_routes, key=str):
        steps.append(Step(_ip(ns, route.version, "route", "delete", route.destination,
                              "via", route.nexthop, "proto", ROUTE_PROTO)))
    nat = firewall.ObservedNat(observed.nat_lines)
    nat_steps = firewall.nat_steps(desired.nat, nat) if up else []
    steps.extend(Step(tuple(argv), in_namespace=True) for argv in nat_steps if argv[3] == "-D")
    by_name = {d.name: d for d in devices}
    keep = {d.name for d in devices} | {d.trunk_name for d in devices if d.trunk_name}
    # A port that cannot be built now (bridge gone, say) keeps what it had.
    for port_id in plan.port_errors:
        keep |= {names.gateway_device(port_id), names.interface_device(port_id), names.trunk_device(port_id)}
    for link in sorted(observed.links.values(), key=lambda l: l.name):
        if not names.is_agent_device(link.name):
            continue
        device = by_name.get(link.name)
        if link.name not in keep or (device is not None and _must_recreate(device, link, observed)):
            continue_with = device.port_id if device else None
            steps.append(Step(("ip", "-n", ns, "link", "delete", link.name), continue_with))
            observed.links.pop(link.name, None)   # planned away: re-created below
            if device is not None and device.trunk_name:
                observed.links.pop(device.trunk_name, None)
        elif device is not None and up:
            for address in sorted(link.addresses - device.addresses):
                steps.append(Step(_ip(ns, _version(address), "address", "delete", address,
                                      "dev", link.name), device.port_id))

    # What must come.
    for device in devices:
        steps.extend(_device_steps(ns, device, observed, host_links.get(device.host_name), up))
    if up:
        for route in sorted(desired.routes - observed.routes, key=str):
            steps.append(Step(_ip(ns, route.version, "route", "add", route.destination,
                                  "via", route.nexthop, "proto", ROUTE_PROTO)))
        steps.extend(Step(tuple(argv), in_namespace=True) for argv in nat_steps if argv[3] != "-D")
    return plan


def _device_steps(ns: str, device: DeviceSpec, observed: ObservedNamespace, host: Link | None,
                  up: bool) -> list[Step]:
    port = device.port_id
    steps: list[Step] = []
    link = observed.links.get(device.name)
    veth = observed.links.get(device.veth_name)
    if veth is None:
        # One call: host end (MTU, bridge, up) and namespace end (MAC or, for vlan, only MTU).
        ns_end = ["name", device.veth_name]
        if device.vlan is None:
            ns_end += ["address", device.mac]
        steps.append(Step(("ip", "link", "add", device.host_name, "mtu", str(device.mtu),
                           "master", device.bridge, "up", "type", "veth", "peer", *ns_end,
                           "mtu", str(device.mtu), "netns", ns), port))
        host = Link(device.host_name, "veth", "", device.mtu, True, master=device.bridge)
        veth = Link(device.veth_name, "veth", device.mac if device.vlan is None else "",
                    device.mtu, False)
        if device.vlan is None:
            link = veth
    elif host is not None:
        fixes: list[str] = []
        if host.mtu != device.mtu:
            fixes += ["mtu", str(device.mtu)]
        if host.master != device.bridge:
            fixes += ["master", device.bridge]
        if not host.up:
            fixes += ["up"]
        if fixes:
            steps.append(Step(("ip", "link", "set", device.host_name, *fixes), port))
    if device.vlan is not None:
        if not veth.up or veth.mtu != device.mtu:
            steps.append(Step(("ip", "-n", ns, "link", "set", device.veth_name,
                               "mtu", str(device.mtu), "up"), port))
        if link is None:
            steps.append(Step(("ip", "-n", ns, "link", "add", "link", device.veth_name,
                               "name", device.name, "address", device.mac, "mtu", str(device.mtu),
                               "type", "vlan", "id", str(device.vlan)), port))
            link = Link(device.name, "vlan", device.mac, device.mtu, False, vlan=device.vlan)
    assert link is not None
    fixes = []
    if link.mac != device.mac:
        fixes += ["address", device.mac]
    if link.mtu != device.mtu:
        fixes += ["mtu", str(device.mtu)]
    if link.up != up:
        fixes += ["up" if up else "down"]
    if fixes:
        steps.append(Step(("ip", "-n", ns, "link", "set", device.name, *fixes), port))
    if up:
        for address in sorted(device.addresses - link.addresses):
            extra = ("nodad",) if _version(address) == 6 else ()
            steps.append(Step(_ip(ns, _version(address), "address", "add", address,
                                  "dev", device.name, *extra), port))
    return steps


def _must_recreate(device: DeviceSpec, link: Link, observed: ObservedNamespace) -> bool:
    """A device of the wrong kind (veth vs vlan, other vlan id or trunk) cannot be fixed in place."""
    if device.vlan is None:
        return link.kind != "veth"
    return link.kind != "vlan" or link.vlan != device.vlan or link.parent != device.trunk_name


def _bridge_error(device: DeviceSpec, host_links: dict[str, Link], plan: Plan) -> bool:
    bridge = host_links.get(device.bridge)
    if bridge is None:
        reason = f"bridge {device.bridge} (physical network of port {device.port_id}) does not exist on this host"
    elif bridge.kind != "bridge":
        reason = (f"{device.bridge} (physical network of port {device.port_id}) is a "
                  f"{bridge.kind or 'plain'} interface, not a Linux bridge; map the physical "
                  "network to a bridge that holds it in [vpnagent] physical_networks")
    else:
        return False
    plan.port_errors[device.port_id] = reason
    return True


def _ip(ns: str, version: int, *words: str) -> tuple[str, ...]:
    return ("ip", "-n", ns, *(("-6",) if version == 6 else ()), *words)


def _version(address: str) -> int:
    return ipaddress.ip_interface(address).version
