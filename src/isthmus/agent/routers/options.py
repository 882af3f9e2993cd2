"""Parsing ``[vpnagent] physical_networks`` (the options live in :mod:`isthmus.config`)."""

from __future__ import annotations

GROUP = "vpnagent"


class BadPhysicalNetworks(ValueError):
    """``physical_networks`` has an entry that is not NAME:DEVICE, or a name twice."""


def parse_physical_networks(entries: list[str]) -> dict[str, str]:
    """``["public:br-ex", "lan:br-lan"]`` -> ``{"public": "br-ex", "lan": "br-lan"}``."""
    mapping: dict[str, str] = {}
    for entry in entries:
        name, sep, bridge = (part.strip() for part in entry.partition(":"))
        if not sep or not name or not bridge:
            raise BadPhysicalNetworks(
                f"[{GROUP}] physical_networks entry {entry!r} is not NAME:DEVICE "
                "(e.g. public:br-ex or public:eth0)")
        if name in mapping:
            raise BadPhysicalNetworks(
                f"[{GROUP}] physical_networks names {name!r} twice "
                f"({mapping[name]} and {bridge})")
        mapping[name] = bridge
    return mapping
