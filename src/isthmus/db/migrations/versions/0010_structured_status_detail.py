"""structured status detail on site connections (JSON text; a sentence becomes its message)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 04:00:00
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLE = sa.table('ipsec_site_connections', sa.column('id', sa.String(36)),
                 sa.column('status_detail', sa.Text()))


def upgrade() -> None:
    conn = op.get_bind()
    sentences = conn.execute(sa.select(TABLE.c.id, TABLE.c.status_detail)
                             .where(TABLE.c.status_detail.is_not(None))).all()
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        batch_op.alter_column('status_detail', existing_type=sa.String(255),
                              type_=sa.Text(), existing_nullable=True)
    for id_, text in sentences:
        conn.execute(sa.update(TABLE).where(TABLE.c.id == id_).values(
            status_detail=json.dumps({"reason": None, "message": text})))


def downgrade() -> None:
    conn = op.get_bind()
    details = conn.execute(sa.select(TABLE.c.id, TABLE.c.status_detail)
                           .where(TABLE.c.status_detail.is_not(None))).all()
    for id_, text in details:
        message = (json.loads(text) or {}).get("message")
        conn.execute(sa.update(TABLE).where(TABLE.c.id == id_).values(
            status_detail=None if message is None else message[:255]))
    with op.batch_alter_table('ipsec_site_connections', schema=None) as batch_op:
        batch_op.alter_column('status_detail', existing_type=sa.Text(),
                              type_=sa.String(255), existing_nullable=True)
