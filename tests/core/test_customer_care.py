"""Customer care through the switchboard: events in, effects out, the timer fed at
`next_deadline()` as the driver feeds it. Idle and grace, position and wait notices, the maximum
wait, back to the same agent, purge, and every care deadline coming back after a restart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.core.acd import Agent, Presence
from server.core.care import (
    CarePolicy,
    IdleTimeout,
    MaxWait,
    NoticePolicy,
    QueueHistory,
    QuietHours,
)
from server.core.delivery import DeliveryStatus
from server.core.effects import (
    Effect,
    OpenInteraction,
    PurgeOldData,
    PushToAgent,
    SaveInteraction,
    StoreOutboundMessage,
)
from server.core.events import (
    AgentDisconnected,
    AgentStateRequested,
    DeadlineReached,
    DeliveryReceiptReceived,
    DisconnectRequested,
    OfferAccepted,
    PartSent,
    ReplyWritten,
    SmsReceived,
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
from server.core.routing import LocalNumber, OrganisationConfig, QueueKind, QueueRef
from server.core.switchboard import Switchboard
from tests.core.test_acd import (
    ALICE,
    ALICE_NUMBER,
    BOB,
    ORG,
    SALES,
    SALES_NUMBER,
    SPANISH,
    SPANISH_NUMBER,
    SUPPORT,
    SUPPORT_NUMBER,
    T0,
    Floor,
    config,
)

SUPPORT_QUEUE = QueueRef(QueueKind.WORKGROUP, SUPPORT)
SECOND_SUPPORT_NUMBER = LocalNumber(5, "+19205550105", SUPPORT_QUEUE, 1)
PHONE = "+14145557000"
S = timedelta(seconds=1)


class Template:
    """A care text as the core sees one (the adapter compiles Jinja2): `{name}` is filled in."""

    def __init__(self, source: str) -> None:
        self.source = source

    def render(self, values: Mapping[str, object]) -> str:
        return self.source.format_map(values)


IDLE = IdleTimeout(
    enabled=True,
    idle_s=120,
    grace_s=60,
    warning=Template("Still there? We close in {grace_minutes} minute(s)."),
    closing=Template("Closed. Text {organisation} again any time."),
)
NOTICES = NoticePolicy(
    enabled=True,
    interval_s=120,
    position_step=1,
    wait_step_s=60,
    entry=Template("You are number {position}; wait {wait_minutes}."),
    update=Template("Now number {position}; wait {wait_minutes}."),
)
TOO_LONG = Template("Sorry, nobody at {organisation} could answer in time.")


def care_config(
    care: CarePolicy | None = None,
    *,
    workgroups: Mapping[int, CarePolicy] | None = None,
    capacity: int = 1,
    queues: Mapping[int, tuple[int, ...]] | None = None,
    strategy: Strategy = Strategy.LONGEST_IDLE,
    escalation: tuple[EscalationStep, ...] = (),
    purge_after_days: int | None = None,
) -> OrganisationConfig:
    """test_acd's organisation with this care; alice and bob take `queues` (default: Support)."""
    taken = queues if queues is not None else {ALICE: (SUPPORT,), BOB: (SUPPORT,)}
    profiles = {
        user: AgentProfile(
            user, f"user{user}", capacity, queues=tuple(ProfileQueue(q, 1) for q in workgroups_)
        )
        for user, workgroups_ in taken.items()
    }
    settings = {
        SUPPORT: WorkgroupSettings(SUPPORT, "Support", strategy=strategy, escalation=escalation)
    }
    return replace(
        config(profiles=profiles, settings=settings),
        care=care if care is not None else CarePolicy(),
        workgroup_care=dict(workgroups or {}),
        purge_after_days=purge_after_days,
    )


def run_until(floor: Floor, when: datetime) -> list[tuple[datetime, Effect]]:
    """Feed `DeadlineReached` at each `next_deadline()` up to `when`, as the driver's timer
    does, then stand at `when`. Returns every effect with the instant it came at."""
    seen: list[tuple[datetime, Effect]] = []
    for _ in range(1000):
        due = floor.board.next_deadline()
        if due is None or due > when:
            floor.now = when
            return seen
        floor.now = max(floor.now, due)
        seen.extend((floor.now, effect) for effect in floor.feed(DeadlineReached()))
    raise AssertionError("the deadlines never settle")


def texts(effects: list[Effect]) -> list[str]:
    return [e.body for e in effects if isinstance(e, StoreOutboundMessage)]


def timed_texts(seen: list[tuple[datetime, Effect]], since: datetime) -> list[tuple[int, str]]:
    """(seconds after `since`, body) of every text that went out."""
    return [
        (int((at - since).total_seconds()), e.body)
        for at, e in seen
        if isinstance(e, StoreOutboundMessage)
    ]


