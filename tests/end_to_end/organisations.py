"""Two organisations under two providers, written as configuration folders and applied.

Each has an account on every broker; the secrets are the test's own, so the tests can sign.
Alice's routing profile takes Support first, then Spanish; Bob's Sales first, then Support (two
conversations at once each); Carol, the supervisor, has none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from server.adapters.persistence.database import create_store_engine, migrate
from server.cli import create_token


@dataclass(frozen=True)
class Organisation:
    slug: str
    token: str
    sandbox_key: str
    twilio_sid: str
    twilio_token: str
    inteliquent_key: str
    inteliquent_header: tuple[str, str]
    bandwidth_auth: tuple[str, str]
    support: str  # sandbox number on the Support workgroup
    direct: str  # sandbox number assigned to the user alice
    twilio_number: str
    inteliquent_number: str
    bandwidth_number: str

    def account(self, broker: str) -> str:
        return f"{self.slug}-{broker}"


def _organisation(slug: str, area: str, sid_digit: str) -> Organisation:
    return Organisation(
        slug=slug,
        token=f"{slug}-api-token-0123456789",
        sandbox_key=f"{slug}-sandbox-key",
        twilio_sid="AC" + sid_digit * 32,
        twilio_token=f"{slug}-twilio-auth-token",
        inteliquent_key=f"{slug}-inteliquent-api-key",
        inteliquent_header=("X-Parley-Hook", f"{slug}-static-value"),
        bandwidth_auth=(f"{slug}-hook-user", f"{slug}-hook-password"),
        support=f"+1{area}5550100",
        direct=f"+1{area}5550101",
        twilio_number=f"+1{area}5550102",
        inteliquent_number=f"+1{area}5550103",
        bandwidth_number=f"+1{area}5550104",
    )


ACME = _organisation("acme", "920", "a")
GLOBEX = _organisation("globex", "608", "b")


def write_folder(folder: Path, org: Organisation) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "organisation.yaml": {
            "slug": org.slug,
            "name": org.slug.title(),
            "provider": {"slug": f"{org.slug}-provider", "name": f"{org.slug} provider"},
            "country": "US",
        },
        "people.yaml": {
            "users": [
                {
                    "username": "alice",
                    "display_name": "Alice",
                    "role": "agent",
                    "routing_profile": "support-first",
                },
                {
                    "username": "bob",
                    "display_name": "Bob",
                    "role": "agent",
                    "routing_profile": "sales-first",
                },
                {
                    "username": "carol",
                    "display_name": "Carol",
                    "role": "supervisor",
                    "send_alerts": True,
                },
            ],
            "workgroups": [
                {"name": "Support", "members": ["alice", "bob"]},
                {"name": "Sales", "members": ["bob"]},
                {"name": "Spanish", "members": ["alice"]},
            ],
        },
        "profiles.yaml": {
            "profiles": [
                {
                    "name": "support-first",
                    "sms_capacity": 2,
                    "queues": [
                        {"workgroup": "Support", "priority": 1},
                        {"workgroup": "Spanish", "priority": 2},
                    ],
                },
                {
                    "name": "sales-first",
                    "sms_capacity": 2,
                    "queues": [
                        {"workgroup": "Sales", "priority": 1},
                        {"workgroup": "Support", "priority": 2},
                    ],
                },
            ]
        },
        "brokers.yaml": {
            "accounts": [
                {
                    "public_id": org.account("sandbox"),
                    "broker": "sandbox",
                    "name": "Sandbox",
                    "credentials": {"webhook_key": org.sandbox_key},
                },
                {
                    "public_id": org.account("twilio"),
                    "broker": "twilio",
                    "name": "Twilio",
                    "credentials": {
                        "account_sid": org.twilio_sid,
                        "auth_token": org.twilio_token,
                    },
                },
                {
                    "public_id": org.account("inteliquent"),
                    "broker": "inteliquent",
                    "name": "Inteliquent",
                    "mms_enabled": True,
                    "credentials": {
                        "webhook_api_key": org.inteliquent_key,
                        "webhook_header_name": org.inteliquent_header[0],
                        "webhook_header_value": org.inteliquent_header[1],
                    },
                },
                {
                    "public_id": org.account("bandwidth"),
                    "broker": "bandwidth",
                    "name": "Bandwidth",
                    "credentials": {
                        "webhook_username": org.bandwidth_auth[0],
                        "webhook_password": org.bandwidth_auth[1],
                    },
                },
            ]
        },
        "numbers.yaml": {
            "numbers": [
                {"number": org.support, "account": org.account("sandbox"), "workgroup": "Support"},
                {
                    "number": org.direct,
                    "account": org.account("sandbox"),
                    "user": "alice",
                    "mms_enabled": True,  # the sandbox account sends no MMS; this number does
                },
                {
                    "number": org.twilio_number,
                    "account": org.account("twilio"),
                    "workgroup": "Support",
                },
                {
                    "number": org.inteliquent_number,
                    "account": org.account("inteliquent"),
                    "workgroup": "Support",
                },
                {
                    "number": org.bandwidth_number,
                    "account": org.account("bandwidth"),
                    "workgroup": "Support",
                },
            ]
        },
        "inbound_routes.yaml": {
            "routes": [
                {
                    "name": "spanish",
                    "type": "BODY",
                    "pattern": r"(?i)^\s*hola\b",
                    "destination": {"workgroup": "Spanish"},
                },
                {
                    "name": "chicago",
                    "type": "ANI",
                    "pattern": r"^\+1312",
                    "destination": {"workgroup": "Sales"},
                },
                {
                    "name": "vip",
                    "type": "BODY",
                    "pattern": "VIP",
                    "destination": {"handler": "tests.fixtures.routing_handlers:vip"},
                },
                {
                    "name": "broken",
                    "type": "BODY",
                    "pattern": "BROKEN",
                    "destination": {"handler": "tests.fixtures.routing_handlers:broken"},
                },
            ],
            "default": {"destination": {"assigned": True}},
        },
    }
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return folder


def provision(database_url: str, folder: Path, *organisations: Organisation) -> None:
    """Migrate the store, apply each organisation's folder and create its API token."""
    engine = create_store_engine(database_url)
    try:
        migrate(engine)
        for org in organisations:
            document = load_config_folder(write_folder(folder / org.slug, org))
            apply_config(engine, document, actor="test", now=datetime.now(UTC))
            create_token(engine, organisation_slug=org.slug, name="test", value=org.token)
    finally:
        engine.dispose()
