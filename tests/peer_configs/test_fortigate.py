"""The FortiGate format: every table entry, every refusal, the PSK placeholder, the goldens."""

from __future__ import annotations

import pytest

from isthmus.peers import PSK_PLACEHOLDER, fortigate
from tests.peer_configs.views import CASES, check_golden, refuses, view

# The vocabulary of FortiOS 7.x, transcribed from Fortinet's FortiOS CLI schema as
# its Ansible collection publishes it (fortios_vpn_ipsec_phase1_interface and
# fortios_vpn_ipsec_phase2_interface, collection 2.4.2): the options each setting takes.
PHASE1_PROPOSALS = {
    *(f"{cipher}-{hash_}" for cipher in ("des", "3des", "aes128", "aes192", "aes256",
                                         "aria128", "aria192", "aria256", "seed")
      for hash_ in ("md5", "sha1", "sha256", "sha384", "sha512")),
    *(f"{aead}-prf{hash_}" for aead in ("aes128gcm", "aes256gcm", "chacha20poly1305")
      for hash_ in ("sha1", "sha256", "sha384", "sha512"))}
PHASE2_PROPOSALS = {
    *(f"{cipher}-{hash_}" for cipher in ("null", "des", "3des", "aes128", "aes192", "aes256",
                                         "aria128", "aria192", "aria256", "seed")
      for hash_ in ("null", "md5", "sha1", "sha256", "sha384", "sha512")),
    "aes128gcm", "aes256gcm", "chacha20poly1305"}
DH_GROUPS = {"1", "2", "5", "14", "15", "16", "17", "18", "19", "20", "21", "27", "28", "29",
             "30", "31", "32"}
DPD = {"disable", "on-idle", "on-demand"}
MODES = {"aggressive", "main"}
ENCAPSULATIONS = {"tunnel-mode", "transport-mode"}
KEYLIFE_TYPES = {"seconds", "kbs", "both"}

NAME = "isthmus-5a1c7e2"


def _phase1(out: str) -> str:
    return out.split("config vpn ipsec phase1-interface\n")[1].split("end\n")[0]


def _phase2(out: str) -> str:
    return out.split("config vpn ipsec phase2-interface\n")[1].split("end\n")[0]


def test_module_interface():
    assert fortigate.FORMAT == "fortigate"
    assert "\n" not in fortigate.DESCRIPTION and fortigate.DESCRIPTION
    assert "{name}" in fortigate.FILENAME


def test_tables_make_only_words_fortios_accepts():
    assert {f"{c}-{h}" for c in fortigate.PHASE1_CIPHERS.values() if "gcm" not in c
            for h in fortigate.PHASE1_HASHES.values()} <= PHASE1_PROPOSALS
    assert {f"{c}-{p}" for c in fortigate.PHASE1_CIPHERS.values() if "gcm" in c
            for p in fortigate.PHASE1_PRFS.values()} <= PHASE1_PROPOSALS
    assert {f"{c}-{h}" for c in fortigate.PHASE2_CIPHERS.values() if "gcm" not in c
            for h in fortigate.PHASE2_HASHES.values()} <= PHASE2_PROPOSALS
    assert {c for c in fortigate.PHASE2_CIPHERS.values() if "gcm" in c} <= PHASE2_PROPOSALS
    assert set(fortigate.DH_GROUPS.values()) <= DH_GROUPS
    assert set(fortigate.DPD_MODES.values()) <= DPD
    assert set(fortigate.PHASE1_MODES.values()) <= MODES
    assert set(fortigate.ENCAPSULATION_MODES.values()) <= ENCAPSULATIONS
    assert set(fortigate.KEYLIFE_TYPES.values()) <= KEYLIFE_TYPES


@pytest.mark.parametrize("api, word", sorted(fortigate.PHASE1_CIPHERS.items()))
def test_every_phase1_cipher_is_written(api, word):
    out = _phase1(fortigate.render(view(ike={"encryption_algorithm": api})))
    suffix = "prfsha256" if "gcm" in api else "sha256"
    assert f"        set proposal {word}-{suffix}\n" in out


@pytest.mark.parametrize("api, word", sorted(fortigate.PHASE1_HASHES.items()))
def test_every_phase1_hash_is_written(api, word):
    out = _phase1(fortigate.render(view(ike={"auth_algorithm": api})))
    assert f"        set proposal aes128-{word}\n" in out


