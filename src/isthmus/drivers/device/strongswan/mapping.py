"""How one IPsec site connection becomes a strongSwan (5.9) VICI configuration.

Pure functions, no I/O: :func:`to_vici` builds the ``load-conn`` message body
of a site connection, :func:`shared_secret` its ``load-shared`` body, and
:func:`unsupported` says which policy combinations strongSwan cannot do, so
that the service driver refuses them at the API (a 400) instead of the device
finding out. Every keyword below is one strongSwan's proposal parser and VICI
``load-conn`` accept: ``tests/strongswan/test_mapping.py`` has strongSwan's own
``libstrongswan`` parse every proposal this module can make, and a throwaway
charon load every message.

Algorithms (``ikepolicy`` and ``ipsecpolicy``):

======================  ==================  =====================================
API value               strongSwan keyword  notes
======================  ==================  =====================================
``3des``                ``3des``
``aes-128/192/256``     ``aes128/192/256``  AES-CBC
``aes-N-ctr``           ``aesNctr``         not in IKEv1 phase 1
``aes-N-ccm-8/12/16``   ``aesNccm8/12/16``  AEAD; not in IKEv1 phase 1
``aes-N-gcm-8/12/16``   ``aesNgcm8/12/16``  AEAD; not in IKEv1 phase 1
``sha1``                ``sha1``            PRF ``prfsha1``
``sha256/384/512``      ``sha256/384/512``  PRF ``prfsha256/384/512``
``aes-xcbc``            ``aesxcbc``         PRF ``prfaesxcbc``; not IKEv1 phase 1
``aes-cmac``            ``aescmac``         PRF ``prfaescmac``; not in IKEv1
``group2/5``            ``modp1024/1536``
``group14..18``         ``modp2048/3072/4096/6144/8192``
``group19/20/21``       ``ecp256/384/521``
``group22/23/24``       ``modp1024s160/modp2048s224/modp2048s256``
``group25/26``          ``ecp192/ecp224``
``group27..30``         ``ecp224bp/ecp256bp/ecp384bp/ecp512bp``
``group31``             ``curve25519``
======================  ==================  =====================================

Proposals: IKE ``<enc>-<integ>-<dh>`` (strongSwan derives the PRF from the
integrity algorithm), or ``<aead>-<prf>-<dh>`` for AEAD, which has no separate
integrity algorithm but still needs a PRF; ESP ``<enc>-<integ>-<dh>`` or
``<aead>-<dh>`` (the policy's ``auth_algorithm`` is then unused); AH
``<integ>-<dh>`` (the policy's ``encryption_algorithm`` is unused). As in
Neutron, the IPsec policy's ``pfs`` group is in the ESP/AH proposal: CHILD_SAs
created or rekeyed later use a fresh DH exchange (IKEv2 derives the first
CHILD_SA's keys from the IKE_SA, so a PFS mismatch shows only at rekeying).

The rest of a connection:

=====================================  ==========================================
API                                    VICI ``load-conn``
=====================================  ==========================================
``ike_version`` v1 / v2                ``version`` 1 / 2
``phase1_negotiation_mode``            ``aggressive`` yes / no (IKEv1 only)
``external_ip`` / ``peer_address``     ``local_addrs`` / ``remote_addrs``
``local_id`` (empty: ``external_ip``)  ``local.id`` (``auth psk``)
``peer_id``                            ``remote.id`` (``auth psk``)
IKE ``lifetime`` L seconds             IKEv2 ``rekey_time`` 0.9 L, ``reauth_time`` 0;
                                       IKEv1 ``reauth_time`` 0.9 L, ``rekey_time`` 0;
                                       ``over_time`` 0.1 L
IPsec ``lifetime`` L seconds           ``rekey_time`` 0.9 L, ``life_time`` L
IPsec ``lifetime`` L kilobytes         ``rekey_bytes`` 0.9 L KiB, ``life_bytes`` L KiB
``dpd.interval`` / ``dpd.timeout``     ``dpd_delay`` / ``dpd_timeout``
``dpd.action`` hold / clear / restart  child ``dpd_action`` trap / clear / restart
``dpd.action`` restart-by-peer         child ``dpd_action`` clear
``dpd.action`` disabled                ``dpd_delay`` 0 (no DPD), ``dpd_action`` clear
``initiator`` bi-directional           child ``start_action`` ``trap|start``,
                                       ``close_action`` start
``initiator`` response-only            child ``start_action`` / ``close_action`` none
``encapsulation_mode``                 child ``mode`` tunnel / transport
``transform_protocol`` esp / ah        child ``esp_proposals`` / ``ah_proposals``
``local_cidrs`` / ``peer_cidrs``       child ``local_ts`` / ``remote_ts``
``psk``                                ``load-shared`` (:func:`shared_secret`)
=====================================  ==========================================

Decisions:

* **Lifetimes** are hard limits, as Neutron's ``ikelifetime``/``lifetime`` were:
  an SA never lives longer than the API lifetime L. It is renewed at 0.9 L
  minus a random part of up to 0.1 L (strongSwan's own 10 % margin, which also
  keeps both peers from rekeying at once). IKEv2 rekeys its IKE_SA in place;
  periodic reauthentication (``reauth_time``) is off: a rekey needs no new
  authentication and never overlaps two IKE_SAs. (Each charon does
  reauthentication make-before-break, ``charon.make_before_break``: the driver
  asks for one when a connection's PSK changes, see :mod:`.rotation`; without
  that option strongSwan reauthenticates break-before-make, a short outage.)
  IKEv1 cannot rekey an ISAKMP SA, so it
  reauthenticates instead; its proposed lifetime is ``reauth_time + over_time``
  = L. Kilobytes (unreachable through the API, but in the data model) limit
  CHILD_SAs only; strongSwan has no volume limit for IKE_SAs.
* **DPD**: ``hold`` keeps a trap policy so that traffic re-establishes the
  tunnel; ``restart-by-peer`` (an Openswan value Neutron passes to strongSwan
  as is) means "drop the SA and let the peer bring it back": ``clear``.
  ``dpd_timeout`` only has an effect with IKEv1; with IKEv2 a dead peer is
  declared when charon's retransmissions of the DPD message run out
  (``charon.retransmit_*`` in strongswan.conf, about 165 s by default).
* **Initiator**: ``bi-directional`` installs trap policies and initiates at
  once (``trap|start``, what Neutron's ``auto=route`` plus ``ipsec up`` did),
  so traffic brings the tunnel back whatever closed it, and re-creates its
  CHILD_SAs at once when the peer deletes them or their IKE_SA
  (``close_action start``). The latter matters with kernel-libipsec, which
  raises no acquires (a trap policy there holds traffic but never
  re-initiates), and with IKEv1, whose two peers reauthenticate on their own
  timers: when both do at once, the loser's IKE_SA is deleted with the
  adopted CHILD_SA (measured with 60 s lifetimes: 35 of 130 pings lost with
  ``close_action none``, none with ``start``). ``response-only`` only answers
  and never re-creates anything (``start_action`` and ``close_action none``).
  The device driver loads ``trap`` and initiates the connection itself
  (:func:`.rotation.for_charon`): charon closes the SAs of a connection loaded
  again or unloaded with ``start`` in its ``start_action``, which would make every
  change break-before-make.
* **Several CIDRs**: IKEv2 negotiates all of them in one CHILD_SA. IKEv1 only
  negotiates the first selector pair of a CHILD_SA, so an IKEv1 connection gets
  one child per (local, peer) CIDR pair: :func:`child_name` with ``pair`` 0, 1, ...
  (``isthmus-<id>``, ``isthmus-<id>-pair2``, ...).
* **Aggressive mode** (IKEv1, and Isthmus connections always use a PSK): charon
  initiates it, but answers it only with the daemon-wide strongswan.conf option
  ``charon.i_dont_care_about_security_and_use_aggressive_mode_psk = yes``; without
  it the responder logs "Aggressive Mode PSK disabled for security reasons".
* **Crypto plugins** the device driver must load: ``aes sha1 sha2 hmac gmp gcm
  openssl`` cover everything but ``aes-xcbc`` (plugin ``xcbc``) and ``aes-cmac``
  (plugin ``cmac``, Debian package ``libstrongswan-extra-plugins``); a proposal
  whose algorithm no plugin implements loads fine and then fails to negotiate.
* **Encapsulation**: ``encap`` is ``no`` (UDP encapsulation only when NAT is
  detected); a device driver that uses kernel-libipsec, which sends ESP in UDP
  only, sets ``encap`` to ``yes`` itself. ``mobike`` is ``no``: site-to-site
  peers do not move, and MOBIKE's port floating upsets some peers.
* **Transport mode** protects traffic between the two IKE addresses only. With
  subnet CIDRs strongSwan (5.9.8, UDP-encapsulated) answered TS_UNACCEPTABLE
  in our test; strongSwan's docs say it falls back to tunnel mode when transport
  is not possible. Nothing here rewrites the selectors.
* **MTU**: strongSwan has no per-connection MTU (only global kernel-netlink /
  kernel-libipsec settings), so a connection's ``mtu`` is not mapped; clamping
  it is the device driver's job if it wants to.
* **admin_state_up** false: the device driver does not load the connection at
  all; nothing here looks at it.

The dicts returned here hold the PSK: never log them.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Mapping

__all__ = ["AEAD_ENCRYPTION", "CLOSE_ACTIONS", "DH_GROUPS", "DPD_ACTIONS", "ENCRYPTION",
           "INTEGRITY", "PRF", "START_ACTIONS", "MappingError", "ah_proposal", "child_lifetime",
           "child_name", "connection_name", "esp_proposal", "ike_proposal", "renewal",
           "shared_secret", "to_vici", "unsupported"]

ENCRYPTION: dict[str, str] = {
    "3des": "3des",
    **{f"aes-{bits}": f"aes{bits}" for bits in (128, 192, 256)},
    **{f"aes-{bits}-ctr": f"aes{bits}ctr" for bits in (128, 192, 256)},
    **{f"aes-{bits}-{mode}-{icv}": f"aes{bits}{mode}{icv}"
       for bits in (128, 192, 256) for mode in ("ccm", "gcm") for icv in (8, 12, 16)},
}
"""API ``encryption_algorithm`` → strongSwan encryption (or AEAD) keyword."""

AEAD_ENCRYPTION = frozenset(name for name in ENCRYPTION if "-ccm-" in name or "-gcm-" in name)
"""Combined-mode algorithms: no separate integrity algorithm in their proposals."""

INTEGRITY: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
    "aes-xcbc": "aesxcbc", "aes-cmac": "aescmac",
}
"""API ``auth_algorithm`` → strongSwan integrity keyword."""

PRF: dict[str, str] = {name: "prf" + keyword for name, keyword in INTEGRITY.items()}
"""API ``auth_algorithm`` → strongSwan PRF keyword (needed by AEAD IKE proposals)."""

DH_GROUPS: dict[str, str] = {
    "group2": "modp1024", "group5": "modp1536", "group14": "modp2048",
    "group15": "modp3072", "group16": "modp4096", "group17": "modp6144",
    "group18": "modp8192", "group19": "ecp256", "group20": "ecp384", "group21": "ecp521",
    "group22": "modp1024s160", "group23": "modp2048s224", "group24": "modp2048s256",
    "group25": "ecp192", "group26": "ecp224", "group27": "ecp224bp", "group28": "ecp256bp",
    "group29": "ecp384bp", "group30": "ecp512bp", "group31": "curve25519",
}
"""API ``pfs`` → strongSwan key exchange (DH group) keyword."""

DPD_ACTIONS: dict[str, str] = {
    "hold": "trap", "clear": "clear", "restart": "restart", "restart-by-peer": "clear",
    "disabled": "clear",
}
"""API ``dpd.action`` → CHILD_SA ``dpd_action`` (``disabled`` also turns DPD off)."""

START_ACTIONS: dict[str, str] = {"bi-directional": "trap|start", "response-only": "none"}
"""API ``initiator`` → CHILD_SA ``start_action``."""

CLOSE_ACTIONS: dict[str, str] = {"bi-directional": "start", "response-only": "none"}
"""API ``initiator`` → CHILD_SA ``close_action`` (what to do when the peer closes it)."""

_IKE_VERSIONS = {"v1": "1", "v2": "2"}
_PHASE1_MODES = {"main": "no", "aggressive": "yes"}
_MODES = {"tunnel": "tunnel", "transport": "transport"}
_PROTOCOLS = {"esp": "esp_proposals", "ah": "ah_proposals"}
# IKEv1 phase 1 (ISAKMP) only has CBC ciphers and HMAC hashes in strongSwan; IKEv1
# phase 2 has no AES-CMAC (strongSwan's proposal_substructure.c IKEv1 maps).
_IKEV1_PHASE1_ENCRYPTION = frozenset({"3des", "aes-128", "aes-192", "aes-256"})
_IKEV1_PHASE1_INTEGRITY = frozenset({"sha1", "sha256", "sha384", "sha512"})
_IKEV1_PHASE2_INTEGRITY = frozenset(INTEGRITY) - {"aes-cmac"}
CONNECTION_PREFIX = "isthmus-"


class MappingError(ValueError):
    """An API value with no strongSwan equivalent; :func:`unsupported` explains it at the API."""


def connection_name(conn_id: str) -> str:
    """The VICI connection (IKE config) name of a site connection: stable across agent restarts."""
    return CONNECTION_PREFIX + conn_id


def child_name(conn_id: str, pair: int = 0) -> str:
    """The CHILD_SA config name; ``pair`` > 0 only for an IKEv1 connection's extra CIDR pairs."""
    name = connection_name(conn_id)
    # not "-2": list-sas already names CHILD_SAs "<child name>-<unique id>"
    return name if pair == 0 else f"{name}-pair{pair + 1}"


