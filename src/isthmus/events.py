"""The event history: status transitions and the API changes that caused them.

One row per event, declared once as the ``event`` resource (``GET /v2.0/vpn/events``,
docs/api.md, "Events"). Two kinds:

- ``api``: a create, update, delete or router action through the API: who
  (``user_id``, ``project_id``, ``request_id``) and, for an update, the *names* of
  the attributes that changed, never their values (so never a PSK);
- ``status``: an object's status changed (an agent's report, or its agent stopped
  sending heartbeats), with the reason the agent gave.

Events are recorded in the transaction of the change itself, so the history never
misses a committed change nor shows one that rolled back. Their ``id`` is an
increasing integer: the order of the history, the ``marker`` of its pages and the
``id:`` of the live stream. After the commit the :data:`BELL` rings, waking the
streams of this process at once; streams poll the table too, for events recorded by
other server processes sharing the database.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from isthmus import attributes as a
from isthmus.context import RequestContext
from isthmus.db import mapping, models
from isthmus.db.collection import Collection, now
from isthmus.exceptions import NotFound

LOG = logging.getLogger(__name__)

API, STATUS = "api", "status"
HEARTBEATS_STOPPED = "the agent serving this router stopped sending heartbeats"


class EventNotFound(NotFound):
    message = "Event %(id)s could not be found."


def _text(size: int, **column: Any) -> a.Column:
    return a.Column(sa.String(size), nullable=True, **column)


def _nullable(size: int = 255) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": size}


RESOURCE = a.Resource(
    singular="event", plural="events", path="/v2.0/vpn/events", table="events",
    description="Status transitions and API changes of VPN and router objects (read-only)",
    not_found=lambda id_: EventNotFound(id=id_),
    attrs=(
        a.Attr("id", schema={"type": "integer", "minimum": 1}, filter_parse=a.integer,
               store=a.Column(sa.Integer(), primary_key=True)),
        a.Attr("project_id", schema={"type": "string"}, store=a.Column(a.NAME_TYPE)),
        a.Attr("tenant_id", schema={"type": "string"}, store=a.SameAs("project_id")),
        a.Attr("resource_type", schema={"type": "string"}, store=a.Column(sa.String(64))),
        a.Attr("resource_id", schema={"type": "string"},
               store=a.Column(a.UUID_TYPE, index=True)),
        a.Attr("kind", schema={"type": "string", "enum": [API, STATUS]},
               store=a.Column(sa.String(16))),
        a.Attr("action", schema=_nullable(64), store=_text(64)),
        a.Attr("old_status", schema=_nullable(16), store=_text(16)),
        a.Attr("status", schema=_nullable(16), store=_text(16)),
        a.Attr("reason", schema=_nullable(), store=_text(255)),
        a.Attr("changed", schema={"type": "array", "items": {"type": "string"}},
               store=a.Column(sa.Text(), json=True, default="[]")),
        a.Attr("user_id", schema=_nullable(), store=_text(255)),
        a.Attr("request_id", schema=_nullable(64), store=_text(64)),
        a.Attr("created_at", schema={"type": "string"},
               store=a.Column(sa.DateTime(), index=True, show=a.timestamp)),
    ))
EVENTS = mapping.table_of(RESOURCE, models.Base.metadata)


class Events(Collection):
    """The event history (``GET /v2.0/vpn/events``): written by the recorders below,
    never through the API. Ids are integers; an id that is not one finds nothing."""

    resource = RESOURCE
    table = EVENTS

    def key(self, id_: Any) -> Any:
        try:
            return a.integer(id_)
        except a.InvalidValue:
            return None

    def latest_id(self, conn: Connection) -> int:
        """The id of the newest event (0 if there is none)."""
        return conn.execute(sa.select(sa.func.max(EVENTS.c.id))).scalar() or 0


# --------------------------------------------------------------------------
# Recording, inside the transaction of the change.

_INSERT = sa.insert(EVENTS)


def _insert(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    at = now()
    full = [{"action": None, "old_status": None, "status": None, "reason": None,
             "changed": "[]", "user_id": None, "request_id": None, "created_at": at, **row}
            for row in rows]
    # One row (an API change) is a plain execute, cheaper than an executemany.
    conn.execute(_INSERT, full[0] if len(full) == 1 else full)
    after_commit(conn, BELL.ring)


def after_commit(conn: Connection, callback: Callable[[], None]) -> None:
    """Have :class:`~isthmus.db.Database` call ``callback`` once the transaction of
    ``conn`` commits (never if it rolls back)."""
    pending = conn.info.setdefault("after_commit", [])
    if callback not in pending:
        pending.append(callback)


def record_api(conn: Connection, ctx: RequestContext, resource: a.Resource, action: str,
               obj: Mapping[str, Any], changed: Iterable[str] = ()) -> None:
    """An API change of ``obj`` (a ``resource`` object as the API shows it) by ``ctx``;
    ``changed``: the names of the attributes it changed (values are never kept)."""
    _insert(conn, [{"project_id": obj.get("project_id") or ctx.project_id,
                    "resource_type": resource.singular, "resource_id": obj["id"],
                    "kind": API, "action": action, "status": obj.get("status"),
                    "changed": json.dumps(sorted(changed)), "user_id": ctx.user_id,
                    "request_id": ctx.request_id}])


def changed_names(resource: a.Resource, old: Mapping[str, Any], new: Mapping[str, Any],
                  asked: Iterable[str]) -> list[str]:
    """The names of the attributes in ``asked`` whose value differs between ``old`` and
    ``new`` (an update to the same value changes nothing)."""
    return sorted(name for name in asked
                  if name in resource.by_name and old.get(name) != new.get(name))


@dataclass(frozen=True)
class Transition:
    """One object's status change, for :func:`record_transitions`."""

    resource_type: str
    resource_id: str
    project_id: str
    old_status: str | None
    status: str
    reason: str | None = None