@pytest.mark.parametrize("api, word", sorted(fortigate.PHASE1_PRFS.items()))
def test_every_phase1_prf_is_written(api, word):
    out = _phase1(fortigate.render(view(ike={"encryption_algorithm": "aes-256-gcm-16",
                                             "auth_algorithm": api})))
    assert f"        set proposal aes256gcm-{word}\n" in out


@pytest.mark.parametrize("api, word", sorted(fortigate.PHASE2_CIPHERS.items()))
def test_every_phase2_cipher_is_written(api, word):
    out = _phase2(fortigate.render(view(ipsec={"encryption_algorithm": api})))
    proposal = word if "gcm" in api else f"{word}-sha256"
    assert f"        set proposal {proposal}\n" in out


@pytest.mark.parametrize("api, word", sorted(fortigate.PHASE2_HASHES.items()))
def test_every_phase2_hash_is_written(api, word):
    out = _phase2(fortigate.render(view(ipsec={"auth_algorithm": api})))
    assert f"        set proposal aes128-{word}\n" in out


@pytest.mark.parametrize("api, word", sorted(fortigate.DH_GROUPS.items()))
def test_every_dh_group_is_written(api, word):
    out = fortigate.render(view(ike={"pfs": api}, ipsec={"pfs": api}))
    assert f"        set dhgrp {word}\n" in _phase1(out)
    assert f"        set pfs enable\n        set dhgrp {word}\n" in _phase2(out)


def test_no_pfs_disables_it():
    out = _phase2(fortigate.render(view(ipsec={"pfs": ""})))
    assert "        set pfs disable\n" in out and "dhgrp" not in out


@pytest.mark.parametrize("action, mode", [("hold", "on-demand"), ("clear", "on-idle"),
                                          ("restart", "on-idle"), ("restart-by-peer", "on-idle")])
def test_dpd(action, mode):
    out = _phase1(fortigate.render(view(dpd_action=action, dpd_interval=20, dpd_timeout=90)))
    assert (f"        set dpd {mode}\n        set dpd-retryinterval 20\n"
            "        set dpd-retrycount 5\n") in out


def test_dpd_disabled():
    out = _phase1(fortigate.render(view(dpd_action="disabled")))
    assert "        set dpd disable\n" in out and "dpd-retry" not in out


@pytest.mark.parametrize("initiates, word", [(True, "disable"), (False, "enable")])
def test_auto_negotiate(initiates, word):
    out = _phase2(fortigate.render(view(isthmus_initiates=initiates)))
    assert f"        set auto-negotiate {word}\n" in out


@pytest.mark.parametrize("version", [1, 2])
def test_ike_version_and_mode(version):
    out = _phase1(fortigate.render(view(ike_version=version)))
    assert f"        set ike-version {version}\n" in out
    assert ("        set mode main\n" in out) == (version == 1)


def test_aggressive_mode():
    out = _phase1(fortigate.render(view(ike_version=1, phase1_negotiation_mode="aggressive")))
    assert "        set mode aggressive\n" in out


def test_lifetimes():
    out = fortigate.render(view(ike={"lifetime_value": 28800}, ipsec={"lifetime_value": 1800}))
    assert "        set keylife 28800\n" in _phase1(out)
    assert "        set keylife-type seconds\n        set keylifeseconds 1800\n" in _phase2(out)
    out = fortigate.render(view(ipsec={"lifetime_units": "kilobytes", "lifetime_value": 10240}))
    assert "        set keylife-type kbs\n        set keylifekbs 10240\n" in _phase2(out)


def test_gateway_selectors_addresses_routes_and_policies():
    out = fortigate.render(view())
    phase1 = _phase1(out)
    for line in ('set interface "wan1"', "set remote-gw 198.51.100.10",
                 'set localid "203.0.113.20"', 'set psksecret "s3cret-psk"',
                 "set peertype any", "set net-device disable"):
        assert f"        {line}\n" in phase1
    phase2 = _phase2(out)
    for line in (f'set phase1name "{NAME}"', "set encapsulation tunnel-mode",
                 "set src-subnet 192.168.20.0 255.255.255.0",
                 "set dst-subnet 10.10.0.0 255.255.255.0"):
        assert f"        {line}\n" in phase2
    assert (f'    edit "{NAME}-local-1"\n        set subnet 192.168.20.0 255.255.255.0\n') in out
    assert (f'    edit "{NAME}-remote-1"\n        set subnet 10.10.0.0 255.255.255.0\n') in out
    assert ("config router static\n    edit 0\n        set dst 10.10.0.0 255.255.255.0\n"
            f'        set device "{NAME}"\n') in out
    assert f'        set srcintf "internal"\n        set dstintf "{NAME}"\n' in out
    assert f'        set srcintf "{NAME}"\n        set dstintf "internal"\n' in out


