"""The switchboard's care of customers between agents' words (policies in `care.py`).

- **Idle and grace.** A connected interaction whose idle timeout is enabled has `idle_at`: with
  no activity by then it becomes idle (the agent sees it), the customer gets the warning text, and
  `grace_until` is set; still nothing by then and it is disconnected with the closing text.
  Activity is a text from the customer (a keyword too), a text an agent writes, and the accept
  that connects it; it makes an idle interaction connected again and starts the idle time over.
  Parley's own texts (the warning, notices, keyword confirmations) and delivery receipts are not
  activity.
- **Position and wait notices.** A queued interaction whose queue has notices has
  `next_notice_at`: then its position and wait estimate are looked at, and a text goes out when
  it is the first or when it moved enough since the last one (`care.notice_worth_sending`); the
  next look is one interval later. Never during the queue's quiet hours (the look moves to their
  end), never to a number that opted out, never once an agent has it.
- **Maximum wait.** A queued interaction has `max_wait_at` (from entering each queue): then it
  overflows to the configured workgroup, or is closed with the configured text.
- **Back to the same agent.** An interaction an agent had is remembered for the queue's
  `reopen_window_s` after it closed; a new text from the same phone to the same number in that
  time is offered to that agent first when they are available.
- **Purge.** Each organisation with `purge_after_days` has a purge deadline; when due, an effect
  deletes what is older (the writer does it) and the next one is a day later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from server.core.acd import Agent, Presence
from server.core.care import (
    CarePolicy,
    QueueHistory,
    Staffing,
    Template,
    estimate_wait_s,
    notice_worth_sending,
    wait_minutes,
)
from server.core.effects import Effect, PurgeOldData
from server.core.errors import CommandRefused
from server.core.interactions import Interaction, InteractionState, Move
from server.core.outbound_desk import OutboundDesk
from server.core.routing import QueueKind, QueueRef

__all__ = ["PURGE_EVERY", "CareDesk", "Closure"]

PURGE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Closure:
    """A conversation an agent had, that a new text may go back to until `until`."""

    agent_id: int
    until: datetime


class CareDesk(OutboundDesk):
    """Idle and grace, notices, the maximum wait, reopening and purge for the `Switchboard`."""

    histories: dict[tuple[int, QueueRef], QueueHistory]
    closures: dict[tuple[int, str, str], Closure]
    purges: dict[int, datetime]  # organisation id: when its next purge is due
    _forget_parties: Callable[[Interaction], None]

    def _care(self, interaction: Interaction) -> CarePolicy:
        return self.config(interaction.organisation_id).care_of(interaction.queue)

    # -- activity, idle and grace ------------------------------------------------------------

    def _answered(self, interaction: Interaction, now: datetime) -> None:
        """An agent took it (accept, or a conversation they started): the idle time starts."""
        interaction.answered_at = now
        interaction.next_notice_at = None
        interaction.max_wait_at = None
        self._arm_idle(interaction, now)

    def _activity(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        """Someone said something on a live interaction: connected again, idle time anew."""
        woke = interaction.state is InteractionState.IDLE
        if woke:
            interaction.move(Move.ACTIVITY)
        interaction.grace_until = None
        self._arm_idle(interaction, now)
        effects.append(self._save(interaction))
        if woke and interaction.agent_id is not None:
            self._push_interaction(interaction, interaction.agent_id, effects)

    def _arm_idle(self, interaction: Interaction, now: datetime) -> None:
        idle = self._care(interaction).idle
        if not idle.enabled:
            interaction.idle_at = None
            return
        interaction.idle_at = now + timedelta(seconds=idle.idle_s)
        self.floor.deadlines.push(interaction.idle_at, "idle", interaction.id)

    def _idle_due(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        due = interaction.idle_at
        if interaction.state is not InteractionState.CONNECTED or due is None or due > now:
            return
        idle = self._care(interaction).idle
        interaction.move(Move.GO_IDLE)
        interaction.idle_at = None
        interaction.grace_until = now + timedelta(seconds=idle.grace_s)
        self.floor.deadlines.push(interaction.grace_until, "grace", interaction.id)
        effects.append(self._save(interaction))
        if interaction.agent_id is not None:
            self._push_interaction(interaction, interaction.agent_id, effects)
        self._care_text(interaction, idle.warning, self._idle_values(interaction), now, effects)

    def _grace_due(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        due = interaction.grace_until
        if interaction.state is not InteractionState.IDLE or due is None or due > now:
            return
        idle = self._care(interaction).idle
        self._care_text(interaction, idle.closing, self._idle_values(interaction), now, effects)
        self._close_live(interaction, now, effects, reason="idle")

    def _idle_values(self, interaction: Interaction) -> dict[str, object]:
        idle = self._care(interaction).idle
        return {  # whole minutes, rounded down: never promise more time than there is
            "idle_minutes": max(1, idle.idle_s // 60),
            "grace_minutes": max(1, idle.grace_s // 60),
            **self._common_values(interaction),
        }

    def _common_values(self, interaction: Interaction) -> dict[str, object]:
        config = self.config(interaction.organisation_id)
        return {
            "organisation": config.name or config.slug,
            "queue": config.queue_name(interaction.queue),
        }

    # -- closing -----------------------------------------------------------------------------

    def _close_live(
        self, interaction: Interaction, now: datetime, effects: list[Effect], *, reason: str
    ) -> Agent | None:
        """Disconnect a connected or idle interaction without wrap-up: the agent's slot is free,
        and a text soon after goes back to them. Returns the agent (to find them work)."""
        agent = self.floor.agents.get(interaction.agent_id or -1)
        self._disconnect(interaction, now, reason=reason)
        del self._interactions[interaction.id]
        if agent is not None:
            agent.active.discard(interaction.id)
            if agent.load == 0:
                agent.idle_since = now
            self._refresh(agent)
        effects.append(self._save(interaction))
        if interaction.agent_id is not None:
            self._push_interaction(interaction, interaction.agent_id, effects)
        if agent is not None and reason != "agent":
            self._find_work(agent, now, effects)
        return agent

    def _disconnect(self, interaction: Interaction, now: datetime, *, reason: str) -> None:
        """The moves every disconnect makes: state, times, history and the reopen memory."""
        interaction.move(Move.DISCONNECT)
        interaction.closed_at = now
        interaction.closed_reason = reason
        interaction.idle_at = interaction.grace_until = None
        interaction.next_notice_at = interaction.max_wait_at = None
        self._forget_parties(interaction)
        if interaction.answered_at is not None:
            history = self.histories.setdefault(
                (interaction.organisation_id, interaction.queue), QueueHistory()
            )
            history.handled((now - interaction.answered_at).total_seconds())
        if interaction.agent_id is not None:
            window = self._care(interaction).reopen_window_s
            if window > 0:
                self._remember_closure(interaction, now + timedelta(seconds=window))

    def _remember_closure(self, interaction: Interaction, until: datetime) -> None:
        assert interaction.agent_id is not None
        key = (interaction.organisation_id, interaction.local_number, interaction.remote_number)
        self.closures.pop(key, None)
        self.closures[key] = Closure(interaction.agent_id, until)

    def _returning_agent(
        self, organisation_id: int, local_number: str, remote_number: str, now: datetime
    ) -> Agent | None:
        """The agent a new text from these parties goes back to, if they had it lately and can
        take it now (available, signed in, a free slot)."""
        while self.closures:  # forget what has lapsed, oldest first
            oldest_key = next(iter(self.closures))
            if self.closures[oldest_key].until > now:
                break
            del self.closures[oldest_key]
        closure = self.closures.get((organisation_id, local_number, remote_number))
        if closure is None or closure.until <= now:
            return None
        agent = self.floor.agents.get(closure.agent_id)
        if agent is None or agent.organisation_id != organisation_id:
            return None
        if agent.presence is not Presence.AVAILABLE or agent.connections <= 0:
            return None
        return agent if agent.free_slots(self._capacity(agent)) > 0 else None

    # -- waiting: notices and the maximum wait -----------------------------------------------

    def _entered_queue(self, interaction: Interaction, now: datetime) -> None:
        """Waiting again in another queue (an overflow, a transfer): that queue's care from now,
        its first notice as for a new customer."""
        interaction.notice_position = interaction.notice_wait_s = None
        interaction.next_notice_at = None
        self._arm_waiting_care(interaction, now)

    def _arm_waiting_care(self, interaction: Interaction, now: datetime) -> None:
        """A customer starts waiting in a queue (a new text, a transfer, an overflow)."""
        care = self._care(interaction)
        if care.notices.enabled and interaction.next_notice_at is None:
            interaction.next_notice_at = now
            self.floor.deadlines.push(now, "notice", interaction.id)
        if care.max_wait is not None:
            interaction.max_wait_at = now + timedelta(seconds=care.max_wait.after_s)
            self.floor.deadlines.push(interaction.max_wait_at, "max_wait", interaction.id)
        else:
            interaction.max_wait_at = None

    def _waiting_due(
        self, interaction: Interaction, due: datetime | None, kind: str, now: datetime
    ) -> bool:
        """Whether a waiting customer's deadline `due` has come. An offered interaction may be
        accepted or come back to its queue: it is looked at again when the offer ends."""
        if due is None or due > now:
            return False
        if interaction.state is InteractionState.OFFERED:
            assert interaction.offer_expires_at is not None
            self.floor.deadlines.push(interaction.offer_expires_at, kind, interaction.id)
            return False
        return True

    def _notice_due(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        if not self._waiting_due(interaction, interaction.next_notice_at, "notice", now):
            return
        notices = self._care(interaction).notices
        if interaction.state is not InteractionState.QUEUED or not notices.enabled:
            interaction.next_notice_at = None
            return
        if self.consents.is_opted_out(
            organisation_id=interaction.organisation_id,
            remote_number=interaction.remote_number,
            local_number=interaction.local_number,
        ):  # none while opted out; a START lets the next look send one
            self._next_notice(interaction, now + timedelta(seconds=notices.interval_s))
            return
        quiet = notices.quiet_hours
        if quiet is not None and quiet.contains(now):
            self._next_notice(interaction, quiet.ends_after(now))
            return
        position = self.floor.line(interaction.organisation_id, interaction.queue).position(
            interaction
        )
        if position is None:
            return
        wait_s = self._wait_estimate(interaction, position)
        if notice_worth_sending(
            notices,
            position=position,
            wait_s=wait_s,
            last_position=interaction.notice_position,
            last_wait_s=interaction.notice_wait_s,
        ):
            first = interaction.notice_position is None
            values = {
                "position": position,
                "wait_minutes": wait_minutes(wait_s),
                "wait_s": None if wait_s is None else round(wait_s),
                "first": first,
                **self._common_values(interaction),
            }
            template = notices.entry if first else notices.update  # None: sends none
            self._care_text(interaction, template, values, now, effects)
            interaction.notice_position = position
            interaction.notice_wait_s = None if wait_s is None else round(wait_s)
            self._next_notice(interaction, now + timedelta(seconds=notices.interval_s))
            effects.append(self._save(interaction))  # the throttle survives a restart
            return
        # nothing worth a text: look again in an interval (kept in memory only: after a
        # restart the stored, passed time makes it look at once, which the throttle allows)
        self._next_notice(interaction, now + timedelta(seconds=notices.interval_s))

    def _next_notice(self, interaction: Interaction, when: datetime) -> None:
        interaction.next_notice_at = when
        self.floor.deadlines.push(when, "notice", interaction.id)

    def _wait_estimate(self, interaction: Interaction, position: int) -> float | None:
        config = self.config(interaction.organisation_id)
        if interaction.queue.kind is QueueKind.WORKGROUP:
            takers = config.takers.get(interaction.queue.id, {})
            user_ids: list[int] = list(takers)
        else:
            user_ids = [interaction.queue.id]
        agents = (self.floor.agents.get(user_id) for user_id in user_ids)
        staffing = Staffing.of(
            (self._capacity(agent), agent.load)
            for agent in agents
            if agent is not None and agent.presence is Presence.AVAILABLE and agent.connections > 0
        )
        history = self.histories.get((interaction.organisation_id, interaction.queue))
        default = self._care(interaction).notices.default_handle_s
        average = default if history is None else history.average_handle_s(default)
        return estimate_wait_s(position, staffing=staffing, average_handle_s=average)

    def _max_wait_due(self, interaction: Interaction, now: datetime, effects: list[Effect]) -> None:
        if not self._waiting_due(interaction, interaction.max_wait_at, "max_wait", now):
            return
        if interaction.state is not InteractionState.QUEUED:
            interaction.max_wait_at = None
            return
        max_wait = self._care(interaction).max_wait
        if max_wait is None:
            interaction.max_wait_at = None
            return
        if max_wait.overflow_to is not None and interaction.queue != QueueRef(
            QueueKind.WORKGROUP, max_wait.overflow_to
        ):
            self.floor.dequeue(interaction)
            interaction.queue = QueueRef(QueueKind.WORKGROUP, max_wait.overflow_to)
            self._arm_waiting_deadlines(interaction, self.config(interaction.organisation_id))
            self._entered_queue(interaction, now)
            self.floor.enqueue(interaction)
            effects.append(self._save(interaction))
            self._dispatch_interaction(interaction, now, effects)
            return
        self._care_text(
            interaction, max_wait.closing, self._common_values(interaction), now, effects
        )
        self.floor.dequeue(interaction)
        self._disconnect(interaction, now, reason="max_wait")
        del self._interactions[interaction.id]
        effects.append(self._save(interaction))

    # -- texts -------------------------------------------------------------------------------

    def _care_text(
        self,
        interaction: Interaction,
        template: Template | None,
        values: dict[str, Any],
        now: datetime,
        effects: list[Effect],
    ) -> None:
        """Send Parley's own text on the interaction (not to a number that opted out, and not
        when the template renders nothing or the text cannot be routed). The agent sees it."""
        if template is None:
            return
        if self.consents.is_opted_out(
            organisation_id=interaction.organisation_id,
            remote_number=interaction.remote_number,
            local_number=interaction.local_number,
        ):
            return
        text = template.render(values).strip()
        if not text:
            return
        config = self.config(interaction.organisation_id)
        number = self._number_of(
            config,
            number_id=interaction.number_id,
            e164=interaction.local_number,
            broker_account_id=interaction.broker_account_id,
        )
        try:
            plan = self._plan(
                config,
                body=text,
                number=number,
                remote_number=interaction.remote_number,
                user_id=None,
            )
        except CommandRefused:
            return
        view = self._send_text(
            plan,
            organisation_id=interaction.organisation_id,
            interaction_id=interaction.id,
            number=number,
            remote_number=interaction.remote_number,
            author_id=None,
            now=now,
            effects=effects,
        )
        if interaction.agent_id is not None:
            self._push_message(interaction, interaction.agent_id, view, effects)

    # -- purge -------------------------------------------------------------------------------

    def _arm_purge(self, organisation_id: int, when: datetime) -> None:
        self.purges[organisation_id] = when
        self.floor.deadlines.push(when, "purge", organisation_id)

    def _purge_due(self, organisation_id: int, now: datetime, effects: list[Effect]) -> None:
        due = self.purges.get(organisation_id)
        if due is None or due > now:
            return
        config = self._configs.get(organisation_id)
        if config is None or config.purge_after_days is None:
            del self.purges[organisation_id]
            return
        next_at = now + PURGE_EVERY
        effects.append(
            PurgeOldData(
                organisation_id=organisation_id,
                before=now - timedelta(days=config.purge_after_days),
                next_at=next_at,
            )
        )
        self._arm_purge(organisation_id, next_at)
