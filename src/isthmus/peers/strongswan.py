"""``strongswan``: a swanctl.conf (connection and secret) for a plain strongSwan 5.9 peer.

The algorithms, proposals and lifetimes come from the tables Isthmus's own
strongSwan side is configured with (:mod:`isthmus.drivers.device.strongswan.mapping`):
both ends then propose exactly the same thing. What differs is the peer's role:

=====================================  =============================================
Isthmus connection                     the peer's swanctl.conf
=====================================  =============================================
``initiator`` bi-directional           child ``start_action = trap``: it answers
                                       Isthmus, and its own traffic brings the tunnel
                                       up; ``close_action = none``
``initiator`` response-only            ``start_action = start``, ``close_action =
                                       start``: Isthmus never initiates, the peer must
``dpd.action`` :data:`DPD_ACTIONS`     hold → trap, clear → clear, restart and
                                       restart-by-peer → restart (the peer is the one
                                       to restart), disabled → ``dpd_delay = 0``
``peer_address`` / external IP         ``local_addrs`` / ``remote_addrs``
``peer_id`` / ``local_id``             ``local.id`` / ``remote.id``
peer CIDRs / Isthmus subnets           child ``local_ts`` / ``remote_ts`` (IKEv1:
                                       one child per pair, as on the Isthmus side)
=====================================  =============================================

``encap`` is left to strongSwan (UDP encapsulation when NAT is detected: an
Isthmus side on kernel-libipsec forces it from its end). The PSK is written in
quotes, or base64 (``0s...``) when it holds a quote, a backslash or a control
character. The peer's strongswan.conf must load the crypto plugins of the
proposals (``aes sha2 hmac gmp gcm openssl``, plus ``xcbc``/``cmac`` for those).
"""

from __future__ import annotations

import base64
import re
import string
from itertools import product
from pathlib import Path

from isthmus.drivers.device.strongswan import mapping
from isthmus.peers import PSK_PLACEHOLDER, PeerView, Policy, Unsupported, one_line
from isthmus.peers._rendering import keyword

FORMAT = "strongswan"
DESCRIPTION = "swanctl.conf (connection and secret) for a strongSwan 5.9 peer"
FILENAME = "swanctl-{name}.conf"

DPD_ACTIONS: dict[str, str] = {"hold": "trap", "clear": "clear", "restart": "restart",
                               "restart-by-peer": "restart", "disabled": "clear"}
"""Isthmus ``dpd.action`` → the peer's child ``dpd_action``."""

START_ACTIONS: dict[bool, str] = {True: "trap", False: "start"}
"""Whether Isthmus initiates → the peer's child ``start_action``."""

CLOSE_ACTIONS: dict[bool, str] = {True: "none", False: "start"}
"""Whether Isthmus initiates → the peer's child ``close_action``."""

_TEMPLATES = Path(__file__).with_name("templates")
_CONF = string.Template((_TEMPLATES / "strongswan.swanctl.conf.template").read_text())
_CHILD = string.Template((_TEMPLATES / "strongswan.child.template").read_text())
_PLAIN = re.compile(r"[A-Za-z0-9@._:/=+-]+")


