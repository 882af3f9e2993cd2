"""status detail on site connections

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_detail', sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        batch_op.drop_column('status_detail')
