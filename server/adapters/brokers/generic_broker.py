"""A broker described by a file: its webhooks (`BrokerWire`) and its sending (`BrokerClient`).

`load_definitions(folder)` reads every definition file of a folder (the format is in
`generic_definition.py` and docs/brokers.md, "A broker described by a file") and returns one
`GenericBroker` per broker name. A `GenericBroker` is a `registry.BrokerWire`, like the broker
modules: `check_credentials` when configuration is applied, `authenticate` then `parse` on every
webhook, `success_response()` to answer. `broker.client(http)` returns its `GenericClient`, a
`sending.BrokerClient`: `await client.send(text, settings)` returns the broker's message id or
raises `BrokerRejected` / `BrokerUnavailable` (no httpx2 exception leaves it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx2
import orjson
import phonenumbers

from server.adapters.brokers.broker_http import DETAIL_LIMIT, call, json_body, plain_error, refusal
from server.adapters.brokers.generic_definition import (
    BasicAuth,
    BodyNode,
    BrokerDefinition,
    DefinitionInvalid,
    HeaderAuth,
    Locator,
    MessageFields,
    ReceiptFields,
    Template,
    read_definitions,
    resolve_pointer,
)
from server.adapters.brokers.sending import (
    BrokerRejected,
    BrokerUnavailable,
    ClientSettings,
    OutboundText,
)
from server.adapters.brokers.webhook import (
    AuthenticationFailed,
    InboundReceipt,
    InboundText,
    MalformedWebhook,
    WebhookItem,
    WebhookRequest,
    json_accepted,
    unknown_credential_fields,
)
from server.core.events import Media

__all__ = [
    "BrokerDefinition",
    "DefinitionInvalid",
    "GenericBroker",
    "GenericClient",
    "load_definitions",
]

_MAX_MEDIA = 10

# A parsed webhook body: a JSON value, or a form as {field: [values]} (fields may repeat).
_Form = dict[str, list[str]]


def load_definitions(folder: Path, *, reserved: Collection[str] = ()) -> dict[str, GenericBroker]:
    """Return a `GenericBroker` for each definition file in `folder`, by broker name.

    `reserved` are names no definition may take (the registry passes the built-in brokers).
    Raises `DefinitionInvalid` listing every problem of every file (file, key path, what).
    """
    return {
        definition.name: GenericBroker(definition)
        for definition in read_definitions(folder, reserved=reserved)
    }


class GenericBroker:
    """One broker that a definition file describes; stateless, shared by every account."""

    SIGNS_URL = False  # no scheme a definition can choose signs the URL

    def __init__(self, definition: BrokerDefinition) -> None:
        self.definition = definition
        inbound = definition.inbound
        self._fields: MessageFields = inbound.message
        self._receipts: ReceiptFields | None = inbound.receipts

    def __repr__(self) -> str:
        return f"GenericBroker({self.definition.name!r} from {self.definition.source})"

    @property
    def NAME(self) -> str:
        return self.definition.name

    @property
    def CREDENTIAL_FIELDS(self) -> frozenset[str]:
        return self.definition.required_credentials | self.definition.optional_credentials

    def client(self, http: httpx2.AsyncClient) -> GenericClient:
        """Return the client that sends through this broker over the caller's `http`."""
        return GenericClient(self.definition, http)

    # -- configuration --------------------------------------------------------------------------

    def check_credentials(self, credentials: Mapping[str, str]) -> list[str]:
        """Return what is wrong with an account's credentials; an empty list means usable."""
        problems = unknown_credential_fields(credentials, self.CREDENTIAL_FIELDS)
        for name in sorted(self.definition.required_credentials):
            if not credentials.get(name, "").strip():
                problems.append(f"{name} is required")
        return problems

    # -- webhooks -------------------------------------------------------------------------------

    def authenticate(self, request: WebhookRequest, credentials: Mapping[str, str]) -> None:
        """Check the request as the definition says; raise AuthenticationFailed (no secrets)."""
        scheme = self.definition.inbound.authentication
        if isinstance(scheme, BasicAuth):
            _check_basic(request, credentials, scheme)
            return
        secret = credentials.get(scheme.credential, "")
        if not secret:
            raise AuthenticationFailed(f"the account has no {scheme.credential} set up")
        received = request.headers.get(scheme.header)
        if received is None:
            raise AuthenticationFailed(f"header {scheme.header} is missing")
        received = received.strip()
        if isinstance(scheme, HeaderAuth):
            if not hmac.compare_digest(received.encode(), (scheme.prefix + secret).encode()):
                raise AuthenticationFailed(f"wrong {scheme.header}")
            return
        if not received.startswith(scheme.prefix):
            raise AuthenticationFailed(f"{scheme.header} does not start with {scheme.prefix!r}")
        signature = received.removeprefix(scheme.prefix).strip()
        try:
            given = (
                bytes.fromhex(signature)
                if scheme.encoding == "hex"
                else base64.b64decode(signature, validate=True)
            )
        except (ValueError, binascii.Error):
            raise AuthenticationFailed(f"{scheme.header} is not {scheme.encoding}") from None
        expected = hmac.new(secret.encode(), request.body, hashlib.sha256).digest()
        if not hmac.compare_digest(given, expected):
            raise AuthenticationFailed(f"{scheme.header} does not match the body")

    def parse(self, request: WebhookRequest) -> list[WebhookItem]:
        """Return the texts and receipts the body carries (one, or a batch's).

        Raises MalformedWebhook naming the definition's pointer or field when a value is missing
        or of the wrong kind.
        """
        document = self._document(request.body)
        batch = self.definition.inbound.batch
        if batch is None:
            return [self._item(document)]
        assert batch.pointer is not None  # a batch is a JSON pointer
        items = resolve_pointer(document, batch.pointer)
        if not isinstance(items, list) or not items:
            raise MalformedWebhook(f"{batch.text or 'the body'} must be a non-empty list")
        return [self._item(item) for item in items]

    def success_response(self, *, stored: int, duplicates: int) -> tuple[bytes, str]:
        """Return the definition's fixed answer, else JSON counts."""
        response = self.definition.inbound.response
        return response or json_accepted(stored=stored, duplicates=duplicates)

    def _document(self, body: bytes) -> object:
        if self.definition.inbound.format == "form":
            try:
                text = body.decode("utf-8")
                pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
            except (UnicodeDecodeError, ValueError):
                raise MalformedWebhook("the body is not a form") from None
            form: _Form = {}
            for name, value in pairs:
                form.setdefault(name, []).append(value)
            return form
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise MalformedWebhook(f"body is not JSON: {error}") from None

    def _item(self, document: object) -> WebhookItem:
        if not isinstance(document, dict):
            raise MalformedWebhook("each webhook item must be a JSON object")
        receipts = self._receipts
        if receipts is not None and _is_receipt(document, receipts):
            return _receipt(document, receipts)
        return _text(document, self._fields)


