"""Supervision through the switchboard (server/core/supervision.py): the figures as texts wait,
are answered and abandoned; the supervisors' commands and who may give them; samples every
minute and the day turning at the organisation's midnight; the same figures rebuilt at start."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.core import supervision
from server.core.care import CarePolicy, MaxWait
from server.core.effects import (
    AuditSupervision,
    CommandResult,
    PushToAgent,
    RecordQueueSamples,
    SaveAgent,
)
from server.core.errors import CommandRefused
from server.core.events import (
    AgentStateSet,
    OfferAccepted,
    SupervisorDisconnectRequested,
    SupervisorTransferRequested,
    WrapUpRequested,
)
from server.core.interactions import InteractionState
from server.core.routing import QueueKind, QueueRef
from server.core.switchboard import Switchboard
from tests.core.test_acd import ALICE, BOB, CAROL, ORG, SALES, SUPPORT, T0, Floor, config

SUPPORT_QUEUE = QueueRef(QueueKind.WORKGROUP, SUPPORT)


def supervised(care: CarePolicy | None = None) -> Floor:
    """test_acd's floor (alice and bob take Support), supervision started at T0."""
    organisation = config() if care is None else replace(config(), care=care)
    floor = Floor(organisation)
    floor.board.start_supervision(floor.now)
    return floor


def support(floor: Floor) -> dict[str, Any]:
    view = floor.board.supervision_view(ORG, floor.now)
    [found] = [q for q in view["queues"] if q["id"] == SUPPORT]
    return dict(found)


def transfer(interaction_id: int, *, role: str = "supervisor", **to: str) -> Any:
    [(kind, name)] = to.items()
    return SupervisorTransferRequested(ORG, CAROL, role, "carol", interaction_id, kind, name)


def disconnect(interaction_id: int, *, role: str = "supervisor") -> Any:
    return SupervisorDisconnectRequested(ORG, CAROL, role, "carol", interaction_id)


def audits(floor: Floor) -> list[AuditSupervision]:
    return [e for e in floor.effects if isinstance(e, AuditSupervision)]


# -- figures ---------------------------------------------------------------------------------


def test_the_figures_follow_a_text_from_waiting_to_answered() -> None:
    floor = supervised()
    first = floor.text()
    assert (support(floor)["waiting"], support(floor)["oldest_enqueued_at"]) == (1, floor.now)
    floor.now += timedelta(seconds=30)
    assert support(floor)["longest_wait_s"] == 30
    assert support(floor)["agents"] == {"available": 0, "busy": 0, "away": 0, "offline": 2}

    floor.sign_in(ALICE)  # a second later: offered at once, waiting no more
    assert floor.offers() == [(ALICE, first)]
    assert support(floor)["waiting"] == 0
    floor.feed(OfferAccepted(ORG, ALICE, first))
    figures = support(floor)
    assert (figures["answered"], figures["answered_within"], figures["abandoned"]) == (1, 0, 0)
    assert figures["average_wait_s"] == 31.0  # waited 31 s: past the 20 s threshold
    assert (figures["service_level"], figures["service_level_s"]) == (0.0, 20)
    assert figures["agents"]["available"] == 1  # one of two slots used

    second = floor.text()  # alice's second slot: offered at once
    assert floor.offers() == [(ALICE, second)]
    floor.feed(OfferAccepted(ORG, ALICE, second))
    figures = support(floor)
    assert (figures["answered"], figures["answered_within"]) == (2, 1)
    assert figures["service_level"] == 0.5
    assert figures["average_wait_s"] == 15.5


def test_a_maximum_wait_closing_is_abandoned() -> None:
    floor = supervised(CarePolicy(max_wait=MaxWait(after_s=300)))
    floor.text()
    floor.later(300)
    figures = support(floor)
    assert (figures["waiting"], figures["abandoned"], figures["answered"]) == (0, 1, 0)
    assert figures["service_level"] == 0.0


def test_the_view_lists_agents_and_live_interactions() -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    floor.feed(AgentStateSet(ORG, CAROL, "supervisor", "carol", BOB, "away", "training"))
    first = floor.text()
    view = floor.board.supervision_view(ORG, floor.now)
    assert [(a["username"], a["state"], a["reason"]) for a in view["agents"]] == [
        ("alice", "available", None),
        ("bob", "offline", "training"),  # set while signed out: offline until they connect
        ("carol", "offline", None),
    ]
    assert view["agents"][0]["workgroups"] == [SUPPORT]
    [item] = view["interactions"]
    assert (item["interaction"]["id"], item["offered_to"], item["wrap_up_by"]) == (
        first,
        ALICE,
        None,
    )


