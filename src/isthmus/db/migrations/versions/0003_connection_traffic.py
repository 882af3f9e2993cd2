"""traffic counters on site connections

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 12:02:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

COUNTERS = ("bytes_in", "bytes_out", "packets_in", "packets_out")


def upgrade() -> None:
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        for name in COUNTERS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0',
                                          nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        for name in COUNTERS:
            batch_op.drop_column(name)
