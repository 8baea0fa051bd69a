"""Tests for agent_ui/static/js/desk.js, the agent page's model, run in Chromium with no server:
Playwright answers the page's requests from agent_ui/ on disk.

What they hold the desk to: delivery statuses only move forward, whatever order they come in;
events replayed after a reconnect change nothing ("state + replayed events == state"); a
snapshot replaces what the page had, keeping the conversations already closed; a wrap-up is told
from a plain disconnect.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Route

from server.adapters.web_pages import UI_FOLDER

ORIGIN = "http://parley.test"
ME = 3


def _serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    if path == "/":
        route.fulfill(content_type="text/html", body="<!doctype html><title>desk</title>")
        return
    file = UI_FOLDER / path.removeprefix("/").split("?")[0]
    if path.startswith("/static/") and file.is_file():
        route.fulfill(content_type="text/javascript", body=file.read_text(encoding="utf-8"))
    else:
        route.fulfill(status=404, body="")


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context()
    try:
        opened = context.new_page()
        opened.route(f"{ORIGIN}/**", _serve)
        opened.goto(f"{ORIGIN}/")
        yield opened
    finally:
        context.close()


def run(page: Page, body: str, **values: Any) -> Any:
    """Run `body` (JavaScript statements ending in `return`) with desk.js imported as `desk`."""
    return page.evaluate(
        f"""async (values) => {{
            const desk = await import("/static/js/desk.js");
            const {{ Desk }} = desk;
            {body}
        }}""",
        values,
    )


def interaction(iid: int, state: str = "connected", agent_id: int | None = ME) -> dict[str, Any]:
    return {
        "id": iid,
        "state": state,
        "local_number": "+19205550100",
        "remote_number": "+14145550147",
        "queue": {"kind": "workgroup", "id": 1, "name": "Support"},
        "priority": 0,
        "enqueued_at": "2026-11-22T10:00:00Z",
        "created_at": "2026-11-22T10:00:00Z",
        "closed_at": None,
        "agent_id": agent_id,
        "grace_until": None,
        "closed_reason": None,
        "wrap_up_until": None,
    }


def message(mid: int, iid: int, status: str | None = "queued") -> dict[str, Any]:
    return {
        "id": mid,
        "interaction_id": iid,
        "direction": "outbound" if status else "inbound",
        "from": "+19205550100",
        "to": "+14145550147",
        "body": f"text {mid}",
        "media": [],
        "keyword": None,
        "status": status,
        "status_reason": None,
        "author_id": ME if status else None,
        "created_at": "2026-11-22T10:01:00Z",
    }


def snapshot(*interactions: dict[str, Any], offers: list[dict[str, Any]] | None = None) -> Any:
    return {
        "type": "snapshot",
        "seq": 10,
        "agent": {
            "state": "available",
            "reason": None,
            "since": "2026-11-22T10:00:00Z",
            "capacity": 2,
            "active": len(interactions),
        },
        "interactions": list(interactions),
        "offers": offers or [],
        "queues": [],
    }


STATE = """
const seen = (d) => ({
  agent: d.agent,
  offers: [...d.offers.keys()],
  held: d.held(),
  conversations: [...d.conversations.values()].sort((a, b) => a.id - b.id).map((c) => ({
    id: c.id, state: c.interaction.state, stale: Boolean(c.interaction.stale), wrapUp: c.wrapUp,
    messages: c.ordered().map((m) => [m.id, m.status, m.status_reason]),
  })),
});
"""


def test_statuses_only_move_forward_in_any_order(page: Page) -> None:
    statuses = run(
        page,
        """
        const d = new Desk(values.me);
        d.applySnapshot(values.snapshot);
        const shown = () => d.conversations.get(12).messages.get(301).status;
        const steps = [];
        for (const [status, reason] of [["sent", null], ["queued", null], ["delivered", null],
                                        ["sent", null], ["failed", "late"]]) {
          d.applyEvent({kind: "message_status", interaction_id: 12, message_id: 301,
                        status, reason});
          steps.push(shown());
        }
        // A status that comes before its message is kept until the message does.
        d.applyEvent({kind: "message_status", interaction_id: 12, message_id: 302,
                      status: "delivered", reason: null});
        d.applyEvent({kind: "message", interaction_id: 12, message: values.early});
        steps.push(d.conversations.get(12).messages.get(302).status);
        return {steps, forward: [desk.statusMovesForward(null, "queued"),
                                 desk.statusMovesForward("delivered", "failed"),
                                 desk.statusMovesForward("sent", "failed")]};
        """,
        me=ME,
        snapshot=snapshot({**interaction(12), "messages": [message(301, 12)]}),
        early=message(302, 12),
    )
    assert statuses == {
        "steps": ["sent", "sent", "delivered", "delivered", "delivered", "delivered"],
        "forward": [True, False, True],
    }


def test_events_replayed_after_a_reconnect_change_nothing(page: Page) -> None:
    events = [
        {
            "kind": "offer",
            "interaction_id": 14,
            "expires_at": "2026-11-22T10:05:30Z",
            "interaction": interaction(14, "offered", None),
        },
        {"kind": "offer_ended", "interaction_id": 14, "reason": "accepted"},
        {"kind": "interaction", "interaction": interaction(14)},
        {"kind": "message", "interaction_id": 14, "message": message(401, 14, None)},
        {"kind": "message", "interaction_id": 14, "message": message(402, 14)},
        {
            "kind": "message_status",
            "interaction_id": 14,
            "message_id": 402,
            "status": "sent",
            "reason": None,
        },
        {
            "kind": "agent_state",
            "state": "busy",
            "reason": None,
            "since": "2026-11-22T10:06:00Z",
            "capacity": 2,
            "active": 2,
        },
    ]
    once, twice = run(
        page,
        STATE
        + """
        const d = new Desk(values.me);
        d.applySnapshot(values.snapshot);
        const outcomes = values.events.map((event) => d.applyEvent(event).kind);
        const once = seen(d);
        values.events.forEach((event) => d.applyEvent(event));
        return [{...once, outcomes}, {...seen(d), outcomes}];
        """,
        me=ME,
        snapshot=snapshot({**interaction(12), "messages": []}),
        events=events,
    )
    assert once == twice
    assert once["outcomes"] == [
        "offer",
        "offers",
        "opened",
        "message",
        "message",
        "status",
        "agent",
    ]
    assert once["offers"] == []
    assert once["held"] == 2
    [_, taken] = once["conversations"]
    assert taken["messages"] == [[401, None, None], [402, "sent", None]]


def test_a_snapshot_replaces_the_desk_but_keeps_closed_conversations(page: Page) -> None:
    after = run(
        page,
        STATE
        + """
        const d = new Desk(values.me);
        d.applySnapshot(values.before);
        d.applyEvent({kind: "interaction", interaction: values.closed});
        d.applySnapshot(values.after);
        return seen(d);
        """,
        me=ME,
        before=snapshot(
            {**interaction(12), "messages": []},
            {**interaction(13), "messages": []},
            {**interaction(15), "messages": []},
        ),
        closed={**interaction(13, "disconnected"), "closed_reason": "agent"},
        after=snapshot(
            {**interaction(12, "idle"), "messages": [message(501, 12, None)]},
            offers=[
                {
                    "interaction_id": 16,
                    "expires_at": "2026-11-22T10:05:30Z",
                    "interaction": interaction(16, "offered", None),
                }
            ],
        ),
    )
    assert after["offers"] == [16]
    assert [(c["id"], c["state"], c["stale"]) for c in after["conversations"]] == [
        (12, "idle", False),
        (13, "disconnected", False),  # closed before: the agent closes its tab
        (15, "connected", True),  # open before, gone from the snapshot: it ended meanwhile
    ]
    assert after["conversations"][0]["messages"] == [[501, None, None]]
    assert after["held"] == 1


def test_a_wrap_up_lasts_while_the_interaction_says_wrap_up_until(page: Page) -> None:
    """The command's answer and the event may come in either order; the event that ends the
    wrap-up has `wrap_up_until` null again; a disconnect without wrap-up holds nothing."""
    wrap_ups = run(
        page,
        """
        const results = [];
        for (const answerFirst of [true, false]) {
          const d = new Desk(values.me);
          d.applySnapshot(values.snapshot);
          const wrapping = {kind: "interaction", interaction: values.wrapping};
          if (answerFirst) { d.setWrapUp(12, true); d.applyEvent(wrapping); }
          else { d.applyEvent(wrapping); d.setWrapUp(12, true); }
          const during = [d.conversations.get(12).wrapUp, d.held()];
          d.applyEvent({kind: "interaction", interaction: values.closed});  // it ended
          results.push([...during, d.conversations.get(12).wrapUp, d.held()]);
        }
        // a snapshot lists a disconnected interaction while it is held for wrap-up
        let d = new Desk(values.me);
        d.applySnapshot({...values.snapshot, interactions: [{...values.wrapping, messages: []}]});
        results.push([d.conversations.get(12).wrapUp, d.held()]);
        // a disconnect: the same event twice (a replay) holds nothing
        d = new Desk(values.me);
        d.applySnapshot(values.snapshot);
        d.applyEvent({kind: "interaction", interaction: values.closed});
        d.applyEvent({kind: "interaction", interaction: values.closed});
        results.push([d.conversations.get(12).wrapUp, d.held()]);
        return results;
        """,
        me=ME,
        snapshot=snapshot({**interaction(12), "messages": []}),
        wrapping={
            **interaction(12, "disconnected"),
            "closed_reason": "agent",
            "wrap_up_until": "2026-11-22T10:06:00Z",
        },
        closed={**interaction(12, "disconnected"), "closed_reason": "agent"},
    )
    assert wrap_ups == [[True, 1, False, 0], [True, 1, False, 0], [True, 1], [False, 0]]


def test_a_conversation_transferred_away_is_no_longer_held(page: Page) -> None:
    shown = run(
        page,
        STATE
        + """
        const d = new Desk(values.me);
        d.applySnapshot(values.snapshot);
        const outcome = d.applyEvent({kind: "interaction", interaction: values.moved});
        const stranger = d.applyEvent({kind: "interaction", interaction: values.stranger});
        return {outcome: outcome.kind, stranger: stranger.kind, ...seen(d)};
        """,
        me=ME,
        snapshot=snapshot({**interaction(12), "messages": []}),
        moved={**interaction(12, "queued", None), "priority": 10},
        stranger=interaction(99, "connected", 7),
    )
    assert (shown["outcome"], shown["stranger"], shown["held"]) == ("conversation", "ignored", 0)
    assert [c["id"] for c in shown["conversations"]] == [12]
