"""Replies through Bandwidth Messaging v2, end to end: the organisation's Bandwidth account
sends to a small HTTP server speaking Bandwidth's messages API (tests/broker_servers/
bandwidth.py), which answers as Bandwidth would and posts the application's callbacks
(`message-delivered`, `message-failed`) to Parley's Bandwidth webhook with their Basic auth.

Shows: the reply is created as Bandwidth wants it (the API user's Basic auth, the account in
the path, E.164 numbers, the application, the idempotency key as `tag`) and its callback,
delivered or failed, reaches the agent; a 5xx is retried (the wait committed) and the reply goes
once it passes; a 4xx refusal fails the reply with Bandwidth's error type, for good; a long reply
goes as the parts the account's `sending:` settings say; the account's send rate holds on the
wire."""

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
from tests.broker_servers.bandwidth import BandwidthServer
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
from tests.end_to_end.brokers import bandwidth_text, configure_sending
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

ACCOUNT_ID = "9900123"
APPLICATION_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
API_USER = ("acme-bandwidth-api-user", "acme-bandwidth-api-password")
SENDING_CREDENTIALS = {
    "account_id": ACCOUNT_ID,
    "application_id": APPLICATION_ID,
    "api_username": API_USER[0],
    "api_password": API_USER[1],
}
WORDS = "".join(f"Line {n} of the return policy, read it before you ship. " for n in range(1, 12))
RATE = 10.0  # texts a second


@pytest.fixture(scope="module")
def bandwidth() -> Iterator[BandwidthServer]:
    with BandwidthServer(
        account_id=ACCOUNT_ID,
        application_id=APPLICATION_ID,
        username=API_USER[0],
        password=API_USER[1],
        numbers=[ACME.bandwidth_number],
        callback_auth=ACME.bandwidth_auth,
    ) as server:
        yield server


@pytest.fixture(scope="module")
def bandwidth_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with sending_stack(tmp_path_factory.mktemp("bandwidth")) as running:
        yield running


def configure(stack: Stack, bandwidth: BandwidthServer, **sending: Any) -> None:
    """ACME's Bandwidth account sends to `bandwidth` as its API user, with these `sending:`
    settings besides the address."""
    configure_sending(
        stack,
        "bandwidth",
        SendingSpec(api_url=bandwidth.api_url, timeout_s=5, **sending),
        credentials=SENDING_CREDENTIALS,
    )


@pytest.fixture(autouse=True)
def clean(bandwidth_stack: Stack, bandwidth: BandwidthServer) -> Iterator[None]:
    configure(bandwidth_stack, bandwidth)
    bandwidth.reset()
    yield
    if open_count(bandwidth_stack):
        reset_floor(bandwidth_stack)


def text_from(phone: str) -> Callable[[httpx2.Client], httpx2.Response]:
    """A text from `phone` to ACME's Bandwidth number, for `take_a_text`."""
    return partial(bandwidth_text, org=ACME, message_id=f"in-{phone}", sender=phone, text="Hi")


def callback_url(stack: Stack) -> str:
    """The callback URL of the Bandwidth application: Parley's webhook for the account."""
    return f"{stack.server.base_url}/webhooks/bandwidth/{ACME.account('bandwidth')}"


