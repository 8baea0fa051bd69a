"""Tests for brokers described by a file (server/adapters/brokers/generic_broker.py and
generic_definition.py): definitions checked at load, webhooks authenticated and parsed, and
texts sent over real HTTP to Example SMS (tests/broker_servers/generic.py), the broker that
broker_definitions/example-http.yaml describes."""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import yaml

from server.adapters.brokers.generic_broker import (
    DefinitionInvalid,
    GenericBroker,
    GenericClient,
    load_definitions,
)
from server.adapters.brokers.generic_definition import BrokerDefinition, Template
from server.adapters.brokers.registry import BROKERS, BrokerWire, broker_wire, load_brokers
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
    WebhookRequest,
)
from server.adapters.config_document import ConfigInvalid
from server.adapters.config_files import load_config_folder
from server.core.delivery import DeliveryStatus
from server.core.events import Media
from server.settings import SettingsError, load_settings
from tests.adapters.brokers.sending import send_once
from tests.broker_servers.base import WAIT_S, Answer, Fault, WebhookCatcher
from tests.broker_servers.generic import (
    API_KEY,
    WEBHOOK_SECRET,
    ExampleHttpServer,
    signature,
    status_event,
    text_event,
    webhook,
)
from tests.end_to_end.organisations import ACME, write_folder
from tests.end_to_end.server_process import ROOT, free_port

