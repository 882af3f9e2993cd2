"""RouterNetwork payloads for tests, built the way the server will send them."""

from __future__ import annotations

import uuid

from isthmus.rpc.payloads import FixedIP, RouterNetwork, RouterPort


def fixed_ip(address: str, cidr: str, gateway_ip: str | None = None) -> FixedIP:
    return FixedIP(ip_address=address, prefixlen=int(cidr.split("/")[1]), subnet_id=str(uuid.uuid4()),
                   cidr=cidr, gateway_ip=gateway_ip)


def port(physnet: str, *ips: FixedIP, mac: str | None = None, mtu: int = 1500,
         vlan: int | None = None, port_id: str | None = None) -> RouterPort:
    port_id = port_id or str(uuid.uuid4())
    return RouterPort(
        id=port_id, mac_address=mac or "fa:16:3e:" + ":".join(port_id[i:i + 2] for i in (0, 2, 4)),
        mtu=mtu, physical_network=physnet, network_type="vlan" if vlan else "flat",
        segmentation_id=vlan, fixed_ips=list(ips))


def router(gateway: RouterPort | None = None, interfaces: list[RouterPort] | None = None, *,
           router_id: str | None = None, enable_snat: bool = True, admin_state_up: bool = True,
           routes: list | None = None, nat_exempt: list | None = None, mode: str = "managed",
           namespace: str | None = None) -> RouterNetwork:
    return RouterNetwork(
        id=router_id or str(uuid.uuid4()), admin_state_up=admin_state_up, mode=mode,  # type: ignore[typeddict-item]
        namespace=namespace, gateway=gateway, enable_snat=enable_snat,
        interfaces=interfaces or [], routes=routes or [], nat_exempt=nat_exempt or [])
