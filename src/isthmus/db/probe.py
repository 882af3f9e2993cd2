"""Is the database reachable? Checked with a fresh connection, never a pooled one.

A pooled connection can outlive its database (an SQLite file whose directory
was removed still answers on an open descriptor), so start-up and
``/healthcheck`` open a new connection each time.
"""

from __future__ import annotations

import sqlite3
import time

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

CONNECT_TIMEOUT_S = 5


class BadDatabaseURL(ValueError):
    """``[database] connection`` cannot name a database (unparsable, unknown dialect, no driver)."""


def parse_url(url: str) -> URL:
    """``url`` parsed and its dialect loaded; :class:`BadDatabaseURL` saying why not."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise BadDatabaseURL("is not a database URL (expected DIALECT[+DRIVER]://USER:PASSWORD"
                             "@HOST[:PORT]/DATABASE)") from None
    try:
        parsed.get_dialect()
    except sa.exc.NoSuchModuleError:
        raise BadDatabaseURL(f"names the unknown database dialect '{parsed.drivername}' "
                             "(expected postgresql+psycopg://, mysql+pymysql:// or "
                             "sqlite:///PATH)") from None
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as err:
        raise BadDatabaseURL(f"needs the Python module '{err.name}', which is not installed "
                             f"(install it, or use postgresql+psycopg:// or mysql+pymysql://)"
                             ) from None
    return parsed


def probe(url: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None if a new connection to ``url`` answers ``SELECT 1``, else why not, in one line.

    The reason never contains the password. An SQLite file that does not exist
    is unreachable (it is not created here).
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        engine = sa.create_engine("sqlite://", poolclass=NullPool, creator=lambda: sqlite3.connect(
            f"file:{path}?mode=rw", uri=True, timeout=timeout_s))
    else:
        engine = sa.create_engine(parsed, poolclass=NullPool,
                                  connect_args={"connect_timeout": max(1, int(timeout_s))})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return None
    except sa.exc.DBAPIError as err:
        return _one_line(str(err.orig), parsed.password)
    except Exception as err:   # a driver error outside DBAPI's hierarchy: still a reason
        return _one_line(f"{type(err).__name__}: {err}", parsed.password)
    finally:
        engine.dispose()


def wait_until_reachable(url: str, timeout_s: float) -> str | None:
    """Retry :func:`probe` every second for up to ``timeout_s``; the last reason, or None."""
    deadline = time.monotonic() + timeout_s
    while True:
        reason = probe(url)
        if reason is None or time.monotonic() >= deadline:
            return reason
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _one_line(text: str, password: str | None) -> str:
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    if password:
        line = line.replace(password, "***")
    return line
