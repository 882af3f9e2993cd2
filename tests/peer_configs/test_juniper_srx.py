"""The Junos SRX format: every table entry, every refusal, the PSK placeholder, the goldens."""

from __future__ import annotations

import pytest

from isthmus.peers import PSK_PLACEHOLDER, juniper_srx
from tests.peer_configs.views import CASES, check_golden, refuses, view

# The vocabulary of Junos, transcribed from Juniper's CLI reference pages
# ("proposal (Security IKE)", 06-Sep-24; the [edit security ipsec] hierarchy) and
# the statement ranges tested by the junos Terraform provider.
IKE_ENCRYPTION = {"3des-cbc", "aes-128-cbc", "aes-128-gcm", "aes-192-cbc", "aes-256-cbc",
                  "aes-256-gcm", "chacha20-poly1305", "des-cbc"}
IKE_AUTHENTICATION = {"md5", "sha-256", "sha-384", "sha1", "sha-512"}
DH_GROUPS = {"group1", "group14", "group19", "group2", "group20", "group24", "group5",
             "group15", "group16", "group21"}
IPSEC_ENCRYPTION = {"3des-cbc", "aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "des-cbc",
                    "aes-128-gcm", "aes-192-gcm", "aes-256-gcm"}
IPSEC_AUTHENTICATION = {"hmac-md5-96", "hmac-sha-256-128", "hmac-sha1-96"}
PROTOCOLS = {"ah", "esp"}
VERSIONS = {"v1-only", "v2-only"}
DPD_MODES = {"always-send", "optimized", "probe-idle-tunnel"}
ESTABLISH = {"immediately", "on-traffic"}

PROPOSAL = "set security ike proposal isthmus-5a1c7e2"
POLICY = "set security ike policy isthmus-5a1c7e2"
GATEWAY = "set security ike gateway isthmus-5a1c7e2"
IPSEC = "set security ipsec proposal isthmus-5a1c7e2"
IPSEC_POLICY = "set security ipsec policy isthmus-5a1c7e2"
VPN = "set security ipsec vpn isthmus-5a1c7e2"


def test_module_interface():
    assert juniper_srx.FORMAT == "juniper-srx"
    assert "\n" not in juniper_srx.DESCRIPTION and juniper_srx.DESCRIPTION
    assert "{name}" in juniper_srx.FILENAME


def test_tables_use_only_words_junos_accepts():
    assert set(juniper_srx.IKE_ENCRYPTION.values()) <= IKE_ENCRYPTION
    assert set(juniper_srx.IKE_AUTHENTICATION.values()) <= IKE_AUTHENTICATION
    assert set(juniper_srx.DH_GROUPS.values()) <= DH_GROUPS
    assert set(juniper_srx.IPSEC_ENCRYPTION.values()) <= IPSEC_ENCRYPTION
    assert set(juniper_srx.IPSEC_AUTHENTICATION.values()) <= IPSEC_AUTHENTICATION
    assert set(juniper_srx.PROTOCOLS.values()) <= PROTOCOLS
    assert set(juniper_srx.IKE_VERSIONS.values()) <= VERSIONS
    assert {v for v in juniper_srx.DPD_MODES.values() if v} <= DPD_MODES
    assert set(juniper_srx.ESTABLISH_TUNNELS.values()) <= ESTABLISH


@pytest.mark.parametrize("api, word", sorted(juniper_srx.IKE_ENCRYPTION.items()))
def test_every_ike_encryption_entry_is_written(api, word):
    auth = juniper_srx.GCM_IKE_PRF.get(api, "sha256")
    out = juniper_srx.render(view(ike={"encryption_algorithm": api, "auth_algorithm": auth}))
    assert f"{PROPOSAL} encryption-algorithm {word}\n" in out


@pytest.mark.parametrize("api, word", sorted(juniper_srx.IKE_AUTHENTICATION.items()))
def test_every_ike_authentication_entry_is_written(api, word):
    out = juniper_srx.render(view(ike={"auth_algorithm": api}))
    assert f"{PROPOSAL} authentication-algorithm {word}\n" in out


@pytest.mark.parametrize("api, prf", sorted(juniper_srx.GCM_IKE_PRF.items()))
def test_gcm_ike_takes_no_authentication_algorithm(api, prf):
    out = juniper_srx.render(view(ike={"encryption_algorithm": api, "auth_algorithm": prf}))
    assert f"{PROPOSAL} authentication-algorithm" not in out


