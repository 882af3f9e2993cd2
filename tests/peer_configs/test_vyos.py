"""The VyOS 1.4 format: every table entry, every refusal, the PSK placeholder, the goldens."""

from __future__ import annotations

import pytest

from isthmus.peers import PSK_PLACEHOLDER, vyos
from isthmus.vpn import constants as c
from tests.peer_configs.views import CASES, check_golden, refuses, replaced, view

# The vocabulary of VyOS 1.4 (sagitta), transcribed from vyos-1x's interface
# definitions on the sagitta branch (include/vpn-ipsec-encryption.xml.i,
# include/vpn-ipsec-hash.xml.i, vpn_ipsec.xml.in): what its CLI accepts.
VYOS_ENCRYPTION = {
    "aes128", "aes192", "aes256", "aes128ctr", "aes192ctr", "aes256ctr",
    *(f"aes{bits}{mode}{icv}" for bits in (128, 192, 256) for mode in ("ccm", "gcm")
      for icv in (64, 96, 128)), "3des"}
VYOS_HASH = {"md5", "md5_128", "sha1", "sha1_160", "sha256", "sha256_96", "sha384", "sha512",
             "aesxcbc", "aescmac"}
VYOS_IKE_DH = {str(n) for n in (1, 2, 5, *range(14, 33))}
VYOS_PFS = {"enable", "disable", *(f"dh-group{n}" for n in (1, 2, 5, *range(14, 33)))}
VYOS_DPD_ACTIONS = {"trap", "clear", "restart"}
VYOS_CONNECTION_TYPES = {"initiate", "respond", "none"}
VYOS_CLOSE_ACTIONS = {"none", "trap", "start"}

GROUP = "set vpn ipsec ike-group isthmus-5a1c7e2"
ESP = "set vpn ipsec esp-group isthmus-5a1c7e2"
PEER = "set vpn ipsec site-to-site peer isthmus-5a1c7e2"


def test_module_interface():
    assert vyos.FORMAT == "vyos"
    assert "\n" not in vyos.DESCRIPTION and vyos.DESCRIPTION
    assert "{name}" in vyos.FILENAME


def test_tables_use_only_words_vyos_accepts():
    assert set(vyos.ENCRYPTION.values()) <= VYOS_ENCRYPTION
    assert set(vyos.HASH.values()) <= VYOS_HASH
    assert set(vyos.IKE_DH_GROUPS.values()) <= VYOS_IKE_DH
    assert set(vyos.ESP_PFS.values()) <= VYOS_PFS
    assert {v for v in vyos.DPD_ACTIONS.values() if v} <= VYOS_DPD_ACTIONS
    assert set(vyos.CONNECTION_TYPES.values()) <= VYOS_CONNECTION_TYPES
    assert {v for v in vyos.CLOSE_ACTIONS.values() if v} <= VYOS_CLOSE_ACTIONS


def test_tables_cover_every_api_value():
    # encryption, hash and DH group: VyOS (strongSwan) has a word for each API value
    assert set(vyos.ENCRYPTION) == set(c.ENCRYPTION_ALGORITHMS) | {"3des"}
    assert set(vyos.HASH) == set(c.AUTH_ALGORITHMS) | {"sha1"}
    assert set(vyos.IKE_DH_GROUPS) == set(c.PFS_GROUPS)
    assert set(vyos.ESP_PFS) == set(c.PFS_GROUPS) | {""}
    assert set(vyos.DPD_ACTIONS) == set(c.DPD_ACTIONS)


@pytest.mark.parametrize("api, word", [
    ("aes-128", "aes128"), ("aes-256", "aes256"), ("aes-128-gcm-16", "aes128gcm128"),
    ("aes-256-gcm-8", "aes256gcm64"), ("aes-192-ccm-12", "aes192ccm96"),
    ("aes-128-ctr", "aes128ctr"), ("3des", "3des")])
def test_encryption_names_as_the_reference_spells_them(api, word):
    assert vyos.ENCRYPTION[api] == word


