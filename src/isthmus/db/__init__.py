"""Storage: SQLAlchemy models, engine/transactions and Alembic migrations."""

from isthmus.db.engine import Database, create_engine
from isthmus.db.migrate import upgrade

__all__ = ["Database", "create_engine", "upgrade"]
