"""A customer's earlier interactions (`GET /api/interactions/{id}/history` and `.../{earlier}`):
the agent in front of a customer sees the customer's other interactions, whoever handled them,
with their transcripts; an agent may not use an interaction that was never theirs as a key, nor
read another customer's interaction through theirs; another organisation sees nothing."""

from __future__ import annotations

from typing import Any

from tests.end_to_end.agents import (
    AgentSockets,
    agent_stack_fixture,  # noqa: F401  (the fixture agent_stack)
    as_user,
    leaves_the_floor_clean,  # noqa: F401  (autouse)
    make_available,
    next_of,
    run,
    text_from_phone,
)
from tests.end_to_end.conftest import Stack
from tests.end_to_end.openapi_check import check, served_document
from tests.end_to_end.organisations import ACME, GLOBEX


def test_an_agent_reads_the_customers_earlier_interactions(agent_stack: Stack) -> None:
    stack = agent_stack
    phone, other_phone = "+14145557301", "+14145557302"
    ids: dict[str, int] = {}

    async def scenario() -> None:
        async with AgentSockets(stack) as sockets:
            alice = await sockets.connect(ACME, "alice")
            bob = await sockets.connect(ACME, "bob")
            # bob alone is available: he answers the customer's first text, to Sales
            await make_available(stack, bob)
            await text_from_phone(stack, phone, ACME.support, "First time here")
            offer = await next_of(bob, "offer")
            ids["bobs"] = int(offer.data["interaction_id"])
            await bob.accept(ids["bobs"])
            await bob.send(ids["bobs"], "Welcome!")
            await bob.disconnect(ids["bobs"])
            # another customer, also bob's
            await text_from_phone(stack, other_phone, ACME.support, "Someone else")
            offer = await next_of(bob, "offer")
            ids["other"] = int(offer.data["interaction_id"])
            await bob.accept(ids["other"])
            await bob.disconnect(ids["other"])
            await bob.set_state("away", reason="done")
            # the customer comes back; alice takes it
            await make_available(stack, alice)
            await text_from_phone(stack, phone, ACME.support, "Me again")
            offer = await next_of(alice, "offer")
            ids["alices"] = int(offer.data["interaction_id"])
            await alice.accept(ids["alices"])
            await alice.disconnect(ids["alices"])

    run(scenario)
    document = served_document(stack)
    with as_user(stack, "alice") as alice:
        answer = alice.get(f"/api/interactions/{ids['alices']}/history")
        assert answer.status_code == 200, answer.text
        history: dict[str, Any] = answer.json()
        check(document, "CustomerHistory", history)
        assert history["remote_number"] == phone
        [earlier] = history["interactions"]  # not alice's own, not the other customer's
        assert earlier["id"] == ids["bobs"]
        assert earlier["agent"] == {
            "id": earlier["agent"]["id"],
            "username": "bob",
            "display_name": "Bob",
        }
        assert earlier["queue"]["name"] == "Support"
        assert earlier["state"] == "disconnected"
        assert earlier["closed_reason"] == "agent"
        assert earlier["message_count"] == 2
        assert earlier["closed_at"] is not None

        # its transcript, on demand, through alice's interaction
        transcript = alice.get(f"/api/interactions/{ids['alices']}/history/{ids['bobs']}")
        assert transcript.status_code == 200, transcript.text
        check(document, "InteractionWithMessages", transcript.json())
        assert [m["body"] for m in transcript.json()["messages"]] == ["First time here", "Welcome!"]
        # ... which alice may not read directly: it was never hers
        assert alice.get(f"/api/interactions/{ids['bobs']}").status_code == 404

        # refusals: a key that was never alice's, another customer's interaction through hers
        for path in (
            f"/api/interactions/{ids['other']}/history",
            f"/api/interactions/{ids['bobs']}/history",
            f"/api/interactions/{ids['alices']}/history/{ids['other']}",
            f"/api/interactions/{ids['bobs']}/history/{ids['alices']}",
            "/api/interactions/999999/history",
        ):
            refused = alice.get(path)
            assert refused.status_code == 404, path
            check(document, "Error", refused.json())
            assert refused.json()["error"] == "not_found"

    with as_user(stack, "bob") as bob:  # bob's key works for him: alice's interaction shows
        shown = bob.get(f"/api/interactions/{ids['bobs']}/history").json()
        assert [entry["id"] for entry in shown["interactions"]] == [ids["alices"]]
    with as_user(stack, "carol") as carol:  # a supervisor may look at any customer
        shown = carol.get(f"/api/interactions/{ids['other']}/history").json()
        assert shown["interactions"] == []
        assert carol.get(f"/api/interactions/{ids['alices']}/history").status_code == 200
    with stack.client(GLOBEX) as globex:  # another organisation: nothing there
        assert globex.get(f"/api/interactions/{ids['alices']}/history").status_code == 404
        path = f"/api/interactions/{ids['alices']}/history/{ids['bobs']}"
        assert globex.get(path).status_code == 404
    with stack.client() as nobody:
        assert nobody.get(f"/api/interactions/{ids['alices']}/history").status_code == 401
