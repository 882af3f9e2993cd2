"""Peer views built from a connection payload: the agent's desired state, as
tests/strongswan builds it."""

from __future__ import annotations

from typing import Any

from isthmus.peers import PeerView
from tests.strongswan.test_mapping import connection


def view(ike: dict | None = None, ipsec: dict | None = None, psk_visible: bool = True,
         **overrides: Any) -> PeerView:
    """The peer's view of a connection: defaults of tests/strongswan plus ``overrides``."""
    return PeerView.of(connection(ike=ike, ipsec=ipsec, **overrides), psk_visible)
