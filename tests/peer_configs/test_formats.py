"""The format registry: what a format module must expose, checked when it is registered."""

from __future__ import annotations

import types

import pytest

from isthmus.peers import formats
from tests.peer_configs.from_payload import view


def test_the_formats_are_registered_in_order():
    assert list(formats.FORMATS) == ["strongswan", "libreswan", "vyos", "cisco-ios",
                                     "juniper-srx", "fortigate", "generic"]
    ikev2 = view(ike={"ike_version": "v2"})    # Cisco's format has no IKEv1
    for fmt in formats.FORMATS.values():
        assert fmt.description and "{name}" in fmt.filename_pattern
        assert fmt.render(ikev2)


def _module(name: str = "isthmus.peers.acme", **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = "/somewhere/acme.py"
    module.__dict__.update({"FORMAT": "acme", "DESCRIPTION": "Acme boxes",
                            "FILENAME": "acme-{name}.cfg", "render": lambda view: "x",
                            **attributes})
    return module


def test_a_complete_module_registers():
    fmt = formats.register(_module())
    assert (fmt.name, fmt.render(view())) == ("acme", "x")


@pytest.mark.parametrize("attributes, words", [
    ({"FORMAT": None}, ["isthmus.peers.acme", "FORMAT", "/somewhere/acme.py"]),
    ({"FILENAME": 3}, ["FILENAME must be a str"]),
    ({"render": "not callable"}, ["render(view: PeerView) -> str"]),
    ({"FORMAT": "acme2"}, ["'acme2'", "'acme'"]),
])
def test_an_incomplete_module_says_what_is_missing(attributes, words):
    with pytest.raises(formats.FormatError) as raised:
        formats.register(_module(**attributes))
    assert all(word in str(raised.value) for word in words)


def test_filenames_are_safe():
    fmt = formats.get("strongswan")
    assert fmt.filename(view(name='../../etc/"x y"')) == "swanctl-etc_x_y.conf"
    assert fmt.filename(view(name="")) == "swanctl-c1.conf"   # no name: the id


def test_an_unknown_format_lists_the_valid_ones():
    with pytest.raises(formats.UnknownFormat) as raised:
        formats.get("vyos-1.9")
    assert str(raised.value) == (
        "unknown peer configuration format 'vyos-1.9'; valid formats: strongswan, libreswan, "
        "vyos, cisco-ios, juniper-srx, fortigate, generic")