def ike_proposal(ikepolicy: Mapping[str, Any]) -> str:
    """The IKE proposal, e.g. ``aes128-sha256-modp2048`` or ``aes128gcm16-prfsha256-modp2048``."""
    encryption = _keyword(ENCRYPTION, ikepolicy, "encryption_algorithm")
    auth = PRF if _is_aead(ikepolicy) else INTEGRITY  # AEAD has no integrity, needs a PRF
    return "-".join((encryption, _keyword(auth, ikepolicy, "auth_algorithm"),
                     _keyword(DH_GROUPS, ikepolicy, "pfs")))


def esp_proposal(ipsecpolicy: Mapping[str, Any]) -> str:
    """The ESP proposal, e.g. ``aes128-sha256-modp2048`` or ``aes128gcm16-modp2048`` (AEAD)."""
    parts = [_keyword(ENCRYPTION, ipsecpolicy, "encryption_algorithm")]
    if not _is_aead(ipsecpolicy):
        parts.append(_keyword(INTEGRITY, ipsecpolicy, "auth_algorithm"))
    parts.append(_keyword(DH_GROUPS, ipsecpolicy, "pfs"))
    return "-".join(parts)


def ah_proposal(ipsecpolicy: Mapping[str, Any]) -> str:
    """The AH proposal, e.g. ``sha256-modp2048``; AH has no encryption, so that field is unused."""
    return "-".join((_keyword(INTEGRITY, ipsecpolicy, "auth_algorithm"),
                     _keyword(DH_GROUPS, ipsecpolicy, "pfs")))


