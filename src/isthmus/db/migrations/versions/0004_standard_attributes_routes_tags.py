"""standard attributes (timestamps, revision, tags) of networks, subnets and routers; extra routes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:30:00
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

STANDARD = ("networks", "subnets", "routers")


def upgrade() -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)
    for table in STANDARD:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('created_at', sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column('revision_number', sa.BigInteger(),
                                          server_default='0', nullable=False))
        # Objects from before: dated by the upgrade, as Neutron's own migration did.
        op.execute(sa.table(table, sa.column('created_at'), sa.column('updated_at'))
                   .update().values(created_at=now, updated_at=now))
    op.create_table(
        'router_routes',
        sa.Column('router_id', sa.String(length=36), nullable=False),
        sa.Column('destination', sa.String(length=64), nullable=False),
        sa.Column('nexthop', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['router_id'], ['routers.id'], ondelete='CASCADE',
                                name=op.f('fk_router_routes_router_id_routers')),
        sa.PrimaryKeyConstraint('router_id', 'destination', 'nexthop',
                                name=op.f('pk_router_routes')))
    op.create_table(
        'tags',
        sa.Column('resource_id', sa.String(length=36), nullable=False),
        sa.Column('tag', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('resource_id', 'tag', name=op.f('pk_tags')))


def downgrade() -> None:
    op.drop_table('tags')
    op.drop_table('router_routes')
    for table in STANDARD:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in ('revision_number', 'updated_at', 'created_at'):
                batch_op.drop_column(name)
