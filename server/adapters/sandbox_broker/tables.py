"""The sandbox broker's own table: every text it carried, to a phone or from one.

The sandbox is an outside system that happens to live in Parley's store, so its rows carry no
`organisation_id`: they name the sandbox account by its public id, as a broker would. Migration
`0004` creates the table; the statuses are in `DIRECTION_*` and `STATUS_*` below.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.adapters.persistence.tables import UtcDateTime

__all__ = [
    "DIRECTION_FROM_PHONE",
    "DIRECTION_TO_PHONE",
    "STATUS_ACCEPTED",
    "STATUS_DELIVERED",
    "STATUS_FAILED",
    "STATUS_SENT",
    "SandboxMessage",
]

DIRECTION_TO_PHONE = "to_phone"  # sent by a business (Parley) to the handset
DIRECTION_FROM_PHONE = "from_phone"  # sent by the handset to a business number

STATUS_ACCEPTED = "accepted"  # stored, nothing more known yet
STATUS_SENT = "sent"  # to the phone: on its way (the "sent" receipt)
STATUS_DELIVERED = "delivered"  # to the phone: on the handset; from the phone: Parley took it
STATUS_FAILED = "failed"  # to the phone: unreachable handset; from the phone: Parley refused it


class SandboxMessage(SQLModel, table=True):
    """One text the sandbox carried, with its id ("SBX" + 24 hex digits) and its status.

    `seq` orders the texts as the sandbox stored them (ids are random); `idempotency_key` is the
    sender's key of a text to a phone, unique per account.
    """

    __tablename__ = "sandbox_message"
    __table_args__ = (
        sa.UniqueConstraint("account_public_id", "idempotency_key"),
        sa.Index("sandbox_message_by_phone", "phone", "seq"),
    )

    id: str = Field(primary_key=True, max_length=32)
    seq: int = Field(unique=True)
    account_public_id: str = Field(max_length=64)
    phone: str = Field(max_length=20)  # E.164: the handset
    business_number: str = Field(max_length=20)  # E.164: the account's number
    direction: str = Field(max_length=10)
    text: str
    media: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False))
    status: str = Field(max_length=16)
    reason: str | None = None
    status_callback: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(sa_column=sa.Column(UtcDateTime(), nullable=False))
