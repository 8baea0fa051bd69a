"""outbound: routes, parts, account sending settings, keyword replies, attachments

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("keyword_replies", sa.JSON(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("broker_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sending", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recipient", sa.String(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("parts", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("media", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(
            sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "outbound_route",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pattern", sa.String(), nullable=False),
        sa.Column("formatted_number", sa.String(length=100), nullable=False),
        sa.Column("broker_account_id", sa.Integer(), nullable=False),
        sa.Column("classifications", sa.JSON(), nullable=False),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.Column("workgroups", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["broker_account_id"], ["broker_account.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbound_route", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbound_route_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "outbound_part",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("part_index", sa.Integer(), nullable=False),
        sa.Column("broker_account_id", sa.Integer(), nullable=False),
        sa.Column("broker_message_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["broker_account_id"], ["broker_account.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "part_index"),
    )
    with op.batch_alter_table("outbound_part", schema=None) as batch_op:
        batch_op.create_index(
            "outbound_part_by_broker_id", ["broker_account_id", "broker_message_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_outbound_part_organisation_id"), ["organisation_id"], unique=False
        )
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["uploaded_by"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token"),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_attachment_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_attachment_organisation_id"), ["organisation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_organisation_id"))
        batch_op.drop_index(batch_op.f("ix_attachment_expires_at"))
    op.drop_table("attachment")
    with op.batch_alter_table("outbound_part", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_part_organisation_id"))
        batch_op.drop_index("outbound_part_by_broker_id")
    op.drop_table("outbound_part")
    with op.batch_alter_table("outbound_route", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_route_organisation_id"))
    op.drop_table("outbound_route")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        for column in ("parts_sent", "media", "parts", "recipient"):
            batch_op.drop_column(column)
    with op.batch_alter_table("broker_account", schema=None) as batch_op:
        batch_op.drop_column("sending")
    with op.batch_alter_table("organisation", schema=None) as batch_op:
        batch_op.drop_column("keyword_replies")
