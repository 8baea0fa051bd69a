"""The recovery test (issue 5): the server is killed (SIGKILL) while texts are arriving, agents
are chatting and replies are pending; started again on the same store and port, with the manual
clock where it was, every acknowledged inbound text is stored once, every acknowledged reply
reaches the broker, every interaction is in the state it was in, and every timer still fires
(docs/architecture.md, Durability). Runs on the store the suite picks (tests/conftest.py).

The scene, once for the module (the fixture `recovery`), on the manual clock (s: seconds since
it started). ACME's agents alice and bob take Support (offers last 90 s, wrap-ups 120 s; idle
after 120 s, closed 60 s later), through a fake Twilio; GLOBEX has nobody signed in, and its
Sales queue sends position notices every 300 s and gives up after 400 s, through a fake Twilio
of its own.

1. A1 and A2 come in and alice accepts both (s=1); G1 waits in GLOBEX's Sales (told "number 1").
   A1's customer writes at s=100, so only A2 goes idle at s=121 (warned, grace until 181).
2. Bob accepts B1 and wraps it up (until 242); B2 is offered to him (until 212) and he sees it.
   Q1, Q2, Q3 wait in ACME's Support (s=124, 126, 128); G2 waits in Sales at s=152 ("number 2").
3. At s=160 (T0) ACME's fake holds the next request: alice's reply R0 is in flight at the broker.
   Five threads post texts (three to GLOBEX's Twilio webhook and one to its sandbox webhook, from
   new phones that wait in GLOBEX's Support; one to ACME's from A1's customer) while alice keeps
   replying on A1 (acknowledged, waiting in the outbox behind R0). A post answered 200 is
   acknowledged. One more post sends its headers and half its body, and waits.
4. The interactions are read from the store and the preconditions checked. The test takes the
   store's write lock (a commit that hangs, as on a slow disk): once every thread's post and
   alice's last reply have waited on it for a while, the server is killed, and the lock let go.
5. The store is read again (what survived the kill); the server starts on the same store and
   port with PARLEY_CLOCK_START=T0; the agents come back on new sockets and the store is read a
   third time; alice's old client resumes from the last event it handed out. The fakes answer
   what they held (to connections that died).
6. The clock goes to one second before each deadline read after the kill, then to it: A2's grace
   ends (closed; alice is offered Q1), B2's offer expires (bob away: missed offer), B1's wrap-up
   ends (bob comes back: offered Q2, then Q3), A1 goes idle (warned), G1's maximum wait closes
   it, and G2's next notice tells it that it moved up.
7. Every text is posted again, as a broker retries (last, as a retry is activity that would
   arm A1's idle time again and hide a timer lost in the restart).

The tests below read what the fixture recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import sqlite3
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx2
import pytest
import sqlalchemy as sa
import yaml
from twilio.request_validator import RequestValidator

from parley_client import ConnectionClosed
from server.adapters.persistence.tables import Interaction, Message, table_of
from tests.broker_servers.base import Fault, Received
from tests.broker_servers.twilio import TwilioServer
from tests.conftest import TIMEOUT_SCALE
from tests.end_to_end.agents import (
    AgentSockets,
    RecordingClient,
    advance,
    drain,
    make_available,
    next_of,
    run,
    stored_events,
    user_id,
    wait_until,
)
from tests.end_to_end.brokers import sandbox_text, twilio_text
from tests.end_to_end.care import configure_care
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation

IDLE_S, GRACE_S = 120, 60
OFFER_S, WRAP_UP_S = 90, 120
NOTICE_EVERY_S, MAX_WAIT_S = 300, 400
SECOND = timedelta(seconds=1)
DRAIN_S = 20 * TIMEOUT_SCALE  # the bound on the wait for the outbox to empty after the restart

WARNING = "Still there? We close in 1 minute."
CLOSING = "Closed after a quiet while. Text Acme again."
ENTRY_1, ENTRY_2 = "You are number 1 for Sales.", "You are number 2 for Sales."
MOVED_UP = "Now number 1 for Sales."
GIVE_UP = "Nobody in Sales could answer in time."

ACME_CARE = {
    "timeouts": {
        "enable_idle_timeout": True,
        "party_idle_time_s": IDLE_S,
        "party_idle_grace_time_s": GRACE_S,
        "idle_warning_text": "Still there? We close in {{ grace_minutes }} minute.",
        "idle_closing_text": "Closed after a quiet while. Text {{ organisation }} again.",
    }
}
ACME_SUPPORT = {"offer_timeout_s": OFFER_S, "wrap_up_timeout_s": WRAP_UP_S}
GLOBEX_SALES = {
    "notices": {
        "enabled": True,
        "interval_s": NOTICE_EVERY_S,
        "entry_text": "You are number {{ position }} for {{ queue }}.",
        "update_text": "Now number {{ position }} for {{ queue }}.",
    },
    "max_wait": {
        "after_s": MAX_WAIT_S,
        "closing_text": "Nobody in {{ queue }} could answer in time.",
    },
}

A1, A2, B1, B2 = "+14145551001", "+14145551002", "+14145551003", "+14145551004"
QUEUED_PHONES = ("+14145551011", "+14145551012", "+14145551013")
G1, G2 = "+13125550001", "+13125550002"  # +1312: GLOBEX's route to Sales

FLOOD_ACKS = 10  # posts each flood thread has had acknowledged before the kill, at least
CHAT_ACKS = 10  # replies alice has had acknowledged while the posts arrive, at least
STALL_S = 0.3  # how long every flood's post has waited on the stalled store at the kill

COLUMNS = tuple(c.name for c in table_of(Interaction).columns)

T = TypeVar("T")


# -- what the fixture records ----------------------------------------------------------------


@dataclass
class Post:
    """One text posted to a webhook, and the server's answer (None: none came)."""

    org: Organisation
    broker: str  # twilio or sandbox
    message_id: str
    sender: str
    text: str
    status: int | None = None
    started_at: float = 0.0  # time.monotonic() when it was sent

    @property
    def acknowledged(self) -> bool:
        return self.status == 200

    def key(self) -> tuple[str, str, str]:
        return (self.org.slug, self.broker, self.message_id)

    def send(self, client: httpx2.Client) -> httpx2.Response:
        if self.broker == "sandbox":
            return sandbox_text(
                client, self.org, message_id=self.message_id, sender=self.sender, text=self.text
            )
        return twilio_text(
            client, self.org, message_id=self.message_id, sender=self.sender, text=self.text
        )


