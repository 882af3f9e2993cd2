"""List queries: filters, sorting, pagination with ``*_links``, and ``fields``.

Filters are accepted on every attribute (repeating a key means OR); keys that
name no attribute are ignored, as Neutron did before 2026. Sorting and
pagination happen after filtering, as Neutron's emulation does for VPN.
Attributes the policy hides from the caller count as unknown, and :func:`apply`
works on what the caller is shown, so hidden values never decide a result.
Tagged resources take Neutron's tag filters (comma-separated, repeatable):
``tags`` (has all), ``tags-any`` (has one), ``not-tags`` (lacks one of them),
``not-tags-any`` (has none). Resources with a stored ``created_at`` take a time
range: ``since`` (included) and ``until`` (excluded), ISO 8601 times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Collection, Iterable, Mapping, Sequence
from urllib.parse import urlencode

from isthmus import attributes as a
from isthmus.db.collection import Range
from isthmus.exceptions import HTTPBadRequest, InvalidAttribute, shown

CONTROL_KEYS = frozenset({"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"})
# ASCII digits only: str.isdigit() also takes "²", which int() then refuses.
_LIMIT = re.compile(r"[0-9]{1,10}")
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
TIME_RANGE = ("since", "until")


@dataclass
class ListQuery:
    """A list request's query string, parsed: filters (repeated keys: any of the
    values), ``fields``, sort keys, paging and Neutron's tag filters."""

    filters: dict[str, list[Any] | Range] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sort: list[tuple[str, bool]] = field(default_factory=list)   # (key, descending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    tag_filters: dict[str, set[str]] = field(default_factory=dict)


