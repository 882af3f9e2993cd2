"""FortiGate (FortiOS 7.x): a route-based (interface mode) IPsec VPN as CLI blocks.

``config vpn ipsec phase1-interface`` (one, named like the tunnel interface it
creates), ``phase2-interface`` (one per (peer subnet, Isthmus subnet) pair, as
Isthmus's IKEv1 side negotiates one CHILD_SA per pair), firewall address
objects and groups for both sides, a static route per Isthmus subnet through
the tunnel, and the two firewall policies without which a FortiGate passes no
traffic.

Decisions:

* **Proposals** are FortiOS's ``<cipher>-<hash>`` words; AES-GCM in phase 1 is
  ``aes128gcm-prfsha256`` (the API's ``auth_algorithm`` is the PRF, as in
  Isthmus's own AEAD IKE proposals) and exists with IKEv2 only; in phase 2 it
  is ``aes128gcm`` / ``aes256gcm`` alone. FortiOS has no AES-192-GCM, AES-CCM,
  AES-CTR, AES-XCBC or AES-CMAC, and no DH groups 22 to 26.
* **ESP in tunnel mode only**: FortiOS has no AH, and a route-based tunnel with
  subnet selectors is a tunnel-mode one.
* **DPD**: ``dpd-retryinterval`` is the API interval (1 to 60 s, the range
  Fortinet documents) and ``dpd-retrycount`` the timeout / interval rounded up
  (0 to 10; at least 1 here). With IKEv2, FortiOS's own retransmissions decide
  when a peer is dead, as with strongSwan. FortiOS has no DPD
  action: ``hold`` (traffic brings the tunnel back) maps to ``on-demand``, the
  others to ``on-idle``; ``disabled`` to ``disable``.
* **Initiator**: when Isthmus is ``response-only`` the FortiGate must bring the
  tunnel up: ``auto-negotiate enable`` on each phase 2.
* **PSK**: FortiOS reads a ``psksecret`` starting with ``0x`` as hexadecimal, so
  such keys are refused, as are keys a quoted CLI string cannot hold.
* **Interface names**: ``wan1`` and ``internal`` are this module's choices
  (:data:`WAN_INTERFACE`, :data:`LAN_INTERFACE`); the header says to adapt them.
"""

from __future__ import annotations

import re

from isthmus.peers import PeerView, Unsupported
from isthmus.peers._rendering import (
    LifetimeUnit, dpd_retries, ike_seconds, in_range, ipsec_lifetime, ipv4_network, is_aead,
    keyword, object_name, plain_identities, require_ipv4, secret, subnet_pairs)

FORMAT = "fortigate"
DESCRIPTION = "FortiGate FortiOS 7.x route-based IPsec (phase1-interface, phase2-interface)"
FILENAME = "fortigate-{name}.txt"

PHASE1_CIPHERS: dict[str, str] = {
    "3des": "3des", "aes-128": "aes128", "aes-192": "aes192", "aes-256": "aes256",
    "aes-128-gcm-16": "aes128gcm", "aes-256-gcm-16": "aes256gcm",
}
"""API ``ikepolicy.encryption_algorithm`` → the cipher half of a phase 1 ``proposal``."""

PHASE1_HASHES: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
"""API ``ikepolicy.auth_algorithm`` → the hash half of a phase 1 ``proposal`` (CBC ciphers)."""

PHASE1_PRFS: dict[str, str] = {
    "sha1": "prfsha1", "sha256": "prfsha256", "sha384": "prfsha384", "sha512": "prfsha512"}
"""API ``ikepolicy.auth_algorithm`` → the PRF half of an AES-GCM phase 1 ``proposal``."""

PHASE2_CIPHERS: dict[str, str] = {
    "3des": "3des", "aes-128": "aes128", "aes-192": "aes192", "aes-256": "aes256",
    "aes-128-gcm-16": "aes128gcm", "aes-256-gcm-16": "aes256gcm",
}
"""API ``ipsecpolicy.encryption_algorithm`` → the cipher (or whole AEAD) phase 2 ``proposal``."""

