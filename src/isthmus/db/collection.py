"""A table seen as an API collection: scoped reads, writes, and row → dict.

Resource modules subclass :class:`Collection`, say which table and resource
they serve and how a row becomes the API dict; scoping by project, lookups
that hide other projects' objects as 404, and SQL-side filters on plain
columns are done here once.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus.attributes import Resource
from isthmus.context import RequestContext

Filters = Mapping[str, Sequence[Any]]


def new_id() -> str:
    return str(uuid.uuid4())


class Collection:
    """CRUD plumbing for one table; subclasses add the resource's rules."""

    resource: Resource
    table: sa.Table
    # API attribute -> column, for attributes a filter can test in SQL.
    columns: Mapping[str, str] = {}

    # -- what subclasses provide ------------------------------------------
    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        raise NotImplementedError

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        """Child rows needed by :meth:`to_api` for ``rows`` (one query, not N)."""
        return None

    def visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        """Which rows ``ctx`` may see; ``None`` means all."""
        if ctx.is_admin:
            return None
        return self.table.c.project_id == ctx.project_id

    # -- reads ------------------------------------------------------------
    def list(self, conn: Connection, ctx: RequestContext,
             filters: Filters | None = None) -> list[dict[str, Any]]:
        query = sa.select(self.table)
        clause = self.visible(ctx)
        if clause is not None:
            query = query.where(clause)
        for attr, values in (filters or {}).items():
            column = self.columns.get(attr)
            if column is not None and values:
                query = query.where(self.table.c[column].in_(list(values)))
        rows = conn.execute(query.order_by(self.table.c.id)).all()
        extras = self.load_extras(conn, rows)
        return [self.to_api(row, extras) for row in rows]

    def find_row(self, conn: Connection, ctx: RequestContext | None, id_: str,
                 lock: bool = False) -> Row | None:
        query = sa.select(self.table).where(self.table.c.id == id_)
        if ctx is not None:
            clause = self.visible(ctx)
            if clause is not None:
                query = query.where(clause)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def get_row(self, conn: Connection, ctx: RequestContext | None, id_: str,
                lock: bool = False) -> Row:
        row = self.find_row(conn, ctx, id_, lock=lock)
        if row is None:
            raise self.resource.not_found(id_)
        return row

    def get(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        row = self.get_row(conn, ctx, id_)
        return self.to_api(row, self.load_extras(conn, [row]))

    def show_row(self, conn: Connection, row: Row) -> dict[str, Any]:
        return self.to_api(row, self.load_extras(conn, [row]))

    # -- writes -----------------------------------------------------------
    def insert(self, conn: Connection, values: Mapping[str, Any]) -> Row:
        conn.execute(sa.insert(self.table).values(**values))
        return self.get_row(conn, None, values["id"])

    def update_row(self, conn: Connection, id_: str, values: Mapping[str, Any]) -> Row:
        if values:
            conn.execute(sa.update(self.table).where(self.table.c.id == id_).values(**values))
        return self.get_row(conn, None, id_)

    def delete_row(self, conn: Connection, id_: str) -> None:
        conn.execute(sa.delete(self.table).where(self.table.c.id == id_))


def owner_project(ctx: RequestContext, body: Mapping[str, Any]) -> str:
    """The project a new object belongs to (validated by the API layer)."""
    return body.get("project_id") or body.get("tenant_id") or ctx.project_id


def children(conn: Connection, table: sa.Table, parent_col: str, value_col: str,
             parent_ids: Iterable[str]) -> dict[str, list[str]]:
    """``{parent_id: sorted child values}`` for a child table, in one query."""
    ids = list(parent_ids)
    result: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return result
    parent = table.c[parent_col]
    value = table.c[value_col]
    query = sa.select(parent, value)
    # One IN list per 500 ids keeps every backend's parameter limit happy.
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for pid, val in conn.execute(query.where(parent.in_(chunk))):
            result[pid].append(val)
    for values in result.values():
        values.sort()
    return result
