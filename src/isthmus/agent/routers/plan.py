"""The difference between a managed router's desired and observed state, as steps.

:func:`plan_router` is pure: from ``desired.py``'s DesiredRouter, ``observe.py``'s
ObservedNamespace and the host's links it returns the privileged calls to make, in
order, and the ports it cannot build (e.g. their host device is missing).
Nothing that already matches gets a step, so a re-sync of an unchanged router plans
nothing, and adding or removing one port plans only that port's steps.

Order: namespace, ``lo`` and forwarding; then what must go (routes, NAT rules,
addresses, devices: deleting the namespace end of a veth deletes its host end);
then devices, their drift (MAC, MTU, bridge, up/down), addresses, routes, NAT.
Every write has one fixed shape (a drifted device gets ``address MAC mtu M up``
whatever drifted), so ``agent.filters`` can pin each argument list.
A router that is administratively down keeps its devices, set down, and gets no
address, route or NAT step (the kernel drops routes of a down device).

How a port is plugged follows the host device its physical network maps to: a
Linux bridge gets a veth (host end in the bridge); any other interface (``eth0``)
gets a macvlan in mode bridge on it, made from the host namespace straight into
the router's: ``ip link add link eth0 name qg-... address MAC mtu M netns NS type
macvlan mode bridge``. A macvlan whose parent, mode or kind is wrong is made again.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from isthmus.agent.routers import firewall, names
from isthmus.agent.routers.desired import DesiredRouter, DeviceSpec
from isthmus.agent.routers.observe import ROUTE_PROTO, SYSCTLS, Link, ObservedNamespace

FORWARDING = ["sysctl", "-w", *(f"{name}={value}" for name, value in SYSCTLS.items())]
"""Forwarding on, ARP and neighbour announcements as a router needs (observe.SYSCTLS)."""


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
    devices = [d for d in desired.devices if not _plug_error(d, host_links, plan)]
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
        if link.name not in keep or (device is not None and _must_recreate(device, link, host_links)):
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
        if _on_plain_interface(device, host_links):
            steps.extend(_macvlan_steps(ns, device, observed, up))
        else:
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
    elif host is not None and (host.mtu != device.mtu or host.master != device.bridge or not host.up):
        # Always the whole form: agent.filters pins one argument list per write.
        steps.append(Step(("ip", "link", "set", device.host_name, "mtu", str(device.mtu),
                           "master", device.bridge, "up"), port))
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
    return steps + _fix_steps(ns, device, link, up)


def _macvlan_steps(ns: str, device: DeviceSpec, observed: ObservedNamespace, up: bool) -> list[Step]:
    """A port on a plain host interface: a macvlan (mode bridge) on it, in the namespace."""
    steps: list[Step] = []
    link = observed.links.get(device.name)
    if link is None:
        steps.append(Step(("ip", "link", "add", "link", device.bridge, "name", device.name,
                           "address", device.mac, "mtu", str(device.mtu), "netns", ns,
                           "type", "macvlan", "mode", "bridge"), device.port_id))
        link = Link(device.name, "macvlan", device.mac, device.mtu, False)
    return steps + _fix_steps(ns, device, link, up)


def _fix_steps(ns: str, device: DeviceSpec, link: Link, up: bool) -> list[Step]:
    """The port's device: MAC, MTU, up/down and addresses, where they differ."""
    port = device.port_id
    steps: list[Step] = []
    if up:
        for address in sorted(device.addresses - link.addresses):
            extra = ("nodad",) if _version(address) == 6 else ()
            steps.append(Step(_ip(ns, _version(address), "address", "add", address,
                                  "dev", device.name, *extra), port))
    # Addresses before the link comes up, so that coming up announces them (arp_notify).
    if link.mac != device.mac or link.mtu != device.mtu or link.up != up:
        # Always the whole form: agent.filters pins one argument list per write.
        steps.append(Step(("ip", "-n", ns, "link", "set", device.name, "address", device.mac,
                           "mtu", str(device.mtu), "up" if up else "down"), port))
    return steps


def _must_recreate(device: DeviceSpec, link: Link, host_links: dict[str, Link]) -> bool:
    """A device of the wrong kind (veth, vlan or macvlan; other vlan id or trunk; macvlan
    on another parent or in another mode) cannot be fixed in place."""
    if _on_plain_interface(device, host_links):
        parent = host_links[device.bridge]
        return (link.kind != "macvlan" or link.macvlan_mode != "bridge"
                or link.parent_index != parent.ifindex)
    if device.vlan is None:
        return link.kind != "veth"
    return link.kind != "vlan" or link.vlan != device.vlan or link.parent != device.trunk_name


def _on_plain_interface(device: DeviceSpec, host_links: dict[str, Link]) -> bool:
    """Whether the port is plugged as a macvlan (its mapped host device is not a bridge)."""
    mapped = host_links.get(device.bridge)
    return mapped is not None and mapped.kind != "bridge"


def _plug_error(device: DeviceSpec, host_links: dict[str, Link], plan: Plan) -> bool:
    mapped = host_links.get(device.bridge)
    where = f"{device.bridge} (physical network of port {device.port_id})"
    if mapped is None:
        reason = f"{where} does not exist on this host"
    elif mapped.kind == "bridge":
        return False
    elif device.vlan is not None:
        reason = (f"{where} is a plain {mapped.kind or 'network'} interface, not a Linux bridge, "
                  f"and vlan networks (segmentation_id {device.vlan}) need a bridge: put "
                  f"{device.bridge} into a bridge and map the physical network to that bridge in "
                  "[vpnagent] physical_networks")
    elif mapped.master is not None:
        reason = (f"{where} is a port of {mapped.master}, so no macvlan can sit on it; map the "
                  f"physical network to {mapped.master} in [vpnagent] physical_networks")
    else:
        return False
    plan.port_errors[device.port_id] = reason
    return True


def _ip(ns: str, version: int, *words: str) -> tuple[str, ...]:
    return ("ip", "-n", ns, *(("-6",) if version == 6 else ()), *words)


def _version(address: str) -> int:
    return ipaddress.ip_interface(address).version
