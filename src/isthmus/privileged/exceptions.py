"""Errors of the privileged helper.

Every refusal has its own type so callers can tell "the filters said no"
(`NotAllowed`) from "the command ran and failed" (`CommandFailed`) without
parsing messages. The CLI maps them to oslo.rootwrap's exit codes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (CLI start-up)
if TYPE_CHECKING:
    from typing import Sequence

    from isthmus.privileged.client import ExecResult

# oslo.rootwrap's CLI exit codes, kept so existing callers keep working.
EXIT_EXECUTABLE_NOT_FOUND = 96
EXIT_CONFIG_ERROR = 97
EXIT_NO_COMMAND = 98
EXIT_NOT_ALLOWED = 99


def _format_argv(argv: Sequence[str]) -> str:
    return " ".join(argv)


class PrivilegedError(Exception):
    """Base class of everything `isthmus.privileged` raises on purpose."""


class ConfigError(PrivilegedError):
    """rootwrap.conf is missing, unreadable, unsafe or has a bad value."""

    exit_code = EXIT_CONFIG_ERROR


class FilterDefinitionError(PrivilegedError):
    """One filter entry cannot be built (wrong arguments, bad regex, ...).

    Raised by filter constructors; the loader turns it into a
    `FilterFileProblem` carrying the file and line, and keeps loading.
    """


class NotAllowed(PrivilegedError):
    """No filter allows this command line (oslo.rootwrap exit code 99)."""

    exit_code = EXIT_NOT_ALLOWED

    def __init__(self, argv: Sequence[str], reason: str = "no filter matched") -> None:
        self.argv = list(argv)
        self.reason = reason
        super().__init__(
            f"Unauthorized command: {_format_argv(argv)} ({reason}); "
            "add a filter for it under a filters_path directory if it should be allowed"
        )


class ExecutableNotFound(PrivilegedError):
    """A filter allows the command but its executable is not in exec_dirs (exit 96)."""

    exit_code = EXIT_EXECUTABLE_NOT_FOUND

    def __init__(self, exec_path: str, filter_name: str, detail: str = "") -> None:
        self.exec_path = exec_path
        self.filter_name = filter_name
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"Executable not found: {exec_path} (filter match = {filter_name}){extra}; "
            "install it into one of exec_dirs, owned by root and not writable by others"
        )


class CommandFailed(PrivilegedError):
    """The command ran and exited non-zero while `check=True`."""

    def __init__(self, argv: Sequence[str], result: "ExecResult") -> None:
        self.argv = list(argv)
        self.result = result
        stderr = result.stderr.decode("utf-8", "replace").strip()
        tail = f": {stderr[-500:]}" if stderr else ""
        super().__init__(
            f"Command {_format_argv(argv)!r} exited with {result.returncode}{tail}"
        )

    @property
    def returncode(self) -> int:
        """The command's exit status."""
        return self.result.returncode


class CommandTimeout(PrivilegedError):
    """The command did not finish within its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout_s: float, result: "ExecResult") -> None:
        self.argv = list(argv)
        self.timeout_s = timeout_s
        self.result = result
        super().__init__(
            f"Command {_format_argv(argv)!r} did not finish within {timeout_s:g} s "
            "and was killed; pass a larger timeout if it is expected to be slow"
        )


class ProtocolError(PrivilegedError):
    """A frame on the daemon socket is malformed, truncated or too large."""


class DaemonError(PrivilegedError):
    """The daemon could not be reached, started, or answered with an error."""


class DaemonStartError(DaemonError):
    """Starting the daemon (through sudo or directly) failed."""


class PeerNotAuthorized(DaemonError):
    """The daemon refused this process's uid/gid (see daemon_allowed_users)."""


class CallerLimitExceeded(DaemonError):
    """This uid already has its share of the daemon's connections or running commands.

    Nothing was run; other callers are unaffected. The limits are
    `daemon_max_connections_per_user` and `daemon_max_commands_per_user`.
    """


class ConnectionLost(DaemonError):
    """The daemon went away while a command was in flight.

    The command may or may not have run; it is deliberately not retried
    (oslo.rootwrap's client re-sends and can run a command twice).
    """
