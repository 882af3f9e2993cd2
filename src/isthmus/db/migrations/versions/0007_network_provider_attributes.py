"""provider attributes on networks

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_network_type', sa.String(16), nullable=True))
        batch_op.add_column(sa.Column('provider_physical_network', sa.String(64),
                                      nullable=True))
        batch_op.add_column(sa.Column('provider_segmentation_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('networks', schema=None) as batch_op:
        batch_op.drop_column('provider_segmentation_id')
        batch_op.drop_column('provider_physical_network')
        batch_op.drop_column('provider_network_type')
