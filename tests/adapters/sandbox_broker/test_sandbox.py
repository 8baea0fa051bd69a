"""Tests for the sandbox broker (server/adapters/sandbox_broker/) and its outbound client
(server/adapters/brokers/sandbox_client.py), over real HTTP.

A real uvicorn on a free loopback port serves the sandbox under /sandbox and, beside it, a small
stand-in for Parley's sandbox webhook that records what it receives and answers as each test
tells it: the caller the sandbox talks to, not the system under test.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx2
import orjson
import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from server.adapters.brokers import sandbox as sandbox_wire
from server.adapters.brokers.sandbox_client import SandboxClient
from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)
from server.adapters.brokers.webhook import InboundReceipt, InboundText, WebhookRequest
from server.adapters.clock import ManualClock
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.persistence.tables import (
    BrokerAccount,
    Organisation,
    PhoneNumber,
    Provider,
    Workgroup,
    table_of,
)
from server.adapters.sandbox_broker import tables as sandbox_tables
from server.adapters.sandbox_broker.routes import sandbox_routes
from server.adapters.sandbox_broker.service import UNREACHABLE_REASON, SandboxBroker
from server.core.delivery import DeliveryStatus
from tests.adapters.brokers.sending import send_once
from tests.conftest import TIMEOUT_SCALE, fresh_database_url

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ACCOUNT = "sbx-acme"
KEY = "acme-sandbox-key"
OTHER_ACCOUNT = "sbx-other"
OTHER_KEY = "other-sandbox-key"
SUPPORT = "+12065550100"  # a number of ACCOUNT
SALES = "+12065550101"  # a number of ACCOUNT
OTHERS = "+13125550100"  # a number of OTHER_ACCOUNT
PHONE = "+14155550123"  # a customer's handset
UNREACHABLE = "+14155550199"  # ends with 5550199: texts to it fail

WAIT_S = 10 * TIMEOUT_SCALE

_messages = table_of(sandbox_tables.SandboxMessage)


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition` until it holds, failing after the scaled deadline."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass
class Received:
    path: str
    account: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        payload: dict[str, Any] = orjson.loads(self.body)
        return payload


@dataclass
class FakeParley:
    """Parley's sandbox webhook as the sandbox sees it: it records each call and answers with
    the next status in `answers` (200 once they run out), after `gate` opens."""

    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.gate.set()

    async def webhook(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.received.append(
                Received(
                    path=request.url.path,
                    account=request.path_params["account"],
                    headers={name.lower(): value for name, value in request.headers.items()},
                    body=body,
                )
            )
            status = self.answers.pop(0) if self.answers else 200
        await anyio.to_thread.run_sync(self.gate.wait, WAIT_S)
        if status >= 300:
            return JSONResponse({"error": "store_unavailable", "detail": "boom"}, status)
        return JSONResponse({"status": "ok", "stored": 1, "duplicates": 0})

    def snapshot(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def receipts(self) -> list[dict[str, Any]]:
        return [r.json for r in self.snapshot() if r.json.get("type") == "receipt"]

    def texts(self) -> list[Received]:
        return [r for r in self.snapshot() if r.json.get("type", "message") == "message"]


class Server:
    """uvicorn in a thread on a socket bound to a free loopback port."""

    def __init__(self, app: Starlette) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        wait_for(lambda: self._server.started, "the test server to start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(WAIT_S)
        self._socket.close()


@dataclass
class Sandbox:
    url: str  # the server's base URL
    http: httpx2.Client
    parley: FakeParley
    broker: SandboxBroker
    engine: sa.Engine

    @property
    def api(self) -> str:
        return f"{self.url}/sandbox"

    @property
    def callback(self) -> str:
        return f"{self.url}/webhooks/sandbox/{ACCOUNT}"

    def send(
        self, body: dict[str, Any], *, key: str | None = KEY, account: str = ACCOUNT
    ) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        return self.http.post(
            f"/sandbox/api/accounts/{account}/messages", json=body, headers=headers
        )

    def text_for_phone(self, text: str = "Hello from Acme", **extra: Any) -> dict[str, Any]:
        return {
            "from": SUPPORT,
            "to": PHONE,
            "text": text,
            "status_callback": self.callback,
            **extra,
        }

    def phone_sends(self, phone: str, body: dict[str, Any]) -> httpx2.Response:
        return self.http.post(f"/sandbox/phones/{phone}/messages", json=body)

    def phone_shows(self, phone: str = PHONE, **params: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/sandbox/phones/{phone}/messages", params=params)
        assert response.status_code == 200, response.text
        messages: list[dict[str, Any]] = response.json()["messages"]
        return messages

    def stored_count(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(_messages)).scalar_one()
            )


def seed(engine: sa.Engine) -> None:
    """A provider, an organisation with a workgroup, two sandbox accounts with their numbers,
    and a Twilio account whose public id the sandbox must not answer for."""
    with engine.begin() as connection:

        def insert(model: type[Any], **values: Any) -> int:
            table = table_of(model)
            inserted = connection.execute(sa.insert(table).values(**values).returning(table.c.id))
            return int(inserted.scalar_one())

        provider = insert(Provider, slug="prov", name="Provider", created_at=NOW)
        organisation = insert(
            Organisation, provider_id=provider, slug="acme", name="Acme", created_at=NOW
        )
        workgroup = insert(
            Workgroup,
            organisation_id=organisation,
            name="Support",
            required_skills={},
            escalation=[],
            created_at=NOW,
        )
        accounts = [
            (ACCOUNT, "sandbox", {"webhook_key": KEY}, [SUPPORT, SALES]),
            (OTHER_ACCOUNT, "sandbox", {"webhook_key": OTHER_KEY}, [OTHERS]),
            ("tw-acme", "twilio", {"account_sid": "AC1", "auth_token": "t"}, ["+12065550102"]),
        ]
        for public_id, broker, credentials, numbers in accounts:
            account = insert(
                BrokerAccount,
                provider_id=provider,
                organisation_id=organisation,
                public_id=public_id,
                broker=broker,
                name=public_id,
                credentials=credentials,
                created_at=NOW,
            )
            for number in numbers:
                insert(
                    PhoneNumber,
                    organisation_id=organisation,
                    broker_account_id=account,
                    e164=number,
                    friendly_name=number,
                    workgroup_id=workgroup,
                    created_at=NOW,
                )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    engine = create_store_engine(fresh_database_url(tmp_path))
    migrate(engine)
    seed(engine)
    clock = ManualClock(NOW)
    broker = SandboxBroker(
        engine=engine,
        clock=clock,
        receipt_attempts=4,
        retry_backoff_s=0.01,
        receipt_pause_s=0,
        webhook_timeout_s=WAIT_S,
    )
    parley = FakeParley()

    async def broken(request: Request) -> Response:
        return JSONResponse({"error": "unavailable", "detail": "down for maintenance"}, 503)

    async def slow(request: Request) -> Response:
        await anyio.to_thread.run_sync(parley.gate.wait, WAIT_S)
        return JSONResponse({"id": "SBXlate", "status": "accepted"}, 202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await broker.aclose()

    app = Starlette(
        routes=[
            Mount("/sandbox", routes=sandbox_routes(engine, clock=clock, broker=broker)),
            Route("/webhooks/sandbox/{account}", parley.webhook, methods=["POST"]),
            Route("/broken/api/accounts/{account}/messages", broken, methods=["POST"]),
            Route("/slow/api/accounts/{account}/messages", slow, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    server = Server(app)
    server.start()
    try:
        with httpx2.Client(base_url=server.base_url, timeout=WAIT_S) as http:
            yield Sandbox(
                url=server.base_url, http=http, parley=parley, broker=broker, engine=engine
            )
    finally:
        parley.gate.set()
        server.stop()
        engine.dispose()


def as_parley_reads(received: Received, *, key: str = KEY) -> list[InboundText | InboundReceipt]:
    """Authenticate and parse a recorded call with Parley's own sandbox wire module."""
    request = WebhookRequest(url=received.path, headers=received.headers, body=received.body)
    sandbox_wire.authenticate(request, {"webhook_key": key})
    items = sandbox_wire.parse(request)
    assert all(isinstance(item, InboundText | InboundReceipt) for item in items)
    return items