@dataclass(frozen=True)
class Reply:
    """A reply an agent wrote; `acknowledged` when the server's command_ack came."""

    interaction_id: int
    recipient: str
    body: str
    acknowledged: bool


@dataclass(frozen=True)
class Scene:
    a1: int  # connected (alice)
    a2: int  # idle (alice)
    b1: int  # in wrap-up (bob)
    b2: int  # offered (to bob)
    queued: tuple[int, int, int]  # Q1, Q2, Q3 waiting in ACME's Support
    g1: int  # waiting in GLOBEX's Sales, notices and a maximum wait
    g2: int


@dataclass(frozen=True)
class Fired:
    """A timer: its interaction's row one second before the deadline and at it, the texts the
    store holds to the customer from that instant, and what the agent was told."""

    interaction_id: int
    deadline: datetime
    before: dict[str, Any]
    after: dict[str, Any]
    texts: list[str]
    told: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Recovery:
    stack: Stack
    fakes: dict[str, TwilioServer]  # by organisation slug
    accounts: dict[tuple[str, str], int]  # broker account id by (organisation slug, broker)
    scene: Scene
    t0: datetime
    posts: list[Post]  # every text posted before the kill (the scene's, the floods', the half)
    half_post: Post
    half_post_answer: bytes  # what the half post's socket read after the kill
    in_flight_at_kill: list[Post]  # flood posts sent before the kill and never answered
    stalled_at_kill: bool  # every flood's post had waited on the stalled store for STALL_S
    replies: list[Reply]
    held: Received  # R0's request, held by ACME's fake at the kill
    received_at_kill: dict[str, int]  # requests each fake had received then
    pending_at_kill: int  # outbox rows not sent at the kill
    before_kill: dict[int, dict[str, Any]]  # the scene's interactions, just before the kill
    at_death: dict[int, dict[str, Any]]  # every interaction, read after the kill
    queues_before: dict[str, Any]  # ACME's GET /api/queues just before the kill
    transcripts_at_death: dict[int, list[tuple[int, str, str]]]  # (id, direction, body)
    inbound_at_death: Counter[tuple[int, str]]  # inbound messages by (account, broker id)
    # After the restart (a step that failed says why in `broken`; the later ones did not run):
    broken: str = ""
    clock_after_restart: datetime | None = None
    after_restart: dict[int, dict[str, Any]] = field(default_factory=dict)  # after reconnects
    queues_after: dict[str, Any] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # by username
    offers_after_restart: list[tuple[str, int, str]] = field(default_factory=list)
    fired: dict[str, Fired] = field(default_factory=dict)  # by timer
    care_arrivals: dict[tuple[str, str], int] = field(default_factory=dict)  # (phone, text)
    inbound_after_acknowledged_again: Counter[tuple[int, str]] | None = None
    inbound_after_all_again: Counter[tuple[int, str]] | None = None
    answers_again: dict[tuple[str, str, str], tuple[int, Any]] = field(default_factory=dict)
    drained: bool = False  # every outbox row sent in the end
    resumed_from: int = 0  # the last event alice's old client handed out before the kill
    resumed: bool | None = None  # whether the server resumed that client after the restart
    replayed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (seq, event)
    stored_events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # alice's

    def arrivals(self, slug: str) -> Counter[tuple[str, str]]:
        """How many times a fake took each (To, Body)."""
        return Counter(
            (_field(request, "To"), _field(request, "Body"))
            for request in self.fakes[slug].received()
            if request.status == 201
        )

    def account_of(self, post: Post) -> int:
        return self.accounts[(post.org.slug, post.broker)]


# -- the scene -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recovery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recovery]:
    with contextlib.ExitStack() as cleanup:
        fakes = {
            org.slug: cleanup.enter_context(
                TwilioServer(
                    account_sid=org.twilio_sid,
                    auth_token=org.twilio_token,
                    numbers=[org.twilio_number],
                )
            )
            for org in (ACME, GLOBEX)
        }
        stack = start_stack(
            tmp_path_factory.mktemp("recovery"),
            env={"PARLEY_CLOCK": "manual", "PARLEY_SEND_RETRY_BASE_S": "0.05"},
        )
        cleanup.callback(stack.engine.dispose)
        cleanup.callback(stack.server.stop)
        for org in (ACME, GLOBEX):
            _send_through(stack, org, fakes[org.slug])
        configure_care(
            stack, org=ACME, organisation=ACME_CARE, workgroups={"Support": ACME_SUPPORT}
        )
        configure_care(stack, org=GLOBEX, workgroups={"Sales": GLOBEX_SALES})
        found: list[Recovery] = []

        async def scenario() -> None:
            found.append(await _recover(stack, fakes))

        run(scenario, limit_s=120)
        yield found[0]


def _send_through(stack: Stack, org: Organisation, fake: TwilioServer) -> None:
    """Point the organisation's Twilio account at `fake`, in its configuration folder (which
    `configure_care` copies and applies): a held send waits for its answer (60 s)."""
    path = stack.folder / "config" / org.slug / "brokers.yaml"
    document = yaml.safe_load(path.read_text())
    for account in document["accounts"]:
        if account["broker"] == "twilio":
            account["sending"] = {"api_url": fake.api_url, "timeout_s": 60}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


