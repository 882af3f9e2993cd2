"""A resource's attribute table as database storage: its table, rows to API dicts, API
bodies to row values.

Each :class:`~isthmus.attributes.Attr` says where it lives (a column, one column per
key of a dict, another attribute's value, or nowhere: its collection computes it);
everything here follows from that, so a stored attribute is declared once.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

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


def _shown(column: Column, value: Any) -> Any:
    if column.json:
        return json.loads(value)
    if column.show is not None:
        return column.show(value)
    return value


def value_of(resource: Resource, attr: Attr, row: Mapping[str, Any]) -> Any:
    """The API value of a stored attribute in ``row`` (a row's ``_mapping``)."""
    store = attr.store
    if isinstance(store, SameAs):
        return value_of(resource, resource.by_name[store.attr], row)
    if isinstance(store, Column):
        return _shown(store, row[attr.column])
    if isinstance(store, Nested):
        return {key: _shown(column, row[column.name]) for key, column in store.keys.items()}
    raise ValueError(f"{resource.singular}.{attr.name} is not stored: its collection "
                     "computes it")


def show(resource: Resource, row: Mapping[str, Any],
         attrs: Iterable[Attr] | None = None) -> dict[str, Any]:
    """The stored attributes of ``row`` (or just ``attrs``) as the API shows them."""
    return {attr.name: value_of(resource, attr, row)
            for attr in (resource.attrs if attrs is None else attrs)
            if attr.store is not None}


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