# -- texts to a phone (what Parley's sender calls) -----------------------------------------


def test_a_text_for_a_phone_is_accepted_shown_on_the_phone_and_receipted(sandbox: Sandbox) -> None:
    response = sandbox.send(sandbox.text_for_phone(media=["https://example.com/a.png"]))

    assert response.status_code == 202, response.text
    message_id = response.json()["id"]
    assert response.json()["status"] == "accepted"
    assert message_id.startswith("SBX")
    assert len(message_id) == 27
    shown = sandbox.phone_shows()
    assert [(m["id"], m["direction"], m["from"], m["to"], m["text"]) for m in shown] == [
        (message_id, "to_phone", SUPPORT, PHONE, "Hello from Acme")
    ]
    assert shown[0]["media"] == ["https://example.com/a.png"]

    wait_for(lambda: len(sandbox.parley.receipts()) == 2, "two receipts")
    receipts = sandbox.parley.snapshot()
    assert [r.json["status"] for r in receipts] == ["sent", "delivered"]
    for received in receipts:
        assert received.path == f"/webhooks/sandbox/{ACCOUNT}"
        assert received.json == {
            "type": "receipt",
            "id": message_id,
            "status": received.json["status"],
            "from": SUPPORT,
            "to": PHONE,
        }
        (item,) = as_parley_reads(received)
        assert isinstance(item, InboundReceipt)
        assert item.broker_message_id == message_id
    assert [getattr(item, "status", None) for r in receipts for item in as_parley_reads(r)] == [
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
    ]
    wait_for(lambda: sandbox.phone_shows()[0]["status"] == "delivered", "status delivered")


