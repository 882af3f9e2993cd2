"""VyOS 1.4 (sagitta): ``set vpn ipsec ...`` configuration-mode commands for the peer router.

A policy-based site-to-site peer: one ``ike-group`` and one ``esp-group`` per
connection, the PSK under ``authentication psk``, and one ``tunnel N`` per
(peer subnet, Isthmus subnet) pair, as Isthmus's own IKEv1 side negotiates one
CHILD_SA per pair. VyOS runs strongSwan, so the algorithm names are
strongSwan's, with AEAD ICV lengths in bits (``aes128gcm128``), and the limits
are strongSwan's too: IKEv1 phase 1 has CBC ciphers and HMAC hashes only, and
IKEv1 has no AES-CMAC. VyOS has ESP groups only: AH is refused, and refuses subnet
prefixes in transport mode: transport is refused too. VyOS initiates
IKEv1 aggressive mode but, like charon by default, refuses to answer it with a
PSK: aggressive mode is refused unless VyOS initiates (Isthmus ``response-only``).

Lifetimes are written as the API gives them: VyOS's ``lifetime`` becomes
strongSwan's rekey time, and neither IKEv2 end needs the other's lifetime to
match. DPD: the API's ``dpd.action`` maps to VyOS's ``dead-peer-detection
action``, with the names of VyOS 1.4 (``hold`` became ``trap`` in its IPsec
config version 13). Initiator: when Isthmus starts the connection
(``bi-directional``), this side only answers and traps traffic
(``connection-type respond``); when Isthmus is ``response-only``, this side must
initiate (``initiate``) and re-create what the other side closes (``close-action
start``).
"""

from __future__ import annotations

from isthmus.peers import PSK_PLACEHOLDER, PeerView, Unsupported
from isthmus.peers._rendering import (
    LifetimeUnit, ike_seconds, in_range, ipsec_lifetime, is_aead, keyword, object_name,
    subnet_pairs)

FORMAT = "vyos"
DESCRIPTION = "VyOS 1.4 (sagitta) 'set vpn ipsec' commands, policy-based site-to-site"
FILENAME = "vyos-{name}.txt"

ENCRYPTION: dict[str, str] = {
    "3des": "3des",
    **{f"aes-{bits}": f"aes{bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-ctr": f"aes{bits}ctr" for bits in (128, 192, 256)},
    # VyOS writes the ICV length in bits: 8, 12, 16 octets are 64, 96, 128 bits.
    **{f"aes-{bits}-{mode}-{icv}": f"aes{bits}{mode}{icv * 8}"
       for bits in (128, 192, 256) for mode in ("ccm", "gcm") for icv in (8, 12, 16)},
}
"""API ``encryption_algorithm`` → VyOS ``proposal N encryption`` (ike-group and esp-group)."""

HASH: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
    "aes-xcbc": "aesxcbc", "aes-cmac": "aescmac",
}
"""API ``auth_algorithm`` → VyOS ``proposal N hash`` (strongSwan derives the IKE PRF from it)."""

IKE_DH_GROUPS: dict[str, str] = {
    f"group{n}": str(n) for n in (2, 5, *range(14, 32))}
"""API ``ikepolicy.pfs`` → VyOS ike-group ``proposal N dh-group`` (a bare number)."""

ESP_PFS: dict[str, str] = {
    "": "disable", **{f"group{n}": f"dh-group{n}" for n in (2, 5, *range(14, 32))}}
"""API ``ipsecpolicy.pfs`` → VyOS esp-group ``pfs`` (empty: no PFS)."""

KEY_EXCHANGE: dict[str, str] = {"v1": "ikev1", "v2": "ikev2"}
"""API ``ike_version`` → VyOS ike-group ``key-exchange``."""

PHASE1_MODES: dict[str, str] = {"main": "main", "aggressive": "aggressive"}
"""API ``phase1_negotiation_mode`` → VyOS ike-group ``mode`` (written for IKEv1 only)."""

ESP_MODES: dict[str, str] = {"tunnel": "tunnel"}
"""API ``encapsulation_mode`` → VyOS esp-group ``mode``.

No transport: VyOS 1.4 refuses to commit a tunnel with ``local prefix`` or
``remote prefix`` whose ESP group is in transport mode, and a site connection
always has subnets.
"""

