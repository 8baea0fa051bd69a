"""Replies through a real broker's wire format, end to end: the organisation's Twilio account
sends to a small HTTP server speaking Twilio's Messages API (tests/broker_servers/twilio.py),
which answers as Twilio would and posts signed status callbacks back to Parley.

Shows: the reply reaches the broker as Twilio wants it and its status callback reaches the
agent; a 503 is retried (the wait committed) and the reply goes once it passes; Twilio's 21610
fails the reply and opts the number out, so the next reply is refused."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from functools import partial

import httpx2
import pytest

from parley_client import CommandFailed
from server.adapters.config_document import SendingSpec
from tests.broker_servers.base import Answer
from tests.broker_servers.twilio import TwilioServer
from tests.end_to_end.agents import (
    AgentSockets,
    make_available,
    next_of,
    open_count,
    reset_floor,
    run,
    sending_stack,
    take_a_text,
)
from tests.end_to_end.brokers import configure_sending, twilio_text
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME

UNSUBSCRIBED = "+14145558003"


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer(
        account_sid=ACME.twilio_sid,
        auth_token=ACME.twilio_token,
        numbers=[ACME.twilio_number],
        unsubscribed=[UNSUBSCRIBED],
    ) as server:
        yield server


@pytest.fixture(scope="module")
def twilio_stack(tmp_path_factory: pytest.TempPathFactory, twilio: TwilioServer) -> Iterator[Stack]:
    """A server whose ACME Twilio account sends to `twilio`; retries wait 50 ms, not 2 s."""
    with sending_stack(tmp_path_factory.mktemp("twilio")) as running:
        configure_sending(running, "twilio", SendingSpec(api_url=twilio.api_url, timeout_s=5))
        yield running


@pytest.fixture(autouse=True)
def clean(twilio_stack: Stack, twilio: TwilioServer) -> Iterator[None]:
    twilio.reset()
    yield
    if open_count(twilio_stack):
        reset_floor(twilio_stack)


def text_from(phone: str) -> Callable[[httpx2.Client], httpx2.Response]:
    """A text from `phone` to ACME's Twilio number, for `take_a_text`."""
    return partial(twilio_text, org=ACME, message_id=f"SM-in-{phone}", sender=phone, text="Hi")


