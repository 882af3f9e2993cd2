"""The API → strongSwan mapping, one table row per API value, checked by strongSwan itself.

The rows are the specification: API input on the left, the exact strongSwan
output on the right. Two checks go further than string equality when
strongSwan is installed: its own ``libstrongswan`` parses every proposal and
says which IANA transforms it means, and a throwaway charon (root only, in a
private mount and network namespace) accepts every ``load-conn`` and
``load-shared`` this module builds.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import pytest

from isthmus.drivers.device.strongswan import mapping
from isthmus.drivers.device.strongswan.mapping import (
    MappingError, ah_proposal, child_name, connection_name, esp_proposal, ike_proposal,
    shared_secret, to_vici, unsupported)
from isthmus.vpn import constants

CHARON = "/usr/lib/ipsec/charon"
LIBSTRONGSWAN = "/usr/lib/ipsec/libstrongswan.so.0"
ABSENT = object()  # in an expected row: this key must not be there


def ikepolicy(**overrides: Any) -> dict[str, Any]:
    return {"id": "ike-1", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
            "pfs": "group14", "lifetime": {"units": "seconds", "value": 3600},
            "ike_version": "v2", "phase1_negotiation_mode": "main", **overrides}


def ipsecpolicy(**overrides: Any) -> dict[str, Any]:
    return {"id": "ipsec-1", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
            "pfs": "group14", "lifetime": {"units": "seconds", "value": 3600},
            "transform_protocol": "esp", "encapsulation_mode": "tunnel", **overrides}


def connection(ike: dict | None = None, ipsec: dict | None = None,
               **overrides: Any) -> dict[str, Any]:
    """A connection of the agent's desired state (docs/rpc.md)."""
    return {"id": "c1", "name": "site-b", "admin_state_up": True, "status": "PENDING_CREATE",
            "peer_address": "198.51.100.20", "peer_id": "198.51.100.20", "local_id": "",
            "mtu": 1500, "initiator": "bi-directional", "psk": "secret",
            "dpd": {"action": "hold", "interval": 30, "timeout": 120},
            "ikepolicy": ikepolicy(**(ike or {})), "ipsecpolicy": ipsecpolicy(**(ipsec or {})),
            "local_cidrs": ["10.1.0.0/24"], "peer_cidrs": ["10.2.0.0/24"],
            "local_ip_version": 4, "external_ip": "198.51.100.10", **overrides}


SERVICE = {"id": "s1", "router_id": "r1", "admin_state_up": True}


def flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists stay values)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(flat(item, f"{prefix}.{key}" if prefix else key))
    return out


# -- proposals -------------------------------------------------------------------------
# (encryption_algorithm, IKE proposal, ESP proposal), with sha256 and group14
ENCRYPTION_ROWS = [
    ("3des", "3des-sha256-modp2048", "3des-sha256-modp2048"),
    ("aes-128", "aes128-sha256-modp2048", "aes128-sha256-modp2048"),
    ("aes-192", "aes192-sha256-modp2048", "aes192-sha256-modp2048"),
    ("aes-256", "aes256-sha256-modp2048", "aes256-sha256-modp2048"),
    ("aes-128-ctr", "aes128ctr-sha256-modp2048", "aes128ctr-sha256-modp2048"),
    ("aes-192-ctr", "aes192ctr-sha256-modp2048", "aes192ctr-sha256-modp2048"),
    ("aes-256-ctr", "aes256ctr-sha256-modp2048", "aes256ctr-sha256-modp2048"),
    ("aes-128-ccm-8", "aes128ccm8-prfsha256-modp2048", "aes128ccm8-modp2048"),
    ("aes-192-ccm-8", "aes192ccm8-prfsha256-modp2048", "aes192ccm8-modp2048"),
    ("aes-256-ccm-8", "aes256ccm8-prfsha256-modp2048", "aes256ccm8-modp2048"),
    ("aes-128-ccm-12", "aes128ccm12-prfsha256-modp2048", "aes128ccm12-modp2048"),
    ("aes-192-ccm-12", "aes192ccm12-prfsha256-modp2048", "aes192ccm12-modp2048"),
    ("aes-256-ccm-12", "aes256ccm12-prfsha256-modp2048", "aes256ccm12-modp2048"),
    ("aes-128-ccm-16", "aes128ccm16-prfsha256-modp2048", "aes128ccm16-modp2048"),
    ("aes-192-ccm-16", "aes192ccm16-prfsha256-modp2048", "aes192ccm16-modp2048"),
    ("aes-256-ccm-16", "aes256ccm16-prfsha256-modp2048", "aes256ccm16-modp2048"),
    ("aes-128-gcm-8", "aes128gcm8-prfsha256-modp2048", "aes128gcm8-modp2048"),
    ("aes-192-gcm-8", "aes192gcm8-prfsha256-modp2048", "aes192gcm8-modp2048"),
    ("aes-256-gcm-8", "aes256gcm8-prfsha256-modp2048", "aes256gcm8-modp2048"),
    ("aes-128-gcm-12", "aes128gcm12-prfsha256-modp2048", "aes128gcm12-modp2048"),
    ("aes-192-gcm-12", "aes192gcm12-prfsha256-modp2048", "aes192gcm12-modp2048"),
    ("aes-256-gcm-12", "aes256gcm12-prfsha256-modp2048", "aes256gcm12-modp2048"),
    ("aes-128-gcm-16", "aes128gcm16-prfsha256-modp2048", "aes128gcm16-modp2048"),
    ("aes-192-gcm-16", "aes192gcm16-prfsha256-modp2048", "aes192gcm16-modp2048"),
    ("aes-256-gcm-16", "aes256gcm16-prfsha256-modp2048", "aes256gcm16-modp2048"),
]

