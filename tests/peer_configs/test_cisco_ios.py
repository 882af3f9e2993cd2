"""The Cisco IOS XE format: every table entry, every refusal, the PSK placeholder, the goldens."""

from __future__ import annotations

import pytest

from isthmus.peers import PSK_PLACEHOLDER, cisco_ios
from tests.peer_configs.views import CASES, check_golden, refuses, view

# The vocabulary of IOS XE, transcribed from Cisco's YANG model of its CLI
# (Cisco-IOS-XE-crypto.yang, IOS XE 17.12.1): what each command accepts.
IKEV2_ENCRYPTION = {"3des", "des", "aes-cbc-128", "aes-cbc-192", "aes-cbc-256", "aes-gcm-128",
                    "aes-gcm-256"}
IKEV2_HASHES = {"md5", "sha1", "sha256", "sha384", "sha512"}   # integrity and prf alike
IKEV2_GROUPS = {"1", "2", "5", "14", "15", "16", "19", "20", "21", "24"}
ESP_CIPHERS = {"esp-3des", "esp-des", "esp-null", "esp-seal", "esp-gmac",
               *(f"{cipher} {bits}" for cipher in ("esp-aes", "esp-gcm")
                 for bits in (128, 192, 256))}
ESP_HMACS = {"esp-md5-hmac", "esp-sha-hmac", "esp-sha256-hmac", "esp-sha384-hmac",
             "esp-sha512-hmac"}
PFS_GROUPS = {f"group{n}" for n in IKEV2_GROUPS}
DPD_MODES = {"on-demand", "periodic"}

NAME = "isthmus-5a1c7e2"


def test_module_interface():
    assert cisco_ios.FORMAT == "cisco-ios"
    assert "\n" not in cisco_ios.DESCRIPTION and cisco_ios.DESCRIPTION
    assert "{name}" in cisco_ios.FILENAME


def test_tables_use_only_words_ios_accepts():
    assert set(cisco_ios.IKEV2_ENCRYPTION.values()) <= IKEV2_ENCRYPTION
    assert set(cisco_ios.IKEV2_INTEGRITY.values()) <= IKEV2_HASHES
    assert set(cisco_ios.IKEV2_PRF.values()) <= IKEV2_HASHES
    assert set(cisco_ios.DH_GROUPS.values()) <= IKEV2_GROUPS
    assert {v for v in cisco_ios.PFS_GROUPS.values() if v} <= PFS_GROUPS
    assert set(cisco_ios.ESP_ENCRYPTION.values()) <= ESP_CIPHERS
    assert set(cisco_ios.ESP_INTEGRITY.values()) <= ESP_HMACS
    assert {v for v in cisco_ios.DPD_MODES.values() if v} <= DPD_MODES


@pytest.mark.parametrize("api, word", sorted(cisco_ios.IKEV2_ENCRYPTION.items()))
def test_every_ike_encryption_entry_is_written(api, word):
    assert f" encryption {word}\n" in cisco_ios.render(view(ike={"encryption_algorithm": api}))


@pytest.mark.parametrize("api, word", sorted(cisco_ios.IKEV2_INTEGRITY.items()))
def test_every_integrity_entry_is_written(api, word):
    out = cisco_ios.render(view(ike={"auth_algorithm": api}))
    assert f" integrity {word}\n" in out and " prf " not in out


@pytest.mark.parametrize("api, word", sorted(cisco_ios.IKEV2_PRF.items()))
def test_aes_gcm_gets_a_prf_instead_of_integrity(api, word):
    out = cisco_ios.render(view(ike={"encryption_algorithm": "aes-128-gcm-16",
                                     "auth_algorithm": api}))
    assert f" prf {word}\n" in out and " integrity " not in out


@pytest.mark.parametrize("api, word", sorted(cisco_ios.DH_GROUPS.items()))
def test_every_dh_group_is_written(api, word):
    out = cisco_ios.render(view(ike={"pfs": api}, ipsec={"pfs": api}))
    assert f" group {word}\n" in out and f" set pfs group{word}\n" in out


def test_no_pfs_writes_no_set_pfs():
    assert "set pfs" not in cisco_ios.render(view(ipsec={"pfs": ""}))


@pytest.mark.parametrize("api, word", sorted(cisco_ios.ESP_ENCRYPTION.items()))
def test_every_esp_cipher_is_written(api, word):
    out = cisco_ios.render(view(ipsec={"encryption_algorithm": api}))
    hmac = "" if "gcm" in api else " esp-sha256-hmac"
    assert f"crypto ipsec transform-set {NAME} {word}{hmac}\n" in out


@pytest.mark.parametrize("api, word", sorted(cisco_ios.ESP_INTEGRITY.items()))
def test_every_esp_hmac_is_written(api, word):
    out = cisco_ios.render(view(ipsec={"auth_algorithm": api}))
    assert f"crypto ipsec transform-set {NAME} esp-aes 128 {word}\n" in out


@pytest.mark.parametrize("action, mode", [("hold", "on-demand"), ("clear", "periodic"),
                                          ("restart", "periodic"),
                                          ("restart-by-peer", "periodic")])
def test_dpd(action, mode):
    # IOS declares a peer dead after 5 retries: 120 s / 5 = 24 s apart
    assert f" dpd 30 24 {mode}\n" in cisco_ios.render(view(dpd_action=action))


