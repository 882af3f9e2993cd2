"""Shared fixtures: a real Isthmus API server on a free loopback port."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import waitress

from isthmus.api import create_app
from isthmus.db import Database, upgrade
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


def start_server(db_url: str, migrate: bool = True) -> tuple[RunningServer, Any, threading.Thread]:
    if migrate:
        upgrade(db_url)
    db = Database(db_url)
    services = Services(db)
    server = waitress.create_server(create_app(services), host="127.0.0.1", port=0, threads=4,
                                    asyncore_loop_timeout=0.05)
    stopping = threading.Event()

    def loop() -> None:
        # waitress.serve() has no stop; poll its loop until told to stop, then close.
        while not stopping.is_set():
            server.asyncore.loop(timeout=0.05, map=server._map, count=1)
        server.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    port = server.socket.getsockname()[1]
    running = RunningServer(f"http://127.0.0.1:{port}", services, db)
    running.stop = lambda: (stopping.set(), thread.join(timeout=5))  # type: ignore[attr-defined]
    return running, server, thread


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """One migrated SQLite file; tests copy it instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "isthmus.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def api(tmp_path, migrated_sqlite) -> Iterator[RunningServer]:
    """A fresh server on an empty SQLite database."""
    shutil.copy(migrated_sqlite, tmp_path / "isthmus.db")
    running, server, thread = start_server(f"sqlite:///{tmp_path}/isthmus.db", migrate=False)
    yield running
    running.stop()  # type: ignore[attr-defined]
    running.db.dispose()
