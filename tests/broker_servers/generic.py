"""Example SMS: the made-up broker that `broker_definitions/example-http.yaml` describes.

`ExampleHttpServer` is its API, a real HTTP server (`base.BrokerServer`: uvicorn in a thread on
a free loopback port). `POST /v1/messages` checks every header and the body exactly as the
definition describes them and answers as the broker would:

    201 {"id": "exm_<n>", "status": "accepted"}          (the same id again for a repeated
                                                           Idempotency-Key)
    400 {"error": {"code": "bad_request", "message"}}     a request not in the documented form
    401 {"error": {"code": "unauthorized", "message"}}    wrong bearer key
    422 {"error": {"code": "invalid_number", "message"}}  a phone number ending in 0000

Faults (`fail_next`) script everything else (5xx, 429, slow answers). The other direction, how
Example SMS calls Parley's webhooks, is `webhook(...)`, `text_event(...)` and `status_event(...)`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from tests.broker_servers.base import Answer, BrokerServer, Incoming

__all__ = [
    "API_KEY",
    "WEBHOOK_SECRET",
    "ExampleHttpServer",
    "status_event",
    "text_event",
    "webhook",
]

API_KEY = "exk_live_0123456789abcdef"
WEBHOOK_SECRET = "whsec_example_0123456789"

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_REQUIRED = ("from", "to", "text", "callback_url")
_OPTIONAL = ("media_urls", "profile_id")


def _error(status: int, code: str, message: str) -> Answer:
    return Answer.json(status, {"error": {"code": code, "message": message}})


class ExampleHttpServer(BrokerServer):
    """Example SMS's messages API; `api_url` is what an account (or the test) configures."""

    ROUTE = "/v1/messages"
    API_PREFIX = "/v1"

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self._api_key = api_key
        self._ids = itertools.count(1)
        self._by_key: dict[str, str] = {}
        self._lock = threading.Lock()
        super().__init__()

    def __enter__(self) -> ExampleHttpServer:
        self.start()
        return self

    def parse(self, headers: Mapping[str, str], body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None

    def answer(self, incoming: Incoming) -> Answer:
        headers, body = incoming.headers, incoming.fields
        if headers.get("authorization") != f"Bearer {self._api_key}":
            return _error(401, "unauthorized", "wrong or missing bearer key")
        if headers.get("content-type") != "application/json":
            return _error(400, "bad_request", "Content-Type must be application/json")
        key = headers.get("idempotency-key", "")
        if not key:
            return _error(400, "bad_request", "Idempotency-Key is required")
        problem = _body_problem(body)
        if problem:
            return _error(400, "bad_request", problem)
        if body["to"].endswith("0000"):
            return _error(422, "invalid_number", f"{body['to']} cannot receive texts")
        with self._lock:
            message_id = self._by_key.setdefault(key, f"exm_{next(self._ids)}")
        return Answer.json(201, {"id": message_id, "status": "accepted"}, message_id=message_id)


def _body_problem(body: object) -> str | None:
    """What is wrong with a send's body, or None when it is exactly the documented form."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    unknown = sorted(set(body) - set(_REQUIRED) - set(_OPTIONAL))
    missing = [key for key in _REQUIRED if key not in body]
    if unknown or missing:
        return f"unknown fields {unknown}, missing fields {missing}"
    if not all(isinstance(body[key], str) for key in _REQUIRED):
        return "from, to, text and callback_url must be strings"
    if not (_E164.fullmatch(body["from"]) and _E164.fullmatch(body["to"])):
        return "numbers must be in E.164"
    media = body.get("media_urls")
    if media is not None and (
        not isinstance(media, list) or not media or not all(isinstance(u, str) for u in media)
    ):
        return "media_urls must be a non-empty list of URLs"
    return None


# -- Example SMS calling Parley -----------------------------------------------------------------


def signature(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """The X-Example-Signature header of `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(payload: object, *, secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and headers Example SMS posts for `payload`, signed with `secret`."""
    body = orjson.dumps(payload)
    return body, {
        "Content-Type": "application/json",
        "X-Example-Signature": signature(body, secret),
    }


def text_event(
    *, message_id: str, sender: str, to: str, text: str | None, media: Sequence[str] = ()
) -> dict[str, Any]:
    """An inbound text, as Example SMS posts it."""
    event: dict[str, Any] = {
        "event": "message.received",
        "id": message_id,
        "from": sender,
        "to": to,
    }
    if text is not None:
        event["text"] = text
    if media:
        event["media"] = list(media)
    return event


def status_event(
    *, message_id: str, status: str, sender: str, to: str, reason: str | None = None
) -> dict[str, Any]:
    """A status report on a text we sent (`sender` is our number), as Example SMS posts it."""
    event: dict[str, Any] = {
        "event": "message.status",
        "message_id": message_id,
        "status": status,
        "from": sender,
        "to": to,
    }
    if reason is not None:
        event["error"] = {"code": "30003", "message": reason}
    return event
