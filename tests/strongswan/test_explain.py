"""charon's messages map to reason codes: every row of explain.RULES, run on real wording,
and every recorded failure case replayed through an Explainer.

tests/peers/data/charon-log-cases.json holds what a real charon, configured as
Isthmus configures it, said on its VICI stream against libreswan's pluto and a
plain strongSwan, for each failure case, as initiator and as responder
(recorded by tests/peers/record_cases.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from isthmus import diagnosis
from isthmus.drivers.device.strongswan import explain

SPEC = {"remote_addrs": ["198.51.100.12"], "proposals": ["aes128-sha256-modp2048"],
        "local": {"auth": "psk", "id": "@a.example"},
        "remote": {"auth": "psk", "id": "@b.example"},
        "children": {"c": {"esp_proposals": ["aes128gcm16-modp2048"],
                           "local_ts": ["10.71.0.0/24"], "remote_ts": ["10.72.0.0/24"]}}}

# (charon's message, established IKE SA before it?, reason code, words in the message)
CASES = [
    ("received NO_PROPOSAL_CHOSEN notify error", False, "ike_proposal_mismatch",
     ["aes128-sha256-modp2048"]),
    ("received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built", True, "esp_proposal_mismatch",
     ["aes128gcm16-modp2048"]),
    # IKEv1 says the same in both phases.
    ("received NO_PROPOSAL_CHOSEN error notify", False, "ike_proposal_mismatch",
     ["aes128-sha256-modp2048"]),
    ("received NO_PROPOSAL_CHOSEN error notify", True, "esp_proposal_mismatch",
     ["aes128gcm16-modp2048"]),
    ("invalid HASH_V1 payload length, decryption failed?", False, "authentication_failed",
     ["PSK"]),
    ("no acceptable proposal found", False, "ike_proposal_mismatch",
     ["aes128-sha256-modp2048", "AES_CBC_256/HMAC_SHA2_512_256"]),
    ("no IKE config found for 198.51.100.11...198.51.100.12, sending NO_PROPOSAL_CHOSEN",
     False, "ike_proposal_mismatch", ["IKE"]),
    ("received AUTHENTICATION_FAILED notify error", True, "authentication_failed",
     ["@a.example", "@b.example", "PSK"]),
    ("tried 1 shared key for 'b.example' - 'a.example', but MAC mismatched", True,
     "authentication_failed", ["PSK", "b.example"]),
    ("no shared key found for 'a.example' - 'c.example'", True, "authentication_failed",
     ["c.example", "@b.example"]),
    ("constraint check failed: identity 'b.example' required", True,
     "authentication_failed", ["b.example"]),
    ("no matching peer config found", True, "authentication_failed", ["@a.example"]),
    ("received TS_UNACCEPTABLE notify, no CHILD_SA built", True,
     "traffic_selectors_unacceptable", ["10.71.0.0/24", "10.72.0.0/24"]),
    ("traffic selectors 10.99.0.0/24 === 10.71.0.0/24 unacceptable", True,
     "traffic_selectors_unacceptable", ["10.99.0.0/24", "10.72.0.0/24"]),
    ("received INTERNAL_ADDRESS_FAILURE notify, no CHILD_SA built", True,
     "peer_device_failed", ["INTERNAL_ADDRESS_FAILURE"]),
    ("unable to install inbound and outbound IPsec SA (SAD) in kernel", True,
     "local_device_failed", ["SAD"]),
    ("unable to install IPsec policies (SPD) in kernel", True, "local_device_failed", ["SPD"]),
    ("retransmit 2 of request with message ID 0", False, "peer_not_responding",
     ["198.51.100.12", "IKE_SA_INIT"]),
    ("giving up after 3 retransmits", True, "dead_peer", ["198.51.100.12", "3 retransmits"]),
    ("giving up after 3 retransmits", False, "retransmits_exhausted", ["3 retransmits"]),
    ("establishing IKE_SA failed, peer not responding", False, "peer_not_responding",
     ["198.51.100.12"]),
    ("received DELETE for IKE_SA isthmus-x[3]", True, "peer_deleted", ["IKE_SA"]),
    ("received INVALID_SYNTAX notify error", False, "configuration_rejected",
     ["INVALID_SYNTAX"]),
]


@pytest.mark.parametrize("message,established,code,words", CASES,
                         ids=[f"{c[2]}:{c[0][:30]}" for c in CASES])
def test_each_message_maps_to_its_reason(message, established, code, words):
    ctx = explain.Context(explain.Expectation.of(SPEC), established=established)
    if "proposal found" in message:
        explain.classify("received proposals: IKE:AES_CBC_256/HMAC_SHA2_512_256/"
                         "PRF_HMAC_SHA2_512/MODP_4096", ctx)
    found = explain.classify(message, ctx)
    assert found is not None and found[0] == code, found
    assert code in diagnosis.REASONS
    for word in words:
        assert word in found[1], (word, found[1])


def test_every_rule_has_a_case():
    """A row added to RULES without a case here fails: the table is the test's too."""
    used = set()
    for message, established, _, _ in CASES + [("received proposals: X", False, None, []),
                                               ("configured proposals: X", False, None, [])]:
        ctx = explain.Context(explain.Expectation.of(SPEC), established=established)
        for index, (pattern, _code, _build) in enumerate(explain.RULES):
            if pattern.search(message):
                used.add(index)
                break
    assert used == set(range(len(explain.RULES)))


