"""The privileged helper: run root commands allowed by rootwrap-style filters.

Public API (imported lazily, so `isthmus-rootwrap` starts without loading
the daemon client):

- `Client`, `ExecResult`: talk to `isthmus-rootwrap-daemon`.
- errors: `PrivilegedError` and its subclasses `NotAllowed`,
  `ExecutableNotFound`, `CommandFailed`, `CommandTimeout`, `ConfigError`,
  `ProtocolError`, `DaemonError`, `DaemonStartError`, `PeerNotAuthorized`,
  `CallerLimitExceeded`, `ConnectionLost`.
- `load_config`, `load_filters`, `match_command`: the filter engine, for
  tools and tests.
"""

from __future__ import annotations

_EXPORTS = {
    "Client": "isthmus.privileged.client",
    "ExecResult": "isthmus.privileged.client",
    "PrivilegedError": "isthmus.privileged.exceptions",
    "NotAllowed": "isthmus.privileged.exceptions",
    "ExecutableNotFound": "isthmus.privileged.exceptions",
    "CommandFailed": "isthmus.privileged.exceptions",
    "CommandTimeout": "isthmus.privileged.exceptions",
    "ConfigError": "isthmus.privileged.exceptions",
    "ProtocolError": "isthmus.privileged.exceptions",
    "DaemonError": "isthmus.privileged.exceptions",
    "DaemonStartError": "isthmus.privileged.exceptions",
    "PeerNotAuthorized": "isthmus.privileged.exceptions",
    "CallerLimitExceeded": "isthmus.privileged.exceptions",
    "ConnectionLost": "isthmus.privileged.exceptions",
    "load_config": "isthmus.privileged.config",
    "load_filters": "isthmus.privileged.filterfile",
    "match_command": "isthmus.privileged.filters",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'isthmus.privileged' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
