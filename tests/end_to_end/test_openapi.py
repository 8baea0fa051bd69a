"""The served OpenAPI document describes every route, and real answers match its schemas."""

from __future__ import annotations

import yaml
from starlette.routing import Route

from server.app import OPENAPI_FILE, create_app
from server.settings import load_settings
from tests.end_to_end.brokers import sandbox_text
from tests.end_to_end.conftest import Stack
from tests.end_to_end.openapi_check import check
from tests.end_to_end.organisations import ACME


def test_every_route_is_documented() -> None:
    app = create_app(load_settings({"PARLEY_DATABASE_URL": "sqlite:///unused"}, dotenv=None))
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    routes = {
        route.path.replace(":int", "")
        for route in app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
    }
    assert routes == set(document["paths"])


def test_answers_match_the_document(stack: Stack) -> None:
    with stack.client() as client:
        document = client.get("/openapi.json").json()
        accepted = sandbox_text(
            client, ACME, message_id="oa-1", sender="+14145557001", text="hi", media=["https://m/1"]
        )
        check(document, "WebhookAccepted", accepted.json())
        refused = client.post("/webhooks/sandbox/nobody", json={})
        check(document, "Error", refused.json())
        check(document, "Health", client.get("/health").json())
    with stack.client(ACME) as api:
        page = api.get("/api/interactions").json()
        check(document, "InteractionPage", page)
        assert page["interactions"], "the text above made an interaction"
        one = api.get(f"/api/interactions/{page['interactions'][0]['id']}").json()
        check(document, "InteractionWithMessages", one)
        check(document, "QueueList", api.get("/api/queues").json())
        check(document, "Error", api.get("/api/queues", headers={"Authorization": "x"}).json())
