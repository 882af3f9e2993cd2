"""`isthmus-rootwrap-daemon ROOTWRAP_CONF [--socket PATH]`: the long-running root helper.

The process around the server: argument parsing, configuration, logging,
signals (SIGTERM/SIGINT stop, SIGHUP reloads config and filters). The
server itself is in `server`, who may connect in `auth`.

Start-up protocol: once listening, the daemon prints `ready SOCKET_PATH` on
stdout (or `error MESSAGE`) and then detaches stdout, so a client that
started it through sudo knows when to connect. A lock file next to the
socket makes a second daemon on the same path exit with `ready` instead of
stealing the socket.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from isthmus.privileged.config import load_config
from isthmus.privileged.exceptions import EXIT_CONFIG_ERROR, EXIT_NO_COMMAND, ConfigError
from isthmus.privileged.execution import limit_open_files
from isthmus.privileged.filterfile import load_filters
from isthmus.privileged.server import AlreadyRunning, Daemon

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (daemon start-up)
if TYPE_CHECKING:
    from typing import NoReturn

LOG = logging.getLogger("isthmus.privileged.daemon")


def _say(line: str) -> None:
    """Tell whoever started us (stdout) how start-up went, then let go of stdout."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _detach_stdout() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    if devnull != 1:
        os.close(devnull)


class _ArgumentParser(argparse.ArgumentParser):
    """Raises instead of exiting, so a usage error is also reported as `error MESSAGE` on stdout."""

    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _parse_args(args: list[str]) -> argparse.Namespace:
    # No --help: the daemon is started by the client through sudo, not by hand.
    parser = _ArgumentParser(prog="isthmus-rootwrap-daemon", add_help=False, allow_abbrev=False)
    parser.add_argument("config_path", metavar="ROOTWRAP_CONF")
    parser.add_argument("--socket", dest="socket_path", metavar="PATH")
    return parser.parse_args(args)


def main(argv: list[str] | None = None) -> int:
    """Entry point of isthmus-rootwrap-daemon."""
    args = sys.argv[1:] if argv is None else argv
    try:
        parsed = _parse_args(args)
    except ValueError as exc:
        message = f"{exc}; usage: isthmus-rootwrap-daemon ROOTWRAP_CONF [--socket PATH]"
        sys.stderr.write(f"isthmus-rootwrap-daemon: {message}\n")
        _say(f"error {message}")
        return EXIT_NO_COMMAND
    try:
        config = load_config(parsed.config_path)
    except ConfigError as exc:
        sys.stderr.write(f"isthmus-rootwrap-daemon: {exc}\n")
        _say(f"error {exc}")
        return EXIT_CONFIG_ERROR

    from isthmus.privileged.audit import setup_daemon_logging

    setup_daemon_logging(config)
    for warning in config.warnings:
        LOG.warning("%s", warning)
    filter_set = load_filters(config.filters_path)
    for problem in filter_set.problems:
        LOG.warning("filter file problem: %s", problem)

    os.chdir("/")
    os.umask(0o022)
    limit_open_files(config.rlimit_nofile)
    daemon = Daemon(config, filter_set, parsed.socket_path)
    try:
        daemon.listen()
    except AlreadyRunning:
        _say(f"ready {daemon.socket_path} (already running)")
        return 0
    except OSError as exc:
        message = f"cannot listen on {daemon.socket_path}: {exc.strerror or exc}"
        LOG.error("%s", message)
        _say(f"error {message}")
        return 1

    signal.signal(signal.SIGTERM, lambda *_: daemon.request_stop())
    signal.signal(signal.SIGINT, lambda *_: daemon.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: daemon.request_reload())
    LOG.info("listening on %s with %d filters from %d files (pid %d)",
             daemon.socket_path, len(filter_set.filters), len(filter_set.files), os.getpid())
    _say(f"ready {daemon.socket_path}")
    _detach_stdout()
    return daemon.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