@pytest.mark.parametrize("api, word", sorted(juniper_srx.DH_GROUPS.items()))
def test_every_dh_group_is_written(api, word):
    out = juniper_srx.render(view(ike={"pfs": api}, ipsec={"pfs": api}))
    assert f"{PROPOSAL} dh-group {word}\n" in out
    assert f"{IPSEC_POLICY} perfect-forward-secrecy keys {word}\n" in out


def test_no_pfs_writes_no_pfs():
    assert "perfect-forward-secrecy" not in juniper_srx.render(view(ipsec={"pfs": ""}))


@pytest.mark.parametrize("api, word", sorted(juniper_srx.IPSEC_ENCRYPTION.items()))
def test_every_ipsec_encryption_entry_is_written(api, word):
    out = juniper_srx.render(view(ipsec={"encryption_algorithm": api}))
    assert f"{IPSEC} encryption-algorithm {word}\n" in out
    assert (f"{IPSEC} authentication-algorithm" in out) == ("gcm" not in api)


@pytest.mark.parametrize("api, word", sorted(juniper_srx.IPSEC_AUTHENTICATION.items()))
def test_every_ipsec_authentication_entry_is_written(api, word):
    out = juniper_srx.render(view(ipsec={"auth_algorithm": api}))
    assert f"{IPSEC} authentication-algorithm {word}\n" in out


def test_ah_authenticates_without_encryption():
    out = juniper_srx.render(view(transform_protocol="ah"))
    assert f"{IPSEC} protocol ah\n" in out
    assert f"{IPSEC} authentication-algorithm hmac-sha-256-128\n" in out
    assert f"{IPSEC} encryption-algorithm" not in out


@pytest.mark.parametrize("version, word", [(1, "v1-only"), (2, "v2-only")])
def test_ike_version(version, word):
    assert f"{GATEWAY} version {word}\n" in juniper_srx.render(view(ike_version=version))


def test_phase1_mode_only_with_ikev1():
    assert f"{POLICY} mode main\n" in juniper_srx.render(view(ike_version=1))
    assert f"{POLICY} mode aggressive\n" in juniper_srx.render(
        view(ike_version=1, phase1_negotiation_mode="aggressive"))
    assert f"{POLICY} mode" not in juniper_srx.render(view())


@pytest.mark.parametrize("action, mode", [("hold", "optimized"), ("clear", "probe-idle-tunnel"),
                                          ("restart", "probe-idle-tunnel"),
                                          ("restart-by-peer", "probe-idle-tunnel")])
def test_dpd(action, mode):
    out = juniper_srx.render(view(dpd_action=action, dpd_interval=20, dpd_timeout=90))
    assert f"{GATEWAY} dead-peer-detection {mode}\n" in out
    assert f"{GATEWAY} dead-peer-detection interval 20\n" in out
    assert f"{GATEWAY} dead-peer-detection threshold 5\n" in out   # 90 / 20 rounded up


def test_dpd_disabled_writes_no_dpd():
    assert "dead-peer-detection" not in juniper_srx.render(view(dpd_action="disabled"))


@pytest.mark.parametrize("initiates, word", [(True, "on-traffic"), (False, "immediately")])
def test_establish_tunnels(initiates, word):
    out = juniper_srx.render(view(isthmus_initiates=initiates))
    assert f"{VPN} establish-tunnels {word}\n" in out


def test_lifetimes():
    out = juniper_srx.render(view(ike={"lifetime_value": 28800}, ipsec={"lifetime_value": 1800}))
    assert f"{PROPOSAL} lifetime-seconds 28800\n" in out
    assert f"{IPSEC} lifetime-seconds 1800\n" in out
    out = juniper_srx.render(view(ipsec={"lifetime_units": "kilobytes", "lifetime_value": 1000}))
    assert f"{IPSEC} lifetime-kilobytes 1000\n" in out


@pytest.mark.parametrize("identity, written", [
    ("198.51.100.10", "inet 198.51.100.10"), ("@cloud.example.org", "hostname cloud.example.org"),
    ("vpn@example.org", 'user-at-hostname "vpn@example.org"')])
def test_remote_identity(identity, written):
    assert f"{GATEWAY} remote-identity {written}\n" in juniper_srx.render(view(remote_id=identity))


