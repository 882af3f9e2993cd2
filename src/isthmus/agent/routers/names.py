"""Names of what the agent builds for a router: its namespace and its devices.

Every name is a pure function of the agent's namespace prefix, the router id and
the port id, so an agent that restarts finds (adopts) what it built before, and two
agents on one host with different prefixes never pick the same name.

==========================  ==========================================  ===========
what                        name                                         example
==========================  ==========================================  ===========
router namespace            ``<prefix><router_id>``                      ``isthmus-3f2a…``
gateway device (in netns)   ``qg-`` + first 11 characters of port id     ``qg-6c1d2e3f-a1``
interface device (netns)    ``qr-`` + first 11 characters of port id     ``qr-0b9e8d7c-55``
vlan trunk end (netns)      ``qt-`` + first 11 characters of port id     ``qt-0b9e8d7c-55``
host end of the veth        ``ih-`` + 12 hex digits of sha256(namespace  ``ih-9c0ffee12ab3``
                            ``/`` port id)
==========================  ==========================================  ===========

Devices inside a namespace only need to be distinct within the router (port ids are
UUIDs; :func:`duplicate_devices` catches the one-in-a-trillion clash); host ends share
the host's namespace with every other router and agent, hence the hash over the
namespace name, which carries the agent's prefix. All names fit IFNAMSIZ (15).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Iterable

IFNAMSIZ = 15
"""Longest interface name Linux accepts (16 bytes with the NUL)."""

GATEWAY_PREFIX = "qg-"
INTERFACE_PREFIX = "qr-"
TRUNK_PREFIX = "qt-"
HOST_PREFIX = "ih-"
NAMESPACE_DEVICE_PREFIXES = (GATEWAY_PREFIX, INTERFACE_PREFIX, TRUNK_PREFIX)
"""Devices inside a managed namespace whose name starts with one of these are the agent's."""

_PORT_CHARS = IFNAMSIZ - len(GATEWAY_PREFIX)
_HASH_CHARS = IFNAMSIZ - len(HOST_PREFIX)
_PREFIX_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class BadNamespacePrefix(ValueError):
    """The configured namespace prefix would make names `ip netns` refuses."""


def check_prefix(prefix: str) -> str:
    """``prefix`` if a namespace name may start with it; else BadNamespacePrefix."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise BadNamespacePrefix(
            f"router namespace prefix {prefix!r} must be letters, digits, '_', '.' or '-', "
            "not starting with '.' or '-' (option [vpnagent] router_namespace_prefix)")
    return prefix


def namespace_name(prefix: str, router_id: str) -> str:
    """The namespace of a managed router: ``<prefix><router_id>``."""
    return f"{prefix}{router_id}"


def router_id_of(prefix: str, namespace: str) -> str | None:
    """The router id a namespace name of this prefix carries, or None if not ours."""
    if not namespace.startswith(prefix) or len(namespace) == len(prefix):
        return None
    return namespace[len(prefix):]


def gateway_device(port_id: str) -> str:
    """The gateway port's device inside the router namespace."""
    return GATEWAY_PREFIX + _port_part(port_id)


def interface_device(port_id: str) -> str:
    """An interface port's device inside the router namespace."""
    return INTERFACE_PREFIX + _port_part(port_id)


def trunk_device(port_id: str) -> str:
    """The namespace end of the veth a vlan port's vlan device sits on."""
    return TRUNK_PREFIX + _port_part(port_id)


def host_device(namespace: str, port_id: str) -> str:
    """The host end of a port's veth, plugged into the physical network's bridge."""
    digest = hashlib.sha256(f"{namespace}/{port_id}".encode()).hexdigest()
    return HOST_PREFIX + digest[:_HASH_CHARS]


def is_agent_device(name: str) -> bool:
    """Whether a device inside a managed namespace is one the agent made."""
    return name.startswith(NAMESPACE_DEVICE_PREFIXES)


def duplicate_devices(names: Iterable[str]) -> set[str]:
    """Names that occur more than once (two port ids sharing 11 leading characters)."""
    return {name for name, count in Counter(names).items() if count > 1}


def _port_part(port_id: str) -> str:
    # Keep what ip accepts in a name; UUIDs are already only hex and '-'.
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "", port_id)
    return cleaned[:_PORT_CHARS]
