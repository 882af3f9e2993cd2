"""A pooled connection the database closed: the transaction runs again on a new one.

Connections are not pinged before use (a round trip per request); the server
side of every pooled connection is killed here (``KILL`` on MariaDB,
``pg_terminate_backend`` on PostgreSQL) and the next read, write and API
request must still succeed, once. Each test uses a database of its own.
"""

from __future__ import annotations

import uuid
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from isthmus.db import Database, upgrade
from isthmus.db.retry import run_with_retries, stale_connection
from isthmus.network.networks import NETWORKS
from tests.conftest import BACKENDS, MARIADB_DRIVER, PYMYSQL_URL, SERVER_URLS, start_server

URLS = {**SERVER_URLS, "mariadb-pymysql": PYMYSQL_URL}
SERVER_BACKENDS = [b for b in BACKENDS if b in SERVER_URLS] + (
    ["mariadb-pymysql"] if "mariadb" in BACKENDS and MARIADB_DRIVER != "pymysql" else [])


def _admin(backend: str) -> sa.Engine:
    maint = URLS[backend] + ("postgres" if backend == "postgresql" else "")
    return sa.create_engine(maint, isolation_level="AUTOCOMMIT")


@pytest.fixture(params=SERVER_BACKENDS or [pytest.param(None, marks=pytest.mark.skip(
    reason="needs PostgreSQL or MariaDB under test"))])
def database(request) -> Iterator[tuple[str, str, str]]:
    """(backend, database name, URL) of a migrated database of this test's own."""
    backend = request.param
    name = f"isthmus_reconnect_{uuid.uuid4().hex[:10]}"
    admin = _admin(backend)
    suffix = (" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" if backend.startswith("mariadb")
              else "")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}{suffix}")
    url = URLS[backend] + name
    upgrade(url)
    try:
        yield backend, name, url
    finally:
        force = " WITH (FORCE)" if backend == "postgresql" else ""
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


def _kill_connections(backend: str, name: str) -> int:
    """End, from the server side, every connection to database ``name``; how many."""
    admin = _admin(backend)
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                return len(conn.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": name}).all())
            ids = conn.execute(sa.text("SELECT id FROM information_schema.processlist "
                                       "WHERE db = :name AND id <> CONNECTION_ID()"),
                               {"name": name}).scalars().all()
            for id_ in ids:
                conn.exec_driver_sql(f"KILL {int(id_)}")
            return len(ids)
    finally:
        admin.dispose()


def _network(conn: sa.Connection, id_: str) -> None:
    conn.execute(sa.insert(NETWORKS).values(id=id_, project_id="p", name=id_, description="",
                                            admin_state_up=True, shared=False,
                                            router_external=False, mtu=1500, status="ACTIVE"))


def _count(conn: sa.Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(NETWORKS)).scalar_one()


def test_read_and_write_run_again_on_a_new_connection_after_a_kill(database):
    backend, name, url = database
    db = Database(url)
    try:
        assert db.read_retrying(_count) == 0          # a pooled connection now exists
        assert _kill_connections(backend, name) >= 1
        assert db.read_retrying(_count) == 0
        assert _kill_connections(backend, name) >= 1
        attempts = []

        def write(conn: sa.Connection) -> None:
            attempts.append(1)
            _network(conn, "n1")
        db.write_retrying(write)
        assert len(attempts) == 2                     # the dead connection's run, then one more
        assert db.read_retrying(_count) == 1          # written once
    finally:
        db.dispose()


def test_without_a_retry_the_dead_connection_is_an_error(database):
    """:meth:`Database.read` (a block that cannot be run again) reports the dead
    connection; the pool is renewed, so the next transaction works."""
    backend, name, url = database
    db = Database(url)
    try:
        db.read_retrying(_count)
        _kill_connections(backend, name)
        with pytest.raises(sa_exc.DBAPIError) as caught:
            with db.read() as conn:
                _count(conn)
        assert caught.value.connection_invalidated
        with db.read() as conn:
            assert _count(conn) == 0
    finally:
        db.dispose()


def test_api_requests_succeed_after_the_database_killed_every_connection(database):
    backend, name, url = database
    running = start_server(url, migrate=False)
    try:
        with running.client("p1") as client:
            body = {"ikepolicy": {"name": "before"}}
            first = client.post("/v2.0/vpn/ikepolicies", json=body)
            assert first.status_code == 201, first.text
            id_ = first.json()["ikepolicy"]["id"]
            for request in (lambda: client.get(f"/v2.0/vpn/ikepolicies/{id_}"),
                            lambda: client.get("/v2.0/vpn/ikepolicies"),
                            lambda: client.post("/v2.0/vpn/ikepolicies",
                                                json={"ikepolicy": {"name": "after"}}),
                            lambda: client.put(f"/v2.0/vpn/ikepolicies/{id_}",
                                               json={"ikepolicy": {"name": "renamed"}}),
                            lambda: client.delete(f"/v2.0/vpn/ikepolicies/{id_}")):
                assert _kill_connections(backend, name) >= 1
                response = request()
                assert response.status_code < 300, response.text
            names = [p["name"] for p in client.get("/v2.0/vpn/ikepolicies").json()["ikepolicies"]]
            assert names == ["after"]
    finally:
        running.stop()  # type: ignore[attr-defined]
        running.db.dispose()


def _lost(statement: str | None) -> sa_exc.OperationalError:
    return sa_exc.OperationalError(statement, None, Exception("server closed the connection"),
                                   connection_invalidated=True)


def test_a_connection_lost_at_commit_is_not_run_again():
    """The commit may have happened: running the transaction again could write twice."""
    assert stale_connection(_lost("SELECT 1"))
    assert not stale_connection(_lost(None))
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise _lost(None)
    with pytest.raises(sa_exc.OperationalError):
        run_with_retries(attempt, 10)
    assert len(calls) == 1


def test_a_dead_connection_is_run_again_once_only():
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise _lost("SELECT 1")
    with pytest.raises(sa_exc.OperationalError):
        run_with_retries(attempt, 0)
    assert len(calls) == 2
