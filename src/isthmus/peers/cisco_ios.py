"""Cisco IOS XE: a route-based IKEv2 (FlexVPN-style) static VTI for the peer router.

``crypto ikev2 proposal/policy/keyring/profile``, ``crypto ipsec transform-set``
and ``profile``, an ``interface Tunnel`` in ``tunnel mode ipsec ipv4`` with
``tunnel protection``, and a static route per Isthmus subnet.

Decisions:

* **IKEv1 is refused** (``ikepolicy.ike_version``): the ISAKMP equivalent
  (``crypto isakmp policy`` and a crypto map) is a different configuration model
  on IOS, and Isthmus's IKEv2 path covers every IOS-capable algorithm set. Use
  ``ike_version v2`` for Cisco peers.
* **One subnet on each side**: a static VTI negotiates one IPsec SA, whose
  traffic selector is "any any" unless a multi-SA VTI ACL (IOS XE 16.12 and
  later, ``tunnel protection ipsec policy ipv4``) narrows it. Isthmus proposes
  its exact subnets, so the ACL is written; with one SA per tunnel, several
  subnet pairs are refused (``peer_cidrs`` / ``local_cidrs``).
* **Tunnel mode, ESP only**: the IOS XE VTI guide requires transform sets in
  tunnel mode; AH is not offered for VTIs here.
* **Interface names**: ``Tunnel100`` and ``ip unnumbered GigabitEthernet1`` are
  this module's choices (:data:`TUNNEL_INTERFACE`, :data:`UNNUMBERED_INTERFACE`);
  the header tells the operator to adapt them.
* **DPD**: IOS declares a peer dead after 5 unanswered retries ``retry`` seconds
  apart, so ``retry`` is the API timeout / 5, within IOS's 2 to 60 seconds. IOS
  has no DPD action: the VTI re-initiates by itself. ``hold`` (keep the tunnel
  for traffic) maps to ``on-demand`` probing, the others to ``periodic``.
* **Initiator**: a static VTI always initiates when it comes up; nothing to set.
"""

from __future__ import annotations

import re

from isthmus.peers import PeerView, Unsupported
from isthmus.peers._rendering import (
    LifetimeUnit, identity_kind, ike_seconds, in_range, ipsec_lifetime, ipv4_network,
    is_aead, keyword, object_name, plain_identities, require_ipv4, secret)

FORMAT = "cisco-ios"
DESCRIPTION = "Cisco IOS XE route-based IKEv2 static VTI (crypto ikev2, tunnel protection)"
FILENAME = "cisco-ios-{name}.txt"

IKEV2_ENCRYPTION: dict[str, str] = {
    "3des": "3des", "aes-128": "aes-cbc-128", "aes-192": "aes-cbc-192",
    "aes-256": "aes-cbc-256", "aes-128-gcm-16": "aes-gcm-128", "aes-256-gcm-16": "aes-gcm-256",
}
"""API ``ikepolicy.encryption_algorithm`` → ``crypto ikev2 proposal`` ``encryption``."""

IKEV2_INTEGRITY: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
"""API ``ikepolicy.auth_algorithm`` → ``integrity`` (CBC ciphers; IOS derives the PRF)."""

IKEV2_PRF: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
"""API ``ikepolicy.auth_algorithm`` → ``prf``, written instead of ``integrity`` with AES-GCM."""

DH_GROUPS: dict[str, str] = {
    f"group{n}": str(n) for n in (2, 5, 14, 15, 16, 19, 20, 21, 24)}
"""API ``ikepolicy.pfs`` → ``crypto ikev2 proposal`` ``group``."""

PFS_GROUPS: dict[str, str | None] = {
    "": None, **{f"group{n}": f"group{n}" for n in (2, 5, 14, 15, 16, 19, 20, 21, 24)}}
"""API ``ipsecpolicy.pfs`` → ``crypto ipsec profile`` ``set pfs`` (None: no PFS line)."""

ESP_ENCRYPTION: dict[str, str] = {
    "3des": "esp-3des", "aes-128": "esp-aes 128", "aes-192": "esp-aes 192",
    "aes-256": "esp-aes 256", "aes-128-gcm-16": "esp-gcm 128", "aes-256-gcm-16": "esp-gcm 256",
}
"""API ``ipsecpolicy.encryption_algorithm`` → transform-set cipher transform."""