def saves(effects: list[Effect], interaction_id: int) -> list[SaveInteraction]:
    return [e for e in effects if isinstance(e, SaveInteraction) and e.id == interaction_id]


def pushed(effects: list[Effect], user_id: int, kind: str) -> list[Mapping[str, Any]]:
    return [
        e.event
        for e in effects
        if isinstance(e, PushToAgent) and e.user_id == user_id and e.event["kind"] == kind
    ]


def interaction_of(floor: Floor, interaction_id: int) -> Interaction:
    found = floor.board.interaction(interaction_id)
    assert found is not None
    return found


def connect(floor: Floor, number: LocalNumber = SUPPORT_NUMBER, agent: int = ALICE) -> int:
    """A new text, offered to `agent` at once and accepted."""
    interaction_id = floor.text(number)
    assert floor.offers() == [(agent, interaction_id)]
    floor.feed(OfferAccepted(ORG, agent, interaction_id))
    return interaction_id


def from_phone(body: str, number: LocalNumber = SUPPORT_NUMBER, phone: str = PHONE) -> SmsReceived:
    return SmsReceived(ORG, 1, f"m-{body}", number, phone, body)


# -- idle and grace --------------------------------------------------------------------------


def test_a_quiet_conversation_goes_idle_warns_the_customer_and_tells_the_agent() -> None:
    floor = Floor(care_config(CarePolicy(idle=IDLE)))
    floor.sign_in(ALICE)
    interaction_id = connect(floor)
    accepted = floor.now
    assert interaction_of(floor, interaction_id).idle_at == accepted + 120 * S
    assert run_until(floor, accepted + 119 * S) == []
    assert floor.board.next_deadline() == accepted + 120 * S
    effects = run_until(floor, accepted + 120 * S)
    done = [effect for _, effect in effects]
    interaction = interaction_of(floor, interaction_id)
    assert interaction.state is InteractionState.IDLE
    assert interaction.grace_until == accepted + 180 * S
    [save] = saves(done, interaction_id)
    assert (save.state, save.idle_at, save.grace_until) == (
        InteractionState.IDLE,
        None,
        accepted + 180 * S,
    )
    [warning] = [e for e in done if isinstance(e, StoreOutboundMessage)]
    assert (warning.body, warning.author_id, warning.interaction_id, warning.remote_number) == (
        "Still there? We close in 1 minute(s).",
        None,
        interaction_id,
        interaction.remote_number,
    )
    [shown] = pushed(done, ALICE, "interaction")
    assert shown["interaction"]["state"] == "idle"
    [message] = pushed(done, ALICE, "message")
    assert message["message"]["body"] == warning.body
    assert floor.board.next_deadline() == accepted + 180 * S


def test_grace_ends_it_with_the_closing_text_and_frees_the_agents_slot() -> None:
    floor = Floor(care_config(CarePolicy(idle=IDLE)))
    floor.sign_in(ALICE)
    first = connect(floor)
    accepted = floor.now
    waiting = floor.text()  # alice's one slot is taken
    assert floor.offers() == []
    run_until(floor, accepted + 179 * S)
    assert interaction_of(floor, first).state is InteractionState.IDLE
    phone = interaction_of(floor, first).remote_number
    done = [effect for _, effect in run_until(floor, accepted + 180 * S)]
    assert texts(done) == ["Closed. Text acme again any time."]
    [save] = saves(done, first)
    assert (save.state, save.closed_reason, save.closed_at, save.grace_until) == (
        InteractionState.DISCONNECTED,
        "idle",
        accepted + 180 * S,
        None,
    )
    closing = next(i for i, e in enumerate(done) if isinstance(e, StoreOutboundMessage))
    assert closing < done.index(save)  # the text goes out before it closes
    assert floor.board.interaction(first) is None
    assert (
        floor.board.open_interaction(
            organisation_id=ORG, local_number=SUPPORT_NUMBER.e164, remote_number=phone
        )
        is None
    )
    assert [e["interaction_id"] for e in pushed(done, ALICE, "offer")] == [waiting]


def still_here(floor: Floor, who: str, interaction_id: int) -> object:
    interaction = interaction_of(floor, interaction_id)
    if who == "agent":
        return ReplyWritten(ORG, ALICE, interaction_id, "Sorry for the wait")
    body = "HELP" if who == "keyword" else "still here"
    return from_phone(body, phone=interaction.remote_number)