def test_the_same_idempotency_key_gives_the_same_id_and_stores_once(sandbox: Sandbox) -> None:
    body = sandbox.text_for_phone(idempotency_key="outbox-17-attempt")
    first = sandbox.send(body)
    again = sandbox.send(body)

    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(sandbox.phone_shows()) == 1
    wait_for(lambda: sandbox.broker.pending_receipts == 0, "receipts to finish")
    assert [r["status"] for r in sandbox.parley.receipts()] == ["sent", "delivered"]

    # the key is the account's: another key is another text
    other = sandbox.send(sandbox.text_for_phone(idempotency_key="outbox-18-attempt"))
    assert other.json()["id"] != first.json()["id"]
    assert sandbox.stored_count() == 2


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", f"Basic {KEY}", f"Bearer {OTHER_KEY}", "Bearer"],
)
def test_a_wrong_key_is_refused_with_401(sandbox: Sandbox, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = sandbox.http.post(
        f"/sandbox/api/accounts/{ACCOUNT}/messages",
        json=sandbox.text_for_phone(),
        headers=headers,
    )

    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"
    assert KEY not in response.text
    assert sandbox.stored_count() == 0


@pytest.mark.parametrize("account", ["no-such-account", "tw-acme"])
def test_an_unknown_account_is_refused_with_404(sandbox: Sandbox, account: str) -> None:
    response = sandbox.send(sandbox.text_for_phone(), account=account)

    assert response.status_code == 404
    assert response.json()["error"] == "unknown_account"
    assert sandbox.stored_count() == 0


@pytest.mark.parametrize("sender", [OTHERS, "+12065550102", "+12065550109"])
def test_from_must_be_a_number_of_the_account(sandbox: Sandbox, sender: str) -> None:
    response = sandbox.send(sandbox.text_for_phone(**{"from": sender}))

    assert response.status_code == 422
    assert response.json()["error"] == "unknown_number"
    assert sender in response.json()["detail"]
    assert sandbox.stored_count() == 0


def test_numbers_in_national_form_are_read_as_e164(sandbox: Sandbox) -> None:
    response = sandbox.send(sandbox.text_for_phone(**{"from": "12065550100", "to": "4155550123"}))

    assert response.status_code == 202, response.text
    assert sandbox.phone_shows()[0]["from"] == SUPPORT


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"not json", 400, "malformed_request"),
        (b"[]", 400, "malformed_request"),
        (orjson.dumps({"from": SUPPORT, "text": "hi"}), 400, "malformed_request"),
        (orjson.dumps({"from": SUPPORT, "to": PHONE}), 400, "malformed_request"),
        (orjson.dumps({"from": SUPPORT, "to": PHONE, "text": 3}), 400, "malformed_request"),
        (
            orjson.dumps({"from": SUPPORT, "to": PHONE, "text": "hi", "media": "x.png"}),
            400,
            "malformed_request",
        ),
        (
            orjson.dumps(
                {"from": SUPPORT, "to": PHONE, "text": "hi", "status_callback": "ftp://x/y"}
            ),
            400,
            "malformed_request",
        ),
        (orjson.dumps({"from": SUPPORT, "to": "12", "text": "hi"}), 422, "impossible_number"),
        (orjson.dumps({"from": SUPPORT, "to": PHONE, "text": ""}), 422, "empty_text"),
        (b"{" + b" " * 70_000 + b"}", 413, "body_too_large"),
    ],
)
def test_a_malformed_text_is_refused(
    sandbox: Sandbox, body: bytes, status: int, error: str
) -> None:
    response = sandbox.http.post(
        f"/sandbox/api/accounts/{ACCOUNT}/messages",
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )

    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["detail"]
    assert sandbox.stored_count() == 0


