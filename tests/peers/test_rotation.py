"""Changing a live connection against a strongSwan configured by hand (router b), the
peer updated with ``swanctl --load-all`` 2 s after Isthmus (router a, through the API),
a ping every 20 ms across the tunnel. What happens is documented in docs/strongswan.md
("Changing a live connection"); benchmarks/rotation.py prints the figures.

* A new PSK: the peer's charon only takes the new secret (its connection is unchanged),
  Isthmus's reauthentication, tried again every 10 s, succeeds once the peer has it:
  make-before-break, as with an Isthmus peer.
* New ESP proposals: the peer's ``load-conn`` of a changed child with ``start_action
  start`` closes the peer's SAs before it initiates the new ones (break-before-make on
  the peer's side): the tunnel comes back on the new proposals, a few pings may be lost.
"""

from __future__ import annotations

from tests.e2e.rotation import child_ids, ike_ids, reload_peer, rotate
from tests.peers.strongswan import PlainStrongSwan
from tests.peers.test_diagnosis import shown, site_a
from tests.peers.test_peers import eventually, swan_conn

NEW_PSK = "peers-test-secret-two"
MOST_LOST_MBB = 5       # pings lost by a make-before-break change (see tests/e2e/test_rotation.py)
MOST_LOST_BBM = 100     # 2 s: the peer breaks first, then the new SAs are negotiated


def test_plain_strongswan_peer_psk_then_esp(isthmus, sdk, sites):
    peer = PlainStrongSwan(sites.ns("rb"), [swan_conn("b", "a", start_action="start")])
    peer.start()
    try:
        conn_id = site_a(sdk, sites)
        eventually(lambda: shown(sdk, conn_id)["status"] == "ACTIVE", timeout_s=60,
                   what="ACTIVE with a strongSwan peer")
        eventually(lambda: sites.ping("ha", "10.72.0.2", count=1), timeout_s=20,
                   what="pings across")
        router_id = next(iter(isthmus.agent.drivers[0]._charons))
        net = sdk.network

        psk = rotate(isthmus, sites, [router_id], [
            lambda: net.update_vpn_ipsec_site_connection(conn_id, psk=NEW_PSK),
            lambda: reload_peer(peer, psk=NEW_PSK)], key=ike_ids)
        assert psk.lost <= MOST_LOST_MBB, psk

        esp_256 = net.create_vpn_ipsec_policy(name="esp-256", pfs="group14",
                                              encryption_algorithm="aes-256")
        esp = rotate(isthmus, sites, [router_id], [
            lambda: net.update_vpn_ipsec_site_connection(conn_id, ipsecpolicy_id=esp_256.id),
            lambda: reload_peer(peer, esp="aes256-sha256-modp2048")], key=child_ids)
        assert esp.lost <= MOST_LOST_BBM, esp
        detail = shown(sdk, conn_id)["isthmus:status_detail"]
        assert detail["child"]["encryption"] == "AES_CBC-256" and detail["reason"] is None
    finally:
        peer.stop()