@pytest.mark.parametrize(
    ("who", "after_s"),
    [
        ("customer", 100),  # before it went idle
        ("agent", 100),
        ("keyword", 100),  # a keyword from the customer is activity too
        ("customer", 150),  # while idle: it wakes
        ("agent", 150),
        ("keyword", 150),
    ],
)
def test_activity_wakes_it_and_starts_the_idle_time_over(who: str, after_s: int) -> None:
    floor = Floor(care_config(CarePolicy(idle=IDLE)))
    floor.sign_in(ALICE)
    interaction_id = connect(floor)
    accepted = floor.now
    run_until(floor, accepted + after_s * S)
    was_idle = after_s >= 120
    assert (interaction_of(floor, interaction_id).state is InteractionState.IDLE) is was_idle
    effects = floor.feed(still_here(floor, who, interaction_id))
    spoke = floor.now
    interaction = interaction_of(floor, interaction_id)
    assert interaction.state is InteractionState.CONNECTED
    assert (interaction.idle_at, interaction.grace_until) == (spoke + 120 * S, None)
    [save] = saves(effects, interaction_id)
    assert (save.state, save.idle_at, save.grace_until) == (
        InteractionState.CONNECTED,
        spoke + 120 * S,
        None,
    )
    woke = [e["interaction"]["state"] for e in pushed(effects, ALICE, "interaction")]
    assert woke == (["connected"] if was_idle else [])
    # the deadlines armed before (idle at +120, grace at +180) fire and change nothing
    assert run_until(floor, spoke + 119 * S) == []
    assert interaction_of(floor, interaction_id).state is InteractionState.CONNECTED
    done = [effect for _, effect in run_until(floor, spoke + 120 * S)]
    assert interaction_of(floor, interaction_id).state is InteractionState.IDLE
    assert texts(done) == ["Still there? We close in 1 minute(s)."]


def test_parleys_own_texts_and_their_receipts_are_not_activity() -> None:
    floor = Floor(care_config(CarePolicy(idle=IDLE)))
    floor.sign_in(ALICE)
    interaction_id = connect(floor)
    accepted = floor.now
    [warning] = [
        e for _, e in run_until(floor, accepted + 120 * S) if isinstance(e, StoreOutboundMessage)
    ]
    floor.now += 10 * S
    floor.feed(PartSent(ORG, warning.id, 0, 1, "SM-warning"))
    floor.feed(DeliveryReceiptReceived(ORG, 1, "SM-warning", DeliveryStatus.DELIVERED, "ok"))
    interaction = interaction_of(floor, interaction_id)
    assert (interaction.state, interaction.grace_until) == (
        InteractionState.IDLE,
        accepted + 180 * S,
    )
    run_until(floor, accepted + 180 * S)
    assert floor.board.interaction(interaction_id) is None


@pytest.mark.parametrize(
    "care",
    [
        CarePolicy(),
        CarePolicy(idle=replace(IDLE, enabled=False)),
    ],
)
def test_a_disabled_idle_timeout_sets_no_deadline(care: CarePolicy) -> None:
    floor = Floor(care_config(care))
    floor.sign_in(ALICE)
    interaction_id = connect(floor)
    accepted = floor.now
    assert interaction_of(floor, interaction_id).idle_at is None
    run_until(floor, accepted + 30 * S)  # the offer's own (stale) deadline
    assert floor.board.next_deadline() is None
    assert run_until(floor, accepted + timedelta(days=1)) == []
    assert interaction_of(floor, interaction_id).state is InteractionState.CONNECTED


@pytest.mark.parametrize(
    ("number", "idle_s"),
    [
        (SUPPORT_NUMBER, 120),  # Support's own idle time wins over the organisation's
        (SALES_NUMBER, 600),  # Sales has no care of its own: the organisation's
        (ALICE_NUMBER, 600),  # a user queue: the organisation's
        (SPANISH_NUMBER, None),  # Spanish turns it off
    ],
)
def test_a_workgroups_care_wins_over_the_organisations(
    number: LocalNumber, idle_s: int | None
) -> None:
    organisation = CarePolicy(idle=replace(IDLE, idle_s=600))
    workgroups = {
        SUPPORT: CarePolicy(idle=IDLE),
        SPANISH: CarePolicy(idle=replace(IDLE, enabled=False)),
    }
    floor = Floor(
        care_config(
            organisation,
            workgroups=workgroups,
            capacity=3,
            queues={ALICE: (SUPPORT, SALES, SPANISH)},
        )
    )
    floor.sign_in(ALICE)
    interaction_id = connect(floor, number)
    accepted = floor.now
    interaction = interaction_of(floor, interaction_id)
    if idle_s is None:
        assert interaction.idle_at is None
        run_until(floor, accepted + 3600 * S)
        assert interaction.state is InteractionState.CONNECTED
        return
    assert interaction.idle_at == accepted + idle_s * S
    run_until(floor, accepted + (idle_s - 1) * S)
    assert interaction_of(floor, interaction_id).state is InteractionState.CONNECTED
    run_until(floor, accepted + idle_s * S)
    assert interaction_of(floor, interaction_id).state is InteractionState.IDLE


# -- position and wait notices ---------------------------------------------------------------


