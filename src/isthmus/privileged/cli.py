"""`isthmus-rootwrap ROOTWRAP_CONF COMMAND [ARGS...]`, meant to run through sudo.

Checks COMMAND against the filters and runs it with the caller's stdin,
stdout and stderr, exiting with its exit code. Exit codes of its own are
oslo.rootwrap's: 98 no command, 97 bad config, 99 not allowed, 96 allowed
but the executable is not installed. Start-up cost is most of what this
costs, so it imports only what it needs (no logging unless syslog is on,
no `re` unless a regex filter is consulted, no oslo, no pyroute2).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and not __package__:
    # Run as a file, the fast way (docs/privileged.md):
    #   python3 -I -S /path/to/isthmus/privileged/cli.py CONF CMD...
    # -S skips site-packages processing (~7 ms of .pth imports in a busy
    # virtualenv); the package is found next to this file instead.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from isthmus.privileged import exceptions
from isthmus.privileged.config import load_config
from isthmus.privileged.execution import (
    check_executables,
    child_environment,
    limit_open_files,
    run_with_inherited_stdio,
)
from isthmus.privileged.filterfile import load_filters
from isthmus.privileged.filters import match_command


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (the console script passes it to sys.exit)."""
    args = sys.argv if argv is None else argv
    prog = os.path.basename(args[0]) if args else "isthmus-rootwrap"
    if prog == "cli.py":
        prog = "isthmus-rootwrap"
    if len(args) < 3:
        _error(prog, "No command specified")
        return exceptions.EXIT_NO_COMMAND
    config_path, command = args[1], args[2:]

    try:
        config = load_config(config_path)
    except exceptions.ConfigError as exc:
        _error(prog, str(exc))
        return exc.exit_code
    for warning in config.warnings:
        _error(prog, f"warning: {warning}")
    filter_set = load_filters(config.filters_path, validate=False)
    for problem in filter_set.problems:
        _error(prog, f"warning: {problem}")

    try:
        match = match_command(filter_set.filters, command, config.exec_dirs)
        if os.geteuid() == 0:
            filter_paths = {getattr(f, "exec_path", "") for f in filter_set.filters}
            check_executables(match, config.exec_dirs, filter_paths)
    except (exceptions.NotAllowed, exceptions.ExecutableNotFound) as exc:
        _error(prog, str(exc))
        if config.use_syslog:
            _syslog(config, 40, f"refused {command!r}: {exc}")
        return exc.exit_code

    if config.use_syslog:
        _syslog(config, 20, f"({_login_user()} > {match.run_as}) Executing {match.command!r} "
                            f"(filter match = {match.filter_name})")
    limit_open_files(config.rlimit_nofile)
    env = child_environment(config.exec_dirs, match.env)
    try:
        return run_with_inherited_stdio(match, env)
    except OSError as exc:
        _error(prog, f"cannot execute {match.command[0]}: {exc.strerror}")
        return 126


def _error(prog: str, message: str) -> None:
    try:
        sys.stderr.write(f"{prog}: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass  # stderr closed: nothing better to do


def _login_user() -> str:
    return os.environ.get("SUDO_USER") or str(os.getuid())


def _syslog(config, level: int, message: str) -> None:
    from isthmus.privileged.audit import syslog_logger

    logger = syslog_logger(config)
    if logger is not None:
        logger.log(level, message)


if __name__ == "__main__":
    sys.exit(main())
