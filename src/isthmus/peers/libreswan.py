"""``libreswan``: an ipsec.conf ``conn`` section and its ipsec.secrets line (libreswan 4.x).

Algorithm keywords (libreswan's proposal parser; ``tests/peer_configs/
test_libreswan.py`` has libreswan's own ``algparse`` parse every proposal
this module can make, and check it refuses the rest):

=======================  =====================  ==========================================
API value                libreswan              notes
=======================  =====================  ==========================================
``3des``                 ``3des``
``aes-N``                ``aesN``               AES-CBC
``aes-N-ctr``            ``aes_ctrN``
``aes-N-gcm-8/12/16``    ``aes_gcm_a/b/cN``     ICV 8/12/16 octets; ESP ``...-null``
``aes-N-ccm-8/12/16``    ``aes_ccm_a/b/cN``     ESP only: libreswan has no CCM in IKE
``sha1``                 ``sha1``
``sha256/384/512``       ``sha2_256/384/512``
``aes-xcbc``             ``aes_xcbc``           not in IKEv1 phase 1
``aes-cmac``             ``aes_cmac``           ESP/AH only: no AES-CMAC PRF in libreswan
``group5``               ``modp1536``
``group14..18``          ``modp2048..8192``
``group19/20/21``        ``dh19/20/21``         ECP 256/384/521
``group31``              ``dh31``               Curve25519
``group2``               —                      "no longer compiled in" since 4.0
``group22..30``          —                      22–24 not compiled in by default, 25–30
                                                not implemented (NSS lacks them)
=======================  =====================  ==========================================

The rest: ``ikev2=insist`` / ``no`` (``insist``: read as ``yes`` by libreswan
4.x, and understood by 3.x), ``aggressive=yes`` for IKEv1 aggressive mode,
``phase2=esp|ah`` with ``esp=`` / ``ah=`` and ``pfs=yes|no`` (the IPsec policy's
group in the proposal), ``type=tunnel|transport``, ``ikelifetime`` and
``salifetime`` in seconds (libreswan's maximum is 24 h: longer is refused), an
IPsec lifetime in kilobytes as ``ipsec-max-bytes``, ``dpddelay``/``dpdtimeout``/
``dpdaction`` (:data:`DPD_ACTIONS`; none when DPD is disabled),
``leftsubnet=`` or ``leftsubnets={...}``. ``auto=ondemand`` when Isthmus
initiates too (the peer answers, and its traffic brings the tunnel up),
``auto=start`` when Isthmus is response-only (the peer must initiate).
"""

from __future__ import annotations

import base64
import re
import string
from pathlib import Path

from isthmus.peers import PSK_PLACEHOLDER, PeerView, Unsupported, one_line
from isthmus.peers._rendering import keyword

FORMAT = "libreswan"
DESCRIPTION = "ipsec.conf conn section and ipsec.secrets line for a libreswan 4.x peer"
FILENAME = "libreswan-{name}.conf"

ENCRYPTION: dict[str, str] = {
    "3des": "3des",
    **{f"aes-{bits}": f"aes{bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-ctr": f"aes_ctr{bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-{mode}-{icv}": f"aes_{mode}_{suffix}{bits}"
       for bits in (128, 192, 256) for mode in ("gcm", "ccm")
       for icv, suffix in ((8, "a"), (12, "b"), (16, "c"))},
}
"""API ``encryption_algorithm`` → libreswan encryption keyword."""

AEAD = frozenset(name for name in ENCRYPTION if "-gcm-" in name or "-ccm-" in name)
"""Combined-mode algorithms: ``-null`` integrity in ESP, the PRF after them in IKE."""

NOT_IN_IKE = frozenset(name for name in ENCRYPTION if "-ccm-" in name) | {"aes-cmac"}
"""Algorithms libreswan has for ESP/AH but not for IKE."""

IKEV1_PHASE1 = frozenset({"3des", "aes-128", "aes-192", "aes-256", "aes-128-ctr",
                          "aes-192-ctr", "aes-256-ctr", "sha1", "sha256", "sha384", "sha512"})
