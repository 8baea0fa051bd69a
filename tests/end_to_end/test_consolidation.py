"""Consolidation, end to end (PureConnect's "Consolidate Messages"): with the account's
`consolidate` on, short replies waiting behind a send to the same phone go out as one SMS, each
message still has its own status, and the one receipt moves them all.

The fake Twilio holds the first reply's request, so the next ones are certainly waiting in the
outbox when it answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial

import pytest

from server.adapters.config_document import SendingSpec
from tests.broker_servers.base import Fault
from tests.broker_servers.twilio import TwilioServer
from tests.end_to_end.agents import (
    AgentSockets,
    make_available,
    next_status,
    outbox_of,
    run,
    sending_stack,
    status_after,
    take_a_text,
)
from tests.end_to_end.brokers import configure_sending, twilio_text
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioServer]:
    with TwilioServer(
        account_sid=ACME.twilio_sid, auth_token=ACME.twilio_token, numbers=[ACME.twilio_number]
    ) as server:
        yield server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, twilio: TwilioServer) -> Iterator[Stack]:
    with sending_stack(tmp_path_factory.mktemp("consolidation")) as running:
        sending = SendingSpec(api_url=twilio.api_url, timeout_s=5, consolidate=True)
        configure_sending(running, "twilio", sending)
        yield running


def test_short_replies_waiting_for_the_same_phone_go_as_one_text(
    stack: Stack, twilio: TwilioServer
) -> None:
    phone = "+14145558201"

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            text = partial(twilio_text, org=ACME, message_id="SM-c-1", sender=phone, text="Hi")
            interaction_id = await take_a_text(stack, alice, text)
            twilio.fail_next(Fault.held())
            first = await alice.send(interaction_id, "Hello, this is Alice.")
            await asyncio.to_thread(twilio.wait_for, 1)  # held at the broker
            second = await alice.send(interaction_id, "Your order left today.")
            third = await alice.send(interaction_id, "It arrives on Tuesday.")
            long = await alice.send(interaction_id, "x" * 150)  # does not fit with them
            twilio.release()
            requests = await asyncio.to_thread(twilio.wait_for, 3)
            assert [r.fields["Body"] for r in requests] == [
                ["Hello, this is Alice."],
                ["Your order left today.\nIt arrives on Tuesday."],
                ["x" * 150],
            ]
            ids = [int(reply["message"]["id"]) for reply in (first, second, third, long)]
            sent = {(await next_status(alice))[0] for _ in ids}
            assert sent == set(ids)
            for message_id in ids:  # each message keeps its own row, all sent
                assert outbox_of(stack, message_id).status == "sent"
            combined = requests[1]
            moved = {
                await status_after(
                    alice, partial(twilio.send_status_callback, combined, "delivered")
                ),
                await next_status(alice),
            }
            assert moved == {(ids[1], "delivered", None), (ids[2], "delivered", None)}
            await alice.disconnect(interaction_id)

    run(scenario)
