"""The rows the store tests start from: provider 1, organisation 1 with its workgroups (ids from
1, in the order named), broker account 1 of the sandbox, and its number 1, +19205550100, which
workgroup 1 answers; and interactions on that number. The columns left out take their
defaults."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from server.adapters.persistence.tables import (
    BrokerAccount,
    Interaction,
    Organisation,
    PhoneNumber,
    Provider,
    Workgroup,
    table_of,
)


def add_organisation(
    db: sa.Connection, *, at: datetime, workgroups: Sequence[str] = ("Support",)
) -> None:
    """Insert organisation 1 and what it needs to receive texts, each row created `at`."""
    db.execute(table_of(Provider).insert().values(id=1, slug="p", name="P", created_at=at))
    db.execute(
        table_of(Organisation)
        .insert()
        .values(id=1, provider_id=1, slug="o", name="O", created_at=at)
    )
    for workgroup_id, name in enumerate(workgroups, start=1):
        db.execute(
            table_of(Workgroup)
            .insert()
            .values(id=workgroup_id, organisation_id=1, name=name, created_at=at)
        )
    db.execute(
        table_of(BrokerAccount)
        .insert()
        .values(
            id=1,
            provider_id=1,
            organisation_id=1,
            public_id="a",
            broker="sandbox",
            name="A",
            credentials={},
            created_at=at,
        )
    )
    db.execute(
        table_of(PhoneNumber)
        .insert()
        .values(
            id=1,
            organisation_id=1,
            broker_account_id=1,
            e164="+19205550100",
            friendly_name="n",
            workgroup_id=1,
            created_at=at,
        )
    )


def add_interaction(db: sa.Connection, *, interaction_id: int, **columns: Any) -> None:
    """Insert interaction `interaction_id` of organisation 1 on its number 1, with the customer
    +1414555000`interaction_id`; `columns` are the others (state, queue, times...)."""
    db.execute(
        table_of(Interaction)
        .insert()
        .values(
            id=interaction_id,
            organisation_id=1,
            number_id=1,
            local_number="+19205550100",
            remote_number=f"+1414555000{interaction_id}",
            **columns,
        )
    )