DEFINITIONS = ROOT / "broker_definitions"
EXAMPLE_FILE = DEFINITIONS / "example-http.yaml"
EXAMPLE: dict[str, Any] = yaml.safe_load(EXAMPLE_FILE.read_text(encoding="utf-8"))
CREDENTIALS = {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
OURS = "+12065550100"
PHONE = "+14155550123"
CALLBACK = "https://parley.example.com/webhooks/example-http/acme-example/status"
TEXT = OutboundText(
    sender=OURS,
    recipient=PHONE,
    text="Your order shipped",
    idempotency_key="outbox-7-1",
    status_callback=CALLBACK,
)


def definition_file(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """Write the example definition, changed by `change`, to `tmp_path/broker.yaml`."""
    document = copy.deepcopy(EXAMPLE)
    change(document)
    path = tmp_path / "broker.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def broker_from(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> GenericBroker:
    definition_file(tmp_path, change)
    (broker,) = load_definitions(tmp_path).values()
    return broker


@pytest.fixture(scope="module")
def example() -> GenericBroker:
    return load_definitions(DEFINITIONS)["example-http"]


# -- loading ------------------------------------------------------------------------------------


def test_the_example_is_a_broker_among_the_built_in_ones() -> None:
    brokers = load_brokers(DEFINITIONS)

    wire: BrokerWire = broker_wire("example-http", brokers)
    assert isinstance(wire, GenericBroker)
    assert wire.NAME == "example-http"
    assert wire.SIGNS_URL is False
    assert sorted(wire.CREDENTIAL_FIELDS) == ["api_key", "profile_id", "webhook_secret"]
    assert {name: brokers[name] for name in BROKERS} == dict(BROKERS)
    assert load_brokers(None) is BROKERS
    with pytest.raises(KeyError, match="known: bandwidth, example-http, inteliquent, sandbox"):
        broker_wire("exmaple-http", brokers)


def test_the_example_definition_reads_as_documented(example: GenericBroker) -> None:
    definition = example.definition
    assert definition.default_api_url == "https://api.example-sms.test/v1"
    assert definition.number_format == "e164"
    assert definition.outbound.method == "POST"
    assert [name for name, _ in definition.outbound.headers] == ["Authorization", "Idempotency-Key"]
    assert definition.outbound.retryable(503)
    assert definition.outbound.retryable(429)
    assert definition.outbound.retryable(408)
    assert not definition.outbound.retryable(400)
    assert not definition.outbound.retryable(422)


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change that sets the key at dotted `path` (a value of `...` deletes it)."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value

    return change


AUTH = "inbound.authentication"
BAD_DEFINITIONS: list[tuple[str, Callable[[dict[str, Any]], object], list[str]]] = [
    ("no name", _set("name", ...), ["(top): missing key(s): name"]),
    (
        "name with spaces",
        _set("name", "Example SMS"),
        [
            "name: 'Example SMS' is not 2 to 32 lower-case letters, digits, '-' or '_', "
            "starting with a letter"
        ],
    ),
    (
        "unknown top-level key",
        _set("gateway", "http://www.24x.com"),
        [
            "(top): unknown key 'gateway'; expected some of: credentials, default_api_url, "
            "description, inbound, name, number_format, outbound"
        ],
    ),
    (
        "unknown body format",
        _set("inbound.format", "xml"),
        ["inbound.format: must be one of json, form, not 'xml'"],
    ),
    (
        "a credential list that is not a list",
        _set("credentials.required", "api_key"),
        ["credentials.required: must be a list, got a string"],
    ),
    (
        "a credential both required and optional",
        _set("credentials.optional", ["profile_id", "api_key"]),
        ["credentials: 'api_key' is both required and optional"],
    ),
    (
        "authentication with an undeclared credential",
        _set(f"{AUTH}.credential", "signing_key"),
        [
            f"{AUTH}.credential: 'signing_key' is not in credentials.required "
            "(api_key, webhook_secret)"
        ],
    ),
    (
        "basic authentication given a header's keys",
        _set(AUTH, {"scheme": "basic", "header": "X-Key", "credential": "api_key"}),
        [
            f"{AUTH}: scheme basic needs key 'username'",
            f"{AUTH}: scheme basic needs key 'password'",
            f"{AUTH}: key 'header' does not apply to scheme basic",
            f"{AUTH}: key 'credential' does not apply to scheme basic",
        ],
    ),
    (
        "an unknown signature encoding",
        _set(f"{AUTH}.encoding", "base32"),
        [f"{AUTH}.encoding: must be one of hex, base64, not 'base32'"],
    ),
    (
        "a field that is not a JSON pointer",
        _set("inbound.message.id", "id"),
        ["inbound.message.id: 'id' is not a JSON pointer: it must start with '/'"],
    ),
    (
        "a pointer with a bad escape",
        _set("inbound.message.text", "/body~2"),
        ["inbound.message.text: '/body~2' is not a JSON pointer: '~' must be '~0' or '~1'"],
    ),
    (
        "a receipt status mapped to no delivery status",
        _set("inbound.receipts.statuses.delivered", "ok"),
        [
            "inbound.receipts.statuses.delivered: must be one of queued, sent, delivered, "
            "failed, not 'ok'"
        ],
    ),
    (
        "a media type where media are plain URLs",
        _set("inbound.message.media_type", "/type"),
        ["inbound.message.media_type: needs media_url (media items are objects)"],
    ),
    (
        "a status word YAML reads as true/false",
        _set("inbound.receipts.statuses", {True: "delivered"}),
        ["inbound.receipts.statuses: quote the word read as true"],
    ),
    (
        "receipts without numbers",
        _set("inbound.receipts.numbers", ...),
        ["inbound.receipts: missing key(s): numbers"],
    ),
    (
        "an unknown placeholder",
        _set("outbound.body.text", "{body}"),
        [
            "outbound.body.text: unknown placeholder {body}; known: account, api_url, from, "
            "idempotency_key, media, status_callback, text, to, credentials.<field>"
        ],
    ),
    (
        "an undeclared credential in a template",
        _set("outbound.headers.Authorization", "Bearer {credentials.token}"),
        [
            "outbound.headers.Authorization: {credentials.token}: 'token' is not in "
            "credentials.required or .optional"
        ],
    ),
    (
        "media inside a string",
        _set("outbound.headers.X-Media", "{media}"),
        ["outbound.headers.X-Media: {media} is a list: use it alone, as a body value"],
    ),
    (
        "an unmatched brace",
        _set("outbound.url", "{api_url/messages"),
        ["outbound.url: unmatched '{' (write '{{' for a brace)"],
    ),
    (
        "a url that is not an address",
        _set("outbound.url", "/messages"),
        ["outbound.url: must start with {api_url}, http:// or https://"],
    ),
    (
        "an unquoted template",
        _set("outbound.body.text", {"text": None}),
        [
            "outbound.body.text.text: must be a template, a number or true/false, got nothing "
            "(null) (quote a template: YAML reads an unquoted {name} as a mapping)"
        ],
    ),
    (
        "a GET with a body",
        _set("outbound.method", "GET"),
        ["outbound.body: a GET sends no body: put the values in the url"],
    ),
    (
        "a nested form body",
        lambda d: d["outbound"].update(body_format="form", body={"sms": {"to": "{to}"}}),
        ["outbound.body.sms: a form body is one level of fields: no nested mappings or lists"],
    ),
    (
        "a retry status out of range",
        _set("outbound.retry_on", ["5xx", 600]),
        ["outbound.retry_on[1]: 600 is not a status 400-599, 4xx or 5xx"],
    ),
    (
        "no message id",
        _set("outbound.message_id", ...),
        ["outbound: missing key(s): message_id"],
    ),
    (
        "an error pointer that is not a pointer",
        _set("outbound.error.code", "code"),
        ["outbound.error.code: 'code' is not a JSON pointer: it must start with '/'"],
    ),
]


@pytest.mark.parametrize(
    ("change", "problems"),
    [pytest.param(change, problems, id=case) for case, change, problems in BAD_DEFINITIONS],
)
def test_a_bad_definition_is_refused_with_every_problem(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], problems: list[str]
) -> None:
    path = definition_file(tmp_path, change)

    with pytest.raises(DefinitionInvalid) as refused:
        load_definitions(tmp_path)

    assert [str(problem) for problem in refused.value.problems] == [
        f"{path}: {problem}" for problem in problems
    ]
    assert isinstance(refused.value, ConfigInvalid)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed\n", "cannot be read: while parsing a flow sequence"),
        ("name: a\nname: b\n", "cannot be read: key 'name' is given twice"),
        ("- a list\n", "must be a mapping, got a list"),
    ],
)
def test_a_file_that_is_not_a_definition_says_so(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "broken.yml").write_text(text, encoding="utf-8")

    with pytest.raises(DefinitionInvalid) as refused:
        load_definitions(tmp_path)

    (problem,) = refused.value.problems
    assert (problem.file, problem.where) == (str(tmp_path / "broken.yml"), "(top)")
    assert problem.message.startswith(message)