class GenericClient:
    """Sends texts to one definition's broker over the caller's `httpx2.AsyncClient` (not
    closed here). The account's `ClientSettings.api_url` wins over the definition's
    `default_api_url`; `timeout_s` bounds each send."""

    def __init__(self, definition: BrokerDefinition, http: httpx2.AsyncClient) -> None:
        self._definition = definition
        self._http = http

    async def send(self, text: OutboundText, settings: ClientSettings) -> str:
        """Send `text`; return the broker's message id.

        Raises `BrokerRejected` (a status not in the definition's `retry_on`, an unusable API
        address or number, missing credentials, a header that is not printable ASCII) or
        `BrokerUnavailable` (timeout, connection error, a `retry_on` status, a 2xx without a
        readable id: retry with the same key).
        """
        name = self._definition.name
        method, url, headers, content = self._request(text, settings)
        where = _origin(url)
        response = await call(
            self._http,
            method,
            url,
            broker=name,
            where=where,
            timeout_s=settings.timeout_s,
            headers=headers,
            content=content,
        )
        return self._message_id(response)

    def _request(
        self, text: OutboundText, settings: ClientSettings
    ) -> tuple[str, str, dict[str, str], bytes | None]:
        """Return the method, URL, headers and body of the send, from the templates."""
        definition, outbound = self._definition, self._definition.outbound
        missing = [
            field
            for field in sorted(definition.required_credentials)
            if not settings.credentials.get(field)
        ]
        if missing:
            raise BrokerRejected(
                f"the account has no {', '.join(missing)} for {definition.name}",
                reason="missing_credentials",
            )
        api_url = (settings.api_url or definition.default_api_url).rstrip("/")
        if not api_url:
            raise BrokerRejected(
                f"no API address for {definition.name}: the account gives none and the "
                "definition has no default_api_url",
                reason="invalid_api_url",
            )
        values: dict[str, object] = {
            "api_url": api_url,
            "account": settings.account,
            "from": self._number(text.sender),
            "to": self._number(text.recipient),
            "text": text.text,
            "media": text.media or None,
            "idempotency_key": text.idempotency_key,
            "status_callback": text.status_callback,
        }
        for field in definition.required_credentials | definition.optional_credentials:
            values[f"credentials.{field}"] = settings.credentials.get(field) or None
        url = outbound.url.render(values, in_url=True) or ""
        headers = {
            name: rendered
            for name, template in outbound.headers
            if (rendered := template.render(values)) is not None
        }
        for name, value in headers.items():
            if not (value.isascii() and value.isprintable()):
                raise BrokerRejected(
                    f"header {name} would not be printable ASCII (check the account's credentials)",
                    reason="invalid_header",
                )
        if outbound.basic_auth is not None:
            username, password = (part.render(values) for part in outbound.basic_auth)
            if username is not None and password is not None:
                token = base64.b64encode(f"{username}:{password}".encode()).decode()
                headers["Authorization"] = f"Basic {token}"
        content = None
        if outbound.body is not None:
            body = _render_tree(outbound.body, values)
            assert isinstance(body, dict)
            if outbound.body_format == "form":
                content = urlencode(_form_pairs(body)).encode()
                content_type = "application/x-www-form-urlencoded"
            else:
                content = orjson.dumps(body)
                content_type = "application/json"
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = content_type
        return outbound.method, url, headers, content

    def _number(self, number: str) -> str:
        """Return an E.164 number in the definition's `number_format`."""
        number_format = self._definition.number_format
        if number_format == "e164":
            return number
        if number_format == "digits":
            return number.lstrip("+")
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            raise BrokerRejected(
                f"{number!r} is not an international number", reason="impossible_number"
            ) from None
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return "".join(character for character in national if character.isdigit())

    def _message_id(self, response: httpx2.Response) -> str:
        """Return the id of an accepted send, or raise the error the answer stands for."""
        name, outbound = self._definition.name, self._definition.outbound
        status = response.status_code
        payload = json_body(response)
        if 200 <= status < 300:
            message_id = resolve_pointer(payload, outbound.message_id)
            if isinstance(message_id, bool) or not isinstance(message_id, str | int):
                raise BrokerUnavailable(
                    f"{name} answered {status} without a message id", status=status
                )
            if message_id == "":
                raise BrokerUnavailable(f"{name} answered {status} with an empty id", status=status)
            return str(message_id)
        code = detail = None
        if outbound.error_code is not None:
            code = _scalar(resolve_pointer(payload, outbound.error_code))
        if outbound.error_detail is not None:
            detail = _scalar(resolve_pointer(payload, outbound.error_detail))
        plain_code, plain_detail = plain_error(response)
        raise refusal(
            name,
            response,
            code or plain_code,
            (detail or plain_detail)[:DETAIL_LIMIT],
            retryable=outbound.retryable,
        )


