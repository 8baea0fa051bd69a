"""Who gets work first: the ACD's decisions on offers, slots and waiting lines.

`Switchboard` (switchboard.py) is a `Dispatcher`: the agents' commands and the inbound texts it
handles end here whenever an interaction starts waiting or an agent frees a slot. PRODUCT.md,
"Who gets work first": an agent with a free slot takes, among the interactions it is eligible
for, the one in the queue of lowest profile priority number, then of highest interaction
priority, then the earliest enqueued; when several agents could take an interaction, the
workgroup's strategy picks among them. Everything here is pure: it reads and changes the floor
and the interactions, and appends effects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from server.core.acd import (
    MISSED_OFFER,
    Agent,
    Floor,
    Presence,
    eligible,
    pick_agent,
    profile_queues,
)
from server.core.effects import Effect, PushToAgent, SaveAgent, SaveInteraction
from server.core.errors import CoreError
from server.core.interactions import Interaction, InteractionState, Move
from server.core.profiles import AgentProfile, Strategy, WorkgroupSettings
from server.core.routing import OrganisationConfig, QueueKind, QueueRef
from server.core.views import agent_state_view, interaction_view

__all__ = ["Dispatcher", "UnknownOrganisation"]


class UnknownOrganisation(CoreError):
    def __init__(self, organisation_id: int) -> None:
        super().__init__(f"organisation {organisation_id} has no configuration loaded")
        self.organisation_id = organisation_id


class Dispatcher:
    """The floor, the live interactions and the configurations, and the decisions on them."""

    floor: Floor
    _interactions: dict[int, Interaction]
    _configs: dict[int, OrganisationConfig]
    _refreshed: set[int]  # agents changed by the current event (see `_push_moved_states`)

    def config(self, organisation_id: int) -> OrganisationConfig:
        config = self._configs.get(organisation_id)
        if config is None:
            raise UnknownOrganisation(organisation_id)
        return config

    def _capacity(self, agent: Agent) -> int:
        return self.config(agent.organisation_id).profile_of(agent.user_id).sms_capacity

    def _end_offer(
        self,
        interaction: Interaction,
        agent: Agent,
        now: datetime,
        effects: list[Effect],
        *,
        reason: str,
    ) -> None:
        """Put an offered interaction back in its queue; keep this agent off it for a while."""
        settings = self._settings(interaction)
        interaction.move(Move.OFFER_ENDED)
        agent.offers.discard(interaction.id)
        if reason != "withdrawn":  # a declined or unanswered offer goes to someone else first
            until = now + timedelta(seconds=settings.offer_timeout_s)
            interaction.excluded_until[agent.user_id] = until
            self.floor.deadlines.push(until, "recheck", 0)
        interaction.offered_to = None
        interaction.offer_expires_at = None
        interaction.offer_delivered = False
        if agent.load == 0:
            agent.idle_since = now
        self._refresh(agent)
        self.floor.enqueue(interaction)
        effects.append(self._save(interaction))
        self._push(
            agent.organisation_id,
            agent.user_id,
            effects,
            kind="offer_ended",
            interaction_id=interaction.id,
            reason=reason,
        )
        # an overflow whose timer fell due during the offer found it offered and let it be
        self._escalate(interaction, now, effects)

    def _offer_expired(
        self, interaction: Interaction, now: datetime, effects: list[Effect]
    ) -> None:
        assert interaction.offered_to is not None
        agent = self.floor.agents[interaction.offered_to]
        delivered = interaction.offer_delivered
        self._end_offer(interaction, agent, now, effects, reason="expired")
        # an undelivered offer expiring is not the agent's fault, and an agent who went away
        # meanwhile keeps the reason they gave
        if delivered and agent.presence is Presence.AVAILABLE:
            self._set_presence(agent, Presence.AWAY, MISSED_OFFER, now, effects)
        self._dispatch_interaction(interaction, now, effects)

    def _offer(
        self, interaction: Interaction, agent: Agent, now: datetime, effects: list[Effect]
    ) -> None:
        settings = self._settings(interaction)
        self.floor.dequeue(interaction)
        interaction.move(Move.OFFER)
        interaction.offered_to = agent.user_id
        interaction.offer_expires_at = now + timedelta(seconds=settings.offer_timeout_s)
        interaction.offer_delivered = False
        agent.offers.add(interaction.id)
        self._refresh(agent)
        if interaction.queue.kind is QueueKind.WORKGROUP:
            self.floor.round_robin_last[interaction.queue.id] = agent.user_id
        self.floor.deadlines.push(interaction.offer_expires_at, "offer", interaction.id)
        effects.append(self._save(interaction))
        self._push(
            agent.organisation_id,
            agent.user_id,
            effects,
            kind="offer",
            interaction_id=interaction.id,
            expires_at=interaction.offer_expires_at,
            interaction=self._view(interaction),
        )

    def _escalate(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        """Apply the overflow steps whose time has come to a waiting interaction."""
        if interaction.state is not InteractionState.QUEUED:
            return
        if interaction.queue.kind is not QueueKind.WORKGROUP:
            return
        settings = self._settings(interaction)
        waited = (now - interaction.enqueued_at).total_seconds()
        overflow = [
            s for s in settings.escalation if s.overflow_to is not None and waited >= s.after_s
        ]
        if not overflow:
            return
        target = overflow[-1].overflow_to
        assert target is not None
        self.floor.dequeue(interaction)
        interaction.queue = QueueRef(QueueKind.WORKGROUP, target)
        self._arm_waiting_deadlines(interaction, self.config(interaction.organisation_id))
        self._entered_queue(interaction, now)
        self.floor.enqueue(interaction)
        effects.append(self._save(interaction))

    def _entered_queue(self, interaction: Interaction, now: datetime) -> None:
        """An interaction moved to another queue to wait (the care desk arms its care)."""

    def _arm_waiting_deadlines(self, interaction: Interaction, config: OrganisationConfig) -> None:
        """Times at which a waiting interaction may become eligible for more agents."""
        for when, kind, key in self._waiting_deadlines(interaction, config):
            self.floor.deadlines.push(when, kind, key)

    @staticmethod
    def _waiting_deadlines(
        interaction: Interaction, config: OrganisationConfig, *, after: datetime | None = None
    ) -> list[tuple[datetime, str, int]]:
        """(when, kind, key) of a waiting interaction's queue delays and escalation steps: a
        `recheck` of every queue when more agents may take it, an `escalate` of it when it
        overflows. Rechecks not later than `after` are left out (the caller arms one recheck
        for them all); an escalation is kept however late, it moves the interaction."""
        if interaction.queue.kind is not QueueKind.WORKGROUP:
            return []
        enqueued_at = interaction.enqueued_at
        entries: list[tuple[datetime, str, int]] = []
        for offset, overflows in config.waiting_steps.get(interaction.queue.id, ()):
            when = enqueued_at + offset
            if overflows:
                entries.append((when, "escalate", interaction.id))
            elif after is None or when > after:
                entries.append((when, "recheck", 0))
        return entries

    def _settings(self, interaction: Interaction) -> WorkgroupSettings:
        if interaction.queue.kind is QueueKind.WORKGROUP:
            return self.config(interaction.organisation_id).settings_of(interaction.queue.id)
        return WorkgroupSettings(id=0, name="")

    def _refresh(self, agent: Agent) -> None:
        """Keep the organisation's ready agents up to date after the agent changed."""
        config = self._configs.get(agent.organisation_id)
        capacity = 0 if config is None else config.profile_of(agent.user_id).sms_capacity
        ready = (
            agent.presence is Presence.AVAILABLE and agent.connections > 0 and agent.load < capacity
        )
        self.floor.ready_in(agent.organisation_id).set(agent, ready=ready)
        self._refreshed.add(agent.user_id)

    def _push_moved_states(self, effects: list[Effect]) -> None:
        """After an event: tell each agent it changed whose shown state moved without an
        `agent_state` of its own (busy when an accept, an offer or a start filled the last
        slot; available again when a close or a transfer freed one)."""
        for user_id in self._refreshed:
            agent = self.floor.agents.get(user_id)
            if agent is not None and agent.shown_state(self._capacity(agent)) != agent.shown:
                self._push_agent_state(agent, effects)
        self._refreshed.clear()

    def _dispatch_interaction(
        self, interaction: Interaction, now: datetime, effects: list[Effect]
    ) -> None:
        """Offer a waiting interaction to the agent its workgroup's strategy picks, if any.

        Only ready agents are looked at, longest idle first: with that strategy the first
        eligible one is the answer; the others compare every eligible ready agent.
        """
        if interaction.state is not InteractionState.QUEUED:
            return
        config = self.config(interaction.organisation_id)
        settings = self._settings(interaction)
        ready = self.floor.ready_in(interaction.organisation_id)
        if interaction.queue.kind is QueueKind.USER:
            user_id = interaction.queue.id
            takers: Mapping[int, AgentProfile] = {user_id: config.profile_of(user_id)}
            order: Iterable[int] = [user_id] if user_id in ready else []
        else:
            takers = config.takers.get(interaction.queue.id, {})
            order = ready.in_order()  # nothing is offered until the loop is over
        checked = settings if settings.id else None
        candidates: list[Agent] = []
        capacities: dict[int, int] = {}
        for user_id in order:
            profile = takers.get(user_id)
            if profile is None:
                continue
            agent = self.floor.agents[user_id]
            if eligible(agent, profile=profile, interaction=interaction, settings=checked, now=now):
                candidates.append(agent)
                capacities[user_id] = profile.sms_capacity
                if settings.strategy is Strategy.LONGEST_IDLE:
                    break
        chosen = pick_agent(
            candidates,
            strategy=settings.strategy,
            capacities=capacities,
            last_user_id=self.floor.round_robin_last.get(settings.id),
        )
        if chosen is not None:
            self._offer(interaction, chosen, now, effects)

    def _find_work(self, agent: Agent, now: datetime, effects: list[Effect]) -> None:
        """Offer the agent what it should take next, while it has free slots."""
        config = self._configs.get(agent.organisation_id)
        if config is None:
            return
        profile = config.profile_of(agent.user_id)
        while agent.free_slots(profile.sms_capacity) > 0:
            found = self._best_for(agent, config, now)
            if found is None:
                return
            self._offer(found, agent, now, effects)

    def _best_for(
        self, agent: Agent, config: OrganisationConfig, now: datetime
    ) -> Interaction | None:
        profile = config.profile_of(agent.user_id)
        if agent.presence is not Presence.AVAILABLE or agent.connections <= 0:
            return None
        best: Interaction | None = None
        best_priority: int | None = None
        for priority, queue, _ in profile_queues(profile):  # ordered by profile priority
            if best is not None and priority != best_priority:
                return best  # queues of a later priority number come after
            line = self.floor.lines.get((agent.organisation_id, queue))
            if not line:
                continue
            settings = config.settings_of(queue.id) if queue.kind is QueueKind.WORKGROUP else None
            for interaction_id in line.ids():
                interaction = self._interactions[interaction_id]
                if eligible(
                    agent, profile=profile, interaction=interaction, settings=settings, now=now
                ):
                    key = (-interaction.priority, interaction.enqueued_at, interaction.id)
                    if best is None or key < (-best.priority, best.enqueued_at, best.id):
                        best, best_priority = interaction, priority
                    break  # the first eligible of a line is its best
        return best

    def _dispatch_all(self, now: datetime, effects: list[Effect]) -> None:
        """Give every ready agent work, longest idle first (after a timer or a reload)."""
        for ready in list(self.floor.ready.values()):
            for user_id in ready.longest_idle_first():
                self._find_work(self.floor.agents[user_id], now, effects)

    def _view(self, interaction: Interaction) -> dict[str, Any]:
        return interaction_view(interaction, self.config(interaction.organisation_id))

    def _push(
        self, organisation_id: int, user_id: int, effects: list[Effect], **event: object
    ) -> None:
        effects.append(PushToAgent(organisation_id, user_id, event))

    def _push_message(
        self,
        interaction: Interaction,
        user_id: int,
        message: dict[str, Any],
        effects: list[Effect],
    ) -> None:
        """Show `user_id` a text in or out on the interaction (a protocol `Message`)."""
        self._push(
            interaction.organisation_id,
            user_id,
            effects,
            kind="message",
            interaction_id=interaction.id,
            message=message,
        )

    def _push_interaction(
        self, interaction: Interaction, user_id: int, effects: list[Effect]
    ) -> None:
        self._push(
            interaction.organisation_id,
            user_id,
            effects,
            kind="interaction",
            interaction=self._view(interaction),
        )

    def _set_presence(
        self,
        agent: Agent,
        presence: Presence,
        reason: str | None,
        now: datetime,
        effects: list[Effect],
    ) -> None:
        """Make the agent available or away (its reason), storing and showing the change."""
        reason = reason if presence is Presence.AWAY else None
        if (agent.presence, agent.reason) == (presence, reason):
            return
        agent.presence, agent.reason, agent.since = presence, reason, now
        if presence is Presence.AVAILABLE and agent.load == 0:
            agent.idle_since = now
        self._refresh(agent)
        effects.append(self._save_agent(agent))
        self._push_agent_state(agent, effects)

    def _push_agent_state(self, agent: Agent, effects: list[Effect]) -> None:
        view = agent_state_view(agent, capacity=self._capacity(agent))
        agent.shown = view["state"]
        self._push(agent.organisation_id, agent.user_id, effects, kind="agent_state", **view)

    def _save(self, interaction: Interaction) -> SaveInteraction:
        return SaveInteraction(
            id=interaction.id,
            state=interaction.state,
            queue=interaction.queue,
            priority=interaction.priority,
            agent_id=interaction.agent_id,
            offered_to=interaction.offered_to,
            offer_expires_at=interaction.offer_expires_at,
            offer_delivered=interaction.offer_delivered,
            wrap_up_by=interaction.wrap_up_by,
            wrap_up_until=interaction.wrap_up_until,
            closed_at=interaction.closed_at,
            answered_at=interaction.answered_at,
            idle_at=interaction.idle_at,
            grace_until=interaction.grace_until,
            max_wait_at=interaction.max_wait_at,
            next_notice_at=interaction.next_notice_at,
            notice_position=interaction.notice_position,
            notice_wait_s=interaction.notice_wait_s,
            closed_reason=interaction.closed_reason,
        )

    @staticmethod
    def _save_agent(agent: Agent) -> SaveAgent:
        return SaveAgent(
            organisation_id=agent.organisation_id,
            user_id=agent.user_id,
            presence=agent.presence.value,
            reason=agent.reason,
            since=agent.since,
            idle_since=agent.idle_since,
        )
