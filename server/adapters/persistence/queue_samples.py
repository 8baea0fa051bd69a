"""The store's side of supervision: queue samples (the dashboard's chart), supervisors' audit
rows, and what the day's figures are rebuilt from at start (server/core/supervision.py).

`write_supervision` runs in the writer's transaction for the effects `RecordQueueSamples` and
`AuditSupervision`; `closed_today` gives the switchboard the interactions closed since each
organisation's last midnight (the open ones it has already), so answered and abandoned are the
same after a restart; `recent_samples` is what a supervisor's page draws.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.adapters.persistence.tables import Audit, Interaction, QueueSample, table_of
from server.core.effects import AuditSupervision, Effect, RecordQueueSamples
from server.core.interactions import Interaction as LiveInteraction
from server.core.interactions import InteractionState
from server.core.queue_figures import day_start
from server.core.routing import OrganisationConfig, QueueKind, QueueRef

__all__ = ["CHART_HOURS", "closed_today", "recent_samples", "write_supervision"]

CHART_HOURS = 4  # the hours of samples a supervisor's page is sent

_sample = table_of(QueueSample)
_audit = table_of(Audit)
_interaction = table_of(Interaction)


def write_supervision(connection: sa.Connection, effects: Iterable[Effect]) -> None:
    """Store the samples (deleting those past keeping) and audit rows among `effects`."""
    for effect in effects:
        if isinstance(effect, RecordQueueSamples):
            connection.execute(
                _sample.delete().where(
                    _sample.c.organisation_id == effect.organisation_id,
                    _sample.c.at < effect.keep_from,
                )
            )
            connection.execute(
                _sample.insert(),
                [
                    {
                        "organisation_id": effect.organisation_id,
                        "workgroup_id": sample.workgroup_id,
                        "at": effect.at,
                        "waiting": sample.waiting,
                        "longest_wait_s": sample.longest_wait_s,
                        "answered": sample.answered,
                        "abandoned": sample.abandoned,
                        "service_level": sample.service_level,
                    }
                    for sample in effect.samples
                ],
            )
        elif isinstance(effect, AuditSupervision):
            connection.execute(
                _audit.insert().values(
                    organisation_id=effect.organisation_id,
                    actor=effect.actor[:200],
                    action=effect.action,
                    entity=effect.entity,
                    entity_key=effect.entity_key[:200],
                    before=dict(effect.before),
                    after=dict(effect.after),
                    at=effect.at,
                )
            )


def closed_today(
    connection: sa.Connection, configs: Mapping[int, OrganisationConfig], *, now: datetime
) -> list[LiveInteraction]:
    """The workgroup interactions closed since their organisation's last local midnight, as
    the core counts them (only the fields its figures read)."""
    found: list[LiveInteraction] = []
    for organisation_id, config in configs.items():
        since = day_start(now, config.care.day_zone)
        rows = connection.execute(
            sa.select(
                _interaction.c.id,
                _interaction.c.queue_id,
                _interaction.c.enqueued_at,
                _interaction.c.created_at,
                _interaction.c.answered_at,
                _interaction.c.closed_at,
                _interaction.c.wrap_up_until,
            ).where(
                _interaction.c.organisation_id == organisation_id,
                _interaction.c.state == InteractionState.DISCONNECTED.value,
                _interaction.c.queue_kind == QueueKind.WORKGROUP.value,
                _interaction.c.closed_at >= since,
            )
        )
        for row in rows:
            if row.wrap_up_until is not None:
                continue  # still in wrap-up: the switchboard has it
            found.append(
                LiveInteraction(
                    id=row.id,
                    organisation_id=organisation_id,
                    number_id=0,
                    local_number="",
                    remote_number="",
                    queue=QueueRef(QueueKind.WORKGROUP, row.queue_id),
                    state=InteractionState.DISCONNECTED,
                    enqueued_at=row.enqueued_at,
                    created_at=row.created_at,
                    answered_at=row.answered_at,
                    closed_at=row.closed_at,
                )
            )
    return found


def recent_samples(
    connection: sa.Connection, *, organisation_id: int, now: datetime, after: datetime | None = None
) -> list[dict[str, Any]]:
    """The organisation's samples of the last `CHART_HOURS` (or only those from `after` on;
    a client drops one it has), oldest first, as the protocol sends them."""
    since = now - timedelta(hours=CHART_HOURS)
    if after is not None and after > since:
        since = after
    query = (
        sa.select(_sample)
        .where(_sample.c.organisation_id == organisation_id, _sample.c.at >= since)
        .order_by(_sample.c.at, _sample.c.workgroup_id)
    )  # from `after` on, included: a sample taken at that very instant is not missed
    return [
        {
            "workgroup_id": row.workgroup_id,
            "at": row.at,
            "waiting": row.waiting,
            "longest_wait_s": row.longest_wait_s,
            "answered": row.answered,
            "abandoned": row.abandoned,
            "service_level": row.service_level,
        }
        for row in connection.execute(query)
    ]
