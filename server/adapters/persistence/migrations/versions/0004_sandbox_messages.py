"""sandbox messages

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000

The built-in sandbox broker's table (server/adapters/sandbox_broker/tables.py). A branch from
0002: `parley migrate` upgrades every head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_message",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("account_public_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("business_number", sa.String(length=20), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("status_callback", sa.String(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("seq"),
        sa.UniqueConstraint("account_public_id", "idempotency_key"),
    )
    with op.batch_alter_table("sandbox_message", schema=None) as batch_op:
        batch_op.create_index("sandbox_message_by_phone", ["phone", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sandbox_message", schema=None) as batch_op:
        batch_op.drop_index("sandbox_message_by_phone")
    op.drop_table("sandbox_message")
