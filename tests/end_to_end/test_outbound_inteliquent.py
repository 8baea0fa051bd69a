"""Replies through Inteliquent's Message Broker, end to end: the organisation's Inteliquent
account sends to a small HTTP server speaking `publishMessages` (tests/broker_servers/
inteliquent.py), which answers as Inteliquent would and posts delivery receipts to Parley's
Inteliquent webhook, authenticated as `/configureAuthorization` set it up.

Shows: the reply is published as Inteliquent wants it (Bearer outbound key, 11-digit numbers
without '+', `deliveryReceipt: true`) and its receipt, delivered or undelivered, reaches the
agent; 5xx answers are retried (the waits committed) and the reply goes once they pass; a 4xx
refusal fails the reply with Inteliquent's reason, for good; a long reply goes as the parts the
account's `sending:` settings say; the account's send rate holds on the wire."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx2
import pytest

from parley_client import CommandFailed
from server.adapters.config_document import SendingSpec
from tests.broker_servers.inteliquent import InteliquentServer
from tests.end_to_end.agents import (
    AgentSockets,
    make_available,
    next_status,
    open_count,
    outbox_of,
    reset_floor,
    run,
    sending_stack,
    status_after,
    take_a_text,
)
from tests.end_to_end.brokers import configure_sending, inteliquent_text
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

OUTBOUND_KEY = "acme-inteliquent-outbound-key"
OURS = ACME.inteliquent_number.removeprefix("+")  # "19205550103": as Inteliquent writes it
LONG = "".join(f"Step {n}: unplug the router and count to ten. " for n in range(1, 13))
RATE = 10.0  # texts a second


@pytest.fixture(scope="module")
def inteliquent() -> Iterator[InteliquentServer]:
    with InteliquentServer(
        api_key=OUTBOUND_KEY,
        numbers=[OURS],
        webhook_api_key=ACME.inteliquent_key,
        webhook_header=ACME.inteliquent_header,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def inteliquent_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with sending_stack(tmp_path_factory.mktemp("inteliquent")) as running:
        yield running


def configure(stack: Stack, inteliquent: InteliquentServer, **sending: Any) -> None:
    """ACME's Inteliquent account sends to `inteliquent` with its outbound key, with these
    `sending:` settings besides the address."""
    configure_sending(
        stack,
        "inteliquent",
        SendingSpec(api_url=inteliquent.api_url, timeout_s=5, **sending),
        credentials={"outbound_api_key": OUTBOUND_KEY},
    )


@pytest.fixture(autouse=True)
def clean(inteliquent_stack: Stack, inteliquent: InteliquentServer) -> Iterator[None]:
    configure(inteliquent_stack, inteliquent)
    inteliquent.reset()
    yield
    if open_count(inteliquent_stack):
        reset_floor(inteliquent_stack)


def text_from(phone: str) -> Callable[[httpx2.Client], httpx2.Response]:
    """A text from `phone` to ACME's Inteliquent number, for `take_a_text`."""
    return partial(
        inteliquent_text, org=ACME, reference_id=f"in-{phone}", sender=phone[1:], text="Hi"
    )


def webhook(stack: Stack) -> str:
    """The inbound webhook the account's numbers are configured with: receipts come there."""
    return f"{stack.server.base_url}/webhooks/inteliquent/{ACME.account('inteliquent')}"


def test_a_reply_is_published_to_inteliquent_and_its_receipt_reaches_the_agent(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558101"

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, "Your order shipped today")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            [request] = inteliquent.received()
            assert (request.method, request.path, request.bearer(), request.status) == (
                "POST",
                "/msgbroker/rest/publishMessages",
                OUTBOUND_KEY,
                200,
            )
            assert request.headers["content-type"] == "application/json"
            assert request.fields == {
                "from": OURS,
                "to": ["14145558101"],
                "text": "Your order shipped today",
                "deliveryReceipt": True,
            }
            receipt = partial(inteliquent.send_receipt, webhook(inteliquent_stack), request)
            assert await status_after(alice, receipt) == (message_id, "delivered", None)
            await alice.disconnect(interaction_id)

    run(scenario)


def test_an_undelivered_receipt_fails_the_reply_with_its_stat_and_err(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558102"

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, "Did this reach you?")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            [request] = inteliquent.received()
            receipt = partial(
                inteliquent.send_receipt,
                webhook(inteliquent_stack),
                request,
                stat="UNDELIV",
                err="005",
            )
            assert await status_after(alice, receipt) == (message_id, "failed", "UNDELIV err:005")
            await alice.disconnect(interaction_id)

    run(scenario)