# -- webhooks: reading values -------------------------------------------------------------------


def _check_basic(
    request: WebhookRequest, credentials: Mapping[str, str], scheme: BasicAuth
) -> None:
    username = credentials.get(scheme.username, "")
    password = credentials.get(scheme.password, "")
    if not username or not password:
        raise AuthenticationFailed(f"the account has no {scheme.username} and {scheme.password}")
    authorization = request.headers.get("authorization")
    if authorization is None:
        raise AuthenticationFailed("header Authorization is missing")
    kind, _, encoded = authorization.strip().partition(" ")
    if kind.lower() != "basic":
        raise AuthenticationFailed("Authorization must use the Basic scheme")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise AuthenticationFailed("Authorization is not base64") from None
    user, colon, secret = decoded.partition(b":")
    user_ok = hmac.compare_digest(user, username.encode())
    password_ok = hmac.compare_digest(secret, password.encode())
    if not (colon and user_ok and password_ok):
        raise AuthenticationFailed("wrong user name or password")


def _value(document: Mapping[str, Any], where: Locator) -> object | None:
    """The value at `where`: a JSON pointer's, or a form field's first value; None if absent."""
    if where.pointer is None:
        values = document.get(where.text)
        return values[0] if values else None
    return resolve_pointer(document, where.pointer)


