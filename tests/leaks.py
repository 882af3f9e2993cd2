"""Catching secrets on their way out: every log record of every logger, and a canary search.

A canary is a secret no one would type (``psk-canary-<uuid>``), so finding it
anywhere means the secret itself leaked, not a look-alike.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from pathlib import Path
from typing import Iterable, Iterator


def canary(label: str = "psk") -> str:
    return f"{label}-canary-{uuid.uuid4()}"


# The tests' own HTTP clients: what a caller logs of its requests is the caller's
# business (keystoneauth at DEBUG prints request bodies), not Isthmus's.
CLIENT_LOGGERS = ("httpx", "httpcore", "keystoneauth", "openstack", "urllib3")


class _Collector(logging.Handler):
    """Keeps each record fully formatted: message, arguments and traceback."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] not in CLIENT_LOGGERS:
            self.lines.append(self.format(record))


@contextlib.contextmanager
def every_log_line() -> Iterator[list[str]]:
    """All records of all loggers at DEBUG, whatever levels or handlers they had set.

    Levels set by libraries or by ``setup_logging`` (oslo.messaging at WARNING)
    are lowered for the duration, and loggers that do not propagate get the
    collector too, so nothing a deployment could switch on escapes the search.
    """
    lines: list[str] = []
    collector = _Collector(lines)
    root = logging.getLogger()
    loggers = [lg for lg in logging.root.manager.loggerDict.values()
               if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    saved_root = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(collector)
    for lg in loggers:
        lg.setLevel(logging.NOTSET)
        lg.disabled = False
        if not lg.propagate:
            lg.addHandler(collector)
    try:
        yield lines
    finally:
        root.removeHandler(collector)
        root.setLevel(saved_root)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled
            if collector in lg.handlers:
                lg.removeHandler(collector)


def leaks(secrets: Iterable[str], text: str) -> list[str]:
    """The lines of ``text`` holding any of ``secrets``."""
    wanted = list(secrets)
    return [line for line in text.splitlines() if any(s in line for s in wanted)]


def files_holding(secrets: Iterable[str], paths: Iterable[Path]) -> list[str]:
    """``path: line`` for each line of the given files that holds a secret."""
    found = []
    for path in paths:
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{path}: {line}" for line in leaks(secrets, text)]
    return found
