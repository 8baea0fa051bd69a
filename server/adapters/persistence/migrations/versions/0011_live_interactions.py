"""start indexes: a partial one over the live interactions a start restores, and one over the
closures by time, so that a start reads no history beyond the windows it needs

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_LIVE = sa.text("state <> 'disconnected' OR wrap_up_until IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "interaction_live",
        "interaction",
        ["id"],
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )
    op.create_index("interaction_closed", "interaction", ["state", "closed_at"])


def downgrade() -> None:
    op.drop_index("interaction_closed", table_name="interaction")
    op.drop_index("interaction_live", table_name="interaction")
