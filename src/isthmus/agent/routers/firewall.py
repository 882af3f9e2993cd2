"""A router's NAT rules: SNAT to the gateway address, VPN traffic exempt.

All rules live in the nat table of the router's namespace, in one chain
:data:`CHAIN` that ``POSTROUTING`` jumps to::

    -A POSTROUTING -j isthmus-snat
    -A isthmus-snat -s LOCAL -d PEER -j ACCEPT          one per nat_exempt pair, first
    -A isthmus-snat -o GATEWAY_DEV -j SNAT --to-source GATEWAY_IP   last

Why ``iptables`` argv, one rule per call, and not one atomic ruleset (``nft -f -``
or ``iptables-restore --noflush`` from stdin): the agent user is untrusted and the
helper's filters see only argv, never stdin. nft's input language has ``include
"FILE"`` (root reads any file) and iptables-restore's lines take options such as
``--modprobe=PROGRAM`` (root runs it) and ``-m bpf --object-pinned PATH``; checking
stdin would mean writing a parser for either language inside the helper. With argv,
each filter line in ``agent.filters`` pins every word, so only these rule shapes can
run. The cost is a few calls per change; the diff below keeps re-syncs at zero.
Exempt rules are inserted at the top (``-I``) and the SNAT rule appended (``-A``),
so the order is right whatever is added when, without rewriting the chain.

IPv6 is routed, not NATed (as Neutron).
"""

from __future__ import annotations

from isthmus.agent.routers.desired import NatSpec

CHAIN = "isthmus-snat"
_IPT = ("iptables", "-t", "nat")
_JUMP = ("-j", CHAIN)


def exempt_rule(local: str, peer: str) -> tuple[str, ...]:
    """A rule spec (the words after the chain) that lets local->peer leave unNATed."""
    return ("-s", local, "-d", peer, "-j", "ACCEPT")


def snat_rule(device: str, address: str) -> tuple[str, ...]:
    """The rule spec that SNATs what leaves ``device`` to ``address``."""
    return ("-o", device, "-j", "SNAT", "--to-source", address)


def desired_rules(nat: NatSpec | None) -> list[tuple[str, ...]]:
    """The chain's rules in order, as ``iptables -S`` prints them (empty: no SNAT)."""
    if nat is None:
        return []
    return [exempt_rule(local, peer) for local, peer in nat.exempt] + [snat_rule(nat.device, nat.address)]


class ObservedNat:
    """The chain and jump as ``iptables -t nat -S`` shows them."""

    def __init__(self, lines: list[str]) -> None:
        words = [line.split() for line in lines]
        self.chain_exists = ["-N", CHAIN] in words
        self.jump_exists = ["-A", "POSTROUTING", *_JUMP] in words
        self.rules = [tuple(w[2:]) for w in words if w[:2] == ["-A", CHAIN]]


def nat_steps(nat: NatSpec | None, observed: ObservedNat) -> list[list[str]]:
    """The iptables argvs that turn ``observed`` into ``nat`` (none when equal).

    The chain and jump, once made, stay (an empty chain costs nothing and spares
    churn when SNAT is switched back on).
    """
    wanted = desired_rules(nat)
    steps: list[list[str]] = []
    if wanted and not observed.chain_exists:
        steps.append([*_IPT, "-N", CHAIN])
    if wanted and not observed.jump_exists:
        steps.append([*_IPT, "-A", "POSTROUTING", *_JUMP])
    for rule in observed.rules:
        if rule not in wanted:
            steps.append([*_IPT, "-D", CHAIN, *rule])
    for rule in wanted:
        if rule in observed.rules:
            continue
        verb = "-A" if rule[2:4] == ("-j", "SNAT") else "-I"
        steps.append([*_IPT, verb, CHAIN, *rule])
    return steps
