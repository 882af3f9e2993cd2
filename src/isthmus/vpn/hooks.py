"""The seam where created, updated and deleted resources are handed to drivers.

The domain calls :meth:`ChangeHooks.validate` inside the transaction, before
anything is written (a driver may refuse with a 400/409), and
:meth:`ChangeHooks.changed` after the commit (a driver tells its agents).
Until drivers are configured, :class:`NoHooks` accepts everything.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from sqlalchemy.engine import Connection

from isthmus.context import RequestContext


class ChangeHooks(Protocol):
    """What the domain calls around every change: the service drivers' view of it."""

    def validate(self, conn: Connection, ctx: RequestContext, collection: str, action: str,
                 request: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        """Raise an Isthmus error to refuse ``action`` on ``collection``."""

    def changed(self, ctx: RequestContext, collection: str, action: str,
                new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """Called once the change is committed."""


class NoHooks:
    """Change hooks that accept everything and tell no one (no service driver loaded)."""

    def validate(self, conn: Connection, ctx: RequestContext, collection: str, action: str,
                 request: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        """Accept every change."""
        return None

    def changed(self, ctx: RequestContext, collection: str, action: str,
                new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """Tell no one."""
        return None


class HookChain:
    """Several change hooks as one: each validates in turn, each hears every change."""

    def __init__(self, *members: ChangeHooks) -> None:
        self.members = members

    def validate(self, conn: Connection, ctx: RequestContext, collection: str, action: str,
                 request: Mapping[str, Any], current: Mapping[str, Any] | None) -> None:
        """Ask every member; the first to refuse wins."""
        for member in self.members:
            member.validate(conn, ctx, collection, action, request, current)

    def changed(self, ctx: RequestContext, collection: str, action: str,
                new: Mapping[str, Any] | None, old: Mapping[str, Any] | None) -> None:
        """Tell every member."""
        for member in self.members:
            member.changed(ctx, collection, action, new, old)