"""What libreswan's IKEv1 phase 1 can do (no AEAD, no AES-XCBC PRF)."""

INTEGRITY: dict[str, str] = {"sha1": "sha1", "sha256": "sha2_256", "sha384": "sha2_384",
                             "sha512": "sha2_512", "aes-xcbc": "aes_xcbc",
                             "aes-cmac": "aes_cmac"}
"""API ``auth_algorithm`` → libreswan integrity (and PRF) keyword."""

DH_GROUPS: dict[str, str] = {
    "group5": "modp1536", "group14": "modp2048", "group15": "modp3072",
    "group16": "modp4096", "group17": "modp6144", "group18": "modp8192",
    "group19": "dh19", "group20": "dh20", "group21": "dh21", "group31": "dh31",
}
"""API ``pfs`` → libreswan DH keyword; the groups missing here libreswan 4.x lacks."""

DPD_ACTIONS: dict[str, str] = {"hold": "hold", "clear": "clear", "restart": "restart",
                               "restart-by-peer": "restart"}
"""Isthmus ``dpd.action`` → ``dpdaction`` (``disabled``: no DPD lines at all)."""

MAX_LIFETIME_S = 86400
"""libreswan refuses an ``ikelifetime`` or ``salifetime`` above 24 h."""

_TEMPLATE = string.Template(
    (Path(__file__).with_name("templates") / "libreswan.ipsec.conf.template").read_text())
_PLAIN = re.compile(r"[A-Za-z0-9@._:/=+-]+")


def render(view: PeerView) -> str:
    """The conn section and secrets line; raises :class:`Unsupported` for what libreswan
    cannot do."""
    ike = "-".join((_ike_encryption(view), _ike_integrity(view),
                    _keyword(DH_GROUPS, "ikepolicy.pfs", view.ike.pfs)))
    options = []
    if view.ike_version == 1 and view.phase1_negotiation_mode == "aggressive":
        options.append("aggressive=yes")
    if view.dpd_action != "disabled":
        options += [f"dpddelay={view.dpd_interval}", f"dpdtimeout={view.dpd_timeout}",
                    f"dpdaction={_keyword(DPD_ACTIONS, 'dpd.action', view.dpd_action)}"]
    conn = f"isthmus-{view.connection_id}"
    local_id, remote_id = _value("peer_id", view.local_id), _value("local_id", view.remote_id)
    text = _TEMPLATE.substitute(
        name=one_line(view.name), id=view.connection_id, conn=conn,
        ikev2="insist" if view.ike_version == 2 else "no",
        local_address=view.local_address, remote_address=view.remote_address,
        local_id=local_id, remote_id=remote_id,
        leftsubnets=_subnets("left", view.local_subnets),
        rightsubnets=_subnets("right", view.remote_subnets),
        ike=ike, phase2=_phase2(view), phase2_key=_phase2(view),
        phase2_proposal=_phase2_proposal(view), pfs="yes" if view.ipsec.pfs else "no",
        type=_keyword({"tunnel": "tunnel", "transport": "transport"},
                      "ipsecpolicy.encapsulation_mode", view.encapsulation_mode),
        options="\n".join(f"    {line}" for line in options),
        ikelifetime=_lifetime("ikepolicy.lifetime", view.ike.lifetime_units,
                              view.ike.lifetime_value, ike_sa=True),
        salifetime=_lifetime("ipsecpolicy.lifetime", view.ipsec.lifetime_units,
                             view.ipsec.lifetime_value, ike_sa=False),
        auto="ondemand" if view.isthmus_initiates else "start",
        secret_line=f"{local_id} {remote_id} : PSK "
                    f"{_secret(view.psk)}")
    # an empty optional line leaves blanks inside the conn section: drop them
    lines = text.rstrip("\n").split("\n")
    return "\n".join(line for line in lines if line == "" or line.strip()) + "\n"


def _keyword(table: dict[str, str], field: str, value: str) -> str:
    return keyword(FORMAT, table, field, value,
                   missing="libreswan 4.x has no keyword for it (it has: {known})")