def _scalar(value: object) -> str | None:
    """A string or number as text; None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _required(document: Mapping[str, Any], where: Locator, label: str) -> str:
    value = _value(document, where)
    if value is None:
        raise MalformedWebhook(f"{label} ({where}) is missing")
    text = _scalar(value)
    if text is None or not text.strip():
        raise MalformedWebhook(f"{label} ({where}) must be a non-empty string or number")
    return text


def _raw_number(document: Mapping[str, Any], where: Locator, label: str) -> object:
    """A phone number as the broker wrote it (a string or a JSON number: the adapter reads it)."""
    value = _value(document, where)
    if value is None:
        raise MalformedWebhook(f"{label} ({where}) is missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedWebhook(f"{label} ({where}) must be a phone number")
    return value


def _text(document: Mapping[str, Any], fields: MessageFields) -> InboundText:
    message_id = _required(document, fields.id, "message id")
    sender = _raw_number(document, fields.sender, "from")
    recipient = _raw_number(document, fields.recipient, "to")
    media = _media(document, fields)
    body = _value(document, fields.text)
    if body is None and media:
        body = ""  # an MMS may come with pictures only
    if body is None:
        raise MalformedWebhook(f"text ({fields.text}) is missing")
    if not isinstance(body, str):
        raise MalformedWebhook(f"text ({fields.text}) must be a string")
    return InboundText(
        broker_message_id=message_id, raw_from=sender, raw_to=recipient, body=body, media=media
    )


def _media(document: Mapping[str, Any], fields: MessageFields) -> tuple[Media, ...]:
    where = fields.media
    if where is None:
        return ()
    if where.pointer is None:  # form fields: repeated, or numbered with {n}
        if "{n}" not in where.text:
            return tuple(Media(url=url) for url in document.get(where.text, []) if url)
        media = []
        for index in range(_MAX_MEDIA + 1):
            url = _value(document, Locator(where.text.replace("{n}", str(index)), None))
            if not url:
                break
            content_type = None
            if fields.media_type is not None:
                name = fields.media_type.text.replace("{n}", str(index))
                content_type = _scalar(_value(document, Locator(name, None))) or None
            media.append(Media(url=str(url), content_type=content_type))
        return tuple(media[:_MAX_MEDIA])
    items = resolve_pointer(document, where.pointer)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise MalformedWebhook(f"media ({where}) must be a list")
    media = []
    for index, item in enumerate(items):
        url, content_type = item, None
        if fields.media_url is not None:
            if not isinstance(item, dict):
                raise MalformedWebhook(f"media ({where}) item {index} must be an object")
            url = _value(item, fields.media_url)
            if fields.media_type is not None:
                content_type = _scalar(_value(item, fields.media_type)) or None
        if not isinstance(url, str) or not url:
            raise MalformedWebhook(f"media ({where}) item {index} has no URL")
        media.append(Media(url=url, content_type=content_type))
    return tuple(media)


def _is_receipt(document: Mapping[str, Any], receipts: ReceiptFields) -> bool:
    value = _value(document, receipts.match)
    if receipts.match_values is None:
        return value is not None
    return _scalar(value) in receipts.match_values


def _receipt(document: Mapping[str, Any], receipts: ReceiptFields) -> InboundReceipt:
    message_id = _required(document, receipts.id, "receipt's message id")
    word = _required(document, receipts.status, "receipt's status")
    status = receipts.statuses.get(word.casefold())
    if status is None:
        raise MalformedWebhook(
            f"status {word[:40]!r} ({receipts.status}) is not one of the definition's statuses"
        )
    reason = None
    if receipts.reason is not None:
        reason = _scalar(_value(document, receipts.reason)) or None
    numbers = tuple(
        value
        for where in receipts.numbers
        if (value := _value(document, where)) is not None
        and not isinstance(value, bool)
        and isinstance(value, str | int)
    )
    return InboundReceipt(
        broker_message_id=message_id,
        status=status,
        broker_status=word,
        reason=reason,
        raw_numbers=numbers,
    )


# -- sending: rendering and reading answers -------------------------------------------------------


def _render_tree(node: BodyNode, values: Mapping[str, object]) -> object | None:
    """Render a body template; None for a value to leave out (it names an absent value)."""
    if isinstance(node, Template):
        lone = node.lone
        if lone is not None:
            value = values.get(lone)
            if value is None or value == ():
                return None
            return list(value) if isinstance(value, tuple) else value
        return node.render(values)
    if isinstance(node, Mapping):
        rendered = {key: _render_tree(child, values) for key, child in node.items()}
        return {key: value for key, value in rendered.items() if value is not None}
    if isinstance(node, tuple):
        items = [_render_tree(child, values) for child in node]
        return [item for item in items if item is not None]
    return node


def _form_pairs(body: Mapping[str, object]) -> list[tuple[str, str]]:
    """A rendered form body as fields: a list (media) repeats its field; true/false in words."""
    pairs: list[tuple[str, str]] = []
    for name, value in body.items():
        for item in value if isinstance(value, list) else [value]:
            text = str(item).lower() if isinstance(item, bool) else str(item)
            pairs.append((name, text))
    return pairs


def _origin(url: str) -> str:
    """The scheme and host of `url`: what error messages name (a URL may hold credentials)."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(an unusable address)"