def test_a_name_is_defined_once_and_never_a_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(EXAMPLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(EXAMPLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "README.md").write_text("not a definition", encoding="utf-8")
    twilio = copy.deepcopy(EXAMPLE) | {"name": "twilio"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(twilio), encoding="utf-8")

    with pytest.raises(DefinitionInvalid) as refused:
        load_brokers(tmp_path)

    assert [str(problem) for problem in refused.value.problems] == [
        f"{tmp_path / 'b.yaml'}: name: 'example-http' is already defined by {tmp_path / 'a.yaml'}",
        f"{tmp_path / 'c.yaml'}: name: 'twilio' is a built-in broker; choose another name",
    ]


def test_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionInvalid, match="is not a folder"):
        load_brokers(tmp_path / "nowhere")


def test_the_setting_names_an_existing_folder(tmp_path: Path) -> None:
    def folder(environ: dict[str, str]) -> str:
        return load_settings(environ, dotenv=None).broker_definitions

    assert folder({"PARLEY_BROKER_DEFINITIONS": str(tmp_path)}) == str(tmp_path)
    assert folder({"PARLEY_BROKER_DEFINITIONS": ""}) == ""
    with pytest.raises(SettingsError, match="PARLEY_BROKER_DEFINITIONS must name a folder"):
        folder({"PARLEY_BROKER_DEFINITIONS": str(tmp_path / "nowhere")})


# -- configuration: accounts on the broker ------------------------------------------------------


def config_with_example_account(tmp_path: Path, credentials: Mapping[str, str]) -> Path:
    folder = write_folder(tmp_path / "acme", ACME)
    brokers = yaml.safe_load((folder / "brokers.yaml").read_text(encoding="utf-8"))
    brokers["accounts"].append(
        {"public_id": "acme-example", "broker": "example-http", "credentials": dict(credentials)}
    )
    (folder / "brokers.yaml").write_text(yaml.safe_dump(brokers), encoding="utf-8")
    return folder


def test_an_account_on_the_broker_passes_config_check_when_it_is_loaded(tmp_path: Path) -> None:
    folder = config_with_example_account(tmp_path, {**CREDENTIALS, "profile_id": "p-1"})

    document = load_config_folder(folder, brokers=load_brokers(DEFINITIONS))

    (account,) = [a for a in document.accounts if a.public_id == "acme-example"]
    assert account.broker == "example-http"
    with pytest.raises(ConfigInvalid) as refused:
        load_config_folder(folder)
    assert [str(problem) for problem in refused.value.problems] == [
        "brokers.yaml: accounts[4] 'acme-example': unknown broker 'example-http'; "
        "known: bandwidth, inteliquent, sandbox, twilio"
    ]


def test_an_account_s_credentials_are_checked_by_the_definition(tmp_path: Path) -> None:
    folder = config_with_example_account(tmp_path, {"api_key": "k", "token": "t"})

    with pytest.raises(ConfigInvalid) as refused:
        load_config_folder(folder, brokers=load_brokers(DEFINITIONS))

    assert [str(problem) for problem in refused.value.problems] == [
        "brokers.yaml: accounts[4] 'acme-example'.credentials: unknown credential field 'token'",
        "brokers.yaml: accounts[4] 'acme-example'.credentials: webhook_secret is required",
    ]


def test_parley_config_check_reads_the_definitions_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    folder = config_with_example_account(tmp_path, CREDENTIALS)
    monkeypatch.chdir(tmp_path)  # no .env, no default folder
    monkeypatch.setenv("PARLEY_BROKER_DEFINITIONS", str(DEFINITIONS))
    assert main(["config", "check", str(folder)]) == 0
    monkeypatch.setenv("PARLEY_BROKER_DEFINITIONS", "")
    assert main(["config", "check", str(folder)]) == 1
    assert "unknown broker 'example-http'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("credentials", "problems"),
    [
        (CREDENTIALS, []),
        ({**CREDENTIALS, "profile_id": "p-1"}, []),
        ({"api_key": API_KEY}, ["webhook_secret is required"]),
        ({**CREDENTIALS, "api_key": " "}, ["api_key is required"]),
        ({**CREDENTIALS, "auth_token": "x"}, ["unknown credential field 'auth_token'"]),
    ],
)
def test_credentials_are_checked(
    example: GenericBroker, credentials: dict[str, str], problems: list[str]
) -> None:
    assert example.check_credentials(credentials) == problems


