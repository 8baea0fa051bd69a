"""A broker described by a file, end to end: a real Parley server loads
broker_definitions/example-http.yaml (PARLEY_BROKER_DEFINITIONS), an organisation has an account
on it, and Example SMS's webhooks (tests/broker_servers/generic.py) become stored texts and
receipts, with no code for that broker."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
import yaml

from server.adapters.brokers.registry import load_brokers
from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from server.adapters.persistence.database import create_store_engine, migrate
from server.cli import create_token
from tests.broker_servers.generic import (
    WEBHOOK_SECRET,
    status_event,
    text_event,
    webhook,
)
from tests.conftest import fresh_database_url
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, write_folder
from tests.end_to_end.server_process import ROOT, ParleyServer

DEFINITIONS = ROOT / "broker_definitions"
ACCOUNT = "acme-example"
NUMBER = "+19205550105"  # ACME's number on Example SMS, on the Support workgroup
WEBHOOK = f"/webhooks/example-http/{ACCOUNT}"

_phones = itertools.count(3000)


def new_phone() -> str:
    return f"+1414555{next(_phones):04d}"


def provision(database_url: str, folder: Any) -> None:
    """ACME's folder with one more account, on the example broker, and its number."""
    config = write_folder(folder / "config" / ACME.slug, ACME)
    brokers = yaml.safe_load((config / "brokers.yaml").read_text(encoding="utf-8"))
    brokers["accounts"].append(
        {
            "public_id": ACCOUNT,
            "broker": "example-http",
            "name": "Example SMS",
            "credentials": {"api_key": "exk-acme", "webhook_secret": WEBHOOK_SECRET},
        }
    )
    (config / "brokers.yaml").write_text(yaml.safe_dump(brokers), encoding="utf-8")
    numbers = yaml.safe_load((config / "numbers.yaml").read_text(encoding="utf-8"))
    numbers["numbers"].append({"number": NUMBER, "account": ACCOUNT, "workgroup": "Support"})
    (config / "numbers.yaml").write_text(yaml.safe_dump(numbers), encoding="utf-8")
    document = load_config_folder(config, brokers=load_brokers(DEFINITIONS))
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        apply_config(engine, document, actor="test", now=datetime.now(UTC))
        create_token(engine, organisation_slug=ACME.slug, name="test", value=ACME.token)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("generic")
    url = fresh_database_url(folder)
    provision(url, folder)
    server = ParleyServer(
        database_url=url,
        log_path=folder / "server.log",
        env={"PARLEY_BROKER_DEFINITIONS": str(DEFINITIONS)},
    )
    server.start()
    running = Stack(server=server, engine=create_store_engine(url), folder=folder)
    yield running
    running.server.stop()
    running.engine.dispose()


def post(
    client: httpx2.Client, payload: object, *, secret: str = WEBHOOK_SECRET
) -> httpx2.Response:
    body, headers = webhook(payload, secret=secret)
    return client.post(WEBHOOK, content=body, headers=headers)


def interaction_of(stack: Stack, phone: str) -> dict[str, Any]:
    rows = stack.rows("SELECT id FROM interaction WHERE remote_number = :phone", phone=phone)
    assert len(rows) == 1, rows
    with stack.client(ACME) as api:
        answer = api.get(f"/api/interactions/{rows[0].id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_text_becomes_a_queued_interaction(stack: Stack) -> None:
    phone = new_phone()
    event = text_event(
        message_id="exm_in_1",
        sender=phone,
        to=NUMBER,
        text="Hello from a generic broker",
        media=["https://files.example-sms.test/1.jpg"],
    )

    with stack.client() as client:
        answer = post(client, event)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "ok", "stored": 1, "duplicates": 0}
    found = interaction_of(stack, phone)
    assert found["interaction"]["state"] == "queued"
    assert found["interaction"]["local_number"] == NUMBER
    assert found["interaction"]["queue"]["name"] == "Support"
    [message] = found["messages"]
    assert (message["direction"], message["from"], message["to"]) == ("inbound", phone, NUMBER)
    assert message["body"] == "Hello from a generic broker"
    assert message["media"] == [
        {"url": "https://files.example-sms.test/1.jpg", "content_type": None}
    ]


def test_a_repeated_webhook_is_stored_once(stack: Stack) -> None:
    phone = new_phone()
    event = text_event(message_id="exm_in_dup", sender=phone, to=NUMBER, text="once")

    with stack.client() as client:
        first, again = post(client, event), post(client, event)

    assert first.json() == {"status": "ok", "stored": 1, "duplicates": 0}
    assert again.status_code == 200
    assert again.json() == {"status": "ok", "stored": 0, "duplicates": 1}
    rows = stack.rows("SELECT broker_message_id FROM message WHERE remote_number = :p", p=phone)
    assert [row.broker_message_id for row in rows] == ["exm_in_dup"]


def test_a_bad_signature_is_refused_and_nothing_is_written(stack: Stack) -> None:
    phone = new_phone()
    event = text_event(message_id="exm_in_forged", sender=phone, to=NUMBER, text="forged")
    before = stack.counts()

    with stack.client() as client:
        forged = post(client, event, secret="not-the-secret")
        unsigned = client.post(WEBHOOK, json=event)

    for answer in (forged, unsigned):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"] == "authentication_failed"
        assert WEBHOOK_SECRET not in answer.text
    assert answer.json()["detail"] == "header x-example-signature is missing"
    assert stack.counts() == before


def test_a_body_not_in_the_definition_s_format_is_malformed(stack: Stack) -> None:
    with stack.client() as client:
        answer = post(client, {"event": "message.received", "from": new_phone(), "to": NUMBER})

    assert answer.status_code == 400
    assert answer.json() == {"error": "malformed_webhook", "detail": "message id (/id) is missing"}


def test_a_receipt_is_stored_once(stack: Stack) -> None:
    phone = new_phone()
    delivered = status_event(message_id="exm_out_1", status="delivered", sender=NUMBER, to=phone)
    failed = status_event(
        message_id="exm_out_2", status="undelivered", sender=NUMBER, to=phone, reason="handset off"
    )

    with stack.client() as client:
        answers = [post(client, event) for event in (delivered, delivered, failed)]

    assert [answer.status_code for answer in answers] == [200, 200, 200]
    rows = stack.rows(
        "SELECT broker_message_id, status, broker_status, reason FROM delivery_receipt "
        "WHERE broker_message_id LIKE 'exm_out_%' ORDER BY id"
    )
    assert [tuple(row) for row in rows] == [
        ("exm_out_1", "delivered", "delivered", None),
        ("exm_out_2", "failed", "undelivered", "handset off"),
    ]