# -- the supervisors' commands ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent"])
def test_an_agent_is_refused_every_supervisor_command(role: str) -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    first = floor.text()
    for command in (
        transfer(first, role=role, workgroup="Sales"),
        disconnect(first, role=role),
        AgentStateSet(ORG, BOB, role, "bob", ALICE, "away", "no"),
    ):
        with pytest.raises(CommandRefused) as refused:
            floor.feed(command)
        assert refused.value.code == "forbidden"
    assert floor.state(first) is InteractionState.OFFERED
    assert floor.offered_to(first) == ALICE
    assert floor.board.agent_view(ORG, ALICE)["state"] == "available"


def test_a_supervisor_moves_a_waiting_interaction_to_another_queue() -> None:
    floor = supervised()
    first = floor.text()
    floor.feed(transfer(first, workgroup="Sales"))
    interaction = floor.board.interaction(first)
    assert interaction is not None and interaction.queue == QueueRef(QueueKind.WORKGROUP, SALES)
    assert support(floor)["waiting"] == 0
    [audit] = audits(floor)
    assert (audit.action, audit.entity, audit.entity_key, audit.actor) == (
        "supervisor_transfer",
        "interaction",
        str(first),
        "carol",
    )
    assert audit.before == {"state": "queued", "queue": "Support", "agent": None}
    assert audit.after == {"state": "queued", "queue": "Sales", "agent": None}
    assert CommandResult({}) in floor.effects


def test_a_supervisor_takes_an_offer_back_and_gives_it_to_a_user() -> None:
    floor = supervised()
    floor.sign_in(ALICE, BOB)
    first = floor.text()
    assert floor.offers() == [(ALICE, first)]
    floor.feed(transfer(first, user="bob"))
    pushed = [(e.user_id, e.event["kind"]) for e in floor.effects if isinstance(e, PushToAgent)]
    assert (ALICE, "offer_ended") in pushed
    assert floor.offers() == [(BOB, first)]  # bob's own queue: offered to him at once
    assert audits(floor)[0].before == {"state": "offered", "queue": "Support", "agent": "alice"}


def test_a_supervisor_moves_a_connected_interaction_and_frees_the_slot() -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    first = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, first))
    floor.feed(transfer(first, workgroup="Sales"))
    shown = [e.event for e in floor.effects if isinstance(e, PushToAgent) and e.user_id == ALICE]
    assert shown[0]["kind"] == "interaction"
    assert shown[0]["interaction"]["state"] == "queued"
    assert shown[0]["interaction"]["queue"]["name"] == "Sales"
    assert floor.board.agent_view(ORG, ALICE)["active"] == 0
    assert support(floor)["answered"] == 0  # it counts where it is now: not answered in Sales


def test_wrap_up_another_organisation_and_unknown_names_are_refused() -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    first = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, first))
    with pytest.raises(CommandRefused) as refused:
        floor.feed(transfer(first, workgroup="Nowhere"))
    assert refused.value.code == "unknown_destination"
    floor.feed(WrapUpRequested(ORG, ALICE, first))
    for command in (transfer(first, workgroup="Sales"), disconnect(first)):
        with pytest.raises(CommandRefused) as refused:
            floor.feed(command)
        assert refused.value.code == "illegal_state"
    elsewhere = SupervisorDisconnectRequested(ORG + 1, CAROL, "admin", "carol", first)
    with pytest.raises(CommandRefused) as refused:
        floor.feed(elsewhere)
    assert refused.value.code == "not_found"
    with pytest.raises(CommandRefused) as refused:
        floor.feed(AgentStateSet(ORG, CAROL, "supervisor", "carol", 999, "away", None))
    assert refused.value.code == "not_found"
    with pytest.raises(CommandRefused) as refused:
        floor.feed(AgentStateSet(ORG, CAROL, "supervisor", "carol", ALICE, "offline", None))
    assert refused.value.code == "bad_command"


def test_a_supervisor_disconnects_waiting_and_connected_interactions() -> None:
    floor = supervised()
    waiting = floor.text()
    floor.feed(disconnect(waiting))
    assert floor.board.interaction(waiting) is None
    assert (support(floor)["waiting"], support(floor)["abandoned"]) == (0, 1)
    assert audits(floor)[0].after == {"state": "disconnected", "closed_reason": "supervisor"}

    floor.sign_in(ALICE)
    talking = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, talking))
    queued_behind = [floor.text(), floor.text()][1]  # alice's second slot takes one
    floor.feed(disconnect(talking))
    closed = [
        e.event["interaction"]
        for e in floor.effects
        if isinstance(e, PushToAgent) and e.event["kind"] == "interaction"
    ]
    assert (closed[0]["state"], closed[0]["closed_reason"]) == ("disconnected", "supervisor")
    assert floor.offers() == [(ALICE, queued_behind)]  # the freed slot takes the next
    assert support(floor)["answered"] == 1  # it was answered before it was closed