def _ike_encryption(view: PeerView) -> str:
    value = view.ike.encryption_algorithm
    if value in NOT_IN_IKE:
        raise Unsupported(FORMAT, "ikepolicy.encryption_algorithm", value,
                          "libreswan has no AES-CCM for IKE; use aes-N-gcm-16 or aes-N")
    if view.ike_version == 1 and value in ENCRYPTION and value not in IKEV1_PHASE1:
        raise Unsupported(FORMAT, "ikepolicy.encryption_algorithm", value,
                          "libreswan's IKEv1 has no AEAD ciphers; use ike_version v2")
    return _keyword(ENCRYPTION, "ikepolicy.encryption_algorithm", value)


def _ike_integrity(view: PeerView) -> str:
    value = view.ike.auth_algorithm
    if value in NOT_IN_IKE:
        raise Unsupported(FORMAT, "ikepolicy.auth_algorithm", value,
                          "libreswan has no AES-CMAC PRF; use sha256 or aes-xcbc")
    if view.ike_version == 1 and value in INTEGRITY and value not in IKEV1_PHASE1:
        raise Unsupported(FORMAT, "ikepolicy.auth_algorithm", value,
                          "libreswan's IKEv1 has no AES-XCBC PRF; use sha256 or IKEv2")
    return _keyword(INTEGRITY, "ikepolicy.auth_algorithm", value)


def _phase2(view: PeerView) -> str:
    return _keyword({"esp": "esp", "ah": "ah"}, "ipsecpolicy.transform_protocol",
                    view.transform_protocol)


def _phase2_proposal(view: PeerView) -> str:
    """``esp=`` (``aes128-sha2_256-modp2048``, AEAD ``aes_gcm_c128-null-...``) or ``ah=``."""
    policy = view.ipsec
    parts = []
    if view.transform_protocol == "esp":
        parts.append(_keyword(ENCRYPTION, "ipsecpolicy.encryption_algorithm",
                              policy.encryption_algorithm))
    if view.transform_protocol == "esp" and policy.encryption_algorithm in AEAD:
        parts.append("null")
    else:
        parts.append(_keyword(INTEGRITY, "ipsecpolicy.auth_algorithm", policy.auth_algorithm))
    if policy.pfs:
        parts.append(_keyword(DH_GROUPS, "ipsecpolicy.pfs", policy.pfs))
    return "-".join(parts)


def _lifetime(field: str, units: str, value: int, ike_sa: bool) -> str:
    """``ikelifetime``'s value, or the whole ``salifetime=`` / ``ipsec-max-bytes=`` line."""
    if units == "kilobytes" and not ike_sa:
        return f"ipsec-max-bytes={value}KiB"
    if units != "seconds":
        raise Unsupported(FORMAT, field, f"{value} {units}",
                          "libreswan limits IKE SAs by time only")
    if value > MAX_LIFETIME_S:
        raise Unsupported(FORMAT, field, f"{value} seconds",
                          f"libreswan's maximum is {MAX_LIFETIME_S} seconds (24 h)")
    return f"{value}s" if ike_sa else f"salifetime={value}s"


def _subnets(side: str, subnets: tuple[str, ...]) -> str:
    if len(subnets) == 1:
        return f"{side}subnet={subnets[0]}"
    return f"{side}subnets={{{' '.join(subnets)}}}"


def _value(field: str, text: str) -> str:
    """An id as ipsec.conf and ipsec.secrets take it: bare when plain, else quoted."""
    if _PLAIN.fullmatch(text):
        return text
    if '"' in text or not text.isprintable():
        raise Unsupported(FORMAT, field, text, "libreswan cannot quote an id holding a quote "
                          "or a control character")
    return f'"{text}"'


def _secret(psk: str | None) -> str:
    """The PSK in quotes, or ``0s`` base64 when it holds a quote or a control character."""
    if psk is None:
        return f'"{PSK_PLACEHOLDER}"'
    if all(c.isprintable() and c != '"' for c in psk):
        return f'"{psk}"'
    return "0s" + base64.b64encode(psk.encode()).decode()
