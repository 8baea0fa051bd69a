"""The sandbox's pushed updates (`WS /sandbox/phones/{phone}/updates`) and its numbers
(`GET /sandbox/numbers`), on the sandbox alone with a stand-in for Parley's webhook (the fixture
of test_sandbox.py): every watcher of a phone sees each status of a text, a refused text shows
failed, and a watcher that left is no longer fed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as open_websocket

from tests.adapters.sandbox_broker import test_sandbox
from tests.adapters.sandbox_broker.test_sandbox import (
    OTHERS,
    PHONE,
    SALES,
    SUPPORT,
    UNREACHABLE,
    WAIT_S,
    Sandbox,
)

sandbox = test_sandbox.sandbox  # the fixture: the sandbox with a stand-in for Parley


def updates(sandbox: Sandbox, phone: str) -> str:
    return f"{sandbox.url.replace('http', 'ws', 1)}/sandbox/phones/{phone}/updates"


async def frame(ws: ClientConnection) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
    return decoded


async def statuses(ws: ClientConnection, until: str) -> list[str]:
    seen = []
    while not seen or seen[-1] != until:
        seen.append((await frame(ws))["message"]["status"])
    return seen


def test_every_watcher_sees_each_status_of_a_text_for_the_phone(sandbox: Sandbox) -> None:
    async def scenario() -> None:
        async with (
            open_websocket(updates(sandbox, PHONE)) as first,
            open_websocket(updates(sandbox, "14155550123")) as second,  # the same phone
        ):
            assert await frame(first) == {"type": "messages", "messages": []}
            assert await frame(second) == {"type": "messages", "messages": []}
            sent = await asyncio.to_thread(sandbox.send, sandbox.text_for_phone("Your order"))
            assert sent.status_code == 202
            for ws in (first, second):
                assert await statuses(ws, "delivered") == ["accepted", "sent", "delivered"]
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while sandbox.broker.watched_phones:  # the server sees both sockets close
            assert asyncio.get_running_loop().time() < deadline, "still watched"
            await asyncio.sleep(0.01)

    asyncio.run(scenario())


def test_a_text_to_an_unreachable_phone_and_one_parley_refused_show_failed(
    sandbox: Sandbox,
) -> None:
    async def scenario() -> None:
        async with open_websocket(updates(sandbox, UNREACHABLE)) as ws:
            await frame(ws)
            body = {**sandbox.text_for_phone("Hello?"), "to": UNREACHABLE}
            assert (await asyncio.to_thread(sandbox.send, body)).status_code == 202
            assert await statuses(ws, "failed") == ["accepted", "sent", "failed"]

        sandbox.parley.answers.append(500)
        async with open_websocket(updates(sandbox, PHONE)) as ws:
            shown = await frame(ws)
            refused = await asyncio.to_thread(
                sandbox.phone_sends, PHONE, {"to": SUPPORT, "text": "Are you open?"}
            )
            assert refused.status_code == 502
            failed = (await frame(ws))["message"], (await frame(ws))["message"]
        assert [m["status"] for m in failed] == ["accepted", "failed"]
        assert failed[1]["reason"].startswith("Parley answered 500")
        assert shown == {"type": "messages", "messages": []}  # another phone's texts are not

    asyncio.run(scenario())


def test_the_numbers_are_every_sandbox_accounts_in_order(sandbox: Sandbox) -> None:
    listed = sandbox.http.get("/sandbox/numbers").json()["numbers"]
    assert [entry["number"] for entry in listed] == sorted([SUPPORT, SALES, OTHERS])
    assert all(entry["name"] == entry["number"] for entry in listed)
