"""Connections and transactions: one short transaction per API request.

SQLite (the embedded default) gets WAL, foreign keys and ``BEGIN IMMEDIATE``
for writers, so concurrent writers queue on the lock instead of failing with
"database is locked" half-way through a request. Write transactions that lose
a race to another writer are run again (:mod:`isthmus.db.retry`), and so is a
transaction whose pooled connection the database had closed: connections are
not pinged before use (a round trip per request), a dead one fails its first
statement and the transaction runs once more on a new one.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from isthmus.db.retry import run_with_retries

T = TypeVar("T")
DEFAULT_MAX_RETRIES = 10


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

# PyMySQL's SERVER_STATUS_IN_TRANS: the server's last reply says a transaction is open.
_MYSQL_IN_TRANSACTION = 1
_OPEN = "isthmus_transaction_open"


def _mysql_setup(engine: Engine) -> None:
    # The pool rolls back every connection it gets back, but our transactions have
    # ended (committed or rolled back) by then, and a MySQL ROLLBACK is one more round
    # trip per request (psycopg skips it by itself when no transaction is open). Roll
    # back only when one may still be open: PyMySQL says so from the server's last
    # reply; for mysqlclient, which does not, SQLAlchemy's begin/commit/rollback tell.
    # An invalidated connection is discarded, never reset; and asking it for its DBAPI
    # connection would try to reconnect: those are skipped.
    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if not conn.invalidated:
            conn.connection.info[_OPEN] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):  # type: ignore[no-untyped-def]
        if not conn.invalidated:
            conn.connection.info[_OPEN] = False

    @event.listens_for(engine, "handle_error")
    def _on_error(context):  # type: ignore[no-untyped-def]
        # A failed statement or COMMIT may leave a transaction open: roll back at reset.
        conn = context.connection
        if conn is not None and not context.is_disconnect and not conn.invalidated:
            conn.connection.info[_OPEN] = True

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_conn, record, _state):  # type: ignore[no-untyped-def]
        status = getattr(dbapi_conn, "server_status", None)
        if status is not None and not status & _MYSQL_IN_TRANSACTION:
            return
        if status is None and record.info.get(_OPEN) is False:
            return
        dbapi_conn.rollback()


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
    if url.startswith("mysql"):
        if "charset=" not in url:
            url += ("&" if "?" in url else "?") + "charset=utf8mb4"
        engine = sa.create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True,
                                  pool_reset_on_return=None)
        _mysql_setup(engine)
        return engine
    return sa.create_engine(url, pool_size=10, max_overflow=20, hide_parameters=True)


class Database:
    """The engine plus the kinds of transaction the server uses.

    ``max_retries`` bounds how often :meth:`write_retrying` runs a transaction
    again after a deadlock, a serialization failure or a
    :class:`~isthmus.db.retry.RetryRequest`; 0 turns retrying off. Whatever it
    says, :meth:`read_retrying` and :meth:`write_retrying` run a transaction once
    more when its pooled connection was dead; :meth:`read` and :meth:`write` do not
    (their caller's block cannot be run again).
    """

    def __init__(self, url: str, max_retries: int = DEFAULT_MAX_RETRIES) -> None:
        self.url = url
        self.max_retries = max_retries
        self.engine = create_engine(url)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reads: on SQLite a plain ``BEGIN``, which takes no write lock
        (:meth:`write` takes it at once with ``BEGIN IMMEDIATE``)."""
        with self.engine.connect() as conn:
            conn.info["isthmus_begin"] = "BEGIN"
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on success and rolls back on any error; then the
        callbacks the work queued in ``conn.info["after_commit"]`` run, after a commit
        only (the event history wakes its live streams so)."""
        with self.engine.connect() as conn:
            conn.info["isthmus_begin"] = "BEGIN IMMEDIATE"
            try:
                with conn.begin():
                    yield conn
            finally:
                callbacks = conn.info.pop("after_commit", [])
                # Rows Collection.lock_row handed over: valid in this transaction only.
                conn.info.pop("isthmus_locked_rows", None)
        for callback in callbacks:
            callback()

    def read_retrying(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a :meth:`read` transaction, run again once on a new connection if
        the pooled one was dead."""
        def attempt() -> T:
            with self.read() as conn:
                return work(conn)
        return run_with_retries(attempt, 0)

    def write_retrying(self, work: Callable[[Connection], T]) -> T:
        """``work`` in a :meth:`write` transaction, run afresh while it loses races (and
        once on a new connection if the pooled one was dead)."""
        def attempt() -> T:
            with self.write() as conn:
                return work(conn)
        return run_with_retries(attempt, self.max_retries)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
