"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from isthmus.db import create_engine, upgrade
from isthmus.db.migrate import current, newest_revision
from isthmus.db.models import Base
import isthmus.vpn  # noqa: F401  (declares the resource tables on Base.metadata)


def test_migrations_match_models(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_again_keeps_the_data_and_the_revision(tmp_path):
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade(url)
    engine = create_engine(url)
    networks = Base.metadata.tables["networks"]
    with engine.begin() as conn:
        conn.execute(sa.insert(networks).values(
            id="n1", project_id="p", name="kept", description="", admin_state_up=True,
            shared=False, router_external=False, mtu=1500, status="ACTIVE"))
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(networks.c.name)).scalars().all() == ["kept"]
    engine.dispose()
    assert current(url) == newest_revision()


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