# (auth_algorithm, IKE with aes-256, IKE with aes-256-gcm-16, ESP with aes-256, AH), group14
AUTH_ROWS = [
    ("sha1", "aes256-sha1-modp2048", "aes256gcm16-prfsha1-modp2048",
     "aes256-sha1-modp2048", "sha1-modp2048"),
    ("sha256", "aes256-sha256-modp2048", "aes256gcm16-prfsha256-modp2048",
     "aes256-sha256-modp2048", "sha256-modp2048"),
    ("sha384", "aes256-sha384-modp2048", "aes256gcm16-prfsha384-modp2048",
     "aes256-sha384-modp2048", "sha384-modp2048"),
    ("sha512", "aes256-sha512-modp2048", "aes256gcm16-prfsha512-modp2048",
     "aes256-sha512-modp2048", "sha512-modp2048"),
    ("aes-xcbc", "aes256-aesxcbc-modp2048", "aes256gcm16-prfaesxcbc-modp2048",
     "aes256-aesxcbc-modp2048", "aesxcbc-modp2048"),
    ("aes-cmac", "aes256-aescmac-modp2048", "aes256gcm16-prfaescmac-modp2048",
     "aes256-aescmac-modp2048", "aescmac-modp2048"),
]

# (pfs, strongSwan key exchange keyword)
PFS_ROWS = [
    ("group2", "modp1024"), ("group5", "modp1536"), ("group14", "modp2048"),
    ("group15", "modp3072"), ("group16", "modp4096"), ("group17", "modp6144"),
    ("group18", "modp8192"), ("group19", "ecp256"), ("group20", "ecp384"),
    ("group21", "ecp521"), ("group22", "modp1024s160"), ("group23", "modp2048s224"),
    ("group24", "modp2048s256"), ("group25", "ecp192"), ("group26", "ecp224"),
    ("group27", "ecp224bp"), ("group28", "ecp256bp"), ("group29", "ecp384bp"),
    ("group30", "ecp512bp"), ("group31", "curve25519"),
]


@pytest.mark.parametrize("api, ike, esp", ENCRYPTION_ROWS, ids=[r[0] for r in ENCRYPTION_ROWS])
def test_encryption_algorithm(api, ike, esp):
    assert ike_proposal(ikepolicy(encryption_algorithm=api)) == ike
    assert esp_proposal(ipsecpolicy(encryption_algorithm=api)) == esp


@pytest.mark.parametrize("api, ike, ike_aead, esp, ah", AUTH_ROWS, ids=[r[0] for r in AUTH_ROWS])
def test_auth_algorithm(api, ike, ike_aead, esp, ah):
    assert ike_proposal(ikepolicy(auth_algorithm=api, encryption_algorithm="aes-256")) == ike
    assert ike_proposal(ikepolicy(auth_algorithm=api,
                                  encryption_algorithm="aes-256-gcm-16")) == ike_aead
    assert esp_proposal(ipsecpolicy(auth_algorithm=api, encryption_algorithm="aes-256")) == esp
    # AH has no encryption: the policy's encryption_algorithm is not used
    assert ah_proposal(ipsecpolicy(auth_algorithm=api, encryption_algorithm="aes-256-gcm-16",
                                   transform_protocol="ah")) == ah


@pytest.mark.parametrize("api, keyword", PFS_ROWS, ids=[r[0] for r in PFS_ROWS])
def test_pfs_group_applies_to_both_phases(api, keyword):
    assert ike_proposal(ikepolicy(pfs=api)) == f"aes128-sha256-{keyword}"
    assert esp_proposal(ipsecpolicy(pfs=api)) == f"aes128-sha256-{keyword}"
    assert ah_proposal(ipsecpolicy(pfs=api)) == f"sha256-{keyword}"