class _Clock:
    """The server's manual clock, as the test last saw it."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.now = datetime.min

    async def sync(self) -> datetime:
        self.now = _instant(await advance(self.stack, 0))
        return self.now

    async def to(self, when: datetime) -> None:
        seconds = (when - self.now).total_seconds()
        assert seconds >= 0, f"the clock is at {self.now}, past {when}"
        self.now = _instant(await advance(self.stack, seconds))
        assert self.now == when


async def _recover(stack: Stack, fakes: dict[str, TwilioServer]) -> Recovery:
    accounts = _account_ids(stack)
    posts: list[Post] = []
    replies: list[Reply] = []
    clock = _Clock(stack)
    async with AgentSockets(stack) as floor:
        alice = await floor.connect(ACME, "alice")
        bob = await floor.connect(ACME, "bob")
        scene = await _set_the_scene(stack, clock, alice, bob, posts, replies)
        t0 = clock.now

        # Everything sent so far has gone; then ACME's fake holds R0 in flight.
        await wait_until(lambda: _sync(_pending(stack) == 0), what="the scene's texts sent")
        fakes[ACME.slug].fail_next(Fault.held())
        r0 = "A1: R0, the reply in flight at the broker at the kill"
        await _write(alice, scene.a1, A1, r0, replies)

        def r0_held() -> list[Received] | None:  # a hold is counted before it is recorded
            sent = [r for r in fakes[ACME.slug].received() if _field(r, "Body") == r0]
            return sent if sent and fakes[ACME.slug].holding() == 1 else None

        [held] = await wait_until(lambda: _sync(r0_held()), what="R0 held by ACME's fake")

        # Texts arrive from five threads, alice keeps replying, a post is half sent.
        stop = threading.Event()
        floods = [
            _Flood(stack, stop, _new_phones(GLOBEX, "twilio", f"+1414556{t}", f"G-flood-{t}"))
            for t in range(3)
        ]
        floods.append(_Flood(stack, stop, _new_phones(GLOBEX, "sandbox", "+14145570", "G-sb")))
        floods.append(_Flood(stack, stop, _from_a1()))
        for flood in floods:
            flood.start()
        chat = asyncio.create_task(_chat(alice, scene.a1, replies))
        half_post = Post(GLOBEX, "twilio", _sid(), "+14145580001", "G-half: a text half sent")
        half_socket = await asyncio.to_thread(_half_a_post, stack, half_post)
        await wait_until(
            lambda: _sync(
                all(f.acknowledged() >= FLOOD_ACKS for f in floods)
                and sum(r.acknowledged for r in replies) >= CHAT_ACKS + 1
            ),
            what="texts and replies acknowledged while the traffic runs",
        )

        # The store just before the kill, the preconditions, the kill.
        everything = await asyncio.to_thread(_interactions, stack)
        before_kill = {i: row for i, row in everything.items() if i in _ids(scene)}
        queues_before = await asyncio.to_thread(_queues, stack, ACME)
        _check_the_scene(everything, scene, t0)
        assert chat.done() is False, "alice stopped replying before the kill"
        assert all(flood.is_alive() for flood in floods), "a flood stopped before the kill"
        assert fakes[ACME.slug].holding() == 1
        received_at_kill = {slug: len(fake.received()) for slug, fake in fakes.items()}
        killed_at, stalled_at_kill = await _kill_in_a_stalled_commit(stack, floods, stop)
        for flood in floods:
            await asyncio.to_thread(flood.join, 10)
        await asyncio.wait_for(chat, 10)
        half_post_answer = await asyncio.to_thread(_leftover, half_socket)
        flood_posts = [post for flood in floods for post in flood.posts]
        posts.extend(flood_posts)
        posts.append(half_post)
        in_flight = [p for p in flood_posts if p.status is None and p.started_at < killed_at]

        # What survived the kill (once the store has finished what the server had sent it).
        await asyncio.to_thread(_settle, stack)
        transcripts = {
            i: await asyncio.to_thread(_transcript, stack, i)
            for i in (scene.a1, scene.a2, scene.b1)
        }
        recovery = Recovery(
            stack=stack,
            fakes=fakes,
            accounts=accounts,
            scene=scene,
            t0=t0,
            posts=posts,
            half_post=half_post,
            half_post_answer=half_post_answer,
            in_flight_at_kill=in_flight,
            stalled_at_kill=stalled_at_kill,
            replies=replies,
            held=held,
            received_at_kill=received_at_kill,
            pending_at_kill=await asyncio.to_thread(_pending, stack),
            before_kill=before_kill,
            at_death=await asyncio.to_thread(_interactions, stack),
            queues_before=queues_before,
            transcripts_at_death=transcripts,
            inbound_at_death=await asyncio.to_thread(_inbound, stack),
        )
        try:
            await _after_the_restart(recovery, clock, floor, alice)
        except Exception:  # the tests that need what is missing say why
            recovery.broken = traceback.format_exc()
    return recovery


async def _after_the_restart(
    recovery: Recovery, clock: _Clock, floor: AgentSockets, old_alice: RecordingClient
) -> None:
    """Steps 5 (from the restart) to 7 of the module docstring, recorded in `recovery`;
    `old_alice` is alice's client from before the kill."""
    stack, fakes = recovery.stack, recovery.fakes
    stack.server.extra_env["PARLEY_CLOCK_START"] = _iso(recovery.t0)
    await asyncio.to_thread(stack.server.start, same_port=True)
    recovery.clock_after_restart = await clock.sync()
    alice = await floor.connect(ACME, "alice")
    bob = await floor.connect(ACME, "bob")
    recovery.snapshots = {"alice": dict(alice.snapshot or {}), "bob": dict(bob.snapshot or {})}
    recovery.after_restart = await asyncio.to_thread(_interactions, stack)
    recovery.queues_after = await asyncio.to_thread(_queues, stack, ACME)

    # Alice's old client resumes after the last event it handed out.
    recovery.resumed_from = old_alice.last_seq
    recovery.resumed = await old_alice.reconnect()
    replayed = await drain(old_alice)
    recovery.replayed = [(event.seq, dict(event.data)) for event in replayed]
    alice_id = user_id(stack, ACME, "alice")
    recovery.stored_events = await asyncio.to_thread(stored_events, stack, alice_id)

    # The fakes answer what they held (to connections that died); the outbox empties.
    for fake in fakes.values():
        fake.release()
    with contextlib.suppress(AssertionError):  # the tests say what is missing
        await _until(lambda: _sync(_pending(stack) == 0), limit_s=DRAIN_S)

    # Every timer, one second before its deadline and at it.
    await _fire_the_timers(recovery, clock, alice, bob)
    care_texts = [
        (A2, CLOSING, ACME.slug),
        (A1, WARNING, ACME.slug),
        (G1, GIVE_UP, GLOBEX.slug),
        (G2, MOVED_UP, GLOBEX.slug),
    ]

    def care_arrived() -> dict[tuple[str, str], int]:
        return {
            (phone, text): sum(
                1
                for r in fakes[slug].received()
                if r.status == 201 and (_field(r, "To"), _field(r, "Body")) == (phone, text)
            )
            for phone, text, slug in care_texts
        }

    with contextlib.suppress(AssertionError):
        await _until(lambda: _sync(all(care_arrived().values())), limit_s=DRAIN_S)
    recovery.care_arrivals = care_arrived()

    # The brokers try again (last: a retry is activity, and would re-arm A1's idle time):
    # every post once more, the acknowledged ones first.
    posts = recovery.posts
    answers = recovery.answers_again
    acknowledged = [p for p in posts if p.acknowledged]
    await asyncio.to_thread(_post_again, stack, acknowledged, answers)
    recovery.inbound_after_acknowledged_again = await asyncio.to_thread(_inbound, stack)
    unanswered = [p for p in posts if not p.acknowledged]
    await asyncio.to_thread(_post_again, stack, unanswered, answers)
    recovery.inbound_after_all_again = await asyncio.to_thread(_inbound, stack)
    with contextlib.suppress(AssertionError):
        await _until(lambda: _sync(_pending(stack) == 0), limit_s=DRAIN_S)
    recovery.drained = await asyncio.to_thread(_pending, stack) == 0


