"""Outbound decisions and delivery tracking in the core: routes, number classes, access, parts,
MMS or links; receipts moving a message forward only; a broker's opt-out answer."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.core.consent import ConsentState
from server.core.delivery import RECEIPT_WINDOW, DeliveryStatus, OutboundBook, OutboundTrack
from server.core.effects import (
    MarkSent,
    PushToAgent,
    RecordConsent,
    RecordPartSent,
    SavePartStatus,
    StoreOutboundMessage,
)
from server.core.errors import CommandRefused
from server.core.events import DeliveryReceiptReceived, PartSent, SendFailed, SmsReceived
from server.core.media import AttachmentRef
from server.core.outbound import (
    AccountPolicy,
    Attachment,
    OutboundNumber,
    OutboundRoute,
    plan_text,
    route_for,
)
from server.core.phone_numbers import NumberClass
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
LOCAL = "+19205550100"
NANP = frozenset({NumberClass.LOCAL, NumberClass.LONG_DISTANCE, NumberClass.TOLL_FREE})


def route(
    name: str,
    pattern: str,
    *,
    account: int = 1,
    formatted: str = "$0",
    classes: frozenset[NumberClass] = NANP,
    users: frozenset[int] = frozenset(),
    workgroups: frozenset[int] = frozenset(),
) -> OutboundRoute:
    return OutboundRoute(
        id=len(name),
        name=name,
        pattern=re.compile(pattern),
        formatted_number=formatted,
        broker_account_id=account,
        classifications=classes,
        users=users,
        workgroups=workgroups,
    )


def recipient(
    routes: tuple[OutboundRoute, ...],
    destination: str,
    *,
    user_id: int | None = 7,
    workgroups: tuple[int, ...] = (),
) -> str:
    return route_for(
        routes,
        destination=destination,
        local_number=LOCAL,
        broker_account_id=1,
        region="US",
        user_id=user_id,
        workgroups=workgroups,
    )


# -- routes ----------------------------------------------------------------------------------------


def test_without_routes_the_destination_goes_as_it_is() -> None:
    assert recipient((), "+442079460000") == "+442079460000"


def test_the_first_route_of_the_numbers_account_wins_and_formats_the_number() -> None:
    routes = (
        route("other-account", r".*", account=2, formatted="nope"),
        route("nanp", r"^\+1(\d{10})$", formatted="1$1"),
        route("everything", r".*"),
    )
    assert recipient(routes, "+14145550100") == "14145550100"


@pytest.mark.parametrize(
    ("destination", "served", "refusal"),
    [
        ("+14145550100", frozenset({NumberClass.LONG_DISTANCE}), None),
        ("+19205550199", frozenset({NumberClass.LOCAL}), None),
        ("+18005550100", frozenset({NumberClass.TOLL_FREE}), None),
        ("+442079460000", frozenset({NumberClass.INTERNATIONAL}), None),
        ("+442079460000", NANP, "route_not_allowed"),
        ("+18005550100", frozenset({NumberClass.LOCAL}), "route_not_allowed"),
    ],
)
def test_a_route_serves_only_its_classes_of_number(
    destination: str, served: frozenset[NumberClass], refusal: str | None
) -> None:
    routes = (route("only", r".*", classes=served),)
    if refusal is None:
        assert recipient(routes, destination) == destination
    else:
        with pytest.raises(CommandRefused) as refused:
            recipient(routes, destination)
        assert refused.value.code == refusal


def test_a_route_naming_users_or_workgroups_serves_only_them_and_parley() -> None:
    routes = (route("vip", r".*", users=frozenset({3}), workgroups=frozenset({20})),)
    assert recipient(routes, "+14145550100", user_id=3) == "+14145550100"
    assert recipient(routes, "+14145550100", user_id=4, workgroups=(20,)) == "+14145550100"
    assert recipient(routes, "+14145550100", user_id=None) == "+14145550100"  # a STOP reply
    with pytest.raises(CommandRefused) as refused:
        recipient(routes, "+14145550100", user_id=4, workgroups=(21,))
    assert refused.value.code == "route_not_allowed"


def test_no_matching_route_is_a_clear_refusal() -> None:
    with pytest.raises(CommandRefused) as refused:
        recipient((route("uk", r"^\+44"),), "+14145550100")
    assert (refused.value.code, refused.value.detail) == (
        "no_route",
        f"no outbound route sends from {LOCAL} to +14145550100",
    )


# -- parts and media -------------------------------------------------------------------------------


def attachment(content_type: str, size: int = 1000) -> Attachment:
    ref = AttachmentRef(id=1, token="t" * 43, filename="f", content_type=content_type, size=size)
    return Attachment(ref=ref, url=f"https://parley.example/media/{ref.token}/f")


def test_a_long_text_is_split_or_truncated_as_the_account_says() -> None:
    split = plan_text("a" * 200, recipient="+1", policy=AccountPolicy(1), mms_enabled=False)
    assert [len(part) for part in split.parts] == [153, 47]
    truncated = plan_text(
        "a" * 200, recipient="+1", policy=AccountPolicy(1, long_text="truncate"), mms_enabled=False
    )
    assert (truncated.parts, truncated.body) == (("a" * 160,), "a" * 160)
    with pytest.raises(CommandRefused) as refused:
        plan_text(
            "a" * 200, recipient="+1", policy=AccountPolicy(1, max_parts=1), mms_enabled=False
        )
    assert refused.value.code == "text_too_long"


def test_attachments_go_as_mms_where_mms_is_on_else_as_links() -> None:
    photo = attachment("image/jpeg")
    mms = plan_text(
        "Look", recipient="+1", policy=AccountPolicy(1), mms_enabled=True, attachments=[photo]
    )
    assert (mms.parts, mms.media) == (("Look",), (photo.url,))
    link = plan_text(
        "Look", recipient="+1", policy=AccountPolicy(1), mms_enabled=False, attachments=[photo]
    )
    assert (link.parts, link.media) == ((f"Look\n{photo.url}",), ())
    pdf = attachment("application/pdf")
    as_link = plan_text(
        "Here", recipient="+1", policy=AccountPolicy(1), mms_enabled=True, attachments=[pdf]
    )
    assert as_link.media == () and as_link.body.endswith(pdf.url)


def test_an_account_that_does_not_send_refuses() -> None:
    with pytest.raises(CommandRefused) as refused:
        plan_text(
            "Hi", recipient="+1", policy=AccountPolicy(1, outbound_enabled=False), mms_enabled=False
        )
    assert refused.value.code == "outbound_disabled"


# -- what becomes of a text ------------------------------------------------------------------------


def track(parts: int = 2) -> OutboundTrack:
    return OutboundTrack(
        message_id=10,
        organisation_id=1,
        interaction_id=None,
        author_id=None,
        broker_account_id=1,
        local_number=LOCAL,
        remote_number="+14145550000",
        parts=parts,
        created_at=T0,
    )


def test_a_message_is_sent_when_every_part_is_taken_and_delivered_when_every_part_is() -> None:
    book = OutboundBook()
    book.track(message := track())
    book.part_sent(10, 0, 1, "b0")
    assert message.message_status() is DeliveryStatus.QUEUED  # one part of two
    book.part_sent(10, 1, 1, "b1")
    assert message.message_status() is DeliveryStatus.SENT
    book.receipt(1, "b0", DeliveryStatus.DELIVERED, None)
    assert message.message_status() is DeliveryStatus.SENT
    book.receipt(1, "b1", DeliveryStatus.DELIVERED, None)
    assert message.message_status() is DeliveryStatus.DELIVERED


def test_a_status_never_moves_back_and_a_failed_part_fails_the_message() -> None:
    book = OutboundBook()
    book.track(message := track(parts=1))
    book.part_sent(10, 0, 1, "b0")
    book.receipt(1, "b0", DeliveryStatus.DELIVERED, None)
    message.status = message.message_status()
    book.receipt(1, "b0", DeliveryStatus.SENT, None)  # a late, older receipt
    assert message.message_status() is DeliveryStatus.DELIVERED
    other = OutboundBook()
    other.track(failing := track())
    other.part_sent(10, 0, 1, "b0")
    other.receipt(1, "b0", DeliveryStatus.FAILED, "30003")
    assert failing.message_status() is DeliveryStatus.FAILED


def test_a_receipt_that_overtakes_its_send_waits_for_it() -> None:
    book = OutboundBook()
    book.track(message := track(parts=1))
    assert book.receipt(1, "b0", DeliveryStatus.DELIVERED, None) == []
    book.part_sent(10, 0, 1, "b0")
    assert message.part_status == {0: DeliveryStatus.DELIVERED}
    assert message.message_status() is DeliveryStatus.DELIVERED


def test_texts_consolidated_into_one_sms_share_its_receipts() -> None:
    """The sender sent two messages as one SMS: one broker id, both messages follow it, even
    when the receipt came before the sends were known."""
    book = OutboundBook()
    book.track(first := track(parts=1))
    book.track(second := replace(track(parts=1), message_id=11, part_status={}, broker_ids=[]))
    book.receipt(1, "b0", DeliveryStatus.DELIVERED, None)
    book.part_sent(10, 0, 1, "b0")
    book.part_sent(11, 0, 1, "b0")
    assert (first.message_status(), second.message_status()) == (DeliveryStatus.DELIVERED,) * 2
    book.track(third := replace(track(parts=1), message_id=12, part_status={}, broker_ids=[]))
    book.track(fourth := replace(track(parts=1), message_id=13, part_status={}, broker_ids=[]))
    book.part_sent(12, 0, 1, "b1")
    book.part_sent(13, 0, 1, "b1")
    moved = book.receipt(1, "b1", DeliveryStatus.FAILED, "30007")
    assert [(t.message_id, part) for t, part in moved] == [(12, 0), (13, 0)]
    assert (third.message_status(), fourth.message_status()) == (DeliveryStatus.FAILED,) * 2


# -- through the switchboard -----------------------------------------------------------------------


SUPPORT = QueueRef(QueueKind.WORKGROUP, 1)
MAIN = LocalNumber(id=1, e164=LOCAL, queue=SUPPORT, broker_account_id=1)
CONFIG = OrganisationConfig(
    id=1,
    slug="acme",
    region="US",
    routes=(InboundRoute(9, RouteField.ANI, re.compile(""), AssignedTarget(), is_default=True),),
    numbers={LOCAL: OutboundNumber(id=1, e164=LOCAL, broker_account_id=1, workgroup_id=1)},
    keyword_replies={"help": "Acme: reply STOP to unsubscribe"},
)


def keyword_reply(board: Switchboard) -> StoreOutboundMessage:
    [help_reply] = [
        effect
        for effect in board.handle(SmsReceived(1, 1, "in-1", MAIN, "+14145550000", "HELP"), now=T0)
        if isinstance(effect, StoreOutboundMessage)
    ]
    return help_reply


def test_receipts_move_a_message_forward_once_and_are_saved_per_part() -> None:
    board = Switchboard(configs={1: CONFIG})
    reply = keyword_reply(board)
    assert (reply.local_number, reply.parts, reply.author_id) == (
        LOCAL,
        ("Acme: reply STOP to unsubscribe",),
        None,
    )
    sent = board.handle(PartSent(1, reply.id, 0, 1, "SM1"), now=T0)
    assert [type(e) for e in sent] == [RecordPartSent, MarkSent]
    assert sent[1] == MarkSent(reply.id, DeliveryStatus.SENT, None, T0)
    receipt = DeliveryReceiptReceived(1, 1, "SM1", DeliveryStatus.DELIVERED, "delivered")
    delivered = board.handle(receipt, now=T0)
    assert SavePartStatus(reply.id, 0, DeliveryStatus.DELIVERED, T0) in delivered
    assert MarkSent(reply.id, DeliveryStatus.DELIVERED, None, T0) in delivered
    again = board.handle(receipt, now=T0)  # the same receipt twice: stored, nothing moves
    assert [e for e in again if isinstance(e, MarkSent | PushToAgent)] == []


def test_a_brokers_opt_out_answer_fails_the_message_and_opts_the_number_out() -> None:
    board = Switchboard(configs={1: CONFIG})
    reply = keyword_reply(board)
    effects = board.handle(SendFailed(1, reply.id, "21610", attempts=1, opted_out=True), now=T0)
    # the outbox row keeps the tries it took
    assert MarkSent(reply.id, DeliveryStatus.FAILED, "21610", T0, attempts=1) in effects
    [consent] = [e for e in effects if isinstance(e, RecordConsent)]
    assert (consent.remote_number, consent.scope, consent.state) == (
        "+14145550000",
        LOCAL,
        ConsentState.OPTED_OUT,
    )
    assert board.consents.is_opted_out(
        organisation_id=1, remote_number="+14145550000", local_number=LOCAL
    )


def test_messages_older_than_the_receipt_window_are_no_longer_followed() -> None:
    book = OutboundBook()
    book.track(old := track(parts=1))
    book.part_sent(10, 0, 1, "b0")
    book.track(replace(track(parts=1), message_id=11, created_at=T0 + RECEIPT_WINDOW))
    book.forget_older_than(T0 + RECEIPT_WINDOW)
    assert list(book.by_message) == [11]
    assert book.receipt(1, "b0", DeliveryStatus.DELIVERED, None) == []  # no longer known
    assert old.message_status() is DeliveryStatus.SENT