def test_routine_messages_are_not_failures():
    ctx = explain.Context(explain.Expectation.of(SPEC))
    for message in ("sending packet: from 198.51.100.11[4500] to 198.51.100.12[4500] (80 bytes)",
                    "IKE_SA isthmus-x[1] established between 198.51.100.11...198.51.100.12",
                    "received INVALID_KE_PAYLOAD notify, retrying with DH group MODP_2048",
                    "CHILD_SA c{1} established with SPIs c1a2b3c4_i c5d6e7f8_o",
                    "received proposals: IKE:AES_CBC_128/HMAC_SHA2_256_128/MODP_2048"):
        assert explain.classify(message, ctx) is None, message


def clock(start: float = 1_000_000.0):
    now = [start]
    return now, lambda: now[0]


def test_the_explainer_follows_a_connection_from_failure_to_recovery():
    now, tick = clock()
    explainer = explain.Explainer(clock=tick)
    explainer.expect({"conn-a": SPEC})
    assert explainer.log({"ikesa-name": "conn-b", "msg": "received NO_PROPOSAL_CHOSEN "
                          "notify error"}) is None    # not ours
    assert explainer.log({"ikesa-name": "conn-a", "msg": "received AUTHENTICATION_FAILED "
                          "notify error", "group": "IKE", "level": "1"}) == "conn-a"
    down = explainer.detail("conn-a", None, up=False)
    assert down["reason"] == "authentication_failed"
    assert down["last_failure"]["reason"] == "authentication_failed"
    assert "PSK" in down["message"]
    # The same message again changes nothing (no new report).
    assert explainer.log({"ikesa-name": "conn-a",
                          "msg": "received AUTHENTICATION_FAILED notify error"}) is None
    explainer.updown("child-updown", {"up": "yes", "conn-a": {"child-sas": {}}})
    up = explainer.detail("conn-a", None, up=True)
    assert up["reason"] is None and up["last_failure"]["reason"] == "authentication_failed"


LIST_SAS = [{"conn-a": {
    "uniqueid": "3", "version": "2", "state": "ESTABLISHED", "initiator": "yes",
    "initiator-spi": "aa11", "responder-spi": "bb22", "encr-alg": "AES_CBC",
    "encr-keysize": "128", "integ-alg": "HMAC_SHA2_256_128", "prf-alg": "PRF_HMAC_SHA2_256",
    "dh-group": "MODP_2048", "established": "30", "rekey-time": "3000",
    "child-sas": {"c-1": {"uniqueid": "4", "state": "INSTALLED", "mode": "TUNNEL",
                          "protocol": "ESP", "encap": "yes", "spi-in": "c1a2b3c4",
                          "spi-out": "d5e6f7a8", "encr-alg": "AES_GCM_16",
                          "encr-keysize": "128", "dh-group": "MODP_2048",
                          "bytes-in": "0", "bytes-out": "8400", "packets-in": "0",
                          "packets-out": "100", "use-out": "1", "install-time": "25",
                          "rekey-time": "3100"}}}}]