def busy_alice(care: CarePolicy) -> tuple[Floor, int]:
    """Alice (one slot) is talking to someone; bob is signed in but away."""
    floor = Floor(care_config(care))
    floor.sign_in(ALICE)
    floor.sign_in(BOB, available=False)
    return floor, connect(floor)


def test_the_first_notice_goes_when_it_starts_waiting() -> None:
    floor, _ = busy_alice(CarePolicy(notices=NOTICES))
    first = floor.text()
    assert interaction_of(floor, first).next_notice_at == floor.now
    assert floor.board.next_deadline() == floor.now  # the look is due at once
    effects = floor.feed(DeadlineReached())
    # alice's one slot frees on average every 300 s (nothing handled yet): 5 minutes
    assert texts(effects) == ["You are number 1; wait 5."]
    [stored] = [e for e in effects if isinstance(e, StoreOutboundMessage)]
    assert (stored.author_id, stored.interaction_id) == (None, first)
    [save] = saves(effects, first)
    assert (save.notice_position, save.notice_wait_s, save.next_notice_at) == (
        1,
        300,
        floor.now + 120 * S,
    )
    assert [e for e in effects if isinstance(e, PushToAgent)] == []  # nobody has it yet
    floor.now += S
    floor.text()
    assert texts(floor.feed(DeadlineReached())) == ["You are number 2; wait 10."]


def test_the_estimate_comes_from_the_queues_history() -> None:
    floor, talking = busy_alice(CarePolicy(notices=NOTICES))
    accepted = floor.now
    floor.board.histories[(ORG, SUPPORT_QUEUE)] = QueueHistory()
    for seconds in (60.0, 120.0):  # an average of 90 s
        floor.board.histories[(ORG, SUPPORT_QUEUE)].handled(seconds)
    floor.text()
    floor.text()
    assert texts(floor.feed(DeadlineReached())) == [
        "You are number 1; wait 2.",  # 90 s, rounded up
        "You are number 2; wait 3.",  # 180 s
    ]
    # a conversation closed after 240 s is remembered as the queue's handling time
    floor.now = accepted + 240 * S
    floor.feed(DisconnectRequested(ORG, ALICE, talking))
    assert list(floor.board.histories[(ORG, SUPPORT_QUEUE)].handle_s) == [60.0, 120.0, 240.0]


@pytest.mark.parametrize(
    ("accepted", "expected"),
    [
        (True, []),  # taken at once: nothing to tell
        (False, [(30, "You are number 1; wait 1.")]),  # the offer ran out: now it waits
    ],
)
def test_no_notice_when_it_is_offered_at_once(
    accepted: bool, expected: list[tuple[int, str]]
) -> None:
    floor = Floor(care_config(CarePolicy(notices=NOTICES)))
    floor.sign_in(ALICE)
    interaction_id = floor.text()
    offered = floor.now
    assert floor.offers() == [(ALICE, interaction_id)]
    seen = run_until(floor, offered)  # the look due at once finds it offered
    if accepted:
        floor.feed(OfferAccepted(ORG, ALICE, interaction_id))
    seen += run_until(floor, offered + 29 * S)
    assert timed_texts(seen, offered) == []
    seen += run_until(floor, offered + 600 * S)
    assert timed_texts(seen, offered)[:1] == expected
    if accepted:
        assert interaction_of(floor, interaction_id).next_notice_at is None


@pytest.mark.parametrize(
    ("position_step", "wait_step_s", "updated"),
    [
        (1, 60, {"B", "C"}),  # both moved up a place
        (1, 1000, {"B", "C"}),  # the place is enough
        (2, 1000, set()),  # one place is not enough, nor the wait
        (2, 500, {"C"}),  # C's wait moved 600 s, B's only 450 s
        (2, 400, {"B", "C"}),
    ],
)
def test_later_notices_only_when_it_moved_and_at_most_one_per_interval(
    position_step: int, wait_step_s: int, updated: set[str]
) -> None:
    notices = replace(NOTICES, position_step=position_step, wait_step_s=wait_step_s)
    floor, _ = busy_alice(CarePolicy(notices=notices))
    start = floor.now
    waiting: dict[str, int] = {}
    seen: list[tuple[datetime, Effect]] = []
    for offset, name in ((10, "A"), (20, "B"), (30, "C")):
        seen += run_until(floor, start + offset * S)
        waiting[name] = floor.text()
    seen += run_until(floor, start + 200 * S)
    # bob comes and takes A: B and C move up, and with two agents the line moves twice as fast
    effects = floor.feed(AgentStateRequested(ORG, BOB, "available"))
    assert [e["interaction_id"] for e in pushed(effects, BOB, "offer")] == [waiting["A"]]
    effects += floor.feed(OfferAccepted(ORG, BOB, waiting["A"]))
    assert texts(effects) == []  # no text at once: each waits for its next look
    seen += run_until(floor, start + 500 * S)
    expected = [
        (10, "You are number 1; wait 5."),  # A: 300 s
        (20, "You are number 2; wait 10."),  # B: 600 s
        (30, "You are number 3; wait 15."),  # C: 900 s
        # at +130, +140, +150 nothing moved: no text
    ]
    if "B" in updated:
        expected.append((260, "Now number 1; wait 3."))  # 150 s
    if "C" in updated:
        expected.append((270, "Now number 2; wait 5."))  # 300 s
    assert timed_texts(seen, start) == expected