@pytest.mark.parametrize("api, word", sorted(vyos.ENCRYPTION.items()))
def test_every_encryption_entry_is_written(api, word):
    out = vyos.render(view(ike={"encryption_algorithm": api},
                           ipsec={"encryption_algorithm": api}))
    assert f"{GROUP} proposal 1 encryption '{word}'" in out
    assert f"{ESP} proposal 1 encryption '{word}'" in out


@pytest.mark.parametrize("api, word", sorted(vyos.HASH.items()))
def test_every_hash_entry_is_written(api, word):
    out = vyos.render(view(ike={"auth_algorithm": api}, ipsec={"auth_algorithm": api}))
    assert f"{GROUP} proposal 1 hash '{word}'" in out
    assert f"{ESP} proposal 1 hash '{word}'" in out


@pytest.mark.parametrize("api", sorted(c.PFS_GROUPS))
def test_every_dh_group_is_written(api):
    number = api.removeprefix("group")
    out = vyos.render(view(ike={"pfs": api}, ipsec={"pfs": api}))
    assert f"{GROUP} proposal 1 dh-group '{number}'" in out
    assert f"{ESP} pfs 'dh-group{number}'" in out


def test_no_pfs_disables_it():
    assert f"{ESP} pfs 'disable'" in vyos.render(view(ipsec={"pfs": ""}))


@pytest.mark.parametrize("action, word", [("hold", "trap"), ("clear", "clear"),
                                          ("restart", "restart"), ("restart-by-peer", "clear")])
def test_dpd_actions(action, word):
    out = vyos.render(view(dpd_action=action, dpd_interval=15, dpd_timeout=60))
    assert f"{GROUP} dead-peer-detection action '{word}'" in out
    assert f"{GROUP} dead-peer-detection interval '15'" in out
    assert f"{GROUP} dead-peer-detection timeout '60'" in out


def test_dpd_disabled_writes_no_dpd():
    assert "dead-peer-detection" not in vyos.render(view(dpd_action="disabled"))


@pytest.mark.parametrize("initiates, word", [(True, "respond"), (False, "initiate")])
def test_connection_type_is_the_other_role(initiates, word):
    assert f"{PEER} connection-type '{word}'" in vyos.render(view(isthmus_initiates=initiates))


def test_the_initiating_side_recreates_what_the_other_closes():
    assert f"{GROUP} close-action 'start'" in vyos.render(view(isthmus_initiates=False))
    assert "close-action" not in vyos.render(view(isthmus_initiates=True))


@pytest.mark.parametrize("version, word", [(1, "ikev1"), (2, "ikev2")])
def test_key_exchange(version, word):
    assert f"{GROUP} key-exchange '{word}'" in vyos.render(view(ike_version=version))


def test_phase1_mode_only_with_ikev1():
    assert f"{GROUP} mode 'main'" in vyos.render(view(ike_version=1))
    assert f"{GROUP} mode" not in vyos.render(view(ike_version=2))
    aggressive = view(ike_version=1, phase1_negotiation_mode="aggressive",
                      isthmus_initiates=False)
    assert f"{GROUP} mode 'aggressive'" in vyos.render(aggressive)


def test_esp_mode():
    assert f"{ESP} mode 'tunnel'" in vyos.render(view(encapsulation_mode="tunnel"))


def test_lifetimes_in_seconds_and_kilobytes():
    out = vyos.render(view(ike={"lifetime_value": 28800}, ipsec={"lifetime_value": 1800}))
    assert f"{GROUP} lifetime '28800'" in out and f"{ESP} lifetime '1800'" in out
    out = vyos.render(view(ipsec={"lifetime_units": "kilobytes", "lifetime_value": 10240}))
    assert f"{ESP} life-bytes '10485760'" in out and f"{ESP} lifetime" not in out


