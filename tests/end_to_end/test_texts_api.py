"""Agents' texts over HTTP (`POST /api/conversations`, `POST /api/interactions/{id}/messages`):
a script with a user's token starts a conversation and replies, the phone gets both, and the
answers match the OpenAPI document. Every refusal is the protocol's code with an HTTP status,
and leaves nothing written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.end_to_end.agents import (
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    as_user,
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    phone_messages,
    run,
    user_id,
    wait_until,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.openapi_check import check, served_document
from tests.end_to_end.organisations import ACME, GLOBEX


@pytest.fixture(scope="module")
def document(agent_stack: Stack) -> dict[str, Any]:
    return served_document(agent_stack)


async def texts_on(stack: Stack, phone: str, count: int) -> list[str]:
    async def shown() -> list[str] | None:
        texts = [m["text"] for m in await phone_messages(stack, phone)]
        return texts if len(texts) >= count else None

    return await wait_until(shown, what=f"{count} texts on {phone}")


def test_a_script_starts_a_conversation_and_replies(
    agent_stack: Stack, document: dict[str, Any]
) -> None:
    stack = agent_stack
    phone = "+14145557201"
    with as_user(stack, "alice") as alice:
        opened = alice.post("/api/conversations", json={"to": phone, "text": "Your parcel left"})
        assert opened.status_code == 201, opened.text
        check(document, "ConversationOpened", opened.json())
        interaction_id = opened.json()["interaction_id"]
        assert opened.json()["message"]["from"] == ACME.direct
        replied = alice.post(
            f"/api/interactions/{interaction_id}/messages", json={"text": "It arrives Tuesday"}
        )
        assert replied.status_code == 201, replied.text
        check(document, "ReplySent", replied.json())
        assert replied.json()["message"]["status"] == "queued"
        [interaction] = stack.rows(
            "SELECT state, agent_id FROM interaction WHERE id = :i", i=interaction_id
        )
        assert (interaction.state, interaction.agent_id) == (
            "connected",
            user_id(stack, ACME, "alice"),
        )

    async def delivered() -> None:
        assert await texts_on(stack, phone, 2) == ["Your parcel left", "It arrives Tuesday"]

    run(delivered)


def test_refusals_have_a_status_and_a_code_and_write_nothing(
    agent_stack: Stack, document: dict[str, Any]
) -> None:
    stack = agent_stack
    phone = "+14145557202"
    with as_user(stack, "alice") as alice:
        opened = alice.post("/api/conversations", json={"to": phone, "text": "Hello"})
        assert opened.status_code == 201, opened.text
        interaction_id = opened.json()["interaction_id"]
        message_id = opened.json()["message"]["id"]

    async def settled() -> None:  # its receipts are in: nothing more comes of it
        async def delivered() -> bool:
            [row] = stack.rows("SELECT status FROM message WHERE id = :m", m=message_id)
            return row.status == "delivered"

        await wait_until(delivered, what="the first text delivered")

    run(settled)
    before = stack.counts()
    reply_path = f"/api/interactions/{interaction_id}/messages"
    with (
        as_user(stack, "alice") as alice,
        as_user(stack, "bob") as bob,
        stack.client(ACME) as organisation,
        stack.client() as nobody,
    ):
        answers = {
            "no credential": nobody.post("/api/conversations", json={"to": phone}),
            "organisation token": organisation.post(
                "/api/conversations", json={"to": phone, "text": "x"}
            ),
            "not JSON": alice.post(
                "/api/conversations",
                content=b"to=1",
                headers={"Content-Type": "application/json"},
            ),
            "form body": alice.post("/api/conversations", data={"to": phone, "text": "x"}),
            "missing text": alice.post("/api/conversations", json={"to": phone}),
            "unknown field": alice.post(
                "/api/conversations", json={"to": phone, "text": "x", "cc": "y"}
            ),
            "bad number": alice.post(
                "/api/conversations", json={"to": "not a number", "text": "x"}
            ),
            "not her number": alice.post(
                "/api/conversations",
                json={"to": "+14145557203", "text": "x", "from": GLOBEX.support},
            ),
            "already open": alice.post("/api/conversations", json={"to": phone, "text": "x"}),
            "too long": alice.post(
                "/api/conversations", json={"to": "+14145557204", "text": "a" * 1531}
            ),
            "foreign attachment": alice.post(
                "/api/conversations",
                json={"to": "+14145557205", "text": "x", "attachments": [10**9]},
            ),
            "not his": bob.post(reply_path, json={"text": "Hi, Bob here"}),
            "no such interaction": alice.post(
                "/api/interactions/999999/messages", json={"text": "x"}
            ),
            "empty reply": alice.post(reply_path, json={"text": ""}),
        }
    found = {what: (answer.status_code, answer.json()["error"]) for what, answer in answers.items()}
    assert found == {
        "no credential": (401, "unauthorized"),
        "organisation token": (403, "forbidden"),
        "not JSON": (400, "bad_request"),
        "form body": (415, "unsupported_media_type"),
        "missing text": (422, "invalid_body"),
        "unknown field": (422, "invalid_body"),
        "bad number": (422, "bad_number"),
        "not her number": (403, "number_not_allowed"),
        "already open": (409, "conversation_open"),
        "too long": (422, "text_too_long"),
        "foreign attachment": (422, "bad_attachment"),
        "not his": (403, "not_yours"),
        "no such interaction": (404, "not_found"),
        "empty reply": (422, "bad_command"),
    }
    for answer in answers.values():
        check(document, "Error", answer.json())
    assert stack.counts() == before


def test_the_numbers_a_user_may_start_from(agent_stack: Stack, document: dict[str, Any]) -> None:
    """Alice's direct number first (the default), then her workgroups'; Bob has no direct
    number; an organisation token has none."""
    stack = agent_stack
    support = sorted(
        [ACME.support, ACME.twilio_number, ACME.inteliquent_number, ACME.bandwidth_number]
    )
    with as_user(stack, "alice") as alice:
        answer = alice.get("/api/conversations/from-numbers")
        assert answer.status_code == 200, answer.text
        check(document, "FromNumbers", answer.json())
        numbers = answer.json()["numbers"]
        assert numbers[0] == {
            "number": ACME.direct,
            "kind": "user",
            "workgroup": None,
            "default": True,
        }
        assert [(n["number"], n["workgroup"], n["default"]) for n in numbers[1:]] == [
            (number, "Support", False) for number in support
        ]
    with as_user(stack, "bob") as bob:
        numbers = bob.get("/api/conversations/from-numbers").json()["numbers"]
        assert [n["number"] for n in numbers] == support
        assert numbers[0]["default"] is True
    with stack.client(ACME) as organisation:
        refused = organisation.get("/api/conversations/from-numbers")
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    with stack.client(GLOBEX) as globex:
        assert globex.get("/api/conversations/from-numbers").status_code == 403