ESP_INTEGRITY: dict[str, str] = {
    "sha1": "esp-sha-hmac", "sha256": "esp-sha256-hmac", "sha384": "esp-sha384-hmac",
    "sha512": "esp-sha512-hmac",
}
"""API ``ipsecpolicy.auth_algorithm`` → transform-set HMAC transform (none with AES-GCM)."""

TRANSFORM_PROTOCOLS: dict[str, str] = {"esp": "esp"}
"""API ``transform_protocol`` values a VTI protects with (ESP only)."""

ENCAPSULATION_MODES: dict[str, str] = {"tunnel": "tunnel"}
"""API ``encapsulation_mode`` → transform-set ``mode`` (VTIs need tunnel mode)."""

IKE_VERSIONS: dict[str, str] = {"v2": "ikev2"}
"""API ``ike_version`` values this format writes (see the module docstring for IKEv1)."""

DPD_MODES: dict[str, str | None] = {
    "hold": "on-demand", "clear": "periodic", "restart": "periodic",
    "restart-by-peer": "periodic", "disabled": None,
}
"""API ``dpd.action`` → ``crypto ikev2 profile`` ``dpd`` mode (None: no DPD)."""

IDENTITY_KINDS: dict[str, str] = {"address": "address", "email": "email", "fqdn": "fqdn"}
"""Kind of IKE identity → IKEv2 profile ``identity local`` / ``match identity remote`` keyword."""

TUNNEL_INTERFACE = "Tunnel100"
UNNUMBERED_INTERFACE = "GigabitEthernet1"
SA_LIFETIMES: dict[str, LifetimeUnit] = {
    "seconds": LifetimeUnit("seconds", 1, 120, 2592000),
    "kilobytes": LifetimeUnit("kilobytes", 1, 2560, 4294967295),
}
"""API ``ipsecpolicy.lifetime.units`` → ``set security-association lifetime`` unit."""

IKE_LIFETIME_S = (120, 86400)
DPD_INTERVAL_S = (10, 3600)
DPD_RETRY_S = (2, 60)
DPD_RETRIES = 5
_UNSAFE_PSK = re.compile(r"[\s?]")   # the IOS parser splits at blanks and answers '?' with help


def render(view: PeerView) -> str:
    """The configuration to paste in global configuration mode, ``!`` between blocks."""
    keyword(FORMAT, IKE_VERSIONS, "ikepolicy.ike_version", f"v{view.ike_version}",
            "this format writes IKEv2 only (see docs); use ike_version v2")
    keyword(FORMAT, TRANSFORM_PROTOCOLS, "ipsecpolicy.transform_protocol",
            view.transform_protocol, "a VTI is protected by ESP here; use esp")
    keyword(FORMAT, ENCAPSULATION_MODES, "ipsecpolicy.encapsulation_mode",
            view.encapsulation_mode, "IOS XE VTIs need transform sets in tunnel mode")
    require_ipv4(FORMAT, view)
    plain_identities(FORMAT, view)
    if len(view.local_subnets) != 1 or len(view.remote_subnets) != 1:
        field = "peer_cidrs" if len(view.local_subnets) != 1 else "local_cidrs"
        raise Unsupported(FORMAT, field, list(view.local_subnets if field == "peer_cidrs"
                                              else view.remote_subnets),
                          "a static VTI carries one IPsec SA: one subnet on each side")
    name = object_name(view)
    lines = [
        f"! Isthmus site connection {view.name or view.connection_id} ({view.connection_id}):",
        "! the Cisco IOS XE side (route-based IKEv2, static VTI). Paste in global",
        f"! configuration mode; adapt {TUNNEL_INTERFACE} and {UNNUMBERED_INTERFACE}"
        " if taken or named otherwise.",
        *_ike_proposal(view, name), "!",
        f"crypto ikev2 policy {name}",
        f" match address local {view.local_address}",
        f" proposal {name}", "!",
        f"crypto ikev2 keyring {name}",
        " peer isthmus",
        f"  address {view.remote_address}",
        f"  pre-shared-key {_psk(view)}", " !", "!",
        *_ike_profile(view, name), "!",
        *_transform_set(view, name), "!",
        *_ipsec_profile(view, name), "!",
    ]
    local = ipv4_network(FORMAT, "peer_cidrs", view.local_subnets[0])
    remote = ipv4_network(FORMAT, "local_cidrs", view.remote_subnets[0])
    lines += [
        f"ip access-list extended {name}",
        f" permit ip {local.network_address} {local.hostmask} "
        f"{remote.network_address} {remote.hostmask}", "!",
        f"interface {TUNNEL_INTERFACE}",
        f" description Isthmus site connection {view.connection_id}",
        f" ip unnumbered {UNNUMBERED_INTERFACE}",
        f" tunnel source {view.local_address}",
        " tunnel mode ipsec ipv4",
        f" tunnel destination {view.remote_address}",
        f" tunnel protection ipsec policy ipv4 {name}",
        f" tunnel protection ipsec profile {name}", "!",
        f"ip route {remote.network_address} {remote.netmask} {TUNNEL_INTERFACE}",
    ]
    return "\n".join(lines) + "\n"