PHASE2_HASHES: dict[str, str] = {
    "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}
"""API ``ipsecpolicy.auth_algorithm`` → the hash half of a phase 2 ``proposal``."""

DH_GROUPS: dict[str, str] = {
    f"group{n}": str(n) for n in (2, 5, 14, 15, 16, 17, 18, 19, 20, 21, 27, 28, 29, 30, 31)}
"""API ``pfs`` → ``dhgrp`` (phase 1, and phase 2 when PFS is on)."""

IKE_VERSIONS: dict[str, str] = {"v1": "1", "v2": "2"}
"""API ``ike_version`` → phase 1 ``ike-version``."""

PHASE1_MODES: dict[str, str] = {"main": "main", "aggressive": "aggressive"}
"""API ``phase1_negotiation_mode`` → phase 1 ``mode`` (IKEv1 only)."""

PROTOCOLS: dict[str, str] = {"esp": "esp"}
"""API ``transform_protocol`` values FortiOS negotiates (ESP only)."""

ENCAPSULATION_MODES: dict[str, str] = {"tunnel": "tunnel-mode"}
"""API ``encapsulation_mode`` → phase 2 ``encapsulation``."""

DPD_MODES: dict[str, str] = {
    "hold": "on-demand", "clear": "on-idle", "restart": "on-idle", "restart-by-peer": "on-idle",
    "disabled": "disable",
}
"""API ``dpd.action`` → phase 1 ``dpd``."""

AUTO_NEGOTIATE: dict[bool, str] = {True: "disable", False: "enable"}
"""Does Isthmus initiate? → phase 2 ``auto-negotiate`` (enable: the FortiGate brings it up)."""

KEYLIFE_TYPES: dict[str, str] = {"seconds": "seconds", "kilobytes": "kbs"}
"""API ``ipsecpolicy.lifetime.units`` → phase 2 ``keylife-type``."""

KEYLIFES: dict[str, LifetimeUnit] = {
    "seconds": LifetimeUnit("keylifeseconds", 1, 120, 172800),
    "kilobytes": LifetimeUnit("keylifekbs", 1, 5120, 4294967295),
}
"""API ``ipsecpolicy.lifetime.units`` → the phase 2 setting that holds the key life."""

WAN_INTERFACE = "wan1"
LAN_INTERFACE = "internal"
KEYLIFE_S = (120, 172800)
DPD_RETRY_INTERVAL_S = (1, 60)   # the range Fortinet documents; later releases may accept more
DPD_RETRY_COUNT = (1, 10)
_UNQUOTABLE = re.compile(r'["\\]')   # a FortiOS quoted string holds neither


def render(view: PeerView) -> str:
    """The CLI blocks, indented as ``show`` prints them, with a comment header."""
    require_ipv4(FORMAT, view)
    plain_identities(FORMAT, view)
    keyword(FORMAT, PROTOCOLS, "ipsecpolicy.transform_protocol", view.transform_protocol,
            "FortiOS negotiates ESP only; use esp")
    name = object_name(view)
    lines = [
        f"# Isthmus site connection {view.name or view.connection_id} ({view.connection_id}):",
        "# the FortiGate (FortiOS 7.x) side, route-based. Paste in the CLI; adapt",
        f'# "{WAN_INTERFACE}" (the interface holding {view.local_address}) and'
        f' "{LAN_INTERFACE}" (the LAN).',
        "config vpn ipsec phase1-interface",
        f'    edit "{name}"',
        *[f"        {line}" for line in _phase1(view)],
        "    next",
        "end",
        "config vpn ipsec phase2-interface",
    ]
    for number, (local, remote) in enumerate(subnet_pairs(view), start=1):
        lines += [f'    edit "{name}-{number}"',
                  *[f"        {line}" for line in _phase2(view, name, local, remote)],
                  "    next"]
    lines += ["end", *_addresses(view, name), *_routes(view, name), *_policies(name)]
    return "\n".join(lines) + "\n"


def _phase1(view: PeerView) -> list[str]:
    version = keyword(FORMAT, IKE_VERSIONS, "ikepolicy.ike_version", f"v{view.ike_version}")
    lines = [f'set interface "{WAN_INTERFACE}"', f"set ike-version {version}"]
    if view.ike_version == 1:
        lines.append("set mode " + keyword(FORMAT, PHASE1_MODES,
                                           "ikepolicy.phase1_negotiation_mode",
                                           view.phase1_negotiation_mode))
    lines += ["set peertype any", "set net-device disable",
              f"set proposal {_phase1_proposal(view)}",
              "set dhgrp " + keyword(FORMAT, DH_GROUPS, "ikepolicy.pfs", view.ike.pfs),
              f"set keylife {ike_seconds(FORMAT, view, *KEYLIFE_S)}",
              f"set localid {_quoted(view.local_id)}",
              f"set remote-gw {view.remote_address}",
              f"set psksecret {_psk(view)}"]
    mode = keyword(FORMAT, DPD_MODES, "dpd.action", view.dpd_action)
    lines.append(f"set dpd {mode}")
    if mode != "disable":
        interval = in_range(FORMAT, "dpd.interval", view.dpd_interval,
                            *DPD_RETRY_INTERVAL_S, "seconds")
        count = in_range(FORMAT, "dpd.timeout", dpd_retries(interval, view.dpd_timeout),
                         *DPD_RETRY_COUNT, "retries (timeout / interval)")
        lines += [f"set dpd-retryinterval {interval}", f"set dpd-retrycount {count}"]
    return lines


def _phase1_proposal(view: PeerView) -> str:
    cipher = keyword(FORMAT, PHASE1_CIPHERS, "ikepolicy.encryption_algorithm",
                     view.ike.encryption_algorithm)
    if not is_aead(view.ike.encryption_algorithm):
        return f"{cipher}-" + keyword(FORMAT, PHASE1_HASHES, "ikepolicy.auth_algorithm",
                                      view.ike.auth_algorithm)
    if view.ike_version == 1:
        raise Unsupported(FORMAT, "ikepolicy.encryption_algorithm", view.ike.encryption_algorithm,
                          "FortiOS offers AES-GCM in phase 1 with IKEv2 only; "
                          "use ike_version v2")
    return f"{cipher}-" + keyword(FORMAT, PHASE1_PRFS, "ikepolicy.auth_algorithm",
                                  view.ike.auth_algorithm)


def _phase2(view: PeerView, name: str, local: str, remote: str) -> list[str]:
    cipher = keyword(FORMAT, PHASE2_CIPHERS, "ipsecpolicy.encryption_algorithm",
                     view.ipsec.encryption_algorithm)
    proposal = cipher if is_aead(view.ipsec.encryption_algorithm) else f"{cipher}-" + keyword(
        FORMAT, PHASE2_HASHES, "ipsecpolicy.auth_algorithm", view.ipsec.auth_algorithm)
    lines = [f'set phase1name "{name}"', f"set proposal {proposal}"]
    if view.ipsec.pfs:
        lines += ["set pfs enable",
                  "set dhgrp " + keyword(FORMAT, DH_GROUPS, "ipsecpolicy.pfs", view.ipsec.pfs)]
    else:
        lines.append("set pfs disable")
    value_keyword, value = ipsec_lifetime(FORMAT, view, KEYLIFES)
    keylife_type = KEYLIFE_TYPES[view.ipsec.lifetime_units]
    source = ipv4_network(FORMAT, "peer_cidrs", local)
    destination = ipv4_network(FORMAT, "local_cidrs", remote)
    return lines + [
        f"set keylife-type {keylife_type}", f"set {value_keyword} {value}",
        "set encapsulation " + keyword(FORMAT, ENCAPSULATION_MODES,
                                       "ipsecpolicy.encapsulation_mode", view.encapsulation_mode,
                                       "a route-based tunnel between subnets is tunnel-mode"),
        f"set auto-negotiate {AUTO_NEGOTIATE[view.isthmus_initiates]}",
        f"set src-subnet {source.network_address} {source.netmask}",
        f"set dst-subnet {destination.network_address} {destination.netmask}",
    ]


def _addresses(view: PeerView, name: str) -> list[str]:
    lines = ["config firewall address"]
    groups: dict[str, list[str]] = {}
    for side, field, cidrs in (("local", "peer_cidrs", view.local_subnets),
                               ("remote", "local_cidrs", view.remote_subnets)):
        for number, cidr in enumerate(cidrs, start=1):
            network = ipv4_network(FORMAT, field, cidr)
            address = f"{name}-{side}-{number}"
            groups.setdefault(side, []).append(address)
            lines += [f'    edit "{address}"',
                      f"        set subnet {network.network_address} {network.netmask}",
                      "    next"]
    lines += ["end", "config firewall addrgrp"]
    for side, members in groups.items():
        lines += [f'    edit "{name}-{side}"',
                  "        set member " + " ".join(f'"{member}"' for member in members),
                  "    next"]
    return lines + ["end"]


def _routes(view: PeerView, name: str) -> list[str]:
    lines = ["config router static"]
    for cidr in view.remote_subnets:
        network = ipv4_network(FORMAT, "local_cidrs", cidr)
        lines += ["    edit 0", f"        set dst {network.network_address} {network.netmask}",
                  f'        set device "{name}"', "    next"]
    return lines + ["end"]


def _policies(name: str) -> list[str]:
    lines = ["config firewall policy"]
    for direction, (source_interface, destination_interface, source, destination) in (
            ("out", (LAN_INTERFACE, name, "local", "remote")),
            ("in", (name, LAN_INTERFACE, "remote", "local"))):
        lines += ["    edit 0",
                  f'        set name "{name}-{direction}"',
                  f'        set srcintf "{source_interface}"',
                  f'        set dstintf "{destination_interface}"',
                  f'        set srcaddr "{name}-{source}"',
                  f'        set dstaddr "{name}-{destination}"',
                  "        set action accept",
                  '        set schedule "always"',
                  '        set service "ALL"',
                  "    next"]
    return lines + ["end"]


def _psk(view: PeerView) -> str:
    if view.psk is not None and view.psk.lower().startswith("0x"):
        raise Unsupported(FORMAT, "psk", "(not shown)",   # never the key itself
                          "FortiOS reads a psksecret starting with 0x as hexadecimal, not as "
                          "the text Isthmus uses; use a key that does not start with 0x")
    return _quoted(secret(FORMAT, view, _UNQUOTABLE,
                          "this format writes the key as a quoted FortiOS string, which cannot "
                          "hold a double quote or a backslash; use a key without them"))


def _quoted(value: str) -> str:
    """A double-quoted FortiOS CLI string; callers keep double quotes and backslashes out."""
    return f'"{value}"'
