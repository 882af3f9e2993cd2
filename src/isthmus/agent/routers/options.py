"""The agent's options for building routers (``[vpnagent]``), and their parsing.

``list_opts()`` has the shape oslo-config-generator and ``isthmus.config.list_opts``
use, ``[(group, opts)]``; ``register_opts(conf)`` registers them.
"""

from __future__ import annotations

from oslo_config import cfg

GROUP = "vpnagent"

ROUTER_OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "physical_networks", default=[], sample_default="public:br-ex,lan:br-lan",
        help="Physical network name to the Linux bridge on this host that reaches it, as "
             "NAME:BRIDGE pairs. A router port's veth is plugged into the bridge of its "
             "network's physical_network (vlan ports tag their frames, the bridge is the "
             "trunk). Only Linux bridges are supported: a plain interface, or a name not "
             "listed here, puts the port and its router in ERROR with the reason."),
    cfg.StrOpt(
        "router_namespace_prefix", default="isthmus-",
        help="Prefix of the namespaces of managed routers (<prefix><router id>). Every "
             "namespace with this prefix is the agent's: one whose router is no longer "
             "wanted is deleted. Give each agent on one host its own prefix."),
]


class BadPhysicalNetworks(ValueError):
    """``physical_networks`` has an entry that is not NAME:BRIDGE, or a name twice."""


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the router options in ``[vpnagent]``."""
    conf.register_opts(ROUTER_OPTS, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """The router options by group, for oslo-config-generator."""
    return [(GROUP, ROUTER_OPTS)]


def parse_physical_networks(entries: list[str]) -> dict[str, str]:
    """``["public:br-ex", "lan:br-lan"]`` -> ``{"public": "br-ex", "lan": "br-lan"}``."""
    mapping: dict[str, str] = {}
    for entry in entries:
        name, sep, bridge = (part.strip() for part in entry.partition(":"))
        if not sep or not name or not bridge:
            raise BadPhysicalNetworks(
                f"[{GROUP}] physical_networks entry {entry!r} is not NAME:BRIDGE "
                "(e.g. public:br-ex)")
        if name in mapping:
            raise BadPhysicalNetworks(
                f"[{GROUP}] physical_networks names {name!r} twice "
                f"({mapping[name]} and {bridge})")
        mapping[name] = bridge
    return mapping
