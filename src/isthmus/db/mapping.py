"""A resource's attribute table as database storage: its table, rows to API dicts, API
bodies to row values.

Each :class:`~isthmus.attributes.Attr` says where it lives (a column, one column per
key of a dict, another attribute's value, or nowhere: its collection computes it);
everything here follows from that, so a stored attribute is declared once.
"""

from __future__ import annotations

import json
import operator
from typing import Any, Callable, Iterable, Mapping

import sqlalchemy as sa

from isthmus.attributes import Attr, Column, Nested, Resource, SameAs


def table_of(resource: Resource, metadata: sa.MetaData) -> sa.Table:
    """The table of ``resource``: one column per stored attribute (and per key of a
    :class:`Nested` one) plus its hidden columns; a resource with ``project_id`` gets
    the ``(project_id, id)`` index a project's page of a list reads in order."""
    columns: list[sa.Column[Any]] = []
    for attr in resource.attrs:
        if isinstance(attr.store, Column):
            columns.append(attr.store.sql(attr.column))  # type: ignore[arg-type]
        elif isinstance(attr.store, Nested):
            columns += [column.sql(key) for key, column in attr.store.keys.items()]
    columns += [column.sql(name) for name, column in resource.hidden]
    extra: list[Any] = []
    if "project_id" in resource.by_name:
        extra.append(sa.Index(f"ix_{resource.table}_project_id_id", "project_id", "id"))
    return sa.Table(resource.table, metadata, *columns, *extra)


def filter_columns(resource: Resource) -> dict[str, str]:
    """API attribute -> column, for attributes SQL can filter and sort on (plain,
    non-JSON columns, and attributes that show one)."""
    out: dict[str, str] = {}
    for attr in resource.attrs:
        target = resource.by_name[attr.store.attr] if isinstance(attr.store, SameAs) else attr
        if isinstance(target.store, Column) and not target.store.json and \
                target.store.show is None and attr.kind == "scalar":
            out[attr.name] = target.column or target.name
    return out


Locate = Callable[[str], Any]
"""Where a column's value is in a row: its name (a mapping) or its index (a ``Row``)."""


def _by_name(column: str) -> str:
    return column


def _reader(resource: Resource, attr: Attr, locate: Locate = _by_name
            ) -> Callable[[Any], Any]:
    """A function that reads ``attr``'s API value from a row."""
    store = attr.store
    if isinstance(store, SameAs):
        return _reader(resource, resource.by_name[store.attr], locate)
    if isinstance(store, Column):
        return _column_reader(locate(attr.column), store)  # type: ignore[arg-type]
    if isinstance(store, Nested):
        keys = [(key, _column_reader(locate(column.name), column))  # type: ignore[arg-type]
                for key, column in store.keys.items()]
        return lambda row: {key: read(row) for key, read in keys}
    raise ValueError(f"{resource.singular}.{attr.name} is not stored: its collection "
                     "computes it")


def _column_reader(where: Any, column: Column) -> Callable[[Any], Any]:
    if column.json:
        if column.nullable:
            return lambda row: None if row[where] is None else json.loads(row[where])
        return lambda row: json.loads(row[where])
    if column.show is not None:
        show_value = column.show
        return lambda row: show_value(row[where])
    return operator.itemgetter(where)


def _reader_of(resource: Resource, attrs: Iterable[Attr] | None,
               fields: tuple[str, ...] | None) -> Callable[[Any], dict[str, Any]]:
    """A function from a row to the stored attributes in ``attrs`` (all: None), made once
    per resource, attribute set and row shape: lists show thousands of rows with it.
    ``fields``: the ``Row``'s column names, read by position (a ``Row`` reads a name
    through a mapping view, several times slower); None: a mapping, read by name.
    Plain columns are read by one ``itemgetter`` call, the others one by one."""
    cache: dict[Any, Any] = resource.__dict__.setdefault("_readers", {})
    key = (None if attrs is None else tuple(attr.name for attr in attrs), fields)
    read = cache.get(key)
    if read is None:
        locate: Locate = _by_name if fields is None else fields.index
        chosen = resource.attrs if attrs is None else tuple(attrs)
        plain_names, plain_columns, others = [], [], []
        for attr in chosen:
            target = resource.by_name[attr.store.attr] if isinstance(attr.store, SameAs) \
                else attr
            store = target.store
            if isinstance(store, Column) and not store.json and store.show is None:
                plain_names.append(attr.name)
                plain_columns.append(locate(target.column))  # type: ignore[arg-type]
            elif attr.store is not None:
                others.append((attr.name, _reader(resource, attr, locate)))
        read = _compose(plain_names, plain_columns, others)
        cache[key] = read
    return read


def _compose(names: list[str], columns: list[Any],
             others: list[tuple[str, Callable[[Any], Any]]]
             ) -> Callable[[Any], dict[str, Any]]:
    if not names:
        return lambda row: {name: read(row) for name, read in others}
    get = operator.itemgetter(*columns)
    if len(names) == 1:
        def plain(row: Any) -> dict[str, Any]:
            return {names[0]: get(row)}
    else:
        def plain(row: Any) -> dict[str, Any]:
            return dict(zip(names, get(row)))
    if not others:
        return plain

    def read(row: Any) -> dict[str, Any]:
        out = plain(row)
        for name, read_one in others:
            out[name] = read_one(row)
        return out
    return read


def value_of(resource: Resource, attr: Attr, row: Mapping[str, Any]) -> Any:
    """The API value of a stored attribute in ``row`` (a mapping of column values)."""
    return _reader(resource, attr)(row)


def reader(resource: Resource, like: sa.Row[Any] | Mapping[str, Any],
           attrs: Iterable[Attr] | None = None) -> Callable[[Any], dict[str, Any]]:
    """A function showing rows shaped ``like`` this one (the rows of one result, or
    mappings of column values): their stored attributes, or just ``attrs``, as the API
    shows them. Get it once per result: a ``Row`` builds its field names anew on
    every ``_fields``."""
    fields = like._fields if isinstance(like, sa.Row) else None
    return _reader_of(resource, attrs, fields)


def show(resource: Resource, row: sa.Row[Any] | Mapping[str, Any],
         attrs: Iterable[Attr] | None = None) -> dict[str, Any]:
    """The stored attributes of one ``row`` (or just ``attrs``) as the API shows them."""
    return reader(resource, row, attrs)(row)


def row_values(resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the stored attributes in ``body`` (a parsed API body, whole for
    an insert or partial for an update; a partial :class:`Nested` dict sets only its
    keys). Attributes that show another's value, or that are not stored, are skipped."""
    values: dict[str, Any] = {}
    for name, value in body.items():
        attr = resource.by_name.get(name)
        if attr is None:
            continue
        store = attr.store
        if isinstance(store, Column):
            values[attr.column] = json.dumps(value) if store.json else value  # type: ignore[index]
        elif isinstance(store, Nested):
            for key, item in (value or {}).items():
                values[store.keys[key].name] = item  # type: ignore[index]
    return values
