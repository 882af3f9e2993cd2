"""The peer fixtures work: real charons and a real pluto in namespaces (root).

Router a (198.51.100.11, LAN 10.71.0.0/24) and router b (198.51.100.12, LAN
10.72.0.0/24) of :class:`isthmus.demo.sites.Sites`. Nothing here goes through
Isthmus: these peers are what Isthmus's own tests will talk to.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable

import pytest

from isthmus.demo.sites import LAN, WAN, Sites
from tests.peers.libreswan import Pluto, PlutoConn
from tests.peers.strongswan import PlainStrongSwan, SwanConn

pytestmark = pytest.mark.e2e

PSK = "peers-test-secret"
HB = f"{LAN['b']}.2"


def swan_conn(me: str, other: str, start_action: str = "none", **overrides: Any) -> SwanConn:
    return SwanConn(name="c", local_addr=WAN[me], remote_addr=WAN[other],
                    local_id=f"@{me}.example", remote_id=f"@{other}.example", psk=PSK,
                    local_ts=[f"{LAN[me]}.0/24"], remote_ts=[f"{LAN[other]}.0/24"],
                    start_action=start_action, **overrides)


def pluto_conn(**overrides: Any) -> PlutoConn:
    """pluto in router b, its peer router a."""
    return PlutoConn(**{"name": "c", "left": WAN["b"], "right": WAN["a"],
                        "leftid": "@b.example", "rightid": "@a.example", "psk": PSK,
                        "leftsubnets": [f"{LAN['b']}.0/24"],
                        "rightsubnets": [f"{LAN['a']}.0/24"], **overrides})


def eventually(check: Callable[[], Any], timeout_s: float = 15, what: str = "") -> Any:
    """Poll ``check`` until truthy (no timing assertion: the deadline is only a bound)."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what or check} not true within {timeout_s}s: {value!r}")


def pings(sites: Sites) -> bool:
    return sites.ping("ha", HB, count=1)


def test_two_plain_strongswans_carry_a_ping(sites):
    b = PlainStrongSwan(sites.ns("rb"), [swan_conn("b", "a")])
    a = PlainStrongSwan(sites.ns("ra"), [swan_conn("a", "b", "start")])
    try:
        b.start()
        a.start()
        eventually(a.child_installed, what="a CHILD_SA installed in router a")
        eventually(lambda: pings(sites), what="host a pings host b through the tunnel")
        listing = a.swanctl("--list-sas")
        assert "ESTABLISHED" in listing and "INSTALLED, TUNNEL-in-UDP" in listing, listing
        assert int(b.sas()["c"]["child-sas"].popitem()[1]["packets-in"]) > 0
    finally:
        a.stop()
        b.stop()


def test_dropping_inbound_esp_makes_traffic_one_way(sites):
    b = PlainStrongSwan(sites.ns("rb"), [swan_conn("b", "a")])
    a = PlainStrongSwan(sites.ns("ra"), [swan_conn("a", "b", "start", dpd_delay=1)])
    try:
        b.start()
        a.start()
        eventually(lambda: pings(sites), what="ping before the drop rule")
        b.drop_inbound_esp()
        assert not sites.ping("ha", HB, count=2)
        assert b.esp_dropped() > 0
        # IKE still passes on port 4500 (non-ESP marker): a's DPD requests keep arriving
        seen = b.log().count("parsed INFORMATIONAL request")
        eventually(lambda: b.log().count("parsed INFORMATIONAL request") > seen,
                   what="a DPD request reaching b through the drop rule")
        assert "ESTABLISHED" in a.swanctl("--list-sas")
        b.allow_inbound_esp()
        assert b.esp_dropped() == 0 and "u32" not in _iptables(sites, "rb")
        eventually(lambda: pings(sites), what="ping after removing the drop rule")
    finally:
        a.stop()
        b.stop()
    assert "u32" not in _iptables(sites, "rb")


def test_stop_leaves_nothing(sites):
    b = PlainStrongSwan(sites.ns("rb"), [swan_conn("b", "a")])
    b.start()
    directory, pid = b.directory, b.process.pid
    b.drop_inbound_esp()
    b.stop()
    assert not directory.exists()
    assert not os.path.exists(f"/proc/{pid}")
    assert "u32" not in _iptables(sites, "rb")
    assert subprocess.run(["ip", "netns", "pids", sites.ns("rb")], capture_output=True,
                          text=True).stdout.split() == []


def test_pluto_responder_negotiates_ike_but_no_child(sites, pluto_available):
    pluto = Pluto(sites.ns("rb"), [pluto_conn(dpddelay=2, dpdtimeout=10)])
    a = PlainStrongSwan(sites.ns("ra"), [swan_conn("a", "b", "start", dpd_delay=2)])
    try:
        pluto.start()
        a.start()
        eventually(lambda: "ESTABLISHED" in a.swanctl("--list-sas"),
                   what="an IKE SA ESTABLISHED with pluto")
        eventually(pluto.ike_established, what="pluto's IKE SA")
        # pluto cannot add the ESP SA (no ESP in this kernel) and answers TS_UNACCEPTABLE
        eventually(lambda: "Protocol not supported" in pluto.log(), what="pluto's SA error")
        eventually(lambda: "received TS_UNACCEPTABLE notify" in a.log(),
                   what="charon's TS_UNACCEPTABLE")
        assert not a.child_installed()
        sa = a.sas()["c"]
        assert (sa["encr-alg"], sa["dh-group"], sa["remote-id"]) == (
            "AES_CBC", "MODP_2048", "b.example")
    finally:
        a.stop()
        pluto.stop()


def test_pluto_initiator_reaches_strongswan(sites, pluto_available):
    a = PlainStrongSwan(sites.ns("ra"), [swan_conn("a", "b")])
    pluto = Pluto(sites.ns("rb"), [pluto_conn()])
    try:
        a.start()
        pluto.start()
        directory = pluto.directory
        pluto.initiate()
        # charon installs its CHILD_SA; pluto then fails to install its own and drops the
        # IKE SA without telling (see data/charon-log-cases.md, case a with pluto)
        eventually(lambda: "IKE_SA c[1] established" in a.log(), what="charon's IKE SA")
        eventually(lambda: "CHILD SA encountered fatal error" in pluto.log(),
                   what="pluto's CHILD SA error")
    finally:
        pluto.stop()
        a.stop()
    assert not directory.exists()
    assert subprocess.run(["ip", "netns", "pids", sites.ns("rb")], capture_output=True,
                          text=True).stdout.split() == []


def _iptables(sites: Sites, role: str) -> str:
    return subprocess.run(["ip", "netns", "exec", sites.ns(role), "iptables", "-w", "-S"],
                          capture_output=True, text=True).stdout