def test_5xx_answers_are_retried_and_the_reply_goes_once(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558103"

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            inteliquent.fail_next(InteliquentServer.error(503, "Service Unavailable", "later"))
            inteliquent.fail_next(InteliquentServer.error(500, "Internal Error", "oops"))
            reply = await alice.send(interaction_id, "After two hiccups")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            requests = inteliquent.received()
            assert [r.status for r in requests] == [503, 500, 200]
            assert all(r.fields == requests[0].fields for r in requests)
            outbox = outbox_of(inteliquent_stack, message_id)
            assert (outbox.status, outbox.attempts) == ("sent", 2)  # both waits were committed
            assert "500" in outbox.last_error
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_4xx_refusal_fails_the_reply_with_inteliquents_reason_and_is_not_retried(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558104"

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            inteliquent.fail_next(
                InteliquentServer.error(400, "Invalid to number", "14145558104 is a landline")
            )
            reply = await alice.send(interaction_id, "Can you read this?")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "failed", "Invalid to number")
            outbox = outbox_of(inteliquent_stack, message_id)
            assert (outbox.status, outbox.last_error, outbox.attempts) == (
                "failed",
                "Invalid to number",
                1,
            )
            # the next reply is the next request: the refused one was not tried again
            await alice.send(interaction_id, "Or this?")
            assert (await next_status(alice))[1] == "sent"
            assert [(r.status, r.fields["text"]) for r in inteliquent.received()] == [
                (400, "Can you read this?"),
                (200, "Or this?"),
            ]
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_long_reply_is_published_as_the_parts_the_account_allows(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    """`max_parts: 3`: a reply of three GSM parts goes as three texts of 153 characters at
    most, and is delivered once every part is; one of four parts is refused before anything
    is sent."""
    phone = "+14145558105"
    configure(inteliquent_stack, inteliquent, max_parts=3)
    text = LONG[:400]

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, text)
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            *first, last = requests = inteliquent.received()
            assert [r.fields["text"] for r in requests] == [text[:153], text[153:306], text[306:]]
            assert {(r.fields["from"], tuple(r.fields["to"])) for r in requests} == {
                (OURS, ("14145558105",))
            }
            for request in first:
                answer = await asyncio.to_thread(
                    inteliquent.send_receipt, webhook(inteliquent_stack), request
                )
                assert answer.status_code == 200, answer.text
            [message] = inteliquent_stack.rows(
                "SELECT status FROM message WHERE id = :m", m=message_id
            )
            assert message.status == "sent"  # a part is not delivered yet
            receipt = partial(inteliquent.send_receipt, webhook(inteliquent_stack), last)
            assert await status_after(alice, receipt) == (message_id, "delivered", None)
            with pytest.raises(CommandFailed) as refused:
                await alice.send(interaction_id, LONG[:460])
            assert refused.value.code == "text_too_long"
            assert len(inteliquent.received()) == 3
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_long_reply_is_truncated_when_the_account_says_so(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558106"
    configure(inteliquent_stack, inteliquent, long_text="truncate")

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, LONG)
            assert reply["message"]["body"] == LONG[:160]
            assert (await next_status(alice))[1] == "sent"
            [request] = inteliquent.received()
            assert request.fields["text"] == LONG[:160]
            await alice.disconnect(interaction_id)

    run(scenario)


def test_replies_sent_at_once_reach_inteliquent_at_the_accounts_rate(
    inteliquent_stack: Stack, inteliquent: InteliquentServer
) -> None:
    phone = "+14145558107"
    configure(inteliquent_stack, inteliquent, send_rate_per_s=RATE)
    texts = [f"Reply number {n}" for n in range(1, 5)]

    async def scenario() -> None:
        async with AgentSockets(inteliquent_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(inteliquent_stack, alice)
            interaction_id = await take_a_text(inteliquent_stack, alice, text_from(phone))
            await asyncio.gather(*(alice.send(interaction_id, text) for text in texts))
            for _ in texts:
                assert (await next_status(alice))[1] == "sent"
            requests = inteliquent.received()
            assert sorted(r.fields["text"] for r in requests) == texts
            gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(requests)]
            assert min(gaps) >= 0.9 / RATE, gaps
            await alice.disconnect(interaction_id)

    run(scenario)