def test_the_rows_cover_every_api_value():
    assert {r[0] for r in ENCRYPTION_ROWS} >= set(constants.ENCRYPTION_ALGORITHMS)
    assert {r[0] for r in AUTH_ROWS} >= set(constants.AUTH_ALGORITHMS)
    assert {r[0] for r in PFS_ROWS} == set(constants.PFS_GROUPS)
    assert {r[0] for r in ENCRYPTION_ROWS} == set(mapping.ENCRYPTION)
    assert {r[0] for r in AUTH_ROWS} == set(mapping.INTEGRITY)
    assert set(mapping.DPD_ACTIONS) == set(constants.DPD_ACTIONS)
    assert set(mapping.START_ACTIONS) == set(mapping.CLOSE_ACTIONS) == set(constants.INITIATORS)


# Keywords of strongSwan's proposal parser (src/libstrongswan/crypto/proposal/
# proposal_keywords_static.txt; docs.strongswan.org/docs/5.9/config/IKEv2CipherSuites.html)
STRONGSWAN_PROPOSAL_KEYWORDS = {
    "3des", "aes128", "aes192", "aes256", "aes128ctr", "aes192ctr", "aes256ctr",
    *(f"aes{bits}{mode}{icv}" for bits in (128, 192, 256) for mode in ("ccm", "gcm")
      for icv in (8, 12, 16)),
    "sha1", "sha256", "sha384", "sha512", "aesxcbc", "aescmac",
    "prfsha1", "prfsha256", "prfsha384", "prfsha512", "prfaesxcbc", "prfaescmac",
    "modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192",
    "ecp192", "ecp224", "ecp256", "ecp384", "ecp521", "modp1024s160", "modp2048s224",
    "modp2048s256", "ecp224bp", "ecp256bp", "ecp384bp", "ecp512bp", "curve25519",
}
# swanctl.conf(5) of strongSwan 5.9.8: children.<child>.dpd_action / start_action / mode
SWANCTL_DPD_ACTIONS = {"clear", "trap", "restart"}
SWANCTL_START_ACTIONS = {"none", "trap", "start", "trap|start"}
SWANCTL_CLOSE_ACTIONS = {"none", "trap", "start"}


def test_every_keyword_is_a_documented_strongswan_keyword():
    made = {*mapping.ENCRYPTION.values(), *mapping.INTEGRITY.values(), *mapping.PRF.values(),
            *mapping.DH_GROUPS.values()}
    assert made <= STRONGSWAN_PROPOSAL_KEYWORDS, made - STRONGSWAN_PROPOSAL_KEYWORDS
    for row in ENCRYPTION_ROWS + AUTH_ROWS:
        for proposal in row[1:]:
            assert set(proposal.split("-")) <= STRONGSWAN_PROPOSAL_KEYWORDS, proposal
    assert set(mapping.DPD_ACTIONS.values()) <= SWANCTL_DPD_ACTIONS
    assert set(mapping.START_ACTIONS.values()) <= SWANCTL_START_ACTIONS
    assert set(mapping.CLOSE_ACTIONS.values()) <= SWANCTL_CLOSE_ACTIONS


# What libstrongswan says each keyword is (its IANA transform names)
IANA_ENCRYPTION = {
    "3des": "3DES_CBC",
    **{f"aes-{b}": f"AES_CBC_{b}" for b in (128, 192, 256)},
    **{f"aes-{b}-ctr": f"AES_CTR_{b}" for b in (128, 192, 256)},
    **{f"aes-{b}-{m}-{icv}": f"AES_{m.upper()}_{icv}_{b}" for b in (128, 192, 256)
       for m in ("ccm", "gcm") for icv in (8, 12, 16)},
}
IANA_INTEGRITY = {  # (integrity, PRF)
    "sha1": ("HMAC_SHA1_96", "PRF_HMAC_SHA1"),
    "sha256": ("HMAC_SHA2_256_128", "PRF_HMAC_SHA2_256"),
    "sha384": ("HMAC_SHA2_384_192", "PRF_HMAC_SHA2_384"),
    "sha512": ("HMAC_SHA2_512_256", "PRF_HMAC_SHA2_512"),
    "aes-xcbc": ("AES_XCBC_96", "PRF_AES128_XCBC"),
    "aes-cmac": ("AES_CMAC_96", "PRF_AES128_CMAC"),
}
IANA_DH = {  # RFC 3526 / 5903 / 5114 / 6954 / 8031 groups by number
    "group2": "MODP_1024", "group5": "MODP_1536", "group14": "MODP_2048",
    "group15": "MODP_3072", "group16": "MODP_4096", "group17": "MODP_6144",
    "group18": "MODP_8192", "group19": "ECP_256", "group20": "ECP_384", "group21": "ECP_521",
    "group22": "MODP_1024_160", "group23": "MODP_2048_224", "group24": "MODP_2048_256",
    "group25": "ECP_192", "group26": "ECP_224", "group27": "ECP_224_BP",
    "group28": "ECP_256_BP", "group29": "ECP_384_BP", "group30": "ECP_512_BP",
    "group31": "CURVE_25519",
}

