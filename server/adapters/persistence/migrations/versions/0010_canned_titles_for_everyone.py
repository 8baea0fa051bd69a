"""canned responses for everyone: one title once (the unique constraint leaves NULL workgroups out)

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_FOR_EVERYONE = sa.text("workgroup_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "canned_response_title_for_everyone",
        "canned_response",
        ["organisation_id", "title"],
        unique=True,
        sqlite_where=_FOR_EVERYONE,
        postgresql_where=_FOR_EVERYONE,
    )


def downgrade() -> None:
    op.drop_index("canned_response_title_for_everyone", table_name="canned_response")