@pytest.mark.parametrize(
    ("days", "quiet"),
    [
        (frozenset({3}), True),  # 2026-01-01, a Thursday: 03:00 in Chicago is quiet
        (frozenset({4}), False),  # quiet only on Fridays
    ],
)
def test_no_notice_during_quiet_hours_the_look_moves_to_their_end(
    days: frozenset[int], quiet: bool
) -> None:
    # 02:00 to 04:00 in Chicago is 08:00 to 10:00 UTC in January; it is 09:00 UTC
    night = QuietHours(start=time(2), end=time(4), zone=ZoneInfo("America/Chicago"), days=days)
    floor, _ = busy_alice(CarePolicy(notices=replace(NOTICES, quiet_hours=night)))
    interaction_id = floor.text()
    start = floor.now
    seen = run_until(floor, start)
    quiet_end = T0 + timedelta(hours=1)
    if not quiet:
        assert timed_texts(seen, start) == [(0, "You are number 1; wait 5.")]
        return
    assert timed_texts(seen, start) == []
    assert interaction_of(floor, interaction_id).next_notice_at == quiet_end
    assert timed_texts(run_until(floor, quiet_end - S), start) == []
    seen = run_until(floor, quiet_end)
    assert [(at, e.body) for at, e in seen if isinstance(e, StoreOutboundMessage)] == [
        (quiet_end, "You are number 1; wait 5.")
    ]


def test_a_notice_in_the_repeated_hour_waits_for_the_end_of_quiet_hours() -> None:
    night = QuietHours(start=time(22), end=time(1, 30), zone=ZoneInfo("America/Chicago"))
    floor = Floor(care_config(CarePolicy(notices=replace(NOTICES, quiet_hours=night))))
    floor.now = datetime(2026, 11, 1, 7, 10, tzinfo=UTC)  # 01:10 CST, the second 01:10
    floor.sign_in(ALICE, available=False)
    floor.text()
    start = floor.now
    quiet_end = datetime(2026, 11, 1, 7, 30, tzinfo=UTC)  # 01:30 CST
    seen = run_until(floor, quiet_end)  # raises: the look is re-armed at 06:30 UTC forever
    [(at, body)] = [(at, e.body) for at, e in seen if isinstance(e, StoreOutboundMessage)]
    assert body == "You are number 1; wait None."
    assert start <= at <= quiet_end


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("STOP", None),  # opted out, then texts in
        ("stop all", None),
        (None, "STOP"),  # opts out while waiting
    ],
)
def test_no_notice_to_a_number_that_opted_out(before: str | None, after: str | None) -> None:
    floor, _ = busy_alice(CarePolicy(notices=NOTICES))
    start = floor.now
    if before is not None:
        floor.feed(from_phone(before))
    floor.feed(from_phone("hello"))
    interaction = floor.board.open_interaction(
        organisation_id=ORG, local_number=SUPPORT_NUMBER.e164, remote_number=PHONE
    )
    assert interaction is not None
    seen = run_until(floor, start)
    if after is not None:
        assert timed_texts(seen, start) == [(0, "You are number 1; wait 5.")]
        floor.now += S
        floor.feed(from_phone(after))
    seen = run_until(floor, start + 1000 * S)
    assert timed_texts(seen, start) == []
    assert interaction.state is InteractionState.QUEUED
    # it keeps looking, sending nothing: after a START the next look may send one
    looked = interaction.next_notice_at
    assert looked is not None and looked > start + 1000 * S - NOTICES.interval_s * S
    floor.feed(from_phone("START"))
    seen = run_until(floor, looked)
    # told nothing yet: now the entry notice; told before the STOP: nothing new to tell
    expected = [] if after is not None else ["You are number 1; wait 5."]
    assert [text for _, text in timed_texts(seen, start)] == expected


def test_notices_stop_once_an_agent_has_it() -> None:
    floor, talking = busy_alice(CarePolicy(notices=NOTICES))
    start = floor.now
    waiting = floor.text()
    seen = run_until(floor, start + 100 * S)
    assert timed_texts(seen, start) == [(0, "You are number 1; wait 5.")]
    effects = floor.feed(DisconnectRequested(ORG, ALICE, talking))
    assert [e["interaction_id"] for e in pushed(effects, ALICE, "offer")] == [waiting]
    floor.feed(OfferAccepted(ORG, ALICE, waiting))
    assert interaction_of(floor, waiting).next_notice_at is None
    assert timed_texts(run_until(floor, start + 1000 * S), start) == []


