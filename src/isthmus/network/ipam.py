"""IP address management: default gateways, allocation pools, free addresses.

Pure functions over ``ipaddress`` objects, so the rules are testable without a
database. Defaults follow what Neutron 29 answers: IPv4 gateway ``.1`` and a
pool up to the address before broadcast; IPv6 gateway on the subnet-router
anycast address (the network address) and a pool to the last address.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Iterable

from isthmus.network import exceptions as nexc

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Pool = tuple[IPAddress, IPAddress]


def usable_range(net: IPNetwork) -> Pool:
    """First and last address a host may have on ``net``."""
    if net.version == 4 and net.prefixlen < 31:
        return net.network_address + 1, net.broadcast_address - 1
    if net.version == 6 and net.prefixlen < 127:
        return net.network_address + 1, net.broadcast_address
    return net.network_address, net.broadcast_address


def default_gateway(net: IPNetwork) -> IPAddress:
    """The gateway Neutron 29 picks: the first usable address (IPv6: the network address)."""
    if net.version == 6:
        return net.network_address
    return usable_range(net)[0]


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    """The usable range, split around the gateway when it falls inside."""
    first, last = usable_range(net)
    if gateway is None or not first <= gateway <= last:
        return [(first, last)]
    pools: list[Pool] = []
    if gateway > first:
        pools.append((first, gateway - 1))
    if gateway < last:
        pools.append((gateway + 1, last))
    return pools


def stored_pools(allocation_pools: str) -> list[Pool]:
    """The pools of a subnet as stored: a JSON list of ``{"start": ..., "end": ...}``."""
    return [(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"]))
            for p in json.loads(allocation_pools)]


def pool_text(pool: Pool) -> str:
    """``start-end``, as Neutron's error messages show a pool."""
    return f"{pool[0]}-{pool[1]}"


def check_pools(net: IPNetwork, pools: list[Pool], gateway: IPAddress | None) -> None:
    """Raise the Neutron error for an invalid, out-of-range or overlapping pool."""
    for start, end in pools:
        if start.version != net.version or end.version != net.version or start > end:
            raise nexc.InvalidAllocationPool(pool=f"{start}-{end}")
        if start not in net or end not in net:
            raise nexc.OutOfBoundsAllocationPool(pool=f"{start}-{end}", subnet_cidr=str(net))
    ordered = sorted(pools)
    for left, right in zip(ordered, ordered[1:]):
        if right[0] <= left[1]:
            raise nexc.OverlappingAllocationPools(pool_1=pool_text(left), pool_2=pool_text(right),
                                                  subnet_cidr=str(net))
    if gateway is not None:
        for pool in pools:
            if pool[0] <= gateway <= pool[1]:
                raise nexc.GatewayConflictWithAllocationPools(ip_address=str(gateway),
                                                              pool=pool_text(pool))


def first_free(pools: Iterable[Pool], used: set[str]) -> IPAddress | None:
    """The lowest pool address not in ``used`` (a set of address strings)."""
    for start, end in pools:
        addr = start
        while addr <= end:
            if str(addr) not in used:
                return addr
            addr += 1
    return None