_PARSE_SCRIPT = r"""
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])
lib.library_init.restype = ctypes.c_bool
lib.library_init.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
lib.proposal_create_from_string.restype = ctypes.c_void_p
lib.proposal_create_from_string.argtypes = [ctypes.c_int, ctypes.c_char_p]
if not lib.library_init(None, b"isthmus-test"):
    sys.exit("library_init failed")
buf = ctypes.create_string_buffer(1024)
out = []
for protocol, text in json.load(sys.stdin):
    proposal = lib.proposal_create_from_string({"IKE": 1, "AH": 2, "ESP": 3}[protocol],
                                               text.encode())
    if proposal:  # strongSwan's own printf hook renders a proposal_t as %P
        lib.snprintf(buf, len(buf), b"%P", ctypes.c_void_p(proposal))
    out.append(buf.value.decode() if proposal else None)
print(json.dumps(out))
"""


def _expected_transforms() -> list[tuple[str, str, str]]:
    """(protocol, proposal, what strongSwan must parse it to) for every API value."""
    rows = []
    for enc, integ, pfs in [(e, "sha256", "group14") for e in IANA_ENCRYPTION] + \
            [(e, a, "group14") for a in IANA_INTEGRITY for e in ("aes-256", "aes-256-gcm-16")] + \
            [("aes-128", "sha256", g) for g in IANA_DH]:
        policy = {"encryption_algorithm": enc, "auth_algorithm": integ, "pfs": pfs}
        e, (i, prf), dh = IANA_ENCRYPTION[enc], IANA_INTEGRITY[integ], IANA_DH[pfs]
        aead = enc in mapping.AEAD_ENCRYPTION
        rows.append(("IKE", ike_proposal(policy),
                     f"IKE:{e}/{prf}/{dh}" if aead else f"IKE:{e}/{i}/{prf}/{dh}"))
        rows.append(("ESP", esp_proposal(policy),
                     f"ESP:{e}/{dh}/NO_EXT_SEQ" if aead else f"ESP:{e}/{i}/{dh}/NO_EXT_SEQ"))
        rows.append(("AH", ah_proposal(policy), f"AH:{i}/{dh}/NO_EXT_SEQ"))
    return rows


@pytest.mark.skipif(not os.path.exists(LIBSTRONGSWAN), reason="strongSwan is not installed")
def test_strongswan_parses_every_proposal_as_the_api_algorithm():
    """libstrongswan (in a child process: it keeps global state) parses each proposal."""
    rows = _expected_transforms()
    result = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, LIBSTRONGSWAN],
                            input=json.dumps([(p, text) for p, text, _ in rows]),
                            capture_output=True, text=True, timeout=30, check=True)
    parsed = json.loads(result.stdout)
    wrong = [(text, want, got) for (_, text, want), got in zip(rows, parsed) if got != want]
    assert not wrong, wrong


# -- whole connections -----------------------------------------------------------------
NAME = "isthmus-c1"
CHILD = f"children.{NAME}"

