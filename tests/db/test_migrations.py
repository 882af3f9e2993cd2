"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from isthmus.db import create_engine, upgrade
from isthmus.db.models import Base


def test_migrations_match_models(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    upgrade(url)


def test_newest_revision_from_file_names_is_alembics_head(tmp_path):
    from alembic.script import ScriptDirectory

    from isthmus.db.migrate import alembic_config, current, newest_revision

    # ``upgrade`` skips Alembic when the database is at newest_revision(): it must be right.
    url = f"sqlite:///{tmp_path}/m.db"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert newest_revision() == head
    assert current(url) is None
    upgrade(url)
    assert current(url) == head
