"""Peer configurations downloaded from the API work on the peer they are for (root).

Isthmus builds router a through the API; router b is a peer Isthmus did not
build, configured only with what ``GET .../peer-config`` answered a project
member over HTTP, untouched: a plain strongSwan loads the ``strongswan``
download (swanctl.conf; the daemon's strongswan.conf is the test's, with
kernel-libipsec) and carries pings both ways, for several policy combinations
and with Isthmus response-only (the peer must initiate); libreswan's pluto
loads the ``libreswan`` download and establishes the IKE SA with the proposals
the policies say (this kernel has no ESP, so pluto installs no CHILD_SA).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from isthmus.demo.sites import LAN, Sites
from tests.peers.libreswan import Pluto
from tests.peers.strongswan import PlainStrongSwan
from tests.peers.test_diagnosis import shown, site_a
from tests.peers.test_peers import HB, eventually

pytestmark = pytest.mark.e2e

HA = f"{LAN['a']}.2"
SECRETS_HEADER = "\n# ipsec.secrets"   # where the libreswan download's second file starts


def policies(sdk, ike: dict[str, Any], ipsec: dict[str, Any]) -> dict[str, str]:
    """An IKE and an IPsec policy with these attributes (API defaults for the rest)."""
    net = sdk.network
    return {"ikepolicy_id": net.create_vpn_ike_policy(name="ike-case", **ike).id,
            "ipsecpolicy_id": net.create_vpn_ipsec_policy(name="ipsec-case", **ipsec).id}


def download(isthmus, sdk, conn_id: str, fmt: str) -> str:
    """The peer configuration as a member of the connection's project downloads it."""
    project = shown(sdk, conn_id)["project_id"]
    with httpx.Client(base_url=isthmus.api.url, timeout=30, headers={
            "X-Project-Id": project, "X-User-Id": "peer-admin",
            "X-Roles": "member,reader"}) as client:
        response = client.get(f"/v2.0/vpn/ipsec-site-connections/{conn_id}/peer-config",
                              params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return response.text


def pings_both_ways(sites: Sites) -> bool:
    return sites.ping("ha", HB, count=1) and sites.ping("hb", HA, count=1)


# (IKE policy, IPsec policy, connection) -> what the peer's IKE_SA and CHILD_SA negotiated:
# (IKE encryption, key size, DH group), (ESP encryption, key size)
STRONGSWAN_CASES = {
    # API defaults: IKEv1 main mode, AES-128, SHA-256, group 5; ESP the same
    "api-defaults": ({}, {}, {}, ("AES_CBC", "128", "MODP_1536"), ("AES_CBC", "128")),
    "ikev2-aes256-sha256-group14-esp-aes128gcm16": (
        {"ike_version": "v2", "encryption_algorithm": "aes-256", "auth_algorithm": "sha256",
         "pfs": "group14"},
        {"encryption_algorithm": "aes-128-gcm-16", "pfs": "group14"}, {},
        ("AES_CBC", "256", "MODP_2048"), ("AES_GCM_16", "128")),
    "isthmus-response-only-ikev2-aes256ctr-sha384-group20": (
        {"ike_version": "v2", "encryption_algorithm": "aes-256-ctr",
         "auth_algorithm": "sha384", "pfs": "group20"},
        {"encryption_algorithm": "aes-256", "auth_algorithm": "sha512", "pfs": "group20"},
        {"initiator": "response-only"}, ("AES_CTR", "256", "ECP_384"), ("AES_CBC", "256")),
}


@pytest.mark.parametrize("case", STRONGSWAN_CASES)
def test_downloaded_swanctl_conf_carries_pings(isthmus, sdk, sites, case):
    ike, ipsec, conn, ike_sa, child_sa = STRONGSWAN_CASES[case]
    conn_id = site_a(sdk, sites, **policies(sdk, ike, ipsec), **conn)
    text = download(isthmus, sdk, conn_id, "strongswan")
    peer = PlainStrongSwan(sites.ns("rb"), [], swanctl_text=text)
    try:
        peer.start()
        eventually(lambda: shown(sdk, conn_id)["status"] == "ACTIVE", timeout_s=60,
                   what=f"ACTIVE with the downloaded swanctl.conf ({case})")
        eventually(lambda: pings_both_ways(sites), timeout_s=30,
                   what="pings from host a to host b and back")
        [sa] = peer.sas().values()
        assert (sa["encr-alg"], sa["encr-keysize"], sa["dh-group"]) == ike_sa, sa
        [child] = sa["child-sas"].values()
        assert (child["encr-alg"], child["encr-keysize"]) == child_sa, child
        if conn.get("initiator") == "response-only":
            assert sa["initiator"] == "yes", "the peer must have started the IKE SA"
        detail = shown(sdk, conn_id)["isthmus:status_detail"]
        assert detail["ike"]["version"] == (2 if ike.get("ike_version") == "v2" else 1)
    except BaseException:
        print(peer.log()[-4000:])
        raise
    finally:
        peer.stop()


# (IKE policy, IPsec policy) -> the IKE SA in Isthmus's status detail, and in pluto's log
PLUTO_CASES = {
    "ikev2-aes128-sha256-group14": (
        {"ike_version": "v2", "pfs": "group14"}, {"pfs": "group14"},
        ("AES_CBC-128", "HMAC_SHA2_256_128", "MODP_2048"),
        "cipher=AES_CBC_128 integ=HMAC_SHA2_256_128 prf=HMAC_SHA2_256 group=MODP2048"),
    "ikev2-aes256gcm16-sha384-group20": (
        {"ike_version": "v2", "encryption_algorithm": "aes-256-gcm-16",
         "auth_algorithm": "sha384", "pfs": "group20"},
        {"encryption_algorithm": "aes-256-gcm-16", "pfs": "group20"},
        ("AES_GCM_16-256", None, "ECP_384"),
        "cipher=AES_GCM_16_256 integ=n/a prf=HMAC_SHA2_384 group=DH20"),
}


@pytest.mark.parametrize("case", PLUTO_CASES)
def test_downloaded_libreswan_conf_establishes_ike(isthmus, sdk, sites, pluto_available, case):
    ike, ipsec, (encryption, integrity, group), pluto_saw = PLUTO_CASES[case]
    conn_id = site_a(sdk, sites, **policies(sdk, ike, ipsec))
    text = download(isthmus, sdk, conn_id, "libreswan")
    conf, marker, secrets = text.partition(SECRETS_HEADER)
    assert marker, "the download has its ipsec.secrets part"
    peer = Pluto(sites.ns("rb"), [], conf_text=conf, secrets_text=marker.lstrip("\n") + secrets)
    try:
        peer.start()
        eventually(peer.ike_established, timeout_s=60, what=f"pluto's IKE SA ({case})")

        def established_ike():
            found = (shown(sdk, conn_id)["isthmus:status_detail"] or {}).get("ike") or {}
            return found if found.get("state") == "ESTABLISHED" else None
        negotiated = eventually(established_ike, timeout_s=30,
                                what="Isthmus's IKE SA ESTABLISHED in the detail")
        assert (negotiated["encryption"], negotiated.get("integrity"),
                negotiated["dh_group"]) == (encryption, integrity, group), negotiated
        assert negotiated["version"] == 2
        assert f"sent IKE_SA_INIT reply {{{pluto_saw}}}" in peer.log()   # pluto's own words
    except BaseException:
        print(peer.log()[-4000:])
        raise
    finally:
        peer.stop()