def test_a_reply_goes_through_twilio_and_its_status_callback_reaches_the_agent(
    twilio_stack: Stack, twilio: TwilioServer
) -> None:
    phone = "+14145558001"

    async def scenario() -> None:
        async with AgentSockets(twilio_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(twilio_stack, alice)
            interaction_id = await take_a_text(twilio_stack, alice, text_from(phone))
            await alice.send(interaction_id, "Your order shipped today")
            sent = await next_of(alice, "message_status")
            [request] = await asyncio.to_thread(twilio.wait_for, 1)
            assert (request.fields["To"], request.fields["From"], request.fields["Body"]) == (
                [phone],
                [ACME.twilio_number],
                ["Your order shipped today"],
            )
            assert request.fields["StatusCallback"] == [
                f"{twilio_stack.server.base_url}/webhooks/twilio/{ACME.account('twilio')}/status"
            ]
            assert sent.data["status"] == "sent"
            answer = await asyncio.to_thread(twilio.send_status_callback, request, "delivered")
            assert answer.status_code == 200, answer.text
            delivered = await next_of(alice, "message_status")
            assert (delivered.data["message_id"], delivered.data["status"]) == (
                sent.data["message_id"],
                "delivered",
            )
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_503_is_retried_and_the_reply_goes_once(
    twilio_stack: Stack, twilio: TwilioServer
) -> None:
    phone = "+14145558002"

    async def scenario() -> None:
        async with AgentSockets(twilio_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(twilio_stack, alice)
            interaction_id = await take_a_text(twilio_stack, alice, text_from(phone))
            twilio.fail_next(Answer.json(503, {"code": 20500, "message": "Internal error"}))
            reply = await alice.send(interaction_id, "After a hiccup")
            sent = await next_of(alice, "message_status")
            assert sent.data["status"] == "sent"
            requests = twilio.received()
            assert [r.status for r in requests] == [503, 201]
            [outbox] = twilio_stack.rows(
                "SELECT status, attempts, last_error FROM outbox WHERE message_id = :m",
                m=reply["message"]["id"],
            )
            assert (outbox.status, outbox.attempts) == ("sent", 1)
            assert "503" in outbox.last_error
            await alice.disconnect(interaction_id)

    run(scenario)


def test_twilios_21610_fails_the_reply_and_opts_the_number_out(
    twilio_stack: Stack, twilio: TwilioServer
) -> None:
    async def scenario() -> None:
        async with AgentSockets(twilio_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(twilio_stack, alice)
            interaction_id = await take_a_text(twilio_stack, alice, text_from(UNSUBSCRIBED))
            await alice.send(interaction_id, "Are you there?")
            failed = await next_of(alice, "message_status")
            assert (failed.data["status"], failed.data["reason"]) == ("failed", "21610")
            [consent] = twilio_stack.rows(
                "SELECT state, scope FROM consent WHERE remote_number = :p", p=UNSUBSCRIBED
            )
            assert (consent.state, consent.scope) == ("opted_out", ACME.twilio_number)
            with pytest.raises(CommandFailed) as refused:
                await alice.send(interaction_id, "Hello?")
            assert refused.value.code == "opted_out"
            assert len(twilio.received()) == 1  # the refused reply never reached the broker
            await alice.disconnect(interaction_id)

    run(scenario)


def test_a_receipt_after_a_restart_still_moves_the_message(
    twilio_stack: Stack, twilio: TwilioServer
) -> None:
    """The messages waiting for their fate are loaded back at start: a status callback that
    comes after a restart still makes the reply delivered."""
    phone = "+14145558005"
    sent: list[int] = []

    async def scenario() -> None:
        async with AgentSockets(twilio_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(twilio_stack, alice)
            interaction_id = await take_a_text(twilio_stack, alice, text_from(phone))
            reply = await alice.send(interaction_id, "Before the restart")
            assert (await next_of(alice, "message_status")).data["status"] == "sent"
            sent.append(int(reply["message"]["id"]))

    run(scenario)
    [message_id] = sent
    twilio_stack.server.stop()
    twilio_stack.server.start(same_port=True)
    [request] = twilio.received()
    answer = twilio.send_status_callback(request, "delivered")
    assert answer.status_code == 200, answer.text
    [message] = twilio_stack.rows("SELECT status FROM message WHERE id = :m", m=message_id)
    assert message.status == "delivered"
    [part] = twilio_stack.rows(
        "SELECT status FROM outbound_part WHERE message_id = :m", m=message_id
    )
    assert part.status == "delivered"


def test_an_account_with_a_proxy_sends_through_it(
    twilio_stack: Stack, twilio: TwilioServer
) -> None:
    """The API's host does not resolve: the reply can only go through the proxy, which is the
    fake itself (it takes the absolute-form request a proxy is sent)."""
    phone = "+14145558004"
    configure_sending(
        twilio_stack,
        "twilio",
        SendingSpec(
            api_url="http://api.twilio.invalid",
            timeout_s=5,
            proxy_url=twilio.base_url,
            proxy_username="parley",
            proxy_password="proxy-secret",
        ),
    )

    async def scenario() -> None:
        async with AgentSockets(twilio_stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(twilio_stack, alice)
            interaction_id = await take_a_text(twilio_stack, alice, text_from(phone))
            await alice.send(interaction_id, "Through the proxy")
            sent = await next_of(alice, "message_status")
            assert sent.data["status"] == "sent"
            [request] = twilio.received()
            assert request.url.startswith("http://api.twilio.invalid/2010-04-01/Accounts/")
            assert (
                request.headers["proxy-authorization"]
                == "Basic " + base64.b64encode(b"parley:proxy-secret").decode()
            )
            await alice.disconnect(interaction_id)

    try:
        run(scenario)
    finally:
        configure_sending(twilio_stack, "twilio", SendingSpec(api_url=twilio.api_url, timeout_s=5))
