"""rootwrap.conf: oslo.rootwrap's options plus the daemon's own.

All options live in `[DEFAULT]`. The oslo.rootwrap options keep their names,
defaults and meaning (`filters_path`, `exec_dirs`, `use_syslog`,
`syslog_log_facility`, `syslog_log_level`, `daemon_timeout`,
`rlimit_nofile`); Isthmus adds `daemon_socket`, `daemon_allowed_users`,
`daemon_allowed_groups`, the per-command timeouts and the per-uid limits for
the authenticated daemon. Differences on purpose: list items are
whitespace-stripped (`/a, /b` means two directories, not `/a` and ` /b`);
integers are ASCII digits only (`int()` also takes `٣` and `1_000`, and
`str.isdigit()` is true for `²`, which `int()` then refuses); exec_dirs entries that are relative,
contain `..` or have a directory on their way from / that non-root users can
write are dropped, and so is a config file in such a place, because whoever
can write there can swap in their own files after the check.
"""

from __future__ import annotations

import os

from isthmus.privileged.exceptions import ConfigError
from isthmus.privileged.ini import ascii_int, parse_ini
from isthmus.privileged.trust import untrusted_path_reason, untrusted_reason

DEFAULT_CONFIG_PATH = "/etc/isthmus/rootwrap.conf"
DEFAULT_SOCKET_PATH = "/run/isthmus/rootwrap.sock"
DEFAULT_COMMAND_TIMEOUT_S = 600
DEFAULT_COMMAND_TIMEOUT_MAX_S = 3600
DEFAULT_MAX_CONNECTIONS_PER_USER = 64
DEFAULT_MAX_COMMANDS_PER_USER = 32

# What syslog_log_facility and syslog_log_level mean when they are not set:
# SysLogHandler.LOG_SYSLOG and logging.ERROR. Written as numbers so that a
# config without syslog options never imports logging.handlers, which costs
# the CLI 20-100 ms here (python -X importtime; the CLI's budget is 30 ms).
_DEFAULT_FACILITY = 5
_DEFAULT_LEVEL = 40
# Linux's LOG_AUDIT, which SysLogHandler.facility_names lacks; accepted before.
_EXTRA_FACILITIES = {"audit": 13}
# oslo.rootwrap reads rootwrap.conf with ConfigParser, so its booleans are
# ConfigParser.BOOLEAN_STATES (not the API's, which also take t/f/y/n as
# neutron-lib does); the same four words each way, without importing
# configparser (as costly as logging.handlers) in the CLI.
_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