def test_a_supervisor_sets_an_agent_away_and_it_is_audited() -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    floor.feed(AgentStateSet(ORG, CAROL, "admin", "carol", ALICE, "away", "coaching"))
    assert any(isinstance(e, SaveAgent) for e in floor.effects)
    [pushed] = [e.event for e in floor.effects if isinstance(e, PushToAgent)]
    assert (pushed["kind"], pushed["state"], pushed["reason"]) == (
        "agent_state",
        "away",
        "coaching",
    )
    [audit] = audits(floor)
    assert (audit.entity, audit.entity_key) == ("agent", "alice")
    assert audit.before == {"state": "available", "reason": None}
    assert audit.after == {"state": "away", "reason": "coaching"}
    floor.feed(AgentStateSet(ORG, CAROL, "admin", "carol", ALICE, "away", "coaching"))
    assert [e for e in floor.effects if isinstance(e, SaveAgent | PushToAgent)] == []


# -- samples, the day, a restart -------------------------------------------------------------


def test_a_sample_every_minute_kept_a_day() -> None:
    floor = supervised()
    assert floor.board.next_deadline() == T0 + timedelta(minutes=1)
    floor.text()
    floor.now = T0 + timedelta(minutes=1)
    effects = floor.later(0)
    [record] = [e for e in effects if isinstance(e, RecordQueueSamples)]
    assert (record.at, record.keep_from) == (floor.now, floor.now - timedelta(hours=24))
    by_queue = {s.workgroup_id: s for s in record.samples}
    assert sorted(by_queue) == [1, 2, 3]
    assert (by_queue[SUPPORT].waiting, by_queue[SUPPORT].longest_wait_s) == (1, 60)
    assert by_queue[SUPPORT].service_level is None
    assert floor.board.next_deadline() == T0 + timedelta(minutes=2)
    floor.later(30)  # half a minute on: no sample
    assert not [e for e in floor.effects if isinstance(e, RecordQueueSamples)]


def test_no_samples_before_supervision_starts() -> None:
    floor = Floor(config())
    floor.text()
    assert floor.board.next_deadline() is None


def test_the_day_turns_at_the_organisations_midnight() -> None:
    chicago = CarePolicy(day_zone=ZoneInfo("America/Chicago"))
    floor = supervised(chicago)  # T0 is 03:00 in Chicago
    floor.sign_in(ALICE)
    first = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, first))
    assert support(floor)["answered"] == 1
    floor.now = datetime(2026, 1, 2, 5, 59, tzinfo=UTC)
    floor.later(0)
    assert support(floor)["answered"] == 1  # 23:59 in Chicago: still the same day
    floor.later(60)  # 00:00 in Chicago
    assert support(floor)["answered"] == 0


def test_the_figures_are_the_same_rebuilt_from_the_closed_and_the_live() -> None:
    floor = supervised()
    floor.sign_in(ALICE)
    done = floor.text()
    floor.feed(OfferAccepted(ORG, ALICE, done))
    floor.now += timedelta(seconds=40)
    gone = floor.text()
    closed = [floor.board.interaction(done), floor.board.interaction(gone)]
    floor.feed(disconnect(done))
    floor.feed(disconnect(gone))
    live = floor.text()
    floor.now += timedelta(seconds=50)
    floor.feed(OfferAccepted(ORG, ALICE, live))
    before = support(floor)
    assert (before["answered"], before["abandoned"]) == (2, 1)

    # what the store gives at start: the open interactions, and those closed today
    restarted = Floor(config())
    restarted.board = Switchboard(
        configs={ORG: config()}, open_interactions=[floor.board.interaction(live)]
    )
    restarted.now = floor.now
    restarted.board.start_supervision(floor.now, closed_today=closed)
    assert support(restarted) == {**before, "agents": support(restarted)["agents"]}


def test_the_picture_lists_the_oldest_interactions_and_counts_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(supervision, "LISTED_INTERACTIONS", 2)
    floor = supervised()
    first, second, third = floor.text(), floor.text(), floor.text()
    view = floor.board.supervision_view(ORG, floor.now)
    assert [item["interaction"]["id"] for item in view["interactions"]] == [first, second]
    assert view["interactions_total"] == 3
    floor.feed(disconnect(first))
    view = floor.board.supervision_view(ORG, floor.now)
    assert [item["interaction"]["id"] for item in view["interactions"]] == [second, third]
    assert view["interactions_total"] == 2