DPD_ACTIONS: dict[str, str | None] = {
    "hold": "trap", "clear": "clear", "restart": "restart", "restart-by-peer": "clear",
    "disabled": None,
}
"""API ``dpd.action`` → VyOS ``dead-peer-detection action``; None: no DPD block at all."""

CONNECTION_TYPES: dict[bool, str] = {True: "respond", False: "initiate"}
"""Does Isthmus initiate? → this side's ``connection-type`` (one side starts, the other answers).

``respond`` installs trap policies (strongSwan ``start_action = trap``): traffic
from this side also brings the tunnel up.
"""

CLOSE_ACTIONS: dict[bool, str | None] = {True: None, False: "start"}
"""Does Isthmus initiate? → ike-group ``close-action`` (None: VyOS's default, ``none``).

The initiating side re-creates a CHILD_SA the other side closes, as Isthmus's
own side does when it initiates (``close_action start``).
"""

TRANSFORM_PROTOCOLS: dict[str, str] = {"esp": "esp-group"}
"""API ``transform_protocol`` → the VyOS group that carries it (VyOS has no AH)."""

ESP_LIFETIMES: dict[str, LifetimeUnit] = {
    "seconds": LifetimeUnit("lifetime", 1, 30, 86400),
    "kilobytes": LifetimeUnit("life-bytes", 1024, 1024, 26843545600000),
}
"""API ``ipsecpolicy.lifetime.units`` → esp-group ``lifetime`` (seconds) or ``life-bytes``."""

IKE_LIFETIME_S = (0, 86400)
DPD_SECONDS = (2, 86400)
# strongSwan's IKEv1 support (VyOS is strongSwan): CBC ciphers and HMACs in phase 1,
# no AES-CMAC in phase 2 (see isthmus.drivers.device.strongswan.mapping).
_IKEV1_PHASE1_ENCRYPTION = frozenset({"3des", "aes-128", "aes-192", "aes-256"})
_IKEV1_PHASE1_HASH = frozenset({"sha1", "sha256", "sha384", "sha512"})
_IKEV1_PHASE2_HASH = frozenset(HASH) - {"aes-cmac"}


