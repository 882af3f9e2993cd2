"""(project_id, id) indexes: a project's page of a list is one index range

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 23:05:00
"""
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Every table of project-owned objects; the new index starts with project_id, so it
# replaces the project_id index of 0001.
OWNED = ("networks", "subnets", "ports", "routers", "ikepolicies", "ipsecpolicies",
         "vpnservices", "vpn_endpoint_groups", "ipsec_site_connections")


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_project_id_id', ['project_id', 'id'],
                                  unique=False)
            batch_op.drop_index(f'ix_{table}_project_id')


def downgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_project_id', ['project_id'], unique=False)
            batch_op.drop_index(f'ix_{table}_project_id_id')
