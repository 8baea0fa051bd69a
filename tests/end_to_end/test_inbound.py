"""A text from a phone, through each broker, becomes a stored interaction in the right queue."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx2

from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.brokers import (
    bandwidth_text,
    inteliquent_text,
    sandbox_text,
    twilio_text,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, GLOBEX

_phones = itertools.count(1000)


def new_phone() -> str:
    return f"+1414555{next(_phones):04d}"


def queue_of(stack: Stack, interaction_id: int) -> dict[str, Any]:
    with stack.client(ACME) as api:
        answer = api.get(f"/api/interactions/{interaction_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["interaction"]["queue"])


def only_interaction(stack: Stack, phone: str) -> dict[str, Any]:
    rows = stack.rows("SELECT id FROM interaction WHERE remote_number = :phone", phone=phone)
    assert len(rows) == 1, rows
    with stack.client(ACME) as api:
        answer = api.get(f"/api/interactions/{rows[0].id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_sandbox_text_is_queued_with_its_message(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        answer = sandbox_text(client, ACME, message_id="sb-1", sender=phone, text="Hello there")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok", "stored": 1, "duplicates": 0}
    found = only_interaction(stack, phone)
    interaction = found["interaction"]
    assert interaction["state"] == "queued"
    assert interaction["local_number"] == ACME.support
    assert interaction["remote_number"] == phone
    assert interaction["queue"]["kind"] == "workgroup"
    assert interaction["queue"]["name"] == "Support"
    assert interaction["enqueued_at"].endswith("Z")
    [message] = found["messages"]
    assert message["direction"] == "inbound"
    assert message["body"] == "Hello there"
    assert message["from"] == phone
    assert message["to"] == ACME.support


def test_twilio_mms_signed_by_the_official_validator(stack: Stack) -> None:
    phone = new_phone()
    media = [("https://api.twilio.com/media/ME1", "image/jpeg")]
    with stack.client() as client:
        answer = twilio_text(
            client, ACME, message_id="SM" + "1" * 32, sender=phone, text="photo", media=media
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert b"<Response" in answer.content
    found = only_interaction(stack, phone)
    assert found["interaction"]["local_number"] == ACME.twilio_number
    [message] = found["messages"]
    assert message["media"] == [
        {"url": "https://api.twilio.com/media/ME1", "content_type": "image/jpeg"}
    ]


def test_inteliquent_numbers_as_json_numbers_and_ten_digits(stack: Stack) -> None:
    phone = new_phone()
    local_ten_digits = ACME.inteliquent_number[2:]
    with stack.client() as client:
        answer = inteliquent_text(
            client,
            ACME,
            reference_id="iq-ref-1",
            sender=int(phone[1:]),  # 11 digits as a JSON number
            to=local_ten_digits,
            text="hi",
            media=["https://media.example/one.png", "https://media.example/two.png"],
        )
    assert answer.status_code == 200, answer.text
    found = only_interaction(stack, phone)
    assert found["interaction"]["local_number"] == ACME.inteliquent_number
    assert [m["url"] for m in found["messages"][0]["media"]] == [
        "https://media.example/one.png",
        "https://media.example/two.png",
    ]


def test_bandwidth_callback_array(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        answer = bandwidth_text(client, ACME, message_id="bw-1", sender=phone, text="yo")
    assert answer.status_code == 200, answer.text
    found = only_interaction(stack, phone)
    assert found["interaction"]["local_number"] == ACME.bandwidth_number
    assert found["messages"][0]["body"] == "yo"


def test_repeated_webhook_is_answered_and_stored_once(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        first = sandbox_text(client, ACME, message_id="dup-1", sender=phone, text="once")
        again = sandbox_text(client, ACME, message_id="dup-1", sender=phone, text="once")
        signed_twice = [
            twilio_text(client, ACME, message_id="SM" + "d" * 32, sender=phone, text="twice")
            for _ in range(2)
        ]
    assert first.json()["stored"] == 1
    assert again.status_code == 200
    assert again.json() == {"status": "ok", "stored": 0, "duplicates": 1}
    assert [r.status_code for r in signed_twice] == [200, 200]
    rows = stack.rows(
        "SELECT broker_message_id, body FROM message WHERE remote_number = :p ORDER BY id", p=phone
    )
    assert [(row.broker_message_id, row.body) for row in rows] == [
        ("dup-1", "once"),
        ("SM" + "d" * 32, "twice"),
    ]


def test_a_burst_from_one_phone_makes_one_interaction(stack: Stack) -> None:
    phone = new_phone()

    async def burst() -> list[int]:
        async with httpx2.AsyncClient(
            base_url=stack.server.base_url, timeout=60 * TIMEOUT_SCALE
        ) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"/webhooks/sandbox/{ACME.account('sandbox')}",
                        json={
                            "id": f"burst-{n}",
                            "from": phone,
                            "to": ACME.support,
                            "text": f"{n}",
                        },
                        headers={"Authorization": f"Bearer {ACME.sandbox_key}"},
                    )
                    for n in range(50)
                )
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(burst()) == [200] * 50
    interactions = stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone)
    assert len(interactions) == 1
    messages = stack.rows(
        "SELECT body, interaction_id FROM message WHERE remote_number = :p", p=phone
    )
    assert len(messages) == 50
    assert {row.interaction_id for row in messages} == {interactions[0].id}
    assert sorted(int(row.body) for row in messages) == list(range(50))


def test_a_text_joins_the_open_interaction(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        for n in range(3):
            sandbox_text(client, ACME, message_id=f"join-{n}", sender=phone, text=f"part {n}")
    found = only_interaction(stack, phone)
    assert [m["body"] for m in found["messages"]] == ["part 0", "part 1", "part 2"]


def test_the_same_phone_at_two_numbers_makes_two_interactions(stack: Stack) -> None:
    phone = new_phone()
    with stack.client() as client:
        sandbox_text(client, ACME, message_id="two-a", sender=phone, text="a")
        sandbox_text(client, ACME, message_id="two-b", sender=phone, to=ACME.direct, text="b")
    rows = stack.rows(
        "SELECT local_number FROM interaction WHERE remote_number = :p ORDER BY id", p=phone
    )
    assert [row.local_number for row in rows] == [ACME.support, ACME.direct]


def test_routes_decide_the_queue(stack: Stack) -> None:
    cases = [
        ("Hola, necesito ayuda", new_phone(), ACME.support, ("workgroup", "Spanish")),
        ("hello", "+13125550199", ACME.support, ("workgroup", "Sales")),
        ("I am a VIP", new_phone(), ACME.support, ("workgroup", "Sales")),
        ("BROKEN handler", new_phone(), ACME.support, ("workgroup", "Support")),
        ("plain", new_phone(), ACME.support, ("workgroup", "Support")),
        ("hola to my direct line", new_phone(), ACME.direct, ("user", "alice")),
    ]
    with stack.client() as client:
        for n, (text, phone, to, _) in enumerate(cases):
            answer = sandbox_text(
                client, ACME, message_id=f"route-{n}", sender=phone, to=to, text=text
            )
            assert answer.status_code == 200, answer.text
    for text, phone, _, (kind, name) in cases:
        queue = only_interaction(stack, phone)["interaction"]["queue"]
        assert (queue["kind"], queue["name"]) == (kind, name), text


def test_queues_list_waiting_interactions_in_order(stack: Stack) -> None:
    with stack.client(GLOBEX) as api:
        before = api.get("/api/queues").json()
    phones = [new_phone() for _ in range(3)]
    with stack.client() as client:
        for n, phone in enumerate(phones):
            sandbox_text(client, GLOBEX, message_id=f"order-{n}", sender=phone, text="waiting")
    with stack.client(GLOBEX) as api:
        queues = api.get("/api/queues").json()["queues"]
    support = next(q for q in queues if q["name"] == "Support")
    old = next(q for q in before["queues"] if q["name"] == "Support")["waiting_count"]
    waiting = support["waiting"][old:]
    assert [entry["remote_number"] for entry in waiting] == phones
    assert [entry["position"] for entry in support["waiting"]] == list(
        range(1, support["waiting_count"] + 1)
    )
    assert support["oldest_enqueued_at"] == support["waiting"][0]["enqueued_at"]
    assert {q["name"] for q in queues} >= {"Support", "Sales", "Spanish"}