async def _set_the_scene(
    stack: Stack,
    clock: _Clock,
    alice: RecordingClient,
    bob: RecordingClient,
    posts: list[Post],
    replies: list[Reply],
) -> Scene:
    """Steps 1 and 2 of the module docstring; returns with the clock at T0 (s=160)."""
    start = await clock.sync()

    async def at(seconds: int) -> None:
        await clock.to(start + timedelta(seconds=seconds))

    async def take(agent: RecordingClient, phone: str, text: str) -> int:
        await _text(stack, posts, ACME, phone, text)
        interaction_id = int((await next_of(agent, "offer")).data["interaction_id"])
        await agent.accept(interaction_id)
        return interaction_id

    await make_available(stack, alice)  # s=1
    await clock.sync()
    a1 = await take(alice, A1, "A1: my parcel is late")
    a2 = await take(alice, A2, "A2: wrong size delivered")
    await _write(alice, a1, A1, "A1: let me look into it", replies)
    await _write(alice, a2, A2, "A2: sorry about that, which size?", replies)
    await _text(stack, posts, GLOBEX, G1, "G1: any news on my order?")
    g1 = await _noticed(stack, G1, position=1)
    await at(100)
    await _text(stack, posts, ACME, A1, "A1: still here, any news?")
    await at(121)  # A2 goes idle (warned); A1 is connected until s=220
    await make_available(stack, bob)  # s=122
    await clock.sync()
    b1 = await take(bob, B1, "B1: can I change my address?")
    await _write(bob, b1, B1, "B1: done, anything else?", replies)
    await bob.wrap_up(b1)
    await _text(stack, posts, ACME, B2, "B2: hello, is anyone there?")
    b2 = int((await next_of(bob, "offer")).data["interaction_id"])  # seen: acknowledged
    await wait_until(
        lambda: _sync(_row(stack, b2)["offer_delivered"] is True), what="B2's offer delivered"
    )
    queued = []
    for k, phone in enumerate(QUEUED_PHONES):
        await at(124 + 2 * k)
        await _text(stack, posts, ACME, phone, f"Q{k + 1}: a question, waiting in line")
        queued.append(_open_id(stack, phone))
    await at(152)
    await _text(stack, posts, GLOBEX, G2, "G2: I would like to order")
    g2 = await _noticed(stack, G2, position=2)
    await at(160)
    return Scene(a1=a1, a2=a2, b1=b1, b2=b2, queued=(queued[0], queued[1], queued[2]), g1=g1, g2=g2)


def _check_the_scene(rows: dict[int, dict[str, Any]], scene: Scene, t0: datetime) -> None:
    """The preconditions at the kill: every state is there, every deadline is still ahead, and
    they come in the order the timers' part of the scene needs."""
    a1, a2, b1, b2 = rows[scene.a1], rows[scene.a2], rows[scene.b1], rows[scene.b2]
    g1, g2 = rows[scene.g1], rows[scene.g2]
    queued = [rows[i] for i in scene.queued]
    assert (a1["state"], a2["state"], b2["state"]) == ("connected", "idle", "offered")
    assert (b1["state"], b1["wrap_up_until"] is not None) == ("disconnected", True)
    assert [q["state"] for q in queued] == ["queued"] * 3
    assert [q["enqueued_at"] for q in queued] == sorted({q["enqueued_at"] for q in queued})
    assert (g1["state"], g2["state"]) == ("queued", "queued")
    assert (g1["notice_position"], g2["notice_position"]) == (1, 2)
    assert b2["offer_delivered"] is True
    deadlines = [
        a1["idle_at"],
        a2["grace_until"],
        b1["wrap_up_until"],
        b2["offer_expires_at"],
        g1["next_notice_at"],
        g1["max_wait_at"],
        g2["next_notice_at"],
        g2["max_wait_at"],
    ]
    assert all(d is not None and d > t0 for d in deadlines), deadlines
    for row in rows.values():  # nothing at all is due at T0: the restart alone changes nothing
        due = [row[c] for c in ("idle_at", "grace_until", "wrap_up_until", "offer_expires_at")]
        due += [row["next_notice_at"], row["max_wait_at"]]
        assert all(d is None or d > t0 for d in due), row
    assert a1["idle_at"] == t0 + timedelta(seconds=IDLE_S)  # alice is writing at T0
    assert a2["grace_until"] < b2["offer_expires_at"] < b1["wrap_up_until"] < a1["idle_at"]
    assert b1["wrap_up_until"] < b2["offer_expires_at"] + timedelta(seconds=OFFER_S)
    assert t0 < g1["next_notice_at"] < g1["max_wait_at"] < g2["next_notice_at"]
    assert g2["next_notice_at"] < g2["max_wait_at"]


