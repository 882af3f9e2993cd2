"""What the renderers share: table look-ups that refuse, subnet pairs, ranges, names.

Private to :mod:`isthmus.peers`: each vendor module keeps its own tables; these
helpers only turn a missing table entry or an out-of-range number into an
:class:`~isthmus.peers.Unsupported` that names the API field, so that every
vendor refuses the same way.
"""

from __future__ import annotations

import ipaddress
import math
import re
from itertools import product
from typing import Any, Mapping, NamedTuple, TypeVar

from isthmus.peers import PSK_PLACEHOLDER, PeerView, Unsupported

T = TypeVar("T")

AEAD_MARKERS = ("-gcm-", "-ccm-")


def keyword(fmt: str, table: Mapping[Any, T], field: str, value: Any, hint: str = "",
            missing: str = "supported here: {known}") -> T:
    """``table[value]``, or :class:`Unsupported` naming ``field`` and, unless ``hint`` says
    more, what the table does have (``missing``, its keys put for ``{known}``)."""
    try:
        return table[value]
    except KeyError:
        known = ", ".join(str(key) for key in table) or "nothing"
        raise Unsupported(fmt, field, value, hint or missing.format(known=known)) from None


def in_range(fmt: str, field: str, value: int, low: int, high: int, unit: str) -> int:
    """``value`` when ``low <= value <= high``; a vendor's CLI rejects anything else on commit."""
    if not low <= value <= high:
        raise Unsupported(fmt, field, value, f"the device accepts {low} to {high} {unit}")
    return value


def is_aead(encryption_algorithm: str) -> bool:
    """True for AES-GCM and AES-CCM: combined modes, no separate integrity algorithm."""
    return any(marker in encryption_algorithm for marker in AEAD_MARKERS)


def ike_seconds(fmt: str, view: PeerView, low: int, high: int) -> int:
    """The IKE SA lifetime in seconds; no vendor here limits an IKE SA by volume."""
    if view.ike.lifetime_units != "seconds":
        raise Unsupported(fmt, "ikepolicy.lifetime.units", view.ike.lifetime_units,
                          "IKE SAs are limited by time only; use seconds")
    return in_range(fmt, "ikepolicy.lifetime.value", view.ike.lifetime_value, low, high, "seconds")


class LifetimeUnit(NamedTuple):
    """How a vendor writes an IPsec SA lifetime given in one API unit, and the range it takes."""

    keyword: str     # the vendor's word for a lifetime in this unit
    factor: int      # vendor value = API value * factor (VyOS counts bytes, the API kilobytes)
    low: int         # the vendor's range, in the vendor's unit
    high: int


def ipsec_lifetime(fmt: str, view: PeerView, units: Mapping[str, LifetimeUnit]) -> tuple[str, int]:
    """(vendor keyword, vendor value) of the IPsec SA lifetime, its range checked in API units."""
    unit = keyword(fmt, units, "ipsecpolicy.lifetime.units", view.ipsec.lifetime_units)
    low, high = -(-unit.low // unit.factor), unit.high // unit.factor
    value = in_range(fmt, "ipsecpolicy.lifetime.value", view.ipsec.lifetime_value, low, high,
                     view.ipsec.lifetime_units)
    return unit.keyword, value * unit.factor


def subnet_pairs(view: PeerView) -> list[tuple[str, str]]:
    """(peer-side subnet, Isthmus-side subnet) for every combination, in API order.

    Isthmus's own IKEv1 side negotiates one CHILD_SA per such pair, so a vendor
    construct that holds one pair per tunnel (VyOS ``tunnel N``, a FortiGate
    phase 2, a Junos traffic selector) gets one of them per pair.
    """
    return list(product(view.local_subnets, view.remote_subnets))


def ipv4_network(fmt: str, field: str, cidr: str) -> ipaddress.IPv4Network:
    """``cidr`` as an IPv4 network, or :class:`Unsupported` for an IPv6 one."""
    network = ipaddress.ip_network(cidr, strict=False)
    if not isinstance(network, ipaddress.IPv4Network):
        raise Unsupported(fmt, field, cidr, "this format writes IPv4 tunnels only")
    return network


def require_ipv4(fmt: str, view: PeerView) -> None:
    """Refuse IPv6 endpoints or subnets, for formats whose tunnel or routes are IPv4-only."""
    for field, address in (("peer_address", view.local_address),
                           ("external_ip", view.remote_address)):
        if ipaddress.ip_address(address).version != 4:
            raise Unsupported(fmt, field, address, "this format writes IPv4 tunnels only")
    for field, cidrs in (("peer_cidrs", view.local_subnets), ("local_cidrs", view.remote_subnets)):
        for cidr in cidrs:
            ipv4_network(fmt, field, cidr)


_UNSAFE_WORD = re.compile(r"[\s\"'\\?]")


def plain_identities(fmt: str, view: PeerView) -> None:
    """Refuse IKE identities a CLI word cannot hold (blanks, quotes, backslash, ``?``).

    The API's ``peer_id`` is this device's identity and its ``local_id`` the
    Isthmus side's: the fields named are the API's.
    """
    for field, identity in (("peer_id", view.local_id), ("local_id", view.remote_id)):
        if _UNSAFE_WORD.search(identity):
            raise Unsupported(fmt, field, identity,
                              "an identity with blanks, quotes, backslashes or '?' cannot be "
                              "written as one CLI word; use an address, FQDN or e-mail")


def identity_kind(identity: str) -> tuple[str, str]:
    """(``address``, ``email`` or ``fqdn``, value) of an IKE identity.

    strongSwan's ``@`` prefix (``@host.example``: an FQDN, never resolved) is dropped:
    the vendors write the kind as a keyword instead.
    """
    try:
        ipaddress.ip_address(identity)
    except ValueError:
        bare = identity.removeprefix("@")
        return ("email" if "@" in bare else "fqdn"), bare
    return "address", identity


def secret(fmt: str, view: PeerView, unsafe: re.Pattern[str], why: str) -> str:
    """The PSK to write, :data:`PSK_PLACEHOLDER` when hidden; refused when ``unsafe`` matches.

    The refusal never carries the key itself: its value reads ``(not shown)``.
    """
    if view.psk is None:
        return PSK_PLACEHOLDER
    if unsafe.search(view.psk):
        raise Unsupported(fmt, "psk", "(not shown)", why)
    return view.psk


def dpd_retries(interval_s: int, timeout_s: int) -> int:
    """How many missed DPD probes, ``interval_s`` apart, make up ``timeout_s`` (at least 1)."""
    return max(1, math.ceil(timeout_s / interval_s))


def object_name(view: PeerView) -> str:
    """A name for the vendor objects of one connection: ``isthmus-`` and 7 hex digits of its id.

    Derived from the connection id, not its name: names may be empty, repeated or
    hold characters a CLI refuses. 15 characters, because FortiOS limits a phase 1
    name (and so the tunnel interface it creates) to 15.
    """
    return "isthmus-" + view.connection_id.replace("-", "")[:7]
