"""The status machine of VPN services and site connections, in one place.

Objects are born ``PENDING_CREATE``; only an agent's report moves them. A
pending object accepts a report only when it says it resolves the pending
state (``updated_pending_status``), so a late report of an older state cannot
overwrite a newer change. Updates are refused while an object is pending,
as in Neutron.
"""

from __future__ import annotations

from isthmus import attributes as a

ACTIVE = "ACTIVE"
DOWN = "DOWN"
BUILD = "BUILD"
ERROR = "ERROR"
PENDING_CREATE = "PENDING_CREATE"
PENDING_UPDATE = "PENDING_UPDATE"
PENDING_DELETE = "PENDING_DELETE"

ALL = (ACTIVE, DOWN, BUILD, ERROR, PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE)
PENDING = frozenset({PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE})
REPORTABLE = frozenset({ACTIVE, DOWN, ERROR})
REPORTED = (ACTIVE, DOWN, ERROR)   # in the order docs/rpc.md lists them

STATUS = a.Attr("status", schema={"type": "string", "enum": list(ALL)}, agent=True,
                store=a.Column(a.STATUS_TYPE))
"""The ``status`` attribute of VPN services and site connections."""


def on_create() -> str:
    """The status of a new VPN service or site connection: pending until an agent reports."""
    return PENDING_CREATE


def is_pending(status: str) -> bool:
    """Whether ``status`` waits for an agent's report (PENDING_CREATE, _UPDATE, _DELETE)."""
    return status in PENDING


def can_update(status: str) -> bool:
    """Whether an object with ``status`` may be updated (not while pending, as in Neutron)."""
    return status not in PENDING


def after_report(current: str, reported: str, resolves_pending: bool) -> str:
    """The status an object takes when an agent reports ``reported``."""
    if reported not in REPORTABLE:
        return current
    if is_pending(current) and not resolves_pending:
        return current
    return reported