def render(view: PeerView) -> str:
    """The peer's swanctl.conf; raises :class:`Unsupported` for what strongSwan cannot do."""
    ike, ipsec = _ike_api(view), _ipsec_api(view)
    _check(view, ike, ipsec)
    v2 = view.ike_version == 2
    renew, margin = mapping.renewal(view.ike.lifetime_value)
    dpd_on = view.dpd_action != "disabled"
    conn = mapping.connection_name(view.connection_id)
    if v2:
        pairs = [(list(view.local_subnets), list(view.remote_subnets))]
    else:  # IKEv1 negotiates one selector pair per CHILD_SA, as the Isthmus side has
        pairs = [([local], [remote]) for local, remote in
                 product(view.local_subnets, view.remote_subnets)] \
            or [(list(view.local_subnets), list(view.remote_subnets))]
    esp = view.transform_protocol == "esp"
    child = {
        "mode": view.encapsulation_mode,
        "proposals_key": "esp_proposals" if esp else "ah_proposals",
        "child_proposal": mapping.esp_proposal(ipsec) if esp else mapping.ah_proposal(ipsec),
        "lifetime": "\n".join(f"        {key} = {value}"
                              for key, value in mapping.child_lifetime(ipsec).items()),
        "dpd_action": _table(DPD_ACTIONS, "dpd.action", view.dpd_action),
        "start_action": START_ACTIONS[view.isthmus_initiates],
        "close_action": CLOSE_ACTIONS[view.isthmus_initiates],
    }
    children = "".join(_CHILD.substitute(
        child=mapping.child_name(view.connection_id, index), local_ts=_list(local_ts),
        remote_ts=_list(remote_ts), **child) for index, (local_ts, remote_ts) in
        enumerate(pairs)).rstrip("\n")
    return _CONF.substitute(
        name=one_line(view.name), id=view.connection_id, conn=conn,
        initiation=("Isthmus initiates too" if view.isthmus_initiates
                    else "Isthmus is response-only: this peer initiates"),
        version=view.ike_version, local_address=view.local_address,
        remote_address=view.remote_address, ike_proposal=mapping.ike_proposal(ike),
        aggressive="yes" if view.phase1_negotiation_mode == "aggressive" else "no",
        rekey_time=f"{renew if v2 else 0}s", reauth_time=f"{0 if v2 else renew}s",
        over_time=f"{margin}s",
        dpd_delay=f"{view.dpd_interval if dpd_on else 0}s",
        dpd_timeout=f"{view.dpd_timeout if dpd_on else 0}s",
        local_id=_value(view.local_id), remote_id=_value(view.remote_id),
        secret=_secret(view.psk), children=children)


def _check(view: PeerView, ike: dict, ipsec: dict) -> None:
    """Refuse what the Isthmus strongSwan mapping refuses, naming the field."""
    for field, table, value in (
            ("ikepolicy.encryption_algorithm", mapping.ENCRYPTION, view.ike.encryption_algorithm),
            ("ikepolicy.auth_algorithm", mapping.INTEGRITY, view.ike.auth_algorithm),
            ("ikepolicy.pfs", mapping.DH_GROUPS, view.ike.pfs),
            ("ipsecpolicy.encryption_algorithm", mapping.ENCRYPTION,
             view.ipsec.encryption_algorithm),
            ("ipsecpolicy.auth_algorithm", mapping.INTEGRITY, view.ipsec.auth_algorithm),
            ("ipsecpolicy.pfs", mapping.DH_GROUPS, view.ipsec.pfs),
            ("dpd.action", DPD_ACTIONS, view.dpd_action)):
        _table(table, field, value)
    reasons = mapping.unsupported(ike, ipsec, libipsec=False)
    if reasons:   # e.g. "IKE policy encryption_algorithm 'aes-128-ctr' is not supported: ..."
        policy, _, rest = reasons[0].partition(" policy ")
        attribute, _, why = rest.partition(" ")
        prefix = "ikepolicy" if policy == "IKE" else "ipsecpolicy"
        values = ike if prefix == "ikepolicy" else ipsec
        raise Unsupported(FORMAT, f"{prefix}.{attribute}", values.get(attribute),
                          why.partition(": ")[2] or why)


def _table(table: dict, field: str, value: str) -> str:
    return keyword(FORMAT, table, field, value,
                   missing="strongSwan has no keyword for it (known: {known})")


def _policy_api(policy: Policy) -> dict:
    """A :class:`Policy` as the API (and the mapping's functions) spell it."""
    return {"encryption_algorithm": policy.encryption_algorithm,
            "auth_algorithm": policy.auth_algorithm, "pfs": policy.pfs,
            "lifetime": {"units": policy.lifetime_units, "value": policy.lifetime_value}}


def _ike_api(view: PeerView) -> dict:
    return {**_policy_api(view.ike), "ike_version": f"v{view.ike_version}",
            "phase1_negotiation_mode": view.phase1_negotiation_mode}


def _ipsec_api(view: PeerView) -> dict:
    return {**_policy_api(view.ipsec), "transform_protocol": view.transform_protocol,
            "encapsulation_mode": view.encapsulation_mode}


def _list(values: list[str]) -> str:
    return ",".join(values)


def _value(text: str) -> str:
    """``text`` as a swanctl.conf value: bare when plain, else quoted with escapes."""
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _secret(psk: str | None) -> str:
    """The PSK as a swanctl.conf value: quoted, or ``0s`` base64 when quoting is unsafe."""
    if psk is None:
        return f'"{PSK_PLACEHOLDER}"'
    if all(c.isprintable() and c not in '"\\' for c in psk):
        return f'"{psk}"'
    return "0s" + base64.b64encode(psk.encode()).decode()
