"""Site connections seen from the peer, built directly: the cases the vendor tests share."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable

import pytest

from isthmus.peers import PeerView, Policy, Unsupported

GOLDEN = Path(__file__).with_name("golden")
REGENERATE = os.environ.get("ISTHMUS_REGENERATE_GOLDEN") == "1"
"""``ISTHMUS_REGENERATE_GOLDEN=1 pytest tests/peer_configs`` rewrites the golden bodies."""


def policy(**overrides: Any) -> Policy:
    """The API defaults: aes-128, sha256, group5, 3600 seconds."""
    values: dict[str, Any] = {"encryption_algorithm": "aes-128", "auth_algorithm": "sha256",
                              "pfs": "group5", "lifetime_units": "seconds",
                              "lifetime_value": 3600}
    return Policy(**{**values, **overrides})


def view(ike: dict[str, Any] | None = None, ipsec: dict[str, Any] | None = None,
         **overrides: Any) -> PeerView:
    """A connection with the API defaults but IKEv2, as the peer at 203.0.113.20 sees it."""
    values: dict[str, Any] = {
        "connection_id": "5a1c7e2b-94f3-4d0e-8c61-0f2d3b4a5c6d", "name": "branch-office",
        "local_address": "203.0.113.20", "remote_address": "198.51.100.10",
        "local_id": "203.0.113.20", "remote_id": "198.51.100.10",
        "local_subnets": ("192.168.20.0/24",), "remote_subnets": ("10.10.0.0/24",),
        "psk": "s3cret-psk", "ike_version": 2, "phase1_negotiation_mode": "main",
        "ike": policy(**(ike or {})), "ipsec": policy(**(ipsec or {})),
        "transform_protocol": "esp", "encapsulation_mode": "tunnel",
        "dpd_action": "hold", "dpd_interval": 30, "dpd_timeout": 120, "mtu": 1500,
        "isthmus_initiates": True,
    }
    return PeerView(**{**values, **overrides})


CASES: dict[str, PeerView] = {
    "defaults-ikev2": view(),
    "aes256-sha256-group14": view(ike={"encryption_algorithm": "aes-256", "pfs": "group14"},
                                  ipsec={"encryption_algorithm": "aes-256", "pfs": "group14"}),
    "gcm": view(ike={"encryption_algorithm": "aes-256-gcm-16", "auth_algorithm": "sha384",
                     "pfs": "group20"},
                ipsec={"encryption_algorithm": "aes-256-gcm-16", "pfs": "group20"}),
    "ikev1": view(ike_version=1, ike={"encryption_algorithm": "aes-256", "pfs": "group14"},
                  ipsec={"encryption_algorithm": "aes-256", "pfs": "group14"},
                  isthmus_initiates=False),
    "two-subnets": view(local_subnets=("192.168.20.0/24", "192.168.21.0/24"),
                        ipsec={"pfs": ""}),
    "two-subnets-ikev1": view(ike_version=1,
                              local_subnets=("192.168.20.0/24", "192.168.21.0/24"),
                              ipsec={"pfs": ""}),
}
"""Representative connections: each vendor has a golden file for those it can express."""


def check_golden(fmt: str, case: str, rendered: str, comment: str,
                 regenerate: bool = REGENERATE) -> None:
    """``rendered`` is the golden file's body; its head is a reviewed comment block.

    The head (every line up to the first empty one) cites the vendor reference the
    file was reviewed against; regenerating keeps it and rewrites the body only.
    """
    path = GOLDEN / fmt / f"{case}.txt"
    head = path.read_text().partition("\n\n")[0] if path.exists() else \
        f"{comment} NOT REVIEWED: cite the vendor reference and what was checked"
    if regenerate:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{head}\n\n{rendered}")
    text = path.read_text()
    head, _, body = text.partition("\n\n")
    assert all(line.startswith(comment) for line in head.splitlines()), head
    assert "https://" in head and "NOT REVIEWED" not in head, \
        f"{path}: the head must cite the reference it was reviewed against"
    assert body == rendered, f"{path} differs from render(); review, then regenerate"


def refuses(render: Callable[[PeerView], str], field: str, case: PeerView) -> Unsupported:
    """The :class:`Unsupported` that ``render`` raises for ``case``, checked to name ``field``."""
    with pytest.raises(Unsupported) as raised:
        render(case)
    assert raised.value.field == field, str(raised.value)
    return raised.value


def replaced(case: PeerView, **changes: Any) -> PeerView:
    """``case`` with some fields changed."""
    return dataclasses.replace(case, **changes)
