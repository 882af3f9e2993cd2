"""Isthmus says why, against peers it did not write (root): libreswan's pluto and a
strongSwan configured by hand, in router b's namespace; Isthmus runs router a.

Each case breaks something on the peer's side only and reads the reason code and
message from the API (``isthmus:status_detail``), as a user would. pluto negotiates
IKE here but cannot install SAs (no ESP in this kernel), so it covers the IKE-level
cases; the plain strongSwan covers the data plane (one-way traffic, a peer that dies
and comes back, seen on the live event stream). How fast the reasons arrive is
measured by benchmarks/diagnosis.py, not asserted here.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from isthmus.demo.sites import LAN, WAN, Sites
from tests.peers.conftest import ONE_WAY_AFTER_S
from tests.peers.libreswan import Pluto
from tests.peers.strongswan import PlainStrongSwan
from tests.peers.test_peers import HB, PSK, eventually, pluto_conn, swan_conn

pytestmark = pytest.mark.e2e

OUR_IKE = "aes128-sha256-modp2048"


def site_a(sdk, sites: Sites, **conn: Any) -> str:
    """Router a through the API, with one connection to router b; its id."""
    net = sdk.network
    public = net.create_network(name="wan", is_router_external=True)
    pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                   cidr="198.51.100.0/24", gateway_ip=None)
    lan_net = net.create_network(name="lan-a")
    lan = net.create_subnet(network_id=lan_net.id, ip_version=4, cidr=f"{LAN['a']}.0/24",
                            gateway_ip=f"{LAN['a']}.1")
    router = net.create_router(name="router-a", external_gateway_info={
        "network_id": public.id,
        "external_fixed_ips": [{"subnet_id": pub_subnet.id, "ip_address": WAN["a"]}]})
    response = net.put(f"/routers/{router.id}",
                       json={"router": {"isthmus:namespace": sites.ns("ra")}})
    assert response.status_code == 200, response.text
    net.add_interface_to_router(router, subnet=lan.id)
    local = net.create_vpn_endpoint_group(type="subnet", endpoints=[lan.id])
    peer = net.create_vpn_endpoint_group(type="cidr", endpoints=[f"{LAN['b']}.0/24"])
    service = net.create_vpn_service(router_id=router.id, name="vpn-a")
    ike = net.create_vpn_ike_policy(name="ike", ike_version="v2",
                                    encryption_algorithm="aes-128", pfs="group14")
    ipsec = net.create_vpn_ipsec_policy(name="ipsec", encryption_algorithm="aes-128",
                                        pfs="group14")
    created = net.create_vpn_ipsec_site_connection(**{
        "name": "a-to-b", "vpnservice_id": service.id, "ikepolicy_id": ike.id,
        "ipsecpolicy_id": ipsec.id, "psk": PSK, "local_ep_group_id": local.id,
        "peer_ep_group_id": peer.id, "peer_address": WAN["b"], "peer_id": "@b.example",
        "local_id": "@a.example", "dpd": {"action": "restart", "interval": 2, "timeout": 10},
        **conn})
    return created.id


def shown(sdk, conn_id: str) -> dict:
    return sdk.network.get(f"/vpn/ipsec-site-connections/{conn_id}").json()[
        "ipsec_site_connection"]


def reason_becomes(sdk, conn_id: str, code: str, timeout_s: float = 30) -> dict:
    """The connection's status detail once its reason is ``code``."""
    def check():
        detail = shown(sdk, conn_id)["isthmus:status_detail"] or {}
        return detail if detail.get("reason") == code else None
    try:
        return eventually(check, timeout_s=timeout_s, what=f"reason {code}")
    except AssertionError:
        raise AssertionError(f"reason {code} never came: {shown(sdk, conn_id)}") from None


@pytest.fixture
def pluto(sites, pluto_available):
    started: list[Pluto] = []

    def start(**conn: Any) -> Pluto:
        peer = Pluto(sites.ns("rb"), [pluto_conn(**conn)])
        started.append(peer)
        peer.start()
        return peer
    yield start
    for peer in started:
        peer.stop()


@pytest.fixture
def strongswan_peer(sites):
    started: list[PlainStrongSwan] = []

    def start(**conn: Any) -> PlainStrongSwan:
        peer = PlainStrongSwan(sites.ns("rb"), [swan_conn("b", "a", **conn)])
        started.append(peer)
        peer.start()
        return peer
    yield start
    for peer in started:
        peer.stop()


# -- libreswan: the IKE-level cases ------------------------------------------------------

def test_matching_proposals_ike_up_child_refused_by_the_peers_kernel(isthmus, sdk, sites,
                                                                     pluto):
    peer = pluto()
    conn_id = site_a(sdk, sites)
    detail = reason_becomes(sdk, conn_id, "traffic_selectors_unacceptable")
    assert "TS_UNACCEPTABLE" in detail["message"] and "libreswan" in detail["message"]
    eventually(peer.ike_established, what="pluto's IKE SA")
    assert "Protocol not supported" in peer.log()   # what pluto says of its own failure
    # The IKE SA is up, with what was negotiated.
    def established_ike():
        ike = (shown(sdk, conn_id)["isthmus:status_detail"] or {}).get("ike") or {}
        return ike if ike.get("state") == "ESTABLISHED" else None
    detail = eventually(established_ike, what="the IKE SA ESTABLISHED in the detail")
    assert detail["version"] == 2
    assert (detail["encryption"], detail["integrity"], detail["dh_group"]) == (
        "AES_CBC-128", "HMAC_SHA2_256_128", "MODP_2048")
    assert detail["local_spi"] and detail["remote_spi"] and detail["established_at"]
    assert shown(sdk, conn_id)["status"] == "DOWN"


