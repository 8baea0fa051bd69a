from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from server.core.consent import ALL_NUMBERS, ConsentState
from server.core.delivery import DeliveryStatus
from server.core.effects import (
    OpenInteraction,
    RecordConsent,
    ReportRoutingProblem,
    StoreDeliveryReceipt,
    StoreInboundMessage,
)
from server.core.events import DeliveryReceiptReceived, Media, SmsReceived
from server.core.interactions import Interaction, InteractionState
from server.core.keywords import Keyword
from server.core.routing import (
    AssignedTarget,
    HandlerTarget,
    InboundRoute,
    LocalNumber,
    OrganisationConfig,
    QueueKind,
    QueueRef,
    RouteField,
)
from server.core.switchboard import Switchboard, UnknownOrganisation

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)
SUPPORT = QueueRef(QueueKind.WORKGROUP, 1)
MAIN = LocalNumber(id=1, e164="+19205550100", queue=SUPPORT)
OTHER = LocalNumber(id=2, e164="+19205550102", queue=SUPPORT)
PHONE = "+14145550000"
CONFIG = OrganisationConfig(
    id=1,
    slug="acme",
    region="US",
    routes=(
        InboundRoute(5, RouteField.BODY, re.compile("ghost"), HandlerTarget("missing")),
        InboundRoute(9, RouteField.ANI, re.compile(""), AssignedTarget(), is_default=True),
    ),
)


def text(body: str, n: int = 1, *, number: LocalNumber = MAIN, org: int = 1) -> SmsReceived:
    return SmsReceived(
        organisation_id=org,
        broker_account_id=1,
        broker_message_id=f"m{n}",
        number=number,
        remote_number=PHONE,
        body=body,
        media=(Media("https://m/1", "image/png"),) if body == "photo" else (),
    )


def board(**kwargs: object) -> Switchboard:
    return Switchboard(configs={1: CONFIG}, **kwargs)  # type: ignore[arg-type]


def test_a_first_text_opens_a_queued_interaction() -> None:
    effects = board().handle(text("photo"), now=T0)
    assert effects == [
        OpenInteraction(
            id=1,
            organisation_id=1,
            number_id=1,
            local_number=MAIN.e164,
            remote_number=PHONE,
            queue=SUPPORT,
            state=InteractionState.QUEUED,
            enqueued_at=T0,
            route_id=9,
        ),
        StoreInboundMessage(
            id=1,
            organisation_id=1,
            interaction_id=1,
            broker_account_id=1,
            broker_message_id="m1",
            number_id=1,
            local_number=MAIN.e164,
            remote_number=PHONE,
            body="photo",
            media=(Media("https://m/1", "image/png"),),
            keyword=None,
            received_at=T0,
        ),
    ]


def test_later_texts_join_and_keep_the_enqueue_time() -> None:
    switchboard = board()
    switchboard.handle(text("one", 1), now=T0)
    effects = switchboard.handle(text("two", 2), now=T0 + timedelta(minutes=3))
    assert [type(e) for e in effects] == [StoreInboundMessage]
    assert isinstance(effects[0], StoreInboundMessage)
    assert (effects[0].id, effects[0].interaction_id) == (2, 1)
    [interaction] = switchboard.interactions()
    assert interaction.enqueued_at == T0


def test_another_local_number_is_another_interaction() -> None:
    switchboard = board()
    switchboard.handle(text("a", 1), now=T0)
    effects = switchboard.handle(text("b", 2, number=OTHER), now=T0)
    assert isinstance(effects[0], OpenInteraction) and effects[0].id == 2


def test_ids_continue_from_the_store() -> None:
    effects = board(next_interaction_id=41, next_message_id=900).handle(text("x"), now=T0)
    assert isinstance(effects[0], OpenInteraction) and effects[0].id == 41
    assert isinstance(effects[1], StoreInboundMessage) and effects[1].id == 900


def test_a_reloaded_open_interaction_is_joined() -> None:
    existing = Interaction(7, 1, 1, MAIN.e164, PHONE, SUPPORT, InteractionState.CONNECTED, T0, T0)
    effects = board(open_interactions=[existing]).handle(text("back"), now=T0)
    assert isinstance(effects[0], StoreInboundMessage) and effects[0].interaction_id == 7


def test_stop_opts_out_without_an_interaction() -> None:
    switchboard = board()
    effects = switchboard.handle(text("Stop!"), now=T0)
    assert [type(e) for e in effects] == [StoreInboundMessage, RecordConsent]
    message, change = effects
    assert isinstance(message, StoreInboundMessage) and isinstance(change, RecordConsent)
    assert (message.interaction_id, message.keyword) == (None, Keyword.STOP)
    assert (change.scope, change.state, change.text, change.message_id) == (
        MAIN.e164,
        ConsentState.OPTED_OUT,
        "Stop!",
        message.id,
    )
    assert switchboard.consents.is_opted_out(
        organisation_id=1, remote_number=PHONE, local_number=MAIN.e164
    )
    assert switchboard.interactions() == []


def test_a_repeated_stop_changes_nothing_more() -> None:
    switchboard = board()
    switchboard.handle(text("stop", 1), now=T0)
    effects = switchboard.handle(text("STOP", 2), now=T0)
    assert [type(e) for e in effects] == [StoreInboundMessage]


def test_stopall_and_start() -> None:
    switchboard = board()
    [_, stop_all] = switchboard.handle(text("stop all", 1), now=T0)
    assert isinstance(stop_all, RecordConsent) and stop_all.scope == ALL_NUMBERS
    [_, start] = switchboard.handle(text("unstop", 2), now=T0 + timedelta(seconds=1))
    assert isinstance(start, RecordConsent)
    assert (start.scope, start.state) == (MAIN.e164, ConsentState.OPTED_IN)
    assert not switchboard.consents.is_opted_out(
        organisation_id=1, remote_number=PHONE, local_number=MAIN.e164
    )
    assert switchboard.consents.is_opted_out(
        organisation_id=1, remote_number=PHONE, local_number=OTHER.e164
    )


def test_keywords_join_an_open_interaction() -> None:
    switchboard = board()
    switchboard.handle(text("hello", 1), now=T0)
    help_effects = switchboard.handle(text("HELP", 2), now=T0)
    assert [type(e) for e in help_effects] == [StoreInboundMessage]
    assert isinstance(help_effects[0], StoreInboundMessage)
    assert (help_effects[0].interaction_id, help_effects[0].keyword) == (1, Keyword.HELP)


def test_routing_problems_are_reported_with_the_message() -> None:
    effects = board().handle(text("ghost"), now=T0)
    assert effects[-1] == ReportRoutingProblem(1, 1, ("handler 'missing' is not loaded",))


def test_an_unknown_organisation_is_an_error() -> None:
    with pytest.raises(UnknownOrganisation):
        board().handle(text("x", org=2), now=T0)


def test_receipts_are_stored_as_reported() -> None:
    receipt = DeliveryReceiptReceived(1, 1, "ref-1", DeliveryStatus.DELIVERED, "DELIVRD", None)
    assert board().handle(receipt, now=T0) == [
        StoreDeliveryReceipt(1, 1, "ref-1", DeliveryStatus.DELIVERED, "DELIVRD", None, T0)
    ]
