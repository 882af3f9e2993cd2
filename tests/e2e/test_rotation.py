"""Hitless rotation between two Isthmus sites: a ping every 20 ms across the tunnel while
the PSK, then the ESP proposal, then the IKE proposal change on both connections, one
side after the other through the API (the sides disagree for 2 s in between).

Make-before-break, the old SAs carry the traffic until new ones are up; what is left
is strongSwan's install order: the responder sends on a new CHILD_SA a few ms before
the initiator has installed it, so one ping in several rotations is lost (docs/
strongswan.md, "Changing a live connection"). The bound below allows that on a loaded
machine; break-before-make loses every ping while the sides disagree (about 100).
benchmarks/rotation.py prints the figures, with a plain strongSwan peer beside.
"""

from __future__ import annotations

from tests.agent.conftest import wait_until
from tests.e2e.rotation import (child_ids, ike_ids, make_site, rotate, sa_state,
                                site_connection)
from isthmus.demo.sites import LAN, Sites

PSK = "rotation-secret-one"
NEW_PSK = "rotation-secret-two"
MOST_LOST = 5   # pings of 50 a second, per rotation


def two_sites(sdk, sites: Sites) -> tuple[dict, dict, list[str]]:
    """Routers a and b through the API, one connection each way, up and pinging."""
    net = sdk.network
    public = net.create_network(name="wan", is_router_external=True)
    pub_subnet = net.create_subnet(network_id=public.id, ip_version=4,
                                   cidr="198.51.100.0/24", gateway_ip=None)
    a = make_site(sdk, sites, "a", public, pub_subnet)
    b = make_site(sdk, sites, "b", public, pub_subnet)
    ab = site_connection(sdk, a, "a", "b", PSK)
    ba = site_connection(sdk, b, "b", "a", PSK)
    for side in (ab, ba):
        wait_until(lambda: net.get_vpn_ipsec_site_connection(side["conn"].id).status
                   == "ACTIVE", timeout_s=30)
    wait_until(lambda: sites.ping("ha", f"{LAN['b']}.2", count=1), timeout_s=20)
    return ab, ba, [a["router"].id, b["router"].id]


def detail(sdk, conn) -> dict:
    return sdk.network.get(f"/vpn/ipsec-site-connections/{conn.id}").json()[
        "ipsec_site_connection"]["isthmus:status_detail"]


def test_psk_esp_and_ike_changes_keep_the_tunnel(isthmus, sdk, sites, caplog):
    net = sdk.network
    ab, ba, routers = two_sites(sdk, sites)
    initial = {r: len(sa_state(isthmus, r)) for r in routers}

    # New IKE_SAs (a reauthentication with the new PSK), while the old ones carried on.
    psk = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], psk=NEW_PSK),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], psk=NEW_PSK)], key=ike_ids)
    assert psk.lost <= MOST_LOST, psk

    # A policy in use cannot change (Neutron's rule): each side moves to a new one.
    esp_a, esp_b = (net.create_vpn_ipsec_policy(name=f"esp-256-{side}", pfs="group14",
                                                encryption_algorithm="aes-256")
                    for side in "ab")
    esp = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ipsecpolicy_id=esp_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ipsecpolicy_id=esp_b.id)],
        key=child_ids)
    assert esp.lost <= MOST_LOST, esp
    assert detail(sdk, ab["conn"])["child"]["encryption"] == "AES_CBC-256"

    ike_a, ike_b = (net.create_vpn_ike_policy(name=f"ike-256-{side}", ike_version="v2",
                                              encryption_algorithm="aes-256", pfs="group14")
                    for side in "ab")
    ike = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ikepolicy_id=ike_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ikepolicy_id=ike_b.id)],
        key=ike_ids)
    assert ike.lost <= MOST_LOST, ike
    shown = detail(sdk, ab["conn"])
    assert shown["ike"]["encryption"] == "AES_CBC-256" and shown["reason"] is None, shown

    for router_id in routers:   # no SA more than at the start (both sides initiate at
        # once when a connection is created: two IKE_SAs then, each rotated)
        assert len(sa_state(isthmus, router_id)) <= initial[router_id], \
            sa_state(isthmus, router_id)
    assert PSK not in caplog.text and NEW_PSK not in caplog.text