def _ike_proposal(view: PeerView, name: str) -> list[str]:
    encryption = keyword(FORMAT, IKEV2_ENCRYPTION, "ikepolicy.encryption_algorithm",
                         view.ike.encryption_algorithm)
    if is_aead(view.ike.encryption_algorithm):  # AES-GCM: no integrity, an explicit PRF
        auth = " prf " + keyword(FORMAT, IKEV2_PRF, "ikepolicy.auth_algorithm",
                                 view.ike.auth_algorithm)
    else:
        auth = " integrity " + keyword(FORMAT, IKEV2_INTEGRITY, "ikepolicy.auth_algorithm",
                                       view.ike.auth_algorithm)
    group = keyword(FORMAT, DH_GROUPS, "ikepolicy.pfs", view.ike.pfs)
    return [f"crypto ikev2 proposal {name}", f" encryption {encryption}", auth,
            f" group {group}"]


def _ike_profile(view: PeerView, name: str) -> list[str]:
    remote_kind, remote_id = _identity(view.remote_id)
    local_kind, local_id = _identity(view.local_id)
    match = f"{remote_id} 255.255.255.255" if remote_kind == "address" else remote_id
    lines = [f"crypto ikev2 profile {name}",
             f" match identity remote {remote_kind} {match}",
             f" identity local {local_kind} {local_id}",
             " authentication remote pre-share",
             " authentication local pre-share",
             f" keyring local {name}",
             f" lifetime {ike_seconds(FORMAT, view, *IKE_LIFETIME_S)}"]
    mode = keyword(FORMAT, DPD_MODES, "dpd.action", view.dpd_action)
    if mode is not None:
        interval = in_range(FORMAT, "dpd.interval", view.dpd_interval, *DPD_INTERVAL_S, "seconds")
        retry = min(max(view.dpd_timeout // DPD_RETRIES, DPD_RETRY_S[0]), DPD_RETRY_S[1])
        lines.append(f" dpd {interval} {retry} {mode}")
    return lines


def _transform_set(view: PeerView, name: str) -> list[str]:
    transforms = [keyword(FORMAT, ESP_ENCRYPTION, "ipsecpolicy.encryption_algorithm",
                          view.ipsec.encryption_algorithm)]
    if not is_aead(view.ipsec.encryption_algorithm):
        transforms.append(keyword(FORMAT, ESP_INTEGRITY, "ipsecpolicy.auth_algorithm",
                                  view.ipsec.auth_algorithm))
    return [f"crypto ipsec transform-set {name} {' '.join(transforms)}",
            f" mode {ENCAPSULATION_MODES[view.encapsulation_mode]}"]


def _ipsec_profile(view: PeerView, name: str) -> list[str]:
    lines = [f"crypto ipsec profile {name}", f" set transform-set {name}"]
    pfs = keyword(FORMAT, PFS_GROUPS, "ipsecpolicy.pfs", view.ipsec.pfs)
    if pfs is not None:
        lines.append(f" set pfs {pfs}")
    units, lifetime = ipsec_lifetime(FORMAT, view, SA_LIFETIMES)
    lines += [f" set security-association lifetime {units} {lifetime}",
              f" set ikev2-profile {name}"]
    return lines


def _identity(identity: str) -> tuple[str, str]:
    kind, value = identity_kind(identity)
    return IDENTITY_KINDS[kind], value


def _psk(view: PeerView) -> str:
    return secret(FORMAT, view, _UNSAFE_PSK,
                  "IOS reads a pre-shared key up to the first blank and answers '?' with "
                  "help; use a key without blanks or '?'")
