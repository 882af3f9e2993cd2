"""Alembic environment for Isthmus (online mode only)."""

from alembic import context

from isthmus.db.engine import create_engine
import isthmus.network  # noqa: F401  (declares the networking resources' tables)
import isthmus.vpn  # noqa: F401  (declares the VPN resources' tables)
from isthmus.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=engine.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