def to_vici(service: Mapping[str, Any], conn: Mapping[str, Any]) -> dict[str, Any]:
    """The ``load-conn`` body ``{connection_name: {...}}`` of one site connection.

    ``conn`` is a connection of the agent's desired state (docs/rpc.md); every value
    is a string or a list of strings, as VICI takes them. ``service`` is its VPN
    service (nothing in it is needed today). Raises :class:`MappingError` for a
    value strongSwan has no keyword for (e.g. ``ah-esp``), which the service
    driver refuses at the API.
    """
    ike, ipsec, dpd = conn["ikepolicy"], conn["ipsecpolicy"], conn["dpd"]
    version = _keyword(_IKE_VERSIONS, ike, "ike_version")
    ike_renew_s, ike_margin_s = renewal(_seconds(ike, "IKE policy"))
    dpd_action = _keyword(DPD_ACTIONS, dpd, "action")
    dpd_on = dpd["action"] != "disabled"
    local_id = conn.get("local_id") or conn["external_ip"]
    body: dict[str, Any] = {
        "version": version,
        "local_addrs": [conn["external_ip"]],
        "remote_addrs": [conn["peer_address"]],
        "proposals": [ike_proposal(ike)],
        "aggressive": _keyword(_PHASE1_MODES, ike, "phase1_negotiation_mode"),
        "encap": "no",
        "mobike": "no",
        # IKEv2 rekeys in place; IKEv1 cannot, it reauthenticates (see module docstring).
        "rekey_time": _duration(ike_renew_s if version == "2" else 0),
        "reauth_time": _duration(ike_renew_s if version == "1" else 0),
        "over_time": _duration(ike_margin_s),
        "dpd_delay": _duration(dpd["interval"] if dpd_on else 0),
        "dpd_timeout": _duration(dpd["timeout"] if dpd_on else 0),
        "local": {"auth": "psk", "id": local_id},
        "remote": {"auth": "psk", "id": conn["peer_id"]},
        "children": {},
    }
    child = {
        "mode": _keyword(_MODES, ipsec, "encapsulation_mode"),
        _keyword(_PROTOCOLS, ipsec, "transform_protocol"): [
            esp_proposal(ipsec) if ipsec["transform_protocol"] == "esp" else ah_proposal(ipsec)],
        **child_lifetime(ipsec),
        "dpd_action": dpd_action,
        "start_action": _keyword(START_ACTIONS, conn, "initiator"),
        "close_action": _keyword(CLOSE_ACTIONS, conn, "initiator"),
    }
    local_cidrs, peer_cidrs = list(conn["local_cidrs"]), list(conn["peer_cidrs"])
    if version == "2":
        pairs = [(local_cidrs, peer_cidrs)]
    else:  # IKEv1 negotiates one selector pair per CHILD_SA
        pairs = [([local], [peer]) for local, peer in product(local_cidrs, peer_cidrs)] \
            or [(local_cidrs, peer_cidrs)]
    for index, (local_ts, remote_ts) in enumerate(pairs):
        body["children"][child_name(conn["id"], index)] = {
            "local_ts": local_ts, "remote_ts": remote_ts, **child}
    return {connection_name(conn["id"]): body}


