"""Opt-out keywords change consent and never open an interaction; receipts are stored once."""

from __future__ import annotations

import itertools

from tests.end_to_end.brokers import (
    bandwidth_post,
    inteliquent_post,
    sandbox_text,
    twilio_post,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

_phones = itertools.count(2000)


def new_phone() -> str:
    return f"+1414555{next(_phones):04d}"


def consent(stack: Stack, phone: str) -> dict[str, tuple[str, str, str]]:
    rows = stack.rows(
        "SELECT scope, state, keyword, text FROM consent WHERE remote_number = :p", p=phone
    )
    return {row.scope: (row.state, row.keyword, row.text) for row in rows}


def test_stop_opts_out_and_opens_nothing(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        answer = sandbox_text(client, ACME, message_id="kw-stop", sender=phone, text="  Stop. ")
    assert answer.status_code == 200
    assert stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone) == []
    [message] = stack.rows(
        "SELECT keyword, interaction_id FROM message WHERE remote_number = :p "
        "AND direction = 'inbound'",
        p=phone,
    )
    assert (message.keyword, message.interaction_id) == ("stop", None)
    assert consent(stack, phone) == {ACME.support: ("opted_out", "stop", "  Stop. ")}
    # the opt-out is confirmed, from the number texted, with the organisation's STOP reply
    [reply] = stack.rows(
        "SELECT body, local_number, interaction_id FROM message WHERE remote_number = :p "
        "AND direction = 'outbound'",
        p=phone,
    )
    assert "unsubscribed" in reply.body and "START" in reply.body
    assert (reply.local_number, reply.interaction_id) == (ACME.support, None)
    audit = stack.rows(
        "SELECT action, entity FROM audit WHERE entity_key = :k", k=f"{phone} {ACME.support}"
    )
    assert [(row.action, row.entity) for row in audit] == [("opted_out", "consent")]


def test_stop_inside_a_conversation_joins_its_transcript(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        sandbox_text(client, ACME, message_id="kw-open", sender=phone, text="hello")
        sandbox_text(client, ACME, message_id="kw-open-stop", sender=phone, text="UNSUBSCRIBE")
    [interaction] = stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone)
    bodies = stack.rows(
        "SELECT body FROM message WHERE interaction_id = :i ORDER BY id", i=interaction.id
    )
    assert [row.body for row in bodies] == ["hello", "UNSUBSCRIBE"]
    assert consent(stack, phone)[ACME.support][0] == "opted_out"


def test_stopall_covers_every_number_and_start_opts_back_in(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        sandbox_text(client, ACME, message_id="kw-all", sender=phone, text="stop all")
        assert consent(stack, phone) == {"*": ("opted_out", "stop_all", "stop all")}
        sandbox_text(client, ACME, message_id="kw-start", sender=phone, text="START")
        sandbox_text(client, ACME, message_id="kw-help", sender=phone, text="help!")
        sandbox_text(client, ACME, message_id="kw-info", sender=phone, to=ACME.direct, text="Info")
    assert consent(stack, phone) == {
        "*": ("opted_out", "stop_all", "stop all"),
        ACME.support: ("opted_in", "start", "START"),
    }
    keywords = stack.rows(
        "SELECT keyword FROM message WHERE remote_number = :p AND direction = 'inbound' "
        "ORDER BY id",
        p=phone,
    )
    assert [row.keyword for row in keywords] == ["stop_all", "start", "help", "help"]
    assert stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone) == []
    replies = stack.rows(
        "SELECT local_number, body FROM message WHERE remote_number = :p "
        "AND direction = 'outbound' ORDER BY id",
        p=phone,
    )
    # each keyword is answered from the number it was sent to
    assert [row.local_number for row in replies] == [
        ACME.support,
        ACME.support,
        ACME.support,
        ACME.direct,
    ]
    assert ["unsubscribed" in replies[0].body, "subscribed again" in replies[1].body] == [
        True,
        True,
    ]
    assert all("STOP to unsubscribe" in row.body for row in replies[2:])


def test_a_sentence_with_stop_in_it_is_an_ordinary_text(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        sandbox_text(client, ACME, message_id="kw-not", sender=phone, text="please stop by")
    assert len(stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone)) == 1
    assert consent(stack, phone) == {}


def receipts(stack: Stack, broker_message_id: str) -> list[tuple[str, str, str | None]]:
    rows = stack.rows(
        "SELECT status, broker_status, reason FROM delivery_receipt "
        "WHERE broker_message_id = :m ORDER BY id",
        m=broker_message_id,
    )
    return [(row.status, row.broker_status, row.reason) for row in rows]


def test_receipts_from_every_broker_are_stored_once(stack: Stack) -> None:
    phone = new_phone()
    twilio_status = {
        "MessageSid": "SM" + "r" * 32,
        "AccountSid": ACME.twilio_sid,
        "From": ACME.twilio_number,
        "To": phone,
        "MessageStatus": "delivered",
    }
    inteliquent_receipt = {
        "referenceId": "iq-sent-1",
        "from": phone[1:],
        "to": [ACME.inteliquent_number[1:]],
        "text": "id:1 sub:001 dlvrd:001 submit date:2611221000 done date:2611221001 "
        "stat:DELIVRD err:000 text:",
        "deliveryReceipt": True,
    }
    bandwidth_failed = [
        {
            "type": "message-failed",
            "time": "2026-11-22T10:00:00.000Z",
            "description": "rejected-unallocated-to-number",
            "to": phone,
            "errorCode": 4432,
            "message": {
                "id": "bw-sent-1",
                "owner": ACME.bandwidth_number,
                "from": ACME.bandwidth_number,
                "to": [phone],
                "text": "",
                "direction": "out",
            },
        }
    ]
    with stack.client() as client:
        for _ in range(2):
            assert (
                twilio_post(client, ACME, twilio_status, path_suffix="/status").status_code == 200
            )
            assert inteliquent_post(client, ACME, inteliquent_receipt).status_code == 200
            assert bandwidth_post(client, ACME, bandwidth_failed).status_code == 200
            answer = client.post(
                f"/webhooks/sandbox/{ACME.account('sandbox')}",
                json={
                    "type": "receipt",
                    "id": "sb-sent-1",
                    "status": "sent",
                    "from": ACME.support,
                    "to": phone,
                },
                headers={"Authorization": f"Bearer {ACME.sandbox_key}"},
            )
            assert answer.status_code == 200, answer.text
    assert receipts(stack, "sb-sent-1") == [("sent", "sent", None)]
    assert receipts(stack, "SM" + "r" * 32) == [("delivered", "delivered", None)]
    assert [r[0] for r in receipts(stack, "iq-sent-1")] == ["delivered"]
    [(status, _, reason)] = receipts(stack, "bw-sent-1")
    assert status == "failed"
    assert reason is not None and "4432" in reason