def test_ike_proposal_mismatch(isthmus, sdk, sites, pluto):
    pluto(ike="aes256-sha2_512-modp4096")
    conn_id = site_a(sdk, sites)
    detail = reason_becomes(sdk, conn_id, "ike_proposal_mismatch")
    assert OUR_IKE in detail["message"] and "NO_PROPOSAL_CHOSEN" in detail["message"]
    assert detail["last_failure"]["reason"] == "ike_proposal_mismatch"


def test_esp_only_mismatch(isthmus, sdk, sites, pluto):
    pluto(esp="aes256-sha2_512")
    conn_id = site_a(sdk, sites)
    detail = reason_becomes(sdk, conn_id, "esp_proposal_mismatch")
    assert "ESP" in detail["message"] and "aes128" in detail["message"]


def test_wrong_psk(isthmus, sdk, sites, pluto):
    pluto(psk="not-the-same-secret")
    conn_id = site_a(sdk, sites)
    detail = reason_becomes(sdk, conn_id, "authentication_failed")
    assert "PSK" in detail["message"]
    assert PSK not in json.dumps(detail) and "not-the-same-secret" not in json.dumps(detail)


def test_identity_mismatch(isthmus, sdk, sites, pluto):
    pluto(rightid="@someone-else.example")   # pluto expects another id for us
    conn_id = site_a(sdk, sites)
    detail = reason_becomes(sdk, conn_id, "authentication_failed")
    assert "@a.example" in detail["message"] and "@b.example" in detail["message"]


def test_peer_stopped_is_a_dead_peer(isthmus, sdk, sites, pluto):
    peer = pluto()
    conn_id = site_a(sdk, sites)
    reason_becomes(sdk, conn_id, "traffic_selectors_unacceptable")
    eventually(lambda: (shown(sdk, conn_id)["isthmus:status_detail"] or {}).get("ike"),
               what="the IKE SA up")
    peer.kill()   # SIGKILL: no Delete, the IKE SA's DPD finds out
    detail = reason_becomes(sdk, conn_id, "dead_peer", timeout_s=60)
    assert "retransmits" in detail["message"]


# -- a strongSwan configured by hand: the data plane ---------------------------------

def read_events(response: httpx.Response, seen: list, stop: threading.Event) -> None:
    for line in response.iter_lines():
        if line.startswith("data: "):
            seen.append(json.loads(line[6:]))
        if stop.is_set():
            return


def test_one_way_traffic_then_a_dead_peer_and_back_on_the_stream(isthmus, sdk, sites,
                                                                    strongswan_peer):
    peer = strongswan_peer(dpd_delay=2)
    conn_id = site_a(sdk, sites)
    eventually(lambda: shown(sdk, conn_id)["status"] == "ACTIVE", timeout_s=60,
               what="ACTIVE with a strongSwan peer")
    detail = shown(sdk, conn_id)["isthmus:status_detail"]
    assert detail["reason"] is None and detail["child"]["state"] == "INSTALLED"
    assert detail["child"]["encryption"] == "AES_CBC-128" and detail["child"]["local_spi"]
    seen: list[dict] = []
    stop = threading.Event()
    with httpx.Client(base_url=isthmus.api.url, timeout=None,
                      headers={"X-Project-Id": "adminproj", "X-Roles": "admin"}) as client, \
            client.stream("GET", "/v2.0/vpn/events",
                          params={"stream": "true", "resource_id": conn_id}) as response:
        reader = threading.Thread(target=read_events, args=(response, seen, stop),
                                  daemon=True)
        reader.start()
        # One-way: the peer drops our ESP; pings keep leaving, nothing comes back.
        peer.drop_inbound_esp()
        pinger = sites_ping_forever(sites)
        try:
            detail = reason_becomes(sdk, conn_id, "one_way_traffic")
        finally:
            pinger.set()
        assert shown(sdk, conn_id)["status"] == "ACTIVE"   # the SAs exist: a warning
        assert detail["warnings"][0]["reason"] == "one_way_traffic"
        assert f"{ONE_WAY_AFTER_S:g} s" in detail["message"]
        peer.allow_inbound_esp()
        eventually(lambda: sites.ping("ha", HB, count=1), what="pings again")
        eventually(lambda: (shown(sdk, conn_id)["isthmus:status_detail"] or {}).get(
            "reason") is None, what="the warning gone")
        # The peer dies without a word, then comes back.
        peer.kill()
        reason_becomes(sdk, conn_id, "dead_peer", timeout_s=60)
        eventually(lambda: shown(sdk, conn_id)["status"] == "DOWN", what="DOWN")
        strongswan_peer(dpd_delay=2)
        eventually(lambda: shown(sdk, conn_id)["status"] == "ACTIVE", timeout_s=60,
                   what="ACTIVE again")
        eventually(lambda: any(e["status"] == "ACTIVE" and e["old_status"] == "DOWN"
                               for e in seen), what="the way back on the stream")
        stop.set()
    reasons = [(e["old_status"], e["status"], (e["reason"] or "").split(":")[0])
               for e in seen if e["kind"] == "status"]
    assert ("ACTIVE", "ACTIVE", "one_way_traffic") in reasons
    # Going DOWN and the reason for it are one event, or two close together (charon's
    # down event and the log line saying why may be more than 0.1 s apart under load).
    assert any(r[1] == "DOWN" for r in reasons) and any(r[2] == "dead_peer" for r in reasons)
    assert reasons[-1][:2] == ("DOWN", "ACTIVE")


def sites_ping_forever(sites: Sites) -> threading.Event:
    """Ping host b from host a in the background until the returned event is set."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            sites.ping("ha", HB, count=2)
    threading.Thread(target=run, daemon=True).start()
    return stop
