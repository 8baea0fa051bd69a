"""What agents are shown: the protocol's Interaction, Message and agent-state payloads.

Plain dictionaries of JSON-ready values (datetimes stay datetimes; the gateway encodes them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.core.acd import Agent
from server.core.interactions import Interaction
from server.core.routing import OrganisationConfig

__all__ = ["agent_state_view", "interaction_view", "message_view"]


def interaction_view(interaction: Interaction, config: OrganisationConfig) -> dict[str, Any]:
    return {
        "id": interaction.id,
        "state": interaction.state.value,
        "local_number": interaction.local_number,
        "remote_number": interaction.remote_number,
        "queue": {
            "kind": interaction.queue.kind.value,
            "id": interaction.queue.id,
            "name": config.queue_name(interaction.queue),
        },
        "priority": interaction.priority,
        "enqueued_at": interaction.enqueued_at,
        "created_at": interaction.created_at,
        "closed_at": interaction.closed_at,
        "agent_id": interaction.agent_id,
        "grace_until": interaction.grace_until,
        "closed_reason": interaction.closed_reason,
        "wrap_up_until": interaction.wrap_up_until,
    }


def message_view(
    *,
    message_id: int,
    interaction_id: int | None,
    direction: str,
    sender: str,
    recipient: str,
    body: str,
    media: list[dict[str, str | None]],
    keyword: str | None,
    status: str | None,
    author_id: int | None,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "id": message_id,
        "interaction_id": interaction_id,
        "direction": direction,
        "from": sender,
        "to": recipient,
        "body": body,
        "media": media,
        "keyword": keyword,
        "status": status,
        "status_reason": None,
        "author_id": author_id,
        "created_at": created_at,
    }


def agent_state_view(agent: Agent, *, capacity: int) -> dict[str, Any]:
    return {
        "state": agent.shown_state(capacity),
        "reason": agent.reason,
        "since": agent.since,
        "capacity": capacity,
        "active": agent.load,
    }
