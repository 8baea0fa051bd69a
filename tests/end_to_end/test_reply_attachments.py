"""Files in agents' texts, end to end: an agent uploads a file (`POST /api/attachments`) and
sends its id with `send` or `start_conversation`. From a number that sends MMS the phone gets the
file as media; from one that does not, the text carries a link. Either way the address is one
Parley serves, and fetching it gives the uploaded bytes. An id that is unknown, another
organisation's or expired is refused (`bad_attachment`) and nothing is sent.

Alice's direct number sends MMS; the Support number's sandbox account does not
(tests/end_to_end/organisations.py)."""

from __future__ import annotations

import secrets

import httpx2
import pytest

from parley_client import CommandFailed
from tests.end_to_end.agents import (
    AgentSockets,
    advance,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    make_available,
    next_of,
    phone_messages,
    run,
    text_from_phone,
    token_for,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + secrets.token_bytes(1500)
PDF = b"%PDF-1.7\n" + secrets.token_bytes(800)


def upload(stack: Stack, org: Organisation, name: str, content: bytes, kind: str) -> dict[str, str]:
    """Upload a file as alice of `org`; returns the attachment's JSON (id, url...)."""
    token = token_for(stack, org, "alice")
    answer = httpx2.post(
        f"{stack.server.base_url}/api/attachments",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": (name, content, kind)},
    )
    assert answer.status_code == 201, answer.text
    body: dict[str, str] = answer.json()
    return body


def fetch(url: str) -> httpx2.Response:
    return httpx2.get(url)


def test_from_an_mms_number_the_file_goes_as_media(agent_stack: Stack) -> None:
    stack = agent_stack
    phone = "+14145557101"
    photo = upload(stack, ACME, "receipt.png", PNG, "image/png")

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            started = await alice.start_conversation(
                phone, "Your receipt", attachments=[int(photo["id"])]
            )
            assert started["message"]["from"] == ACME.direct
            statuses = [(await next_of(alice, "message_status")).data["status"] for _ in "ab"]
            assert statuses == ["sent", "delivered"]
            [shown] = await phone_messages(stack, phone)
            assert shown["text"] == "Your receipt"
            assert shown["media"] == [photo["url"]]
            await alice.disconnect(started["interaction_id"])

    run(scenario)
    served = fetch(photo["url"])
    assert (served.status_code, served.content) == (200, PNG)


def test_from_a_number_without_mms_the_text_carries_links(agent_stack: Stack) -> None:
    stack = agent_stack
    phone = "+14145557102"
    photo = upload(stack, ACME, "map.png", PNG, "image/png")
    leaflet = upload(stack, ACME, "terms.pdf", PDF, "application/pdf")

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Where are you?")
            offer = await next_of(alice, "offer")
            interaction_id = int(offer.data["interaction_id"])
            await alice.accept(interaction_id)
            ids = [int(photo["id"]), int(leaflet["id"])]
            await alice.send(interaction_id, "Here is the map and our terms", attachments=ids)
            assert (await next_of(alice, "message_status")).data["status"] == "sent"
            # a file alone, no words
            await alice.send(interaction_id, "", attachments=[int(photo["id"])])
            assert (await next_of(alice, "message_status")).data["status"] == "sent"
            shown = [m for m in await phone_messages(stack, phone) if m["direction"] == "to_phone"]
            assert all(m["media"] == [] for m in shown)
            # the first text's links make it longer than one SMS: its parts re-join
            *first_parts, second = (m["text"] for m in shown)
            first = "".join(first_parts)
            assert first.startswith("Here is the map and our terms")
            assert photo["url"] in first and leaflet["url"] in first
            assert second.strip() == photo["url"]
            await alice.disconnect(interaction_id)

    run(scenario)
    assert fetch(leaflet["url"]).content == PDF


def test_an_attachment_that_is_not_ours_or_is_gone_is_refused(agent_stack: Stack) -> None:
    stack = agent_stack
    phone = "+14145557103"
    theirs = upload(stack, GLOBEX, "theirs.png", PNG, "image/png")
    ours = upload(stack, ACME, "ours.png", PNG, "image/png")

    async def scenario() -> None:
        async with AgentSockets(stack) as floor:
            alice = await floor.connect(ACME, "alice")
            refusals = []
            for ids in ([int(theirs["id"])], [10**9]):
                with pytest.raises(CommandFailed) as refused:
                    await alice.start_conversation(phone, "Look", attachments=ids)
                refusals.append(refused.value.code)
            assert refusals == ["bad_attachment"] * 2
            await advance(stack, 8 * 86400)  # past the attachments' time to live (7 days)
            with pytest.raises(CommandFailed) as expired:
                await alice.start_conversation(phone, "Look", attachments=[int(ours["id"])])
            assert (expired.value.code, "expired" in expired.value.detail) == (
                "bad_attachment",
                True,
            )

    run(scenario)
    # nothing was sent and no conversation was opened
    assert stack.rows("SELECT id FROM interaction WHERE remote_number = :p", p=phone) == []
