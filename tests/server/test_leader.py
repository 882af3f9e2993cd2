"""The leader lease: one process of all holds it; released or expired, another takes it.

The first tests run on every backend under test (the same statements must work on
SQLite, PostgreSQL and MariaDB); the last runs the mechanism in three separate processes on one SQLite file
and counts which processes ran the periodic job: exactly one.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
import sqlalchemy as sa

from isthmus.db import Database, upgrade
from isthmus.leader import LEASES, LeaderLease, _utcnow
from tests.conftest import BACKENDS, empty_database


def _db(tmp_path) -> Database:
    url = f"sqlite:///{tmp_path}/lease.db"
    upgrade(url)
    return Database(url)


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path, migrated_sqlite):
    """An empty migrated database of each backend under test."""
    database = Database(empty_database(request, tmp_path, migrated_sqlite))
    yield database
    database.dispose()


def test_one_holder_at_a_time_and_release_hands_over(db):
    a = LeaderLease(db, ttl_s=30, holder="a")
    b = LeaderLease(db, ttl_s=30, holder="b")
    assert a.try_take() and a.held()
    assert not b.try_take() and not b.held()
    assert a.try_take(), "the holder renews its own lease"
    a.release()
    assert not a.held()
    assert b.try_take() and b.held()
    assert not a.try_take()
    with db.read() as conn:
        assert conn.execute(sa.select(LEASES.c.holder)).scalars().all() == ["b"]


def test_an_expired_lease_is_taken_over_and_the_old_holder_knows(db):
    a = LeaderLease(db, ttl_s=30, holder="a")
    b = LeaderLease(db, ttl_s=30, holder="b")
    assert a.try_take()
    with db.write() as conn:   # a stopped renewing long ago (its process hung or died)
        conn.execute(sa.update(LEASES).values(expires_at=_utcnow() - timedelta(seconds=1)))
    assert b.try_take()
    assert not a.try_take() and not a.held()


WORKER = textwrap.dedent("""
    import logging, os, sys, time
    from isthmus.db import Database
    from isthmus.leader import LeaderLease
    from isthmus.periodic import Periodic

    db = Database(sys.argv[1])
    lease = LeaderLease(db, ttl_s=30).start()   # no take-over while the test runs
    def job():
        with open(sys.argv[2], "a") as out:
            out.write(f"{os.getpid()}\\n")
    Periodic("job", 0.1, job, run_first=True, only_if=lease.held).start()
    time.sleep(float(sys.argv[3]))
    print(os.getpid())
""")


def test_three_processes_run_the_periodic_job_in_one_process(tmp_path):
    db = _db(tmp_path)
    runs = tmp_path / "runs"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db.url, str(runs), "3"],
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    pids = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    ran = runs.read_text().split()
    assert len(ran) > 1, "the job ran in some process"
    assert len(set(ran)) == 1 and ran[0] in pids, f"job runs per process: {ran}"
    db.dispose()
