"""The ACD, fed inputs and checked by its effects: who gets work first, offers, timeouts."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest

from server.core.acd import Agent, DeadlineHeap, Presence, WaitingLine
from server.core.effects import (
    Effect,
    EndAgentSessions,
    PushToAgent,
    SaveAgent,
    StoreOutboundMessage,
)
from server.core.errors import CommandRefused
from server.core.events import (
    AgentConnected,
    AgentDisconnected,
    AgentSignedOut,
    AgentStateRequested,
    DeadlineReached,
    DisconnectRequested,
    OfferAccepted,
    OfferAcknowledged,
    OfferDeclined,
    PartSent,
    ReplyWritten,
    SmsReceived,
    TransferRequested,
    WrapUpEnded,
    WrapUpRequested,
)
from server.core.interactions import Interaction, InteractionState
from server.core.profiles import (
    AgentProfile,
    EscalationStep,
    ProfileQueue,
    Strategy,
    WorkgroupSettings,
)
from server.core.routing import (
    AssignedTarget,
    InboundRoute,
    LocalNumber,
    OrganisationConfig,
    QueueKind,
    QueueRef,
    RouteField,
)
from server.core.switchboard import Switchboard

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
ORG = 1
SUPPORT, SALES, SPANISH = 1, 2, 3
ALICE, BOB, CAROL = 10, 11, 12
SUPPORT_NUMBER = LocalNumber(1, "+19205550100", QueueRef(QueueKind.WORKGROUP, SUPPORT), 1)
SALES_NUMBER = LocalNumber(2, "+19205550102", QueueRef(QueueKind.WORKGROUP, SALES), 1)
SPANISH_NUMBER = LocalNumber(3, "+19205550103", QueueRef(QueueKind.WORKGROUP, SPANISH), 1)
ALICE_NUMBER = LocalNumber(4, "+19205550101", QueueRef(QueueKind.USER, ALICE), 1)

_phones = count(1000)


def config(
    *,
    profiles: dict[int, AgentProfile] | None = None,
    settings: dict[int, WorkgroupSettings] | None = None,
) -> OrganisationConfig:
    return OrganisationConfig(
        id=ORG,
        slug="acme",
        region="US",
        routes=(InboundRoute(9, RouteField.ANI, re.compile(""), AssignedTarget(), True),),
        workgroups={"Support": SUPPORT, "Sales": SALES, "Spanish": SPANISH},
        users={"alice": ALICE, "bob": BOB, "carol": CAROL},
        workgroup_settings=settings or {},
        profiles=profiles
        if profiles is not None
        else {
            ALICE: AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1),)),
            BOB: AgentProfile(BOB, "bob", 2, queues=(ProfileQueue(SUPPORT, 1),)),
        },
    )


class Floor:
    """A switchboard with a clock, and the effects of the last input."""

    def __init__(self, organisation: OrganisationConfig) -> None:
        self.board = Switchboard(configs={ORG: organisation})
        self.now = T0
        self.effects: list[Effect] = []

    def feed(self, event: Any) -> list[Effect]:
        self.effects = self.board.handle(event, now=self.now)
        return self.effects

    def later(self, seconds: float) -> list[Effect]:
        self.now += timedelta(seconds=seconds)
        return self.feed(DeadlineReached())

    def sign_in(self, *users: int, available: bool = True) -> None:
        for user in users:
            self.now += timedelta(seconds=1)  # who signed in first has been idle longest
            self.feed(AgentConnected(ORG, user))
            if available:
                self.feed(AgentStateRequested(ORG, user, "available"))

    def text(self, number: LocalNumber = SUPPORT_NUMBER, body: str = "hi") -> int:
        phone = f"+1414555{next(_phones):04d}"
        self.feed(SmsReceived(ORG, 1, f"m-{phone}", number, phone, body))
        found = self.board.open_interaction(
            organisation_id=ORG, local_number=number.e164, remote_number=phone
        )
        assert found is not None
        return found.id

    def offers(self) -> list[tuple[int, int]]:
        """(agent, interaction) of every offer pushed by the last input."""
        return [
            (e.user_id, int(str(e.event["interaction_id"])))
            for e in self.effects
            if isinstance(e, PushToAgent) and e.event["kind"] == "offer"
        ]

    def state(self, interaction_id: int) -> InteractionState:
        interaction = self.board.interaction(interaction_id)
        assert interaction is not None
        return interaction.state

    def offered_to(self, interaction_id: int) -> int | None:
        interaction = self.board.interaction(interaction_id)
        assert interaction is not None
        return interaction.offered_to


def test_a_text_is_offered_to_the_longest_idle_agent() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    first = floor.text()
    assert floor.offers() == [(ALICE, first)]
    assert floor.state(first) is InteractionState.OFFERED


def test_nobody_available_means_it_waits_then_goes_to_the_first_who_is() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB, available=False)
    waiting = floor.text()
    assert floor.offers() == []
    floor.feed(AgentStateRequested(ORG, BOB, "available"))
    assert floor.offers() == [(BOB, waiting)]


def test_an_agent_without_a_connection_is_not_offered_anything() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    floor.feed(AgentDisconnected(ORG, ALICE))
    assert floor.offers() == []
    interaction = floor.text()
    assert floor.offers() == [(BOB, interaction)]


def test_accepting_connects_and_nobody_else_can_accept() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    with pytest.raises(CommandRefused) as refused:
        floor.feed(OfferAccepted(ORG, BOB, interaction))
    assert refused.value.code == "not_offered_to_you"
    floor.feed(OfferAccepted(ORG, ALICE, interaction))
    assert floor.state(interaction) is InteractionState.CONNECTED
    with pytest.raises(CommandRefused):
        floor.feed(OfferAccepted(ORG, ALICE, interaction))
    with pytest.raises(CommandRefused):
        floor.feed(OfferAccepted(ORG, BOB, interaction))


def test_capacity_is_respected_and_a_freed_slot_takes_the_next() -> None:
    floor = Floor(
        config(
            profiles={ALICE: AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1),))}
        )
    )
    floor.sign_in(ALICE)
    first, second, third = floor.text(), floor.text(), floor.text()
    assert floor.offers() == []  # the third found alice full
    for interaction in (first, second):
        floor.feed(OfferAccepted(ORG, ALICE, interaction))
    assert floor.board.agent_view(ORG, ALICE)["state"] == "busy"
    assert floor.state(third) is InteractionState.QUEUED
    floor.feed(DisconnectRequested(ORG, ALICE, first))
    assert floor.offers() == [(ALICE, third)]


def test_profile_priority_beats_waiting_time() -> None:
    profile = AgentProfile(
        ALICE, "alice", 1, queues=(ProfileQueue(SALES, 2), ProfileQueue(SUPPORT, 1))
    )
    floor = Floor(config(profiles={ALICE: profile}))
    floor.sign_in(ALICE, available=False)
    older_sales = floor.text(SALES_NUMBER)
    floor.now += timedelta(seconds=30)
    newer_support = floor.text(SUPPORT_NUMBER)
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    assert floor.offers() == [(ALICE, newer_support)]
    assert floor.state(older_sales) is InteractionState.QUEUED


def test_a_queue_delay_is_waited_out() -> None:
    profile = AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1, delay_s=20),))
    floor = Floor(config(profiles={ALICE: profile}))
    floor.sign_in(ALICE)
    interaction = floor.text()
    assert floor.offers() == []
    floor.later(19)
    assert floor.offers() == []
    floor.later(1)
    assert floor.offers() == [(ALICE, interaction)]


def test_a_delivered_offer_that_expires_goes_on_and_the_agent_is_not_ready() -> None:
    settings = {SUPPORT: WorkgroupSettings(SUPPORT, "Support", offer_timeout_s=30)}
    floor = Floor(config(settings=settings))
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.feed(OfferAcknowledged(ORG, ALICE, interaction))
    floor.later(29)
    assert floor.offered_to(interaction) == ALICE
    floor.later(1)
    assert floor.offers() == [(BOB, interaction)]
    alice = floor.board.agent_view(ORG, ALICE)
    assert (alice["state"], alice["reason"]) == ("away", "missed offer")
    assert any(isinstance(e, SaveAgent) and e.reason == "missed offer" for e in floor.effects)


def test_an_agent_who_went_away_during_an_offer_keeps_their_reason_when_it_expires() -> None:
    settings = {SUPPORT: WorkgroupSettings(SUPPORT, "Support", offer_timeout_s=30)}
    floor = Floor(config(settings=settings))
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.feed(OfferAcknowledged(ORG, ALICE, interaction))
    floor.later(10)
    floor.feed(AgentStateRequested(ORG, ALICE, "away", "end of shift"))
    floor.later(20)
    assert floor.offers() == [(BOB, interaction)]
    alice = floor.board.agent_view(ORG, ALICE)
    assert (alice["state"], alice["reason"]) == ("away", "end of shift")
    assert not any(isinstance(e, SaveAgent) and e.user_id == ALICE for e in floor.effects)


def test_a_sign_out_that_closes_every_connection_sets_an_available_agent_away() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    floor.feed(AgentConnected(ORG, BOB))  # Bob also has a desktop client open
    floor.feed(AgentSignedOut(ORG + 1, ALICE, closing=1))  # another organisation's sign-out
    assert floor.effects == []
    floor.feed(AgentSignedOut(ORG, BOB, closing=1))  # his browser: the desktop client stays
    assert floor.effects == []
    floor.feed(AgentSignedOut(ORG, CAROL, closing=0))  # never connected: nothing to change
    assert floor.effects == []
    floor.feed(AgentSignedOut(ORG, ALICE, closing=1))
    assert [
        (e.user_id, e.presence, e.reason) for e in floor.effects if isinstance(e, SaveAgent)
    ] == [(ALICE, "away", "signed out")]
    alice = floor.board.agent_view(ORG, ALICE)
    assert (alice["state"], alice["reason"]) == ("away", "signed out")
    assert floor.board.agent_view(ORG, BOB)["state"] == "available"


def test_after_a_sign_out_the_next_sign_in_starts_away_and_the_ringing_offer_moves_on() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE)
    interaction = floor.text()
    assert floor.offers() == [(ALICE, interaction)]
    floor.feed(AgentSignedOut(ORG, ALICE, closing=1))
    floor.feed(AgentDisconnected(ORG, ALICE))  # her tab closes: the offer is withdrawn
    assert floor.offered_to(interaction) is None
    floor.sign_in(BOB)
    assert floor.offers() == [(BOB, interaction)]
    floor.feed(OfferDeclined(ORG, BOB, interaction))
    floor.feed(AgentConnected(ORG, ALICE))  # her next sign-in: no work until she says so
    assert floor.offers() == []
    alice = floor.board.agent_view(ORG, ALICE)
    assert (alice["state"], alice["reason"]) == ("away", "signed out")
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    assert floor.offers() == [(ALICE, interaction)]


def test_a_sign_out_leaves_an_away_agent_as_they_were() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE)
    floor.feed(AgentStateRequested(ORG, ALICE, "away", "lunch"))
    floor.feed(AgentSignedOut(ORG, ALICE, closing=1))
    assert floor.effects == []
    alice = floor.board.agent_view(ORG, ALICE)
    assert (alice["state"], alice["reason"]) == ("away", "lunch")


def test_an_undelivered_offer_that_expires_is_not_a_missed_offer() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.later(30)
    assert floor.offers() == [(BOB, interaction)]
    assert floor.board.agent_view(ORG, ALICE)["state"] == "available"


def test_a_declined_offer_goes_to_the_next_agent() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.feed(OfferDeclined(ORG, ALICE, interaction))
    assert floor.offers() == [(BOB, interaction)]


def test_a_direct_number_offers_only_to_its_user() -> None:
    floor = Floor(config())
    floor.sign_in(BOB)
    interaction = floor.text(ALICE_NUMBER)
    assert floor.offers() == []
    floor.sign_in(ALICE)
    assert floor.offers() == [(ALICE, interaction)]


def test_a_transfer_requeues_with_a_boost_and_its_enqueue_time() -> None:
    profiles = {
        ALICE: AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1),)),
        BOB: AgentProfile(BOB, "bob", 1, queues=(ProfileQueue(SALES, 1),)),
    }
    floor = Floor(config(profiles=profiles))
    floor.sign_in(ALICE, BOB, available=False)
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    early = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, early))
    floor.now += timedelta(minutes=5)
    waiting_sales = floor.text(SALES_NUMBER)
    floor.feed(TransferRequested(ORG, ALICE, early, "workgroup", "Sales"))
    interaction = floor.board.interaction(early)
    assert interaction is not None
    assert interaction.queue == QueueRef(QueueKind.WORKGROUP, SALES)
    assert interaction.priority == 10
    assert interaction.enqueued_at == T0 + timedelta(seconds=2)
    floor.feed(AgentStateRequested(ORG, BOB, "available"))
    assert floor.offers() == [(BOB, early)]  # the boost puts it before the older sales text
    assert floor.state(waiting_sales) is InteractionState.QUEUED


def test_transfer_to_nowhere_is_refused() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE)
    interaction = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, interaction))
    with pytest.raises(CommandRefused) as refused:
        floor.feed(TransferRequested(ORG, ALICE, interaction, "workgroup", "Nope"))
    assert refused.value.code == "unknown_destination"


def test_wrap_up_holds_the_slot_until_ended_or_timed_out() -> None:
    profile = AgentProfile(ALICE, "alice", 1, queues=(ProfileQueue(SUPPORT, 1),))
    settings = {SUPPORT: WorkgroupSettings(SUPPORT, "Support", wrap_up_timeout_s=60)}
    floor = Floor(config(profiles={ALICE: profile}, settings=settings))
    floor.sign_in(ALICE)
    first = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, first))
    second = floor.text()
    floor.feed(WrapUpRequested(ORG, ALICE, first))
    assert floor.state(first) is InteractionState.DISCONNECTED
    assert floor.offers() == []
    floor.later(60)
    assert floor.offers() == [(ALICE, second)]
    floor.feed(OfferAccepted(ORG, ALICE, second))
    floor.feed(WrapUpRequested(ORG, ALICE, second))
    third = floor.text()
    floor.feed(WrapUpEnded(ORG, ALICE, second))
    assert floor.offers() == [(ALICE, third)]


def test_replies_go_to_the_outbox_and_only_from_the_connected_agent() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, interaction))
    with pytest.raises(CommandRefused) as refused:
        floor.feed(ReplyWritten(ORG, BOB, interaction, "mine now"))
    assert refused.value.code == "not_yours"
    floor.feed(ReplyWritten(ORG, ALICE, interaction, "Hello!"))
    [stored] = [e for e in floor.effects if isinstance(e, StoreOutboundMessage)]
    assert (stored.body, stored.author_id, stored.remote_number) == (
        "Hello!",
        ALICE,
        floor.board.interaction(interaction).remote_number,  # type: ignore[union-attr]
    )


def _spanish_floor(offer_timeout_s: int = 30) -> Floor:
    """Spanish needs skill 5 until it has waited 120 s; Alice has 8, Bob 2."""
    profiles = {
        ALICE: AgentProfile(
            ALICE, "alice", 2, skills={"spanish": 8}, queues=(ProfileQueue(SPANISH, 1),)
        ),
        BOB: AgentProfile(BOB, "bob", 2, skills={"spanish": 2}, queues=(ProfileQueue(SPANISH, 1),)),
    }
    settings = {
        SPANISH: WorkgroupSettings(
            SPANISH,
            "Spanish",
            offer_timeout_s=offer_timeout_s,
            required_skills={"spanish": 5},
            escalation=(EscalationStep(after_s=120, drop_skills=True),),
        )
    }
    return Floor(config(profiles=profiles, settings=settings))


def test_skills_are_required_until_escalation_drops_them() -> None:
    floor = _spanish_floor()
    floor.sign_in(BOB)
    interaction = floor.text(SPANISH_NUMBER)
    assert floor.offers() == []
    floor.later(119)
    assert floor.offers() == []
    floor.later(1)
    assert floor.offers() == [(BOB, interaction)]


def test_overflow_moves_a_waiting_interaction_to_another_queue() -> None:
    profiles = {BOB: AgentProfile(BOB, "bob", 2, queues=(ProfileQueue(SALES, 1),))}
    settings = {
        SUPPORT: WorkgroupSettings(
            SUPPORT, "Support", escalation=(EscalationStep(after_s=60, overflow_to=SALES),)
        )
    }
    floor = Floor(config(profiles=profiles, settings=settings))
    floor.sign_in(BOB)
    interaction = floor.text()
    assert floor.offers() == []
    floor.later(60)
    assert floor.offers() == [(BOB, interaction)]


def _overflow_floor(offer_timeout_s: int = 120) -> Floor:
    """Alice takes Support, Bob takes Sales; Support overflows to Sales after 60 s."""
    profiles = {
        ALICE: AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1),)),
        BOB: AgentProfile(BOB, "bob", 2, queues=(ProfileQueue(SALES, 1),)),
    }
    settings = {
        SUPPORT: WorkgroupSettings(
            SUPPORT,
            "Support",
            offer_timeout_s=offer_timeout_s,
            escalation=(EscalationStep(after_s=60, overflow_to=SALES),),
        )
    }
    return Floor(config(profiles=profiles, settings=settings))


def test_an_overflow_due_during_an_offer_happens_when_the_offer_expires() -> None:
    floor = _overflow_floor()
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    assert floor.offers() == [(ALICE, interaction)]
    floor.later(60)  # the overflow is due while Alice holds the offer: it waits
    assert floor.offered_to(interaction) == ALICE
    floor.later(60)  # the offer expires: back in Support, and over to Sales at once
    assert floor.offers() == [(BOB, interaction)]
    found = floor.board.interaction(interaction)
    assert found is not None and found.queue == QueueRef(QueueKind.WORKGROUP, SALES)


def test_an_overflow_due_during_an_offer_happens_when_the_offer_is_declined() -> None:
    floor = _overflow_floor()
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.later(90)
    floor.feed(OfferDeclined(ORG, ALICE, interaction))
    assert floor.offers() == [(BOB, interaction)]


def test_an_offer_ended_before_its_overflow_keeps_the_overflow_armed() -> None:
    floor = _overflow_floor(offer_timeout_s=30)
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.later(30)  # expired undelivered: Alice stays available but is kept off it for 30 s
    assert floor.offers() == []
    floor.feed(AgentDisconnected(ORG, ALICE))
    floor.later(29)
    assert floor.offers() == []
    floor.later(1)
    assert floor.offers() == [(BOB, interaction)]


def test_skills_dropped_during_an_offer_count_when_the_offer_ends() -> None:
    floor = _spanish_floor(offer_timeout_s=200)
    floor.sign_in(ALICE, BOB)
    interaction = floor.text(SPANISH_NUMBER)
    assert floor.offers() == [(ALICE, interaction)]
    floor.later(120)  # the skills are dropped while Alice holds the offer
    assert floor.offers() == []
    floor.later(80)  # it expires: Bob may take it now
    assert floor.offers() == [(BOB, interaction)]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [(Strategy.LONGEST_IDLE, ALICE), (Strategy.LEAST_BUSY, BOB), (Strategy.ROUND_ROBIN, BOB)],
)
def test_strategies(strategy: Strategy, expected: int) -> None:
    profiles = {
        user: AgentProfile(user, name, 3, queues=(ProfileQueue(SUPPORT, 1),))
        for user, name in ((ALICE, "alice"), (BOB, "bob"))
    }
    settings = {SUPPORT: WorkgroupSettings(SUPPORT, "Support", strategy=strategy)}
    floor = Floor(config(profiles=profiles, settings=settings))
    floor.sign_in(ALICE, available=False)
    floor.sign_in(BOB)
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    # alice became available last but has been idle since she signed in, before bob
    first = floor.text()
    assert floor.offers() == [(ALICE, first)]
    floor.feed(OfferAccepted(ORG, ALICE, first))
    second = floor.text()
    assert floor.offers() == [(expected, second)]


def test_many_agents_racing_for_one_interaction_connect_it_once() -> None:
    users = list(range(100, 130))
    profiles = {u: AgentProfile(u, f"u{u}", 3, queues=(ProfileQueue(SUPPORT, 1),)) for u in users}
    floor = Floor(config(profiles=profiles))
    floor.sign_in(*users)
    interactions = [floor.text() for _ in range(40)]
    accepted: dict[int, list[int]] = {}
    for interaction in interactions:
        for user in users:  # every agent tries to accept every interaction
            try:
                floor.feed(OfferAccepted(ORG, user, interaction))
            except CommandRefused:
                continue
            accepted.setdefault(interaction, []).append(user)
    assert all(len(agents) == 1 for agents in accepted.values())
    assert len(accepted) == 40


def test_an_offer_withdrawn_by_a_lost_connection_comes_back_on_reconnect() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE)
    older = floor.text()
    floor.feed(AgentDisconnected(ORG, ALICE))
    assert floor.state(older) is InteractionState.QUEUED
    newer = floor.text()
    floor.feed(AgentConnected(ORG, ALICE))
    assert floor.offers() == [(ALICE, older), (ALICE, newer)]


def test_queues_of_equal_profile_priority_compete_on_waiting_time() -> None:
    profile = AgentProfile(
        ALICE, "alice", 1, queues=(ProfileQueue(SUPPORT, 1), ProfileQueue(SALES, 1))
    )
    floor = Floor(config(profiles={ALICE: profile}))
    floor.sign_in(ALICE, available=False)
    older_sales = floor.text(SALES_NUMBER)
    floor.now += timedelta(seconds=30)
    floor.text(SUPPORT_NUMBER)
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    assert floor.offers() == [(ALICE, older_sales)]


def agent_states(floor: Floor) -> list[tuple[int, str, int]]:
    """(agent, state, active) of every agent_state pushed by the last input."""
    return [
        (e.user_id, str(e.event["state"]), int(str(e.event["active"])))
        for e in floor.effects
        if isinstance(e, PushToAgent) and e.event["kind"] == "agent_state"
    ]


def test_an_agent_is_told_when_a_slot_filled_or_freed_makes_them_busy_or_available() -> None:
    one_slot = AgentProfile(ALICE, "alice", 1, queues=(ProfileQueue(SUPPORT, 1),))
    floor = Floor(config(profiles={ALICE: one_slot}))
    floor.sign_in(ALICE)
    first = floor.text()
    assert agent_states(floor) == [(ALICE, "busy", 1)]  # the offer took her only slot
    floor.feed(OfferAccepted(ORG, ALICE, first))
    assert agent_states(floor) == []  # still busy: nothing new to say
    floor.feed(DisconnectRequested(ORG, ALICE, first))
    assert agent_states(floor) == [(ALICE, "available", 0)]
    second = floor.text()
    assert agent_states(floor) == [(ALICE, "busy", 1)]
    floor.feed(OfferDeclined(ORG, ALICE, second))
    assert agent_states(floor) == [(ALICE, "available", 0)]
    floor.feed(AgentStateRequested(ORG, ALICE, "away", "lunch"))
    assert agent_states(floor) == [(ALICE, "away", 0)]  # once, not twice
    with pytest.raises(CommandRefused):  # a refused command tells nothing
        floor.feed(OfferAccepted(ORG, ALICE, second))
    floor.feed(AgentStateRequested(ORG, ALICE, "available"))
    assert agent_states(floor) == [(ALICE, "available", 0)]  # the declined text stays off her


# -- restored after a restart ------------------------------------------------------------------


def _waiting(interaction_id: int, *, waited_s: float, priority: int = 0) -> Interaction:
    return Interaction(
        id=interaction_id,
        organisation_id=ORG,
        number_id=SUPPORT_NUMBER.id,
        local_number=SUPPORT_NUMBER.e164,
        remote_number=f"+1414555{interaction_id:04d}",
        queue=QueueRef(QueueKind.WORKGROUP, SUPPORT),
        state=InteractionState.QUEUED,
        enqueued_at=T0 - timedelta(seconds=waited_s),
        created_at=T0 - timedelta(seconds=waited_s),
        priority=priority,
    )


def _restored(organisation: OrganisationConfig, *interactions: Interaction) -> Floor:
    floor = Floor(organisation)
    agents = [
        Agent(user, ORG, Presence.AVAILABLE, None, since=T0, idle_since=T0 + timedelta(seconds=n))
        for n, user in enumerate(organisation.profiles)
    ]
    floor.board = Switchboard(
        configs={ORG: organisation}, open_interactions=interactions, agents=agents, now=T0
    )
    return floor


def test_restored_waiting_lines_keep_the_dispatch_order() -> None:
    floor = _restored(
        config(
            profiles={ALICE: AgentProfile(ALICE, "alice", 1, queues=(ProfileQueue(SUPPORT, 1),))}
        ),
        _waiting(1, waited_s=50),
        _waiting(2, waited_s=90),
        _waiting(3, waited_s=10, priority=5),  # a transfer's boost
        _waiting(4, waited_s=70),
    )
    line = floor.board.floor.lines[(ORG, QueueRef(QueueKind.WORKGROUP, SUPPORT))]
    assert list(line.ids()) == [3, 2, 4, 1]
    assert floor.board.next_deadline() is not None and floor.board.next_deadline() <= T0
    floor.feed(AgentConnected(ORG, ALICE))
    assert floor.offers() == [(ALICE, 3)]


def test_a_restored_interaction_overflows_at_start_when_its_time_passed() -> None:
    profiles = {BOB: AgentProfile(BOB, "bob", 2, queues=(ProfileQueue(SALES, 1),))}
    settings = {
        SUPPORT: WorkgroupSettings(
            SUPPORT, "Support", escalation=(EscalationStep(after_s=60, overflow_to=SALES),)
        )
    }
    floor = _restored(config(profiles=profiles, settings=settings), _waiting(1, waited_s=90))
    floor.later(0)  # the first tick
    interaction = floor.board.interaction(1)
    assert interaction is not None and interaction.queue == QueueRef(QueueKind.WORKGROUP, SALES)
    floor.feed(AgentConnected(ORG, BOB))
    assert floor.offers() == [(BOB, 1)]


def test_a_restored_queue_delay_still_running_is_waited_out() -> None:
    profile = AgentProfile(ALICE, "alice", 2, queues=(ProfileQueue(SUPPORT, 1, delay_s=20),))
    floor = _restored(
        config(profiles={ALICE: profile}), _waiting(1, waited_s=30), _waiting(2, waited_s=10)
    )
    floor.later(0)
    floor.feed(AgentConnected(ORG, ALICE))
    assert floor.offers() == [(ALICE, 1)]  # the other has waited 10 s of its 20
    floor.later(9)
    assert floor.offers() == []
    floor.later(1)
    assert floor.offers() == [(ALICE, 2)]


def test_the_oldest_of_a_waiting_line_whatever_the_priorities() -> None:
    line = WaitingLine()
    assert line.oldest() is None
    waiting = [_waiting(n, waited_s=(n * 37) % 101, priority=(n * 7) % 4 - 1) for n in range(1, 60)]
    for interaction in waiting:
        line.add(interaction)
        assert line.oldest() == min(i.enqueued_at for i in waiting[: interaction.id])
    for interaction in waiting[:30]:
        line.remove(interaction)
    assert line.oldest() == min(i.enqueued_at for i in waiting[30:])


def test_deadlines_pushed_at_once_come_due_as_pushed_one_by_one() -> None:
    entries = [
        (T0 + timedelta(seconds=s), kind, key)
        for s, kind, key in [(5, "offer", 1), (0, "recheck", 0), (5, "offer", 1), (3, "wrap_up", 2)]
    ]
    one_by_one, at_once = DeadlineHeap(), DeadlineHeap()
    for entry in entries:
        one_by_one.push(*entry)
    at_once.extend(entries)
    assert at_once.next() == one_by_one.next() == T0
    later = T0 + timedelta(seconds=10)
    assert (
        at_once.pop_due(later)
        == one_by_one.pop_due(later)
        == [
            ("recheck", 0),
            ("wrap_up", 2),
            ("offer", 1),
        ]
    )


def statuses(floor: Floor) -> list[tuple[int, int, str]]:
    """(agent, message, status) of every message_status pushed by the last input."""
    return [
        (e.user_id, int(str(e.event["message_id"])), str(e.event["status"]))
        for e in floor.effects
        if isinstance(e, PushToAgent) and e.event["kind"] == "message_status"
    ]


def stored_text(floor: Floor) -> StoreOutboundMessage:
    [text] = [e for e in floor.effects if isinstance(e, StoreOutboundMessage)]
    return text


def test_a_status_reaches_the_author_and_the_agent_who_holds_the_interaction_now() -> None:
    floor = Floor(config())
    floor.sign_in(ALICE, BOB)
    interaction = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, interaction))
    floor.feed(ReplyWritten(ORG, ALICE, interaction, "One moment"))
    reply = stored_text(floor)
    floor.feed(PartSent(ORG, reply.id, 0, 1, "SM-1"))
    assert statuses(floor) == [(ALICE, reply.id, "sent")]
    # bob takes the conversation over while alice's second reply is still on its way
    floor.feed(ReplyWritten(ORG, ALICE, interaction, "Passing you to Bob"))
    second = stored_text(floor)
    floor.feed(TransferRequested(ORG, ALICE, interaction, "user", "bob"))
    [(_, offered)] = floor.offers()
    floor.feed(OfferAccepted(ORG, BOB, offered))
    floor.feed(PartSent(ORG, second.id, 0, 1, "SM-2"))
    assert statuses(floor) == [(ALICE, second.id, "sent"), (BOB, second.id, "sent")]


# -- users the configuration removes -------------------------------------------------------


def without_bob(**roles: str) -> OrganisationConfig:
    """The configuration after bob was removed (alice's role as `roles` says)."""
    return dataclasses.replace(
        config(),
        revision=2,
        users={"alice": ALICE, "carol": CAROL},
        roles={ALICE: roles.get("alice", "agent"), CAROL: "agent"},
    )


def test_a_removed_user_is_dropped_from_the_floor_and_their_sessions_end() -> None:
    floor = Floor(dataclasses.replace(config(), roles={ALICE: "agent", BOB: "agent"}))
    floor.sign_in(ALICE, BOB)
    effects = floor.board.use_config(without_bob(), now=floor.now)
    assert effects == [EndAgentSessions(ORG, BOB, "user removed")]
    assert floor.board.agent(BOB) is None
    # their page closing, or a command already on its way, writes nothing about them
    assert floor.feed(AgentDisconnected(ORG, BOB)) == []
    with pytest.raises(CommandRefused) as refused:
        floor.feed(AgentStateRequested(ORG, BOB, "away", "lunch"))
    assert refused.value.code == "forbidden"
    # a socket that signed in just before the removal is told to close, and nothing is written
    assert floor.feed(AgentConnected(ORG, BOB)) == [EndAgentSessions(ORG, BOB, "user removed")]
    assert floor.board.agent(BOB) is None
    # work goes to those who stay
    first = floor.text()
    assert floor.offers() == [(ALICE, first)]


def test_a_removed_user_offered_work_a_moment_before_gives_it_back_to_the_queue() -> None:
    floor = Floor(config())
    floor.sign_in(BOB, ALICE)
    first = floor.text()
    assert floor.offers() == [(BOB, first)]
    effects = floor.board.use_config(without_bob(), now=floor.now)
    assert not [e for e in effects if isinstance(e, PushToAgent) and e.user_id == BOB]
    assert effects[-1] == EndAgentSessions(ORG, BOB, "user removed")
    assert floor.state(first) is InteractionState.QUEUED
    floor.later(0)
    assert floor.offers() == [(ALICE, first)]


def test_a_new_role_ends_the_sessions_made_with_the_old_one() -> None:
    floor = Floor(dataclasses.replace(config(), roles={ALICE: "agent", BOB: "agent"}))
    floor.sign_in(ALICE)
    effects = floor.board.use_config(without_bob(alice="supervisor"), now=floor.now)
    assert EndAgentSessions(ORG, ALICE, "role changed") in effects
    assert floor.board.agent(ALICE) is not None  # still an agent of the floor


def test_a_user_named_again_may_connect_again() -> None:
    floor = Floor(config())
    floor.board.use_config(without_bob(), now=floor.now)
    floor.board.use_config(dataclasses.replace(config(), revision=3), now=floor.now)
    floor.sign_in(BOB)
    assert floor.board.agent(BOB) is not None
