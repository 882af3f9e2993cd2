"""Changing a live connection against a strongSwan configured by hand (router b), the
peer updated with ``swanctl --load-all`` 2 s after Isthmus (router a, through the API),
a ping every 20 ms across the tunnel. What happens is documented in docs/strongswan.md
("Changing a live connection"); benchmarks/rotation.py prints the figures.

* A new PSK: the peer's charon only takes the new secret (its connection is unchanged);
  Isthmus's reauthentication, tried again every 10 s, succeeds once the peer has it:
  make-before-break, as with an Isthmus peer.
* New ESP or IKE proposals: the peer's ``load-conn`` of a changed connection with
  ``start_action start`` closes the peer's SAs before it initiates new ones
  (break-before-make on the peer's side): the tunnel comes back on the new proposals.
"""

from __future__ import annotations

from tests.e2e.rotation import plain_peer, plain_peer_rotations
from tests.peers.test_diagnosis import shown

MOST_LOST_MBB = 5      # pings lost by a make-before-break change (tests/e2e/test_rotation.py)
MOST_LOST_BBM = 100    # 2 s: the peer breaks first, then the new SAs are negotiated


def test_plain_strongswan_peer_psk_esp_and_ike(isthmus, sdk, sites):
    peer = plain_peer(sites)
    peer.start()
    try:
        conn_id, results = plain_peer_rotations(isthmus, sdk, sites, peer)
        detail = shown(sdk, conn_id)["isthmus:status_detail"]
    finally:
        peer.stop()
    assert results["psk"].lost <= MOST_LOST_MBB, results
    assert results["esp"].lost <= MOST_LOST_BBM and results["ike"].lost <= MOST_LOST_BBM, \
        results
    assert detail["ike"]["encryption"] == "AES_CBC-256", detail
    assert detail["child"]["encryption"] == "AES_CBC-256" and detail["reason"] is None, detail
