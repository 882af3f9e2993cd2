"""Connections and transactions: one short transaction per API request.

SQLite (the embedded default) gets WAL, foreign keys and ``BEGIN IMMEDIATE``
for writers, so concurrent writers queue on the lock instead of failing with
"database is locked" half-way through a request.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        mode = conn.info.get("isthmus_begin", "BEGIN")
        conn.exec_driver_sql(mode)


class _NoRowDumps(logging.Filter):
    """Drops SQLAlchemy's DEBUG dump of result rows: rows hold PSKs (docs/api.md)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Row %r"


logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NoRowDumps())


def create_engine(url: str) -> Engine:
    """An engine for ``url`` tuned for short OLTP transactions.

    ``hide_parameters``: statement parameters (a PSK among them) stay out of
    SQL logging and of database error messages, which reach tracebacks in logs.
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False,
                                                     "timeout": 30}, hide_parameters=True)
        _sqlite_setup(engine)
        return engine
    if url.startswith("mysql") and "charset=" not in url:
        url += ("&" if "?" in url else "?") + "charset=utf8mb4"
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20,
                            hide_parameters=True)


class Database:
    """The engine plus the two kinds of transaction the server uses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["isthmus_begin"] = "BEGIN"
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any error."""
        with self.engine.connect() as conn:
            conn.info["isthmus_begin"] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
