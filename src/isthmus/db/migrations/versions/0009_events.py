"""the event history: status transitions and API changes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('resource_type', sa.String(64), nullable=False),
        sa.Column('resource_id', sa.String(36), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('action', sa.String(64), nullable=True),
        sa.Column('old_status', sa.String(16), nullable=True),
        sa.Column('status', sa.String(16), nullable=True),
        sa.Column('reason', sa.String(255), nullable=True),
        sa.Column('changed', sa.Text(), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('request_id', sa.String(64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_events')),
    )
    # A project's page, one object's history, and the retention purge: index ranges.
    op.create_index('ix_events_project_id_id', 'events', ['project_id', 'id'], unique=False)
    op.create_index(op.f('ix_events_resource_id'), 'events', ['resource_id'], unique=False)
    op.create_index(op.f('ix_events_created_at'), 'events', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('events')