# (row id, to_vici input: connection(...) arguments, expected values by dotted path)
CONNECTION_ROWS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("ikev2", {}, {
        "version": "2", "aggressive": "no", "proposals": ["aes128-sha256-modp2048"],
        "rekey_time": "3240s", "reauth_time": "0s", "over_time": "360s"}),
    ("ikev1 reauthenticates", {"ike": {"ike_version": "v1"}}, {
        "version": "1", "aggressive": "no", "rekey_time": "0s", "reauth_time": "3240s",
        "over_time": "360s"}),
    ("ikev1 aggressive", {"ike": {"ike_version": "v1", "phase1_negotiation_mode": "aggressive"}},
     {"version": "1", "aggressive": "yes"}),
    ("ike lifetime 7200", {"ike": {"lifetime": {"units": "seconds", "value": 7200}}}, {
        "rekey_time": "6480s", "over_time": "720s"}),
    ("ike lifetime 60 (the minimum)", {"ike": {"lifetime": {"units": "seconds", "value": 60}}},
     {"rekey_time": "54s", "over_time": "6s"}),
    ("ipsec lifetime 28800", {"ipsec": {"lifetime": {"units": "seconds", "value": 28800}}}, {
        f"{CHILD}.rekey_time": "25920s", f"{CHILD}.life_time": "28800s",
        f"{CHILD}.life_bytes": ABSENT}),
    ("ipsec lifetime kilobytes", {"ipsec": {"lifetime": {"units": "kilobytes", "value": 100000}}},
     {f"{CHILD}.rekey_bytes": "92160000", f"{CHILD}.life_bytes": "102400000",
      f"{CHILD}.rekey_time": ABSENT, f"{CHILD}.life_time": ABSENT}),
    ("dpd hold", {"dpd": {"action": "hold", "interval": 30, "timeout": 120}}, {
        "dpd_delay": "30s", "dpd_timeout": "120s", f"{CHILD}.dpd_action": "trap"}),
    ("dpd clear", {"dpd": {"action": "clear", "interval": 10, "timeout": 40}}, {
        "dpd_delay": "10s", "dpd_timeout": "40s", f"{CHILD}.dpd_action": "clear"}),
    ("dpd restart", {"dpd": {"action": "restart", "interval": 5, "timeout": 20}}, {
        "dpd_delay": "5s", "dpd_timeout": "20s", f"{CHILD}.dpd_action": "restart"}),
    ("dpd restart-by-peer", {"dpd": {"action": "restart-by-peer", "interval": 30,
                                     "timeout": 120}},
     {"dpd_delay": "30s", "dpd_timeout": "120s", f"{CHILD}.dpd_action": "clear"}),
    ("dpd disabled", {"dpd": {"action": "disabled", "interval": 30, "timeout": 120}}, {
        "dpd_delay": "0s", "dpd_timeout": "0s", f"{CHILD}.dpd_action": "clear"}),
    ("bi-directional", {"initiator": "bi-directional"}, {
        f"{CHILD}.start_action": "trap|start", f"{CHILD}.close_action": "start"}),
    ("response-only", {"initiator": "response-only"}, {
        f"{CHILD}.start_action": "none", f"{CHILD}.close_action": "none"}),
    ("local_id empty: the external IP", {"local_id": ""}, {
        "local.id": "198.51.100.10", "local.auth": "psk"}),
    ("local_id set", {"local_id": "site-a.example.org"}, {
        "local.id": "site-a.example.org", "remote.id": "198.51.100.20"}),
    ("peer_id an e-mail", {"peer_id": "vpn@site-b.example.org"}, {
        "remote.id": "vpn@site-b.example.org", "remote.auth": "psk",
        "remote_addrs": ["198.51.100.20"]}),
    ("tunnel", {"ipsec": {"encapsulation_mode": "tunnel"}}, {f"{CHILD}.mode": "tunnel"}),
    ("transport", {"ipsec": {"encapsulation_mode": "transport"}}, {
        f"{CHILD}.mode": "transport"}),
    ("esp", {"ipsec": {"transform_protocol": "esp", "encryption_algorithm": "aes-256-gcm-16"}},
     {f"{CHILD}.esp_proposals": ["aes256gcm16-modp2048"], f"{CHILD}.ah_proposals": ABSENT}),
    ("ah", {"ipsec": {"transform_protocol": "ah", "auth_algorithm": "sha512"}}, {
        f"{CHILD}.ah_proposals": ["sha512-modp2048"], f"{CHILD}.esp_proposals": ABSENT}),
    ("ikev2 several CIDRs: one child", {"local_cidrs": ["10.1.0.0/24", "10.3.0.0/24"],
                                        "peer_cidrs": ["10.2.0.0/24", "10.4.0.0/24"]}, {
        f"{CHILD}.local_ts": ["10.1.0.0/24", "10.3.0.0/24"],
        f"{CHILD}.remote_ts": ["10.2.0.0/24", "10.4.0.0/24"],
        f"{CHILD}-pair2": ABSENT}),
    ("ikev1 several CIDRs: a child per pair", {
        "ike": {"ike_version": "v1"}, "local_cidrs": ["10.1.0.0/24", "10.3.0.0/24"],
        "peer_cidrs": ["10.2.0.0/24", "10.4.0.0/24"]}, {
        f"{CHILD}.local_ts": ["10.1.0.0/24"], f"{CHILD}.remote_ts": ["10.2.0.0/24"],
        f"{CHILD}-pair2.local_ts": ["10.1.0.0/24"], f"{CHILD}-pair2.remote_ts": ["10.4.0.0/24"],
        f"{CHILD}-pair3.local_ts": ["10.3.0.0/24"], f"{CHILD}-pair3.remote_ts": ["10.2.0.0/24"],
        f"{CHILD}-pair4.local_ts": ["10.3.0.0/24"], f"{CHILD}-pair4.remote_ts": ["10.4.0.0/24"],
        f"{CHILD}-pair4.start_action": "trap|start", f"{CHILD}-pair5": ABSENT}),
    ("ipv6", {"external_ip": "2001:db8::10", "peer_address": "2001:db8::20",
              "peer_id": "2001:db8::20", "local_cidrs": ["2001:db8:1::/64"],
              "peer_cidrs": ["2001:db8:2::/64"]}, {
        "local_addrs": ["2001:db8::10"], "remote_addrs": ["2001:db8::20"],
        "local.id": "2001:db8::10", f"{CHILD}.local_ts": ["2001:db8:1::/64"]}),
]


