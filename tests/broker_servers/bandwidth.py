"""A fake Bandwidth Messaging v2: `POST /api/v2/users/{accountId}/messages`, and callbacks.

It checks the request as Bandwidth documents it and answers its `{"type", "description"}` error:
    401 unauthorized           no Basic auth, not the API user's name and password, or a path
                               naming another account
    415 unsupported-media-type the body is not `application/json`
    400 request-validation     the body is not a JSON object, or fields are wrong; each one is
                               listed in `fieldErrors: [{"fieldName", "description"}]`:
                               `applicationId` (not the account's application), `to` (not a
                               non-empty list of E.164 numbers), `from` (not E.164, or not one of
                               `numbers` when they are given), `text` (missing without `media`,
                               not a string, over 2048 characters), `media` (not a list of http(s)
                               URLs), `tag` (not a string, over 1024 characters)
Otherwise 202 with the message: `id` in Bandwidth's style (13 digits of epoch milliseconds and
16 lower-case letters and digits), `owner`, `applicationId`, `time`, `segmentCount`,
`direction: "out"`, `to`, `from`, `text`, `media`, `tag`, `priority`.

`send_callback(url, sent)` posts what Bandwidth posts to the application's callback URL about a
message it sent: a JSON array of one event `{"type": "message-delivered" | "message-failed" |
"message-sending", "time", "description", "to", "message": {"id", "owner", "applicationId",
"time", "segmentCount", "direction", "to", "from", "text", "media", "tag"}}` (with `errorCode`
on failure), with the HTTP Basic user name and password set on the application
(`callback_auth`). This is the shape `server/adapters/brokers/bandwidth.py` parses.

Sources: dev.bandwidth.com/docs/messaging/createMessage (the request, `tag`),
dev.bandwidth.com/v2-messaging/codes.html (the errors), dev.bandwidth.com/docs/messaging/webhooks
(callbacks: an array, to the application's URL, message-delivered / message-failed with
`errorCode` and `description`), Bandwidth's SDK models (MessageRequest, Message,
CreateMessageRequestError with `fieldErrors`, StatusCallback).
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx2
import orjson

from tests.broker_servers.base import (
    WAIT_S,
    Answer,
    BrokerServer,
    Incoming,
    Received,
    basic_credentials,
)

__all__ = ["BandwidthServer"]

_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
_MAX_TEXT = 2048
_MAX_TAG = 1024
_ID_ALPHABET = string.ascii_lowercase + string.digits
_FAILED_DESCRIPTION = "rejected-forbidden-country"
_NOT_E164 = "'{}' must be replaced with a valid E164 formatted telephone number"


class BandwidthServer(BrokerServer):
    """Bandwidth's messages endpoint for one account and API user (see the module docstring).

    `numbers`: the account's numbers (`from` must be one; empty: any). `callback_auth`: the
    Basic user name and password of the application's callback.
    """

    ROUTE = "/api/v2/users/{account_id}/messages"
    API_PREFIX = "/api/v2"

    def __init__(
        self,
        *,
        account_id: str,
        application_id: str,
        username: str,
        password: str,
        numbers: Collection[str] = (),
        callback_auth: tuple[str, str] | None = None,
    ) -> None:
        self.account_id = account_id
        self.application_id = application_id
        self.username = username
        self.password = password
        self.numbers = frozenset(numbers)
        self.callback_auth = callback_auth
        super().__init__()

    def __enter__(self) -> BandwidthServer:
        self.start()
        return self

    @staticmethod
    def error(
        status: int,
        kind: str,
        description: str,
        *,
        field_errors: Collection[tuple[str, str]] = (),
    ) -> Answer:
        """Bandwidth's error answer: `{"type", "description"}`, with `fieldErrors` if any."""
        body: dict[str, object] = {"type": kind, "description": description}
        if field_errors:
            body["fieldErrors"] = [
                {"fieldName": name, "description": said} for name, said in field_errors
            ]
        return Answer.json(status, body)

    # -- the endpoint ------------------------------------------------------------------------

    def parse(self, headers: Mapping[str, str], body: bytes) -> Any:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return None

    def answer(self, incoming: Incoming) -> Answer:
        credentials = basic_credentials(incoming.headers.get("authorization", ""))
        if (
            credentials != (self.username, self.password)
            or incoming.path_params["account_id"] != self.account_id
        ):
            return self.error(401, "unauthorized", "Authentication Failed")
        if not incoming.headers.get("content-type", "").startswith("application/json"):
            return self.error(
                415, "unsupported-media-type", "Content-Type must be application/json"
            )
        payload = incoming.fields
        if not isinstance(payload, dict):
            return self.error(400, "request-validation", "Your request could not be accepted.")
        problems = self._field_errors(payload)
        if problems:
            return self.error(
                400,
                "request-validation",
                "Your request could not be accepted.",
                field_errors=problems,
            )
        message_id = str(int(time.time() * 1000)) + "".join(
            secrets.choice(_ID_ALPHABET) for _ in range(16)
        )
        now = _now()
        message = {
            "id": message_id,
            "owner": payload["from"],
            "applicationId": payload["applicationId"],
            "time": now,
            "segmentCount": 1,
            "direction": "out",
            "to": payload["to"],
            "from": payload["from"],
            "text": payload.get("text", ""),
            "media": payload.get("media", []),
            "tag": payload.get("tag"),
            "priority": payload.get("priority", "default"),
        }
        return Answer.json(202, message, message_id=message_id)

    def _field_errors(self, payload: Mapping[str, Any]) -> list[tuple[str, str]]:
        problems = []
        if payload.get("applicationId") != self.application_id:
            problems.append(
                ("applicationId", f"'{payload.get('applicationId')}' is not a valid application")
            )
        to = payload.get("to")
        if not isinstance(to, list) or not to:
            problems.append(("to", "must contain at least one E164 formatted telephone number"))
        else:
            problems.extend(
                ("to", _NOT_E164.format(number))
                for number in to
                if not (isinstance(number, str) and _E164.match(number))
            )
        sender = payload.get("from")
        if not (isinstance(sender, str) and _E164.match(sender)):
            problems.append(("from", _NOT_E164.format(sender)))
        elif self.numbers and sender not in self.numbers:
            problems.append(("from", f"'{sender}' is not a number of this account"))
        media = payload.get("media")
        if media is not None and not (
            isinstance(media, list) and all(_is_http_url(url) for url in media)
        ):
            problems.append(("media", "must be a list of http(s) URLs"))
        text = payload.get("text")
        if text is None and not media:
            problems.append(("text", "is required when there is no media"))
        elif text is not None and (not isinstance(text, str) or len(text) > _MAX_TEXT):
            problems.append(("text", f"must be a string of at most {_MAX_TEXT} characters"))
        tag = payload.get("tag")
        if tag is not None and (not isinstance(tag, str) or len(tag) > _MAX_TAG):
            problems.append(("tag", f"must be a string of at most {_MAX_TAG} characters"))
        return problems

    # -- callbacks ---------------------------------------------------------------------------

    def send_callback(
        self,
        url: str,
        sent: Received,
        *,
        kind: str = "message-delivered",
        error_code: int | None = None,
        description: str | None = None,
    ) -> httpx2.Response:
        """Post the callback event `kind` about the accepted send `sent` to the application's
        callback `url`, with `callback_auth`; return Parley's answer. A `message-failed` carries
        `error_code` (4432 unless given)."""
        if sent.message_id is None:
            raise ValueError("the send was not accepted: it has no message id")
        fields: dict[str, Any] = sent.fields
        now = _now()
        event: dict[str, Any] = {
            "type": kind,
            "time": now,
            "description": description or ("ok" if kind != "message-failed" else ""),
            "to": fields["to"][0],
            "message": {
                "id": sent.message_id,
                "owner": fields["from"],
                "applicationId": fields["applicationId"],
                "time": now,
                "segmentCount": 1,
                "direction": "out",
                "to": fields["to"],
                "from": fields["from"],
                "text": "",
                "media": fields.get("media", []),
                "tag": fields.get("tag"),
            },
        }
        if kind == "message-failed":
            event["errorCode"] = 4432 if error_code is None else error_code
            event["description"] = description or _FAILED_DESCRIPTION
        with httpx2.Client(timeout=WAIT_S, auth=self.callback_auth) as client:
            return client.post(
                url,
                content=orjson.dumps([event]),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_http_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    scheme, _, rest = url.partition("://")
    return scheme.lower() in {"http", "https"} and bool(rest)