# -- webhooks: authentication -------------------------------------------------------------------


def request(
    payload: object = None, *, headers: Mapping[str, str] | None = None, body: bytes | None = None
) -> WebhookRequest:
    """A webhook as the adapter hands it over (header names in lower case)."""
    raw = orjson.dumps(payload) if body is None else body
    return WebhookRequest(
        url="", headers={k.lower(): v for k, v in (headers or {}).items()}, body=raw
    )


def signed(payload: object, *, secret: str = WEBHOOK_SECRET) -> WebhookRequest:
    body, headers = webhook(payload, secret=secret)
    return request(body=body, headers=headers)


TEXT_EVENT = text_event(message_id="exm_in_1", sender=PHONE, to=OURS, text="Hi")


def test_a_signed_webhook_passes(example: GenericBroker) -> None:
    example.authenticate(signed(TEXT_EVENT), CREDENTIALS)


@pytest.mark.parametrize(
    ("headers", "credentials", "message"),
    [
        pytest.param({}, CREDENTIALS, "header x-example-signature is missing", id="missing"),
        pytest.param(
            {"X-Example-Signature": signature(b"{}")},
            CREDENTIALS,
            "x-example-signature does not match the body",
            id="another body",
        ),
        pytest.param(
            {"X-Example-Signature": signature(orjson.dumps(TEXT_EVENT), "other-secret")},
            CREDENTIALS,
            "x-example-signature does not match the body",
            id="another secret",
        ),
        pytest.param(
            {"X-Example-Signature": signature(orjson.dumps(TEXT_EVENT))[7:]},
            CREDENTIALS,
            "x-example-signature does not start with 'sha256='",
            id="no prefix",
        ),
        pytest.param(
            {"X-Example-Signature": "sha256=not-hex"},
            CREDENTIALS,
            "x-example-signature is not hex",
            id="not hex",
        ),
        pytest.param(
            {"X-Example-Signature": signature(orjson.dumps(TEXT_EVENT))},
            {"api_key": API_KEY},
            "the account has no webhook_secret set up",
            id="account without secret",
        ),
    ],
)
def test_a_webhook_that_is_not_the_broker_s_is_refused(
    example: GenericBroker, headers: dict[str, str], credentials: dict[str, str], message: str
) -> None:
    with pytest.raises(AuthenticationFailed) as refused:
        example.authenticate(request(TEXT_EVENT, headers=headers), credentials)

    assert refused.value.detail == message
    assert WEBHOOK_SECRET not in refused.value.detail


def test_a_base64_signature(tmp_path: Path) -> None:
    broker = broker_from(tmp_path, _set(f"{AUTH}.encoding", "base64"))
    body = orjson.dumps(TEXT_EVENT)
    digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()

    good = {"X-Example-Signature": "sha256=" + base64.b64encode(digest).decode()}
    broker.authenticate(request(body=body, headers=good), CREDENTIALS)
    with pytest.raises(AuthenticationFailed, match="not base64"):
        broker.authenticate(
            request(body=body, headers={"X-Example-Signature": "sha256=%%"}), CREDENTIALS
        )


def test_a_header_equal_to_a_credential(tmp_path: Path) -> None:
    scheme = {
        "scheme": "header",
        "header": "Authorization",
        "prefix": "Bearer ",
        "credential": "api_key",
    }
    broker = broker_from(tmp_path, _set(AUTH, scheme))

    broker.authenticate(
        request(TEXT_EVENT, headers={"Authorization": f"Bearer {API_KEY} "}), CREDENTIALS
    )
    for wrong in (API_KEY, f"Bearer {API_KEY}x", f"Basic {API_KEY}"):
        with pytest.raises(AuthenticationFailed, match="wrong authorization"):
            broker.authenticate(request(TEXT_EVENT, headers={"Authorization": wrong}), CREDENTIALS)
    with pytest.raises(AuthenticationFailed, match="header authorization is missing"):
        broker.authenticate(request(TEXT_EVENT), CREDENTIALS)


