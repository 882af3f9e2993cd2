"""The ``strongswan`` peer format: the Isthmus side turned around, loaded by swanctl itself.

Both ends must propose the same: for every policy combination Isthmus's own
strongSwan mapping accepts, the peer's proposals are the ones the Isthmus side
loads (:func:`mapping.to_vici`), with addresses, ids and selectors swapped. A
throwaway charon (root) loads every configuration rendered here with swanctl.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import uuid
from typing import Any, Iterator

import pytest

from isthmus.drivers.device.strongswan import mapping
from isthmus.peers import PSK_PLACEHOLDER, Unsupported, strongswan
from isthmus.vpn import constants
from tests.peer_configs.from_payload import view
from isthmus.peers.trial import CHARON
from tests.peers.strongswan import PlainStrongSwan
from tests.strongswan.test_mapping import SERVICE, connection, ikepolicy, ipsecpolicy


def values(text: str, key: str) -> list[str]:
    """Every value of ``key`` in a swanctl.conf, in order."""
    return re.findall(rf"^\s*{re.escape(key)} = (.*)$", text, re.MULTILINE)


def test_a_whole_configuration():
    text = strongswan.render(view())
    assert text.splitlines()[3:] == """connections {
  isthmus-c1 {
    version = 2
    local_addrs = 198.51.100.20
    remote_addrs = 198.51.100.10
    proposals = aes128-sha256-modp2048
    aggressive = no
    mobike = no
    rekey_time = 3240s
    reauth_time = 0s
    over_time = 360s
    dpd_delay = 30s
    dpd_timeout = 120s
    local {
      auth = psk
      id = 198.51.100.20
    }
    remote {
      auth = psk
      id = 198.51.100.10
    }
    children {
      isthmus-c1 {
        local_ts = 10.2.0.0/24
        remote_ts = 10.1.0.0/24
        mode = tunnel
        esp_proposals = aes128-sha256-modp2048
        rekey_time = 3240s
        life_time = 3600s
        dpd_action = trap
        start_action = trap
        close_action = none
      }
    }
  }
}
secrets {
  ike-isthmus-c1 {
    id-local = 198.51.100.20
    id-remote = 198.51.100.10
    secret = "secret"
  }
}""".splitlines()


def _combinations() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for version, transform, encryption, auth, pfs in (
            (v, t, e, a, g) for v in constants.IKE_VERSIONS for t in ("esp", "ah")
            for e in constants.ENCRYPTION_ALGORITHMS for a in constants.AUTH_ALGORITHMS
            for g in ("group5", "group14", "group20", "group31")):
        ike = ikepolicy(ike_version=version, encryption_algorithm=encryption,
                        auth_algorithm=auth, pfs=pfs)
        ipsec = ipsecpolicy(transform_protocol=transform, encryption_algorithm=encryption,
                            auth_algorithm=auth, pfs=pfs)
        if not mapping.unsupported(ike, ipsec, libipsec=False):
            yield ike, ipsec


def test_the_peer_proposes_what_isthmus_proposes_with_the_sides_swapped():
    checked = 0
    for ike, ipsec in _combinations():
        conn = connection(ike=ike, ipsec=ipsec, local_id="@a.example", peer_id="@b.example")
        isthmus = mapping.to_vici(SERVICE, conn)[mapping.connection_name("c1")]
        text = strongswan.render(view(ike=ike, ipsec=ipsec, local_id="@a.example",
                                      peer_id="@b.example"))
        assert values(text, "proposals") == isthmus["proposals"]
        [child] = isthmus["children"].values()
        key = "esp_proposals" if ipsec["transform_protocol"] == "esp" else "ah_proposals"
        assert values(text, key) == child[key]
        assert values(text, "version") == [isthmus["version"]]
        assert values(text, "local_addrs") == isthmus["remote_addrs"]
        assert values(text, "remote_addrs") == isthmus["local_addrs"]
        assert values(text, "id")[:2] == ["@b.example", "@a.example"]
        assert values(text, "local_ts") == [",".join(child["remote_ts"])]
        assert values(text, "remote_ts") == [",".join(child["local_ts"])]
        checked += 1
    assert checked > 300   # the loop ran over the whole table, not over nothing


def test_ikev1_has_one_child_per_pair_as_the_isthmus_side():
    peer = {"ike_version": "v1"}
    conn = connection(ike=peer, peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"])
    isthmus = mapping.to_vici(SERVICE, conn)[mapping.connection_name("c1")]["children"]
    text = strongswan.render(view(ike=peer, peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"]))
    assert values(text, "local_ts") == [",".join(c["remote_ts"]) for c in isthmus.values()]
    assert values(text, "remote_ts") == [",".join(c["local_ts"]) for c in isthmus.values()]
    names = re.findall(r"^      (\S+) \{$", text, re.MULTILINE)
    assert names == list(isthmus)
    assert values(text, "reauth_time") == ["3240s"] and values(text, "rekey_time")[0] == "0s"


@pytest.mark.parametrize("initiator, start, close", [
    ("bi-directional", "trap", "none"),
    ("response-only", "start", "start"),   # Isthmus never initiates: the peer must
])
def test_who_initiates(initiator, start, close):
    text = strongswan.render(view(initiator=initiator))
    assert (values(text, "start_action"), values(text, "close_action")) == ([start], [close])


@pytest.mark.parametrize("action, peer_action, delay", [
    ("hold", "trap", "30s"), ("clear", "clear", "30s"), ("restart", "restart", "30s"),
    ("restart-by-peer", "restart", "30s"), ("disabled", "clear", "0s"),
])
def test_dead_peer_detection(action, peer_action, delay):
    text = strongswan.render(view(dpd={"action": action, "interval": 30, "timeout": 120}))
    assert values(text, "dpd_action") == [peer_action]
    assert values(text, "dpd_delay") == [delay]


def test_lifetime_in_kilobytes_limits_the_child_by_volume():
    text = strongswan.render(view(ipsec={"lifetime": {"units": "kilobytes", "value": 1000}}))
    assert values(text, "rekey_bytes") == ["921600"] and values(text, "life_bytes") == ["1024000"]
    assert "life_time" not in text


def test_psk_placeholder_quoting_and_base64():
    assert values(strongswan.render(view(psk_visible=False)), "secret") == \
        [f'"{PSK_PLACEHOLDER}"']
    tricky = 'a "quoted" \\ secret'
    [written] = values(strongswan.render(view(psk=tricky)), "secret")
    assert written.startswith("0s") and base64.b64decode(written[2:]).decode() == tricky


def test_a_name_cannot_inject_configuration():
    text = strongswan.render(view(name="x\nconnections { evil {} }"))
    assert "\nconnections { evil" not in text and text.count("\nconnections {") == 1


@pytest.mark.parametrize("ike, ipsec, field, value", [
    ({}, {"transform_protocol": "ah-esp"}, "ipsecpolicy.transform_protocol", "ah-esp"),
    ({"ike_version": "v1", "encryption_algorithm": "aes-128-gcm-16"}, {},
     "ikepolicy.encryption_algorithm", "aes-128-gcm-16"),
    ({"pfs": "group99"}, {}, "ikepolicy.pfs", "group99"),
])
def test_what_strongswan_cannot_do_names_the_field(ike, ipsec, field, value):
    with pytest.raises(Unsupported) as raised:
        strongswan.render(view(ike=ike, ipsec=ipsec))
    assert (raised.value.fmt, raised.value.field, raised.value.value) == \
        ("strongswan", field, value)
    assert field in str(raised.value) and value in str(raised.value)


# -- swanctl itself loads every configuration ------------------------------------------
def _cannot_run_charon() -> str | None:
    if not os.path.exists(CHARON):
        return "strongSwan's charon is not installed"
    if os.geteuid() != 0:
        return "needs root (a network namespace for charon)"
    return None


@pytest.fixture(scope="module")
def charon() -> Iterator[PlainStrongSwan]:
    """A charon in a namespace of its own, with nothing loaded yet."""
    netns = "ispc" + uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", netns], check=True)
    peer = PlainStrongSwan(netns, [], swanctl_text="")
    try:
        peer.start(load=False)
        yield peer
    finally:
        peer.stop()
        subprocess.run(["ip", "netns", "delete", netns], check=False)


@pytest.mark.skipif(_cannot_run_charon() is not None, reason=str(_cannot_run_charon()))
def test_swanctl_loads_every_rendering(charon):
    renderings = [view(ike=ike, ipsec=ipsec, id=f"v{n}") for n, (ike, ipsec) in
                  enumerate(_combinations()) if n % 7 == 0]  # every algorithm, fewer loads
    renderings += [view(id="ro", initiator="response-only"),
                   view(id="kb", ipsec={"lifetime": {"units": "kilobytes", "value": 1000}}),
                   view(id="nodpd", dpd={"action": "disabled", "interval": 30, "timeout": 1}),
                   view(id="v1pairs", ike={"ike_version": "v1"},
                        peer_cidrs=["10.2.0.0/24", "10.3.0.0/24"]),
                   view(id="odd", psk='q"uote', local_id="CN=a, O=Example",
                        name="two\nlines"),
                   view(id="hidden", psk_visible=False)]
    for peer_view in renderings:
        charon.swanctl_text = strongswan.render(peer_view)
        charon.write_config()
        out = charon.load()
        assert "successfully loaded 1 connections" in out, out
        assert "loaded ike secret" in out, out
        # --load-all replaces what was loaded: only this one is there
        listed = charon.swanctl("--list-conns")
        assert listed.startswith(mapping.connection_name(peer_view.connection_id) + ":")