def shared_secret(service: Mapping[str, Any], conn: Mapping[str, Any]) -> dict[str, Any]:
    """The ``load-shared`` body of a connection's PSK, owned by its local and peer IDs.

    Named like its connection (:func:`connection_name`): one secret per connection,
    unloaded by that name when the connection is.
    """
    return {"id": connection_name(conn["id"]), "type": "IKE", "data": conn["psk"],
            "owners": [conn.get("local_id") or conn["external_ip"], conn["peer_id"]]}


def unsupported(ikepolicy: Mapping[str, Any], ipsecpolicy: Mapping[str, Any], *,
                libipsec: bool) -> list[str]:
    """Why strongSwan 5.9 cannot do this pair of policies; empty when it can.

    Each reason names the policy, the attribute and the value. ``libipsec``: the
    agents run kernel-libipsec (userspace ESP) instead of the kernel's XFRM.
    """
    reasons: list[str] = []

    def refuse(policy: str, attribute: str, value: Any, why: str) -> None:
        reasons.append(f"{policy} {attribute} '{value}' is not supported: {why}")

    ike_tables = (("encryption_algorithm", ENCRYPTION), ("auth_algorithm", INTEGRITY),
                  ("pfs", DH_GROUPS), ("ike_version", _IKE_VERSIONS),
                  ("phase1_negotiation_mode", _PHASE1_MODES))
    ipsec_tables = (("encryption_algorithm", ENCRYPTION), ("auth_algorithm", INTEGRITY),
                    ("pfs", DH_GROUPS), ("encapsulation_mode", _MODES))
    for policy, values, tables in (("IKE policy", ikepolicy, ike_tables),
                                   ("IPsec policy", ipsecpolicy, ipsec_tables)):
        for attribute, table in tables:
            if not isinstance(values.get(attribute), str) or values[attribute] not in table:
                refuse(policy, attribute, values.get(attribute), "strongSwan has no keyword for it")
        units = (values.get("lifetime") or {}).get("units", "seconds")
        if units not in ("seconds", "kilobytes") or (policy == "IKE policy" and units != "seconds"):
            refuse(policy, "lifetime units", units,
                   "strongSwan limits IKE SAs by time only" if units == "kilobytes"
                   else "use seconds")

    protocol = ipsecpolicy.get("transform_protocol")
    if protocol == "ah-esp":
        refuse("IPsec policy", "transform_protocol", protocol,
               "strongSwan negotiates ESP or AH for a CHILD_SA, never an AH+ESP bundle; "
               "use esp")
    elif protocol not in _PROTOCOLS:
        refuse("IPsec policy", "transform_protocol", protocol, "strongSwan has no keyword for it")

    if ikepolicy.get("ike_version") == "v2" and \
            ikepolicy.get("phase1_negotiation_mode") == "aggressive":
        refuse("IKE policy", "phase1_negotiation_mode", "aggressive",
               "aggressive mode exists in IKEv1 only; use main with ike_version v2")
    if ikepolicy.get("ike_version") == "v1":
        encryption, auth = ikepolicy.get("encryption_algorithm"), ikepolicy.get("auth_algorithm")
        if encryption in ENCRYPTION and encryption not in _IKEV1_PHASE1_ENCRYPTION:
            refuse("IKE policy", "encryption_algorithm", encryption,
                   "IKEv1 phase 1 has CBC ciphers only (3des, aes-128, aes-192, aes-256); "
                   "use one of them or ike_version v2")
        if auth in INTEGRITY and auth not in _IKEV1_PHASE1_INTEGRITY:
            refuse("IKE policy", "auth_algorithm", auth,
                   "IKEv1 phase 1 hashes are sha1, sha256, sha384 and sha512; "
                   "use one of them or ike_version v2")
        ipsec_auth = ipsecpolicy.get("auth_algorithm")
        auth_used = protocol == "ah" or ipsecpolicy.get("encryption_algorithm") \
            not in AEAD_ENCRYPTION
        if auth_used and ipsec_auth in INTEGRITY and ipsec_auth not in _IKEV1_PHASE2_INTEGRITY:
            refuse("IPsec policy", "auth_algorithm", ipsec_auth,
                   "IKEv1 has no transform for AES-CMAC; use another one or ike_version v2")

    if libipsec:
        why = "kernel-libipsec (userspace IPsec) implements ESP in tunnel mode only"
        if protocol == "ah":
            refuse("IPsec policy", "transform_protocol", protocol, why)
        if ipsecpolicy.get("encapsulation_mode") == "transport":
            refuse("IPsec policy", "encapsulation_mode", "transport", why)
    return reasons


