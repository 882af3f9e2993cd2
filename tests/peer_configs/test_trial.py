"""The parts of ``isthmus peer test`` that need no root: reading the swanctl.conf it is
given, the ARP probe's answer filter, the report."""

from __future__ import annotations

import io
import ipaddress
import struct

from isthmus.drivers.device.strongswan import mapping
from isthmus.peers import strongswan
from isthmus.peers.peertest import Child, Outcome, Plan, parse_swanctl, report
from isthmus.peers.trial import PeerNetwork, _is_arp_from
from tests.peer_configs.from_payload import view


def test_parse_swanctl_reads_what_the_renderer_writes():
    peer = view(id="v2", ike={"ike_version": "v2"}, local_id="CN=a, O=Example",
                psk='q"uote', peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"])
    [(name, conn)] = parse_swanctl(strongswan.render(peer))["connections"].items()
    assert name == mapping.connection_name(peer.connection_id)
    assert (conn["local_addrs"], conn["remote_addrs"]) == (peer.local_address,
                                                           peer.remote_address)
    assert conn["remote"]["id"] == '"CN=a, O=Example"'
    [child] = conn["children"].values()
    assert child["local_ts"] == "10.2.0.0/24,10.3.0.0/24"
    assert child["remote_ts"] == ",".join(peer.remote_subnets)
    assert child["start_action"] == "trap"


def test_parse_swanctl_ikev1_has_a_child_per_pair_and_response_only_starts():
    peer = view(id="v1", ike={"ike_version": "v1"}, initiator="response-only",
                peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"])
    [conn] = parse_swanctl(strongswan.render(peer))["connections"].values()
    children = conn["children"]
    assert len(children) == 2 * len(peer.remote_subnets)
    assert {c["start_action"] for c in children.values()} == {"start"}
    assert {c["local_ts"] for c in children.values()} == {"10.2.0.0/24", "10.3.0.0/24"}


MAC_OURS, MAC_THEIRS = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


def arp(sender_mac: bytes, sender_ip: str, op: int = 2) -> bytes:
    return (b"\xff" * 6 + sender_mac + struct.pack("!H", 0x0806) +
            struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sender_mac +
            ipaddress.IPv4Address(sender_ip).packed + b"\0" * 6 + b"\0" * 4)


def test_arp_probe_counts_only_another_host_holding_the_address():
    target = ipaddress.IPv4Address("198.51.100.12").packed
    assert _is_arp_from(arp(MAC_THEIRS, "198.51.100.12"), target, MAC_OURS)
    assert _is_arp_from(arp(MAC_THEIRS, "198.51.100.12", op=1), target, MAC_OURS)  # announces
    assert not _is_arp_from(arp(MAC_OURS, "198.51.100.12"), target, MAC_OURS)  # our echo
    assert not _is_arp_from(arp(MAC_THEIRS, "198.51.100.13"), target, MAC_OURS)
    assert not _is_arp_from(arp(MAC_THEIRS, "0.0.0.0", op=1), target, MAC_OURS)  # a probe
    ipv4 = arp(MAC_THEIRS, "198.51.100.12")
    assert not _is_arp_from(ipv4[:12] + b"\x08\x00" + ipv4[14:], target, MAC_OURS)


def test_peer_addresses_are_the_first_host_of_each_cidr():
    network = PeerNetwork("br-ex", ipaddress.IPv4Interface("198.51.100.12/24"),
                          ("10.72.0.0/24", "10.80.0.7/32"))
    assert [str(a) for a in network.peer_addresses()] == ["10.72.0.1/32", "10.80.0.7/32"]
    assert network.namespace.startswith("isthmus-peertest-") and len(network.short) == 6


def plan(ping: str | None = "10.71.0.1") -> Plan:
    return Plan({"id": "c1", "name": "a-to-b"}, "", ipaddress.IPv4Interface(
        "198.51.100.12/24"), "198.51.100.11", "br-ex",
        [Child("isthmus-c1", ("10.72.0.0/24",), ("10.71.0.0/24",), "trap")], ping,
        "" if ping else "no router interface in the connection's local subnets: ping skipped")


def test_report_of_a_failure_names_the_isthmus_reason_and_the_peer_log():
    outcome = Outcome(ike={"state": "CONNECTING", "version": "2", "initiator": "yes"},
                      isthmus_status="DOWN",
                      isthmus_detail={"reason": "admin_down", "message": "down"},
                      peer_log=["12:00:00 10[IKE] received NO_PROPOSAL_CHOSEN notify error"],
                      problem="no CHILD_SA INSTALLED within 10 s")
    out = io.StringIO()
    report(plan(None), outcome, out)
    assert out.getvalue().splitlines() == [
        "  IKE SA:    CONNECTING, IKEv2, initiated by the peer",
        "  ping:      no router interface in the connection's local subnets: ping skipped",
        "  Isthmus:   DOWN, reason admin_down: down",
        "  peer log (last relevant lines):",
        "    12:00:00 10[IKE] received NO_PROPOSAL_CHOSEN notify error",
        "FAILED: no CHILD_SA INSTALLED within 10 s."]
    assert not outcome.ok


def test_report_of_a_success():
    outcome = Outcome(
        ike={"state": "ESTABLISHED", "version": "2", "initiator": "no", "encr-alg": "AES_CBC",
             "encr-keysize": "256", "integ-alg": "HMAC_SHA2_256_128",
             "prf-alg": "PRF_HMAC_SHA2_256", "dh-group": "MODP_2048"},
        children={"isthmus-c1": {"state": "INSTALLED", "protocol": "ESP", "mode": "TUNNEL",
                                 "encr-alg": "AES_GCM_16", "encr-keysize": "128",
                                 "local-ts": ["10.72.0.0/24"],
                                 "remote-ts": ["10.71.0.0/24"]}},
        ping=True, isthmus_status="ACTIVE")
    out = io.StringIO()
    report(plan(), outcome, out)
    assert out.getvalue().splitlines() == [
        "  IKE SA:    ESTABLISHED, IKEv2, AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/"
        "MODP_2048, initiated by Isthmus",
        "  CHILD SA:  INSTALLED, ESP tunnel, AES_GCM_16-128, 10.72.0.0/24 === 10.71.0.0/24",
        "  ping:      10.71.0.1 answered",
        "  Isthmus:   ACTIVE",
        "OK: connection a-to-b (c1) works with this peer configuration."]
    assert outcome.ok
