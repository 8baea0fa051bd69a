"""Bad input never reaches the store: each case gets a 4xx with a JSON body saying what is wrong,
and the store holds no interaction, message, receipt or consent afterwards."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import httpx2
import pytest
from twilio.request_validator import RequestValidator

from tests.end_to_end.brokers import bandwidth_post, inteliquent_post, sandbox_text, twilio_post
from tests.end_to_end.conftest import STORED_TABLES, Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX

PHONE = "+14145559999"


@pytest.fixture(scope="module")
def empty_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("bad-input"))
    yield running
    running.server.stop()
    running.engine.dispose()


def sandbox_raw(client: httpx2.Client, body: bytes, **headers: str) -> httpx2.Response:
    return client.post(
        f"/webhooks/sandbox/{ACME.account('sandbox')}",
        content=body,
        headers={
            "Authorization": f"Bearer {ACME.sandbox_key}",
            "Content-Type": "application/json",
            **headers,
        },
    )


def twilio_params(**changes: str) -> dict[str, str]:
    params = {
        "MessageSid": "SM" + "0" * 32,
        "AccountSid": ACME.twilio_sid,
        "From": PHONE,
        "To": ACME.twilio_number,
        "Body": "hi",
        "NumMedia": "0",
    }
    params.update(changes)
    return params


Case = Callable[[httpx2.Client], httpx2.Response]

CASES: dict[str, tuple[Case, int, str]] = {
    "malformed JSON": (lambda c: sandbox_raw(c, b'{"id": "x", '), 400, "malformed_webhook"),
    "JSON of the wrong shape": (lambda c: sandbox_raw(c, b"[1, 2]"), 400, "malformed_webhook"),
    "missing from": (
        lambda c: sandbox_raw(c, b'{"id": "x", "to": "+19205550100", "text": "hi"}'),
        400,
        "malformed_webhook",
    ),
    "missing id": (
        lambda c: sandbox_raw(c, b'{"from": "+14145559999", "to": "+19205550100", "text": "a"}'),
        400,
        "malformed_webhook",
    ),
    "text not a string": (
        lambda c: sandbox_raw(
            c, b'{"id": "x", "from": "+14145559999", "to": "+19205550100", "text": 5}'
        ),
        400,
        "malformed_webhook",
    ),
    "impossible sender number": (
        lambda c: sandbox_text(c, ACME, message_id="bad-1", sender="+1414", text="hi"),
        422,
        "impossible_number",
    ),
    "letters for a number": (
        lambda c: sandbox_text(c, ACME, message_id="bad-2", sender="call me", text="hi"),
        422,
        "impossible_number",
    ),
    "a number that is not ours": (
        lambda c: sandbox_text(
            c, ACME, message_id="bad-3", sender=PHONE, to="+19205557777", text="hi"
        ),
        404,
        "unknown_number",
    ),
    "another organisation's number on our account": (
        lambda c: sandbox_text(
            c, ACME, message_id="bad-4", sender=PHONE, to=GLOBEX.support, text="x"
        ),
        404,
        "unknown_number",
    ),
    "unknown account": (
        lambda c: c.post(
            "/webhooks/sandbox/nobody",
            json={"id": "x", "from": PHONE, "to": ACME.support, "text": "hi"},
            headers={"Authorization": f"Bearer {ACME.sandbox_key}"},
        ),
        404,
        "unknown_account",
    ),
    "account of another broker": (
        lambda c: c.post(
            f"/webhooks/sandbox/{ACME.account('twilio')}",
            json={"id": "x", "from": PHONE, "to": ACME.support, "text": "hi"},
            headers={"Authorization": f"Bearer {ACME.sandbox_key}"},
        ),
        404,
        "unknown_account",
    ),
    "unknown broker": (
        lambda c: c.post("/webhooks/carrier-pigeon/acme", json={}),
        404,
        "unknown_broker",
    ),
    "wrong sandbox key": (
        lambda c: sandbox_raw(
            c,
            b'{"id": "x", "from": "+14145559999", "to": "+19205550100", "text": "hi"}',
            Authorization="Bearer wrong-key",
        ),
        401,
        "authentication_failed",
    ),
    "another organisation's key": (
        lambda c: sandbox_raw(
            c,
            b'{"id": "x", "from": "+14145559999", "to": "+19205550100", "text": "hi"}',
            Authorization=f"Bearer {GLOBEX.sandbox_key}",
        ),
        401,
        "authentication_failed",
    ),
    "twilio without signature": (
        lambda c: c.post(f"/webhooks/twilio/{ACME.account('twilio')}", data=twilio_params()),
        401,
        "authentication_failed",
    ),
    "twilio signed with the wrong token": (
        lambda c: c.post(
            f"/webhooks/twilio/{ACME.account('twilio')}",
            data=twilio_params(),
            headers={
                "X-Twilio-Signature": RequestValidator("not-the-token").compute_signature(
                    f"{c.base_url}".rstrip("/") + f"/webhooks/twilio/{ACME.account('twilio')}",
                    twilio_params(),
                )
            },
        ),
        401,
        "authentication_failed",
    ),
    "twilio body changed after signing": (
        lambda c: c.post(
            f"/webhooks/twilio/{ACME.account('twilio')}",
            data=twilio_params(Body="changed"),
            headers={
                "X-Twilio-Signature": RequestValidator(ACME.twilio_token).compute_signature(
                    f"{c.base_url}".rstrip("/") + f"/webhooks/twilio/{ACME.account('twilio')}",
                    twilio_params(),
                )
            },
        ),
        401,
        "authentication_failed",
    ),
    "twilio from another account": (
        lambda c: twilio_post(c, ACME, twilio_params(AccountSid=GLOBEX.twilio_sid)),
        401,
        "authentication_failed",
    ),
    "twilio form that is not a form": (
        lambda c: twilio_post(
            c, ACME, twilio_params(Body="x"), headers={"Content-Type": "application/json"}
        ),
        401,
        "authentication_failed",
    ),
    "malformed form": (
        lambda c: c.post(
            f"/webhooks/twilio/{ACME.account('twilio')}",
            content=b"MessageSid=SM1&From",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        "malformed_webhook",
    ),
    "body not UTF-8": (
        lambda c: c.post(
            f"/webhooks/twilio/{ACME.account('twilio')}",
            content=b"Body=\xff\xfe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        "malformed_webhook",
    ),
    "inteliquent without headers": (
        lambda c: c.post(
            f"/webhooks/inteliquent/{ACME.account('inteliquent')}",
            json={"referenceId": "x", "from": PHONE, "to": [ACME.inteliquent_number], "text": "a"},
        ),
        401,
        "authentication_failed",
    ),
    "inteliquent missing text": (
        lambda c: inteliquent_post(
            c, ACME, {"referenceId": "x", "from": PHONE, "to": [ACME.inteliquent_number]}
        ),
        400,
        "malformed_webhook",
    ),
    "bandwidth wrong password": (
        lambda c: c.post(
            f"/webhooks/bandwidth/{ACME.account('bandwidth')}",
            json=[],
            headers={
                "Authorization": "Basic "
                + base64.b64encode(f"{ACME.bandwidth_auth[0]}:nope".encode()).decode()
            },
        ),
        401,
        "authentication_failed",
    ),
    "bandwidth not an array": (
        lambda c: bandwidth_post(c, ACME, b'{"type": "x"}'),
        400,
        "malformed_webhook",
    ),
    "bandwidth one bad event in a batch": (
        lambda c: bandwidth_post(
            c,
            ACME,
            [
                {
                    "type": "message-received",
                    "to": ACME.bandwidth_number,
                    "message": {
                        "id": "ok",
                        "from": PHONE,
                        "to": [ACME.bandwidth_number],
                        "text": "fine",
                        "owner": ACME.bandwidth_number,
                    },
                },
                {
                    "type": "message-received",
                    "to": ACME.bandwidth_number,
                    "message": {
                        "id": "bad",
                        "from": "123",
                        "to": [ACME.bandwidth_number],
                        "text": "bad number",
                        "owner": ACME.bandwidth_number,
                    },
                },
            ],
        ),
        422,
        "impossible_number",
    ),
    "over-long body": (
        lambda c: sandbox_raw(c, b'{"id": "x", "text": "' + b"a" * 70_000 + b'"}'),
        413,
        "body_too_large",
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_refused_and_nothing_is_written(empty_stack: Stack, case: str) -> None:
    send, status, code = CASES[case]
    with empty_stack.client() as client:
        answer = send(client)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert empty_stack.counts() == dict.fromkeys(STORED_TABLES, 0)


def test_authentication_failures_are_logged_without_secrets(empty_stack: Stack) -> None:
    with empty_stack.client() as client:
        sandbox_raw(client, b"{}", Authorization="Bearer a-guessed-secret-value")
    log = empty_stack.server.log()
    assert "webhook refused" in log
    assert ACME.account("sandbox") in log
    assert "a-guessed-secret-value" not in log
    assert ACME.sandbox_key not in log


def test_the_api_wants_a_valid_token(empty_stack: Stack) -> None:
    with empty_stack.client() as anonymous:
        assert anonymous.get("/api/queues").status_code == 401
        wrong = anonymous.get("/api/queues", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    with empty_stack.client(ACME) as api:
        assert api.get("/api/interactions?state=lost").status_code == 422
        assert api.get("/api/interactions?limit=0").status_code == 422
        assert api.get("/api/interactions/999").json()["error"] == "not_found"
