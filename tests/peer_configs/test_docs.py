"""docs/peers.md shows what the formats write today: its examples are rendered again here."""

from __future__ import annotations

from pathlib import Path

import pytest

from isthmus.peers import PeerView, formats
from tests.peer_configs.views import CASES
from tests.strongswan.test_mapping import connection

DOC = Path(__file__).resolve().parents[2] / "docs" / "peers.md"

# the connection a-to-b of the peer tests, as the doc describes it
EXAMPLE = connection(id="4d1c7c1e-9f5e-4a39-9d0b-2f1c6f3b8a10", name="a-to-b",
                     peer_address="198.51.100.12", peer_id="@b.example",
                     local_id="@a.example", external_ip="198.51.100.11",
                     local_cidrs=["10.71.0.0/24"], peer_cidrs=["10.72.0.0/24"],
                     psk="peers-test-secret",
                     dpd={"action": "restart", "interval": 30, "timeout": 120})


CORE = ("strongswan", "libreswan", "generic")


@pytest.mark.parametrize("name", CORE)
def test_the_doc_shows_each_formats_current_output(name):
    fmt = formats.get(name)
    view = PeerView.of(EXAMPLE)
    doc = DOC.read_text()
    assert f"`{fmt.filename(view)}`:\n\n```\n{fmt.render(view).rstrip()}\n```" in doc, \
        f"docs/peers.md's {name} example is not what the format writes: render it again"


@pytest.mark.parametrize("name", [f for f in formats.FORMATS if f not in CORE])
def test_the_doc_shows_each_vendors_current_output(name):
    # The vendor sections show the IKEv2 defaults case of their golden files.
    rendered = formats.get(name).render(CASES["defaults-ikev2"]).rstrip()
    assert f"```\n{rendered}\n```" in DOC.read_text(), \
        f"docs/peers.md's {name} example is not what the format writes: render it again"