def test_gateway_vpn_interface_zone_and_route():
    out = juniper_srx.render(view())
    for line in (f"{GATEWAY} address 198.51.100.10", f"{GATEWAY} local-address 203.0.113.20",
                 f"{GATEWAY} external-interface ge-0/0/0.0",
                 f"{GATEWAY} local-identity inet 203.0.113.20",
                 f'{POLICY} pre-shared-key ascii-text "s3cret-psk"',
                 f"{VPN} bind-interface st0.100", f"{VPN} ike gateway isthmus-5a1c7e2",
                 f"{VPN} ike ipsec-policy isthmus-5a1c7e2",
                 "set interfaces st0 unit 100 family inet",
                 "set security zones security-zone vpn interfaces st0.100",
                 "set routing-options static route 10.10.0.0/24 next-hop st0.100"):
        assert line + "\n" in out


def test_psk_placeholder_when_the_caller_may_not_read_it():
    out = juniper_srx.render(view(psk=None))
    assert f'pre-shared-key ascii-text "{PSK_PLACEHOLDER}"' in out and "s3cret-psk" not in out


def test_one_traffic_selector_per_subnet_pair_and_a_route_per_isthmus_subnet():
    out = juniper_srx.render(view(ike_version=1,
                                  local_subnets=("192.168.20.0/24", "192.168.21.0/24"),
                                  remote_subnets=("10.10.0.0/24", "10.11.0.0/24")))
    pairs = [("192.168.20.0/24", "10.10.0.0/24"), ("192.168.20.0/24", "10.11.0.0/24"),
             ("192.168.21.0/24", "10.10.0.0/24"), ("192.168.21.0/24", "10.11.0.0/24")]
    for number, (local, remote) in enumerate(pairs, start=1):
        assert f"{VPN} traffic-selector ts{number} local-ip {local}\n" in out
        assert f"{VPN} traffic-selector ts{number} remote-ip {remote}\n" in out
    assert "ts5" not in out
    assert "static route 10.11.0.0/24 next-hop st0.100\n" in out


@pytest.mark.parametrize("field, case", [
    ("ipsecpolicy.encapsulation_mode", view(encapsulation_mode="transport")),
    ("ipsecpolicy.transform_protocol", view(transform_protocol="ah-esp")),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-192-gcm-16"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-gcm-12"})),
    ("ikepolicy.encryption_algorithm", view(ike={"encryption_algorithm": "aes-128-ctr"})),
    ("ikepolicy.encryption_algorithm", view(ike_version=1,
                                            ike={"encryption_algorithm": "aes-128-gcm-16"})),
    ("ikepolicy.auth_algorithm", view(ike={"encryption_algorithm": "aes-256-gcm-16",
                                           "auth_algorithm": "sha256"})),
    ("ikepolicy.auth_algorithm", view(ike={"auth_algorithm": "aes-xcbc"})),
    ("ikepolicy.pfs", view(ike={"pfs": "group31"})),
    ("ipsecpolicy.pfs", view(ipsec={"pfs": "group18"})),
    ("ipsecpolicy.encryption_algorithm", view(ipsec={"encryption_algorithm": "aes-128-ccm-16"})),
    ("ipsecpolicy.auth_algorithm", view(ipsec={"auth_algorithm": "sha384"})),
    ("ipsecpolicy.auth_algorithm", view(ipsec={"auth_algorithm": "aes-cmac"})),
    ("ikepolicy.lifetime.value", view(ike={"lifetime_value": 120})),
    ("ikepolicy.lifetime.units", view(ike={"lifetime_units": "kilobytes"})),
    ("ipsecpolicy.lifetime.value", view(ipsec={"lifetime_value": 90000})),
    ("dpd.interval", view(dpd_interval=5)),
    ("dpd.timeout", view(dpd_interval=10, dpd_timeout=120)),
    ("peer_cidrs", view(local_subnets=("2001:db8:20::/64",))),
    ("psk", view(psk='with"quote')),
    ("peer_cidrs", view(local_subnets=("192.168.20.0/24", "192.168.21.0/24"))),
    ("local_cidrs", view(remote_subnets=("10.10.0.0/24", "10.11.0.0/24"))),
    ("peer_id", view(local_id="branch office")),
    ("local_id", view(remote_id='cloud"site')),
])
def test_refusals_name_the_field(field, case):
    refuses(juniper_srx.render, field, case)


@pytest.mark.parametrize("case", ["defaults-ikev2", "aes256-sha256-group14", "gcm", "ikev1",
                                  "two-subnets-ikev1"])
def test_golden(case):
    check_golden("juniper-srx", case, juniper_srx.render(CASES[case]), "#")


def test_two_subnets_with_ikev2_is_refused():
    refuses(juniper_srx.render, "peer_cidrs", CASES["two-subnets"])
