"""Configurations for the other end of a site connection, one module per vendor.

A connection's desired state (:class:`isthmus.rpc.payloads.Connection`, what the
agent builds the Isthmus side from) is turned around into :class:`PeerView`:
what the *peer device* must be told, in its own terms of "local" and "remote".
Each vendor module maps a :class:`PeerView` to that vendor's configuration text
through its own tables, and raises :class:`Unsupported` for an Isthmus
combination the vendor cannot express, naming the field, so that the API
answers a clear 400 instead of handing out a configuration that fails later.
The formats are registered by name in :mod:`isthmus.peers.formats`, which
says what a vendor module must expose; docs/peers.md shows each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from isthmus.rpc.payloads import Connection


class Unsupported(ValueError):
    """An Isthmus value the vendor format has no way to say (becomes a 400 naming ``field``)."""

    def __init__(self, fmt: str, field: str, value: object, hint: str = "") -> None:
        self.fmt, self.field, self.value, self.hint = fmt, field, value, hint
        message = f"format {fmt!r} cannot express {field} = {value!r}"
        super().__init__(f"{message}: {hint}" if hint else message)


@dataclass(frozen=True)
class Policy:
    """One IKE or IPsec policy as both ends must agree on it (API values, unmapped)."""

    encryption_algorithm: str
    auth_algorithm: str
    pfs: str                       # a DH group name ("group14") or "" when none
    lifetime_units: str            # "seconds" or "kilobytes"
    lifetime_value: int


@dataclass(frozen=True)
class PeerView:
    """A site connection seen from the peer device: its local side is the remote site.

    ``psk`` is None when the caller may not read the PSK: renderers then write a
    placeholder, never an empty secret.
    """

    connection_id: str
    name: str
    local_address: str            # the peer device's own address (the API's peer_address)
    remote_address: str           # the Isthmus router's external address
    local_id: str                 # the API's peer_id
    remote_id: str                # the API's local_id, or the router's address if empty
    local_subnets: tuple[str, ...]    # the API's peer CIDRs
    remote_subnets: tuple[str, ...]   # the Isthmus side's subnets
    psk: str | None
    ike_version: int              # 1 or 2
    phase1_negotiation_mode: str  # "main" or "aggressive" (IKEv1)
    ike: Policy
    ipsec: Policy
    transform_protocol: str       # "esp" or "ah"
    encapsulation_mode: str       # "tunnel" or "transport"
    dpd_action: str
    dpd_interval: int
    dpd_timeout: int
    mtu: int
    isthmus_initiates: bool       # False: Isthmus is response-only, the peer must start

    @classmethod
    def of(cls, connection: Connection, psk_visible: bool = True) -> PeerView:
        """The peer's view of ``connection`` (a desired-state payload)."""
        ike, ipsec, dpd = connection["ikepolicy"], connection["ipsecpolicy"], connection["dpd"]
        remote_address = connection["external_ip"] or ""
        return cls(
            connection_id=connection["id"], name=connection["name"],
            local_address=connection["peer_address"], remote_address=remote_address,
            local_id=connection["peer_id"],
            remote_id=connection["local_id"] or remote_address,
            local_subnets=tuple(connection["peer_cidrs"]),
            remote_subnets=tuple(connection["local_cidrs"]),
            psk=connection["psk"] if psk_visible else None,
            ike_version=2 if ike["ike_version"] == "v2" else 1,
            phase1_negotiation_mode=ike["phase1_negotiation_mode"],
            ike=_policy(ike), ipsec=_policy(ipsec),
            transform_protocol=ipsec["transform_protocol"],
            encapsulation_mode=ipsec["encapsulation_mode"],
            dpd_action=dpd["action"], dpd_interval=dpd["interval"], dpd_timeout=dpd["timeout"],
            mtu=connection["mtu"],
            isthmus_initiates=connection["initiator"] == "bi-directional")


def _policy(policy: Mapping[str, Any]) -> Policy:
    """An IKEPolicy or IPsecPolicy payload's negotiated parameters."""
    return Policy(encryption_algorithm=policy["encryption_algorithm"],
                  auth_algorithm=policy["auth_algorithm"], pfs=policy["pfs"] or "",
                  lifetime_units=policy["lifetime"]["units"],
                  lifetime_value=int(policy["lifetime"]["value"]))


def one_line(text: str) -> str:
    """``text`` safe in a one-line comment: control characters (a newline in a connection's
    name would end the comment and inject configuration) become ``?``."""
    return "".join(c if c.isprintable() else "?" for c in text)


PSK_PLACEHOLDER = "<pre-shared key: not shown to this caller>"
"""What renderers write where the PSK goes when :attr:`PeerView.psk` is None."""
