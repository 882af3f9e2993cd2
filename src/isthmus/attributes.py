"""Resource attribute definitions: the one place a resource's API shape is declared.

A :class:`Resource` lists its :class:`Attr` entries: who may set them (POST,
PUT), their default, and a ``parse`` function that converts and validates a
client value (raising :class:`InvalidValue` with Neutron's reason text). The
API layer derives request handling, list filters and the OpenAPI document from
these tables, so the attribute set is written down once.

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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

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


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource as the API exposes it."""

    name: str
    post: bool = False
    put: bool = False
    default: Any = None
    parse: Parser | None = None
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    # Default policy (isthmus.api.policy derives the rules from these two):
    admin_only: bool = False        # create_/update_<resource>:<name> is admin-only
    member_visible: bool = True     # False: get_<resource>:<name> is admin-only
    filter_parse: Parser | None = None  # query-string value -> comparable value
    secret: bool = False            # never logged, never echoed in an error (docs/api.md)

    @property
    def required(self) -> bool:
        """Whether a POST must give this attribute."""
        return self.default is REQUIRED

    @property
    def kind(self) -> str:
        """``scalar``, ``list`` or ``dict`` — how filters compare it."""
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
    return parse


def string_or_none(max_len: int = 255) -> Parser:
    """A parser of a string of at most ``max_len`` characters, or null."""
    inner = string(max_len)
    return lambda value: None if value is None else inner(value)


def one_of(values: Iterable[str]) -> Parser:
    """A parser that accepts exactly one of ``values`` (case matters, as in Neutron)."""
    allowed = frozenset(values)

    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise InvalidValue(f"{shown(value)} is not in valid_values")
        return value
    return parse


def uuid_str(value: Any) -> str:
    """``value`` if it is a UUID string; else Neutron's "is not a valid UUID"."""
    if not is_uuid(value):
        raise InvalidValue(f"'{shown(value)}' is not a valid UUID")
    return value


def uuid_or_none(value: Any) -> str | None:
    """A UUID string or null."""
    return None if value is None else uuid_str(value)


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


def non_negative_int(value: Any) -> int:
    """An integer of at least 0."""
    number = integer(value)
    if number < 0:
        raise InvalidValue(f"'{shown(value)}' should be non-negative")
    return number


def int_at_least(minimum: int) -> Parser:
    """A parser of integers of at least ``minimum``."""
    def parse(value: Any) -> int:
        number = integer(value)
        if number < minimum:
            raise InvalidValue(f"'{shown(value)}' is too small - must be at least '{minimum}'")
        return number
    return parse


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
    return parse


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
    return parse


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
    return parse


def ip_version_of(text: str) -> int:
    """The IP version of an address or CIDR string that already parsed."""
    return ipaddress.ip_network(text, strict=False).version if "/" in text \
        else ipaddress.ip_address(text).version


# --------------------------------------------------------------------------
# Attributes shared by every resource.

NAME = Attr("name", post=True, put=True, default="", parse=string(255),
            schema={"type": "string", "maxLength": 255})
DESCRIPTION = Attr("description", post=True, put=True, default="", parse=string(255),
                   schema={"type": "string", "maxLength": 255})
ID = Attr("id", schema={"type": "string", "format": "uuid"})
PROJECT_ID = Attr("project_id", post=True, default=None, parse=string(255),
                  schema={"type": "string", "maxLength": 255})
TENANT_ID = Attr("tenant_id", post=True, default=None, parse=string(255),
                 schema={"type": "string", "maxLength": 255})
ADMIN_STATE_UP = Attr("admin_state_up", post=True, put=True, default=True, parse=boolean,
                      schema={"type": "boolean"}, filter_parse=boolean)
STATUS = Attr("status", schema={"type": "string"})

COMMON = (ID, PROJECT_ID, TENANT_ID, NAME, DESCRIPTION)

# Neutron's standard attributes, on networks, subnets and routers (not on VPN objects,
# as in Neutron 29). Tags change through /tags (isthmus.api.controllers.TagsEndpoint).
STANDARD = (
    Attr("tags", schema={"type": "array", "items": {"type": "string"}}),
    Attr("created_at", schema={"type": ["string", "null"]}),
    Attr("updated_at", schema={"type": ["string", "null"]}),
    Attr("revision_number", schema={"type": "integer"}, filter_parse=integer),
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
