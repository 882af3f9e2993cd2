"""Hitless rotation between two Isthmus sites: a ping every 20 ms across the tunnel while
the PSK, then the ESP proposal, then the IKE proposal change on both connections, one
side after the other, through the API. Nothing may be lost (benchmarks/rotation.py
prints the figures, with a plain strongSwan peer beside)."""

from __future__ import annotations

from tests.agent.conftest import wait_until
from tests.e2e.rotation import (child_ids, ike_ids, make_site, rotate, sa_state,
                                site_connection)
from isthmus.demo.sites import LAN, Sites

PSK = "rotation-secret-one"
NEW_PSK = "rotation-secret-two"


def two_sites(sdk, sites: Sites) -> tuple[dict, dict, list[str]]:
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


def test_psk_esp_and_ike_changes_lose_no_ping(isthmus, sdk, sites, caplog):
    net = sdk.network
    ab, ba, routers = two_sites(sdk, sites)
    try:
        _body(isthmus, sdk, sites, caplog, net, ab, ba, routers)
    finally:  # DEBUG
        import shutil, os
        os.makedirs("/tmp/rot-logs", exist_ok=True)
        for i, r in enumerate(routers):
            shutil.copy(f"/run/isthmus/charon/{r}/charon.log", f"/tmp/rot-logs/{'ab'[i]}.log")


def _body(isthmus, sdk, sites, caplog, net, ab, ba, routers):
    initial = {r: len(sa_state(isthmus, r)) for r in routers}

    import subprocess
    dumps = [subprocess.Popen(["ip", "netns", "exec", sites.ns(ns), "tcpdump", "-n", "-l", "-tt", "-i", "any", filt],
                            stdout=open(f"/tmp/rot-logs/{ns}.psk.txt", "w"), stderr=subprocess.DEVNULL)
             for ns, filt in (("ra", "udp"), ("rb", "udp"), ("hb", "icmp"), ("ha", "icmp"))]
    psk = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], psk=NEW_PSK),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], psk=NEW_PSK)], key=ike_ids)
    for d in dumps: d.terminate()
    assert psk.lost == 0, psk

    # A policy in use cannot change (Neutron's rule): each side moves to a new one.
    esp_a, esp_b = (net.create_vpn_ipsec_policy(name=f"esp-256-{side}", pfs="group14",
                                                encryption_algorithm="aes-256")
                    for side in "ab")
    import subprocess
    dump = subprocess.Popen(["ip", "netns", "exec", sites.ns("hb"), "tcpdump", "-n", "-l", "-i", "any", "icmp"],
                            stdout=open("/tmp/rot-logs/hb.txt", "w"), stderr=subprocess.DEVNULL)
    esp = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ipsecpolicy_id=esp_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ipsecpolicy_id=esp_b.id)],
        key=child_ids)
    dump.terminate()
    assert esp.lost == 0, esp
    detail = net.get(f"/vpn/ipsec-site-connections/{ab['conn'].id}").json()[
        "ipsec_site_connection"]["isthmus:status_detail"]
    assert detail["child"]["encryption"] == "AES_CBC-256", detail

    ike_a, ike_b = (net.create_vpn_ike_policy(name=f"ike-256-{side}", ike_version="v2",
                                              encryption_algorithm="aes-256", pfs="group14")
                    for side in "ab")
    ike = rotate(isthmus, sites, routers, [
        lambda: net.update_vpn_ipsec_site_connection(ab["conn"], ikepolicy_id=ike_a.id),
        lambda: net.update_vpn_ipsec_site_connection(ba["conn"], ikepolicy_id=ike_b.id)],
        key=ike_ids)
    assert ike.lost == 0, ike
    detail = net.get(f"/vpn/ipsec-site-connections/{ab['conn'].id}").json()[
        "ipsec_site_connection"]["isthmus:status_detail"]
    assert detail["ike"]["encryption"] == "AES_CBC-256", detail
    assert detail["reason"] is None, detail
    for router_id in routers:   # no SA more than at the start (both sides initiate at
        # once when a connection is created: two IKE_SAs then, each rotated)
        assert len(sa_state(isthmus, router_id)) <= initial[router_id], sa_state(isthmus, router_id)
    assert PSK not in caplog.text and NEW_PSK not in caplog.text
