"""customer care: idle/grace, notices, maximum wait, reopen, purge

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DEADLINES = ("answered_at", "idle_at", "grace_until", "max_wait_at", "next_notice_at")


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("care", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("next_purge_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("workgroup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("care", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        for name in _DEADLINES:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notice_position", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("notice_wait_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("closed_reason", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        for name in ("closed_reason", "notice_wait_s", "notice_position", *_DEADLINES[::-1]):
            batch_op.drop_column(name)
    with op.batch_alter_table("workgroup", schema=None) as batch_op:
        batch_op.drop_column("care")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("next_purge_at")
        batch_op.drop_column("care")
