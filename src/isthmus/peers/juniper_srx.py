"""Junos SRX: a route-based IPsec VPN bound to ``st0.100``, as ``set security ...`` commands.

``security ike proposal/policy/gateway``, ``security ipsec proposal/policy/vpn``
with ``bind-interface st0.100`` and one ``traffic-selector`` per (peer subnet,
Isthmus subnet) pair, the ``st0`` unit, a security zone for it and a static
route per Isthmus subnet. Junos negotiates one SA per traffic selector and
requires the peer's selectors to match exactly: that is what Isthmus's IKEv1
side does (one CHILD_SA per pair), but its IKEv2 side proposes all subnets in
one CHILD_SA, so IKEv2 with several subnet pairs is refused.

Decisions:

* **AES-GCM in IKE** is IKEv2-only on Junos, takes no ``authentication-algorithm``
  and has its PRF built in (``aes-256-gcm`` is tied to PRF-384, says the
  ``prf-algorithm`` reference): the API's ``auth_algorithm``, which Isthmus uses
  as the PRF of an AEAD IKE proposal, must be that PRF (:data:`GCM_IKE_PRF`).
* **Tunnel mode only**: a route-based VPN tunnels; ``transport`` is refused.
* **DPD**: Junos sends probes ``interval`` seconds apart (10 to 60) and declares
  the peer dead after ``threshold`` misses (1 to 5): threshold = timeout /
  interval, rounded up. Junos has no DPD action; ``hold`` (traffic brings the
  tunnel back) maps to ``optimized`` probing, the others to
  ``probe-idle-tunnel``. ``disabled``: no DPD statements.
* **Initiator**: when Isthmus is ``response-only`` the SRX must bring the tunnel
  up (``establish-tunnels immediately``), otherwise it waits for traffic or for
  Isthmus (``on-traffic``).
* **Names**: the external interface ``ge-0/0/0.0``, unit ``st0.100`` and zone
  ``vpn`` are this module's choices (:data:`EXTERNAL_INTERFACE`,
  :data:`TUNNEL_INTERFACE`, :data:`ZONE`); the header says to adapt them, and to
  allow IKE on the external zone and traffic between the zones.
"""

from __future__ import annotations

import re

from isthmus.peers import PeerView, Unsupported
from isthmus.peers._rendering import (
    LifetimeUnit, dpd_retries, identity_kind, ike_seconds, in_range, ipsec_lifetime,
    is_aead, keyword, object_name, plain_identities, require_ipv4, secret, subnet_pairs)

FORMAT = "juniper-srx"
DESCRIPTION = "Junos SRX route-based IPsec VPN on st0 ('set security ike/ipsec' commands)"
FILENAME = "juniper-srx-{name}.txt"

IKE_ENCRYPTION: dict[str, str] = {
    "3des": "3des-cbc", "aes-128": "aes-128-cbc", "aes-192": "aes-192-cbc",
    "aes-256": "aes-256-cbc", "aes-128-gcm-16": "aes-128-gcm", "aes-256-gcm-16": "aes-256-gcm",
}
"""API ``ikepolicy.encryption_algorithm`` → ``security ike proposal`` ``encryption-algorithm``."""

IKE_AUTHENTICATION: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512"}
"""API ``ikepolicy.auth_algorithm`` → ``security ike proposal`` ``authentication-algorithm``."""

GCM_IKE_PRF: dict[str, str] = {"aes-128-gcm-16": "sha256", "aes-256-gcm-16": "sha384"}
"""AES-GCM IKE cipher → the API ``auth_algorithm`` naming the PRF Junos ties to it."""

DH_GROUPS: dict[str, str] = {
    f"group{n}": f"group{n}" for n in (2, 5, 14, 15, 16, 19, 20, 21, 24)}
"""API ``pfs`` → ``dh-group`` (IKE proposal) and ``perfect-forward-secrecy keys`` (IPsec policy)."""

IPSEC_ENCRYPTION: dict[str, str] = {
    "3des": "3des-cbc", "aes-128": "aes-128-cbc", "aes-192": "aes-192-cbc",
    "aes-256": "aes-256-cbc", "aes-128-gcm-16": "aes-128-gcm", "aes-192-gcm-16": "aes-192-gcm",
    "aes-256-gcm-16": "aes-256-gcm",
}
"""API ``ipsecpolicy.encryption_algorithm`` → IPsec proposal ``encryption-algorithm``."""

IPSEC_AUTHENTICATION: dict[str, str] = {"sha1": "hmac-sha1-96", "sha256": "hmac-sha-256-128"}
"""API ``ipsecpolicy.auth_algorithm`` → ``security ipsec proposal`` ``authentication-algorithm``.

Only the HMACs the Junos references list for an IPsec proposal; SHA-384 and
SHA-512 ESP HMACs are refused rather than guessed.
"""

PROTOCOLS: dict[str, str] = {"esp": "esp", "ah": "ah"}
"""API ``transform_protocol`` → ``security ipsec proposal`` ``protocol``."""