def test_basic_authentication_with_two_credentials(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["credentials"]["required"] += ["hook_user", "hook_password"]
        document["inbound"]["authentication"] = {
            "scheme": "basic",
            "username": "hook_user",
            "password": "hook_password",
        }

    broker = broker_from(tmp_path, change)
    credentials = {**CREDENTIALS, "hook_user": "parley", "hook_password": "pa:ss word"}

    def basic(user: str, password: str) -> dict[str, str]:
        return {
            "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        }

    broker.authenticate(request(TEXT_EVENT, headers=basic("parley", "pa:ss word")), credentials)
    for headers, message in [
        (basic("parley", "wrong"), "wrong user name or password"),
        (basic("other", "pa:ss word"), "wrong user name or password"),
        ({"Authorization": "Bearer x"}, "Authorization must use the Basic scheme"),
        ({"Authorization": "Basic ***"}, "Authorization is not base64"),
        ({}, "header Authorization is missing"),
    ]:
        with pytest.raises(AuthenticationFailed) as refused:
            broker.authenticate(request(TEXT_EVENT, headers=headers), credentials)
        assert refused.value.detail == message


# -- webhooks: texts and receipts in JSON -------------------------------------------------------


def test_a_text(example: GenericBroker) -> None:
    assert example.parse(request(TEXT_EVENT)) == [
        InboundText(broker_message_id="exm_in_1", raw_from=PHONE, raw_to=OURS, body="Hi")
    ]


def test_an_mms_with_pictures_only(example: GenericBroker) -> None:
    event = text_event(
        message_id="exm_in_2", sender=PHONE, to=OURS, text=None, media=["https://e.test/1.jpg"]
    )

    (text,) = example.parse(request(event))

    assert text == InboundText(
        broker_message_id="exm_in_2",
        raw_from=PHONE,
        raw_to=OURS,
        body="",
        media=(Media(url="https://e.test/1.jpg"),),
    )


def test_numbers_and_ids_may_be_json_numbers(example: GenericBroker) -> None:
    event = {"id": 42, "from": 14155550123, "to": 12065550100, "text": "Hi"}

    (text,) = example.parse(request(event))

    assert text == InboundText(
        broker_message_id="42", raw_from=14155550123, raw_to=12065550100, body="Hi"
    )


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("accepted", DeliveryStatus.QUEUED),
        ("sent", DeliveryStatus.SENT),
        ("DELIVERED", DeliveryStatus.DELIVERED),
        ("expired", DeliveryStatus.FAILED),
    ],
)
def test_a_receipt_maps_the_broker_s_word(
    example: GenericBroker, word: str, status: DeliveryStatus
) -> None:
    event = status_event(message_id="exm_9", status=word, sender=OURS, to=PHONE)

    assert example.parse(request(event)) == [
        InboundReceipt(
            broker_message_id="exm_9",
            status=status,
            broker_status=word,
            reason=None,
            raw_numbers=(OURS, PHONE),
        )
    ]


def test_a_failed_receipt_keeps_the_reason(example: GenericBroker) -> None:
    event = status_event(
        message_id="exm_9", status="undelivered", sender=OURS, to=PHONE, reason="handset off"
    )

    (receipt,) = example.parse(request(event))

    assert isinstance(receipt, InboundReceipt)
    assert (receipt.status, receipt.reason) == (DeliveryStatus.FAILED, "handset off")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b"not json", "body is not JSON", id="not json"),
        pytest.param([TEXT_EVENT], "each webhook item must be a JSON object", id="a list"),
        pytest.param({**TEXT_EVENT, "id": None}, "message id (/id) is missing", id="no id"),
        pytest.param(
            {**TEXT_EVENT, "id": ""},
            "message id (/id) must be a non-empty string or number",
            id="empty id",
        ),
        pytest.param({**TEXT_EVENT, "to": ["+1"]}, "to (/to) must be a phone number", id="to list"),
        pytest.param({**TEXT_EVENT, "text": None}, "text (/text) is missing", id="no text"),
        pytest.param({**TEXT_EVENT, "text": 7}, "text (/text) must be a string", id="text number"),
        pytest.param({**TEXT_EVENT, "media": "x"}, "media (/media) must be a list", id="media"),
        pytest.param(
            {**TEXT_EVENT, "media": [""]}, "media (/media) item 0 has no URL", id="media item"
        ),
        pytest.param(
            status_event(message_id="m", status="lost", sender=OURS, to=PHONE),
            "status 'lost' (/status) is not one of the definition's statuses",
            id="unknown status",
        ),
        pytest.param(
            {"event": "message.status", "status": "sent"},
            "receipt's message id (/message_id) is missing",
            id="receipt without id",
        ),
    ],
)
def test_a_body_not_in_the_broker_s_format_is_malformed(
    example: GenericBroker, payload: object, message: str
) -> None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)

    with pytest.raises(MalformedWebhook) as refused:
        example.parse(request(body=raw))

    assert refused.value.detail.startswith(message)


def test_media_as_objects(tmp_path: Path) -> None:
    def change(document: dict[str, Any]) -> None:
        document["inbound"]["message"].update(media_url="/href", media_type="/type")

    broker = broker_from(tmp_path, change)
    event = {**TEXT_EVENT, "media": [{"href": "https://e.test/a.png", "type": "image/png"}]}

    (text,) = broker.parse(request(event))

    assert isinstance(text, InboundText)
    assert text.media == (Media(url="https://e.test/a.png", content_type="image/png"),)


