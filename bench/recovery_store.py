"""The store `bench/recovery.py` restarts on: one organisation and 100,000 live interactions.

`fill(database_url, folder, Workload(interactions, agents))` migrates an empty store, applies an
organisation `bench` from a configuration folder (as `bench/dispatch.py` does: eight workgroups
with their strategies, skills, queue delays and escalation, routing profiles, a sandbox account,
a number per workgroup and ten direct numbers), gives tokens to an administrator and two agents,
and then writes the live state with bulk SQLAlchemy Core inserts on the tables of
`server/adapters/persistence/tables.py` (never through the server). It is the state of a server
that stopped a minute (`DOWNTIME_S`) before: what fell due before then was done, what fell due
since is due at start.

- every agent holds a full slate (capacity 20): 4 offers (2 expired during the downtime, 2
  expiring in 10-20 minutes), 11 connected and 4 idle conversations, and 1 wrap-up (half of
  them ended during the downtime);
  `agent_presence` rows (70 % available, 20 % away, 10 % offline), a few stored agent events
  and an `interaction_handler` row per conversation taken;
- every other interaction waits in a queue (about 85 % of them at the default size), from a few
  seconds to two hours old, over the workgroups and the direct numbers' user queues; Support and
  Sales overflow to Overflow after 900 s and 600 s: older ones are in Overflow already, those
  that reached it during the downtime overflow at start;
- each interaction has one or two messages (the customer's text, then the agent's reply or a
  second text); future care deadlines (idle, grace, notice, maximum wait) on some rows.

It returns a `Filled` that says what the server must show after a restart at a given instant
(`expected_waiting`). The offered, connected and idle interactions and the queued ones make up
`interactions`; the wrap-ups (disconnected, slot still held) come on top.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

from server.adapters.config_files import load_config_folder
from server.adapters.persistence import accounts
from server.adapters.persistence.config_apply import apply_config
from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.persistence.tables import (
    AgentEvent,
    AgentPresence,
    Interaction,
    InteractionHandler,
    Message,
    PhoneNumber,
    User,
    Workgroup,
    table_of,
)

__all__ = ["CAPACITY", "SLATE", "Filled", "Workload", "default_agents", "fill"]

ORG = "bench"
ACCOUNT = "bench-sandbox"
CAPACITY = 20  # the most a routing profile may give (routing_profiles/README.md)
# What each agent holds; together one full slate of CAPACITY.
OFFERS_PAST, OFFERS_FUTURE, CONNECTED, IDLE, WRAP_UPS = 2, 2, 11, 4, 1
SLATE = OFFERS_PAST + OFFERS_FUTURE + CONNECTED + IDLE  # counted among the live interactions
DIRECT_NUMBERS = 10  # agents 0..9 have a number of their own (user queues)
USER_QUEUE_SHARE = 0.01
MAX_AGE_S = 7_200  # the oldest waiting interaction
RUN_MARGIN_S = 300  # no queued interaction crosses an overflow threshold during a run
# The server that wrote this state stopped DOWNTIME_S before the fill's instant: what fell due
# before then was done; what fell due since (offers, wrap-ups, overflows) is due at start.
DOWNTIME_S = 60
INSERT_CHUNK = 20_000
SEED = 20_240_601

# name, weight of the queued work, config (strategy, skills, escalation), overflow after (s)
_WORKGROUPS: tuple[tuple[str, int, dict[str, Any]], ...] = (
    (
        "Support",
        30,
        {
            "required_skills": {"english": 3},
            "escalation": [
                {"after_s": 120, "drop_skills": True},
                {"after_s": 900, "overflow_to": "Overflow"},
            ],
        },
    ),
    ("Sales", 20, {"escalation": [{"after_s": 600, "overflow_to": "Overflow"}]}),
    ("Billing", 15, {"strategy": "least_busy"}),
    (
        "Tech",
        12,
        {"required_skills": {"tech": 5}, "escalation": [{"after_s": 300, "drop_skills": True}]},
    ),
    ("Spanish", 8, {"required_skills": {"spanish": 4}}),
    ("Claims", 6, {"strategy": "round_robin", "wrap_up_timeout_s": 120}),
    ("Retention", 5, {"offer_timeout_s": 60}),
    ("Overflow", 4, {}),
)
# profile name: (queues as (workgroup, priority, delay_s), skills)
_PROFILES: dict[str, tuple[tuple[tuple[str, int, int], ...], dict[str, int]]] = {
    "support-sales": ((("Support", 1, 0), ("Sales", 2, 60), ("Overflow", 3, 0)), {"english": 5}),
    "sales-support": ((("Sales", 1, 0), ("Support", 2, 30)), {"english": 4}),
    "billing": ((("Billing", 1, 0), ("Claims", 2, 0), ("Overflow", 3, 120)), {}),
    "tech": ((("Tech", 1, 0), ("Support", 2, 60)), {"tech": 7, "english": 3}),
    "spanish": ((("Spanish", 1, 0), ("Support", 2, 0)), {"spanish": 8, "english": 3}),
    "claims-retention": ((("Claims", 1, 0), ("Retention", 1, 0), ("Billing", 2, 0)), {}),
    "overflow": ((("Overflow", 1, 0), ("Sales", 2, 0), ("Retention", 3, 0)), {}),
}
_BODIES = (
    "Hi, my order has not arrived yet, can you check where it is?",
    "I was charged twice this month, please help",
    "hola, necesito ayuda con mi cuenta",
    "The app keeps logging me out since the update",
    "Can I change the delivery address for order 48213?",
    "Is anyone there?",
)


def default_agents(interactions: int) -> int:
    """800 agents for 100,000 interactions; proportionally fewer (at least 10) for fewer."""
    return max(10, round(interactions * 0.008))


@dataclass
class Filled:
    """What the bench wrote, for checking what a restarted server shows."""

    fill_at: datetime
    organisation_id: int
    admin_token: str
    probe_token: str  # an away agent whose profile takes every workgroup, holding nothing
    held_token: str  # agent0000, away, with a full slate
    workgroups: dict[str, int]  # name: id
    overflow_after: dict[int, tuple[int, int]]  # workgroup id: (after_s, target id)
    # (queue kind, queue id, enqueued_at) of every queued row
    queued: list[tuple[str, int, datetime]] = field(default_factory=list)
    offers: dict[int, tuple[int, datetime]] = field(default_factory=dict)  # id: (wg, expires)
    wrap_ups: dict[int, datetime] = field(default_factory=dict)  # id: until
    held_ids: set[int] = field(default_factory=set)  # agent0000's connected + idle + wrap-up
    held_offers: set[int] = field(default_factory=set)  # agent0000's offers
    soon: frozenset[int] = frozenset()  # future offers a run re-times to expire soon
    states: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)  # table: rows written

    @property
    def live(self) -> int:
        return sum(self.states[state] for state in ("queued", "offered", "connected", "idle"))

    def expected_waiting(
        self, at: datetime, *, ended: frozenset[int] = frozenset()
    ) -> dict[tuple[str, int], int]:
        """{(kind, id): waiting} once the deadlines due at `at` have fired: queued rows old
        enough overflow, expired offers and those in `ended` are back in their queue (no agent
        is connected, so nothing is offered again)."""
        waiting: Counter[tuple[str, int]] = Counter()
        for kind, queue_id, enqueued_at in self.queued:
            step = self.overflow_after.get(queue_id) if kind == "workgroup" else None
            if step is not None and (at - enqueued_at).total_seconds() >= step[0]:
                queue_id = step[1]
            waiting[(kind, queue_id)] += 1
        for interaction_id, (workgroup_id, expires_at) in self.offers.items():
            if expires_at <= at or interaction_id in ended:
                waiting[("workgroup", workgroup_id)] += 1
        for workgroup_id in self.workgroups.values():
            waiting.setdefault(("workgroup", workgroup_id), 0)
        return dict(waiting)

    def offered_after(self, at: datetime, *, ended: frozenset[int] = frozenset()) -> set[int]:
        """The interactions still offered at `at` (those in `ended` were taken back)."""
        return {
            interaction_id
            for interaction_id, (_, expires_at) in self.offers.items()
            if expires_at > at and interaction_id not in ended
        }


@dataclass(frozen=True)
class Workload:
    interactions: int
    agents: int
    soon: int = 100  # future offers each run re-times to expire a few seconds after start


# -- the organisation ---------------------------------------------------------------------------


def _agent_name(n: int) -> str:
    return f"agent{n:04d}"


def _profile_of(n: int) -> str:
    return list(_PROFILES)[n % len(_PROFILES)]


def _write_folder(folder: Path, agents: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    names = [_agent_name(n) for n in range(agents)]
    members: dict[str, list[str]] = {name: [] for name, _, _ in _WORKGROUPS}
    for n, name in enumerate(names):
        for workgroup, _, _ in _PROFILES[_profile_of(n)][0]:
            members[workgroup].append(name)
    members = {wg: [*users, "probe"] for wg, users in members.items()}
    files: dict[str, Any] = {
        "organisation.yaml": {
            "slug": ORG,
            "name": "Bench",
            "provider": {"slug": "bench-provider", "name": "Bench provider"},
            "country": "US",
        },
        "people.yaml": {
            "users": [
                *(
                    {"username": name, "role": "agent", "routing_profile": _profile_of(n)}
                    for n, name in enumerate(names)
                ),
                {"username": "probe", "role": "agent", "routing_profile": "probe"},
                {"username": "boss", "role": "supervisor", "send_alerts": True},
            ],
            "workgroups": [
                {"name": name, "members": members[name], **settings}
                for name, _, settings in _WORKGROUPS
            ],
        },
        "profiles.yaml": {
            "profiles": [
                *(
                    {
                        "name": name,
                        "sms_capacity": CAPACITY,
                        "skills": skills,
                        "queues": [
                            {"workgroup": wg, "priority": priority, "delay_s": delay}
                            for wg, priority, delay in queues
                        ],
                    }
                    for name, (queues, skills) in _PROFILES.items()
                ),
                {
                    "name": "probe",
                    "sms_capacity": CAPACITY,
                    "skills": {"english": 9, "tech": 9, "spanish": 9},
                    "queues": [{"workgroup": name, "priority": 1} for name, _, _ in _WORKGROUPS],
                },
            ]
        },
        "brokers.yaml": {
            "accounts": [
                {
                    "public_id": ACCOUNT,
                    "broker": "sandbox",
                    "name": "Sandbox",
                    "credentials": {"webhook_key": "bench-sandbox-webhook-key"},
                }
            ]
        },
        "numbers.yaml": {
            "numbers": [
                *(
                    {"number": f"+1920555{n:04d}", "account": ACCOUNT, "workgroup": name}
                    for n, (name, _, _) in enumerate(_WORKGROUPS)
                ),
                *(
                    {"number": f"+1920556{n:04d}", "account": ACCOUNT, "user": _agent_name(n)}
                    for n in range(min(DIRECT_NUMBERS, agents))
                ),
            ]
        },
        "inbound_routes.yaml": {"routes": [], "default": {"destination": {"assigned": True}}},
    }
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


@dataclass(frozen=True)
class _Org:
    id: int
    users: dict[str, int]
    workgroups: dict[str, int]
    numbers: dict[tuple[str, int], tuple[int, str]]  # (kind, queue id): (number id, e164)
    account_id: int


def _read_org(connection: sa.Connection) -> _Org:
    org_id = accounts.organisation_id_for(connection, slug=ORG)
    user, workgroup, number = table_of(User), table_of(Workgroup), table_of(PhoneNumber)
    users = {
        row.username: row.id
        for row in connection.execute(
            sa.select(user.c.username, user.c.id).where(user.c.organisation_id == org_id)
        )
    }
    workgroups = {
        row.name: row.id
        for row in connection.execute(
            sa.select(workgroup.c.name, workgroup.c.id).where(workgroup.c.organisation_id == org_id)
        )
    }
    numbers: dict[tuple[str, int], tuple[int, str]] = {}
    account_id = 0
    for row in connection.execute(sa.select(number).where(number.c.organisation_id == org_id)):
        key = ("user", row.user_id) if row.user_id is not None else ("workgroup", row.workgroup_id)
        numbers[key] = (row.id, row.e164)
        account_id = row.broker_account_id
    return _Org(org_id, users, workgroups, numbers, account_id)


def _provision(engine: sa.Engine, folder: Path, agents: int, now: datetime) -> tuple[_Org, Filled]:
    migrate(engine)
    _write_folder(folder, agents)
    apply_config(engine, load_config_folder(folder), actor="bench", now=now)
    with engine.begin() as connection:
        org = _read_org(connection)
        tokens = [
            accounts.create_api_token(
                connection,
                organisation_id=org.id,
                user_id=user_id,
                name="bench",
                actor="bench",
                now=now,
            ).token
            for user_id in (None, org.users["probe"], org.users[_agent_name(0)])
        ]
    overflow: dict[int, tuple[int, int]] = {}
    for name, _, settings in _WORKGROUPS:
        for step in settings.get("escalation", []):
            if "overflow_to" in step:
                overflow[org.workgroups[name]] = (
                    step["after_s"],
                    org.workgroups[step["overflow_to"]],
                )
    filled = Filled(
        fill_at=now,
        organisation_id=org.id,
        admin_token=tokens[0],
        probe_token=tokens[1],
        held_token=tokens[2],
        workgroups=dict(org.workgroups),
        overflow_after=overflow,
    )
    return org, filled


# -- the live state -----------------------------------------------------------------------------


class _Rows:
    """Rows of every table, built in memory, then inserted in chunks."""

    def __init__(self, org: _Org, now: datetime, rng: random.Random) -> None:
        self.org, self.now, self.rng = org, now, rng
        self.interactions: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.handlers: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def ago(self, low_s: float, high_s: float) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(low_s, high_s))

    def ahead(self, low_s: float, high_s: float) -> datetime:
        return self.now + timedelta(seconds=self.rng.uniform(low_s, high_s))

    def interaction(
        self, *, queue: tuple[str, int], state: str, enqueued_at: datetime
    ) -> dict[str, Any]:
        number_id, e164 = self.org.numbers[queue]
        row: dict[str, Any] = {
            "organisation_id": self.org.id,
            "number_id": number_id,
            "local_number": e164,
            "remote_number": "",  # given with the id
            "state": state,
            "queue_kind": queue[0],
            "queue_id": queue[1],
            "priority": 5 if self.rng.random() < 0.1 else 0,
            "route_id": None,
            "agent_id": None,
            "offered_to": None,
            "offer_expires_at": None,
            "offer_delivered": False,
            "wrap_up_by": None,
            "wrap_up_until": None,
            "enqueued_at": enqueued_at,
            "created_at": enqueued_at - timedelta(milliseconds=self.rng.randint(5, 400)),
            "closed_at": None,
            "answered_at": None,
            "idle_at": None,
            "grace_until": None,
            "max_wait_at": None,
            "next_notice_at": None,
            "notice_position": None,
            "notice_wait_s": None,
            "closed_reason": None,
        }
        self.interactions.append(row)
        return row


def _queued_place(
    rng: random.Random, queue: tuple[str, int], overflow: dict[int, tuple[int, int]]
) -> tuple[tuple[str, int], float]:
    """The queue a waiting interaction is in when the server stopped, and its age in queue.

    Where its workgroup overflows after S seconds: one that had waited S + DOWNTIME_S or more
    overflowed before the stop (it is in the target queue, its enqueue time unchanged); one
    that reached S while the server was down overflows at start; none is within RUN_MARGIN_S
    below S (a run starts a few minutes after the fill and must not see one cross it).
    """
    age = max(1.0, MAX_AGE_S * rng.random() ** 2)  # more young ones than old ones
    step = overflow.get(queue[1]) if queue[0] == "workgroup" else None
    if step is None:
        return queue, age
    after_s, target = step
    if after_s - RUN_MARGIN_S <= age < after_s:
        age -= RUN_MARGIN_S
    elif age >= after_s + DOWNTIME_S:
        queue = ("workgroup", target)
    return queue, age


def _agents_rows(rows: _Rows, agents: int) -> None:
    org, rng = rows.org, rows.rng
    for n in range(agents):
        user_id = org.users[_agent_name(n)]
        queues = [org.workgroups[wg] for wg, _, _ in _PROFILES[_profile_of(n)][0]]
        presence = "away" if n == 0 else rng.choices(["available", "away", "offline"], [7, 2, 1])[0]
        rows.presence.append(
            {
                "user_id": user_id,
                "organisation_id": org.id,
                "state": presence,
                "reason": "lunch" if presence == "away" else None,
                "state_since": rows.ago(60, 7_200),
                "idle_since": rows.ago(0, 3_600),
            }
        )
        for seq in range(1, 4):
            rows.events.append(
                {
                    "organisation_id": org.id,
                    "user_id": user_id,
                    "seq": seq,
                    "body": {"kind": "agent_state", "state": presence},
                    "created_at": rows.ago(60, 3_600),
                }
            )
        for k in range(OFFERS_PAST + OFFERS_FUTURE):
            expires = rows.ago(5, DOWNTIME_S) if k < OFFERS_PAST else rows.ahead(600, 1_200)
            offered_at = expires - timedelta(seconds=30)
            row = rows.interaction(
                queue=("workgroup", rng.choice(queues)),
                state="offered",
                enqueued_at=offered_at - timedelta(seconds=rng.uniform(0, 60)),
            )
            row.update(offered_to=user_id, offer_expires_at=expires, offer_delivered=k % 2 == 0)
        for k in range(CONNECTED + IDLE + WRAP_UPS):
            answered = rows.ago(60, 3_000)
            row = rows.interaction(
                queue=("workgroup", rng.choice(queues)),
                state="connected",
                enqueued_at=answered - timedelta(seconds=rng.uniform(1, 300)),
            )
            row.update(agent_id=user_id, answered_at=answered)
            if k < CONNECTED:
                if rng.random() < 0.5:
                    row["idle_at"] = rows.ahead(600, 1_800)
            elif k < CONNECTED + IDLE:
                row.update(state="idle", grace_until=rows.ahead(600, 1_200))
            else:
                until = rows.ago(5, DOWNTIME_S) if n % 2 == 0 else rows.ahead(600, 1_200)
                row.update(
                    state="disconnected",
                    wrap_up_by=user_id,
                    wrap_up_until=until,
                    closed_at=until - timedelta(seconds=60),
                    closed_reason="agent",
                )


def _queued_rows(
    rows: _Rows, count: int, agents: int, overflow: dict[int, tuple[int, int]]
) -> None:
    org, rng = rows.org, rows.rng
    names = [name for name, _, _ in _WORKGROUPS]
    weights = [weight for _, weight, _ in _WORKGROUPS]
    direct = [org.users[_agent_name(n)] for n in range(min(DIRECT_NUMBERS, agents))]
    for _ in range(count):
        queue: tuple[str, int]
        if direct and rng.random() < USER_QUEUE_SHARE:
            queue = ("user", rng.choice(direct))
        else:
            queue = ("workgroup", org.workgroups[rng.choices(names, weights)[0]])
        queue, age = _queued_place(rng, queue, overflow)
        row = rows.interaction(
            queue=queue, state="queued", enqueued_at=rows.now - timedelta(seconds=age)
        )
        if rng.random() < 0.3:
            row["max_wait_at"] = rows.ahead(1_800, 3_600)
        if rng.random() < 0.3:
            row.update(
                next_notice_at=rows.ahead(600, 900),
                notice_position=rng.randint(1, 500),
                notice_wait_s=rng.randint(60, 3_600),
            )


def _number_rows(rows: _Rows, filled: Filled, agents: int) -> None:
    """Ids in creation order, remote numbers, messages and handlers; `filled` learns it all."""
    org, rng = rows.org, rows.rng
    order = sorted(range(len(rows.interactions)), key=lambda i: rows.interactions[i]["created_at"])
    held_user = org.users[_agent_name(0)] if agents else -1
    future_offers: list[int] = []
    message_id = 0
    for new_id, index in enumerate(order, start=1):
        row = rows.interactions[index]
        row["id"] = new_id
        row["remote_number"] = f"+1312{new_id:07d}"
        state = row["state"]
        filled.states["wrap_up" if row["wrap_up_until"] else state] += 1
        queue = (row["queue_kind"], row["queue_id"])
        if state == "queued":
            filled.queued.append((queue[0], queue[1], row["enqueued_at"]))
        elif state == "offered":
            filled.offers[new_id] = (queue[1], row["offer_expires_at"])
            if row["offer_expires_at"] > rows.now:
                future_offers.append(new_id)
            if row["offered_to"] == held_user:
                filled.held_offers.add(new_id)
        if row["wrap_up_until"] is not None:
            filled.wrap_ups[new_id] = row["wrap_up_until"]
        if row["agent_id"] is not None:
            if row["agent_id"] == held_user:
                filled.held_ids.add(new_id)
            rows.handlers.append(
                {
                    "organisation_id": org.id,
                    "interaction_id": new_id,
                    "user_id": row["agent_id"],
                    "accepted_at": row["answered_at"],
                }
            )
        texts = [(row["created_at"], None)]
        if row["agent_id"] is not None:
            texts.append((row["answered_at"] + timedelta(seconds=20), row["agent_id"]))
        elif state == "queued" and rng.random() < 0.3:
            texts.append((row["created_at"] + timedelta(seconds=45), None))
        for at, author in texts:
            message_id += 1
            inbound = author is None
            rows.messages.append(
                {
                    "id": message_id,
                    "organisation_id": org.id,
                    "interaction_id": new_id,
                    "direction": "inbound" if inbound else "outbound",
                    "broker_account_id": org.account_id,
                    "broker_message_id": f"SB{message_id:010d}",
                    "number_id": row["number_id"],
                    "local_number": row["local_number"],
                    "remote_number": row["remote_number"],
                    "body": rng.choice(_BODIES) if inbound else "Thanks, let me look at it.",
                    "media": [],
                    "keyword": None,
                    "status": None if inbound else "delivered",
                    "status_reason": None,
                    "author_id": author,
                    "created_at": at,
                }
            )
    # The soon-expiring offers: the retention workgroup's future offers of others than agent0000
    retention = filled.workgroups["Retention"]
    filled.soon = frozenset(
        i for i in future_offers if filled.offers[i][0] == retention and i not in filled.held_offers
    )


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_CHUNK):
        connection.execute(table.insert(), rows[start : start + INSERT_CHUNK])


def fill(database_url: str, folder: Path, workload: Workload) -> Filled:
    """Provision and fill a fresh store at `database_url`; return what was written."""
    if workload.interactions < workload.agents * SLATE:
        raise ValueError(
            f"{workload.agents} agents hold {workload.agents * SLATE} interactions:"
            f" more than {workload.interactions}"
        )
    now = datetime.now(UTC)
    engine = create_store_engine(database_url)
    try:
        org, filled = _provision(engine, folder, workload.agents, now)
        rows = _Rows(org, now, random.Random(SEED))
        _agents_rows(rows, workload.agents)
        _queued_rows(
            rows,
            workload.interactions - workload.agents * SLATE,
            workload.agents,
            filled.overflow_after,
        )
        _number_rows(rows, filled, workload.agents)
        filled.soon = frozenset(sorted(filled.soon)[: workload.soon])
        with engine.begin() as connection:
            for table, table_rows in (
                (table_of(AgentPresence), rows.presence),
                (table_of(AgentEvent), rows.events),
                (table_of(Interaction), sorted(rows.interactions, key=lambda r: r["id"])),
                (table_of(Message), rows.messages),
                (table_of(InteractionHandler), rows.handlers),
            ):
                _insert(connection, table, table_rows)
                filled.rows[table.name] = len(table_rows)
    finally:
        engine.dispose()
    return filled


def mark_all_closed(database_url: str, *, closed_at: datetime) -> int:
    """Make the store's interactions history (disconnected long ago, no deadline, no slot):
    the same rows with nothing to restore. Returns how many were open or held."""
    engine = create_store_engine(database_url)
    interaction = table_of(Interaction)
    try:
        with engine.begin() as connection:
            changed = connection.execute(
                interaction.update()
                .where(
                    (interaction.c.state != "disconnected")
                    | interaction.c.wrap_up_until.is_not(None)
                )
                .values(
                    state="disconnected",
                    closed_at=closed_at,
                    closed_reason="agent",
                    offered_to=None,
                    offer_expires_at=None,
                    wrap_up_until=None,
                    idle_at=None,
                    grace_until=None,
                    max_wait_at=None,
                    next_notice_at=None,
                )
            ).rowcount
    finally:
        engine.dispose()
    return int(changed)


def retime_offers(database_url: str, ids: frozenset[int], *, expires_at: datetime) -> None:
    """Make the offers `ids` expire at `expires_at` (a run's check that timers are armed)."""
    if not ids:
        return
    engine = create_store_engine(database_url)
    interaction = table_of(Interaction)
    try:
        with engine.begin() as connection:
            connection.execute(
                interaction.update()
                .where(interaction.c.id.in_(sorted(ids)))
                .values(offer_expires_at=expires_at)
            )
    finally:
        engine.dispose()
