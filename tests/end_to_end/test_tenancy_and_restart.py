"""Two organisations never see each other's data; a restart keeps everything."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from tests.end_to_end.brokers import sandbox_text
from tests.end_to_end.conftest import Stack, start_stack
from tests.end_to_end.organisations import ACME, GLOBEX


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path)
    yield running
    running.server.stop()
    running.engine.dispose()


def test_neither_organisation_sees_the_other(own_stack: Stack) -> None:
    with own_stack.client() as client:
        sandbox_text(client, ACME, message_id="t-1", sender="+14145550001", text="acme")
        sandbox_text(client, GLOBEX, message_id="t-1", sender="+14145550001", text="globex")
    with own_stack.client(ACME) as acme, own_stack.client(GLOBEX) as globex:
        [mine] = acme.get("/api/interactions").json()["interactions"]
        [theirs] = globex.get("/api/interactions").json()["interactions"]
        assert mine["local_number"] == ACME.support
        assert theirs["local_number"] == GLOBEX.support
        assert acme.get(f"/api/interactions/{theirs['id']}").status_code == 404
        assert globex.get(f"/api/interactions/{mine['id']}").status_code == 404
        acme_queues = acme.get("/api/queues").json()["queues"]
        globex_queues = globex.get("/api/queues").json()["queues"]
    acme_waiting = [w["interaction_id"] for q in acme_queues for w in q["waiting"]]
    globex_waiting = [w["interaction_id"] for q in globex_queues for w in q["waiting"]]
    assert acme_waiting == [mine["id"]]
    assert globex_waiting == [theirs["id"]]
    # the same broker message id on two accounts is two messages
    assert len(own_stack.rows("SELECT id FROM message WHERE broker_message_id = 't-1'")) == 2


def test_a_restart_keeps_everything(own_stack: Stack) -> None:
    with own_stack.client() as client:
        sandbox_text(client, ACME, message_id="r-1", sender="+14145550002", text="before")
        sandbox_text(client, ACME, message_id="r-stop", sender="+14145550003", text="STOP")
    with own_stack.client(ACME) as api:
        before = api.get("/api/interactions").json()
        queues_before = api.get("/api/queues").json()
    own_stack.server.stop()
    own_stack.server.start()
    with own_stack.client(ACME) as api:
        assert api.get("/api/interactions").json() == before
        assert api.get("/api/queues").json() == queues_before
    with own_stack.client() as client:
        again = sandbox_text(client, ACME, message_id="r-1", sender="+14145550002", text="before")
        more = sandbox_text(client, ACME, message_id="r-2", sender="+14145550002", text="after")
    assert again.json()["duplicates"] == 1
    assert more.json()["stored"] == 1
    [interaction] = before["interactions"]
    with own_stack.client(ACME) as api:
        messages = api.get(f"/api/interactions/{interaction['id']}").json()["messages"]
    assert [m["body"] for m in messages] == ["before", "after"]
    assert [m["id"] for m in messages] == sorted(m["id"] for m in messages)
    rows = own_stack.rows("SELECT state FROM consent WHERE remote_number = '+14145550003'")
    assert [row.state for row in rows] == ["opted_out"]


def test_a_configuration_applied_while_running_is_followed(own_stack: Stack) -> None:
    folder = own_stack.folder / "config"
    routes = (folder / "acme" / "inbound_routes.yaml").read_text()
    (folder / "acme" / "inbound_routes.yaml").write_text(
        routes.replace("(?i)^\\s*hola\\b", "(?i)bonjour")
    )
    apply_config(
        own_stack.engine,
        load_config_folder(folder / "acme"),
        actor="test",
        now=datetime.now(UTC),
    )
    with own_stack.client() as client:
        sandbox_text(client, ACME, message_id="c-1", sender="+14145550004", text="bonjour")
    [row] = own_stack.rows(
        "SELECT w.name FROM interaction i JOIN workgroup w ON w.id = i.queue_id "
        "WHERE i.remote_number = '+14145550004'"
    )
    assert row.name == "Spanish"


def test_twilio_behind_a_trusted_proxy(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, env={"PARLEY_TRUST_FORWARDED_HEADERS": "true"})
    try:
        public = f"https://sms.example.com/webhooks/twilio/{ACME.account('twilio')}"
        params = {
            "MessageSid": "SM" + "p" * 32,
            "AccountSid": ACME.twilio_sid,
            "From": "+14145550005",
            "To": ACME.twilio_number,
            "Body": "through the proxy",
        }
        signature = RequestValidator(ACME.twilio_token).compute_signature(public, params)
        with stack.client() as client:
            behind = client.post(
                f"/webhooks/twilio/{ACME.account('twilio')}",
                data=params,
                headers={
                    "X-Twilio-Signature": signature,
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "sms.example.com",
                },
            )
            direct = client.post(
                f"/webhooks/twilio/{ACME.account('twilio')}",
                data={**params, "MessageSid": "SM" + "q" * 32},
                headers={"X-Twilio-Signature": signature},
            )
        assert behind.status_code == 200, behind.text
        assert direct.status_code == 401
        assert stack.counts()["message"] == 1
    finally:
        stack.server.stop()
        stack.engine.dispose()
