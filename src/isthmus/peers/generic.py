"""``generic``: every parameter of the connection in plain words, for any other device.

A sheet an operator types into a vendor's web form: both sides' addresses, IKE
identities and networks, each algorithm by its common name ("AES-CBC 128",
"HMAC-SHA-256", "group 14 (MODP 2048-bit)"), lifetimes, who initiates and
dead peer detection. Every value the API allows has words here; one that does
not (a future API value) raises :class:`Unsupported`, naming it.
"""

from __future__ import annotations

import string
from pathlib import Path

from isthmus.peers import PSK_PLACEHOLDER, PeerView, Policy, Unsupported, one_line

FORMAT = "generic"
DESCRIPTION = "every parameter in plain words, for a device without a format of its own"
FILENAME = "ipsec-{name}.txt"

ENCRYPTION: dict[str, str] = {
    "3des": "3DES-CBC (168-bit key)",
    **{f"aes-{bits}": f"AES-CBC {bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-ctr": f"AES-CTR {bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-{mode}-{icv}": f"AES-{mode.upper()} {bits} with a {icv}-octet ICV "
                                   "(combined mode: no separate integrity)"
       for bits in (128, 192, 256) for mode in ("gcm", "ccm") for icv in (8, 12, 16)},
}
"""API ``encryption_algorithm`` → its common name."""

AEAD = frozenset(name for name in ENCRYPTION if "-gcm-" in name or "-ccm-" in name)
"""Combined-mode ciphers: no separate integrity algorithm."""

INTEGRITY: dict[str, str] = {
    "sha1": "HMAC-SHA-1 (96-bit ICV)", "sha256": "HMAC-SHA-256 (128-bit ICV)",
    "sha384": "HMAC-SHA-384 (192-bit ICV)", "sha512": "HMAC-SHA-512 (256-bit ICV)",
    "aes-xcbc": "AES-XCBC-MAC-96", "aes-cmac": "AES-CMAC-96",
}
"""API ``auth_algorithm`` → its name as an integrity algorithm."""

PRF: dict[str, str] = {
    "sha1": "PRF-HMAC-SHA-1", "sha256": "PRF-HMAC-SHA-256", "sha384": "PRF-HMAC-SHA-384",
    "sha512": "PRF-HMAC-SHA-512", "aes-xcbc": "PRF-AES-128-XCBC", "aes-cmac": "PRF-AES-128-CMAC",
}
"""API ``auth_algorithm`` → its name as the IKE pseudo-random function."""

DH_GROUPS: dict[str, str] = {
    "group2": "group 2 (MODP 1024-bit)", "group5": "group 5 (MODP 1536-bit)",
    "group14": "group 14 (MODP 2048-bit)", "group15": "group 15 (MODP 3072-bit)",
    "group16": "group 16 (MODP 4096-bit)", "group17": "group 17 (MODP 6144-bit)",
    "group18": "group 18 (MODP 8192-bit)", "group19": "group 19 (ECP 256-bit, NIST P-256)",
    "group20": "group 20 (ECP 384-bit, NIST P-384)",
    "group21": "group 21 (ECP 521-bit, NIST P-521)",
    "group22": "group 22 (MODP 1024-bit with 160-bit prime order subgroup)",
    "group23": "group 23 (MODP 2048-bit with 224-bit prime order subgroup)",
    "group24": "group 24 (MODP 2048-bit with 256-bit prime order subgroup)",
    "group25": "group 25 (ECP 192-bit)", "group26": "group 26 (ECP 224-bit)",
    "group27": "group 27 (Brainpool P-224)", "group28": "group 28 (Brainpool P-256)",
    "group29": "group 29 (Brainpool P-384)", "group30": "group 30 (Brainpool P-512)",
    "group31": "group 31 (Curve25519)",
}
"""API ``pfs`` → the Diffie-Hellman group's number and name."""

DPD_ACTIONS: dict[str, str] = {
    "hold": "keep the tunnel's policy and renegotiate when traffic comes",
    "clear": "remove the tunnel", "restart": "renegotiate at once",
    "restart-by-peer": "remove the tunnel; the other side renegotiates",
}
"""API ``dpd.action`` → what a device does when the other side is declared dead."""

_TEMPLATE = string.Template(
    (Path(__file__).with_name("templates") / "generic.txt.template").read_text())


def render(view: PeerView) -> str:
    """The sheet; raises :class:`Unsupported` for a value it has no words for."""
    aead = view.ike.encryption_algorithm in AEAD
    esp = view.transform_protocol == "esp"
    ipsec_aead = esp and view.ipsec.encryption_algorithm in AEAD
    if view.dpd_action == "disabled":
        dpd = "off"
    else:
        dpd = (f"every {view.dpd_interval} s, the peer is dead after {view.dpd_timeout} s; "
               f"then {_words(DPD_ACTIONS, 'dpd.action', view.dpd_action)}")
    return _TEMPLATE.substitute(
        name=one_line(view.name), id=view.connection_id,
        local_address=view.local_address, remote_address=view.remote_address,
        local_id=view.local_id, remote_id=view.remote_id,
        psk=PSK_PLACEHOLDER if view.psk is None else view.psk,
        local_subnets=", ".join(view.local_subnets) or "(none)",
        remote_subnets=", ".join(view.remote_subnets) or "(none)",
        ike_version=f"IKEv{view.ike_version}",
        mode=("main mode" if view.phase1_negotiation_mode == "main" else "aggressive mode")
        if view.ike_version == 1 else "(IKEv2: no modes)",
        ike_encryption=_words(ENCRYPTION, "ikepolicy.encryption_algorithm",
                              view.ike.encryption_algorithm),
        ike_integrity="none (combined-mode cipher)" if aead else _words(
            INTEGRITY, "ikepolicy.auth_algorithm", view.ike.auth_algorithm),
        ike_prf=_words(PRF, "ikepolicy.auth_algorithm", view.ike.auth_algorithm),
        ike_dh=_words(DH_GROUPS, "ikepolicy.pfs", view.ike.pfs),
        ike_lifetime=_lifetime(view.ike),
        protocol={"esp": "ESP", "ah": "AH (authentication only, no encryption)"}.get(
            view.transform_protocol) or _refuse("ipsecpolicy.transform_protocol",
                                                view.transform_protocol),
        encapsulation=f"{view.encapsulation_mode} mode",
        ipsec_encryption=_words(ENCRYPTION, "ipsecpolicy.encryption_algorithm",
                                view.ipsec.encryption_algorithm) if esp else "none (AH)",
        ipsec_integrity="none (combined-mode cipher)" if ipsec_aead else _words(
            INTEGRITY, "ipsecpolicy.auth_algorithm", view.ipsec.auth_algorithm),
        ipsec_pfs=_words(DH_GROUPS, "ipsecpolicy.pfs", view.ipsec.pfs) if view.ipsec.pfs
        else "none",
        ipsec_lifetime=_lifetime(view.ipsec),
        initiation=("both sides (Isthmus starts the tunnel; this device may too)"
                    if view.isthmus_initiates else
                    "this device: Isthmus only answers (response-only)"),
        dpd=dpd, mtu=f"{view.mtu} bytes")


def _words(table: dict[str, str], field: str, value: str) -> str:
    try:
        return table[value]
    except KeyError:
        return _refuse(field, value)


def _refuse(field: str, value: str) -> str:
    raise Unsupported(FORMAT, field, value, "the generic sheet has no words for it")


def _lifetime(policy: Policy) -> str:
    return f"{policy.lifetime_value} {policy.lifetime_units}"