def test_a_reply_is_created_at_bandwidth_and_its_delivered_callback_reaches_the_agent(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558201"

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, "Your refund is on its way")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            [request] = bandwidth.received()
            assert (request.method, request.path, request.basic_auth(), request.status) == (
                "POST",
                f"/api/v2/users/{ACCOUNT_ID}/messages",
                API_USER,
                202,
            )
            assert request.headers["content-type"] == "application/json"
            assert request.fields == {
                "applicationId": APPLICATION_ID,
                "to": [phone],
                "from": ACME.bandwidth_number,
                "text": "Your refund is on its way",
                "tag": f"parley-{message_id}-0",
            }
            delivered = partial(bandwidth.send_callback, callback_url(bandwidth_stack), request)
            assert await status_after(alice, delivered) == (message_id, "delivered", None)
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_message_failed_callback_fails_the_reply_with_its_code_and_description(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558202"

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, "Are you still there?")
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            [request] = bandwidth.received()
            failed = partial(
                bandwidth.send_callback,
                callback_url(bandwidth_stack),
                request,
                kind="message-failed",
                error_code=4720,
                description="carrier-rejected",
            )
            assert await status_after(alice, failed) == (
                message_id,
                "failed",
                "4720 carrier-rejected",
            )
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_5xx_is_retried_and_the_reply_goes_once(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558203"

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            bandwidth.fail_next(
                BandwidthServer.error(503, "service-unavailable", "Please try again later")
            )
            reply = await alice.send(interaction_id, "Sorry for the wait")
            assert (await next_status(alice))[1] == "sent"
            first, second = bandwidth.received()
            assert (first.status, second.status) == (503, 202)
            assert first.fields["tag"] == second.fields["tag"]  # the same text, tried again
            outbox = outbox_of(bandwidth_stack, reply["message"]["id"])
            assert (outbox.status, outbox.attempts) == ("sent", 1)  # the wait was committed
            assert "503" in outbox.last_error
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_4xx_refusal_fails_the_reply_with_bandwidths_error_type_and_is_not_retried(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558204"

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            bandwidth.fail_next(
                BandwidthServer.error(
                    400,
                    "request-validation",
                    "Your request could not be accepted.",
                    field_errors=[("to", f"'{phone}' is not a messaging-enabled number")],
                )
            )
            refused = await alice.send(interaction_id, "First try")
            refused_id = refused["message"]["id"]
            assert await next_status(alice) == (refused_id, "failed", "request-validation")
            outbox = outbox_of(bandwidth_stack, refused_id)
            assert (outbox.status, outbox.last_error, outbox.attempts) == (
                "failed",
                "request-validation",
                1,
            )
            # the next reply is the next request: the refused one was not tried again
            await alice.send(interaction_id, "Second try")
            assert (await next_status(alice))[1] == "sent"
            assert [(r.status, r.fields["text"]) for r in bandwidth.received()] == [
                (400, "First try"),
                (202, "Second try"),
            ]
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_long_reply_is_created_as_the_parts_the_account_allows(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    """`max_parts: 2`: a reply of two GSM parts goes as two messages of 153 characters at most,
    each tagged with its part, and is delivered once both are; one of three parts is refused
    before anything is sent."""
    phone = "+14145558205"
    configure(bandwidth_stack, bandwidth, max_parts=2)
    text = WORDS[:300]

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, text)
            message_id = reply["message"]["id"]
            assert await next_status(alice) == (message_id, "sent", None)
            head, tail = bandwidth.received()
            assert [(part.fields["text"], part.fields["tag"]) for part in (head, tail)] == [
                (text[:153], f"parley-{message_id}-0"),
                (text[153:], f"parley-{message_id}-1"),
            ]
            answer = await asyncio.to_thread(
                bandwidth.send_callback, callback_url(bandwidth_stack), head
            )
            assert answer.status_code == 200, answer.text
            [part] = bandwidth_stack.rows(
                "SELECT status FROM outbound_part WHERE message_id = :m AND part_index = 0",
                m=message_id,
            )
            [message] = bandwidth_stack.rows(
                "SELECT status FROM message WHERE id = :m", m=message_id
            )
            assert (part.status, message.status) == ("delivered", "sent")
            delivered = partial(bandwidth.send_callback, callback_url(bandwidth_stack), tail)
            assert await status_after(alice, delivered) == (message_id, "delivered", None)
            with pytest.raises(CommandFailed) as too_long:
                await alice.send(interaction_id, WORDS[:307])
            assert too_long.value.code == "text_too_long"
            assert len(bandwidth.received()) == 2
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_long_reply_is_cut_to_one_message_when_the_account_truncates(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558206"
    configure(bandwidth_stack, bandwidth, long_text="truncate")

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, WORDS)
            assert (await next_status(alice))[1] == "sent"
            [message] = bandwidth.received()
            assert message.fields["text"] == reply["message"]["body"] == WORDS[:160]
            await alice.disconnect(interaction_id)

    run(scenario)


def test_replies_sent_at_once_reach_bandwidth_no_faster_than_the_accounts_rate(
    bandwidth_stack: Stack, bandwidth: BandwidthServer
) -> None:
    phone = "+14145558207"
    configure(bandwidth_stack, bandwidth, send_rate_per_s=RATE)
    replies = ["One", "Two", "Three", "Four", "Five"]

    async def scenario() -> None:
        async with AgentSockets(bandwidth_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(bandwidth_stack, alice)
            interaction_id = await take_a_text(bandwidth_stack, alice, text_from(phone))
            await asyncio.gather(*(alice.send(interaction_id, reply) for reply in replies))
            statuses = [(await next_status(alice))[1] for _ in replies]
            assert statuses == ["sent"] * len(replies)
            messages = bandwidth.received()
            assert sorted(m.fields["text"] for m in messages) == sorted(replies)
            times = [m.received_at for m in messages]
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(gap >= 0.9 / RATE for gap in gaps), gaps
            await alice.disconnect(interaction_id)

    run(scenario)