# -- helpers --------------------------------------------------------------------------
def _keyword(table: Mapping[str, str], values: Mapping[str, Any], attribute: str) -> str:
    value = values.get(attribute)
    try:
        return table[value]
    except (KeyError, TypeError):
        raise MappingError(f"{attribute} '{value}' has no strongSwan equivalent "
                           f"(known: {', '.join(table)})") from None


def _is_aead(policy: Mapping[str, Any]) -> bool:
    return policy.get("encryption_algorithm") in AEAD_ENCRYPTION


def _seconds(policy: Mapping[str, Any], label: str) -> int:
    lifetime = policy.get("lifetime") or {"units": "seconds", "value": 3600}
    if lifetime.get("units", "seconds") != "seconds":
        raise MappingError(f"{label} lifetime units '{lifetime['units']}': "
                           "strongSwan limits IKE SAs by time only")
    return int(lifetime["value"])


def renewal(lifetime: int) -> tuple[int, int]:
    """(renew after, hard margin) for a hard lifetime: renew at 90 %, expire at 100 %."""
    margin = max(lifetime // 10, 1)
    return lifetime - margin, margin


def child_lifetime(ipsecpolicy: Mapping[str, Any]) -> dict[str, str]:
    """A CHILD_SA's ``rekey_*`` and ``life_*`` for the IPsec policy's hard lifetime."""
    lifetime = ipsecpolicy.get("lifetime") or {"units": "seconds", "value": 3600}
    units, value = lifetime.get("units", "seconds"), int(lifetime["value"])
    if units == "kilobytes":
        renew, margin = renewal(value * 1024)
        return {"rekey_bytes": str(renew), "life_bytes": str(renew + margin)}
    if units != "seconds":
        raise MappingError(f"IPsec policy lifetime units '{units}' has no strongSwan equivalent")
    renew, margin = renewal(value)
    return {"rekey_time": _duration(renew), "life_time": _duration(renew + margin)}


def _duration(seconds: int) -> str:
    return f"{int(seconds)}s"