IKE_VERSIONS: dict[str, str] = {"v1": "v1-only", "v2": "v2-only"}
"""API ``ike_version`` → ``security ike gateway`` ``version``."""

PHASE1_MODES: dict[str, str] = {"main": "main", "aggressive": "aggressive"}
"""API ``phase1_negotiation_mode`` → ``security ike policy`` ``mode`` (IKEv1 only)."""

ENCAPSULATION_MODES: dict[str, str] = {"tunnel": "tunnel"}
"""API ``encapsulation_mode`` values a route-based VPN can carry."""

DPD_MODES: dict[str, str | None] = {
    "hold": "optimized", "clear": "probe-idle-tunnel", "restart": "probe-idle-tunnel",
    "restart-by-peer": "probe-idle-tunnel", "disabled": None,
}
"""API ``dpd.action`` → ``dead-peer-detection`` mode (None: no DPD)."""

ESTABLISH_TUNNELS: dict[bool, str] = {True: "on-traffic", False: "immediately"}
"""Does Isthmus initiate? → ``security ipsec vpn`` ``establish-tunnels``."""

IDENTITY_KINDS: dict[str, str] = {
    "address": "inet", "email": "user-at-hostname", "fqdn": "hostname"}
"""Kind of IKE identity → ``local-identity`` / ``remote-identity`` keyword."""

EXTERNAL_INTERFACE = "ge-0/0/0.0"
TUNNEL_INTERFACE = "st0.100"
ZONE = "vpn"
IPSEC_LIFETIMES: dict[str, LifetimeUnit] = {
    "seconds": LifetimeUnit("lifetime-seconds", 1, 180, 86400),
    "kilobytes": LifetimeUnit("lifetime-kilobytes", 1, 64, 4294967294),
}
"""API ``ipsecpolicy.lifetime.units`` → ``security ipsec proposal`` lifetime statement."""

LIFETIME_S = (180, 86400)
DPD_INTERVAL_S = (10, 60)
DPD_THRESHOLD = (1, 5)
_UNQUOTABLE = re.compile(r'["\\]')   # a Junos quoted string holds neither


def render(view: PeerView) -> str:
    """``set`` commands for configuration mode, with a comment header naming the connection."""
    require_ipv4(FORMAT, view)
    plain_identities(FORMAT, view)
    keyword(FORMAT, ENCAPSULATION_MODES, "ipsecpolicy.encapsulation_mode",
            view.encapsulation_mode, "a route-based VPN (st0) tunnels; use tunnel")
    name = object_name(view)
    unit = TUNNEL_INTERFACE.split(".")[1]
    lines = [
        f"# Isthmus site connection {view.name or view.connection_id} ({view.connection_id}):",
        "# the Junos SRX side (route-based, st0). Enter in configuration mode, then 'commit'.",
        f"# Adapt {EXTERNAL_INTERFACE} (the interface holding {view.local_address}),"
        f" {TUNNEL_INTERFACE} and zone '{ZONE}';",
        "# allow IKE on the external zone (host-inbound-traffic system-services ike)",
        f"# and add security policies between your LAN zone and '{ZONE}'.",
        *_ike(view, name), *_ipsec(view, name),
        f"set interfaces st0 unit {unit} family inet",
        f"set security zones security-zone {ZONE} interfaces {TUNNEL_INTERFACE}",
        *[f"set routing-options static route {subnet} next-hop {TUNNEL_INTERFACE}"
          for subnet in view.remote_subnets],
    ]
    return "\n".join(lines) + "\n"


def _ike(view: PeerView, name: str) -> list[str]:
    proposal = f"set security ike proposal {name}"
    encryption = keyword(FORMAT, IKE_ENCRYPTION, "ikepolicy.encryption_algorithm",
                         view.ike.encryption_algorithm)
    lines = [f"{proposal} authentication-method pre-shared-keys",
             f"{proposal} dh-group " + keyword(FORMAT, DH_GROUPS, "ikepolicy.pfs", view.ike.pfs)]
    if is_aead(view.ike.encryption_algorithm):
        _check_gcm_ike(view)
    else:
        lines.append(f"{proposal} authentication-algorithm " + keyword(
            FORMAT, IKE_AUTHENTICATION, "ikepolicy.auth_algorithm", view.ike.auth_algorithm))
    lines += [f"{proposal} encryption-algorithm {encryption}",
              f"{proposal} lifetime-seconds {ike_seconds(FORMAT, view, *LIFETIME_S)}"]
    policy = f"set security ike policy {name}"
    if view.ike_version == 1:
        lines.append(f"{policy} mode " + keyword(
            FORMAT, PHASE1_MODES, "ikepolicy.phase1_negotiation_mode",
            view.phase1_negotiation_mode))
    lines += [f"{policy} proposals {name}", f"{policy} pre-shared-key ascii-text {_psk(view)}"]
    gateway = f"set security ike gateway {name}"
    lines += [
        f"{gateway} ike-policy {name}",
        f"{gateway} address {view.remote_address}",
        f"{gateway} external-interface {EXTERNAL_INTERFACE}",
        f"{gateway} local-address {view.local_address}",
        f"{gateway} local-identity {_identity(view.local_id)}",
        f"{gateway} remote-identity {_identity(view.remote_id)}",
        f"{gateway} version " + keyword(FORMAT, IKE_VERSIONS, "ikepolicy.ike_version",
                                        f"v{view.ike_version}"),
    ]
    mode = keyword(FORMAT, DPD_MODES, "dpd.action", view.dpd_action)
    if mode is not None:
        interval = in_range(FORMAT, "dpd.interval", view.dpd_interval, *DPD_INTERVAL_S, "seconds")
        threshold = in_range(FORMAT, "dpd.timeout", dpd_retries(interval, view.dpd_timeout),
                             *DPD_THRESHOLD, "missed probes (timeout / interval)")
        lines += [f"{gateway} dead-peer-detection {mode}",
                  f"{gateway} dead-peer-detection interval {interval}",
                  f"{gateway} dead-peer-detection threshold {threshold}"]
    return lines