def test_list_sas_gives_the_negotiated_parameters_with_stable_times():
    stamps: explain.Stamps = {}
    first = explain.sa_details(LIST_SAS, 1_000_000.0, 10.0, stamps)["conn-a"]
    assert first.ike == {"state": "ESTABLISHED", "version": 2, "encryption": "AES_CBC-128",
                         "integrity": "HMAC_SHA2_256_128", "prf": "PRF_HMAC_SHA2_256",
                         "dh_group": "MODP_2048", "local_spi": "aa11", "remote_spi": "bb22",
                         "established_at": explain.iso(1_000_000.0 - 30),
                         "rekey_at": explain.iso(1_000_000.0 + 3000)}
    assert first.child["encryption"] == "AES_GCM_16-128"
    assert (first.child["local_spi"], first.child["remote_spi"]) == ("c1a2b3c4", "d5e6f7a8")
    assert first.one_way   # 100 packets out in the last second, none in for 25 s
    later = explain.sa_details(LIST_SAS, 1_000_001.7, 10.0, stamps)["conn-a"]
    assert later.ike == first.ike and later.child == first.child


@pytest.mark.parametrize("use_in,use_out,age,one_way", [
    (None, "1", "25", True),      # never anything in, recent out, SA older than the window
    (None, "1", "5", False),      # too young to tell
    ("30", "1", "60", True),      # the last inbound packet is old
    ("2", "1", "60", False),      # both ways
    (None, None, "60", False),    # idle
    ("30", "20", "60", False),    # nothing out lately either
])
def test_one_way_traffic(use_in, use_out, age, one_way):
    child = {"state": "INSTALLED", "install-time": age}
    if use_in:
        child["use-in"] = use_in
    if use_out:
        child["use-out"] = use_out
    entries = [{"conn-a": {"state": "ESTABLISHED", "child-sas": {"c": child}}}]
    assert explain.sa_details(entries, 1000.0, 10.0)["conn-a"].one_way is one_way


def test_one_way_is_a_warning_with_a_stable_time():
    now, tick = clock()
    explainer = explain.Explainer(clock=tick)
    explainer.expect({"conn-a": SPEC})
    snapshot = explain.sa_details(LIST_SAS, now[0], 10.0)["conn-a"]
    first = explainer.detail("conn-a", snapshot, up=True)
    now[0] += 2
    again = explainer.detail("conn-a", snapshot, up=True)
    assert first == again and first["reason"] == "one_way_traffic"
    assert first["warnings"][0]["reason"] == "one_way_traffic"


def test_an_sa_the_peer_started_is_attributed_by_its_address():
    # Recorded from a real charon answering an IKEv1 peer with other proposals.
    explainer = explain.Explainer()
    explainer.expect({"conn-a": SPEC})
    unnamed = {"ikesa-name": "(unnamed)", "ikesa-uniqueid": "2"}
    for message in ("198.51.100.12 is initiating a Main Mode IKE_SA",
                    "received proposals: IKE:AES_CBC_256/HMAC_SHA2_256_128/"
                    "PRF_HMAC_SHA2_256/MODP_2048",
                    "configured proposals: IKE:AES_CBC_128/HMAC_SHA2_256_128/"
                    "PRF_HMAC_SHA2_256/MODP_2048"):
        assert explainer.log({**unnamed, "msg": message}) is None
    assert explainer.log({**unnamed, "msg": "no proposal found"}) == "conn-a"
    found = explainer.detail("conn-a", None, up=False)
    assert found["reason"] == "ike_proposal_mismatch"
    assert "AES_CBC_256/HMAC_SHA2_256_128" in found["message"]
    assert "aes128-sha256-modp2048" in found["message"]
    other = {"ikesa-name": "(unnamed)", "ikesa-uniqueid": "3"}
    explainer.log({**other, "msg": "203.0.113.9 is initiating an IKE_SA"})
    assert explainer.log({**other, "msg": "no proposal found"}) is None   # not our peer


RECORDED = Path(__file__).resolve().parents[1] / "peers" / "data" / "charon-log-cases.json"
RECORDED_SPEC = {"remote_addrs": ["198.51.100.12"], "proposals": ["aes128-sha256-modp2048"],
                 "local": {"id": "a1.example"}, "remote": {"id": "b1.example"},
                 "children": {"c": {"esp_proposals": ["aes128-sha256-modp2048"],
                                    "local_ts": ["10.71.0.0/24"],
                                    "remote_ts": ["10.72.0.0/24"]}}}

