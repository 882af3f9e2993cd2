"""Resource attribute definitions: the one place a resource's API shape is declared.

A :class:`Resource` lists its :class:`Attr` entries: who may set them (POST,
PUT), their default, a ``parse`` function that converts and validates a client
value (raising :class:`InvalidValue` with Neutron's reason text, and carrying
the JSON schema of what it accepts), who may see them, where they are stored
(a :class:`Column`, or one column per key with :class:`Nested`) and whether
agents are sent them. Everything else is derived from these tables: the
database table and row conversions (:mod:`isthmus.db.mapping`), request
handling, list filters and sorting, policy rules, the OpenAPI document, and
the agents' payload with its RPC schema (:mod:`isthmus.vpn.desired_state`).
Adding an attribute is one entry here plus a migration.

An attribute marked ``secret`` (a PSK) is returned to its owner as Neutron
does, but never appears in a log line or an error message: logs name objects
by id and show :data:`REDACTED` for a secret query value, and :func:`string`
with ``secret=True`` refuses a bad value without echoing it (docs/api.md,
"Secrets and logs").
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import sqlalchemy as sa

from isthmus import exceptions as exc
from isthmus.exceptions import shown


class InvalidValue(ValueError):
    """A value did not pass an attribute's parser; the text is the reason."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default marker for attributes a POST must carry."""

Parser = Callable[[Any], Any]
"""Converts and validates one client value, or raises :class:`InvalidValue`. The
parsers below carry a ``schema`` attribute: the JSON schema of what they accept."""


def with_schema(parse: Parser, schema: Mapping[str, Any]) -> Parser:
    """``parse``, saying that it accepts what ``schema`` describes."""
    parse.schema = dict(schema)  # type: ignore[attr-defined]
    return parse


def schema_of(parse: Parser | None) -> dict[str, Any]:
    """The JSON schema a parser accepts (a string if it does not say)."""
    return dict(getattr(parse, "schema", {"type": "string"}))


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    kinds = schema.get("type", "string")
    kinds = list(kinds) if isinstance(kinds, list) else [kinds]
    out = {**schema, "type": kinds + ["null"] if "null" not in kinds else kinds}
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


# --------------------------------------------------------------------------
# Storage: where an attribute's value lives in its resource's table.

@dataclass(frozen=True)
class Column:
    """A column of the resource's table; named after the attribute (:attr:`Attr.column`)
    unless ``name`` says.

    ``default`` fills the column when an insert leaves it out (a server-set value
    such as ``route_mode``); ``json`` stores a list or dict as JSON text.
    """

    type: Any                        # a SQLAlchemy type: sa.String(255), sa.Integer()...
    name: str | None = None
    nullable: bool = False
    default: Any = None
    server_default: str | None = None
    foreign_key: str | None = None   # "table.column"
    ondelete: str | None = None
    index: bool = False
    unique: bool = False
    primary_key: bool = False
    json: bool = False               # a list or dict, stored as JSON text
    show: Callable[[Any], Any] | None = None   # stored value -> API value

    def sql(self, name: str) -> sa.Column[Any]:
        """The SQLAlchemy column (``name`` unless the column names itself)."""
        args: list[Any] = [self.name or name, self.type]
        if self.foreign_key:
            args.append(sa.ForeignKey(self.foreign_key, ondelete=self.ondelete))
        return sa.Column(*args, nullable=self.nullable, default=self.default,
                         server_default=self.server_default, index=self.index or None,
                         unique=self.unique or None, primary_key=self.primary_key)


@dataclass(frozen=True)
class Nested:
    """A dict attribute stored as one named column per key (``dpd`` is ``dpd_action``,
    ``dpd_interval`` and ``dpd_timeout``)."""

    keys: Mapping[str, Column]


@dataclass(frozen=True)
class SameAs:
    """An attribute that shows another's value (``tenant_id`` is ``project_id``)."""

    attr: str


