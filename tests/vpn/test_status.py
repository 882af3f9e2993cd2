"""The status machine: which report moves which status."""

from __future__ import annotations

import pytest

from isthmus.vpn import status as s


@pytest.mark.parametrize("current, reported, resolves, expected", [
    # A settled object takes whatever the device does.
    (s.ACTIVE, s.DOWN, False, s.DOWN),
    (s.DOWN, s.ACTIVE, False, s.ACTIVE),
    (s.ERROR, s.ACTIVE, True, s.ACTIVE),
    # A pending object waits for the report of the sync that follows the change ...
    (s.PENDING_CREATE, s.ACTIVE, False, s.PENDING_CREATE),
    (s.PENDING_UPDATE, s.DOWN, False, s.PENDING_UPDATE),
    (s.PENDING_DELETE, s.ACTIVE, False, s.PENDING_DELETE),
    # ... and takes that one.
    (s.PENDING_CREATE, s.ACTIVE, True, s.ACTIVE),
    (s.PENDING_UPDATE, s.ERROR, True, s.ERROR),
    # An agent never sets a pending or BUILD status.
    (s.ACTIVE, s.PENDING_UPDATE, True, s.ACTIVE),
    (s.DOWN, s.BUILD, True, s.DOWN),
    (s.ACTIVE, "SOMETHING", True, s.ACTIVE),
])
def test_after_report(current, reported, resolves, expected):
    assert s.after_report(current, reported, resolves) == expected


def test_objects_are_born_pending_and_cannot_be_updated_until_an_agent_reports():
    born = s.on_create()
    assert born == s.PENDING_CREATE
    assert s.is_pending(born) and not s.can_update(born)
    settled = s.after_report(born, s.ACTIVE, resolves_pending=True)
    assert not s.is_pending(settled) and s.can_update(settled)


@pytest.mark.parametrize("status", s.ALL)
def test_pending_and_updatable_are_opposites(status):
    assert s.is_pending(status) is (status.startswith("PENDING_"))
    assert s.can_update(status) is not s.is_pending(status)
