"""Where the helper's log and audit lines go: syslog or stderr.

Every daemon call leaves exactly one audit line (caller uid and pid,
command, verdict, exit code, duration; never stdin, which can carry
secrets), with control characters escaped so a caller's argument cannot
end the line and forge another. Audit lines are written at INFO whatever `syslog_log_level`
says, since an audit trail that is off by default (oslo.rootwrap's ERROR
default) is no trail; `syslog_log_level` applies to everything else.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import shlex
import sys

from isthmus.privileged.config import RootwrapConfig

LOGGER_NAME = "isthmus.privileged"
AUDIT_LOGGER_NAME = "isthmus.privileged.audit"
_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def syslog_logger(config: RootwrapConfig) -> logging.Logger | None:
    """A logger on /dev/log with the configured facility; None if there is no syslog."""
    if not os.path.exists("/dev/log"):
        sys.stderr.write("isthmus-rootwrap: warning: use_syslog is set but /dev/log is missing\n")
        return None
    handler = logging.handlers.SysLogHandler(address="/dev/log", facility=config.syslog_log_facility)
    handler.setFormatter(logging.Formatter("isthmus-rootwrap: %(message)s"))
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(config.syslog_log_level)
    return logger


def setup_daemon_logging(config: RootwrapConfig) -> logging.Logger:
    """Configure logging for the daemon; returns the audit logger."""
    # A closed stderr must never turn a log call into an exception (that is
    # how oslo.rootwrap's daemon ends up crashing on refusals).
    logging.raiseExceptions = False
    handler: logging.Handler | None = None
    if config.use_syslog and not os.path.exists("/dev/log"):
        sys.stderr.write("isthmus-rootwrap-daemon: warning: use_syslog is set but /dev/log is missing; "
                         "logging to stderr\n")
    if config.use_syslog and os.path.exists("/dev/log"):
        handler = logging.handlers.SysLogHandler(address="/dev/log", facility=config.syslog_log_facility)
        handler.setFormatter(logging.Formatter("isthmus-rootwrap-daemon: %(name)s %(message)s"))
        level = config.syslog_log_level
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        level = logging.INFO
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False

    audit = logging.getLogger(AUDIT_LOGGER_NAME)
    audit.handlers[:] = [handler]
    audit.setLevel(logging.INFO)
    audit.propagate = False
    return audit


def audit_line(
    *,
    uid: int,
    pid: int,
    argv: list[str],
    verdict: str,
    filter_name: str = "-",
    returncode: int | None = None,
    duration_s: float = 0.0,
) -> str:
    """One line, key=value, the command last and shell-quoted, escaped by `escape_for_log`."""
    code = "-" if returncode is None else str(returncode)
    return escape_for_log(
        f"uid={uid} pid={pid} verdict={verdict} filter={filter_name!s} exit={code} "
        f"duration_ms={duration_s * 1000:.2f} cmd={shlex.join(argv)}"
    )


def escape_for_log(text: str) -> str:
    r"""`text` with backslash and every non-printable character as a backslash escape.

    Arguments come from the caller: a newline (or U+2028, U+0085, a
    carriage return...) in one would otherwise end the audit line and let
    the caller write a forged one after it. Backslash itself is escaped
    too, so `\\` is always a backslash and `\n` always a newline. Bytes
    that are not UTF-8 (carried as surrogates) show as `\udcNN`.
    """
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_ESCAPES.get(char) or (char if char.isprintable() else _escape_code(char)) for char in text)


def _escape_code(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