def render(view: PeerView) -> str:
    """The commands, one ``set`` per line, with a comment header naming the connection."""
    _check_ikev1(view)
    keyword(FORMAT, TRANSFORM_PROTOCOLS, "ipsecpolicy.transform_protocol",
            view.transform_protocol, "VyOS has ESP groups only; use esp")
    name = object_name(view)
    ike, esp = f"set vpn ipsec ike-group {name}", f"set vpn ipsec esp-group {name}"
    lines = [
        f"# Isthmus site connection {view.name or view.connection_id} ({view.connection_id}):",
        "# the VyOS side. Enter in configuration mode, then 'commit' and 'save'.",
        f"{ike} key-exchange " + _quoted(keyword(
            FORMAT, KEY_EXCHANGE, "ikepolicy.ike_version", f"v{view.ike_version}")),
        f"{ike} lifetime '{ike_seconds(FORMAT, view, *IKE_LIFETIME_S)}'",
    ]
    if view.ike_version == 1:
        lines.append(f"{ike} mode " + _quoted(keyword(
            FORMAT, PHASE1_MODES, "ikepolicy.phase1_negotiation_mode",
            view.phase1_negotiation_mode)))
    lines += [
        f"{ike} proposal 1 dh-group " + _quoted(keyword(
            FORMAT, IKE_DH_GROUPS, "ikepolicy.pfs", view.ike.pfs,
            "an IKE SA needs a DH group")),
        f"{ike} proposal 1 encryption " + _quoted(keyword(
            FORMAT, ENCRYPTION, "ikepolicy.encryption_algorithm", view.ike.encryption_algorithm)),
        f"{ike} proposal 1 hash " + _quoted(keyword(
            FORMAT, HASH, "ikepolicy.auth_algorithm", view.ike.auth_algorithm)),
    ]
    close_action = CLOSE_ACTIONS[view.isthmus_initiates]
    if close_action is not None:
        lines.append(f"{ike} close-action {_quoted(close_action)}")
    dpd_action = keyword(FORMAT, DPD_ACTIONS, "dpd.action", view.dpd_action)
    if dpd_action is not None:
        lines += [
            f"{ike} dead-peer-detection action {_quoted(dpd_action)}",
            f"{ike} dead-peer-detection interval '"
            f"{in_range(FORMAT, 'dpd.interval', view.dpd_interval, *DPD_SECONDS, 'seconds')}'",
            f"{ike} dead-peer-detection timeout '"
            f"{in_range(FORMAT, 'dpd.timeout', view.dpd_timeout, *DPD_SECONDS, 'seconds')}'",
        ]
    lifetime_keyword, lifetime = ipsec_lifetime(FORMAT, view, ESP_LIFETIMES)
    lines += [f"{esp} {lifetime_keyword} '{lifetime}'",
              f"{esp} mode " + _quoted(keyword(
                  FORMAT, ESP_MODES, "ipsecpolicy.encapsulation_mode", view.encapsulation_mode,
                  "VyOS refuses subnet prefixes with a transport-mode ESP group; use tunnel")),
              f"{esp} pfs " + _quoted(keyword(FORMAT, ESP_PFS, "ipsecpolicy.pfs", view.ipsec.pfs)),
              f"{esp} proposal 1 encryption " + _quoted(keyword(
                  FORMAT, ENCRYPTION, "ipsecpolicy.encryption_algorithm",
                  view.ipsec.encryption_algorithm)),
              # ignored by strongSwan with an AEAD cipher, but VyOS always writes a hash
              f"{esp} proposal 1 hash " + _quoted(keyword(
                  FORMAT, HASH, "ipsecpolicy.auth_algorithm", view.ipsec.auth_algorithm))]
    psk = f"set vpn ipsec authentication psk {name}"
    peer = f"set vpn ipsec site-to-site peer {name}"
    lines += [
        f"{psk} id {_quoted(view.local_id)}",
        f"{psk} id {_quoted(view.remote_id)}",
        f"{psk} secret {_quoted(view.psk if view.psk is not None else PSK_PLACEHOLDER)}",
        f"{peer} authentication local-id {_quoted(view.local_id)}",
        f"{peer} authentication mode 'pre-shared-secret'",
        f"{peer} authentication remote-id {_quoted(view.remote_id)}",
        f"{peer} connection-type {_quoted(CONNECTION_TYPES[view.isthmus_initiates])}",
        f"{peer} default-esp-group {_quoted(name)}",
        f"{peer} ike-group {_quoted(name)}",
        f"{peer} local-address {_quoted(view.local_address)}",
        f"{peer} remote-address {_quoted(view.remote_address)}",
    ]
    for number, (local, remote) in enumerate(subnet_pairs(view), start=1):
        lines += [f"{peer} tunnel {number} local prefix {_quoted(local)}",
                  f"{peer} tunnel {number} remote prefix {_quoted(remote)}"]
    return "\n".join(lines) + "\n"


def _check_ikev1(view: PeerView) -> None:
    """strongSwan's IKEv1 limits, which VyOS inherits: refuse before VyOS fails to negotiate."""
    if view.ike_version != 1:
        return
    if view.phase1_negotiation_mode == "aggressive" and view.isthmus_initiates:
        # VyOS 1.4's charon.conf leaves i_dont_care_about_security_and_use_aggressive_mode_psk
        # off: it initiates aggressive mode but refuses to answer it.
        raise Unsupported(FORMAT, "ikepolicy.phase1_negotiation_mode", "aggressive",
                          "VyOS refuses to answer IKEv1 aggressive mode with a PSK; use main, "
                          "or initiator response-only so that VyOS initiates")
    if view.ike.encryption_algorithm not in _IKEV1_PHASE1_ENCRYPTION:
        raise Unsupported(FORMAT, "ikepolicy.encryption_algorithm", view.ike.encryption_algorithm,
                          "IKEv1 phase 1 has CBC ciphers only (3des, aes-128, aes-192, "
                          "aes-256); use one of them or ike_version v2")
    if view.ike.auth_algorithm not in _IKEV1_PHASE1_HASH:
        raise Unsupported(FORMAT, "ikepolicy.auth_algorithm", view.ike.auth_algorithm,
                          "IKEv1 phase 1 hashes are sha1, sha256, sha384 and sha512")
    if not is_aead(view.ipsec.encryption_algorithm) \
            and view.ipsec.auth_algorithm not in _IKEV1_PHASE2_HASH:
        raise Unsupported(FORMAT, "ipsecpolicy.auth_algorithm", view.ipsec.auth_algorithm,
                          "IKEv1 has no transform for AES-CMAC; use another or ike_version v2")


def _quoted(value: str) -> str:
    """A single-quoted word for VyOS's (bash-based) configuration shell."""
    return "'" + value.replace("'", "'\\''") + "'"