async def _kill_in_a_stalled_commit(
    stack: Stack, floods: list[_Flood], stop: threading.Event
) -> tuple[float, bool]:
    """Stall the server's writer (the test holds the store's write lock, as a slow disk would),
    wait until every flood's post has waited on it for STALL_S, tell the floods to post no more,
    and SIGKILL the server; release the lock once it is dead. Return when the kill was sent, and
    whether every flood's post was waiting then."""
    release = await asyncio.to_thread(_lock_the_store, stack)
    try:
        locked_at = time.monotonic()
        deadline = locked_at + 5 * TIMEOUT_SCALE

        def stalled(post: Post | None) -> bool:
            waited = time.monotonic() - max(locked_at, post.started_at if post else 0.0)
            return post is not None and waited > STALL_S

        # (if they never wait, the kill comes anyway: test_the_kill_came_mid_traffic says so)
        while not all(stalled(flood.in_flight) for flood in floods):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        stalled_at_kill = all(stalled(flood.in_flight) for flood in floods)
        stop.set()
        killed_at = time.monotonic()
        stack.server.kill()
    finally:
        await asyncio.to_thread(release)
    return killed_at, stalled_at_kill


def _lock_the_store(stack: Stack) -> Callable[[], None]:
    """Take the store's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: the message table in
    EXCLUSIVE mode, reads still go); return the function that lets it go."""
    url = stack.server.database_url
    if url.startswith("sqlite:///"):
        sqlite = sqlite3.connect(
            url.removeprefix("sqlite:///"),
            timeout=10,
            isolation_level=None,
            check_same_thread=False,  # let go from another worker thread
        )
        sqlite.execute("BEGIN IMMEDIATE")

        def release_sqlite() -> None:
            sqlite.execute("ROLLBACK")
            sqlite.close()

        return release_sqlite
    connection = stack.engine.connect()
    connection.exec_driver_sql("LOCK TABLE message IN EXCLUSIVE MODE")

    def release() -> None:
        connection.rollback()
        connection.close()

    return release


async def _fire_the_timers(
    recovery: Recovery, clock: _Clock, alice: RecordingClient, bob: RecordingClient
) -> None:
    stack, scene, at_death = recovery.stack, recovery.scene, recovery.at_death

    async def watch(name: str, interaction_id: int, column: str) -> Fired:
        deadline = at_death[interaction_id][column]
        await clock.to(deadline - SECOND)
        before = await asyncio.to_thread(_row, stack, interaction_id)
        await clock.to(deadline)
        after = await asyncio.to_thread(_row, stack, interaction_id)
        texts = await asyncio.to_thread(_care_texts, stack, interaction_id, deadline)
        recovery.fired[name] = Fired(interaction_id, deadline, before, after, texts)
        return recovery.fired[name]

    async def offered(agent: RecordingClient, username: str) -> None:
        offer = (await next_of(agent, "offer")).data
        interaction_id = int(offer["interaction_id"])
        enqueued_at = str(offer["interaction"]["enqueued_at"])
        recovery.offers_after_restart.append((username, interaction_id, enqueued_at))
        await agent.accept(interaction_id)

    await watch("grace", scene.a2, "grace_until")  # A2 closes: alice's slot is free
    await offered(alice, "alice")
    expired = await watch("offer", scene.b2, "offer_expires_at")  # bob missed B2
    expired.told.append(dict((await next_of(bob, "offer_ended")).data))
    expired.told.append(dict((await next_of(bob, "agent_state", reason="missed offer")).data))
    ended = await watch("wrap_up", scene.b1, "wrap_up_until")  # bob's slot is free...
    ended.told.append(dict((await next_of(bob, "interaction")).data))
    await bob.set_state("available")  # ... and he is back
    await offered(bob, "bob")
    await offered(bob, "bob")
    await watch("idle", scene.a1, "idle_at")
    await watch("max_wait", scene.g1, "max_wait_at")
    await watch("notice", scene.g2, "next_notice_at")


# -- traffic -----------------------------------------------------------------------------------


class _Flood(threading.Thread):
    """Posts the texts `next_post` makes, one after the other, until `stop`; keeps each post
    and the server's answer (`in_flight`: the post waiting for its answer now)."""

    def __init__(
        self, stack: Stack, stop: threading.Event, next_post: Callable[[int], Post]
    ) -> None:
        super().__init__(daemon=True)
        self.base_url = stack.server.base_url
        self.stop = stop
        self.next_post = next_post
        self.posts: list[Post] = []
        self.in_flight: Post | None = None

    def run(self) -> None:
        with httpx2.Client(base_url=self.base_url, timeout=10 * TIMEOUT_SCALE) as client:
            for n in itertools.count():
                if self.stop.is_set():
                    return
                post = self.next_post(n)
                post.started_at = time.monotonic()
                self.posts.append(post)
                self.in_flight = post
                try:
                    post.status = post.send(client).status_code
                except httpx2.HTTPError:
                    pass  # no answer: the server died
                finally:
                    self.in_flight = None

    def acknowledged(self) -> int:
        return sum(post.acknowledged for post in list(self.posts))


def _new_phones(org: Organisation, broker: str, prefix: str, tag: str) -> Callable[[int], Post]:
    """Texts from four phones in turn (new conversations, then more of them)."""
    return lambda n: Post(org, broker, _sid(), f"{prefix}{n % 4:03d}", f"{tag}: text {n}")


def _from_a1() -> Callable[[int], Post]:
    """A1's customer, writing while alice answers."""
    return lambda n: Post(ACME, "twilio", _sid(), A1, f"A1: and another thing, number {n}")


async def _chat(alice: RecordingClient, interaction_id: int, replies: list[Reply]) -> None:
    """Alice replies on A1 until her connection dies under her."""
    for n in itertools.count(1):
        body = f"A1: reply {n}, written while texts arrive"
        try:
            await alice.send(interaction_id, body)
        except (ConnectionClosed, TimeoutError):
            replies.append(Reply(interaction_id, A1, body, acknowledged=False))
            return
        replies.append(Reply(interaction_id, A1, body, acknowledged=True))
        await asyncio.sleep(0.005)


