"""The ``generic`` sheet: every parameter in words, every API value has words."""

from __future__ import annotations

import pytest

from isthmus.peers import PSK_PLACEHOLDER, Unsupported, generic
from isthmus.vpn import constants
from tests.peer_configs.from_payload import view


def line(text: str, label: str) -> str:
    """The value after ``label:`` on the sheet."""
    [found] = [row.split(":", 1)[1].strip() for row in text.splitlines()
               if row.strip().startswith(label + ":")]
    return found


def test_the_sheet_names_both_sides_and_every_parameter():
    text = generic.render(view(local_id="@a.example", peer_id="@b.example"))
    expected = {
        "This device's public address": "198.51.100.20",
        "Isthmus's public address": "198.51.100.10",
        "This device's IKE identity": "@b.example", "Isthmus's IKE identity": "@a.example",
        "Pre-shared key": "secret", "Behind this device": "10.2.0.0/24",
        "Behind Isthmus": "10.1.0.0/24", "IKE version": "IKEv2",
        "Encryption": "AES-CBC 128", "Integrity": "HMAC-SHA-256 (128-bit ICV)",
        "Diffie-Hellman group": "group 14 (MODP 2048-bit)", "Lifetime": "3600 seconds",
        "Protocol": "ESP", "Encapsulation": "tunnel mode",
        "Perfect forward secrecy": "group 14 (MODP 2048-bit)",
        "MTU on Isthmus's side": "1500 bytes",
    }
    for label, value in expected.items():
        assert value in [row.split(":", 1)[1].strip() for row in text.splitlines()
                         if row.strip().startswith(label + ":")], label


def test_aead_has_no_integrity_and_response_only_says_who_starts():
    text = generic.render(view(ike={"encryption_algorithm": "aes-256-gcm-16"},
                               initiator="response-only"))
    assert "AES-GCM 256 with a 16-octet ICV" in text
    assert "Integrity:                      none (combined-mode cipher)" in text
    assert line(text, "Who initiates").startswith("this device")


def test_every_api_value_has_words():
    for table, names in ((generic.ENCRYPTION, constants.ENCRYPTION_ALGORITHMS),
                         (generic.INTEGRITY, constants.AUTH_ALGORITHMS),
                         (generic.PRF, constants.AUTH_ALGORITHMS),
                         (generic.DH_GROUPS, constants.PFS_GROUPS),
                         (generic.DPD_ACTIONS, set(constants.DPD_ACTIONS) - {"disabled"})):
        assert set(names) <= set(table)


def test_psk_placeholder():
    text = generic.render(view(psk_visible=False))
    assert line(text, "Pre-shared key") == PSK_PLACEHOLDER and "secret" not in text


def test_dpd_in_words():
    assert line(generic.render(view(dpd={"action": "disabled", "interval": 1,
                                         "timeout": 2})), "Dead peer detection") == "off"
    assert line(generic.render(view()), "Dead peer detection").startswith("every 30 s")


def test_a_value_without_words_names_the_field():
    with pytest.raises(Unsupported) as raised:
        generic.render(view(ipsec={"transform_protocol": "ah-esp"}))
    assert (raised.value.field, raised.value.value) == ("ipsecpolicy.transform_protocol",
                                                       "ah-esp")
