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

from tests.e2e.rotation import NEW_PSK, PSK, isthmus_peer_rotations, sa_state

MOST_LOST = 5   # pings of 50 a second, per rotation


def test_psk_esp_and_ike_changes_keep_the_tunnel(isthmus, sdk, sites, caplog):
    results = isthmus_peer_rotations(isthmus, sdk, sites)
    for kind, result in results.items():
        assert result.lost <= MOST_LOST, (kind, result)

    for conn in sdk.network.vpn_ipsec_site_connections():
        detail = sdk.network.get(f"/vpn/ipsec-site-connections/{conn.id}").json()[
            "ipsec_site_connection"]["isthmus:status_detail"]
        assert detail["reason"] is None, detail
        assert detail["ike"]["encryption"] == "AES_CBC-256", detail     # the new IKE policy
        assert detail["child"]["encryption"] == "AES_CBC-256", detail   # the new ESP one
        events = sdk.network.get("/vpn/events", params={"resource_id": conn.id}).json()["events"]
        went_down = [e for e in events if e["kind"] == "status" and e["status"] != "ACTIVE"
                     and e["old_status"] == "ACTIVE"]
        assert not went_down, went_down   # never DOWN in the API while it changed
    for router_id in isthmus.agent.drivers[0]._charons:
        # One IKE_SA each, or two when both sides initiated at once when the connection
        # was created: each is replaced, no third is left over.
        assert 1 <= len(sa_state(isthmus, router_id)) <= 2, sa_state(isthmus, router_id)
    assert PSK not in caplog.text and NEW_PSK not in caplog.text
