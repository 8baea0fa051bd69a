"""The switchboard: the live state of every organisation, and the decisions on each input.

The driver owns one `Switchboard`, feeds it one event at a time with `handle(event, now=...)`
and persists the effects it returns, in order, in one transaction; after each group it re-arms
its one timer for `next_deadline()` and feeds `DeadlineReached` when that instant comes. The
switchboard never does I/O and never reads the clock. Before the first event the driver loads it
with the open interactions, the agents, the consents and the next free ids from the store; after
a failed commit the driver throws it away and loads a fresh one, so memory never runs ahead of
the store.

An agent's command that cannot be carried out raises `CommandRefused` before anything changes.
Who gets work first (offers, slots, waiting lines, escalation) is decided by the `Dispatcher`
it is built on (dispatching.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server.core.acd import (
    SIGNED_OUT,
    Agent,
    Floor,
    Presence,
    profile_queues,
)
from server.core.care import QueueHistory
from server.core.consent import ALL_NUMBERS, Consent, ConsentBook, ConsentState
from server.core.customer_care import Closure
from server.core.delivery import OutboundBook
from server.core.dispatching import UnknownOrganisation
from server.core.effects import (
    CommandResult,
    Effect,
    EndAgentSessions,
    NoteHandler,
    OpenInteraction,
    PushToAgent,
    RecordConsent,
    ReportRoutingProblem,
    StoreInboundMessage,
)
from server.core.errors import CommandRefused
from server.core.events import (
    AgentConnected,
    AgentDisconnected,
    AgentSignedOut,
    AgentStateRequested,
    AgentStateSet,
    ConversationStarted,
    DeadlineReached,
    DeliveryReceiptReceived,
    DisconnectRequested,
    Event,
    OfferAccepted,
    OfferAcknowledged,
    OfferDeclined,
    PartSent,
    ReplyWritten,
    SendFailed,
    SmsReceived,
    SupervisorDisconnectRequested,
    SupervisorTransferRequested,
    TransferRequested,
    WrapUpEnded,
    WrapUpRequested,
)
from server.core.interactions import Interaction, InteractionState, Move
from server.core.keywords import Keyword, classify_keyword
from server.core.routing import OrganisationConfig, QueueKind, QueueRef, choose_queue
from server.core.supervision import SupervisorDesk
from server.core.views import agent_state_view, message_view

__all__ = ["QueueFigures", "Switchboard", "UnknownOrganisation"]


@dataclass(frozen=True)
class QueueFigures:
    organisation_id: int
    queue: QueueRef
    name: str
    waiting: int
    oldest_enqueued_at: datetime | None


_CONSENT_CHANGES: dict[Keyword, tuple[ConsentState, bool]] = {
    # keyword: (new state, applies to all of the organisation's numbers)
    Keyword.STOP: (ConsentState.OPTED_OUT, False),
    Keyword.STOP_ALL: (ConsentState.OPTED_OUT, True),
    Keyword.START: (ConsentState.OPTED_IN, False),
}

_LIVE = (InteractionState.CONNECTED, InteractionState.IDLE)
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


def _queue_order(queue: tuple[int, QueueRef]) -> tuple[int, str, int]:
    """(organisation, queue kind, queue id): the order figures are reported in."""
    organisation_id, ref = queue
    return organisation_id, ref.kind.value, ref.id


class Switchboard(SupervisorDesk):
    def __init__(
        self,
        *,
        configs: Mapping[int, OrganisationConfig],
        open_interactions: Iterable[Interaction] = (),
        agents: Iterable[Agent] = (),
        consents: Iterable[Consent] = (),
        next_interaction_id: int = 1,
        next_message_id: int = 1,
        outbound: OutboundBook | None = None,
        histories: Mapping[tuple[int, QueueRef], QueueHistory] | None = None,
        closures: Mapping[tuple[int, str, str], Closure] | None = None,
        purges: Mapping[int, datetime] | None = None,
        now: datetime | None = None,
    ) -> None:
        """`open_interactions` come back where they were, with every deadline they hold;
        `histories` are the queues' recent handling times, `closures` the conversations a new
        text may go back to, `purges` when each organisation's next purge is due. `now`, when
        given, is when they are loaded: the rechecks of queue delays and skill drops that
        passed before it are left to the one recheck every restored waiting line gets."""
        self._configs: dict[int, OrganisationConfig] = dict(configs)
        self._interactions: dict[int, Interaction] = {}
        self._open_by_parties: dict[tuple[int, str, str], int] = {}
        self.floor = Floor()
        self._refreshed = set()
        self._init_supervision()
        self.histories = dict(histories or {})
        self.closures = dict(closures or {})
        self.purges = {}
        self._removed_users: set[int] = set()  # removed while running: refused if they come
        for agent in agents:
            self.floor.agents[agent.user_id] = agent
        self.consents = ConsentBook(consents)
        self._restore(open_interactions, now)
        self.outbound = OutboundBook() if outbound is None else outbound
        self._next_interaction_id = next_interaction_id
        self._next_message_id = next_message_id
        for organisation_id, when in (purges or {}).items():
            self._arm_purge(organisation_id, when)
        for config in self._configs.values():
            self._schedule_purge(config)

    # -- configuration -----------------------------------------------------------------------

    def config_revisions(self) -> dict[int, int]:
        """Return {organisation id: configuration revision} of what is loaded."""
        return {org_id: config.revision for org_id, config in self._configs.items()}

    def use_config(
        self, config: OrganisationConfig, *, now: datetime | None = None
    ) -> list[Effect]:
        """Route with `config` from now on; live interactions keep their queues.

        Returns the effects of the change: `EndAgentSessions` for each user it leaves out
        (their agent is dropped: nothing is written about them any more, and they cannot
        connect again) or whose role changed (their sockets act with the old role)."""
        previous = self._configs.get(config.id)
        self._configs[config.id] = config
        effects: list[Effect] = []
        if previous is not None:
            self._drop_removed_users(previous, config, now, effects)
        for agent in self.floor.agents.values():
            if agent.organisation_id == config.id:
                self._refresh(agent)  # capacities may have changed
        self.floor.deadlines.push(_LONG_AGO, "recheck", 0)  # look at every queue again
        self._schedule_purge(config)
        return effects

    def _drop_removed_users(
        self,
        previous: OrganisationConfig,
        config: OrganisationConfig,
        now: datetime | None,
        effects: list[Effect],
    ) -> None:
        """Forget the agents of users `config` leaves out; end the sessions of those and of
        users whose role changed. A user is the pair (username, id): SQLite may give a new
        user the id of one just deleted."""
        staying, ids = set(config.users.items()), set(config.users.values())
        for username, user_id in previous.users.items():
            if (username, user_id) in staying:
                role = previous.roles.get(user_id)
                if role is not None and role != config.roles.get(user_id):
                    effects.append(EndAgentSessions(config.id, user_id, "role changed"))
                continue
            if user_id not in ids:
                self._removed_users.add(user_id)
            agent = self.floor.agents.pop(user_id, None)
            if agent is not None:
                # The apply refuses to remove a user holding work; an offer made in the
                # moment before the driver followed it goes back to its queue, untold.
                dropped: list[Effect] = []
                for interaction_id in sorted(agent.offers):
                    interaction = self._interactions[interaction_id]
                    self._end_offer(
                        interaction, agent, now or agent.since, dropped, reason="withdrawn"
                    )
                effects.extend(
                    e for e in dropped if not (isinstance(e, PushToAgent) and e.user_id == user_id)
                )
                self.floor.ready_in(agent.organisation_id).set(agent, ready=False)
            effects.append(EndAgentSessions(config.id, user_id, "user removed"))
        self._removed_users -= ids

    def _schedule_purge(self, config: OrganisationConfig) -> None:
        """An organisation that keeps data for so many days and has no purge due: one now."""
        if config.purge_after_days is not None and config.id not in self.purges:
            self._arm_purge(config.id, _LONG_AGO)

    # -- reading -----------------------------------------------------------------------------

    def open_interaction(
        self, *, organisation_id: int, local_number: str, remote_number: str
    ) -> Interaction | None:
        interaction_id = self._open_by_parties.get((organisation_id, local_number, remote_number))
        return None if interaction_id is None else self._interactions[interaction_id]

    def interactions(self) -> list[Interaction]:
        return list(self._interactions.values())

    def interaction(self, interaction_id: int) -> Interaction | None:
        return self._interactions.get(interaction_id)

    def agent(self, user_id: int) -> Agent | None:
        return self.floor.agents.get(user_id)

    def next_deadline(self) -> datetime | None:
        """The earliest instant at which `DeadlineReached` must be fed, or None."""
        return self.floor.deadlines.next()

    def agent_view(self, organisation_id: int, user_id: int) -> dict[str, Any]:
        agent = self._agent_for(organisation_id, user_id, now=None)
        return agent_state_view(agent, capacity=self._capacity(agent))

    def agent_queues(self, organisation_id: int, user_id: int) -> list[QueueFigures]:
        """Figures of the queues the agent takes work from (its own queue first)."""
        config = self.config(organisation_id)
        return [
            self._figures(organisation_id, queue)
            for _, queue, _ in profile_queues(config.profile_of(user_id))
        ]

    def take_queue_figures(self) -> list[QueueFigures]:
        """Figures of every queue that changed since the last call."""
        dirty, self.floor.dirty_queues = self.floor.dirty_queues, set()
        return [self._figures(org, queue) for org, queue in sorted(dirty, key=_queue_order)]

    def _figures(self, organisation_id: int, queue: QueueRef) -> QueueFigures:
        line = self.floor.lines.get((organisation_id, queue))
        config = self._configs.get(organisation_id)
        return QueueFigures(
            organisation_id=organisation_id,
            queue=queue,
            name="" if config is None else config.queue_name(queue),
            waiting=0 if line is None else len(line),
            oldest_enqueued_at=None if line is None else line.oldest(),
        )

    # -- deciding ----------------------------------------------------------------------------

    def handle(self, event: Event, *, now: datetime) -> list[Effect]:
        """Decide what `event` means; return the effects to persist, in order.

        Raises `CommandRefused` (nothing changed) when an agent's command cannot be carried out.
        """
        effects: list[Effect] = []
        self._refreshed.clear()
        match event:
            case SmsReceived():
                self._sms_received(event, now, effects)
            case DeliveryReceiptReceived():
                self._receipt_received(event, now, effects)
            case DeadlineReached():
                self._deadline_reached(now, effects)
            case AgentConnected():
                self._agent_connected(event, now, effects)
            case AgentDisconnected():
                self._agent_disconnected(event, now, effects)
            case AgentSignedOut():
                self._agent_signed_out(event, now, effects)
            case OfferAcknowledged():
                self._offer_acknowledged(event, effects)
            case AgentStateRequested():
                self._agent_state_requested(event, now, effects)
            case OfferAccepted():
                self._offer_accepted(event, now, effects)
            case OfferDeclined():
                self._offer_declined(event, now, effects)
            case ReplyWritten():
                self._reply_written(event, now, effects)
            case TransferRequested():
                self._transfer_requested(event, now, effects)
            case WrapUpRequested():
                self._close_by_agent(
                    event.organisation_id,
                    event.user_id,
                    event.interaction_id,
                    now,
                    effects,
                    wrap_up=True,
                )
            case DisconnectRequested():
                self._close_by_agent(
                    event.organisation_id,
                    event.user_id,
                    event.interaction_id,
                    now,
                    effects,
                    wrap_up=False,
                )
            case WrapUpEnded():
                self._wrap_up_ended(event, now, effects)
            case ConversationStarted():
                self._conversation_started(event, now, effects)
            case PartSent():
                self._part_sent(event, now, effects)
            case SendFailed():
                self._send_failed(event, now, effects)
            case SupervisorTransferRequested():
                self._supervisor_transfer(event, now, effects)
            case SupervisorDisconnectRequested():
                self._supervisor_disconnect(event, now, effects)
            case AgentStateSet():
                self._agent_state_set(event, now, effects)
        self._push_moved_states(effects)
        return effects

    # -- inbound texts -----------------------------------------------------------------------

    def _sms_received(self, event: SmsReceived, now: datetime, effects: list[Effect]) -> None:
        config = self.config(event.organisation_id)
        keyword = classify_keyword(event.body)
        interaction = self.open_interaction(
            organisation_id=event.organisation_id,
            local_number=event.number.e164,
            remote_number=event.remote_number,
        )
        message_id = self._take_message_id()
        problems: tuple[str, ...] = ()
        opened = False
        if interaction is None and keyword is None:
            decision = choose_queue(
                config, number=event.number, ani=event.remote_number, body=event.body
            )
            problems = decision.problems
            interaction = Interaction(
                id=self._take_interaction_id(),
                organisation_id=event.organisation_id,
                number_id=event.number.id,
                local_number=event.number.e164,
                remote_number=event.remote_number,
                queue=decision.queue,
                state=InteractionState.QUEUED,
                enqueued_at=now,
                created_at=now,
                broker_account_id=event.number.broker_account_id,
            )
            opened = True
            effects.append(self._open(interaction, route_id=decision.route_id))
        media = tuple(event.media)
        effects.append(
            StoreInboundMessage(
                id=message_id,
                organisation_id=event.organisation_id,
                interaction_id=None if interaction is None else interaction.id,
                broker_account_id=event.broker_account_id,
                broker_message_id=event.broker_message_id,
                number_id=event.number.id,
                local_number=event.number.e164,
                remote_number=event.remote_number,
                body=event.body,
                media=media,
                keyword=keyword,
                received_at=now,
            )
        )
        if keyword in _CONSENT_CHANGES:
            effects.extend(self._consent_change(event, keyword, message_id, now))
        if keyword is not None:
            number = self._number_of(
                config,
                number_id=event.number.id,
                e164=event.number.e164,
                broker_account_id=event.broker_account_id,
            )
            self._keyword_reply(
                event.organisation_id,
                keyword,
                number=number,
                remote_number=event.remote_number,
                now=now,
                effects=effects,
            )
        if problems:
            effects.append(ReportRoutingProblem(event.organisation_id, message_id, problems))
        if interaction is None:
            return
        if opened:
            self._arm_waiting_deadlines(interaction, config)
            self._arm_waiting_care(interaction, now)
            if interaction.next_notice_at or interaction.max_wait_at:
                effects.append(self._save(interaction))  # its care deadlines
            self.floor.enqueue(interaction)
            returning = self._returning_agent(
                interaction.organisation_id,
                interaction.local_number,
                interaction.remote_number,
                now,
            )
            if returning is not None:  # back to the agent who just had this conversation
                self._offer(interaction, returning, now, effects)
            else:
                self._dispatch_interaction(interaction, now, effects)
            return
        if interaction.agent_id is not None:
            if interaction.state in _LIVE:
                self._activity(interaction, now, effects)
            view = message_view(
                message_id=message_id,
                interaction_id=interaction.id,
                direction="inbound",
                sender=event.remote_number,
                recipient=event.number.e164,
                body=event.body,
                media=[{"url": m.url, "content_type": m.content_type} for m in media],
                keyword=None if keyword is None else keyword.value,
                status=None,
                author_id=None,
                created_at=now,
            )
            self._push_message(interaction, interaction.agent_id, view, effects)

    def _consent_change(
        self, event: SmsReceived, keyword: Keyword, message_id: int, now: datetime
    ) -> list[Effect]:
        state, everywhere = _CONSENT_CHANGES[keyword]
        scope = ALL_NUMBERS if everywhere else event.number.e164
        if state is ConsentState.OPTED_IN:
            unchanged = not self.consents.is_opted_out(
                organisation_id=event.organisation_id,
                remote_number=event.remote_number,
                local_number=event.number.e164,
            )
        else:
            unchanged = (
                self.consents.state_of(
                    organisation_id=event.organisation_id,
                    remote_number=event.remote_number,
                    scope=scope,
                )
                is state
            )
        if unchanged:
            return []
        return [
            self._record_consent(
                organisation_id=event.organisation_id,
                remote_number=event.remote_number,
                scope=scope,
                state=state,
                keyword=keyword,
                message_id=message_id,
                text=event.body,
                now=now,
            )
        ]

    def _record_consent(
        self,
        *,
        organisation_id: int,
        remote_number: str,
        scope: str,
        state: ConsentState,
        keyword: Keyword,
        message_id: int,
        text: str,
        now: datetime,
    ) -> RecordConsent:
        """Change a number's consent now; return the effect that stores (and audits) it."""
        self.consents.record(Consent(organisation_id, remote_number, scope, state, changed_at=now))
        return RecordConsent(
            organisation_id=organisation_id,
            remote_number=remote_number,
            scope=scope,
            state=state,
            keyword=keyword,
            message_id=message_id,
            text=text,
            changed_at=now,
        )

    def _agent_for(self, organisation_id: int, user_id: int, *, now: datetime | None) -> Agent:
        agent = self.floor.agents.get(user_id)
        if agent is not None:
            if agent.organisation_id != organisation_id:
                raise CommandRefused("forbidden", "that agent belongs to another organisation")
            return agent
        if now is None:
            raise CommandRefused("not_found", f"no agent {user_id}")
        if user_id in self._removed_users:
            raise CommandRefused("forbidden", "this user was removed from the organisation")
        agent = Agent(
            user_id=user_id,
            organisation_id=organisation_id,
            presence=Presence.AWAY,
            reason=None,
            since=now,
            idle_since=now,
        )
        self.floor.agents[user_id] = agent
        return agent

    def _agent_connected(self, event: AgentConnected, now: datetime, effects: list[Effect]) -> None:
        if event.user_id in self._removed_users:  # signed in just before the removal
            effects.append(EndAgentSessions(event.organisation_id, event.user_id, "user removed"))
            return
        agent = self._agent_for(event.organisation_id, event.user_id, now=now)
        agent.connections += 1
        if agent.connections == 1:
            self._refresh(agent)
            self._push_agent_state(agent, effects)
            self._find_work(agent, now, effects)

    def _agent_disconnected(
        self, event: AgentDisconnected, now: datetime, effects: list[Effect]
    ) -> None:
        agent = self.floor.agents.get(event.user_id)
        if agent is None or agent.connections <= 0:
            return
        agent.connections -= 1
        if agent.connections > 0:
            return
        self._refresh(agent)
        for interaction_id in sorted(agent.offers):
            interaction = self._interactions[interaction_id]
            self._end_offer(interaction, agent, now, effects, reason="withdrawn")
            self._dispatch_interaction(interaction, now, effects)
        self._push_agent_state(agent, effects)

    def _agent_signed_out(
        self, event: AgentSignedOut, now: datetime, effects: list[Effect]
    ) -> None:
        """An available agent whose every connection the sign-out closes is set away: a
        desktop client or another browser still open means they still work there."""
        agent = self.floor.agents.get(event.user_id)
        if (
            agent is not None
            and agent.organisation_id == event.organisation_id
            and agent.presence is Presence.AVAILABLE
            and agent.connections <= event.closing
        ):
            self._set_presence(agent, Presence.AWAY, SIGNED_OUT, now, effects)

    def _agent_state_requested(
        self, event: AgentStateRequested, now: datetime, effects: list[Effect]
    ) -> None:
        if event.state not in (Presence.AVAILABLE, Presence.AWAY):
            raise CommandRefused("bad_command", "state must be available or away")
        agent = self._agent_for(event.organisation_id, event.user_id, now=now)
        self._set_presence(agent, Presence(event.state), event.reason, now, effects)
        effects.append(CommandResult({}))
        self._find_work(agent, now, effects)

    # -- agents: offers ----------------------------------------------------------------------

    def _owned(self, organisation_id: int, interaction_id: int) -> Interaction:
        interaction = self._interactions.get(interaction_id)
        if interaction is None or interaction.organisation_id != organisation_id:
            raise CommandRefused("not_found", f"no live interaction {interaction_id}")
        return interaction

    def _offered_to(self, organisation_id: int, user_id: int, interaction_id: int) -> Interaction:
        interaction = self._owned(organisation_id, interaction_id)
        if interaction.state is not InteractionState.OFFERED or interaction.offered_to != user_id:
            raise CommandRefused(
                "not_offered_to_you", f"interaction {interaction_id} is not offered to you"
            )
        return interaction

    def _offer_acknowledged(self, event: OfferAcknowledged, effects: list[Effect]) -> None:
        interaction = self._interactions.get(event.interaction_id)
        if (
            interaction is None
            or interaction.offered_to != event.user_id
            or interaction.offer_delivered
        ):
            return
        interaction.offer_delivered = True
        effects.append(self._save(interaction))

    def _offer_accepted(self, event: OfferAccepted, now: datetime, effects: list[Effect]) -> None:
        interaction = self._offered_to(event.organisation_id, event.user_id, event.interaction_id)
        agent = self.floor.agents[event.user_id]
        interaction.move(Move.ACCEPT)
        agent.offers.discard(interaction.id)
        agent.active.add(interaction.id)
        interaction.agent_id = agent.user_id
        interaction.offered_to = None
        interaction.offer_expires_at = None
        self._answered(interaction, now)
        effects.append(self._save(interaction))
        effects.append(NoteHandler(interaction.organisation_id, interaction.id, agent.user_id, now))
        self._push(
            agent.organisation_id,
            agent.user_id,
            effects,
            kind="offer_ended",
            interaction_id=interaction.id,
            reason="accepted",
        )
        self._push_interaction(interaction, agent.user_id, effects)
        effects.append(CommandResult({"interaction": self._view(interaction)}))

    def _offer_declined(self, event: OfferDeclined, now: datetime, effects: list[Effect]) -> None:
        interaction = self._offered_to(event.organisation_id, event.user_id, event.interaction_id)
        agent = self.floor.agents[event.user_id]
        self._end_offer(interaction, agent, now, effects, reason="declined")
        effects.append(CommandResult({}))
        self._dispatch_interaction(interaction, now, effects)
        self._find_work(agent, now, effects)

    # -- agents: conversations ---------------------------------------------------------------

    def _connected_to(self, organisation_id: int, user_id: int, interaction_id: int) -> Interaction:
        interaction = self._owned(organisation_id, interaction_id)
        if interaction.agent_id != user_id:
            raise CommandRefused("not_yours", f"interaction {interaction_id} is not yours")
        if interaction.state not in _LIVE:
            raise CommandRefused(
                "illegal_state", f"interaction {interaction_id} is {interaction.state.value}"
            )
        return interaction

    def _transfer_requested(
        self, event: TransferRequested, now: datetime, effects: list[Effect]
    ) -> None:
        interaction = self._connected_to(event.organisation_id, event.user_id, event.interaction_id)
        config = self.config(event.organisation_id)
        names = config.users if event.to_kind == QueueKind.USER else config.workgroups
        if event.to_kind not in (QueueKind.USER, QueueKind.WORKGROUP) or event.to_name not in names:
            raise CommandRefused(
                "unknown_destination", f"no {event.to_kind} called {event.to_name!r}"
            )
        target = QueueRef(QueueKind(event.to_kind), names[event.to_name])
        agent = self.floor.agents[event.user_id]
        boost = self._settings(interaction).transfer_priority_boost
        interaction.move(Move.REQUEUE)
        agent.active.discard(interaction.id)
        interaction.agent_id = None
        interaction.queue = target
        interaction.priority += boost
        interaction.idle_at = interaction.grace_until = None
        self._entered_queue(interaction, now)
        until = now + timedelta(seconds=self._settings(interaction).offer_timeout_s)
        interaction.excluded_until[agent.user_id] = until
        self.floor.deadlines.push(until, "recheck", 0)
        if agent.load == 0:
            agent.idle_since = now
        self._refresh(agent)
        self._arm_waiting_deadlines(interaction, config)
        self.floor.enqueue(interaction)
        effects.append(self._save(interaction))
        self._push_interaction(interaction, agent.user_id, effects)
        effects.append(CommandResult({}))
        self._dispatch_interaction(interaction, now, effects)
        self._find_work(agent, now, effects)

    def _close_by_agent(
        self,
        organisation_id: int,
        user_id: int,
        interaction_id: int,
        now: datetime,
        effects: list[Effect],
        *,
        wrap_up: bool,
    ) -> None:
        interaction = self._connected_to(organisation_id, user_id, interaction_id)
        agent = self.floor.agents[user_id]
        if wrap_up:  # the slot stays held until the wrap-up ends
            self._disconnect(interaction, now, reason="agent")
            agent.active.discard(interaction.id)
            until = now + timedelta(seconds=self._settings(interaction).wrap_up_timeout_s)
            interaction.wrap_up_by, interaction.wrap_up_until = user_id, until
            agent.wrap_ups[interaction.id] = until
            self.floor.deadlines.push(until, "wrap_up", interaction.id)
            self._refresh(agent)
            effects.append(self._save(interaction))
            self._push_interaction(interaction, user_id, effects)
        else:
            self._close_live(interaction, now, effects, reason="agent")
        effects.append(CommandResult({}))
        self._find_work(agent, now, effects)

    def _wrap_up_ended(self, event: WrapUpEnded, now: datetime, effects: list[Effect]) -> None:
        agent = self._agent_for(event.organisation_id, event.user_id, now=None)
        if event.interaction_id not in agent.wrap_ups:
            raise CommandRefused(
                "illegal_state", f"interaction {event.interaction_id} is not in your wrap-up"
            )
        self._end_wrap_up(agent, event.interaction_id, now, effects)
        effects.append(CommandResult({}))

    def _end_wrap_up(
        self, agent: Agent, interaction_id: int, now: datetime, effects: list[Effect]
    ) -> None:
        del agent.wrap_ups[interaction_id]
        interaction = self._interactions.pop(interaction_id)
        interaction.wrap_up_until = None
        if agent.load == 0:
            agent.idle_since = now
        self._refresh(agent)
        effects.append(self._save(interaction))
        self._push_interaction(interaction, agent.user_id, effects)
        self._find_work(agent, now, effects)

    # -- the timer ---------------------------------------------------------------------------

    def _deadline_reached(self, now: datetime, effects: list[Effect]) -> None:
        recheck = False
        for kind, key in self.floor.deadlines.pop_due(now):
            if kind == "recheck":
                recheck = True
                continue
            if kind == "purge":
                self._purge_due(key, now, effects)
                continue
            if kind in ("sample", "day"):
                self._supervision_due(kind, key, now, effects)
                continue
            interaction = self._interactions.get(key)
            if interaction is None:
                continue
            if kind == "offer":
                due = interaction.offer_expires_at
                if interaction.state is InteractionState.OFFERED and due is not None and due <= now:
                    self._offer_expired(interaction, now, effects)
            elif kind == "wrap_up":
                agent = self.floor.agents.get(interaction.wrap_up_by or -1)
                until = interaction.wrap_up_until
                if agent is not None and until is not None and until <= now:
                    self._end_wrap_up(agent, key, now, effects)
            elif kind == "escalate":
                self._escalate(interaction, now, effects)
                recheck = True
            elif kind == "idle":
                self._idle_due(interaction, now, effects)
            elif kind == "grace":
                self._grace_due(interaction, now, effects)
            elif kind == "notice":
                self._notice_due(interaction, now, effects)
            elif kind == "max_wait":
                self._max_wait_due(interaction, now, effects)
        if recheck:
            self._dispatch_all(now, effects)

    # -- dispatching -------------------------------------------------------------------------

    # -- effects and bookkeeping -------------------------------------------------------------

    def _restore(self, interactions: Iterable[Interaction], now: datetime | None) -> None:
        """Put interactions loaded from the store back where they were, with their deadlines.

        A restart restores 100,000 of them in well under a second (bench/README.md, recovery):
        the waiting lines are sorted once, the deadlines heapified once, and the waiting ones
        share one recheck at `_LONG_AGO`, so the first tick dispatches once, however many.
        """
        entries: list[tuple[datetime, str, int]] = []
        waiting: list[Interaction] = []
        agents = self.floor.agents
        for interaction in interactions:
            self._interactions[interaction.id] = interaction
            state = interaction.state
            is_open = state is not InteractionState.DISCONNECTED
            if is_open:
                key = (
                    interaction.organisation_id,
                    interaction.local_number,
                    interaction.remote_number,
                )
                self._open_by_parties[key] = interaction.id
            agent_id = interaction.offered_to or interaction.agent_id or interaction.wrap_up_by
            agent = None if agent_id is None else agents.get(agent_id)
            if state is InteractionState.QUEUED:
                waiting.append(interaction)
                config = self._configs.get(interaction.organisation_id)
                if config is not None:
                    entries.extend(self._waiting_deadlines(interaction, config, after=now))
            elif agent is None:
                pass
            elif state is InteractionState.OFFERED:
                agent.offers.add(interaction.id)
                assert interaction.offer_expires_at is not None
                entries.append((interaction.offer_expires_at, "offer", interaction.id))
            elif state in _LIVE:
                agent.active.add(interaction.id)
            else:  # disconnected, its agent's slot held by the wrap-up
                assert interaction.wrap_up_until is not None
                agent.wrap_ups[interaction.id] = interaction.wrap_up_until
                entries.append((interaction.wrap_up_until, "wrap_up", interaction.id))
            if is_open:  # the care deadlines it holds (one passed while down fires at once)
                for kind, when in (
                    ("idle", interaction.idle_at),
                    ("grace", interaction.grace_until),
                    ("notice", interaction.next_notice_at),
                    ("max_wait", interaction.max_wait_at),
                ):
                    if when is not None:
                        entries.append((when, kind, interaction.id))
        if waiting:
            self.floor.enqueue_all(waiting)
            entries.append((_LONG_AGO, "recheck", 0))
        self.floor.deadlines.extend(entries)

    def _add(self, interaction: Interaction) -> None:
        self._interactions[interaction.id] = interaction
        key = (interaction.organisation_id, interaction.local_number, interaction.remote_number)
        self._open_by_parties[key] = interaction.id

    def _open(self, interaction: Interaction, *, route_id: int | None) -> OpenInteraction:
        """Take a new interaction live; return the effect that stores it."""
        self._add(interaction)
        return OpenInteraction(
            id=interaction.id,
            organisation_id=interaction.organisation_id,
            number_id=interaction.number_id,
            local_number=interaction.local_number,
            remote_number=interaction.remote_number,
            queue=interaction.queue,
            state=interaction.state,
            enqueued_at=interaction.enqueued_at,
            route_id=route_id,
        )

    def _forget_parties(self, interaction: Interaction) -> None:
        key = (interaction.organisation_id, interaction.local_number, interaction.remote_number)
        if self._open_by_parties.get(key) == interaction.id:
            del self._open_by_parties[key]

    def _take_interaction_id(self) -> int:
        self._next_interaction_id += 1
        return self._next_interaction_id - 1

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1