def test_a_batch_of_items(tmp_path: Path) -> None:
    broker = broker_from(tmp_path, _set("inbound.batch", "/events"))
    receipt = status_event(message_id="exm_9", status="sent", sender=OURS, to=PHONE)

    items = broker.parse(request({"events": [TEXT_EVENT, receipt]}))

    assert [type(item) for item in items] == [InboundText, InboundReceipt]
    with pytest.raises(MalformedWebhook, match="/events must be a non-empty list"):
        broker.parse(request({"events": []}))


def test_the_answer_to_a_stored_webhook(example: GenericBroker, tmp_path: Path) -> None:
    assert example.success_response(stored=1, duplicates=0) == (
        b'{"status":"ok","stored":1,"duplicates":0}',
        "application/json",
    )
    broker = broker_from(tmp_path, _set("inbound.response", {"body": "OK"}))
    assert broker.success_response(stored=1, duplicates=0) == (b"OK", "text/plain")


# -- webhooks: a form broker --------------------------------------------------------------------

FORM_BROKER: dict[str, Any] = {
    "name": "formish",
    "credentials": {"required": ["webhook_key"]},
    "inbound": {
        "authentication": {"scheme": "header", "header": "X-Key", "credential": "webhook_key"},
        "format": "form",
        "message": {
            "id": "MsgId",
            "from": "Sender",
            "to": "Recipient",
            "text": "Body",
            "media": "MediaUrl{n}",
            "media_type": "MediaType{n}",
        },
        "receipts": {
            "match": {"field": "DeliveryStatus"},
            "id": "MsgId",
            "status": "DeliveryStatus",
            "reason": "ErrorCode",
            "numbers": ["Sender", "Recipient"],
            "statuses": {"DELIVRD": "delivered", "UNDELIV": "failed"},
        },
    },
    "outbound": {"url": "https://sms.example.test/send", "message_id": "/id"},
}


@pytest.fixture
def formish(tmp_path: Path) -> GenericBroker:
    (tmp_path / "formish.yaml").write_text(yaml.safe_dump(FORM_BROKER), encoding="utf-8")
    return load_definitions(tmp_path)["formish"]


def form(**fields: str) -> WebhookRequest:
    from urllib.parse import urlencode

    return request(body=urlencode(fields).encode())


def test_a_form_text_with_numbered_media(formish: GenericBroker) -> None:
    (text,) = formish.parse(
        form(
            MsgId="f-1",
            Sender="4155550123",
            Recipient="2065550100",
            Body="photo",
            MediaUrl0="https://e.test/0.jpg",
            MediaType0="image/jpeg",
            MediaUrl1="https://e.test/1.gif",
        )
    )

    assert text == InboundText(
        broker_message_id="f-1",
        raw_from="4155550123",
        raw_to="2065550100",
        body="photo",
        media=(
            Media(url="https://e.test/0.jpg", content_type="image/jpeg"),
            Media(url="https://e.test/1.gif"),
        ),
    )


def test_a_form_receipt_is_told_by_its_field_s_presence(formish: GenericBroker) -> None:
    (receipt,) = formish.parse(
        form(MsgId="f-2", DeliveryStatus="undeliv", ErrorCode="1", Sender="2065550100")
    )

    assert receipt == InboundReceipt(
        broker_message_id="f-2",
        status=DeliveryStatus.FAILED,
        broker_status="undeliv",
        reason="1",
        raw_numbers=("2065550100",),
    )


def test_a_form_missing_a_field(formish: GenericBroker) -> None:
    with pytest.raises(MalformedWebhook, match=r"^from \(Sender\) is missing"):
        formish.parse(form(MsgId="f-3", Recipient="2065550100", Body="x"))
    with pytest.raises(MalformedWebhook, match="not a form"):
        formish.parse(request(body=b"\xff\xfe"))


def test_repeated_form_media(tmp_path: Path) -> None:
    document = copy.deepcopy(FORM_BROKER)
    del document["inbound"]["message"]["media_type"]
    document["inbound"]["message"]["media"] = "media"
    (tmp_path / "formish.yaml").write_text(
        yaml.safe_dump(document, sort_keys=False), encoding="utf-8"
    )
    broker = load_definitions(tmp_path)["formish"]

    (text,) = broker.parse(
        request(body=b"MsgId=1&Sender=1&Recipient=2&Body=&media=https://a&media=https://b")
    )

    assert isinstance(text, InboundText)
    assert text.media == (Media(url="https://a"), Media(url="https://b"))


# -- sending ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ExampleHttpServer]:
    with ExampleHttpServer() as example_sms:
        yield example_sms


