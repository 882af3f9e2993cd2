"""Retried transactions: lost races run again from scratch, everything else fails at once."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from isthmus.db import Database
from isthmus.network.networks import NETWORKS, SUBNETS
from isthmus.db.retry import RetryRequest, is_unique_violation, lost_race, run_with_retries
from tests.conftest import BACKENDS, empty_database



@pytest.fixture(params=BACKENDS)
def db(request, tmp_path, migrated_sqlite) -> Iterator[Database]:
    """An empty, migrated database of each backend under test."""
    database = Database(empty_database(request, tmp_path, migrated_sqlite))
    yield database
    database.dispose()


def _network(conn: sa.Connection, id_: str) -> None:
    conn.execute(sa.insert(NETWORKS).values(id=id_, project_id="p", name=id_, description="",
                                            admin_state_up=True, shared=False,
                                            router_external=False, mtu=1500, status="ACTIVE"))


def _names(db: Database) -> list[str]:
    with db.read() as conn:
        return sorted(conn.execute(sa.select(NETWORKS.c.name)).scalars())


def test_deadlocked_transaction_runs_again_and_leaves_no_half_rows(db):
    if db.engine.dialect.name == "sqlite":
        pytest.skip("SQLite writers queue on one lock and cannot deadlock")
    with db.write() as conn:
        _network(conn, "a")
        _network(conn, "b")
    both_hold_one_lock = threading.Barrier(2, timeout=30)
    attempts: list[str] = []

    def lock_in_order(me: str, first: str, second: str) -> None:
        def work(conn: sa.Connection) -> None:
            attempts.append(me)
            _network(conn, f"written-by-{me}")
            conn.execute(sa.update(NETWORKS).where(NETWORKS.c.id == first).values(name=first))
            if attempts.count(me) == 1:
                both_hold_one_lock.wait()
            conn.execute(sa.update(NETWORKS).where(NETWORKS.c.id == second).values(name=second))
        db.write_retrying(work)

    threads = [threading.Thread(target=lock_in_order, args=("x", "a", "b")),
               threading.Thread(target=lock_in_order, args=("y", "b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(attempts) == 3, f"one of the two deadlocked runs is retried: {attempts}"
    assert _names(db) == ["a", "b", "written-by-x", "written-by-y"]


def test_retries_are_bounded():
    calls = []

    def always_loses() -> None:
        calls.append(1)
        raise RetryRequest("taken")

    with pytest.raises(RetryRequest):
        run_with_retries(always_loses, max_retries=3)
    assert len(calls) == 4
    calls.clear()
    with pytest.raises(RetryRequest):
        run_with_retries(always_loses, max_retries=0)
    assert len(calls) == 1


def test_constraint_errors_are_told_apart_and_not_retried(db):
    with db.write() as conn:
        _network(conn, "a")
    with pytest.raises(sa_exc.IntegrityError) as duplicate:
        db.write_retrying(lambda conn: _network(conn, "a"))
    assert is_unique_violation(duplicate.value) and lost_race(duplicate.value) is None
    attempts = []

    def orphan_subnet(conn: sa.Connection) -> None:
        attempts.append(1)
        conn.execute(sa.insert(SUBNETS).values(
            id="s", project_id="p", name="", description="", network_id="missing",
            ip_version=4, cidr="10.0.0.0/24", gateway_ip=None, enable_dhcp=False))

    with pytest.raises(sa_exc.IntegrityError) as orphan:
        db.write_retrying(orphan_subnet)
    assert not is_unique_violation(orphan.value) and lost_race(orphan.value) is None
    assert attempts == [1]
    assert _names(db) == ["a"]
