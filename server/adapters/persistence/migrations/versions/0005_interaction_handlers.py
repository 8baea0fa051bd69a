"""interaction handlers: who ever accepted an interaction (joins the 0003 and 0004 branches)

Revision ID: 0005
Revises: 0003, 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = ("0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "interaction_handler",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "user_id"),
    )
    with op.batch_alter_table("interaction_handler", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_interaction_handler_organisation_id"), ["organisation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_interaction_handler_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interaction_handler", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_interaction_handler_user_id"))
        batch_op.drop_index(batch_op.f("ix_interaction_handler_organisation_id"))
    op.drop_table("interaction_handler")
