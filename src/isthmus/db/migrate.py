"""Alembic, driven from code: the scripts ship inside the package.

Alembic (with Mako) costs about 0.3 s to import, so it is imported only when
the schema really has to change: a database already at the newest revision is
recognised with one query (``isthmus up`` on an existing data directory).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> "Config":
    """Alembic's configuration for ``url``, with the scripts shipped in the package."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def newest_revision() -> str:
    """The head revision, read from the file names (``NNNN_what.py`` has revision ``NNNN``).

    tests/db checks that this equals Alembic's own head.
    """
    return max(path.name.partition("_")[0]
               for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` to ``revision`` (idempotent)."""
    if revision in ("head", newest_revision()) and current(url) == newest_revision():
        return
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None before the first migration."""
    from isthmus.db.engine import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    finally:
        engine.dispose()