def _half_a_post(stack: Stack, post: Post) -> socket.socket:
    """Send a signed Twilio webhook's headers and half its body, and leave it waiting."""
    path = f"/webhooks/twilio/{post.org.account('twilio')}"
    params = {
        "MessageSid": post.message_id,
        "AccountSid": post.org.twilio_sid,
        "From": post.sender,
        "To": post.org.twilio_number,
        "Body": post.text,
    }
    signature = RequestValidator(post.org.twilio_token).compute_signature(
        stack.server.base_url + path, params
    )
    body = urlencode(params).encode()
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{stack.server.port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"X-Twilio-Signature: {signature}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", stack.server.port), timeout=10)
    post.started_at = time.monotonic()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def _leftover(sock: socket.socket) -> bytes:
    """What the half post's connection read before it closed (nothing, if no answer came)."""
    with sock:
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def _post_again(
    stack: Stack, posts: list[Post], answers: dict[tuple[str, str, str], tuple[int, Any]]
) -> None:
    with stack.client() as client:
        for post in posts:
            answer = post.send(client)
            body = answer.json() if post.broker == "sandbox" and answer.status_code == 200 else None
            answers[post.key()] = (answer.status_code, body)


async def _text(stack: Stack, posts: list[Post], org: Organisation, phone: str, text: str) -> Post:
    """A text through `org`'s Twilio webhook, acknowledged."""
    post = Post(org, "twilio", _sid(), phone, text)

    def send() -> httpx2.Response:
        with stack.client() as client:
            return post.send(client)

    answer = await asyncio.to_thread(send)
    post.status = answer.status_code
    posts.append(post)
    assert answer.status_code == 200, answer.text
    return post


async def _write(
    agent: RecordingClient, interaction_id: int, phone: str, body: str, replies: list[Reply]
) -> None:
    await agent.send(interaction_id, body)
    replies.append(Reply(interaction_id, phone, body, acknowledged=True))


async def _noticed(stack: Stack, phone: str, *, position: int) -> int:
    """The id of the waiting interaction of `phone`, once its first notice is stored."""
    interaction_id = _open_id(stack, phone)
    await wait_until(
        lambda: _sync(_row(stack, interaction_id)["notice_position"] == position),
        what=f"the first notice to {phone}",
    )
    return interaction_id


async def _until(check: Callable[[], Any], *, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.02)


async def _sync(value: T) -> T:
    return value


# -- reading the store -------------------------------------------------------------------------

_interaction = table_of(Interaction)
_message = table_of(Message)


def _interactions(stack: Stack) -> dict[int, dict[str, Any]]:
    """Every interaction row, every column (times as aware datetimes), by id."""
    with stack.engine.connect() as connection:
        rows = connection.execute(sa.select(_interaction)).mappings().all()
    return {int(row["id"]): dict(row) for row in rows}


def _row(stack: Stack, interaction_id: int) -> dict[str, Any]:
    with stack.engine.connect() as connection:
        row = (
            connection.execute(sa.select(_interaction).where(_interaction.c.id == interaction_id))
            .mappings()
            .one()
        )
    return dict(row)


def _transcript(stack: Stack, interaction_id: int) -> list[tuple[int, str, str]]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.select(_message.c.id, _message.c.direction, _message.c.body)
            .where(_message.c.interaction_id == interaction_id)
            .order_by(_message.c.id)
        ).all()
    return [(int(r.id), str(r.direction), str(r.body)) for r in rows]


def _care_texts(stack: Stack, interaction_id: int, at: datetime) -> list[str]:
    """Parley's own texts on the interaction (no author) written at `at`."""
    with stack.engine.connect() as connection:
        rows = connection.execute(
            sa.select(_message.c.body, _message.c.created_at)
            .where(
                _message.c.interaction_id == interaction_id,
                _message.c.direction == "outbound",
                _message.c.author_id.is_(None),
            )
            .order_by(_message.c.id)
        ).all()
    return [str(r.body) for r in rows if r.created_at == at]


def _inbound(stack: Stack) -> Counter[tuple[int, str]]:
    rows = stack.rows(
        "SELECT broker_account_id AS account, broker_message_id AS id, count(*) AS n"
        " FROM message WHERE direction = 'inbound'"
        " GROUP BY broker_account_id, broker_message_id"
    )
    return Counter({(int(r.account), str(r.id)): int(r.n) for r in rows})


def _settle(stack: Stack) -> None:
    """Wait until the store holds no connection of the killed server. PostgreSQL finishes a
    COMMIT that was already in its socket when the client died: read before that, and a row
    may appear afterwards. (SQLite has nothing to finish.)"""
    if stack.engine.dialect.name != "postgresql":
        return
    stack.engine.dispose()  # the test's own connections go too
    others = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 10 * TIMEOUT_SCALE
    while True:
        with stack.engine.connect() as connection:
            if connection.execute(sa.text(others)).scalar() == 0:
                break
        assert time.monotonic() < deadline, "the killed server's connections stay open"
        time.sleep(0.02)
    stack.engine.dispose()


def _pending(stack: Stack) -> int:
    [row] = stack.rows("SELECT count(*) AS n FROM outbox WHERE status = 'pending'")
    return int(row.n)


def _open_id(stack: Stack, phone: str) -> int:
    [row] = stack.rows(
        "SELECT id FROM interaction WHERE remote_number = :phone AND state != 'disconnected'",
        phone=phone,
    )
    return int(row.id)


def _account_ids(stack: Stack) -> dict[tuple[str, str], int]:
    return {
        (org.slug, broker): int(row.id)
        for org in (ACME, GLOBEX)
        for broker in ("twilio", "sandbox")
        for row in stack.rows(
            "SELECT id FROM broker_account WHERE public_id = :p", p=org.account(broker)
        )
    }


def _queues(stack: Stack, org: Organisation) -> dict[str, Any]:
    with stack.client(org) as api:
        answer = api.get("/api/queues")
    assert answer.status_code == 200, answer.text
    queues: dict[str, Any] = answer.json()
    return queues


def _ids(scene: Scene) -> set[int]:
    return {scene.a1, scene.a2, scene.b1, scene.b2, *scene.queued, scene.g1, scene.g2}


def _field(request: Received, name: str) -> str:
    [value] = request.fields[name]
    return str(value)


def _sid() -> str:
    return "SM" + uuid.uuid4().hex


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


# -- what must hold ----------------------------------------------------------------------------