def test_identities_addresses_and_psk():
    out = vyos.render(view(local_id="@branch.example", remote_id="cloud@example.org"))
    assert f"{PEER} authentication local-id '@branch.example'" in out
    assert f"{PEER} authentication remote-id 'cloud@example.org'" in out
    assert "set vpn ipsec authentication psk isthmus-5a1c7e2 secret 's3cret-psk'" in out
    assert f"{PEER} local-address '203.0.113.20'" in out
    assert f"{PEER} remote-address '198.51.100.10'" in out


def test_psk_placeholder_when_the_caller_may_not_read_it():
    out = vyos.render(view(psk=None))
    assert f"secret '{PSK_PLACEHOLDER}'" in out and "s3cret-psk" not in out


def test_a_quote_in_the_psk_stays_inside_the_word():
    assert "secret 'it'\\''s'" in vyos.render(view(psk="it's"))


def test_one_tunnel_per_subnet_pair():
    out = vyos.render(view(local_subnets=("192.168.20.0/24", "192.168.21.0/24"),
                           remote_subnets=("10.10.0.0/24", "10.11.0.0/24")))
    pairs = [("192.168.20.0/24", "10.10.0.0/24"), ("192.168.20.0/24", "10.11.0.0/24"),
             ("192.168.21.0/24", "10.10.0.0/24"), ("192.168.21.0/24", "10.11.0.0/24")]
    for number, (local, remote) in enumerate(pairs, start=1):
        assert f"{PEER} tunnel {number} local prefix '{local}'" in out
        assert f"{PEER} tunnel {number} remote prefix '{remote}'" in out
    assert f"{PEER} tunnel 5 " not in out


@pytest.mark.parametrize("field, case", [
    ("ipsecpolicy.transform_protocol", view(transform_protocol="ah")),
    ("ipsecpolicy.transform_protocol", view(transform_protocol="ah-esp")),
    ("ipsecpolicy.encapsulation_mode", view(encapsulation_mode="transport")),
    ("ikepolicy.encryption_algorithm", view(ike_version=1,
                                            ike={"encryption_algorithm": "aes-128-gcm-16"})),
    ("ikepolicy.encryption_algorithm", view(ike_version=1,
                                            ike={"encryption_algorithm": "aes-256-ctr"})),
    ("ikepolicy.auth_algorithm", view(ike_version=1, ike={"auth_algorithm": "aes-xcbc"})),
    ("ipsecpolicy.auth_algorithm", view(ike_version=1, ipsec={"auth_algorithm": "aes-cmac"})),
    ("ikepolicy.phase1_negotiation_mode", view(ike_version=1,
                                               phase1_negotiation_mode="aggressive")),
    ("ikepolicy.lifetime.value", view(ike={"lifetime_value": 86401})),
    ("ikepolicy.lifetime.units", view(ike={"lifetime_units": "kilobytes"})),
    ("ipsecpolicy.lifetime.value", view(ipsec={"lifetime_value": 90000})),
    ("ikepolicy.pfs", view(ike={"pfs": ""})),
    ("dpd.interval", view(dpd_interval=1)),
    ("dpd.timeout", view(dpd_timeout=100000)),
])
def test_refusals_name_the_field(field, case):
    refuses(vyos.render, field, case)


def test_ikev1_with_aead_esp_ignores_the_unused_hash():
    # AES-GCM authenticates itself: an AES-CMAC auth_algorithm is never negotiated
    out = vyos.render(view(ike_version=1, ipsec={"encryption_algorithm": "aes-128-gcm-16",
                                                 "auth_algorithm": "aes-cmac"}))
    assert f"{ESP} proposal 1 encryption 'aes128gcm128'" in out


@pytest.mark.parametrize("case", ["defaults-ikev2", "aes256-sha256-group14", "gcm", "ikev1",
                                  "two-subnets"])
def test_golden(case):
    check_golden("vyos", case, vyos.render(CASES[case]), "#")


def test_golden_check_fails_on_a_difference():
    with pytest.raises(AssertionError):
        check_golden("vyos", "defaults-ikev2", vyos.render(replaced(CASES["defaults-ikev2"],
                                                                    psk="other")), "#",
                      regenerate=False)
