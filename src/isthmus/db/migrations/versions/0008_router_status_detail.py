"""status detail on routers

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_detail', sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('routers', schema=None) as batch_op:
        batch_op.drop_column('status_detail')