def test_a_text_to_an_unreachable_handset_fails(sandbox: Sandbox) -> None:
    response = sandbox.send(sandbox.text_for_phone(to=UNREACHABLE))
    assert response.status_code == 202

    wait_for(lambda: len(sandbox.parley.receipts()) == 2, "two receipts")
    sent, failed = sandbox.parley.receipts()
    assert (sent["status"], failed["status"]) == ("sent", "failed")
    assert failed["reason"] == UNREACHABLE_REASON == "unreachable handset"
    (item,) = as_parley_reads(sandbox.parley.snapshot()[1])
    assert isinstance(item, InboundReceipt)
    assert (item.status, item.reason) == (DeliveryStatus.FAILED, UNREACHABLE_REASON)
    wait_for(lambda: sandbox.phone_shows(UNREACHABLE)[0]["status"] == "failed", "failed status")
    assert sandbox.phone_shows(UNREACHABLE)[0]["reason"] == UNREACHABLE_REASON


def test_a_receipt_parley_does_not_take_is_retried(sandbox: Sandbox) -> None:
    sandbox.parley.answers = [503, 500]

    sandbox.send(sandbox.text_for_phone())

    wait_for(lambda: len(sandbox.parley.receipts()) == 4, "four receipt posts")
    assert [r["status"] for r in sandbox.parley.receipts()] == [
        "sent",
        "sent",
        "sent",
        "delivered",
    ]


def test_a_text_without_a_status_callback_is_still_delivered(sandbox: Sandbox) -> None:
    body = sandbox.text_for_phone()
    del body["status_callback"]

    assert sandbox.send(body).status_code == 202
    wait_for(lambda: sandbox.phone_shows()[0]["status"] == "delivered", "status delivered")
    assert sandbox.parley.snapshot() == []


# -- texts from a phone --------------------------------------------------------------------


def test_a_phone_text_reaches_parley_authenticated_and_is_answered_only_after(
    sandbox: Sandbox,
) -> None:
    sandbox.parley.gate.clear()  # Parley holds its answer until the test lets it go
    answers: list[httpx2.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            sandbox.phone_sends(PHONE, {"to": SUPPORT, "text": "Hi, my order?"})
        )
    )
    sender.start()
    try:
        wait_for(lambda: len(sandbox.parley.texts()) == 1, "the text at Parley")
        assert answers == []  # Parley has not answered, so neither has the sandbox
    finally:
        sandbox.parley.gate.set()
    sender.join(WAIT_S)

    (answer,) = answers
    assert answer.status_code == 201, answer.text
    message_id = answer.json()["id"]
    assert answer.json() == {"id": message_id, "delivered": True, "status": 200}
    (received,) = sandbox.parley.texts()
    assert received.path == f"/webhooks/sandbox/{ACCOUNT}"
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.json == {
        "id": message_id,
        "from": PHONE,
        "to": SUPPORT,
        "text": "Hi, my order?",
        "media": [],
    }
    (item,) = as_parley_reads(received)
    assert isinstance(item, InboundText)
    assert (item.broker_message_id, item.raw_from, item.raw_to, item.body) == (
        message_id,
        PHONE,
        SUPPORT,
        "Hi, my order?",
    )
    (shown,) = sandbox.phone_shows()
    assert (shown["direction"], shown["from"], shown["to"], shown["status"]) == (
        "from_phone",
        PHONE,
        SUPPORT,
        "delivered",
    )