def test_the_kill_came_mid_traffic(recovery: Recovery) -> None:
    """The scene held what the test is about (the fixture checks the states before the kill)."""
    assert recovery.half_post_answer == b"", "the half post was answered"
    assert recovery.half_post.status is None
    assert recovery.stalled_at_kill, "the posts did not wait for the stalled store"
    assert len(recovery.in_flight_at_kill) >= 1, "no flood post was waiting at the kill"
    acknowledged = [p for p in recovery.posts if p.acknowledged]
    assert len(acknowledged) >= 5 * FLOOD_ACKS
    chat = [r for r in recovery.replies if r.body.startswith("A1: reply ")]
    assert sum(r.acknowledged for r in chat) >= CHAT_ACKS
    assert [r.acknowledged for r in chat][-1] is False, "alice's last send was answered"
    assert _field(recovery.held, "Body").startswith("A1: R0")
    # R0 and every reply acknowledged after it wait in the outbox (and the last one, if stored)
    after_r0 = sum(r.acknowledged for r in chat)
    assert after_r0 + 1 <= recovery.pending_at_kill <= after_r0 + 2


def test_every_acknowledged_text_is_stored_once(recovery: Recovery) -> None:
    acknowledged = [p for p in recovery.posts if p.acknowledged]
    counts = {
        p.key(): recovery.inbound_at_death[(recovery.account_of(p), p.message_id)]
        for p in acknowledged
    }
    lost_or_doubled = {key: n for key, n in counts.items() if n != 1}
    assert lost_or_doubled == {}, f"of {len(acknowledged)} acknowledged texts"


def test_a_text_without_answer_is_stored_at_most_once_and_a_retry_stores_nothing_new(
    recovery: Recovery,
) -> None:
    posted = {(recovery.account_of(p), p.message_id) for p in recovery.posts}
    assert set(recovery.inbound_at_death) <= posted, "a text stored that nobody posted"
    unanswered = [p for p in recovery.posts if not p.acknowledged]
    assert {p.status for p in unanswered} == {None}, "a post was refused"
    at_death = [
        recovery.inbound_at_death[(recovery.account_of(p), p.message_id)] for p in unanswered
    ]
    assert max(at_death) <= 1
    assert (
        recovery.inbound_at_death[
            (recovery.account_of(recovery.half_post), recovery.half_post.message_id)
        ]
        == 0
    )
    # the acknowledged texts again: nothing new
    _reached(recovery.inbound_after_all_again, recovery)
    assert {status for status, _ in recovery.answers_again.values()} == {200}
    assert recovery.inbound_after_acknowledged_again == recovery.inbound_at_death
    sandbox = [p for p in recovery.posts if p.acknowledged and p.broker == "sandbox"]
    assert sandbox
    assert {recovery.answers_again[p.key()][1]["duplicates"] for p in sandbox} == {1}
    # the unanswered ones again: each stored, once
    after = recovery.inbound_after_all_again
    assert after is not None
    assert {key: n for key, n in after.items() if n != 1} == {}
    assert set(after) == posted


def test_every_acknowledged_reply_reaches_the_broker(recovery: Recovery) -> None:
    arrivals = recovery.arrivals(ACME.slug)
    acknowledged = [r for r in recovery.replies if r.acknowledged]
    missing = [r.body for r in acknowledged if (r.recipient, r.body) not in arrivals]
    said = f"{len(missing)} of {len(acknowledged)} replies never reached Twilio {recovery.broken}"
    assert missing == [], said


def test_only_the_send_in_flight_at_the_kill_went_twice(recovery: Recovery) -> None:
    statuses = {r.status for fake in recovery.fakes.values() for r in fake.received()}
    assert statuses == {201}, "a fake refused or dropped a request"
    twice = {
        arrival: n
        for slug in recovery.fakes
        for arrival, n in recovery.arrivals(slug).items()
        if n > 1
    }
    assert set(twice) <= {(_field(recovery.held, "To"), _field(recovery.held, "Body"))}
    assert sum(twice.values()) <= 2
    unacknowledged = [r for r in recovery.replies if not r.acknowledged]
    arrivals = recovery.arrivals(ACME.slug)
    assert all(arrivals[(r.recipient, r.body)] <= 1 for r in unacknowledged)
    # and the restarted server sent nothing that nobody wrote (Parley's own texts aside)
    known = {r.body for r in recovery.replies} | {WARNING, CLOSING, GIVE_UP, MOVED_UP}
    after_kill = [
        _field(request, "Body")
        for slug, fake in recovery.fakes.items()
        for request in fake.received()[recovery.received_at_kill[slug] :]
    ]
    assert after_kill, "nothing was sent after the restart"
    assert set(after_kill) <= known


def test_every_outbox_row_ends_sent(recovery: Recovery) -> None:
    rows = recovery.stack.rows("SELECT status, count(*) AS n FROM outbox GROUP BY status")
    statuses = {row.status: int(row.n) for row in rows}
    assert statuses.keys() == {"sent"}, f"{statuses} {recovery.broken}"
    assert recovery.drained


def test_every_interaction_is_as_it_was_at_the_kill(recovery: Recovery) -> None:
    scene = {i: recovery.at_death[i] for i in recovery.before_kill}
    assert scene == recovery.before_kill, "the scene moved while it was read"
    _reached(recovery.after_restart, recovery)
    assert recovery.clock_after_restart == recovery.t0
    changed = {
        i: {
            c: (row[c], recovery.after_restart.get(i, {}).get(c))
            for c in COLUMNS
            if row[c] != recovery.after_restart.get(i, {}).get(c)
        }
        for i, row in recovery.at_death.items()
    }
    assert {i: c for i, c in changed.items() if c} == {}
    assert set(recovery.after_restart) == set(recovery.at_death)
    assert recovery.queues_after == recovery.queues_before