Storage = Column | Nested | SameAs | None
"""``None``: not stored in the resource's table; its collection computes the value."""


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource: API shape, validation, visibility, storage, agents.

    ``schema`` defaults to what ``parse`` accepts; read-only attributes give it.
    """

    name: str
    post: bool = False
    put: bool = False
    default: Any = None
    parse: Parser | None = None
    schema: Mapping[str, Any] | None = None
    # Default policy (isthmus.api.policy derives the rules from these two):
    admin_only: bool = False        # create_/update_<resource>:<name> is admin-only
    member_visible: bool = True     # False: get_<resource>:<name> is admin-only
    filter_parse: Parser | None = None  # query-string value -> comparable value
    secret: bool = False            # never logged, never echoed in an error (docs/api.md)
    store: Storage = None
    agent: bool = False             # sent to agents in the desired state (docs/rpc.md)

    def __post_init__(self) -> None:
        if self.schema is None:
            object.__setattr__(self, "schema", schema_of(self.parse))

    @property
    def column(self) -> str | None:
        """The column holding this attribute's value, if it is one plain column: the
        column's own name, else the attribute's without ``isthmus:`` and with ``_`` for
        ``:`` (``router:external`` is ``router_external``)."""
        if isinstance(self.store, Column):
            return self.store.name or self.name.removeprefix("isthmus:").replace(":", "_")
        return None

    @property
    def required(self) -> bool:
        """Whether a POST must give this attribute."""
        return self.default is REQUIRED

    @property
    def kind(self) -> str:
        """``scalar``, ``list`` or ``dict`` — how filters compare it."""
        assert self.schema is not None
        t = self.schema.get("type")
        if t == "array":
            return "list"
        if t == "object":
            return "dict"
        return "scalar"


@dataclass(frozen=True)
class Resource:
    """A REST collection: its JSON keys, URL and attributes."""

    singular: str
    plural: str
    path: str                      # e.g. "/v2.0/vpn/ikepolicies"
    attrs: tuple[Attr, ...]
    not_found: Callable[[str], exc.NotFound]
    description: str = ""
    table: str = ""                # the database table; "" for resources without one
    hidden: tuple[tuple[str, Column], ...] = ()   # stored columns no attribute shows

    def attr(self, name: str) -> Attr:
        """The attribute named ``name`` (KeyError if there is none)."""
        return self.by_name[name]

    @property
    def by_name(self) -> dict[str, Attr]:
        """The attributes by name (computed once; the dataclass is frozen)."""
        cached = self.__dict__.get("_by_name")
        if cached is None:
            cached = {a.name: a for a in self.attrs}
            object.__setattr__(self, "_by_name", cached)
        return cached

    @property
    def to_agents(self) -> tuple[Attr, ...]:
        """The attributes agents are sent, in table order."""
        return tuple(x for x in self.attrs if x.agent)

    def agent_schema(self, **computed: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON schema of this resource in the agents' payload: every attribute
        marked ``agent`` plus the ``computed`` properties, all required."""
        properties: dict[str, Any] = {}
        for x in self.to_agents:
            properties[x.name] = dict(x.schema or {})
            if isinstance(x.store, Nested):   # agents get every key
                properties[x.name]["required"] = list(x.store.keys)
        properties.update(computed)
        return {"type": "object", "additionalProperties": False,
                "required": list(properties), "properties": properties}

    @property
    def secrets(self) -> frozenset[str]:
        """Names of the attributes that must never reach a log or an error message."""
        return frozenset(a.name for a in self.attrs if a.secret)


REDACTED = "***"
"""What a secret value is replaced with wherever it would be logged."""


# --------------------------------------------------------------------------
# Parsers: convert and validate one client value, or raise InvalidValue.
# Reasons are Neutron's own wording, so clients see familiar messages; values
# they quote go through shown(), which bounds them.

def string(max_len: int = 255, secret: bool = False) -> Parser:
    """A string of at most ``max_len`` characters, no NUL.

    ``secret``: the reason names the fault but not the value (the sender knows
    it; a client or proxy that logs error messages must not learn it).
    """
    def parse(value: Any) -> str:
        quoted = f"The secret value (a {type(value).__name__}, not shown)" if secret \
            else f"'{shown(value)}'"
        if not isinstance(value, str):
            raise InvalidValue(f"{quoted} is not a valid string")
        if len(value) > max_len:
            raise InvalidValue(f"{quoted} exceeds maximum length of {max_len}" +
                               (f": it has {len(value)} characters" if secret else ""))
        if "\x00" in value:
            what = quoted if secret else f"'{shown(value)!r}'"
            raise InvalidValue(f"{what} contains a NUL character")
        return value
    return with_schema(parse, {"type": "string", "maxLength": max_len})


def string_or_none(max_len: int = 255) -> Parser:
    """A parser of a string of at most ``max_len`` characters, or null."""
    inner = string(max_len)
    return with_schema(lambda value: None if value is None else inner(value),
                        _nullable(schema_of(inner)))


def or_none(parse: Parser) -> Parser:
    """``parse``, or null."""
    return with_schema(lambda value: None if value is None else parse(value),
                        _nullable(schema_of(parse)))


def one_of(values: Iterable[str]) -> Parser:
    """A parser that accepts exactly one of ``values`` (case matters, as in Neutron)."""
    allowed = frozenset(values)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise InvalidValue(f"{shown(value)} is not in valid_values")
        return value
    return with_schema(parse, {"type": "string", "enum": list(values)})