def test_a_phone_text_goes_to_the_account_that_has_the_number(sandbox: Sandbox) -> None:
    answer = sandbox.phone_sends(PHONE, {"to": OTHERS, "media": ["https://example.com/p.jpg"]})

    assert answer.status_code == 201, answer.text
    (received,) = sandbox.parley.texts()
    assert received.account == OTHER_ACCOUNT
    (item,) = as_parley_reads(received, key=OTHER_KEY)
    assert isinstance(item, InboundText)
    assert (item.body, [m.url for m in item.media]) == ("", ["https://example.com/p.jpg"])


def test_parley_failing_a_phone_text_gives_502_and_a_failed_text(sandbox: Sandbox) -> None:
    sandbox.parley.answers = [500]

    answer = sandbox.phone_sends(PHONE, {"to": SUPPORT, "text": "anyone?"})

    assert answer.status_code == 502, answer.text
    assert answer.json()["error"] == "parley_failed"
    assert answer.json()["delivered"] is False
    assert answer.json()["status"] == 500
    assert "500" in answer.json()["detail"]
    (shown,) = sandbox.phone_shows()
    assert (shown["id"], shown["status"]) == (answer.json()["id"], "failed")
    assert "500" in shown["reason"]


@pytest.mark.parametrize(
    ("phone", "body", "status", "error"),
    [
        (PHONE, {"to": "+12065550109", "text": "hi"}, 404, "unknown_number"),
        (PHONE, {"to": "+12065550102", "text": "hi"}, 404, "unknown_number"),  # a Twilio number
        ("12", {"to": SUPPORT, "text": "hi"}, 422, "impossible_number"),
        (PHONE, {"text": "hi"}, 400, "malformed_request"),
    ],
)
def test_a_phone_text_the_sandbox_cannot_carry_is_refused(
    sandbox: Sandbox, phone: str, body: dict[str, Any], status: int, error: str
) -> None:
    answer = sandbox.phone_sends(phone, body)

    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error
    assert sandbox.parley.snapshot() == []
    assert sandbox.stored_count() == 0


# -- what a phone shows ----------------------------------------------------------------------


def test_a_phone_shows_its_texts_both_ways_in_order_and_after_an_id(sandbox: Sandbox) -> None:
    ids = [sandbox.phone_sends(PHONE, {"to": SUPPORT, "text": "one"}).json()["id"]]
    ids.append(sandbox.send(sandbox.text_for_phone("two")).json()["id"])
    ids.append(sandbox.phone_sends(PHONE, {"to": SALES, "text": "three"}).json()["id"])
    sandbox.phone_sends("+14155550124", {"to": SUPPORT, "text": "someone else"})
    ids.append(sandbox.send(sandbox.text_for_phone("four", **{"from": SALES})).json()["id"])

    shown = sandbox.phone_shows()
    assert [(m["id"], m["text"]) for m in shown] == list(
        zip(ids, ["one", "two", "three", "four"], strict=True)
    )
    assert [m["direction"] for m in shown] == ["from_phone", "to_phone", "from_phone", "to_phone"]
    assert [m["text"] for m in sandbox.phone_shows(after=ids[1])] == ["three", "four"]
    assert sandbox.phone_shows(after=ids[3]) == []
    assert [m["text"] for m in sandbox.phone_shows(limit="2")] == ["one", "two"]
    assert sandbox.phone_shows("+14155550125") == []
    # the path may carry the number escaped, or without its "+"
    assert len(sandbox.phone_shows("%2B14155550123")) == 4
    assert len(sandbox.phone_shows("14155550123")) == 4


@pytest.mark.parametrize(
    ("params", "error"),
    [({"after": "SBXnope"}, "unknown_message"), ({"limit": "0"}, "malformed_request")],
)
def test_a_bad_read_is_refused_with_400(
    sandbox: Sandbox, params: dict[str, str], error: str
) -> None:
    response = sandbox.http.get(f"/sandbox/phones/{PHONE}/messages", params=params)

    assert response.status_code == 400
    assert response.json()["error"] == error


