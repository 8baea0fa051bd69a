"""Texts going out, end to end: an agent starts a conversation, counts a draft's SMS parts, and
sees its text reach the phone (the sandbox's delivery receipt moves the status forward); what
cannot go out is refused with a code of the protocol."""

from __future__ import annotations

import pytest

from parley_client import CommandFailed
from tests.end_to_end.agents import (
    AgentSockets,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    next_of,
    phone_messages,
    run,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, GLOBEX


def test_an_agent_starts_a_conversation_and_sees_it_delivered(agent_stack: Stack) -> None:
    stack = agent_stack
    phone = "+14145557001"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            started = await alice.start_conversation(phone, "Hello from Acme, your order shipped")
            interaction_id = started["interaction_id"]
            assert started["message"]["status"] == "queued"
            # her own direct number is the first she may use
            assert started["message"]["from"] == ACME.direct
            opened = await next_of(alice, "interaction")
            assert opened.data["interaction"]["state"] == "connected"
            statuses = [
                (await next_of(alice, "message_status")).data["status"],
                (await next_of(alice, "message_status")).data["status"],
            ]
            assert statuses == ["sent", "delivered"]
            # the conversation takes one of her SMS slots
            look = await floor.connect(ACME, "alice")
            assert look.snapshot is not None
            assert look.snapshot["agent"]["active"] == 1
            # delivered: the handset shows it
            shown = await phone_messages(stack, phone)
            assert [m["text"] for m in shown] == ["Hello from Acme, your order shipped"]

            # the conversation is open: a second start to the same phone is refused
            with pytest.raises(CommandFailed) as refused:
                await alice.start_conversation(phone, "Hello again")
            assert refused.value.code == "conversation_open"
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_draft_is_counted_and_a_text_too_long_is_refused(agent_stack: Stack) -> None:
    stack = agent_stack

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            assert await alice.count_segments("a" * 161) == {
                "encoding": "GSM-7",
                "parts": 2,
                "units": 161,
                "per_part": 153,
                "remaining_in_part": 145,
            }
            assert (await alice.count_segments("Grüße 😀"))["encoding"] == "UCS-2"
            # the account allows 10 parts: 1,531 GSM characters need 11
            with pytest.raises(CommandFailed) as refused:
                await alice.start_conversation("+14145557002", "a" * 1531)
            assert refused.value.code == "text_too_long"

    run(scenario)


def test_an_agent_starts_only_from_numbers_they_may_use(agent_stack: Stack) -> None:
    stack = agent_stack

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            bob = await floor.connect(ACME, "bob")
            # alice's direct number is hers only; another organisation's number is nobody's here
            for number in (ACME.direct, GLOBEX.support):
                with pytest.raises(CommandFailed) as refused:
                    await bob.start_conversation("+14145557003", "Hi", from_number=number)
                assert refused.value.code == "number_not_allowed"
            with pytest.raises(CommandFailed) as refused:
                await bob.start_conversation("not a number", "Hi")
            assert refused.value.code == "bad_number"

    run(scenario)