def _check_gcm_ike(view: PeerView) -> None:
    if view.ike_version == 1:
        raise Unsupported(FORMAT, "ikepolicy.encryption_algorithm", view.ike.encryption_algorithm,
                          "Junos offers AES-GCM in IKE with IKEv2 only; use ike_version v2")
    prf = GCM_IKE_PRF[view.ike.encryption_algorithm]
    if view.ike.auth_algorithm != prf:
        raise Unsupported(FORMAT, "ikepolicy.auth_algorithm", view.ike.auth_algorithm,
                          f"Junos ties {view.ike.encryption_algorithm} to the PRF {prf}; "
                          f"set auth_algorithm {prf}")


def _ipsec(view: PeerView, name: str) -> list[str]:
    proposal = f"set security ipsec proposal {name}"
    protocol = keyword(FORMAT, PROTOCOLS, "ipsecpolicy.transform_protocol",
                       view.transform_protocol)
    lines = [f"{proposal} protocol {protocol}"]
    aead = protocol == "esp" and is_aead(view.ipsec.encryption_algorithm)
    if not aead:  # AES-GCM authenticates itself
        lines.append(f"{proposal} authentication-algorithm " + keyword(
            FORMAT, IPSEC_AUTHENTICATION, "ipsecpolicy.auth_algorithm",
            view.ipsec.auth_algorithm, "the Junos IPsec proposal HMACs are hmac-sha1-96 and "
            "hmac-sha-256-128; use sha1 or sha256"))
    if protocol == "esp":  # AH does not encrypt
        lines.append(f"{proposal} encryption-algorithm " + keyword(
            FORMAT, IPSEC_ENCRYPTION, "ipsecpolicy.encryption_algorithm",
            view.ipsec.encryption_algorithm))
    lifetime_keyword, lifetime = ipsec_lifetime(FORMAT, view, IPSEC_LIFETIMES)
    lines.append(f"{proposal} {lifetime_keyword} {lifetime}")
    policy = f"set security ipsec policy {name}"
    if view.ipsec.pfs:
        lines.append(f"{policy} perfect-forward-secrecy keys " + keyword(
            FORMAT, DH_GROUPS, "ipsecpolicy.pfs", view.ipsec.pfs))
    lines.append(f"{policy} proposals {name}")
    vpn = f"set security ipsec vpn {name}"
    lines += [f"{vpn} bind-interface {TUNNEL_INTERFACE}",
              f"{vpn} ike gateway {name}",
              f"{vpn} ike ipsec-policy {name}"]
    pairs = subnet_pairs(view)
    if view.ike_version == 2 and len(pairs) > 1:
        field = "peer_cidrs" if len(view.local_subnets) > 1 else "local_cidrs"
        raise Unsupported(FORMAT, field, list(view.local_subnets if field == "peer_cidrs"
                                              else view.remote_subnets),
                          "Junos traffic selectors must match the peer's exactly, and "
                          "Isthmus's IKEv2 side proposes all its subnets in one SA; use one "
                          "subnet on each side, or ike_version v1 (one SA per pair)")
    for number, (local, remote) in enumerate(pairs, start=1):
        lines += [f"{vpn} traffic-selector ts{number} local-ip {local}",
                  f"{vpn} traffic-selector ts{number} remote-ip {remote}"]
    lines.append(f"{vpn} establish-tunnels {ESTABLISH_TUNNELS[view.isthmus_initiates]}")
    return lines


def _identity(identity: str) -> str:
    """``<kind> <value>`` for ``local-identity`` / ``remote-identity``."""
    kind, value = identity_kind(identity)
    word = IDENTITY_KINDS[kind]
    return f'{word} "{value}"' if kind == "email" else f"{word} {value}"


def _psk(view: PeerView) -> str:
    return '"' + secret(FORMAT, view, _UNQUOTABLE,
                        "this format writes the key as a Junos quoted string, which cannot "
                        "hold a double quote or a backslash; use a key without them") + '"'