def test_after_must_name_a_text_of_the_same_phone(sandbox: Sandbox) -> None:
    other = sandbox.phone_sends("+14155550124", {"to": SUPPORT, "text": "x"}).json()["id"]

    response = sandbox.http.get(f"/sandbox/phones/{PHONE}/messages", params={"after": other})

    assert response.status_code == 400


# -- Parley's outbound client against the real sandbox ---------------------------------------


def client_send(api_base_url: str, *, timeout_s: float = WAIT_S, **overrides: Any) -> str:
    """Send one text with SandboxClient on a fresh httpx2.AsyncClient; return the id."""
    arguments: dict[str, Any] = {
        "account_public_id": ACCOUNT,
        "api_base_url": api_base_url,
        "key": KEY,
        "sender": SUPPORT,
        "to": PHONE,
        "text": "Your order shipped",
        "media": (),
        "idempotency_key": "outbox-1-1",
        "status_callback": "http://127.0.0.1:9/unused",
        **overrides,
    }

    text = OutboundText(
        sender=arguments["sender"],
        recipient=arguments["to"],
        text=arguments["text"],
        idempotency_key=arguments["idempotency_key"],
        status_callback=arguments["status_callback"],
        media=tuple(arguments["media"]),
    )
    settings = ClientSettings(
        account=arguments["account_public_id"],
        api_url=arguments["api_base_url"],
        credentials={"webhook_key": arguments["key"]},
        timeout_s=timeout_s,
    )
    return send_once(SandboxClient, text, settings)


def test_the_client_sends_through_the_sandbox_and_gets_its_id(sandbox: Sandbox) -> None:
    message_id = client_send(sandbox.api, status_callback=sandbox.callback, media=["https://e/x"])

    assert message_id.startswith("SBX")
    assert client_send(sandbox.api + "/", status_callback=sandbox.callback) == message_id
    (shown,) = sandbox.phone_shows()
    assert (shown["id"], shown["text"], shown["media"]) == (
        message_id,
        "Your order shipped",
        ["https://e/x"],
    )
    wait_for(lambda: len(sandbox.parley.receipts()) == 2, "two receipts")


@pytest.mark.parametrize(
    ("overrides", "status", "reason"),
    [
        ({"key": "wrong"}, 401, "authentication_failed"),
        ({"account_public_id": "nobody"}, 404, "unknown_account"),
        ({"sender": OTHERS}, 422, "unknown_number"),
        ({"to": "12"}, 422, "impossible_number"),
    ],
)
def test_the_client_raises_broker_rejected_for_a_refusal(
    sandbox: Sandbox, overrides: dict[str, Any], status: int, reason: str
) -> None:
    with pytest.raises(BrokerRejected) as raised:
        client_send(sandbox.api, **overrides)

    assert raised.value.status == status
    assert raised.value.reason == reason
    assert KEY not in str(raised.value)


def test_the_client_raises_broker_unavailable_for_a_5xx(sandbox: Sandbox) -> None:
    with pytest.raises(BrokerUnavailable) as raised:
        client_send(f"{sandbox.url}/broken")

    assert raised.value.status == 503
    assert "down for maintenance" in raised.value.detail


def test_the_client_raises_broker_unavailable_when_nothing_listens() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, now closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(BrokerUnavailable) as raised:
        client_send(f"http://127.0.0.1:{port}/sandbox")

    assert raised.value.status is None


def test_the_client_raises_broker_unavailable_on_a_timeout(sandbox: Sandbox) -> None:
    sandbox.parley.gate.clear()
    try:
        with pytest.raises(BrokerUnavailable, match="in time"):
            client_send(f"{sandbox.url}/slow", timeout_s=0.2)
    finally:
        sandbox.parley.gate.set()


def test_the_client_raises_broker_rejected_for_an_unusable_address() -> None:
    with pytest.raises(BrokerRejected) as raised:
        client_send("ftp://127.0.0.1/sandbox")

    assert raised.value.reason == "invalid_api_url"