class RootwrapConfig:
    """The parsed, validated contents of one rootwrap.conf.

    A plain class (no dataclass) to keep the CLI's imports small.
    """

    def __init__(
        self,
        path: str,
        filters_path: tuple[str, ...],
        exec_dirs: tuple[str, ...],
        use_syslog: bool = False,
        syslog_log_facility: int = _DEFAULT_FACILITY,
        syslog_log_level: int = _DEFAULT_LEVEL,
        daemon_timeout: int = 600,
        rlimit_nofile: int = 1024,
        daemon_socket: str = DEFAULT_SOCKET_PATH,
        daemon_allowed_uids: frozenset[int] = frozenset(),
        daemon_allowed_gids: frozenset[int] = frozenset(),
        daemon_command_timeout: int = DEFAULT_COMMAND_TIMEOUT_S,
        daemon_command_timeout_max: int = DEFAULT_COMMAND_TIMEOUT_MAX_S,
        daemon_max_connections_per_user: int = DEFAULT_MAX_CONNECTIONS_PER_USER,
        daemon_max_commands_per_user: int = DEFAULT_MAX_COMMANDS_PER_USER,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.filters_path = filters_path
        self.exec_dirs = exec_dirs
        self.use_syslog = use_syslog
        self.syslog_log_facility = syslog_log_facility
        self.syslog_log_level = syslog_log_level
        self.daemon_timeout = daemon_timeout
        self.rlimit_nofile = rlimit_nofile
        self.daemon_socket = daemon_socket
        self.daemon_allowed_uids = daemon_allowed_uids
        self.daemon_allowed_gids = daemon_allowed_gids
        self.daemon_command_timeout = daemon_command_timeout
        self.daemon_command_timeout_max = daemon_command_timeout_max
        self.daemon_max_connections_per_user = daemon_max_connections_per_user
        self.daemon_max_commands_per_user = daemon_max_commands_per_user
        self.warnings = warnings

    def __repr__(self) -> str:
        return f"RootwrapConfig({self.path!r}, filters_path={self.filters_path!r}, exec_dirs={self.exec_dirs!r})"


def load_config(path: str) -> RootwrapConfig:
    """Read and validate `path`; raises ConfigError with the file and reason.

    As root, the file and every directory above it must be root's: a
    config in a user-writable place could be swapped before a reload.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            if os.geteuid() == 0:
                reason = untrusted_reason(path, os.fstat(handle.fileno()))
                reason = reason or untrusted_path_reason(os.path.abspath(path))
                if reason:
                    raise ConfigError(f"Incorrect configuration file: {path}: {reason}")
            text = handle.read()
    except OSError as exc:
        raise ConfigError(
            f"Incorrect configuration file: {path}: {exc.strerror}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"Incorrect configuration file: {path}: not UTF-8 ({exc})") from None
    parsed = parse_ini(text)
    if parsed.bad_lines:
        number, reason = parsed.bad_lines[0]
        raise ConfigError(f"Incorrect configuration file: {path}: line {number}: {reason}")
    section = parsed.sections.get("DEFAULT")
    values = {name: entry.value for name, entry in section.entries.items()} if section else {}
    return _build(path, values)


def _build(path: str, values: dict[str, str]) -> RootwrapConfig:
    def bad(option: str, message: str) -> ConfigError:
        return ConfigError(f"Incorrect value in {path}: {option}: {message}")

    warnings: list[str] = []
    if "filters_path" not in values:
        raise ConfigError(
            f"Incorrect configuration file: {path}: missing filters_path in [DEFAULT]; "
            "set it to the directories holding *.filters files"
        )
    filters_path = tuple(_split_list(values["filters_path"]))

    if "exec_dirs" in values:
        raw_dirs = _split_list(values["exec_dirs"])
    else:
        raw_dirs = [d for d in os.environ.get("PATH", "").split(":") if d]
    exec_dirs = tuple(_safe_exec_dirs(raw_dirs, warnings))

    use_syslog = _boolean(values.get("use_syslog", "false"), lambda m: bad("use_syslog", m))

    facility, level = _DEFAULT_FACILITY, _DEFAULT_LEVEL
    if "syslog_log_facility" in values:
        facility = _facility(values["syslog_log_facility"], lambda m: bad("syslog_log_facility", m))
    if "syslog_log_level" in values:
        level = _level(values["syslog_log_level"], lambda m: bad("syslog_log_level", m))

    daemon_timeout = _integer(values.get("daemon_timeout", "600"), lambda m: bad("daemon_timeout", m))
    limits = {
        name: _integer(values.get(name, str(default)), lambda m, name=name: bad(name, m))
        for name, default in (
            ("daemon_command_timeout", DEFAULT_COMMAND_TIMEOUT_S),
            ("daemon_command_timeout_max", DEFAULT_COMMAND_TIMEOUT_MAX_S),
            ("daemon_max_connections_per_user", DEFAULT_MAX_CONNECTIONS_PER_USER),
            ("daemon_max_commands_per_user", DEFAULT_MAX_COMMANDS_PER_USER),
        )
    }
    for name, value in limits.items():
        if value < 1:
            # No "unlimited": that is how one caller held the daemon hostage.
            raise bad(name, f"expected a positive integer, got {value}")
    if limits["daemon_command_timeout"] > limits["daemon_command_timeout_max"]:
        raise bad(
            "daemon_command_timeout",
            f"{limits['daemon_command_timeout']} is above daemon_command_timeout_max "
            f"({limits['daemon_command_timeout_max']}); lower it or raise the maximum",
        )
    rlimit_nofile = _integer(values.get("rlimit_nofile", "1024"), lambda m: bad("rlimit_nofile", m))
    if rlimit_nofile < 16:
        raise bad("rlimit_nofile", f"{rlimit_nofile} is too low to run anything; use at least 16")

    socket_path = values.get("daemon_socket", DEFAULT_SOCKET_PATH).strip()
    if not os.path.isabs(socket_path):
        raise bad("daemon_socket", f"expected an absolute path, got {socket_path!r}")

    uids = _resolve_ids(_split_list(values.get("daemon_allowed_users", "")), _uid_of, "user", warnings)
    gids = _resolve_ids(_split_list(values.get("daemon_allowed_groups", "")), _gid_of, "group", warnings)

    return RootwrapConfig(
        path=path,
        filters_path=filters_path,
        exec_dirs=exec_dirs,
        use_syslog=use_syslog,
        syslog_log_facility=facility,
        syslog_log_level=level,
        daemon_timeout=daemon_timeout,
        rlimit_nofile=rlimit_nofile,
        daemon_socket=socket_path,
        daemon_allowed_uids=frozenset(uids),
        daemon_allowed_gids=frozenset(gids),
        **limits,
        warnings=tuple(warnings),
    )


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _safe_exec_dirs(candidates: list[str], warnings: list[str]) -> list[str]:
    """Keep absolute, `..`-free directories that only root can change, checked from / down."""
    kept: list[str] = []
    for directory in candidates:
        if not os.path.isabs(directory) or ".." in directory.split("/"):
            warnings.append(f"exec_dirs: ignoring {directory!r}: expected an absolute path without '..'")
            continue
        if not os.path.isdir(directory):
            continue
        reason = untrusted_path_reason(directory) if os.geteuid() == 0 else None
        if reason:
            warnings.append(f"exec_dirs: ignoring {directory}: {reason}")
            continue
        kept.append(os.path.normpath(directory))
    return kept


def _boolean(value: str, error) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise error(f"Not a boolean: {value}")


def _integer(value: str, error) -> int:
    number = ascii_int(value.strip())
    if number is None:
        raise error(f"expected an integer (ASCII digits 0-9, optional leading -), got {value!r}")
    return number


def _facility(value: str, error) -> int:
    """A syslog facility by name (`local0`) or constant (`LOG_LOCAL0`), any case."""
    from logging.handlers import SysLogHandler

    name = value.strip()
    name = (name[4:] if name.startswith("LOG_") else name).lower()
    facility = SysLogHandler.facility_names.get(name, _EXTRA_FACILITIES.get(name))
    if facility is None:
        raise error(f"Unexpected syslog facility: {value}; use a name such as "
                    "'syslog', 'auth', 'local0' or a LOG_* constant")
    return facility


def _level(value: str, error) -> int:
    """A logging level by name, any case (logging's own table)."""
    import logging

    level = logging.getLevelNamesMapping().get(value.upper())
    if level is None:
        raise error(f"Unexpected log level: {value}; use DEBUG, INFO, WARNING or ERROR")
    return level


def _uid_of(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid_of(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def _resolve_ids(names: list[str], lookup, kind: str, warnings: list[str]) -> list[int]:
    """Names or numbers to ids; unknown names are skipped (fail closed) with a warning."""
    ids: list[int] = []
    for name in names:
        number = ascii_int(name)
        if number is not None and number >= 0:
            ids.append(number)
            continue
        try:
            ids.append(lookup(name))
        except KeyError:
            warnings.append(f"daemon_allowed_{kind}s: no such {kind} {name!r}; ignored")
    return ids