@pytest.mark.parametrize("arguments, expected", [r[1:] for r in CONNECTION_ROWS],
                         ids=[r[0] for r in CONNECTION_ROWS])
def test_connection(arguments, expected):
    body = flat(to_vici(SERVICE, connection(**copy.deepcopy(arguments)))[NAME])
    for path, want in expected.items():
        if want is ABSENT:
            assert not any(key == path or key.startswith(path + ".") for key in body), path
        else:
            assert body.get(path) == want, (path, body.get(path))


def test_a_whole_connection():
    """The exact message, so that a reader sees the shape the device driver loads."""
    assert to_vici(SERVICE, connection()) == {NAME: {
        "version": "2",
        "local_addrs": ["198.51.100.10"],
        "remote_addrs": ["198.51.100.20"],
        "proposals": ["aes128-sha256-modp2048"],
        "aggressive": "no",
        "encap": "no",
        "mobike": "no",
        "rekey_time": "3240s",
        "reauth_time": "0s",
        "over_time": "360s",
        "dpd_delay": "30s",
        "dpd_timeout": "120s",
        "local": {"auth": "psk", "id": "198.51.100.10"},
        "remote": {"auth": "psk", "id": "198.51.100.20"},
        "children": {NAME: {
            "local_ts": ["10.1.0.0/24"],
            "remote_ts": ["10.2.0.0/24"],
            "mode": "tunnel",
            "esp_proposals": ["aes128-sha256-modp2048"],
            "rekey_time": "3240s",
            "life_time": "3600s",
            "dpd_action": "trap",
            "start_action": "trap|start",
            "close_action": "start",
        }},
    }}


def test_nothing_maps_the_mtu_or_admin_state():
    """strongSwan has no per-connection MTU; admin-down connections are simply not loaded."""
    assert to_vici(SERVICE, connection(mtu=1400, admin_state_up=False)) == \
        to_vici(SERVICE, connection())