def _one(params: Mapping[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def parse_query(resource: a.Resource, params: Mapping[str, list[str]],
                aliases: Mapping[str, str], max_limit: int = -1,
                hidden: Collection[str] = ()) -> ListQuery:
    """The list query; attributes in ``hidden`` (policy hides them from the caller)
    are treated as unknown, so neither a filter nor a sort on them tells anything."""
    query = ListQuery()
    for key, values in params.items():
        if key in CONTROL_KEYS:
            continue
        if key in TAG_FILTERS and "tags" in resource.by_name and "tags" not in hidden:
            query.tag_filters[key] = {tag for value in values for tag in value.split(",")}
            continue
        name = aliases.get(key, key)
        attr = resource.by_name.get(name)
        if attr is None or attr.kind == "dict" or name in hidden:
            continue
        query.filters[name] = [_filter_value(attr, v) for v in values]
    _time_range(resource, params, query, hidden)
    query.fields = [f for f in params.get("fields", []) if f]
    sort_keys = params.get("sort_key", [])
    sort_dirs = params.get("sort_dir", [])
    if sort_dirs and len(sort_keys) != len(sort_dirs):
        raise HTTPBadRequest("The number of sort_keys and sort_dirs must be same")
    bad = [k for k in sort_keys if k not in resource.by_name or k in hidden or
           resource.by_name[k].kind != "scalar"]
    if bad:
        raise HTTPBadRequest(f"{shown(bad)} is invalid attribute for sort_keys")
    for i, key in enumerate(sort_keys):
        direction = sort_dirs[i] if sort_dirs else "asc"
        if direction not in ("asc", "desc"):
            raise HTTPBadRequest(f"{shown(direction)} is invalid value for sort_dirs, "
                                 "valid value is 'asc' and 'desc'")
        query.sort.append((key, direction == "desc"))
    limit = _one(params, "limit")
    if limit is not None:
        if not _LIMIT.fullmatch(limit):
            raise HTTPBadRequest(
                f"Limit must be an integer 0 or greater and not '{shown(limit)}'")
        query.limit = int(limit) or None
    if max_limit > 0:
        query.limit = min(query.limit or max_limit, max_limit)
    query.marker = _one(params, "marker")
    reverse = _one(params, "page_reverse")
    if reverse is not None:
        try:
            query.page_reverse = a.boolean(reverse)
        except a.InvalidValue as err:
            raise InvalidAttribute("page_reverse", str(err)) from None
    return query


def _time_range(resource: a.Resource, params: Mapping[str, list[str]], query: ListQuery,
                hidden: Collection[str]) -> None:
    """``since``/``until`` as a range filter on a stored ``created_at``."""
    created = resource.by_name.get("created_at")
    if created is None or created.column is None or "created_at" in hidden:
        return
    bounds = {}
    for key in TIME_RANGE:
        raw = _one(params, key)
        if raw is not None:
            try:
                bounds[key] = a.moment(raw)
            except a.InvalidValue as err:
                raise InvalidAttribute(key, str(err)) from None
    if bounds:
        query.filters["created_at"] = Range(bounds.get("since"), bounds.get("until"),
                                            parse=a.moment)


def _filter_value(attr: a.Attr, raw: str) -> Any:
    if attr.filter_parse is None:
        return raw
    try:
        return attr.filter_parse(raw)
    except a.InvalidValue as err:
        raise InvalidAttribute(attr.name, str(err)) from None


def matches(item: Mapping[str, Any], filters: Mapping[str, list[Any]]) -> bool:
    """Whether ``item`` passes every filter (a list value passes if one element does)."""
    for name, wanted in filters.items():
        value = item.get(name)
        if isinstance(value, list):
            if name == "fixed_ips":
                if not any(_fixed_ip_matches(ip, w) for ip in value for w in wanted):
                    return False
            elif not any(v in wanted for v in value):
                return False
        elif value not in wanted:
            return False
    return True


def tags_match(tags: set[str], filters: Mapping[str, set[str]]) -> bool:
    """Whether an object with ``tags`` passes Neutron's tag filters."""
    every, any_of = filters.get("tags"), filters.get("tags-any")
    not_every, none_of = filters.get("not-tags"), filters.get("not-tags-any")
    return ((every is None or every <= tags) and (any_of is None or bool(any_of & tags))
            and (not_every is None or not not_every <= tags)
            and (none_of is None or not none_of & tags))


def _fixed_ip_matches(fixed_ip: Mapping[str, str], wanted: Any) -> bool:
    if isinstance(wanted, tuple):
        return fixed_ip.get(wanted[0]) == wanted[1]
    return wanted in fixed_ip.values()


def _sort_value(value: Any) -> tuple[int, Any]:
    # None sorts first; everything else compares as itself (bools, ints, strings).
    return (0, "") if value is None else (1, value)


def apply(items: list[dict[str, Any]], query: ListQuery, not_found) -> tuple[
        list[dict[str, Any]], bool]:
    """Filter, sort and page ``items``; also say whether a further page may exist."""
    if query.filters:
        items = [i for i in items if matches(i, query.filters)]
    if query.tag_filters:
        items = [i for i in items if tags_match(set(i.get("tags", ())), query.tag_filters)]
    if query.sort:
        for key, descending in reversed([*query.sort, ("id", query.sort[-1][1])]):
            items.sort(key=lambda i: _sort_value(i.get(key)), reverse=descending)
    if query.limit is None and query.marker is None:
        return items, False
    start, end = 0, len(items)
    if query.marker is not None:
        index = next((n for n, i in enumerate(items) if i["id"] == query.marker), None)
        if index is None:
            raise not_found(query.marker)
        if query.page_reverse:
            end = index
        else:
            start = index + 1
    if query.limit is None:
        return items[start:end], False
    if query.page_reverse:
        page = items[max(start, end - query.limit):end]
        return page, end - start > query.limit
    page = items[start:start + query.limit]
    return page, end - start > query.limit


def links(collection: str, url: str, params: Sequence[tuple[str, str]],
          page: list[dict[str, Any]], query: ListQuery, more: bool) -> dict[str, Any]:
    """Neutron's ``<collection>_links``: next/previous hrefs built from the request."""
    if query.limit is None or not page:
        return {}
    kept = [(k, v) for k, v in params if k not in ("marker", "page_reverse")]
    out = []
    if more or query.page_reverse:
        href = f"{url}?{urlencode(kept + [('marker', page[-1]['id'])])}"
        out.append({"rel": "next", "href": href})
    if not query.page_reverse or more:
        href = f"{url}?{urlencode(kept + [('marker', page[0]['id']), ('page_reverse', 'True')])}"
        out.append({"rel": "previous", "href": href})
    return {f"{collection}_links": out} if out else {}


def project(item: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``item`` with only ``fields`` (unknown or hidden names are left out, as Neutron)."""
    return {f: item[f] for f in fields if f in item}
