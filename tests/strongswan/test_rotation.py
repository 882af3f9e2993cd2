"""What a change of a live connection renegotiates (rotation.plan), how it is loaded
(for_charon), and when old SAs are replaced, on list-sas answers shaped as charon's."""

from __future__ import annotations

from isthmus.drivers.device.strongswan import mapping, rotation
from isthmus.drivers.device.strongswan.charon import digest

SERVICE: dict = {}


def conn(**changes) -> dict:
    base = {"id": "c1", "external_ip": "198.51.100.11", "peer_address": "198.51.100.12",
            "peer_id": "@b.example", "local_id": "@a.example", "psk": "one",
            "initiator": "bi-directional", "local_cidrs": ["10.71.0.0/24"],
            "peer_cidrs": ["10.72.0.0/24"],
            "dpd": {"action": "restart", "interval": 30, "timeout": 120},
            "ikepolicy": {"ike_version": "v2", "encryption_algorithm": "aes-128",
                          "auth_algorithm": "sha256", "pfs": "group14",
                          "phase1_negotiation_mode": "main",
                          "lifetime": {"units": "seconds", "value": 3600}},
            "ipsecpolicy": {"transform_protocol": "esp", "encryption_algorithm": "aes-128",
                            "auth_algorithm": "sha256", "pfs": "group14",
                            "encapsulation_mode": "tunnel",
                            "lifetime": {"units": "seconds", "value": 3600}}}
    for key, value in changes.items():
        if isinstance(value, dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def print_of(c: dict) -> dict:
    return rotation.fingerprint(mapping.to_vici(SERVICE, c), mapping.shared_secret(SERVICE, c))


def test_plan_names_the_smallest_renegotiation():
    before = print_of(conn())
    assert rotation.plan(before, print_of(conn())) == "unchanged"
    assert rotation.plan(before, print_of(conn(psk="two"))) == "reauth"
    assert rotation.plan(before, print_of(conn(ipsecpolicy={"encryption_algorithm": "aes-256"}))) \
        == "child"
    assert rotation.plan(before, print_of(conn(peer_cidrs=["10.72.0.0/16"]))) == "child"
    assert rotation.plan(before, print_of(conn(ikepolicy={"encryption_algorithm": "aes-256"}))) \
        == "ike"
    # IKE and PSK at once: a new IKE_SA authenticates with the new PSK anyway
    assert rotation.plan(before, print_of(conn(psk="two", dpd={"interval": 10}))) == "ike"


def test_plan_of_what_an_older_agent_saved_is_a_reload():
    c = conn()
    old_style = digest({"conn": mapping.to_vici(SERVICE, c),
                        "secret": mapping.shared_secret(SERVICE, c)})
    assert rotation.plan(old_style, print_of(c)) == "reload"
    assert rotation.plan(None, print_of(c)) == "reload"


def test_the_fingerprint_holds_no_secret():
    assert "one" not in repr(print_of(conn()))


def test_for_charon_takes_start_out_and_returns_the_children_to_initiate():
    spec = mapping.to_vici(SERVICE, conn())
    loaded, starts = rotation.for_charon(spec)
    (name,) = loaded
    assert starts == [name]
    assert loaded[name]["children"][name]["start_action"] == "trap"
    assert loaded[name]["unique"] == "never" and "unique" not in spec[name]
    assert spec[name]["children"][name]["start_action"] == "trap|start"   # not changed
    loaded, starts = rotation.for_charon(mapping.to_vici(SERVICE, conn(initiator="response-only")))
    assert starts == [] and loaded[name]["children"][name]["start_action"] == "none"


def ike(uniqueid: str, *children: tuple[str, str], state: str = "ESTABLISHED",
        established: str = "5") -> dict:
    """One list-sas entry of connection "n", as charon answers it (bytes)."""
    return {"n": {"uniqueid": uniqueid.encode(), "state": state.encode(),
                  "established": established.encode(),
                  "child-sas": {f"n-{cid}": {"uniqueid": cid.encode(), "state": cstate.encode()}
                                for cid, cstate in children}}}


def test_a_replacement_waits_for_a_new_ike_sa_with_an_installed_child():
    entries = [ike("1", ("1", "INSTALLED"))]
    replacing = rotation.Replacement("n", rotation.sa_ids(entries, "n"))
    assert replacing.old == rotation.SAIds(frozenset({"1"}), frozenset({"1"}))
    assert not replacing.replaced(entries)
    # the peer took the IKE_SA but refused the CHILD_SA (its ESP config differs still)
    attempt = entries + [ike("2", established="1")]
    assert not replacing.replaced(attempt)
    assert not replacing.failed_attempts(attempt)   # too young: may still get its CHILD_SA
    later = entries + [ike("2", established="3")]
    assert replacing.failed_attempts(later) == {"2"}
    # a CHILD_SA re-created in the old IKE_SA does not count, and is an old one to close
    recreated = [ike("1", ("1", "INSTALLED"), ("5", "INSTALLED"))]
    assert not replacing.replaced(recreated)
    assert replacing.old_children(recreated) == {"1", "5"}
    # a new IKE_SA carrying the connection
    up = entries + [ike("3", ("6", "INSTALLED"))]
    assert replacing.replaced(up)
    assert replacing.old_ikes(up) == {"1"}
    assert replacing.old_ikes([ike("3", ("6", "INSTALLED"))]) == frozenset()


def test_other_connections_sas_are_not_counted():
    other = {"m": ike("9", ("9", "INSTALLED"))["n"]}
    replacing = rotation.Replacement("n", rotation.SAIds(frozenset({"1"}), frozenset({"1"})))
    assert not replacing.replaced([other])
    assert rotation.sa_ids([other], "n") == rotation.SAIds()


def test_childless_duplicates_only_beside_a_carrying_ike_sa():
    carrying = ike("1", ("1", "INSTALLED"))
    assert rotation.childless_duplicates([carrying, ike("2", established="3")]) == {"n": {"2"}}
    assert rotation.childless_duplicates([carrying, ike("2", established="1")]) == {}  # young
    assert rotation.childless_duplicates([ike("2", established="30")]) == {}   # alone: kept
    ikev1 = ike("2", established="30")
    ikev1["n"]["version"] = b"1"     # IKEv1: quick mode comes after main mode
    assert rotation.childless_duplicates([carrying, ikev1]) == {}


def test_ikev1_changes_are_not_hitless():
    assert rotation.hitless(mapping.to_vici(SERVICE, conn()))
    assert not rotation.hitless(mapping.to_vici(SERVICE, conn(ikepolicy={"ike_version": "v1"})))


def test_a_replacement_survives_an_agent_restart_as_json():
    import json
    replacing = rotation.Replacement("n", rotation.SAIds(frozenset({"1", "2"}), frozenset({"3"})),
                                     children_first=False, reauth=True, children=["n"],
                                     next_try_at=12.5, children_closed_at=3.0)
    assert rotation.Replacement.from_json(json.loads(json.dumps(replacing.to_json()))) \
        == replacing