# -- the maximum wait ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meanwhile", "closed_after_s"),
    [
        (None, 300),
        ("accepted", None),  # taken before: it never closes
        ("offered", 320),  # on offer when due: decided when the offer runs out (+290 + 30)
    ],
)
def test_the_maximum_wait_closes_it_with_the_closing_text(
    meanwhile: str | None, closed_after_s: int | None
) -> None:
    floor = Floor(care_config(CarePolicy(max_wait=MaxWait(after_s=300, closing=TOO_LONG))))
    floor.sign_in(ALICE, available=False)
    interaction_id = floor.text()
    start = floor.now
    interaction = interaction_of(floor, interaction_id)
    assert interaction.max_wait_at == start + 300 * S
    if meanwhile is not None:
        run_until(floor, start + (100 if meanwhile == "accepted" else 290) * S)
        floor.feed(AgentStateRequested(ORG, ALICE, "available"))
        assert floor.offers() == [(ALICE, interaction_id)]
        if meanwhile == "accepted":
            floor.feed(OfferAccepted(ORG, ALICE, interaction_id))
    seen = run_until(floor, start + 299 * S)
    assert timed_texts(seen, start) == []
    seen = run_until(floor, start + 1000 * S)
    if closed_after_s is None:
        assert timed_texts(seen, start) == []
        assert interaction.state is InteractionState.CONNECTED
        return
    assert timed_texts(seen, start) == [
        (closed_after_s, "Sorry, nobody at acme could answer in time.")
    ]
    [save] = saves([e for _, e in seen], interaction_id)[-1:]
    assert (save.state, save.closed_reason, save.closed_at) == (
        InteractionState.DISCONNECTED,
        "max_wait",
        start + closed_after_s * S,
    )
    assert floor.board.interaction(interaction_id) is None
    [figures] = [f for f in floor.board.take_queue_figures() if f.queue == SUPPORT_QUEUE]
    assert figures.waiting == 0
    # the customer texts again: a new interaction
    opened = floor.feed(from_phone("anyone?", phone=interaction.remote_number))
    assert [e.id for e in opened if isinstance(e, OpenInteraction)] == [interaction_id + 1]


@pytest.mark.parametrize("bob_available", [True, False])
def test_the_maximum_wait_overflows_to_another_workgroup_whose_care_applies(
    bob_available: bool,
) -> None:
    support = CarePolicy(max_wait=MaxWait(after_s=300, overflow_to=SALES))
    sales = CarePolicy(
        notices=replace(NOTICES, entry=Template("Sales: you are number {position}.")),
        max_wait=MaxWait(after_s=600, closing=Template("Sales could not answer.")),
    )
    floor = Floor(
        care_config(
            workgroups={SUPPORT: support, SALES: sales},
            queues={ALICE: (SUPPORT,), BOB: (SALES,)},
        )
    )
    floor.sign_in(ALICE, available=False)
    floor.sign_in(BOB, available=bob_available)
    interaction_id = floor.text()
    start = floor.now
    interaction = interaction_of(floor, interaction_id)
    seen = run_until(floor, start + 299 * S)
    assert (interaction.queue, timed_texts(seen, start)) == (SUPPORT_QUEUE, [])
    seen = run_until(floor, start + 300 * S)
    moved = [e for _, e in seen]
    assert interaction.queue == QueueRef(QueueKind.WORKGROUP, SALES)
    assert saves(moved, interaction_id)[0].queue == QueueRef(QueueKind.WORKGROUP, SALES)
    assert interaction.max_wait_at == start + 900 * S  # Sales's own maximum wait
    if bob_available:
        assert [e["interaction_id"] for e in pushed(moved, BOB, "offer")] == [interaction_id]
        assert texts(moved) == []
        return
    assert texts(moved) == ["Sales: you are number 1."]  # Sales's notices
    seen = run_until(floor, start + 900 * S)
    assert timed_texts(seen, start)[-1] == (900, "Sales could not answer.")
    assert interaction.closed_reason == "max_wait"


