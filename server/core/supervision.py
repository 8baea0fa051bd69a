"""What supervisors see and may do: the live picture of an organisation, the day's queue
figures, the chart's samples, and the supervisors' commands (docs/architecture.md, "Supervision").

`SupervisorDesk` is a base of the `Switchboard`:

- every saved interaction is counted in the day's figures (`DayTally`, queue_figures.py) and
  marks its queue changed, as does every change of an agent's shown state, so that the driver's
  `take_queue_figures()` tells the gateway which organisations' supervisors need a new picture;
- `supervision_view(organisation_id, now)` is that picture: per workgroup queue the figures and
  the agents by state, every agent, every live interaction;
- once `start_supervision(now, ...)` was called (the driver does, at start), a sample of every
  workgroup queue is taken every `SAMPLE_EVERY` (`RecordQueueSamples`, which also deletes the
  samples older than `SAMPLES_KEPT`), and each organisation's figures start again at its local
  midnight;
- the supervisors' commands (transfer or disconnect any live interaction, set an agent's state)
  are refused with `forbidden` unless the requester's role is supervisor or admin, and each
  change writes an audit row (`AuditSupervision`).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from server.core.acd import Agent, Presence, profile_queues
from server.core.customer_care import CareDesk
from server.core.effects import (
    AuditSupervision,
    CommandResult,
    Effect,
    QueueSample,
    RecordQueueSamples,
    SaveInteraction,
)
from server.core.errors import CommandRefused
from server.core.events import (
    AgentStateSet,
    SupervisorCommand,
    SupervisorDisconnectRequested,
    SupervisorTransferRequested,
)
from server.core.interactions import Interaction, InteractionState, Move
from server.core.queue_figures import DayFigures, DayTally, day_start
from server.core.routing import OrganisationConfig, QueueKind, QueueRef
from server.core.views import agent_state_view, interaction_view

__all__ = [
    "LISTED_INTERACTIONS",
    "SAMPLES_KEPT",
    "SAMPLE_EVERY",
    "SUPERVISING_ROLES",
    "SupervisorDesk",
]

SUPERVISING_ROLES = frozenset({"supervisor", "admin"})
SAMPLE_EVERY = timedelta(minutes=1)
SAMPLES_KEPT = timedelta(hours=24)
# The live interactions a picture lists, oldest first: the picture goes out once a second, and
# building and sending a hundred thousand of them would hold the writer and the sockets.
LISTED_INTERACTIONS = 1000
_DAY_AND_MORE = timedelta(hours=25)  # from a midnight, past the next one (days of 23 to 25 h)
_AGENT_STATES = ("available", "busy", "away", "offline")


class SupervisorDesk(CareDesk):
    """Figures, samples and supervisors' commands for the `Switchboard`."""

    tally: DayTally
    _sampling: bool
    _agent_for: Callable[..., Agent]  # the switchboard's: the agent, made when first seen

    def _init_supervision(self) -> None:
        self.tally = DayTally()
        self._sampling = False

    def start_supervision(self, now: datetime, closed_today: Iterable[Interaction] = ()) -> None:
        """Count each organisation's day from its last local midnight, with the live
        interactions and `closed_today` (those closed since, loaded from the store); take
        samples every `SAMPLE_EVERY` from the next whole minute on."""
        self._turn_days(list(self._configs), now, closed_today)
        self._sampling = True
        first = now.replace(second=0, microsecond=0) + SAMPLE_EVERY
        self.floor.deadlines.push(first, "sample", 0)

    def _turn_days(
        self, organisation_ids: Iterable[int], now: datetime, closed: Iterable[Interaction] = ()
    ) -> None:
        """Start the day again of each organisation whose day turned (and arm its next
        midnight), counting its live interactions and `closed` ones in one pass."""
        turned: set[int] = set()
        for organisation_id in organisation_ids:
            config = self._configs.get(organisation_id)
            if config is None:
                continue
            since = day_start(now, config.care.day_zone)
            if not self.tally.start_day(organisation_id, since):
                continue
            turned.add(organisation_id)
            midnight = day_start(since + _DAY_AND_MORE, config.care.day_zone)
            self.floor.deadlines.push(midnight, "day", organisation_id)
            for workgroup_id in config.workgroups.values():
                self.floor.dirty_queues.add(
                    (organisation_id, QueueRef(QueueKind.WORKGROUP, workgroup_id))
                )
        if not turned:
            return
        thresholds: dict[tuple[int, QueueRef], int] = {}
        for interaction in (*closed, *self._interactions.values()):
            if interaction.organisation_id not in turned:
                continue
            if interaction.answered_at is None and interaction.closed_at is None:
                continue  # waiting: it counts nothing yet (and the new day holds nothing of it)
            key = (interaction.organisation_id, interaction.queue)
            threshold = thresholds.get(key)
            if threshold is None:
                threshold = thresholds[key] = self._service_level_s(interaction)
            self.tally.note(interaction, service_level_s=threshold)

    def _service_level_s(self, interaction: Interaction) -> int:
        return self._care(interaction).service_level_s

    # -- what changes the figures ------------------------------------------------------------

    def _save(self, interaction: Interaction) -> SaveInteraction:
        """Count the interaction as it is now, mark its queue changed, and return its save."""
        self.tally.note(interaction, service_level_s=self._service_level_s(interaction))
        self.floor.dirty_queues.add((interaction.organisation_id, interaction.queue))
        return super()._save(interaction)

    def _push_agent_state(self, agent: Agent, effects: list[Effect]) -> None:
        config = self._configs.get(agent.organisation_id)
        if config is not None:
            for _, queue, _ in profile_queues(config.profile_of(agent.user_id)):
                self.floor.dirty_queues.add((agent.organisation_id, queue))
        super()._push_agent_state(agent, effects)

    # -- the timer ---------------------------------------------------------------------------

    def _supervision_due(self, kind: str, key: int, now: datetime, effects: list[Effect]) -> None:
        """A `sample` or `day` deadline came."""
        if kind == "day":
            self._turn_days([key], now)
            return
        if not self._sampling:
            return
        self._turn_days(list(self._configs), now)
        for organisation_id in list(self._configs):
            self._take_samples(organisation_id, now, effects)
        self.floor.deadlines.push(now.replace(second=0, microsecond=0) + SAMPLE_EVERY, "sample", 0)

    def _take_samples(self, organisation_id: int, now: datetime, effects: list[Effect]) -> None:
        config = self.config(organisation_id)
        samples = []
        for workgroup_id in sorted(config.workgroups.values()):
            queue = QueueRef(QueueKind.WORKGROUP, workgroup_id)
            line = self.floor.lines.get((organisation_id, queue))
            oldest = None if line is None else line.oldest()
            day = self.tally.figures(organisation_id, queue)
            samples.append(
                QueueSample(
                    workgroup_id=workgroup_id,
                    waiting=0 if line is None else len(line),
                    longest_wait_s=0 if oldest is None else _seconds(now - oldest),
                    answered=day.answered,
                    abandoned=day.abandoned,
                    service_level=day.service_level,
                )
            )
            self.floor.dirty_queues.add((organisation_id, queue))
        if samples:
            effects.append(
                RecordQueueSamples(organisation_id, now, tuple(samples), now - SAMPLES_KEPT)
            )

    # -- the picture -------------------------------------------------------------------------

    def supervision_view(self, organisation_id: int, now: datetime) -> dict[str, Any]:
        """What a supervisor's page shows: `queues` (each workgroup's figures and its agents
        by state), `agents` (every user of the organisation), `interactions` (the oldest
        `LISTED_INTERACTIONS` live ones, with the agent each is offered to) and
        `interactions_total` (how many are live). Datetimes stay datetimes."""
        config = self.config(organisation_id)
        queues = [
            self._queue_view(config, workgroup_id, now)
            for _, workgroup_id in sorted(config.workgroups.items())
        ]
        agents = []
        for username, user_id in sorted(config.users.items()):
            profile = config.profile_of(user_id)
            agent = self.floor.agents.get(user_id)
            state = (
                {
                    "state": "offline",
                    "reason": None,
                    "since": None,
                    "capacity": profile.sms_capacity,
                    "active": 0,
                }
                if agent is None
                else agent_state_view(agent, capacity=profile.sms_capacity)
            )
            agents.append(
                {
                    "id": user_id,
                    "username": username,
                    **state,
                    "workgroups": sorted(q.workgroup_id for q in profile.queues),
                }
            )
        theirs = [i for i in self._interactions.values() if i.organisation_id == organisation_id]
        listed = heapq.nsmallest(LISTED_INTERACTIONS, theirs, key=attrgetter("id"))
        interactions = [
            {
                "interaction": interaction_view(interaction, config),
                "offered_to": interaction.offered_to,
                "wrap_up_by": interaction.wrap_up_by,
            }
            for interaction in listed
        ]
        return {
            "queues": queues,
            "agents": agents,
            "interactions": interactions,
            "interactions_total": len(theirs),
        }

    def _queue_view(
        self, config: OrganisationConfig, workgroup_id: int, now: datetime
    ) -> dict[str, Any]:
        queue = QueueRef(QueueKind.WORKGROUP, workgroup_id)
        line = self.floor.lines.get((config.id, queue))
        oldest = None if line is None else line.oldest()
        day: DayFigures = self.tally.figures(config.id, queue)
        by_state = dict.fromkeys(_AGENT_STATES, 0)
        for user_id, profile in config.takers.get(workgroup_id, {}).items():
            agent = self.floor.agents.get(user_id)
            by_state["offline" if agent is None else agent.shown_state(profile.sms_capacity)] += 1
        average = day.average_wait_s
        return {
            "id": workgroup_id,
            "name": config.queue_name(queue),
            "waiting": 0 if line is None else len(line),
            "oldest_enqueued_at": oldest,
            "longest_wait_s": 0 if oldest is None else _seconds(now - oldest),
            "answered": day.answered,
            "answered_within": day.within,
            "abandoned": day.abandoned,
            "average_wait_s": None if average is None else round(average, 1),
            "service_level": None if day.service_level is None else round(day.service_level, 4),
            "service_level_s": config.care_of(queue).service_level_s,
            "agents": by_state,
        }

    # -- the supervisors' commands -----------------------------------------------------------

    @staticmethod
    def _supervising(role: str, what: str) -> None:
        if role not in SUPERVISING_ROLES:
            raise CommandRefused("forbidden", f"only a supervisor or an administrator may {what}")

    def _live(self, organisation_id: int, interaction_id: int) -> Interaction:
        """A live interaction of the organisation (not one in wrap-up)."""
        interaction = self._interactions.get(interaction_id)
        if interaction is None or interaction.organisation_id != organisation_id:
            raise CommandRefused("not_found", f"no live interaction {interaction_id}")
        if not interaction.is_open:
            raise CommandRefused(
                "illegal_state", f"interaction {interaction_id} is disconnected (in wrap-up)"
            )
        return interaction

    def _before(self, interaction: Interaction) -> dict[str, object]:
        config = self.config(interaction.organisation_id)
        return {
            "state": interaction.state.value,
            "queue": config.queue_name(interaction.queue),
            "agent": _username(config, interaction.agent_id or interaction.offered_to),
        }

    def _withdraw_offer(
        self, interaction: Interaction, now: datetime, effects: list[Effect]
    ) -> Agent | None:
        """Take an offered interaction back from its agent (it waits again); the agent."""
        if interaction.state is not InteractionState.OFFERED or interaction.offered_to is None:
            return None
        agent = self.floor.agents[interaction.offered_to]
        self._end_offer(interaction, agent, now, effects, reason="withdrawn")
        return agent

    def _release_agent(self, interaction: Interaction, now: datetime) -> Agent | None:
        """The connected agent lets go of a connected or idle interaction (it waits again)."""
        agent = self.floor.agents.get(interaction.agent_id or -1)
        interaction.move(Move.REQUEUE)
        interaction.agent_id = None
        interaction.idle_at = interaction.grace_until = None
        if agent is not None:
            agent.active.discard(interaction.id)
            if agent.load == 0:
                agent.idle_since = now
            self._refresh(agent)
        return agent

    def _supervisor_transfer(
        self, event: SupervisorTransferRequested, now: datetime, effects: list[Effect]
    ) -> None:
        self._supervising(event.role, "transfer an interaction they do not hold")
        interaction = self._live(event.organisation_id, event.interaction_id)
        config = self.config(event.organisation_id)
        names = config.users if event.to_kind == QueueKind.USER else config.workgroups
        if event.to_kind not in (QueueKind.USER, QueueKind.WORKGROUP) or event.to_name not in names:
            raise CommandRefused(
                "unknown_destination", f"no {event.to_kind} called {event.to_name!r}"
            )
        before = self._before(interaction)
        freed = self._withdraw_offer(interaction, now, effects)
        held = interaction.state in (InteractionState.CONNECTED, InteractionState.IDLE)
        if held:
            freed = self._release_agent(interaction, now)
        else:
            self.floor.dequeue(interaction)
        interaction.queue = QueueRef(QueueKind(event.to_kind), names[event.to_name])
        self._entered_queue(interaction, now)
        self._arm_waiting_deadlines(interaction, config)
        self.floor.enqueue(interaction)
        effects.append(self._save(interaction))
        if held and freed is not None:  # the agent sees it leave them, for its new queue
            self._push_interaction(interaction, freed.user_id, effects)
        effects.append(
            _audit(
                event,
                "supervisor_transfer",
                "interaction",
                str(interaction.id),
                before=before,
                after={"state": interaction.state.value, "queue": event.to_name, "agent": None},
                now=now,
            )
        )
        effects.append(CommandResult({}))
        self._dispatch_interaction(interaction, now, effects)
        if freed is not None:
            self._find_work(freed, now, effects)

    def _supervisor_disconnect(
        self, event: SupervisorDisconnectRequested, now: datetime, effects: list[Effect]
    ) -> None:
        self._supervising(event.role, "disconnect an interaction they do not hold")
        interaction = self._live(event.organisation_id, event.interaction_id)
        before = self._before(interaction)
        freed = self._withdraw_offer(interaction, now, effects)
        if interaction.state in (InteractionState.CONNECTED, InteractionState.IDLE):
            self._close_live(interaction, now, effects, reason="supervisor")  # finds them work
        else:
            self.floor.dequeue(interaction)
            self._disconnect(interaction, now, reason="supervisor")
            del self._interactions[interaction.id]
            effects.append(self._save(interaction))
        effects.append(
            _audit(
                event,
                "supervisor_disconnect",
                "interaction",
                str(interaction.id),
                before=before,
                after={"state": interaction.state.value, "closed_reason": "supervisor"},
                now=now,
            )
        )
        effects.append(CommandResult({}))
        if freed is not None:
            self._find_work(freed, now, effects)

    def _agent_state_set(self, event: AgentStateSet, now: datetime, effects: list[Effect]) -> None:
        self._supervising(event.role, "set another agent's state")
        if event.state not in (Presence.AVAILABLE, Presence.AWAY):
            raise CommandRefused("bad_command", "state must be available or away")
        config = self.config(event.organisation_id)
        username = _username(config, event.agent_id)
        if username is None:
            raise CommandRefused("not_found", f"no agent {event.agent_id} in this organisation")
        agent = self._agent_for(event.organisation_id, event.agent_id, now=now)
        capacity = config.profile_of(agent.user_id).sms_capacity
        before = agent_state_view(agent, capacity=capacity)
        self._set_presence(agent, Presence(event.state), event.reason, now, effects)
        after = agent_state_view(agent, capacity=capacity)
        effects.append(
            _audit(
                event,
                "set_agent_state",
                "agent",
                username,
                before={"state": before["state"], "reason": before["reason"]},
                after={"state": after["state"], "reason": after["reason"]},
                now=now,
            )
        )
        effects.append(CommandResult({}))
        self._find_work(agent, now, effects)


def _audit(
    event: SupervisorCommand,
    action: str,
    entity: str,
    key: str,
    *,
    before: Mapping[str, object],
    after: Mapping[str, object],
    now: datetime,
) -> AuditSupervision:
    """The audit row of a supervisor's change."""
    return AuditSupervision(
        organisation_id=event.organisation_id,
        actor=event.actor,
        action=action,
        entity=entity,
        entity_key=key,
        before=before,
        after=after,
        at=now,
    )


def _username(config: OrganisationConfig, user_id: int | None) -> str | None:
    """The username of one of the organisation's users (None: not one of them)."""
    if user_id is None:
        return None
    return config.queue_name(QueueRef(QueueKind.USER, user_id)) or None


def _seconds(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds()))
