"""The outbound crash test: the server is killed (SIGKILL) while replies wait in the outbox and a
send is in flight at the broker; after a restart on the same store every reply the agents were
acknowledged for reaches the broker, and only the sends in flight at the kill went twice
(docs/architecture.md, Outbound: delivery is at-least-once).

The scene, once for the module (the fixture `crash`): two organisations, each with its Twilio
account sending to a fake Twilio of its own (tests/broker_servers/twilio.py); two agents each,
each holding two interactions that came in through the Twilio webhook.

1. The agents send a first batch of replies (some of three parts); all of them go.
2. Each fake is told to take the next request and hold the one after (`Fault.held()`); one agent
   per organisation sends a three-part reply, whose second part is then in flight: the account's
   worker waits for Twilio's answer, so nothing else of that account goes.
3. The agents send many more replies, all acknowledged: they wait in the outbox.
4. The preconditions are checked (rows pending, the parts sent, one request held per fake), the
   server is killed, started again on the same port and store, and the fakes answer the held
   requests (to connections that died with the server).
5. The test waits (bounded, polling) until every part of every acknowledged reply has reached a
   fake and no outbox row is pending.

Twilio takes no idempotency key (server/adapters/brokers/twilio_client.py), so the resent part
is a second Message at Twilio: the duplicates are counted, and must be the sends held at the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from server.adapters.config_document import SendingSpec
from tests.broker_servers.base import Fault, Received
from tests.broker_servers.twilio import TwilioServer
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import AgentSockets, RecordingClient, run, take_a_text, wait_until
from tests.end_to_end.brokers import configure_sending, twilio_text
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation

ORGANISATIONS = (ACME, GLOBEX)
AGENTS = ("alice", "bob")
TEXTS_PER_AGENT = 2  # the SMS capacity of their routing profiles
BEFORE_HOLD = 2  # replies per interaction that go before the hold
WHILE_HELD = 6  # replies per interaction acknowledged while a send is held
LONG_EVERY = 3  # replies 1, 4, 7... to a customer are three SMS parts long
GSM_SINGLE, GSM_PART = 160, 153  # septets of a single SMS, and of a part of a long one
DRAIN_S = 20 * TIMEOUT_SCALE  # the bound on the wait for everything to arrive after the restart
IDEMPOTENCY_HEADERS = ("i-twilio-idempotency-token", "idempotency-key")

Arrival = tuple[str, str]  # (To, Body) of a text the broker took


@dataclass(frozen=True)
class Reply:
    """A reply an agent was acknowledged for, and the SMS parts it must reach the broker as."""

    org: Organisation
    message_id: int
    recipient: str
    parts: tuple[str, ...]


@dataclass(frozen=True)
class Crash:
    """What happened: the replies acknowledged, the requests held at the kill, the fakes."""

    stack: Stack
    fakes: dict[str, TwilioServer]  # by organisation slug
    replies: list[Reply]
    held: list[Received]  # the requests in flight at the kill, one per account
    held_message_ids: list[int]
    pending_at_kill: int  # outbox rows not sent when the server was killed
    received_at_kill: dict[str, int]  # requests each fake had received then

    def arrivals(self) -> Counter[Arrival]:
        """How many times the broker took each (To, Body), across the fakes."""
        return Counter(
            (_field(request, "To"), _field(request, "Body"))
            for fake in self.fakes.values()
            for request in fake.received()
            if request.status == 201
        )

    def expected(self) -> list[Arrival]:
        return [(reply.recipient, part) for reply in self.replies for part in reply.parts]


# -- the scene -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crash]:
    with contextlib.ExitStack() as cleanup:
        fakes = {
            org.slug: cleanup.enter_context(
                TwilioServer(
                    account_sid=org.twilio_sid,
                    auth_token=org.twilio_token,
                    numbers=[org.twilio_number],
                )
            )
            for org in ORGANISATIONS
        }
        stack = start_stack(
            tmp_path_factory.mktemp("crash"),
            env={"PARLEY_CLOCK": "manual", "PARLEY_SEND_RETRY_BASE_S": "0.05"},
        )
        cleanup.callback(stack.engine.dispose)
        cleanup.callback(stack.server.stop)
        for org in ORGANISATIONS:
            # The held send must still be waiting for its answer at the kill: a long timeout.
            sending = SendingSpec(api_url=fakes[org.slug].api_url, timeout_s=60)
            configure_sending(stack, "twilio", sending, org=org)
        found: list[Crash] = []

        async def scenario() -> None:
            found.append(await _crash(stack, fakes))

        run(scenario)
        yield found[0]


@dataclass(frozen=True)
class _Conversation:
    org: Organisation
    agent: RecordingClient
    interaction_id: int
    phone: str


async def _crash(stack: Stack, fakes: dict[str, TwilioServer]) -> Crash:
    replies: list[Reply] = []
    async with AgentSockets(stack) as floor:
        conversations = await _take_texts(stack, floor)

        async def reply(conversation: _Conversation, number: int, *, long: bool) -> None:
            tag = f"{conversation.org.slug}-i{conversation.interaction_id}-r{number}"
            text = _long_text(tag) if long else f"{tag}: your order {number} has shipped"
            answer = await conversation.agent.send(conversation.interaction_id, text)
            parts = _gsm_parts(text)
            assert len(parts) == (3 if long else 1), parts
            replies.append(
                Reply(
                    org=conversation.org,
                    message_id=int(answer["message"]["id"]),
                    recipient=conversation.phone,
                    parts=parts,
                )
            )

        async def replies_to(conversation: _Conversation, numbers: range) -> None:
            for number in numbers:
                await reply(conversation, number, long=number % LONG_EVERY == 1)

        # 1. A first batch goes through.
        await asyncio.gather(*(replies_to(c, range(BEFORE_HOLD)) for c in conversations))
        await _until(lambda: _all_arrived(replies, fakes), what="the first batch at the broker")
        await _until(lambda: _none_pending(stack), what="the first batch marked sent")
        sent_before = len(replies)

        # 2. Per account: the first part of a long reply goes, the second is held in flight.
        for fake in fakes.values():
            fake.fail_next(Fault())
            fake.fail_next(Fault.held())
        firsts = [next(c for c in conversations if c.org is org) for org in ORGANISATIONS]
        await asyncio.gather(*(reply(c, BEFORE_HOLD, long=True) for c in firsts))
        held_replies = sorted(replies[sent_before:], key=lambda r: ORGANISATIONS.index(r.org))
        await _until(
            lambda: _sync(all(fake.holding() == 1 for fake in fakes.values())),
            what="a request held by each fake",
        )

        # 3. Many more replies, acknowledged while the sends are held.
        later = range(BEFORE_HOLD + 1, BEFORE_HOLD + 1 + WHILE_HELD)
        await asyncio.gather(*(replies_to(c, later) for c in conversations))

        # 4. The preconditions, then the kill.
        pending = stack.rows("SELECT message_id, parts_sent FROM outbox WHERE status = 'pending'")
        held = [fake.received()[-1] for fake in fakes.values()]
        received_at_kill = {slug: len(fake.received()) for slug, fake in fakes.items()}
        assert [fake.holding() for fake in fakes.values()] == [1] * len(fakes)
        assert [(_field(r, "To"), _field(r, "Body")) for r in held] == [
            (reply.recipient, reply.parts[1]) for reply in held_replies
        ], "the request held is not the second part of the long reply"
        assert len(pending) == len(replies) - sent_before == len(conversations) * WHILE_HELD + 2
        assert sorted((r.message_id, r.parts_sent) for r in pending if r.parts_sent) == sorted(
            (reply.message_id, 1) for reply in held_replies
        ), "the rows in flight should have exactly their first part sent"
        for org in ORGANISATIONS:
            parts_before = sum(len(r.parts) for r in replies[:sent_before] if r.org is org)
            assert received_at_kill[org.slug] == parts_before + 2  # + the long reply's two
        stack.server.kill()

    # 5. Restart, let the held answers go (to dead connections), wait for everything.
    await asyncio.to_thread(stack.server.start, same_port=True)
    for fake in fakes.values():
        fake.release()
    with contextlib.suppress(AssertionError):  # the tests say what is missing
        await _until(
            lambda: _drained(replies, fakes, stack),
            what="every reply at the broker and every row sent",
            limit_s=DRAIN_S,
        )
    return Crash(
        stack=stack,
        fakes=fakes,
        replies=replies,
        held=held,
        held_message_ids=[reply.message_id for reply in held_replies],
        pending_at_kill=len(pending),
        received_at_kill=received_at_kill,
    )


async def _take_texts(stack: Stack, floor: AgentSockets) -> list[_Conversation]:
    """Texts through each organisation's Twilio webhook, offered to its agents and accepted: an
    agent becomes available only once the one before it is full, so it gets the next two."""
    conversations = []
    for o, org in enumerate(ORGANISATIONS):
        for a, username in enumerate(AGENTS):
            agent = await floor.connect(org, username)
            await agent.set_state("available")
            for k in range(TEXTS_PER_AGENT):
                phone = f"+14145559{o}{a}{k}"
                text = functools.partial(
                    twilio_text, org=org, message_id=f"SM-{phone}", sender=phone, text="Hi"
                )
                interaction_id = await take_a_text(stack, agent, text)
                conversations.append(_Conversation(org, agent, interaction_id, phone))
    return conversations


def _long_text(tag: str) -> str:
    """About 400 GSM-7 characters, the tag in every 40 or so (so each part names its reply)."""
    return " ".join(f"{tag} line {line:02d} of a long answer." for line in range(20))[:400]


def _gsm_parts(text: str) -> tuple[str, ...]:
    """The SMS parts of a GSM-7 text without extension characters, as 3GPP cuts them."""
    if len(text) <= GSM_SINGLE:
        return (text,)
    return tuple(text[i : i + GSM_PART] for i in range(0, len(text), GSM_PART))


def _field(request: Received, name: str) -> str:
    [value] = request.fields[name]
    return str(value)


async def _sync(value: bool) -> bool:
    return value


async def _drained(replies: list[Reply], fakes: dict[str, TwilioServer], stack: Stack) -> bool:
    return await _all_arrived(replies, fakes) and await _none_pending(stack)


async def _all_arrived(replies: list[Reply], fakes: dict[str, TwilioServer]) -> bool:
    arrived = {
        (_field(request, "To"), _field(request, "Body"))
        for fake in fakes.values()
        for request in fake.received()
        if request.status == 201
    }
    return all((r.recipient, part) in arrived for r in replies for part in r.parts)


async def _none_pending(stack: Stack) -> bool:
    rows = await asyncio.to_thread(
        stack.rows, "SELECT count(*) AS n FROM outbox WHERE status = 'pending'"
    )
    return int(rows[0].n) == 0


async def _until(check: Callable[[], Awaitable[bool]], *, what: str, limit_s: float = 0) -> None:
    """Poll `check` until it is true; AssertionError after `limit_s` (or agents.WAIT)."""
    if not limit_s:
        await wait_until(check, what=what)
        return
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _outbox(stack: Stack) -> dict[int, tuple[str, int, int]]:
    """(status, parts sent, parts) of every outbox row, by message id."""
    return {
        int(row.message_id): (str(row.status), int(row.parts_sent), len(_json(row.parts)))
        for row in stack.rows("SELECT message_id, status, parts_sent, parts FROM outbox")
    }


def _json(value: object) -> list[object]:
    loaded = json.loads(value) if isinstance(value, str) else value
    assert isinstance(loaded, list)
    return loaded


def _idempotency_key(request: Received) -> str | None:
    return next((request.headers[h] for h in IDEMPOTENCY_HEADERS if h in request.headers), None)


# -- what must hold ----------------------------------------------------------------------------


def test_no_acknowledged_reply_is_lost(crash: Crash) -> None:
    expected = crash.expected()
    assert len(set(expected)) == len(expected), "two parts share a recipient and body"
    arrivals = crash.arrivals()
    missing = [arrival for arrival in expected if arrival not in arrivals]
    assert missing == [], f"{len(missing)} of {len(expected)} parts never reached the broker"


def test_only_the_sends_in_flight_at_the_kill_went_twice(crash: Crash) -> None:
    statuses = {r.status for fake in crash.fakes.values() for r in fake.received()}
    assert statuses == {201}, "the fakes refused or dropped a request"
    twice = {arrival: n for arrival, n in crash.arrivals().items() if n > 1}
    in_flight = {(_field(r, "To"), _field(r, "Body")) for r in crash.held}
    assert sum(n - 1 for n in twice.values()) <= len(crash.held)
    assert set(twice) <= in_flight, "a part that the store had recorded as sent went again"
    nothing_new = [
        (slug, request)
        for slug, fake in crash.fakes.items()
        for request in fake.received()[crash.received_at_kill[slug] :]
        if (_field(request, "To"), _field(request, "Body")) not in crash.expected()
    ]
    assert nothing_new == [], "the restarted server sent something nobody wrote"


def test_a_part_sent_twice_went_as_the_same_request(crash: Crash) -> None:
    """Same form, same idempotency key if any (Twilio's client sends none: then both None)."""
    copies: dict[Arrival, list[Received]] = {}
    for fake in crash.fakes.values():
        for request in fake.received():
            copies.setdefault((_field(request, "To"), _field(request, "Body")), []).append(request)
    duplicated = {arrival: sent for arrival, sent in copies.items() if len(sent) > 1}
    for arrival, sent in duplicated.items():
        assert len({request.body for request in sent}) == 1, arrival
        assert len({_idempotency_key(request) for request in sent}) == 1, arrival


def test_every_outbox_row_ends_sent_with_every_part_recorded(crash: Crash) -> None:
    outbox = _outbox(crash.stack)
    assert sorted(outbox) == sorted(reply.message_id for reply in crash.replies)
    unfinished = {
        message_id: (status, sent, parts)
        for message_id, (status, sent, parts) in outbox.items()
        if (status, sent) != ("sent", parts)
    }
    assert unfinished == {}, "(status, parts sent, parts) of the rows not finished"
    parts = crash.stack.rows(
        "SELECT message_id, part_index FROM outbound_part ORDER BY message_id, part_index"
    )
    assert [(int(p.message_id), int(p.part_index)) for p in parts] == sorted(
        (reply.message_id, index) for reply in crash.replies for index in range(len(reply.parts))
    )
    statuses = crash.stack.rows("SELECT DISTINCT status FROM message WHERE author_id IS NOT NULL")
    assert [s.status for s in statuses] == ["sent"]


def test_the_kill_came_with_replies_waiting_and_sends_in_flight(crash: Crash) -> None:
    """The scene held what the test is about (the fixture checks more before the kill)."""
    assert crash.pending_at_kill > len(crash.held) == len(ORGANISATIONS)
    held = [reply for reply in crash.replies if reply.message_id in crash.held_message_ids]
    assert [len(reply.parts) for reply in held] == [3] * len(ORGANISATIONS)


def test_the_server_logged_no_failure(crash: Crash) -> None:
    """No send failed, no group of the writer was refused (the log is at WARNING and above)."""
    log = crash.stack.server.log()
    assert "failed" not in log and "Traceback" not in log, log