def uuid_str(value: Any) -> str:
    """``value`` if it is a UUID string; else Neutron's "is not a valid UUID"."""
    if not is_uuid(value):
        raise InvalidValue(f"'{shown(value)}' is not a valid UUID")
    return value


def uuid_or_none(value: Any) -> str | None:
    """A UUID string or null."""
    return None if value is None else uuid_str(value)


with_schema(uuid_str, {"type": "string", "format": "uuid"})
with_schema(uuid_or_none, {"type": ["string", "null"], "format": "uuid"})


def is_uuid(value: Any) -> bool:
    """Whether ``value`` is a string Neutron would take as a UUID."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def boolean(value: Any) -> bool:
    """A boolean as Neutron converts one: a bool, 0 or 1, or one of Neutron's true/false
    strings in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise InvalidValue(f"'{shown(value)}' cannot be converted to boolean")


with_schema(boolean, {"type": "boolean"})


INT_MAX = 2**31 - 1  # what every database's INTEGER column holds
# ASCII only: int() also takes "٣" (Arabic-Indic three), and str.isdigit() takes "²",
# which int() then refuses.
_ASCII_INTEGER = re.compile(r"\s*[-+]?[0-9]{1,20}\s*", re.ASCII)


def integer(value: Any) -> int:
    """Integers and numeric strings (as Neutron's ``convert_to_int``), 32-bit."""
    if isinstance(value, bool):
        raise InvalidValue(f"'{shown(value)}' is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _ASCII_INTEGER.fullmatch(value):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise InvalidValue(f"'{shown(value)}' is not an integer")
    if not -INT_MAX - 1 <= number <= INT_MAX:
        raise InvalidValue(f"'{shown(value)}' is out of range: integers are 32-bit")
    return number


with_schema(integer, {"type": "integer"})


def non_negative_int(value: Any) -> int:
    """An integer of at least 0."""
    number = integer(value)
    if number < 0:
        raise InvalidValue(f"'{shown(value)}' should be non-negative")
    return number


with_schema(non_negative_int, {"type": "integer", "minimum": 0})


def int_at_least(minimum: int) -> Parser:
    """A parser of integers of at least ``minimum``."""
    def parse(value: Any) -> int:
        number = integer(value)
        if number < minimum:
            raise InvalidValue(f"'{shown(value)}' is too small - must be at least '{minimum}'")
        return number
    return with_schema(parse, {"type": "integer", "minimum": minimum})


def int_in_range(minimum: int, maximum: int) -> Parser:
    """A parser of integers from ``minimum`` to ``maximum``, both included."""
    def parse(value: Any) -> int:
        number = integer(value)
        if number < minimum:
            raise InvalidValue(f"'{shown(value)}' is too small - must be at least '{minimum}'")
        if number > maximum:
            raise InvalidValue(
                f"'{shown(value)}' is too large - must be no larger than '{maximum}'")
        return number
    return with_schema(parse, {"type": "integer", "minimum": minimum, "maximum": maximum})


def as_list(item: Parser, unique: bool = True) -> Parser:
    """A list (a scalar is wrapped, null is ``[]``) whose items all parse."""
    def parse(value: Any) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            value = [value]
        items = [item(v) for v in value]
        if unique:
            seen: set[Any] = set()
            dups = [v for v in items if v in seen or seen.add(v)]  # type: ignore[func-returns-value]
            if dups:
                listed = shown(", ".join(map(str, dups)))
                raise InvalidValue(f"Duplicate items in the list: '{listed}'")
        return items
    return with_schema(parse, {"type": "array", "items": schema_of(item)})


def ip_address(value: Any) -> str:
    """An IPv4 or IPv6 address, kept as written."""
    if not isinstance(value, str) or value != value.strip():
        raise InvalidValue(f"'{shown(value)}' is not a valid IP address")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidValue(f"'{shown(value)}' is not a valid IP address") from None
    return value


def ip_address_or_none(value: Any) -> str | None:
    """An IP address or null."""
    return None if value is None else ip_address(value)


with_schema(ip_address_or_none, {"type": ["string", "null"]})


def cidr(value: Any) -> str:
    """A CIDR with an explicit prefix, as Neutron's ``validate_subnet``.

    Host bits are allowed and kept as written (``10.0.0.1/24``); a bare
    address (``2000::1``) and non-canonical IPv4 (``10.0.0/24``) are not.
    """
    if not isinstance(value, str) or "/" not in value or value != value.strip():
        raise InvalidValue(f"'{shown(value)}' is not a valid IP subnet")
    try:
        ipaddress.ip_interface(value)
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidValue(f"'{shown(value)}' is not a valid IP subnet") from None
    return value


def dict_of(spec: Mapping[str, Parser], attr_values_name: str = "") -> Parser:
    """A dict with only the keys of ``spec``; ``null`` is ``{}``."""
    def parse(value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise InvalidValue(f"'{shown(value)}' is not a dictionary")
        unexpected = sorted(set(value) - set(spec))
        if unexpected:
            listed = shown(", ".join(map(str, unexpected)))
            raise InvalidValue(f"Unexpected keys supplied: {listed}")
        return {key: spec[key](v) for key, v in value.items()}
    return with_schema(parse, {"type": "object", "additionalProperties": False,
                                "properties": {k: schema_of(p) for k, p in spec.items()}})


def ip_version_of(text: str) -> int:
    """The IP version of an address or CIDR string that already parsed."""
    return ipaddress.ip_network(text, strict=False).version if "/" in text \
        else ipaddress.ip_address(text).version


def moment(value: Any) -> datetime:
    """An ISO 8601 time (``2026-11-20T10:00:00Z``, ``2026-11-20T12:00:00+02:00``,
    ``2026-11-20``) as a naive UTC ``datetime``, as times are stored; no zone is UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace(" ", "+"))
        except ValueError:
            raise InvalidValue(f"'{shown(value)}' is not an ISO 8601 time such as "
                               "2026-11-20T10:00:00Z") from None
    else:
        raise InvalidValue(f"'{shown(value)}' is not an ISO 8601 time")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


with_schema(moment, {"type": "string", "format": "date-time"})


def timestamp(value: datetime | None) -> str | None:
    """A stored time as Neutron shows it (``2026-11-20T10:00:00Z``); ``None`` stays ``None``."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# Attributes shared by every resource.

UUID_TYPE = sa.String(36)
NAME_TYPE = sa.String(255)
STATUS_TYPE = sa.String(16)

NAME = Attr("name", post=True, put=True, default="", parse=string(255),
            store=Column(NAME_TYPE, default=""))
DESCRIPTION = Attr("description", post=True, put=True, default="", parse=string(255),
                   store=Column(NAME_TYPE, default=""))
ID = Attr("id", schema={"type": "string", "format": "uuid"}, agent=True,
          store=Column(UUID_TYPE, primary_key=True))
PROJECT_ID = Attr("project_id", post=True, default=None, parse=string(255),
                  store=Column(NAME_TYPE))
TENANT_ID = Attr("tenant_id", post=True, default=None, parse=string(255),
                 store=SameAs("project_id"))
ADMIN_STATE_UP = Attr("admin_state_up", post=True, put=True, default=True, parse=boolean,
                      filter_parse=boolean, store=Column(sa.Boolean(), default=True))
STATUS = Attr("status", store=Column(STATUS_TYPE, default="ACTIVE"))

COMMON = (ID, PROJECT_ID, TENANT_ID, NAME, DESCRIPTION)


def to_agents(attr: Attr) -> Attr:
    """``attr`` (a shared one, such as :data:`NAME`), also sent to agents."""
    return replace(attr, agent=True)

# Neutron's standard attributes, on networks, subnets and routers (not on VPN objects,
# as in Neutron 29). Tags change through /tags (isthmus.api.controllers.TagsEndpoint) and
# live in their own table (isthmus.db.models.Tag). The timestamps are nullable only so
# that migration 0004 could add them to existing rows (it dates those by the upgrade).
STANDARD = (
    Attr("tags", schema={"type": "array", "items": {"type": "string"}}),
    Attr("created_at", schema={"type": ["string", "null"]},
         store=Column(sa.DateTime(), nullable=True, show=timestamp)),
    Attr("updated_at", schema={"type": ["string", "null"]},
         store=Column(sa.DateTime(), nullable=True, show=timestamp)),
    Attr("revision_number", schema={"type": "integer"}, filter_parse=integer,
         store=Column(sa.BigInteger(), default=0, server_default="0")),
)
MAX_TAG_LEN = 255   # neutron/extensions/tagging.py
MAX_TAGS = 50       # per object, as Neutron's MAX_TAGS_COUNT


def tag(value: Any) -> str:
    """One tag: a string of at most 255 characters (commas allowed, as in Neutron)."""
    if not isinstance(value, str):
        raise InvalidValue(f"'{shown(value)}' is not a valid string")
    if len(value) > MAX_TAG_LEN:
        raise InvalidValue(f"'{shown(value)}' exceeds maximum length of {MAX_TAG_LEN}")
    if "\x00" in value:
        raise InvalidValue(f"'{shown(value)!r}' contains a NUL character")
    return value


def tag_list(value: Any) -> list[str]:
    """The ``tags`` of a ``PUT .../tags`` body: unique tags (the count is checked apart,
    after policy, as Neutron does)."""
    if not isinstance(value, list):
        raise InvalidValue(f"'{shown(value)}' is not a list")
    return as_list(tag)(value)