def test_every_value_is_a_string_or_a_list_of_strings():
    def check(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                check(item)
        elif isinstance(value, list):
            assert all(isinstance(item, str) for item in value), value
        else:
            assert isinstance(value, str), value
    for _, arguments, _ in CONNECTION_ROWS:
        check(to_vici(SERVICE, connection(**copy.deepcopy(arguments))))


@pytest.mark.parametrize("ipsec", [{"transform_protocol": "ah-esp"},
                                   {"encryption_algorithm": "aes-512"},
                                   {"pfs": "group1"}, {"encapsulation_mode": "beet"}])
def test_values_without_a_strongswan_equivalent_raise(ipsec):
    with pytest.raises(MappingError, match=next(iter(ipsec))):
        to_vici(SERVICE, connection(ipsec=ipsec))


def test_names():
    assert connection_name("c1") == "isthmus-c1"
    assert child_name("c1") == "isthmus-c1"
    assert child_name("c1", 1) == "isthmus-c1-pair2"


# (local_id, shared secret)
SECRET_ROWS = [
    ("", {"id": "isthmus-c1", "type": "IKE", "data": "secret",
          "owners": ["198.51.100.10", "198.51.100.20"]}),
    ("site-a.example.org", {"id": "isthmus-c1", "type": "IKE", "data": "secret",
                            "owners": ["site-a.example.org", "198.51.100.20"]}),
]


@pytest.mark.parametrize("local_id, secret", SECRET_ROWS, ids=["local_id empty", "local_id set"])
def test_shared_secret(local_id, secret):
    assert shared_secret(SERVICE, connection(local_id=local_id)) == secret


def test_a_non_ascii_psk_is_passed_as_is():
    assert shared_secret(SERVICE, connection(psk="pässwörd €"))["data"] == "pässwörd €"


# -- what strongSwan cannot do -----------------------------------------------------------
AH_ESP = ("IPsec policy transform_protocol 'ah-esp' is not supported: strongSwan negotiates "
          "ESP or AH for a CHILD_SA, never an AH+ESP bundle; use esp")
LIBIPSEC = "kernel-libipsec (userspace IPsec) implements ESP in tunnel mode only"

# (row id, IKE policy changes, IPsec policy changes, libipsec, reasons)
UNSUPPORTED_ROWS: list[tuple[str, dict, dict, bool, list[str]]] = [
    ("defaults, libipsec", {}, {}, True, []),
    ("defaults, kernel", {}, {}, False, []),
    ("ah-esp, kernel", {}, {"transform_protocol": "ah-esp"}, False, [AH_ESP]),
    ("ah-esp, libipsec", {}, {"transform_protocol": "ah-esp"}, True, [AH_ESP]),
    ("aggressive with IKEv2", {"phase1_negotiation_mode": "aggressive"}, {}, False, [
        "IKE policy phase1_negotiation_mode 'aggressive' is not supported: aggressive mode "
        "exists in IKEv1 only; use main with ike_version v2"]),
    ("aggressive with IKEv1", {"phase1_negotiation_mode": "aggressive", "ike_version": "v1"},
     {}, False, []),
    ("IKEv1 phase 1 AES-GCM", {"ike_version": "v1", "encryption_algorithm": "aes-128-gcm-16"},
     {}, False, [
         "IKE policy encryption_algorithm 'aes-128-gcm-16' is not supported: IKEv1 phase 1 has "
         "CBC ciphers only (3des, aes-128, aes-192, aes-256); use one of them or ike_version "
         "v2"]),
    ("IKEv1 phase 1 AES-CTR", {"ike_version": "v1", "encryption_algorithm": "aes-256-ctr"},
     {}, False, [
         "IKE policy encryption_algorithm 'aes-256-ctr' is not supported: IKEv1 phase 1 has "
         "CBC ciphers only (3des, aes-128, aes-192, aes-256); use one of them or ike_version "
         "v2"]),
    ("IKEv2 AES-GCM", {"encryption_algorithm": "aes-128-gcm-16"}, {}, False, []),
    ("IKEv1 phase 1 AES-XCBC", {"ike_version": "v1", "auth_algorithm": "aes-xcbc"}, {}, False, [
        "IKE policy auth_algorithm 'aes-xcbc' is not supported: IKEv1 phase 1 hashes are sha1, "
        "sha256, sha384 and sha512; use one of them or ike_version v2"]),
    ("IKEv1 ESP AES-CMAC", {"ike_version": "v1"}, {"auth_algorithm": "aes-cmac"}, False, [
        "IPsec policy auth_algorithm 'aes-cmac' is not supported: IKEv1 has no transform for "
        "AES-CMAC; use another one or ike_version v2"]),
    ("IKEv1 ESP AES-CMAC unused by AEAD", {"ike_version": "v1"},
     {"auth_algorithm": "aes-cmac", "encryption_algorithm": "aes-128-gcm-16"}, False, []),
    ("IKEv1 ESP AES-XCBC", {"ike_version": "v1"}, {"auth_algorithm": "aes-xcbc"}, False, []),
    ("IKEv2 ESP AES-CMAC", {}, {"auth_algorithm": "aes-cmac"}, False, []),
    ("AH, kernel", {}, {"transform_protocol": "ah"}, False, []),
    ("AH, libipsec", {}, {"transform_protocol": "ah"}, True, [
        f"IPsec policy transform_protocol 'ah' is not supported: {LIBIPSEC}"]),
    ("transport, kernel", {}, {"encapsulation_mode": "transport"}, False, []),
    ("transport, libipsec", {}, {"encapsulation_mode": "transport"}, True, [
        f"IPsec policy encapsulation_mode 'transport' is not supported: {LIBIPSEC}"]),
    ("ESP AES-CCM, kernel", {}, {"encryption_algorithm": "aes-256-ccm-16"}, False, []),
    ("ESP AES-CCM, libipsec", {}, {"encryption_algorithm": "aes-256-ccm-16"}, True, []),
    ("ESP AES-GCM, libipsec", {}, {"encryption_algorithm": "aes-256-gcm-16"}, True, []),
    ("IKE AES-CCM, libipsec (IKE is charon's, not libipsec's)",
     {"encryption_algorithm": "aes-256-ccm-16"}, {}, True, []),
    ("unknown algorithm", {"encryption_algorithm": "aes-512"}, {}, False, [
        "IKE policy encryption_algorithm 'aes-512' is not supported: strongSwan has no keyword "
        "for it"]),
    ("unknown group", {}, {"pfs": "group1"}, False, [
        "IPsec policy pfs 'group1' is not supported: strongSwan has no keyword for it"]),
    ("IKE lifetime in kilobytes", {"lifetime": {"units": "kilobytes", "value": 1000}}, {},
     False, ["IKE policy lifetime units 'kilobytes' is not supported: strongSwan limits IKE "
             "SAs by time only"]),
    ("IPsec lifetime in kilobytes", {}, {"lifetime": {"units": "kilobytes", "value": 1000}},
     False, []),
    ("several reasons at once", {"phase1_negotiation_mode": "aggressive"},
     {"transform_protocol": "ah", "encapsulation_mode": "transport"}, True, [
         "IKE policy phase1_negotiation_mode 'aggressive' is not supported: aggressive mode "
         "exists in IKEv1 only; use main with ike_version v2",
         f"IPsec policy transform_protocol 'ah' is not supported: {LIBIPSEC}",
         f"IPsec policy encapsulation_mode 'transport' is not supported: {LIBIPSEC}"]),
]


@pytest.mark.parametrize("ike, ipsec, libipsec, reasons", [r[1:] for r in UNSUPPORTED_ROWS],
                         ids=[r[0] for r in UNSUPPORTED_ROWS])
def test_unsupported(ike, ipsec, libipsec, reasons):
    assert unsupported(ikepolicy(**ike), ipsecpolicy(**ipsec), libipsec=libipsec) == reasons


def test_every_supported_api_combination_maps():
    """Whatever unsupported() lets through, to_vici() can express."""
    for ike_version, transform, encryption, auth, pfs in (
            (v, t, e, a, g) for v in constants.IKE_VERSIONS
            for t in ("esp", "ah") for e in constants.ENCRYPTION_ALGORITHMS
            for a in constants.AUTH_ALGORITHMS for g in ("group14", "group31")):
        ike = ikepolicy(ike_version=ike_version, encryption_algorithm=encryption,
                        auth_algorithm=auth, pfs=pfs)
        ipsec = ipsecpolicy(transform_protocol=transform, encryption_algorithm=encryption,
                            auth_algorithm=auth, pfs=pfs)
        if not unsupported(ike, ipsec, libipsec=False):
            to_vici(SERVICE, connection(ike=ike, ipsec=ipsec))


# -- a real charon accepts every message -----------------------------------------------
def _can_run_charon() -> str | None:
    if not os.path.exists(CHARON):
        return "strongSwan's charon is not installed"
    if os.geteuid() != 0:
        return "needs root (a private mount and network namespace)"
    if shutil.which("unshare") is None:
        return "needs unshare(1)"
    if importlib.util.find_spec("vici") is None:
        return "needs the vici package"
    return None


@pytest.fixture(scope="module")
def charon(tmp_path_factory) -> Iterator[Any]:
    """A charon with no network and nothing to do but parse, in its own namespaces."""
    import vici

    workdir = tmp_path_factory.mktemp("charon")
    sock = workdir / "charon.vici"
    (workdir / "strongswan.conf").write_text(f"""charon {{
  load_modular = no
  load = random nonce openssl aes sha1 sha2 hmac gmp gcm xcbc kdf vici kernel-netlink socket-default
  install_routes = no
  plugins {{
    vici {{
      socket = unix://{sock}
    }}
  }}
}}
""")
    # charon writes /run/charon.pid: a private tmpfs keeps it from any other charon
    script = workdir / "start.sh"
    script.write_text(f"#!/bin/sh\nmount -t tmpfs isthmus-test /run\nip link set lo up\n"
                      f"STRONGSWAN_CONF={workdir}/strongswan.conf exec {CHARON}\n")
    script.chmod(0o755)
    log = open(workdir / "charon.log", "wb")
    process = subprocess.Popen(["unshare", "--mount", "--net", "--propagation", "private",
                                str(script)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                connection_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                connection_socket.connect(str(sock))
                break
            except OSError:
                connection_socket.close()
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("charon did not start: "
                                + (workdir / "charon.log").read_text()[-2000:])
                time.sleep(0.05)
        with connection_socket:
            yield vici.Session(connection_socket)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.skipif(_can_run_charon() is not None, reason=str(_can_run_charon()))
def test_charon_loads_every_connection_and_secret(charon):
    messages = []
    for n, (_, arguments, _) in enumerate(CONNECTION_ROWS):
        messages.append(connection(**copy.deepcopy(arguments), id=f"row{n}"))
    for n, (api, *_proposals) in enumerate(ENCRYPTION_ROWS):
        messages.append(connection(id=f"enc{n}", ike={"encryption_algorithm": api},
                                   ipsec={"encryption_algorithm": api}))
    for n, (api, *_proposals) in enumerate(AUTH_ROWS):
        messages.append(connection(id=f"auth{n}", ike={"auth_algorithm": api},
                                   ipsec={"auth_algorithm": api}))
    for n, (api, _) in enumerate(PFS_ROWS):
        messages.append(connection(id=f"pfs{n}", ike={"pfs": api}, ipsec={"pfs": api}))
    for conn in messages:
        charon.load_conn(to_vici(SERVICE, conn))  # raises vici's CommandException if refused
        charon.load_shared(shared_secret(SERVICE, conn))
    loaded = {name for item in charon.list_conns() for name in item}
    assert loaded == {connection_name(conn["id"]) for conn in messages}
    for conn in messages:
        charon.unload_conn({"name": connection_name(conn["id"])})
        charon.unload_shared({"id": shared_secret(SERVICE, conn)["id"]})