def record_transitions(conn: Connection, transitions: Sequence[Transition]) -> None:
    """Status changes of objects (an agent's report, a dead agent)."""
    _insert(conn, [{"project_id": t.project_id, "resource_type": t.resource_type,
                    "resource_id": t.resource_id, "kind": STATUS,
                    "old_status": t.old_status, "status": t.status,
                    "reason": None if t.reason is None else t.reason[:255]}
                   for t in transitions])


def purge(conn: Connection, retention_days: int, at: datetime | None = None) -> int:
    """Delete events older than ``retention_days`` (0: none); how many. The newest
    event is always kept, so that ids never start again from 1 (SQLite reuses the
    highest id of an empty table) and a stream's ``Last-Event-ID`` stays meaningful."""
    if retention_days <= 0:
        return 0
    cutoff = (at or now()) - timedelta(days=retention_days)
    # Read first: MariaDB refuses a subquery on the table a DELETE deletes from.
    latest = conn.execute(sa.select(sa.func.max(EVENTS.c.id))).scalar() or 0
    deleted = conn.execute(sa.delete(EVENTS).where(EVENTS.c.created_at < cutoff,
                                                   EVENTS.c.id < latest)).rowcount
    if deleted:
        LOG.info("Purged %d events older than %d days", deleted, retention_days)
    return deleted


# --------------------------------------------------------------------------
# Waking the live streams of this process.

class Bell:
    """A condition variable with a counter: :meth:`ring` after events are committed,
    :meth:`wait` until it rang since a count (or a timeout)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rung = 0

    @property
    def count(self) -> int:
        """How often it rang so far; pass it to :meth:`wait`."""
        return self._rung

    def ring(self) -> None:
        """Wake every waiter."""
        with self._cond:
            self._rung += 1
            self._cond.notify_all()

    def wait(self, since: int, timeout_s: float) -> bool:
        """Wait until it rang after ``since`` (a :attr:`count`); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._rung != since, timeout=timeout_s)


BELL = Bell()
"""Rung after every commit that recorded events, in this process."""
