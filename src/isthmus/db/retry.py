"""Running a transaction again when it lost a race, as oslo.db's ``wrap_db_retry`` does.

Concurrent writers may deadlock, fail PostgreSQL's serialization check, or
(for an address the server picked, not one the client asked for) insert an IP
another transaction took a moment earlier. None of these is the client's
fault, so the whole transaction is rolled back and run again from the start:
a bounded number of times, after a jittered, growing pause so that the
racers do not meet again. Every other error passes through unchanged.

A pooled connection the database closed meanwhile (a restart, a ``KILL``, an
idle timeout) is not pinged before every use: that cost a round trip per
request. Its first statement fails instead, SQLAlchemy invalidates the pool,
and the transaction is run once more on a fresh connection
(:func:`stale_connection`). A connection lost at ``COMMIT`` is not retried:
the commit may have happened.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from typing import Callable, TypeVar

from sqlalchemy import exc as sa_exc

LOG = logging.getLogger(__name__)

T = TypeVar("T")

FIRST_PAUSE_S = 0.01
MAX_PAUSE_S = 0.5

# Driver error codes: PostgreSQL SQLSTATEs, MySQL/MariaDB errnos.
_PG_UNIQUE = "23505"
_PG_RACES = {"40001": "serialization failure", "40P01": "deadlock"}
_MYSQL_UNIQUE = 1062
_MYSQL_RACES = {1213: "deadlock"}
_SQLITE_UNIQUE = {sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE}


class RetryRequest(Exception):
    """Raised inside a transaction to have it rolled back and run again.

    For races the database reports as an ordinary error (a unique key the
    server itself chose turned out taken); the code that knows the insert was
    its own choice raises this instead of the error.
    """


def is_unique_violation(err: sa_exc.DBAPIError) -> bool:
    """Whether ``err`` is a duplicate primary or unique key, on any supported backend."""
    orig = err.orig
    if getattr(orig, "sqlstate", None) == _PG_UNIQUE:
        return True
    if isinstance(orig, sqlite3.IntegrityError):
        return orig.sqlite_errorcode in _SQLITE_UNIQUE
    return bool(orig is not None and orig.args and orig.args[0] == _MYSQL_UNIQUE)


def lost_race(err: BaseException) -> str | None:
    """Why a fresh run of the transaction may succeed (``None``: it would not)."""
    if isinstance(err, RetryRequest):
        return str(err) or "retry requested"
    if not isinstance(err, sa_exc.DBAPIError) or err.orig is None:
        return None
    orig = err.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_RACES:
        return _PG_RACES[sqlstate]
    if orig.args and isinstance(orig.args[0], int):
        return _MYSQL_RACES.get(orig.args[0])
    return None


def stale_connection(err: BaseException) -> bool:
    """Whether ``err`` is a statement that failed because its pooled connection was
    dead: nothing of the transaction can have been committed, so running it again on
    a fresh connection is safe. Not a failed ``COMMIT`` (SQLAlchemy gives no statement
    then), which may have committed."""
    return isinstance(err, sa_exc.DBAPIError) and err.connection_invalidated \
        and err.statement is not None


def run_with_retries(attempt: Callable[[], T], max_retries: int) -> T:
    """``attempt()``, run again up to ``max_retries`` times while it loses races, and
    once more (whatever ``max_retries``) if its pooled connection turned out dead.

    ``attempt`` must be a whole transaction (begun and ended inside it), so a
    failed run leaves nothing behind. After the last retry the error is raised.
    """
    pause_s = FIRST_PAUSE_S
    retries = 0
    reconnected = False
    while True:
        try:
            return attempt()
        except (RetryRequest, sa_exc.DBAPIError) as err:
            if not reconnected and stale_connection(err):
                reconnected = True
                LOG.info("Database connection lost (%s); running the transaction again on "
                         "a new connection", str(getattr(err, "orig", err)).partition("\n")[0])
                continue
            reason = lost_race(err)
            if reason is None or retries == max_retries:
                raise
        retries += 1
        LOG.info("Transaction lost a race (%s); retry %d of %d", reason, retries, max_retries)
        # Full jitter: racers that met once are unlikely to meet again.
        time.sleep(random.uniform(0, pause_s))
        pause_s = min(pause_s * 2, MAX_PAUSE_S)