def test_an_escalation_overflow_brings_the_new_queues_care_too() -> None:
    sales = CarePolicy(notices=NOTICES, max_wait=MaxWait(after_s=300, closing=TOO_LONG))
    floor = Floor(
        care_config(
            workgroups={SALES: sales},
            queues={ALICE: (SUPPORT,), BOB: (SALES,)},
            escalation=(EscalationStep(after_s=60, overflow_to=SALES),),
        )
    )
    floor.sign_in(ALICE, BOB, available=False)
    interaction_id = floor.text()
    start = floor.now
    seen = run_until(floor, start + 60 * S)
    interaction = interaction_of(floor, interaction_id)
    assert interaction.queue == QueueRef(QueueKind.WORKGROUP, SALES)  # moved: this holds
    # the customer now waits in Sales, whose care has notices and a 300 s maximum wait
    assert interaction.max_wait_at == start + 360 * S  # got None
    seen += run_until(floor, start + 400 * S)
    assert timed_texts(seen, start) == [  # got []: nothing, and it waits for ever
        (60, "You are number 1; wait None."),
        (360, "Sorry, nobody at acme could answer in time."),
    ]


# -- back to the same agent ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window_s", "close", "capacity", "gap_s", "meanwhile", "number", "expected"),
    [
        (600, "disconnect", 2, 60, None, SUPPORT_NUMBER, ALICE),
        (0, "disconnect", 2, 60, None, SUPPORT_NUMBER, BOB),  # no window: as usual
        (600, "wrap_up", 2, 30, None, SUPPORT_NUMBER, ALICE),  # a slot left besides the wrap-up
        (600, "wrap_up", 1, 30, None, SUPPORT_NUMBER, BOB),  # her one slot is in the wrap-up
        (600, "idle", 2, 60, None, SUPPORT_NUMBER, ALICE),  # closed by the grace time
        (600, "disconnect", 2, 599, None, SUPPORT_NUMBER, ALICE),
        (600, "disconnect", 2, 600, None, SUPPORT_NUMBER, BOB),  # the window has closed
        (600, "disconnect", 2, 60, "away", SUPPORT_NUMBER, BOB),
        (600, "disconnect", 2, 60, "offline", SUPPORT_NUMBER, BOB),
        (600, "disconnect", 2, 60, None, SECOND_SUPPORT_NUMBER, BOB),  # another conversation
    ],
)
def test_a_text_soon_after_a_disconnect_goes_back_to_the_same_agent(
    window_s: int,
    close: str,
    capacity: int,
    gap_s: int,
    meanwhile: str | None,
    number: LocalNumber,
    expected: int,
) -> None:
    # least busy first, then longest idle: after closing, alice would not be picked as usual
    care = CarePolicy(idle=IDLE, reopen_window_s=window_s)
    floor = Floor(care_config(care, capacity=capacity, strategy=Strategy.LEAST_BUSY))
    floor.sign_in(ALICE, BOB)
    floor.feed(from_phone("hello"))
    [(agent, first)] = floor.offers()
    assert agent == ALICE
    floor.feed(OfferAccepted(ORG, ALICE, first))
    floor.now += 10 * S  # closed after bob became available: he has been idle longer
    if close == "disconnect":
        floor.feed(DisconnectRequested(ORG, ALICE, first))
    elif close == "wrap_up":
        floor.feed(WrapUpRequested(ORG, ALICE, first))
    else:
        run_until(floor, floor.now + 180 * S)
        assert floor.board.interaction(first) is None
    closed = floor.now
    run_until(floor, closed + gap_s * S)
    if meanwhile == "away":
        floor.feed(AgentStateRequested(ORG, ALICE, "away"))
    elif meanwhile == "offline":
        floor.feed(AgentDisconnected(ORG, ALICE))
    floor.feed(from_phone("one more thing", number))
    [(agent, again)] = floor.offers()
    assert agent == expected
    assert again != first


# -- purge -----------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [30, 1])
def test_purge_is_due_at_once_then_every_day(days: int) -> None:
    board = Switchboard(configs={ORG: care_config(purge_after_days=days)})
    due = board.next_deadline()
    assert due is not None and due <= T0
    day = timedelta(days=1)
    assert board.handle(DeadlineReached(), now=T0) == [
        PurgeOldData(organisation_id=ORG, before=T0 - days * day, next_at=T0 + day)
    ]
    assert board.next_deadline() == T0 + day
    assert board.handle(DeadlineReached(), now=T0 + day - S) == []
    assert board.handle(DeadlineReached(), now=T0 + day) == [
        PurgeOldData(organisation_id=ORG, before=T0 + day - days * day, next_at=T0 + 2 * day)
    ]


def test_a_stored_purge_time_is_kept() -> None:
    later = T0 + timedelta(hours=5)
    board = Switchboard(configs={ORG: care_config(purge_after_days=30)}, purges={ORG: later})
    assert board.next_deadline() == later
    assert board.handle(DeadlineReached(), now=T0) == []
    assert board.handle(DeadlineReached(), now=later) == [
        PurgeOldData(ORG, before=later - timedelta(days=30), next_at=later + timedelta(days=1))
    ]