@pytest.fixture
def example_sms(server: ExampleHttpServer) -> ExampleHttpServer:
    server.reset()
    return server


def send(
    definition: BrokerDefinition,
    api_url: str,
    text: OutboundText = TEXT,
    *,
    credentials: Mapping[str, str] = CREDENTIALS,
    timeout_s: float = WAIT_S,
) -> str:
    """Send `text` with a GenericClient on a fresh httpx2.AsyncClient; return the id."""
    settings = ClientSettings(
        account="acme-example", api_url=api_url, credentials=credentials, timeout_s=timeout_s
    )
    return send_once(functools.partial(GenericClient, definition), text, settings)


def with_(**changes: Any) -> OutboundText:
    return dataclasses.replace(TEXT, **changes)


def test_a_text_is_sent_as_the_definition_describes(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    message_id = send(example.definition, example_sms.api_url)

    (sent,) = example_sms.received()
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.bearer() == API_KEY
    assert sent.headers["idempotency-key"] == "outbox-7-1"
    assert sent.headers["content-type"] == "application/json"
    assert sent.fields == {
        "from": OURS,
        "to": PHONE,
        "text": "Your order shipped",
        "callback_url": CALLBACK,
    }
    assert sent.status == 201
    assert message_id == sent.message_id == "exm_1"


def test_an_mms_and_an_optional_credential_go_in_the_body(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    media = ("https://cdn.example.com/a.png", "https://cdn.example.com/b.jpg")

    send(
        example.definition,
        example_sms.api_url + "/",
        with_(text="", media=media),
        credentials={**CREDENTIALS, "profile_id": "prof-7"},
    )

    (sent,) = example_sms.received()
    assert sent.fields == {
        "from": OURS,
        "to": PHONE,
        "text": "",
        "media_urls": list(media),
        "callback_url": CALLBACK,
        "profile_id": "prof-7",
    }


def test_the_same_idempotency_key_gets_the_same_id(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    first = send(example.definition, example_sms.api_url)
    again = send(example.definition, example_sms.api_url)
    other = send(example.definition, example_sms.api_url, with_(idempotency_key="outbox-8-1"))

    assert first == again != other


def test_the_definition_s_api_url_is_the_default(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    definition = dataclasses.replace(example.definition, default_api_url=example_sms.api_url)

    assert send(definition, "").startswith("exm_")
    with pytest.raises(BrokerRejected) as refused:
        send(dataclasses.replace(definition, default_api_url=""), "")
    assert refused.value.reason == "invalid_api_url"


@pytest.mark.parametrize(
    ("number_format", "sender", "recipient"),
    [("digits", "12065550100", "14155550123"), ("national", "2065550100", "4155550123")],
)
def test_numbers_in_the_definition_s_format(
    example: GenericBroker,
    example_sms: ExampleHttpServer,
    number_format: Any,
    sender: str,
    recipient: str,
) -> None:
    definition = dataclasses.replace(example.definition, number_format=number_format)

    with pytest.raises(BrokerRejected):  # Example SMS itself wants E.164
        send(definition, example_sms.api_url)

    (sent,) = example_sms.received()
    assert (sent.fields["from"], sent.fields["to"]) == (sender, recipient)


def test_a_refusal_carries_the_broker_s_code_and_no_secret(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    with pytest.raises(BrokerRejected) as invalid:
        send(example.definition, example_sms.api_url, with_(recipient="+14155550000"))
    with pytest.raises(BrokerRejected) as unauthorized:
        send(example.definition, example_sms.api_url, credentials={**CREDENTIALS, "api_key": "no"})

    assert (invalid.value.reason, invalid.value.status) == ("invalid_number", 422)
    assert invalid.value.detail == (
        "example-http answered 422 invalid_number: +14155550000 cannot receive texts"
    )
    assert (unauthorized.value.reason, unauthorized.value.status) == ("unauthorized", 401)
    assert API_KEY not in str(unauthorized.value)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(Answer.json(503, {"error": {"code": "busy"}}), "503 busy", id="503"),
        pytest.param(Answer(500, b"oops", "text/plain"), "500 http_500: oops", id="500 text"),
        pytest.param(Answer.json(429, {"error": {"code": "rate"}}), "429 rate", id="429"),
        pytest.param(Answer.json(408, {}), "408 http_408", id="408"),
        pytest.param(
            Answer.json(201, {"status": "accepted"}), "201 without a message id", id="no id"
        ),
        pytest.param(Answer(200, b"<ok/>", "text/xml"), "200 without a message id", id="not json"),
        pytest.param(Fault.dropped(), "cannot reach example-http", id="dropped"),
    ],
)
def test_a_failure_to_retry_is_unavailable(
    example: GenericBroker, example_sms: ExampleHttpServer, fault: Answer | Fault, expected: str
) -> None:
    example_sms.fail_next(fault)

    with pytest.raises(BrokerUnavailable) as unavailable:
        send(example.definition, example_sms.api_url)

    assert expected in unavailable.value.detail


def test_a_status_not_listed_as_retryable_is_a_refusal(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    example_sms.fail_next(Answer(400, b"", "text/plain"))
    with pytest.raises(BrokerRejected) as refused:
        send(example.definition, example_sms.api_url)
    assert (refused.value.reason, refused.value.status) == ("http_400", 400)

    only_5xx = dataclasses.replace(
        example.definition,
        outbound=dataclasses.replace(example.definition.outbound, retry_on=frozenset({503})),
    )
    example_sms.fail_next(Answer.json(429, {"error": {"code": "rate"}}))
    with pytest.raises(BrokerRejected):
        send(only_5xx, example_sms.api_url)


def test_a_slow_broker_is_unavailable(
    example: GenericBroker, example_sms: ExampleHttpServer
) -> None:
    example_sms.fail_next(Fault.slow(WAIT_S))

    with pytest.raises(BrokerUnavailable, match="did not answer in time"):
        send(example.definition, example_sms.api_url, timeout_s=0.2)


def test_a_broker_nobody_answers_at_is_unavailable(example: GenericBroker) -> None:
    with pytest.raises(
        BrokerUnavailable, match=r"cannot reach example-http at http://127\.0\.0\.1:"
    ):
        send(example.definition, f"http://127.0.0.1:{free_port()}/v1")


def test_an_unusable_address_or_missing_credential_is_a_refusal(example: GenericBroker) -> None:
    with pytest.raises(BrokerRejected) as address:
        send(example.definition, "ftp://example.test")
    with pytest.raises(BrokerRejected) as credentials:
        send(example.definition, "http://127.0.0.1:9", credentials={"api_key": API_KEY})

    assert address.value.reason == "invalid_api_url"
    assert credentials.value.reason == "missing_credentials"
    assert "webhook_secret" in credentials.value.detail
    for key in ("clé", "key\r\nX-Injected: 1"):
        with pytest.raises(BrokerRejected) as header:
            send(
                example.definition,
                "http://127.0.0.1:9",
                credentials={**CREDENTIALS, "api_key": key},
            )
        assert header.value.reason == "invalid_header"
        assert key not in header.value.detail


def test_a_form_body_basic_auth_and_values_in_the_url(tmp_path: Path) -> None:
    document = copy.deepcopy(FORM_BROKER)
    document["credentials"] = {"required": ["webhook_key", "user", "password"]}
    document["outbound"] = {
        "url": "{api_url}/accounts/{credentials.user}/send?ref={idempotency_key}",
        "basic_auth": {"username": "{credentials.user}", "password": "{credentials.password}"},
        "body_format": "form",
        "body": {"To": "{to}", "Text": "{text}", "Media": "{media}", "Flash": False, "Class": 1},
        "message_id": "/id",
    }
    (tmp_path / "formish.yaml").write_text(
        yaml.safe_dump(document, sort_keys=False), encoding="utf-8"
    )
    definition = load_definitions(tmp_path)["formish"].definition
    credentials = {"webhook_key": "k", "user": "acme/1", "password": "pw"}

    with WebhookCatcher() as catcher:
        with pytest.raises(BrokerUnavailable, match="without a message id"):  # it answers {}
            send(
                definition,
                catcher.base_url,
                with_(text="a&b=c", media=("https://a", "https://b")),
                credentials=credentials,
            )
        (sent,) = catcher.wait_for(1)

    assert sent.path == "/accounts/acme/1/send"  # as the server decoded it
    assert sent.url.endswith("?ref=outbox-7-1")
    assert sent.basic_auth() == ("acme/1", "pw")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.body == (
        b"To=%2B14155550123&Text=a%26b%3Dc&Media=https%3A%2F%2Fa&Media=https%3A%2F%2Fb"
        b"&Flash=false&Class=1"
    )


def test_values_in_a_url_are_percent_encoded_all_but_the_api_address() -> None:
    template = Template.parse("{api_url}/a/{credentials.user}?to={to}&x={{y}}")
    values = {"api_url": "https://h.test/v1", "credentials.user": "acme/1", "to": "+1 415"}

    assert template.render(values, in_url=True) == (
        "https://h.test/v1/a/acme%2F1?to=%2B1%20415&x={y}"
    )
    assert template.render({**values, "credentials.user": None}, in_url=True) == (
        "https://h.test/v1/a/?to=%2B1%20415&x={y}"
    )
    assert template.render({**values, "credentials.user": None}) is None


def test_the_broker_gives_its_client(example: GenericBroker) -> None:
    async def run() -> GenericClient:
        async with httpx2.AsyncClient() as http:
            return example.client(http)

    assert isinstance(asyncio.run(run()), GenericClient)