def test_dpd_retry_stays_in_the_range_ios_takes():
    assert " dpd 10 2 periodic\n" in cisco_ios.render(
        view(dpd_action="clear", dpd_interval=10, dpd_timeout=5))
    assert " dpd 30 60 periodic\n" in cisco_ios.render(
        view(dpd_action="clear", dpd_interval=30, dpd_timeout=3600))


def test_dpd_disabled_writes_no_dpd():
    assert " dpd " not in cisco_ios.render(view(dpd_action="disabled"))


def test_lifetimes():
    out = cisco_ios.render(view(ike={"lifetime_value": 28800}, ipsec={"lifetime_value": 1800}))
    assert " lifetime 28800\n" in out
    assert " set security-association lifetime seconds 1800\n" in out
    out = cisco_ios.render(view(ipsec={"lifetime_units": "kilobytes", "lifetime_value": 4608000}))
    assert " set security-association lifetime kilobytes 4608000\n" in out


@pytest.mark.parametrize("identity, kind, written", [
    ("198.51.100.10", "address", "198.51.100.10 255.255.255.255"),
    ("@cloud.example.org", "fqdn", "cloud.example.org"),
    ("cloud.example.org", "fqdn", "cloud.example.org"),
    ("vpn@example.org", "email", "vpn@example.org")])
def test_remote_identity(identity, kind, written):
    out = cisco_ios.render(view(remote_id=identity))
    assert f" match identity remote {kind} {written}\n" in out


def test_local_identity_addresses_acl_tunnel_and_route():
    out = cisco_ios.render(view(local_id="branch.example.org"))
    assert " identity local fqdn branch.example.org\n" in out
    assert " match address local 203.0.113.20\n" in out
    assert "  address 198.51.100.10\n  pre-shared-key s3cret-psk\n" in out
    assert " permit ip 192.168.20.0 0.0.0.255 10.10.0.0 0.0.0.255\n" in out
    assert (" tunnel source 203.0.113.20\n tunnel mode ipsec ipv4\n"
            " tunnel destination 198.51.100.10\n") in out
    assert f" tunnel protection ipsec policy ipv4 {NAME}\n" in out
    assert f" tunnel protection ipsec profile {NAME}\n" in out
    assert out.endswith("ip route 10.10.0.0 255.255.255.0 Tunnel100\n")


def test_psk_placeholder_when_the_caller_may_not_read_it():
    out = cisco_ios.render(view(psk=None))
    assert f"  pre-shared-key {PSK_PLACEHOLDER}\n" in out and "s3cret-psk" not in out


def test_a_refused_psk_is_not_in_the_message():
    error = refuses(cisco_ios.render, "psk", view(psk="has blank"))
    assert "has blank" not in str(error)


@pytest.mark.parametrize("field, case", [
    ("ikepolicy.ike_version", view(ike_version=1)),
    ("ipsecpolicy.transform_protocol", view(transform_protocol="ah")),
    ("ipsecpolicy.encapsulation_mode", view(encapsulation_mode="transport")),
    ("peer_cidrs", view(local_subnets=("192.168.20.0/24", "192.168.21.0/24"))),
    ("local_cidrs", view(remote_subnets=("10.10.0.0/24", "10.11.0.0/24"))),
    ("peer_cidrs", view(local_subnets=("2001:db8:20::/64",))),
    ("peer_address", view(local_address="2001:db8::20")),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-192-gcm-16"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-gcm-8"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-ctr"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-ccm-16"})),
    ("ikepolicy.auth_algorithm", view(ike={"auth_algorithm": "aes-xcbc"})),
    ("ikepolicy.auth_algorithm", view(ike={"auth_algorithm": "aes-cmac"})),
    ("ikepolicy.pfs", view(ike={"pfs": "group31"})),
    ("ikepolicy.pfs", view(ike={"pfs": "group17"})),
    ("ipsecpolicy.pfs", view(ipsec={"pfs": "group22"})),
    ("ipsecpolicy.encryption_algorithm", view(ipsec={"encryption_algorithm": "aes-256-gcm-12"})),
    ("ipsecpolicy.auth_algorithm", view(ipsec={"auth_algorithm": "aes-xcbc"})),
    ("ikepolicy.lifetime.value", view(ike={"lifetime_value": 86401})),
    ("ikepolicy.lifetime.units", view(ike={"lifetime_units": "kilobytes"})),
    ("ipsecpolicy.lifetime.value", view(ipsec={"lifetime_value": 2592001})),
    ("ipsecpolicy.lifetime.value", view(ipsec={"lifetime_units": "kilobytes",
                                               "lifetime_value": 100})),
    ("dpd.interval", view(dpd_interval=5)),
    ("psk", view(psk="what?")),
    ("peer_id", view(local_id="branch office")),
    ("local_id", view(remote_id='cloud"site')),
])
def test_refusals_name_the_field(field, case):
    refuses(cisco_ios.render, field, case)


@pytest.mark.parametrize("case", ["defaults-ikev2", "aes256-sha256-group14", "gcm"])
def test_golden(case):
    check_golden("cisco-ios", case, cisco_ios.render(CASES[case]), "!")


@pytest.mark.parametrize("case, field", [("ikev1", "ikepolicy.ike_version"),
                                         ("two-subnets", "peer_cidrs")])
def test_the_other_representative_cases_are_refused(case, field):
    refuses(cisco_ios.render, field, CASES[case])