@pytest.mark.parametrize("stored", [None, T0])
def test_no_purge_for_an_organisation_that_keeps_everything(stored: datetime | None) -> None:
    board = Switchboard(
        configs={ORG: care_config()}, purges=None if stored is None else {ORG: stored}
    )
    assert board.next_deadline() == stored
    assert board.handle(DeadlineReached(), now=T0 + timedelta(days=400)) == []
    assert board.next_deadline() is None
    assert board.purges == {}


def test_a_configuration_that_starts_purging_purges_at_once() -> None:
    board = Switchboard(configs={ORG: care_config()})
    board.use_config(care_config(purge_after_days=7))
    effects = board.handle(DeadlineReached(), now=T0)
    assert [e for e in effects if isinstance(e, PurgeOldData)] == [
        PurgeOldData(ORG, before=T0 - timedelta(days=7), next_at=T0 + timedelta(days=1))
    ]


# -- restored after a restart ----------------------------------------------------------------

AGO = T0 - timedelta(minutes=1)
EVERYTHING = CarePolicy(
    idle=IDLE, notices=NOTICES, max_wait=MaxWait(after_s=1800, closing=TOO_LONG)
)


def stored(state: InteractionState, **care: Any) -> Interaction:
    talking = state in (InteractionState.CONNECTED, InteractionState.IDLE)
    return Interaction(
        id=7,
        organisation_id=ORG,
        number_id=SUPPORT_NUMBER.id,
        local_number=SUPPORT_NUMBER.e164,
        remote_number=PHONE,
        queue=SUPPORT_QUEUE,
        state=state,
        enqueued_at=T0 - timedelta(minutes=31),
        created_at=T0 - timedelta(minutes=31),
        broker_account_id=1,
        agent_id=ALICE if talking else None,
        answered_at=T0 - timedelta(minutes=30) if talking else None,
        **care,
    )


@pytest.mark.parametrize(
    ("interaction", "state", "sent", "reason"),
    [
        (
            stored(InteractionState.CONNECTED, idle_at=AGO),
            InteractionState.IDLE,
            "Still there? We close in 1 minute(s).",
            None,
        ),
        (
            stored(InteractionState.IDLE, grace_until=AGO),
            InteractionState.DISCONNECTED,
            "Closed. Text acme again any time.",
            "idle",
        ),
        (
            stored(InteractionState.QUEUED, next_notice_at=AGO),
            InteractionState.QUEUED,
            "You are number 1; wait None.",  # alice is not connected yet: no estimate
            None,
        ),
        (
            stored(InteractionState.QUEUED, next_notice_at=AGO, notice_position=3),
            InteractionState.QUEUED,
            "Now number 1; wait None.",  # it moved since the last notice
            None,
        ),
        (
            stored(InteractionState.QUEUED, max_wait_at=AGO),
            InteractionState.DISCONNECTED,
            "Sorry, nobody at acme could answer in time.",
            "max_wait",
        ),
    ],
)
def test_care_deadlines_passed_while_down_fire_at_once(
    interaction: Interaction, state: InteractionState, sent: str, reason: str | None
) -> None:
    interaction = replace(interaction, excluded_until={})  # a fresh copy for each run
    alice = Agent(ALICE, ORG, Presence.AVAILABLE, None, since=AGO, idle_since=AGO)
    floor = Floor(care_config(EVERYTHING))
    floor.board = Switchboard(
        configs={ORG: care_config(EVERYTHING)}, open_interactions=[interaction], agents=[alice]
    )
    due = floor.board.next_deadline()
    assert due is not None and due <= T0
    seen = run_until(floor, T0)
    assert timed_texts(seen, T0) == [(0, sent)]
    assert interaction.state is state
    assert interaction.closed_reason == reason
    if state is InteractionState.IDLE:
        assert interaction.grace_until == T0 + 60 * S


def test_the_agent_sees_the_delivery_of_parleys_own_texts_on_their_conversation() -> None:
    """The idle warning has no author: its statuses go to the agent who holds the
    conversation (who sees it in the transcript), not to nobody."""
    floor = Floor(care_config(CarePolicy(idle=IDLE)))
    floor.sign_in(ALICE)
    interaction_id = connect(floor)
    done = [effect for _, effect in run_until(floor, floor.now + 120 * S)]
    [warning] = [e for e in done if isinstance(e, StoreOutboundMessage)]
    assert warning.author_id is None
    sent = floor.feed(PartSent(ORG, warning.id, 0, 1, "SM-idle"))
    [status] = pushed(sent, ALICE, "message_status")
    assert status == {
        "kind": "message_status",
        "interaction_id": interaction_id,
        "message_id": warning.id,
        "status": "sent",
        "reason": None,
    }
    receipt = DeliveryReceiptReceived(ORG, 1, "SM-idle", DeliveryStatus.DELIVERED, "delivered")
    [status] = pushed(floor.feed(receipt), ALICE, "message_status")
    assert status["status"] == "delivered"