def test_agents_get_their_interactions_back(recovery: Recovery) -> None:
    scene, at_death = recovery.scene, recovery.at_death
    _reached(recovery.snapshots, recovery)
    alice, bob = recovery.snapshots["alice"], recovery.snapshots["bob"]
    shown = {
        i["id"]: (i["state"], [(m["id"], m["direction"], m["body"]) for m in i["messages"]])
        for snapshot in (alice, bob)
        for i in snapshot["interactions"]
    }
    assert sorted(i["id"] for i in alice["interactions"]) == sorted([scene.a1, scene.a2])
    assert [i["id"] for i in bob["interactions"]] == [scene.b1]
    for interaction_id in (scene.a1, scene.a2, scene.b1):
        state, messages = shown[interaction_id]
        assert state == at_death[interaction_id]["state"]
        assert messages == recovery.transcripts_at_death[interaction_id], interaction_id
    [a2] = [i for i in alice["interactions"] if i["id"] == scene.a2]
    assert _instant(a2["grace_until"]) == at_death[scene.a2]["grace_until"]
    assert alice["offers"] == []
    [offer] = bob["offers"]
    assert offer["interaction_id"] == scene.b2
    assert _instant(offer["expires_at"]) == at_death[scene.b2]["offer_expires_at"]
    assert _instant(offer["interaction"]["enqueued_at"]) == at_death[scene.b2]["enqueued_at"]
    assert (alice["agent"]["state"], bob["agent"]["state"]) == ("busy", "busy")
    for snapshot in (alice, bob):  # the waiting line, as the server holds it in memory
        [support] = [q for q in snapshot["queues"] if q["name"] == "Support"]
        assert support["waiting"] == len(scene.queued)
        oldest = at_death[scene.queued[0]]["enqueued_at"]
        assert _instant(support["oldest_enqueued_at"]) == oldest
    # A1's transcript holds every acknowledged text and reply, and nothing nobody wrote
    _, a1_messages = shown[scene.a1]
    inbound = [body for _, direction, body in a1_messages if direction == "inbound"]
    outbound = [body for _, direction, body in a1_messages if direction == "outbound"]
    posted = [p for p in recovery.posts if p.sender == A1]
    assert len(inbound) == len(set(inbound))
    assert {p.text for p in posted if p.acknowledged} <= set(inbound) <= {p.text for p in posted}
    written = [r for r in recovery.replies if r.interaction_id == scene.a1]
    assert {r.body for r in written if r.acknowledged} <= set(outbound)
    assert set(outbound) <= {r.body for r in written}


def test_an_agent_resuming_gets_every_event_it_had_not_seen(recovery: Recovery) -> None:
    """Events survive the restart (docs/architecture.md, Durability 4): alice's client from
    before the kill resumes after the last event it handed out and gets every later one, once,
    in order: among them a message for each text A1's customer had acknowledged."""
    _reached(recovery.resumed is not None, recovery)
    assert recovery.resumed is True
    later = [(seq, event) for seq, event in recovery.stored_events if seq > recovery.resumed_from]
    assert recovery.replayed == later
    shown = {e["message"]["body"] for _, e in recovery.replayed if e["kind"] == "message"}
    flood = {p.text for p in recovery.posts if p.acknowledged and "another thing" in p.text}
    assert len(flood) >= FLOOD_ACKS
    assert flood <= shown


def test_queued_interactions_are_offered_again_in_their_order(recovery: Recovery) -> None:
    scene = recovery.scene
    waiting = [
        w["interaction_id"]
        for q in recovery.queues_before["queues"]
        if q["name"] == "Support"
        for w in q["waiting"]
    ]
    assert waiting == list(scene.queued)
    q1, q2, q3 = scene.queued
    offers = recovery.offers_after_restart
    got = [(username, i) for username, i, _ in offers]
    assert got == [("alice", q1), ("bob", q2), ("bob", q3)], recovery.broken
    # the enqueue times the server holds in memory are those of the store: they never reset
    assert [_instant(at) for _, _, at in offers] == [
        recovery.at_death[i]["enqueued_at"] for i in scene.queued
    ]


TIMERS = ("grace", "offer", "wrap_up", "idle", "max_wait", "notice")


@pytest.mark.parametrize("name", TIMERS)
def test_every_timer_fires_at_its_deadline(recovery: Recovery, name: str) -> None:
    _reached(recovery.fired.get(name), recovery)
    fired = recovery.fired[name]
    at_death = recovery.at_death[fired.interaction_id]
    assert fired.before == at_death, "it moved before its deadline"
    before, after = fired.before, fired.after
    bob = user_id(recovery.stack, ACME, "bob")
    if name == "grace":
        assert (after["state"], after["closed_reason"]) == ("disconnected", "idle")
        assert after["closed_at"] == fired.deadline
        assert fired.texts == [CLOSING]
        assert recovery.care_arrivals[(A2, CLOSING)] == 1
    elif name == "offer":
        assert before["offered_to"] == bob
        assert (after["state"], after["offered_to"]) == ("queued", None)
        assert after["enqueued_at"] == at_death["enqueued_at"]  # its place in line is kept
        ended, state = fired.told
        assert (ended["interaction_id"], ended["reason"]) == (fired.interaction_id, "expired")
        assert (state["state"], state["reason"]) == ("away", "missed offer")
    elif name == "wrap_up":
        assert (after["state"], after["wrap_up_until"]) == ("disconnected", None)
        [told] = fired.told
        assert told["interaction"]["id"] == fired.interaction_id
    elif name == "idle":
        assert (before["state"], after["state"]) == ("connected", "idle")
        assert after["grace_until"] == fired.deadline + timedelta(seconds=GRACE_S)
        assert fired.texts == [WARNING]
        assert recovery.care_arrivals[(A1, WARNING)] == 1
    elif name == "max_wait":
        assert (after["state"], after["closed_reason"]) == ("disconnected", "max_wait")
        assert fired.texts == [GIVE_UP]
        assert recovery.care_arrivals[(G1, GIVE_UP)] == 1
    else:
        assert (before["notice_position"], after["notice_position"]) == (2, 1)
        assert after["state"] == "queued"
        assert after["next_notice_at"] == fired.deadline + timedelta(seconds=NOTICE_EVERY_S)
        assert fired.texts == [MOVED_UP]
        assert recovery.care_arrivals[(G2, MOVED_UP)] == 1
        # the first notices went once, before the kill, and not again after the restart
        globex = recovery.arrivals(GLOBEX.slug)
        assert (globex[(G1, ENTRY_1)], globex[(G2, ENTRY_2)]) == (1, 1)


def test_the_server_logged_no_failure(recovery: Recovery) -> None:
    log = recovery.stack.server.log()
    assert "Traceback" not in log and "failed" not in log, log
    assert recovery.broken == ""


def _reached(found: object, recovery: Recovery) -> None:
    """Fail, saying why, when the fixture stopped before it found `found`."""
    assert found, f"the scene stopped after the restart:\n{recovery.broken}"
