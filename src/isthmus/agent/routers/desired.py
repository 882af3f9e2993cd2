"""What a router's network should look like on this host, from its RouterNetwork payload.

:func:`desired_router` is a pure function of the payload (``isthmus.rpc.payloads.
RouterNetwork``), the agent's namespace prefix and its ``physical_networks``; it
resolves names (``names.py``), normalises addresses and CIDRs the way ``ip`` and
``iptables`` print them (so the diff against what they print is exact), and puts a
port it cannot build (unknown physical network, vlan without id, clashing device
name, bad address) in ``port_errors`` instead of dropping it silently.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from isthmus.agent.routers import names
from isthmus.rpc.payloads import RouterNetwork, RouterPort

Role = Literal["gateway", "interface"]


@dataclass(frozen=True)
class RouteSpec:
    """A route the agent owns in the router's main table: ``destination`` via ``nexthop``.

    ``destination`` is a network in canonical form (``0.0.0.0/0`` for default).
    """

    destination: str
    nexthop: str

    @property
    def version(self) -> int:
        """4 or 6."""
        return ipaddress.ip_address(self.nexthop).version


@dataclass(frozen=True)
class DeviceSpec:
    """One router port as devices: a veth from the namespace into a host bridge, or a
    macvlan on a plain host interface.

    ``name`` carries the port's MAC, MTU and ``addresses`` (``ip/prefixlen``) inside
    the namespace. ``bridge`` is the host device the physical network maps to; what
    it is decides the plug (``plan.py``, from the host's links): a Linux bridge gets
    a veth whose host end is ``host_name``; any other interface gets ``name`` as a
    macvlan (mode bridge) on it, made in the host namespace and moved into the
    router's, and no host end. For a vlan port (bridges only) the veth's namespace
    end is ``trunk_name`` and ``name`` is a vlan device (id ``vlan``) on top of it,
    so tagged frames enter the bridge, which is the trunk.
    """

    port_id: str
    role: Role
    name: str
    host_name: str
    bridge: str
    mac: str
    mtu: int
    addresses: frozenset[str]
    vlan: int | None = None
    trunk_name: str | None = None

    @property
    def veth_name(self) -> str:
        """The namespace end of the veth: the trunk for vlan ports, else ``name``."""
        return self.trunk_name or self.name


@dataclass(frozen=True)
class NatSpec:
    """SNAT of what leaves ``device`` to ``address``, except between ``exempt`` pairs."""

    device: str
    address: str
    exempt: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DesiredRouter:
    """Everything the agent should find in one router's namespace (mode ``managed``)."""

    router_id: str
    mode: Literal["managed", "external", "host"]
    namespace: str | None
    admin_state_up: bool
    devices: tuple[DeviceSpec, ...] = ()
    routes: frozenset[RouteSpec] = frozenset()
    nat: NatSpec | None = None
    port_ids: tuple[str, ...] = ()
    port_errors: dict[str, str] = field(default_factory=dict)
    route_errors: tuple[str, ...] = ()


def desired_router(router: RouterNetwork, prefix: str, physical_networks: dict[str, str]) -> DesiredRouter:
    """The desired state of ``router`` on this host (see the module docstring)."""
    ports = ([router["gateway"]] if router["gateway"] else []) + list(router["interfaces"])
    port_ids = tuple(port["id"] for port in ports)
    if router["mode"] != "managed":
        return DesiredRouter(router["id"], router["mode"], router["namespace"],
                             router["admin_state_up"], port_ids=port_ids)
    namespace = names.namespace_name(prefix, router["id"])
    errors: dict[str, str] = {}
    devices: list[DeviceSpec] = []
    for port in ports:
        role: Role = "gateway" if port is router["gateway"] else "interface"
        try:
            devices.append(_device(port, role, namespace, physical_networks))
        except _PortError as exc:
            errors[port["id"]] = str(exc)
    clashes = names.duplicate_devices(d.name for d in devices)
    for device in devices:
        if device.name in clashes:
            errors[device.port_id] = (
                f"device name {device.name} is shared by two ports of this router (port ids "
                "with the same first 11 characters); recreate one of the ports")
    devices = [d for d in devices if d.port_id not in errors]
    gateway = next((d for d in devices if d.role == "gateway"), None)
    routes, route_errors = _routes(router, gateway)
    return DesiredRouter(
        router_id=router["id"], mode="managed", namespace=namespace,
        admin_state_up=router["admin_state_up"], devices=tuple(devices),
        routes=frozenset(routes), nat=_nat(router, gateway), port_ids=port_ids,
        port_errors=errors, route_errors=tuple(route_errors))


class _PortError(ValueError):
    pass


def _device(port: RouterPort, role: Role, namespace: str, physical_networks: dict[str, str]) -> DeviceSpec:
    physnet = port["physical_network"]
    if physnet is None:
        raise _PortError(
            f"the network of port {port['id']} has no provider:physical_network, so no host "
            "device reaches it; create the network with --provider-network-type flat "
            "--provider-physical-network NAME (admin)")
    bridge = physical_networks.get(physnet)
    if bridge is None:
        known = ", ".join(sorted(physical_networks)) or "none"
        raise _PortError(
            f"physical network {physnet!r} of port {port['id']} is not in [vpnagent] "
            f"physical_networks on this host (known: {known}); add {physnet}:BRIDGE there")
    vlan = None
    if port["network_type"] == "vlan":
        vlan = port["segmentation_id"]
        if vlan is None or not 1 <= vlan <= 4094:
            raise _PortError(f"vlan port {port['id']} has segmentation_id {vlan!r}; expected 1-4094")
    elif port["network_type"] != "flat":
        raise _PortError(f"port {port['id']} has network_type {port['network_type']!r}; "
                         "this agent plugs flat and vlan networks only")
    addresses = set()
    for fixed in port["fixed_ips"]:
        try:
            interface = ipaddress.ip_interface(f"{fixed['ip_address']}/{fixed['prefixlen']}")
        except ValueError as exc:
            raise _PortError(f"port {port['id']}: {exc}") from None
        addresses.add(f"{interface.ip}/{interface.network.prefixlen}")
    name = (names.gateway_device if role == "gateway" else names.interface_device)(port["id"])
    return DeviceSpec(
        port_id=port["id"], role=role, name=name,
        host_name=names.host_device(namespace, port["id"]), bridge=bridge,
        mac=port["mac_address"].lower(), mtu=port["mtu"], addresses=frozenset(addresses),
        vlan=vlan, trunk_name=names.trunk_device(port["id"]) if vlan is not None else None)


def _routes(router: RouterNetwork, gateway: DeviceSpec | None) -> tuple[set[RouteSpec], list[str]]:
    routes: set[RouteSpec] = set()
    errors: list[str] = []
    if gateway is not None and router["gateway"] is not None:
        for fixed in router["gateway"]["fixed_ips"]:
            if fixed["gateway_ip"]:
                version = ipaddress.ip_address(fixed["gateway_ip"]).version
                default = "0.0.0.0/0" if version == 4 else "::/0"
                routes.add(RouteSpec(default, str(ipaddress.ip_address(fixed["gateway_ip"]))))
    for route in router["routes"]:
        try:
            network = ipaddress.ip_network(route["destination"], strict=False)
            nexthop = ipaddress.ip_address(route["nexthop"])
        except ValueError as exc:
            errors.append(f"route {route['destination']} via {route['nexthop']}: {exc}")
            continue
        if network.version != nexthop.version:
            errors.append(f"route {route['destination']} via {route['nexthop']}: "
                          "destination and nexthop are of different IP versions")
            continue
        routes.add(RouteSpec(str(network), str(nexthop)))
    return routes, errors


def _nat(router: RouterNetwork, gateway: DeviceSpec | None) -> NatSpec | None:
    if not router["enable_snat"] or gateway is None:
        return None
    assert router["gateway"] is not None
    v4 = [str(ipaddress.ip_address(f["ip_address"])) for f in router["gateway"]["fixed_ips"]
          if ipaddress.ip_address(f["ip_address"]).version == 4]
    if not v4:
        return None   # IPv6 is routed, never NATed
    exempt: list[tuple[str, str]] = []
    for local, peer in router["nat_exempt"]:
        try:
            local_net = ipaddress.ip_network(local, strict=False)
            peer_net = ipaddress.ip_network(peer, strict=False)
        except ValueError:
            continue
        if local_net.version == peer_net.version == 4:
            pair = (str(local_net), str(peer_net))
            if pair not in exempt:
                exempt.append(pair)
    # The gateway port's first IPv4 address, as Neutron's SNAT.
    return NatSpec(device=gateway.name, address=v4[0], exempt=tuple(exempt))
