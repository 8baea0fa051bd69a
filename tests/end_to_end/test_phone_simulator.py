"""The phone simulator's server side against a real server: the page `GET /phone`, the sandbox's
numbers `GET /sandbox/numbers` and the pushed updates `WS /sandbox/phones/{phone}/updates` (the
latest texts when it opens, then every text stored or changed: a text from the phone taken by
Parley, an agent's reply with its receipts), and none of it with the sandbox off."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket
from websockets.exceptions import ConnectionClosed

from parley_client import AgentClient
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import (
    WAIT,
    agent_stack_fixture,  # noqa: F401
    connect,
    make_available,
    next_of,
    run,
    text_from_phone,
)
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX


def updates_url(stack: Stack, phone: str) -> str:
    return f"ws://127.0.0.1:{stack.server.port}/sandbox/phones/{phone}/updates"


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return frame


async def until_status(ws: ClientConnection, message_id: str, status: str) -> list[str]:
    """Read `message` frames until the text `message_id` shows `status`; return the statuses
    that text showed on the way, in order."""
    seen = []
    while True:
        frame = await next_frame(ws)
        assert frame["type"] == "message", frame
        if frame["message"]["id"] == message_id:
            seen.append(frame["message"]["status"])
            if frame["message"]["status"] == status:
                return seen


def test_the_page_needs_no_session_and_lists_the_numbers_it_can_text(
    agent_stack: Stack,
) -> None:
    with httpx2.Client(base_url=agent_stack.server.base_url, timeout=30) as http:
        page = http.get("/phone")
        numbers = http.get("/sandbox/numbers")
    assert page.status_code == 200
    assert 'src="/static/js/phone_page.js"' in page.text
    assert "Your phone number" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert numbers.status_code == 200
    listed = {entry["number"]: entry["name"] for entry in numbers.json()["numbers"]}
    # every sandbox account's numbers, of both organisations; the other brokers' are not there
    assert listed == {
        ACME.support: ACME.support,  # no friendly name given: the number
        ACME.direct: ACME.direct,
        GLOBEX.support: GLOBEX.support,
        GLOBEX.direct: GLOBEX.direct,
    }
    assert list(listed) == sorted(listed)


def test_the_updates_show_a_text_taken_and_a_reply_delivered(agent_stack: Stack) -> None:
    phone = "+14145557001"

    async def scenario() -> None:
        alice = await connect(agent_stack, ACME, "alice")
        async with alice, open_websocket(updates_url(agent_stack, phone)) as ws:
            assert await next_frame(ws) == {"type": "messages", "messages": []}
            await make_available(agent_stack, alice)

            sent = await text_from_phone(agent_stack, phone, ACME.support, "Where is my order?")
            assert await until_status(ws, sent["id"], "delivered") == ["accepted", "delivered"]

            offer = await next_of(alice, "offer")
            interaction_id = int(offer.data["interaction_id"])
            await alice.accept(interaction_id)
            await alice.send(interaction_id, "On its way: it arrives tomorrow.")
            frame = await next_frame(ws)
            reply = frame["message"]
            assert reply["direction"] == "to_phone"
            assert reply["from"] == ACME.support and reply["to"] == phone
            assert reply["text"] == "On its way: it arrives tomorrow."
            statuses = [reply["status"], *await until_status(ws, reply["id"], "delivered")]
            assert statuses == ["accepted", "sent", "delivered"]
            await finish(alice, interaction_id)

        # Opened again, the socket starts with everything the phone shows, as it is now.
        async with open_websocket(updates_url(agent_stack, "14145557001")) as ws:
            first = await next_frame(ws)
        assert first["type"] == "messages"
        assert [(m["direction"], m["text"], m["status"]) for m in first["messages"]] == [
            ("from_phone", "Where is my order?", "delivered"),
            ("to_phone", "On its way: it arrives tomorrow.", "delivered"),
        ]

    run(scenario)


async def finish(agent: AgentClient, interaction_id: int) -> None:
    await agent.disconnect(interaction_id)


def test_a_text_to_an_unreachable_phone_shows_failed_with_its_reason(agent_stack: Stack) -> None:
    phone = "+14145550199"  # ends in 5550199: the sandbox never delivers to it

    async def scenario() -> None:
        bob = await connect(agent_stack, ACME, "bob")
        async with bob, open_websocket(updates_url(agent_stack, phone)) as ws:
            await next_frame(ws)
            await make_available(agent_stack, bob)
            await text_from_phone(agent_stack, phone, ACME.support, "Can you hear me?")
            interaction_id = int((await next_of(bob, "offer")).data["interaction_id"])
            await bob.accept(interaction_id)
            answer = await bob.send(interaction_id, "Yes!")
            assert answer["message"]["status"] == "queued"
            while True:
                message = (await next_frame(ws))["message"]
                if message["direction"] == "to_phone" and message["status"] == "failed":
                    break
            assert message["text"] == "Yes!"
            assert message["reason"] == "unreachable handset"
            await finish(bob, interaction_id)

    run(scenario)


def test_only_the_watched_phone_is_pushed(agent_stack: Stack) -> None:
    async def scenario() -> None:
        async with open_websocket(updates_url(agent_stack, "+14145557002")) as ws:
            await next_frame(ws)
            await text_from_phone(agent_stack, "+14145557003", GLOBEX.support, "not for you")
            sent = await text_from_phone(agent_stack, "+14145557002", GLOBEX.support, "mine")
            frame = await next_frame(ws)  # the first frame after: the other phone's never came
            assert frame["message"]["id"] == sent["id"]
            assert frame["message"]["text"] == "mine"

    run(scenario)


def test_an_impossible_number_is_closed_with_the_reason(agent_stack: Stack) -> None:
    async def scenario() -> None:
        async with open_websocket(updates_url(agent_stack, "12")) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await next_frame(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4422
        assert closed.value.rcvd.reason.startswith("phone:")

    run(scenario)


def test_without_the_sandbox_there_is_no_simulator(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    stack = start_stack(tmp_path_factory.mktemp("no-sandbox"), env={"PARLEY_SANDBOX": "false"})
    try:
        with httpx2.Client(base_url=stack.server.base_url, timeout=30 * TIMEOUT_SCALE) as http:
            assert http.get("/phone").status_code == 404
            assert http.get("/sandbox/numbers").status_code == 404
            assert http.get("/sign-in").status_code == 200
    finally:
        stack.server.stop()
        stack.engine.dispose()
