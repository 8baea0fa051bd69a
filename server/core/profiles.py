"""Routing profiles and workgroup queue settings: what the ACD reads to decide who gets work.

A profile says which workgroup queues an agent takes work from, with a priority (a lower number is
served first) and a delay (an interaction must have waited that long before this agent is offered
it), how many SMS interactions the agent handles at once, and the agent's skills. A workgroup says
how its queue offers work: the strategy that picks among eligible agents, the offer timeout, the
wrap-up timeout, the priority boost a transfer gives, required skills, and escalation steps.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "USER_QUEUE_PRIORITY",
    "AgentProfile",
    "EscalationStep",
    "ProfileQueue",
    "Strategy",
    "WorkgroupSettings",
    "meets_skills",
]

USER_QUEUE_PRIORITY = 0  # an agent's own (direct) queue comes before every profile queue


class Strategy(enum.StrEnum):
    LONGEST_IDLE = "longest_idle"
    LEAST_BUSY = "least_busy"
    ROUND_ROBIN = "round_robin"


@dataclass(frozen=True)
class EscalationStep:
    """After `after_s` seconds waiting: drop the skill requirement, or move to another queue."""

    after_s: int
    drop_skills: bool = False
    overflow_to: int | None = None  # workgroup id


@dataclass(frozen=True)
class WorkgroupSettings:
    id: int
    name: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    offer_timeout_s: int = 30
    wrap_up_timeout_s: int = 60
    transfer_priority_boost: int = 10
    required_skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    escalation: tuple[EscalationStep, ...] = ()
    members: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ProfileQueue:
    workgroup_id: int
    priority: int
    delay_s: int = 0


@dataclass(frozen=True)
class AgentProfile:
    """What one user takes work from; a user without a routing profile has only their own queue."""

    user_id: int
    username: str
    sms_capacity: int = 3
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    queues: tuple[ProfileQueue, ...] = ()

    def queue_for(self, workgroup_id: int) -> ProfileQueue | None:
        for queue in self.queues:
            if queue.workgroup_id == workgroup_id:
                return queue
        return None


def meets_skills(skills: Mapping[str, int], required: Mapping[str, int]) -> bool:
    """True when every required skill is held at the required level or above."""
    return all(skills.get(skill, 0) >= level for skill, level in required.items())