def test_the_tunnel_name_fits_fortios():
    assert len(NAME) <= 15   # phase1-interface names (and their interfaces) hold 15 characters
    assert f'    edit "{NAME}"\n' in fortigate.render(view())


def test_psk_placeholder_when_the_caller_may_not_read_it():
    out = fortigate.render(view(psk=None))
    assert f'set psksecret "{PSK_PLACEHOLDER}"' in out and "s3cret-psk" not in out


def test_one_phase2_per_subnet_pair():
    out = fortigate.render(view(local_subnets=("192.168.20.0/24", "192.168.21.0/24"),
                                remote_subnets=("10.10.0.0/24", "10.11.0.0/16")))
    phase2 = _phase2(out)
    pairs = [("192.168.20.0", "10.10.0.0 255.255.255.0"), ("192.168.20.0", "10.11.0.0 255.255.0.0"),
             ("192.168.21.0", "10.10.0.0 255.255.255.0"), ("192.168.21.0", "10.11.0.0 255.255.0.0")]
    for number, (local, remote) in enumerate(pairs, start=1):
        assert (f'    edit "{NAME}-{number}"\n' in phase2)
        block = phase2.split(f'    edit "{NAME}-{number}"\n')[1].split("    next\n")[0]
        assert f"set src-subnet {local} 255.255.255.0\n" in block
        assert f"set dst-subnet {remote}\n" in block
    assert f'"{NAME}-5"' not in phase2
    assert f'set member "{NAME}-local-1" "{NAME}-local-2"' in out
    assert "set dst 10.11.0.0 255.255.0.0\n" in out


@pytest.mark.parametrize("field, case", [
    ("ipsecpolicy.transform_protocol", view(transform_protocol="ah")),
    ("ipsecpolicy.encapsulation_mode", view(encapsulation_mode="transport")),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-192-gcm-16"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-gcm-8"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-ctr"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-ccm-16"})),
    ("ikepolicy.encryption_algorithm", view(ike_version=1,
                                            ike={"encryption_algorithm": "aes-128-gcm-16"})),
    ("ikepolicy.auth_algorithm", view(ike={"auth_algorithm": "aes-xcbc"})),
    ("ikepolicy.auth_algorithm", view(ike={"encryption_algorithm": "aes-128-gcm-16",
                                           "auth_algorithm": "aes-cmac"})),
    ("ikepolicy.pfs", view(ike={"pfs": "group22"})),
    ("ipsecpolicy.pfs", view(ipsec={"pfs": "group26"})),
    ("ipsecpolicy.encryption_algorithm", view(ipsec={"encryption_algorithm": "aes-192-gcm-16"})),
    ("ipsecpolicy.auth_algorithm", view(ipsec={"auth_algorithm": "aes-cmac"})),
    ("ikepolicy.lifetime.value", view(ike={"lifetime_value": 172801})),
    ("ikepolicy.lifetime.units", view(ike={"lifetime_units": "kilobytes"})),
    ("ipsecpolicy.lifetime.value", view(ipsec={"lifetime_units": "kilobytes",
                                               "lifetime_value": 100})),
    ("dpd.timeout", view(dpd_interval=10, dpd_timeout=200)),
    ("dpd.interval", view(dpd_interval=61, dpd_timeout=122)),
    ("local_cidrs", view(remote_subnets=("2001:db8:10::/64",))),
    ("external_ip", view(remote_address="2001:db8::10")),
    ("psk", view(psk="0x6b6579")),
    ("psk", view(psk='a"b')),
    ("peer_id", view(local_id="branch office")),
])
def test_refusals_name_the_field(field, case):
    refuses(fortigate.render, field, case)


def test_a_refused_psk_is_not_in_the_message():
    assert "0x6b6579" not in str(refuses(fortigate.render, "psk", view(psk="0x6b6579")))


@pytest.mark.parametrize("case", ["defaults-ikev2", "aes256-sha256-group14", "gcm", "ikev1",
                                  "two-subnets"])
def test_golden(case):
    check_golden("fortigate", case, fortigate.render(CASES[case]), "#")
