"""Shared fixtures: a real Isthmus API server on a free loopback port."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import sqlalchemy as sa

from isthmus.api import create_app
from isthmus.api.http import HTTPServer
from isthmus.db import Database, upgrade
from isthmus.db.models import Base
import isthmus.vpn  # noqa: F401  (declares the resource tables on Base.metadata)
from isthmus.services import Services


@dataclass
class RunningServer:
    url: str
    services: Services
    db: Database

    def client(self, project: str | None = None, roles: str = "member,reader",
               user: str = "user") -> httpx.Client:
        headers = {"Accept": "application/json"}
        if project is not None:
            headers.update({"X-Project-Id": project, "X-User-Id": user, "X-Roles": roles})
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(db_url: str, migrate: bool = True, app: Any = None,
                 services: Services | None = None, threads: int = 4) -> RunningServer:
    """Serve ``app`` (default: a plain API app on ``db_url``) on a free loopback port;
    ``stop()`` the result to stop serving."""
    if migrate:
        upgrade(db_url)
    if services is None:
        services = Services(Database(db_url))
    db = services.db
    server = HTTPServer.bind(app or create_app(services), "127.0.0.1", 0, threads=threads,
                             connection_limit=1000, idle_timeout=60, max_header_bytes=65536)
    stop = server.serve_in_thread()
    port = server.address[1]
    running = RunningServer(f"http://127.0.0.1:{port}", services, db)
    running.stop = stop  # type: ignore[attr-defined]
    return running


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One migrated SQLite file; tests copy it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "isthmus.db"
    upgrade(f"sqlite:///{path}")
    return path


BACKENDS = os.environ.get("ISTHMUS_TEST_BACKENDS", "sqlite,postgresql,mariadb").split(",")
try:
    import MySQLdb  # noqa: F401  (mysqlclient, the faster driver: the one under test if installed)
    MARIADB_DRIVER = "mysqldb"
except ImportError:
    MARIADB_DRIVER = "pymysql"
SERVER_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/",
    "mariadb": f"mysql+{MARIADB_DRIVER}://root@127.0.0.1:3306/",
}
PYMYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/"
"""MariaDB through PyMySQL too, where the two drivers may differ (tests/db)."""


@pytest.fixture(scope="session")
def server_databases() -> Iterator[dict[str, str]]:
    """One migrated database per server backend, created for this run and dropped after."""
    name = f"isthmus_test_{uuid.uuid4().hex[:10]}"
    created: dict[str, str] = {}
    try:
        for backend, base in SERVER_URLS.items():
            if backend not in BACKENDS:
                continue
            admin = sa.create_engine(base + ("postgres" if backend == "postgresql" else ""),
                                     isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                suffix = " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" \
                    if backend == "mariadb" else ""
                conn.exec_driver_sql(f"CREATE DATABASE {name}{suffix}")
            admin.dispose()
            created[backend] = base + name
            upgrade(created[backend])
        yield created
    finally:
        for backend, url in created.items():
            admin = sa.create_engine(SERVER_URLS[backend] + (
                "postgres" if backend == "postgresql" else ""), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                if backend == "postgresql":
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                else:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            admin.dispose()


def _empty(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


def empty_database(request, tmp_path, migrated_sqlite) -> str:
    """The URL of an empty, migrated database of the backend ``request.param`` names."""
    if request.param == "sqlite":
        shutil.copy(migrated_sqlite, tmp_path / "isthmus.db")
        return f"sqlite:///{tmp_path}/isthmus.db"
    url = request.getfixturevalue("server_databases")[request.param]
    _empty(url)
    return url


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path, migrated_sqlite) -> Iterator[RunningServer]:
    """A fresh server on an empty database of each backend under test."""
    url = empty_database(request, tmp_path, migrated_sqlite)
    running = start_server(url, migrate=False)
    yield running
    running.stop()  # type: ignore[attr-defined]
    running.db.dispose()
