"""indexes for reading a connection's peer CIDRs and a group's endpoints by their parent

Both primary keys start with the child value (``cidr``, ``endpoint``), so a
lookup by parent scanned the whole table: with 100 000 site connections a show
took ~25 ms instead of ~1 ms (``benchmarks/api.py --objects``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:00:00
"""
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

INDEXED = (("ipsec_peer_cidrs", "ipsec_site_connection_id"),
           ("vpn_endpoints", "endpoint_group_id"))


def upgrade() -> None:
    for table, column in INDEXED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_{column}'), [column], unique=False)


def downgrade() -> None:
    for table, column in INDEXED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_{column}'))
