"""A table seen as an API collection: scoped reads, writes, and row → dict.

Resource modules subclass :class:`Collection` and say which resource (and
table) they serve; a row becomes the API dict through the resource's
attribute table (:mod:`isthmus.db.mapping`), plus what the subclass computes
(:meth:`Collection.computed`). Scoping by project, lookups that hide other
projects' objects as 404, and SQL-side filters and sorting on plain columns
are done here once. So are Neutron's standard attributes of the
collections that have them (``created_at``, ``updated_at``, ``revision_number``
and ``tags``: networks, subnets and routers).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence
from typing import Collection as Collection_

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from isthmus.attributes import Attr, Nested, Resource, SameAs, timestamp
from isthmus.context import RequestContext
from isthmus.db import mapping, models

Filters = Mapping[str, "Sequence[Any] | Range"]
# (API attribute, descending) pairs, most significant first.
SortKeys = Sequence[tuple[str, bool]]
TAGS = models.Tag.__table__


def new_id() -> str:
    """A new object id: a random UUID, as Neutron makes them."""
    return str(uuid.uuid4())


def now() -> datetime:
    """UTC, to the second: what Neutron stores and shows (``2026-11-20T10:00:00Z``)."""
    return datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)


@dataclass(frozen=True)
class Range:
    """A filter keeping the values from ``low`` (included) to ``high`` (excluded) of
    one attribute, in SQL and on the API value (``parse`` turns the API value into
    what the bounds compare with: a shown timestamp into a ``datetime``)."""

    low: Any = None
    high: Any = None
    parse: Callable[[Any], Any] | None = None

    def __contains__(self, value: Any) -> bool:
        if value is None:
            return False
        if self.parse is not None:
            value = self.parse(value)
        return (self.low is None or value >= self.low) and \
            (self.high is None or value < self.high)

    def clause(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """The SQL condition on ``column``."""
        parts = [column >= self.low] if self.low is not None else []
        if self.high is not None:
            parts.append(column < self.high)
        return sa.and_(sa.true(), *parts)


# conn.info key: rows locked by Collection.lock_row, by (table, id), for this transaction.
_LOCKED_ROWS = "isthmus_locked_rows"

__all__ = ["Collection", "Range", "children", "new_id", "now", "owner_project", "statement",
           "timestamp"]


class Collection:
    """CRUD plumbing for one table; subclasses add the resource's rules."""

    resource: Resource
    table: sa.Table
    # Neutron's standard attributes (timestamps, revision_number, tags): the table has
    # the columns of models._StandardAttributes. A new object starts at
    # ``created_revision``: what Neutron 29 shows right after a create (a network 1,
    # a subnet 0, a router 1; its internal updates during the create bump it).
    standard_attributes = False
    created_revision = 0

    @property
    def columns(self) -> Mapping[str, str]:
        """API attribute -> column, for the attributes SQL can filter and sort on."""
        cls = type(self)
        cached = cls.__dict__.get("_columns")
        if cached is None:
            cached = mapping.filter_columns(self.resource)
            cls._columns = cached  # type: ignore[attr-defined]
        return cached

    # -- what subclasses provide ------------------------------------------
    def computed(self, row: Row, extras: Any) -> dict[str, Any]:
        """The attributes the table does not store (``store=None``), from ``row`` and
        :meth:`load_extras`; standard attributes' tags are added apart."""
        return {}

    def to_api(self, row: Row, extras: Any) -> dict[str, Any]:
        """One row (with its :meth:`load_extras`) as the API shows it, before policy hides
        fields."""
        shown = mapping.show(self.resource, row)
        extra = self.computed(row, extras)
        if extra:
            shown.update(extra)
        return shown

    def load_extras(self, conn: Connection, rows: Sequence[Row]) -> Any:
        """Child rows needed by :meth:`to_api` for ``rows`` (one query, not N)."""
        return None

    def visible(self, ctx: RequestContext) -> sa.ColumnElement[bool] | None:
        """Which rows ``ctx`` may see; ``None`` means all."""
        if ctx.is_admin:
            return None
        return self.table.c.project_id == ctx.project_id

    # -- reads ------------------------------------------------------------
    def list(self, conn: Connection, ctx: RequestContext, filters: Filters | None = None,
             attrs: Collection_[str] | None = None) -> list[dict[str, Any]]:
        """Every object ``ctx`` may see that passes ``filters`` on plain columns, with
        only the attributes ``attrs`` (None: all), read from only their columns."""
        chosen = self._narrowed(attrs)
        query = self._filtered(ctx, filters or {}, None, chosen)
        rows = conn.execute(query.order_by(self.table.c.id)).all()
        return self.show_rows(conn, rows, chosen)

    def _narrowed(self, attrs: Collection_[str] | None) -> tuple[Attr, ...] | None:
        """The attributes to read for the names ``attrs``; ``None`` (all of them) when
        ``attrs`` is None or names one the collection computes (it may need any column)."""
        if attrs is None:
            return None
        chosen = tuple(x for x in self.resource.attrs if x.name in attrs)
        if any(x.store is None and x.name != "tags" for x in chosen):
            return None
        return chosen

    def _selected(self, chosen: tuple[Attr, ...] | None) -> sa.Select:
        """``SELECT`` of the whole row, or of ``id`` and the columns of ``chosen``."""
        if chosen is None:
            return sa.select(self.table)
        names = {"id"}
        for attr in chosen:
            target = self.resource.by_name[attr.store.attr] \
                if isinstance(attr.store, SameAs) else attr
            if isinstance(target.store, Nested):
                names.update(column.name for column in target.store.keys.values()
                             if column.name)
            elif target.column is not None:
                names.add(target.column)
        return sa.select(*(column for column in self.table.c if column.name in names))

    def _filtered(self, ctx: RequestContext, filters: Filters,
                  tag_filters: Mapping[str, Iterable[str]] | None = None,
                  chosen: tuple[Attr, ...] | None = None) -> sa.Select:
        """The rows ``ctx`` may see that pass the filters on plain columns and
        Neutron's tag filters (``tags``, ``tags-any``, ``not-tags``, ``not-tags-any``);
        only the columns of ``chosen`` (None: all)."""
        query = self._selected(chosen)
        clause = self.visible(ctx)
        if clause is not None:
            query = query.where(clause)
        for attr, values in filters.items():
            if isinstance(values, Range):
                stored = self.resource.by_name[attr].column
                if stored is not None:
                    query = query.where(values.clause(self.table.c[stored]))
                continue
            column = self.columns.get(attr)
            if column is not None and values:
                query = query.where(self.table.c[column].in_(list(values)))
        for kind, tags in (tag_filters or {}).items():
            query = query.where(self._tagged(kind, sorted(tags)))
        return query

    def _tagged(self, kind: str, tags: list[str]) -> sa.ColumnElement[bool]:
        def has(*wanted: str) -> sa.Exists:
            return sa.exists().where(TAGS.c.resource_id == self.table.c.id,
                                     TAGS.c.tag.in_(wanted))
        every = sa.and_(*(has(tag) for tag in tags))
        return {"tags": every, "tags-any": has(*tags), "not-tags": sa.not_(every),
                "not-tags-any": sa.not_(has(*tags))}[kind]

    def key(self, id_: Any) -> Any:
        """``id_`` as the primary key column compares it; ``None`` when it cannot be one
        (a table of integer ids given ``abc``): then nothing is found."""
        return id_

    def sortable(self, keys: Iterable[str]) -> bool:
        """Whether SQL can filter and sort on all of ``keys`` (plain columns)."""
        return all(key in self.columns for key in keys)

    def page(self, conn: Connection, ctx: RequestContext, filters: Filters,
             tag_filters: Mapping[str, Iterable[str]], sort: SortKeys,
             limit: int | None, marker: str | None, reverse: bool,
             accept: Callable[[dict[str, Any]], dict[str, Any] | None],
             attrs: Collection_[str] | None = None
             ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the list in SQL: filtered, sorted (None first, ``id`` breaking
        ties) and started after ``marker`` (before it with ``reverse``), plus whether
        more follow. Every key must be :meth:`sortable`.

        ``accept`` has the last word on each object (the caller's view of it, or
        ``None`` to skip it): SQL narrows and orders, ``accept`` applies policy and
        the exact filters, and further rows are fetched until the page is full.
        """
        order = [(self.table.c[self.columns[key]], descending) for key, descending in sort]
        order.append((self.table.c.id, sort[-1][1] if sort else False))
        if reverse:
            order = [(column, not descending) for column, descending in order]
        chosen = self._narrowed(attrs)
        query = self._filtered(ctx, filters, tag_filters, chosen).order_by(
            *(_order_by(conn, column, descending) for column, descending in order))
        after = None
        if marker is not None:
            key = self.key(marker)
            row = None if key is None else \
                conn.execute(query.where(self.table.c.id == key)).first()
            if row is None or accept(self.show_row(conn, row, chosen)) is None:
                raise self.resource.not_found(marker)
            after = row
        if limit is None:   # everything after the marker: one query
            scan = query if after is None else query.where(_after(conn, order, after))
            found = [view for item in self.show_rows(conn, conn.execute(scan).all(), chosen)
                     if (view := accept(item)) is not None]
            return found[::-1] if reverse else found, False
        found = []
        # One row more than the page says whether another page follows; rows that
        # ``accept`` refuses cost another, larger, query after the last row seen.
        batch = limit + 1
        while len(found) <= limit:
            scan = query if after is None else query.where(_after(conn, order, after))
            rows = conn.execute(scan.limit(batch)).all()
            found += [view for item in self.show_rows(conn, rows, chosen)
                      if (view := accept(item)) is not None]
            if len(rows) < batch:
                break
            after = rows[-1]
            batch = min(batch * 2, 1000)
        page = found[:limit]
        return page[::-1] if reverse else page, len(found) > limit

    def find_row(self, conn: Connection, ctx: RequestContext | None, id_: str,
                 lock: bool = False) -> Row | None:
        """The row ``id_`` if ``ctx`` may see it (``ctx`` None: any), else ``None``;
        ``lock`` takes it FOR UPDATE."""
        key = self.key(id_)
        if key is None:
            return None
        if type(self).visible is Collection.visible:   # the plain project scope
            if ctx is not None and not ctx.is_admin:
                return conn.execute(self._row_by_id(True, lock), {
                    "row_id": key, "row_project": ctx.project_id}).first()
            return conn.execute(self._row_by_id(False, lock), {"row_id": key}).first()
        query = sa.select(self.table).where(self.table.c.id == key)
        if ctx is not None:
            clause = self.visible(ctx)
            if clause is not None:
                query = query.where(clause)
        if lock:
            query = query.with_for_update()
        return conn.execute(query).first()

    def _row_by_id(self, scoped: bool, lock: bool) -> sa.Select:
        """``SELECT`` of one row by id, and by project if ``scoped`` (:func:`statement`)."""
        def build() -> sa.Select:
            query = sa.select(self.table).where(self.table.c.id == sa.bindparam("row_id"))
            if scoped:
                query = query.where(self.table.c.project_id == sa.bindparam("row_project"))
            return query.with_for_update() if lock else query
        return statement(self.table, f"select scoped={scoped} lock={lock}", build)

    def get_row(self, conn: Connection, ctx: RequestContext | None, id_: str,
                lock: bool = False) -> Row:
        """As :meth:`find_row`, but a missing or hidden row is the resource's 404 error.

        With ``lock``, a row that :meth:`lock_row` handed over in this transaction is
        taken (once) instead of being read again."""
        if lock:
            handed = conn.info.get(_LOCKED_ROWS)
            if handed:
                row = handed.pop((self.table.name, id_), None)
                if row is not None:
                    return row
        row = self.find_row(conn, ctx, id_, lock=lock)
        if row is None:
            raise self.resource.not_found(id_)
        return row

    def lock_row(self, conn: Connection, ctx: RequestContext, id_: str) -> Row:
        """:meth:`get_row` ``FOR UPDATE``, handed over to the next ``get_row(lock=True)`` of
        the same object in this transaction (the collection's ``update`` or ``delete``,
        which begin so): one read of the row per request instead of two. The caller
        must not change the row in between; the transaction's end drops what is left
        (:meth:`isthmus.db.Database.write`)."""
        row = self.get_row(conn, ctx, id_, lock=True)
        conn.info.setdefault(_LOCKED_ROWS, {})[(self.table.name, id_)] = row
        return row

    def get(self, conn: Connection, ctx: RequestContext, id_: str) -> dict[str, Any]:
        """One object as the API shows it, 404 if ``ctx`` may not see it."""
        return self.show_row(conn, self.get_row(conn, ctx, id_))

    def show_row(self, conn: Connection, row: Row,
                 chosen: tuple[Attr, ...] | None = None) -> dict[str, Any]:
        """One row as the API shows it (see :meth:`show_rows`)."""
        return self.show_rows(conn, [row], chosen)[0]

    def show_rows(self, conn: Connection, rows: Sequence[Row],
                  chosen: tuple[Attr, ...] | None = None) -> list[dict[str, Any]]:
        """The API dicts of ``rows``, standard attributes included where the table has
        them; only the stored attributes in ``chosen`` (and tags) when it is given."""
        if not rows:
            return []
        if chosen is None:
            extras = self.load_extras(conn, rows)
            read = mapping.reader(self.resource, rows[0])
            shown = []
            for row in rows:
                item = read(row)
                extra = self.computed(row, extras)
                if extra:
                    item.update(extra)
                shown.append(item)
        else:
            read = mapping.reader(self.resource, rows[0], chosen)
            shown = [read(row) for row in rows]
        if self.standard_attributes and (chosen is None or
                                         any(x.name == "tags" for x in chosen)):
            tags = children(conn, TAGS, "resource_id", "tag", [row.id for row in rows])
            for row, item in zip(rows, shown):
                item["tags"] = tags[row.id]
        return shown

    # -- writes -----------------------------------------------------------
    def insert(self, conn: Connection, values: Mapping[str, Any]) -> Row:
        """Insert ``values``, stamping standard attributes (created, updated, first revision).

        Returns the row as written, built from ``values`` and the columns' defaults
        (a :class:`WrittenRow`), not read back: that was a round trip per create."""
        if self.standard_attributes:
            created = now()
            values = {**values, "created_at": created, "updated_at": created,
                      "revision_number": self.created_revision}
        conn.execute(statement(self.table, "insert", lambda: sa.insert(self.table)), values)
        return WrittenRow.inserted(self.table, values)  # type: ignore[return-value]

    def update_row(self, conn: Connection, id_: str, values: Mapping[str, Any],
                   revise: bool = True, current: Row | None = None) -> Row:
        """Set ``values``; with standard attributes, a value that changes makes a new
        revision (unless ``revise`` is False: the caller revises once for the request).

        ``current``: the row as the caller read it, locked, in this transaction (else it
        is read here, ``FOR UPDATE``). Returns the row as it now is, built from
        ``current`` and ``values`` (a :class:`WrittenRow`), not read back."""
        if current is None:
            current = self.get_row(conn, None, id_, lock=True)
        after = dict(current._mapping)
        if values:
            after.update(values)
            stamp: dict[str, Any] = {}
            if self.standard_attributes and revise and self.changes(current, values):
                stamp = {"revision_number": self.table.c.revision_number + 1,
                         "updated_at": now()}
                after.update(revision_number=current.revision_number + 1,
                             updated_at=stamp["updated_at"])
            if stamp:
                conn.execute(sa.update(self.table).where(self.table.c.id == id_)
                             .values(**values, **stamp))
            else:   # the SET clause follows the parameters' keys
                conn.execute(statement(self.table, "update", lambda: sa.update(self.table).where(
                    self.table.c.id == sa.bindparam("row_id"))), {**values, "row_id": id_})
        return WrittenRow(after)  # type: ignore[return-value]

    def changes(self, row: Row, values: Mapping[str, Any]) -> dict[str, Any]:
        """The part of ``values`` that differs from ``row``: Neutron revises an object
        only when something changes (an update to the same name is no revision)."""
        stored = row._mapping
        return {key: value for key, value in values.items() if stored[key] != value}

    def revise(self, conn: Connection, id_: str) -> None:
        """A new revision of the object, updated now (no-op without standard attributes)."""
        if self.standard_attributes:
            conn.execute(sa.update(self.table).where(self.table.c.id == id_).values(
                revision_number=self.table.c.revision_number + 1, updated_at=now()))

    def delete_row(self, conn: Connection, id_: str) -> None:
        """Delete the row ``id_`` and, with standard attributes, its tags."""
        if self.standard_attributes:
            conn.execute(sa.delete(TAGS).where(TAGS.c.resource_id == id_))
        conn.execute(statement(self.table, "delete", lambda: sa.delete(self.table).where(
            self.table.c.id == sa.bindparam("row_id"))), {"row_id": id_})

    # -- tags (standard-attr-tag) -------------------------------------------
    def tags(self, conn: Connection, id_: str) -> list[str]:
        """The tags of object ``id_``."""
        return children(conn, TAGS, "resource_id", "tag", [id_])[id_]

    def set_tags(self, conn: Connection, id_: str, tags: Iterable[str]) -> list[str]:
        """Replace the object's tags; a change is a new revision. Returns the tags."""
        old, new = set(self.tags(conn, id_)), set(tags)
        if old != new:
            if old - new:
                conn.execute(sa.delete(TAGS).where(TAGS.c.resource_id == id_,
                                                   TAGS.c.tag.in_(sorted(old - new))))
            if new - old:
                conn.execute(sa.insert(TAGS), [{"resource_id": id_, "tag": tag}
                                               for tag in sorted(new - old)])
            self.revise(conn, id_)
        return sorted(new)


class WrittenRow:
    """A row this transaction just wrote, known without reading it back: its columns by
    name as attributes (``row.id``), by ``row["id"]`` and through ``row._mapping``, as a
    SQLAlchemy ``Row`` offers them."""

    __slots__ = ("_mapping",)

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self._mapping = columns

    @classmethod
    def inserted(cls, table: sa.Table, values: Mapping[str, Any]) -> "WrittenRow":
        """The row an ``INSERT`` of ``values`` into ``table`` made: the other columns
        take their scalar defaults (every column of ours has one, or is NULL)."""
        return cls({**_scalar_defaults(table), **values})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._mapping[name]


_DEFAULTS: dict[sa.Table, dict[str, Any]] = {}
_STATEMENTS: dict[tuple[sa.Table, str], Any] = {}


def statement(table: sa.Table, kind: str, build: Callable[[], Any]) -> Any:
    """The statement ``build()`` makes (``kind`` of it, on ``table``), built once and run
    with bound parameters. SQLAlchemy caches the compiled SQL, but building the
    expression and computing its cache key on every request cost a quarter of an
    API show (docs/deployment.md, "Against Neutron")."""
    found = _STATEMENTS.get((table, kind))
    if found is None:
        found = _STATEMENTS[(table, kind)] = build()
    return found


def _scalar_defaults(table: sa.Table) -> dict[str, Any]:
    """Each column's value when an insert leaves it out: its Python-side scalar default,
    else NULL. A callable or server-only default would be unknown without reading the
    row back, and no table has one (checked here, once per table)."""
    defaults = _DEFAULTS.get(table)
    if defaults is None:
        defaults = {}
        for column in table.c:
            default = column.default
            if default is not None and not default.is_scalar or \
                    default is None and column.server_default is not None:
                raise TypeError(f"{table.name}.{column.name}: an insert cannot know its "
                                "default without reading the row back; give the column a "
                                "scalar default")
            defaults[column.name] = None if default is None else default.arg
        _DEFAULTS[table] = defaults
    return defaults


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


def _sorted_as_python(conn: Connection, column: sa.Column) -> sa.ColumnElement[Any]:
    """``column`` compared as Python compares its values: strings by code point
    (PostgreSQL's "C" collation; SQLite compares so already, MariaDB databases are
    created ``utf8mb4_bin``). Not the primary key: ids are server-made lowercase
    UUIDs, in the same order under every collation, and a ``COLLATE`` would keep
    PostgreSQL from paging along the primary key and ``(project_id, id)`` indexes."""
    if conn.dialect.name == "postgresql" and isinstance(column.type, sa.String) \
            and not column.primary_key:
        return column.collate("C")
    return column


def _order_by(conn: Connection, column: sa.Column, descending: bool) -> Any:
    """``column`` in order with None first (last when descending), as the API sorts.
    SQLite and MariaDB put NULL first by themselves; PostgreSQL must be told."""
    expression = _sorted_as_python(conn, column)
    ordered = expression.desc() if descending else expression.asc()
    if column.nullable and conn.dialect.name == "postgresql":
        ordered = ordered.nulls_last() if descending else ordered.nulls_first()
    return ordered


def _after(conn: Connection, order: Sequence[tuple[sa.Column, bool]],
           row: Row) -> sa.ColumnElement[bool]:
    """Rows that come after ``row`` in ``order`` (None first ascending): the keyset
    condition ``k1 > m1 OR (k1 = m1 AND k2 > m2) OR ...``, NULL-aware."""
    alternatives = []
    equal: list[sa.ColumnElement[bool]] = []
    for column, descending in order:
        mark = row._mapping[column.name]
        key = _sorted_as_python(conn, column)
        if mark is None:
            beyond = sa.false() if descending else column.is_not(None)
            same = column.is_(None)
        else:
            # A bound literal: SQLAlchemy refuses ``<`` against a bare True/False.
            mark = sa.literal(mark, column.type)
            beyond = key > mark if not descending else (
                sa.or_(key < mark, column.is_(None)) if column.nullable else key < mark)
            same = key == mark
        alternatives.append(sa.and_(*equal, beyond))
        equal.append(same)
    return sa.or_(*alternatives)