# case (without peer and side) -> the reasons the connection goes through, in order
EXPECTED = {
    "a-match": [],
    "b-ike-mismatch": ["ike_proposal_mismatch"],
    "c-esp-mismatch": ["esp_proposal_mismatch"],
    "d-wrong-psk": ["authentication_failed"],
    "e-id-mismatch": ["authentication_failed"],
    "f-ts-mismatch": ["traffic_selectors_unacceptable"],
    "g-peer-killed": ["dead_peer"],
    "g-peer-stopped": ["peer_deleted"],
    "g-peer-never-there": ["peer_not_responding"],
    "h-peer-deletes-ike": ["peer_deleted"],
    "h-peer-deletes-child": ["peer_deleted"],
}
# Where the peer makes a case look like another (what its own log says, in comments).
SPECIAL = {
    # pluto cannot install the CHILD SA here (no kernel ESP) and answers TS_UNACCEPTABLE:
    # every case that gets as far as the CHILD SA starts like that.
    "a-match/pluto": ["traffic_selectors_unacceptable"],
    "g-peer-killed/pluto": ["traffic_selectors_unacceptable", "dead_peer"],
    "g-peer-stopped/pluto": ["traffic_selectors_unacceptable", "peer_deleted"],
    "h-peer-deletes-ike/pluto": ["traffic_selectors_unacceptable", "peer_deleted"],
    # The peer gone, our restart is not answered either: its own reason.
    "g-peer-stopped/strongswan": ["peer_deleted", "peer_not_responding"],
    # pluto initiates, we install; it fails its own install and drops the SA without a
    # word ("NOT sending notification"): nothing on our side says so until traffic or
    # DPD finds out (one_way_traffic, dead_peer), after the recording ended.
    "a-match/pluto/responder": [],
}


def recorded_cases() -> dict[str, list[dict]]:
    cases: dict[str, list[dict]] = defaultdict(list)
    for event in json.loads(RECORDED.read_text()):
        if not event["case"].startswith("z-"):
            cases[event["case"]].append(event)
    return cases


@pytest.mark.parametrize("case", sorted(recorded_cases()))
def test_recorded_cases_replay_to_their_reasons(case):
    events = recorded_cases()[case]
    now = [0.0]
    explainer = explain.Explainer(clock=lambda: now[0])
    explainer.expect({"isthmus-c1": RECORDED_SPEC})
    reasons = []
    for event in events:
        now[0] = event["t"]
        if event["event"] == "log":
            if explainer.log(event):
                reasons.append(explainer.detail("isthmus-c1", None, up=False)["reason"])
        else:
            explainer.updown(event["event"], {k: v for k, v in event.items() if k not in (
                "case", "side", "peer", "t", "event")})
    name = case.split("/")[0]
    assert reasons == SPECIAL.get(case, EXPECTED[name]), case


def test_failures_of_an_sa_from_before_a_reload_are_not_this_configurations():
    # Recorded from a real charon (benchmarks/diagnosis.py): the peer started an SA just
    # before our reload with new IKE proposals; its IKE_AUTH then found no config.
    explainer = explain.Explainer()
    explainer.expect({"conn-a": SPEC})
    def say(uniqueid: str, message: str, name: str = "(unnamed)") -> str | None:
        return explainer.log({"ikesa-name": name, "ikesa-uniqueid": uniqueid, "msg": message})
    say("59", "198.51.100.12 is initiating an IKE_SA")
    assert say("", "added vici connection: conn-a", name="") is None
    assert say("60", "received NO_PROPOSAL_CHOSEN notify error", name="conn-a") == "conn-a"
    assert say("59", "no matching peer config found") is None   # SA 59 predates the load
    assert explainer.detail("conn-a", None, up=False)["reason"] == "ike_proposal_mismatch"
    say("61", "198.51.100.12 is initiating an IKE_SA")           # after the load: counts
    assert say("61", "no matching peer config found") == "conn-a"


def test_after_a_make_before_break_change_the_old_sas_words_are_not_failures():
    explainer = explain.Explainer()
    explainer.expect({"n": SPEC})

    def say(uniqueid: str, msg: str) -> str | None:
        return explainer.log({"ikesa-name": "n", "ikesa-uniqueid": uniqueid, "msg": msg})

    say("1", "IKE_SA n[1] established between 198.51.100.11[a]...198.51.100.12[b]")
    explainer.reloaded(["n"])   # a new PSK: charon logs no "added vici connection"
    assert say("1", "received DELETE for IKE_SA n[1]") is None   # the peer replaced it
    assert say("2", "received AUTHENTICATION_FAILED notify error") == "n"   # a new one's
    assert explainer.detail("n", None, up=True)["last_failure"]["reason"] == \
        "authentication_failed"
