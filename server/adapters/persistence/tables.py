"""The store's tables (SQLModel). Every row below the provider carries an `organisation_id`.

Schema changes go through Alembic (`migrations/`); `parley migrate` applies them. Columns that
later issues need (consent confirmation, MMS and blocking on accounts and numbers) are here now so
that the data model does not have to move under live data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "LIVE_INTERACTION",
    "AgentEvent",
    "AgentPresence",
    "ApiToken",
    "Audit",
    "BrokerAccount",
    "CannedResponse",
    "Consent",
    "DeliveryReceipt",
    "InboundRoute",
    "Interaction",
    "InteractionHandler",
    "Message",
    "Organisation",
    "Outbox",
    "PhoneNumber",
    "Provider",
    "QueueSample",
    "RoutingProfile",
    "User",
    "UtcDateTime",
    "WebSession",
    "Workgroup",
    "WorkgroupMember",
    "table_of",
]


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite one call per value written instead of three (`TypeDecorator`'s, ours, then
        SQLAlchemy's DATETIME formatting): the writer binds ~20 of these per text at 500 texts/s
        (bench/README.md, dispatch). Same text as the three calls."""
        if dialect.name == "sqlite":
            return _sqlite_from_utc
        return super().bind_processor(dialect)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None]:
        """One call per value read instead of the two of `TypeDecorator` (the dialect's, then
        `process_result_value`): a start reads ten of these per live interaction, a million
        values for 100,000 (bench/README.md, recovery.py). Same values as the two calls."""
        if dialect.name == "sqlite":  # SQLAlchemy's SQLite DATETIME parses with fromisoformat
            return _utc_from_sqlite
        parse = self.impl_instance.result_processor(dialect, coltype)
        if parse is None:
            return _as_utc
        return lambda value: _as_utc(parse(value))


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_from_utc(value: datetime | None) -> str | None:
    """`value` as SQLAlchemy's SQLite DATETIME stores it, in UTC: `YYYY-MM-DD HH:MM:SS.ffffff`."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00"


def _utc_from_sqlite(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:  # stored without its zone, which is UTC: one call, ~9 times faster than a replace()
        return datetime.fromisoformat(value + "+00:00")
    except ValueError:  # stored with a zone of its own (or not a time: raised again below)
        return _as_utc(datetime.fromisoformat(value))


# the interactions a start restores: open, or holding an agent's slot in wrap-up
LIVE_INTERACTION = "state <> 'disconnected' OR wrap_up_until IS NOT NULL"


def _index_where(name: str, *columns: str, where: str, unique: bool = False) -> sa.Index:
    """An index over the rows `where` (SQL) holds: partial on SQLite and PostgreSQL."""
    condition = sa.text(where)
    return sa.Index(
        name, *columns, unique=unique, sqlite_where=condition, postgresql_where=condition
    )


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=sa.Column(UtcDateTime(), nullable=nullable, index=index))


def _json(*, default: Any) -> Any:
    return Field(default_factory=default, sa_column=sa.Column(sa.JSON(), nullable=False))


def _org() -> Any:
    return Field(foreign_key="organisation.id", index=True)


class Provider(SQLModel, table=True):
    """A system provider: serves many customer organisations and owns broker accounts."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = _when()


class Organisation(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="provider.id", index=True)
    slug: str = Field(unique=True, max_length=64)
    name: str = Field(max_length=200)
    country: str = Field(default="US", max_length=2)
    config_revision: int = 0
    # Texts sent back when a customer texts STOP / START / HELP ({} keys: stop, start, help).
    keyword_replies: dict[str, str] = _json(default=dict)
    # Customer care as configured: timeouts, notices, purge_after_days (config_care.py).
    care: dict[str, Any] = _json(default=dict)
    next_purge_at: datetime | None = _when(nullable=True)  # the purge deadline
    created_at: datetime = _when()


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "username"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    username: str = Field(max_length=100)
    display_name: str = Field(max_length=200)
    role: str = Field(default="agent", max_length=20)
    password_hash: str | None = None
    send_alerts: bool = False
    routing_profile_id: int | None = Field(default=None, foreign_key="routing_profile.id")
    skills: dict[str, int] = _json(default=dict)  # skill: level, on top of the profile's
    created_at: datetime = _when()
    # Set when the configuration removed the user but history (interactions, messages) still
    # refers to it: the row stays, deactivated (no password, profile, sessions or tokens).
    removed_at: datetime | None = _when(nullable=True)


class Workgroup(SQLModel, table=True):
    """A team and its ACD queue, with how the queue offers its work."""

    __table_args__ = (sa.UniqueConstraint("organisation_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    name: str = Field(max_length=100)
    strategy: str = Field(default="longest_idle", max_length=20)
    offer_timeout_s: int = 30
    wrap_up_timeout_s: int = 60
    transfer_priority_boost: int = 10
    required_skills: dict[str, int] = _json(default=dict)
    escalation: list[dict[str, Any]] = _json(default=list)
    care: dict[str, Any] = _json(default=dict)  # timeouts, notices, max_wait over the org's
    created_at: datetime = _when()


class RoutingProfile(SQLModel, table=True):
    """The agent side of routing: queues with priority and delay, capacity, skills."""

    __tablename__ = "routing_profile"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    name: str = Field(max_length=100)
    sms_capacity: int = 3
    skills: dict[str, int] = _json(default=dict)
    # [{"workgroup": name, "priority": 1, "delay_s": 0}], ordered
    queues: list[dict[str, Any]] = _json(default=list)
    created_at: datetime = _when()


class AgentPresence(SQLModel, table=True):
    """An agent's chosen state (available, away with a reason, offline), persisted with its time."""

    __tablename__ = "agent_presence"

    user_id: int = Field(primary_key=True, foreign_key="app_user.id")
    organisation_id: int = _org()
    state: str = Field(default="offline", max_length=16)
    reason: str | None = Field(default=None, max_length=100)
    state_since: datetime = _when()
    idle_since: datetime = _when()


class AgentEvent(SQLModel, table=True):
    """An event pushed to one agent, kept with its sequence number so a client can resume."""

    __tablename__ = "agent_event"
    __table_args__ = (sa.UniqueConstraint("user_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    user_id: int = Field(foreign_key="app_user.id")
    seq: int
    body: dict[str, Any] = _json(default=dict)
    created_at: datetime = _when()


class WorkgroupMember(SQLModel, table=True):
    __tablename__ = "workgroup_member"
    __table_args__ = (sa.UniqueConstraint("workgroup_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    workgroup_id: int = Field(foreign_key="workgroup.id", index=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)


class BrokerAccount(SQLModel, table=True):
    """A broker account ("CPaaS platform"): credentials and the webhook address of one account."""

    __tablename__ = "broker_account"

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="provider.id", index=True)
    organisation_id: int = _org()  # the organisation whose configuration declares it
    public_id: str = Field(unique=True, max_length=64)
    broker: str = Field(max_length=32)
    name: str = Field(max_length=200)
    region: str = Field(default="US", max_length=2)
    credentials: dict[str, str] = _json(default=dict)
    inbound_enabled: bool = True
    outbound_enabled: bool = True
    mms_enabled: bool = False
    user_can_block: bool = False
    user_confirmation_required: bool = False
    # How texts go out: api_url, timeout_s, long_text, max_parts, consolidate, send_rate_per_s,
    # proxy ({url, username, password}); see docs/configuration.md, "Sending".
    sending: dict[str, Any] = _json(default=dict)
    created_at: datetime = _when()


class PhoneNumber(SQLModel, table=True):
    """A number (a "CPaaS number") on a broker account, assigned to one user or one workgroup."""

    __tablename__ = "phone_number"
    __table_args__ = (
        sa.UniqueConstraint("broker_account_id", "e164"),
        sa.CheckConstraint(
            "(user_id IS NULL) <> (workgroup_id IS NULL)", name="number_assigned_once"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    broker_account_id: int = Field(foreign_key="broker_account.id", index=True)
    e164: str = Field(max_length=20, index=True)
    friendly_name: str = Field(max_length=200)
    user_id: int | None = Field(default=None, foreign_key="app_user.id")
    workgroup_id: int | None = Field(default=None, foreign_key="workgroup.id")
    mms_enabled: bool | None = None  # None: as the broker account says
    user_can_block: bool | None = None  # None: as the broker account says
    confirmation_state: str | None = Field(default=None, max_length=20)
    confirmation_evidence: str | None = None
    created_at: datetime = _when()


class InboundRoute(SQLModel, table=True):
    __tablename__ = "inbound_route"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    position: int
    name: str = Field(max_length=100)
    field: str = Field(max_length=8)  # ANI, DNIS or BODY
    pattern: str
    target_kind: str = Field(max_length=16)  # workgroup, user, handler, assigned
    target: str = Field(default="", max_length=300)  # workgroup/user name or module:function
    is_default: bool = False


class OutboundRoute(SQLModel, table=True):
    """An ordered outbound route: which broker account a destination number goes through."""

    __tablename__ = "outbound_route"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    position: int
    name: str = Field(max_length=100)
    pattern: str
    formatted_number: str = Field(max_length=100)
    broker_account_id: int = Field(foreign_key="broker_account.id")
    classifications: list[str] = _json(default=list)
    users: list[int] = _json(default=list)  # user ids allowed; empty with workgroups: everyone
    workgroups: list[int] = _json(default=list)


class Interaction(SQLModel, table=True):
    __table_args__ = (
        _index_where(
            "one_open_interaction",
            "organisation_id",
            "local_number",
            "remote_number",
            where="state <> 'disconnected'",
            unique=True,
        ),
        sa.Index("interaction_by_state", "organisation_id", "state", "enqueued_at"),
        # what a start loads (`live_state.load_open_interactions`), without reading the history
        _index_where("interaction_live", "id", where=LIVE_INTERACTION),
        # the recent closures a start reads (the day's figures, wait estimates, reopen windows)
        sa.Index("interaction_closed", "state", "closed_at"),
    )

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    organisation_id: int = _org()
    number_id: int = Field(foreign_key="phone_number.id")
    local_number: str = Field(max_length=20)
    remote_number: str = Field(max_length=20)
    state: str = Field(max_length=16)
    queue_kind: str = Field(max_length=16)
    queue_id: int
    priority: int = 0
    route_id: int | None = None
    agent_id: int | None = Field(default=None, foreign_key="app_user.id")
    offered_to: int | None = Field(default=None, foreign_key="app_user.id")
    offer_expires_at: datetime | None = _when(nullable=True)
    offer_delivered: bool = False
    wrap_up_by: int | None = Field(default=None, foreign_key="app_user.id")
    wrap_up_until: datetime | None = _when(nullable=True)
    enqueued_at: datetime = _when()
    created_at: datetime = _when()
    closed_at: datetime | None = _when(nullable=True)
    # customer care (server/core/customer_care.py): deadlines as absolute UTC times
    answered_at: datetime | None = _when(nullable=True)
    idle_at: datetime | None = _when(nullable=True)
    grace_until: datetime | None = _when(nullable=True)
    max_wait_at: datetime | None = _when(nullable=True)
    next_notice_at: datetime | None = _when(nullable=True)
    notice_position: int | None = None
    notice_wait_s: int | None = None
    closed_reason: str | None = Field(default=None, max_length=16)


class Message(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("broker_account_id", "direction", "broker_message_id"),
        sa.Index("message_by_interaction", "interaction_id", "id"),
    )

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    organisation_id: int = _org()
    interaction_id: int | None = Field(default=None, foreign_key="interaction.id")
    direction: str = Field(max_length=8)  # inbound, outbound
    broker_account_id: int = Field(foreign_key="broker_account.id")
    broker_message_id: str | None = Field(default=None, max_length=128)
    number_id: int = Field(foreign_key="phone_number.id")
    local_number: str = Field(max_length=20)
    remote_number: str = Field(max_length=20)
    body: str
    media: list[dict[str, str | None]] = _json(default=list)
    keyword: str | None = Field(default=None, max_length=16)
    status: str | None = Field(default=None, max_length=16)
    status_reason: str | None = None
    author_id: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = _when()


class InteractionHandler(SQLModel, table=True):
    """Who ever accepted an interaction: it stays "theirs" to read after a transfer."""

    __tablename__ = "interaction_handler"
    __table_args__ = (sa.UniqueConstraint("interaction_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    interaction_id: int = Field(foreign_key="interaction.id")
    user_id: int = Field(foreign_key="app_user.id", index=True)
    accepted_at: datetime = _when()


class Outbox(SQLModel, table=True):
    """A text waiting to be sent, or sent: the sender works these rows (at-least-once)."""

    __table_args__ = (sa.Index("outbox_pending", "status", "next_attempt_at"),)

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    organisation_id: int = _org()
    message_id: int = Field(foreign_key="message.id", unique=True)
    broker_account_id: int = Field(foreign_key="broker_account.id")
    status: str = Field(default="pending", max_length=16)  # pending, sent, failed
    recipient: str = Field(default="", max_length=100)  # as the outbound route formats it
    parts: list[str] = _json(default=list)  # the SMS parts (one text for an MMS)
    media: list[str] = _json(default=list)  # MMS attachments' addresses
    parts_sent: int = 0  # parts the broker took: a retry goes on from the next
    attempts: int = 0
    next_attempt_at: datetime = _when()
    last_error: str | None = None
    sent_at: datetime | None = _when(nullable=True)


class OutboundPart(SQLModel, table=True):
    """One broker send of an outbound message (a part of a split text, or a whole text).

    Receipts name the broker's id of a part; several messages share a part when the sender
    consolidated them into one text.
    """

    __tablename__ = "outbound_part"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "part_index"),
        sa.Index("outbound_part_by_broker_id", "broker_account_id", "broker_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    message_id: int = Field(foreign_key="message.id")
    part_index: int
    broker_account_id: int = Field(foreign_key="broker_account.id")
    broker_message_id: str = Field(max_length=128)
    status: str = Field(default="sent", max_length=16)
    reason: str | None = None
    updated_at: datetime = _when()


class Attachment(SQLModel, table=True):
    """A file an agent uploaded, served from an unguessable address until it expires."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    token: str = Field(unique=True, max_length=64)
    filename: str = Field(max_length=255)
    content_type: str = Field(max_length=127)
    size: int
    sha256: str = Field(max_length=64)
    storage_key: str = Field(max_length=255)
    uploaded_by: int | None = Field(default=None, foreign_key="app_user.id")
    created_at: datetime = _when()
    expires_at: datetime = _when(index=True)


class DeliveryReceipt(SQLModel, table=True):
    """A receipt as the broker sent it, kept by the broker's id of the message it reports on."""

    __tablename__ = "delivery_receipt"
    __table_args__ = (sa.UniqueConstraint("broker_account_id", "broker_message_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    broker_account_id: int = Field(foreign_key="broker_account.id")
    broker_message_id: str = Field(max_length=128)
    status: str = Field(max_length=16)
    broker_status: str = Field(max_length=64)
    reason: str | None = None
    received_at: datetime = _when()


class Consent(SQLModel, table=True):
    """The current opt-in/opt-out of a remote number for one local number, or for all ('*')."""

    __table_args__ = (sa.UniqueConstraint("organisation_id", "remote_number", "scope"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    remote_number: str = Field(max_length=20)
    scope: str = Field(max_length=20)
    state: str = Field(max_length=16)
    keyword: str = Field(max_length=16)
    text: str
    message_id: int | None = Field(default=None, foreign_key="message.id")
    changed_at: datetime = _when()


class Audit(SQLModel, table=True):
    """Who changed what, when, with the values before and after."""

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    entity: str = Field(max_length=64)
    entity_key: str = Field(max_length=200)
    before: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    after: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON()))
    at: datetime = _when(index=True)


class ApiToken(SQLModel, table=True):
    """A bearer token for the HTTP API, scoped to one organisation; only its hash is stored.

    A token acts as its user (`user_id`); one without a user is an organisation-wide admin token
    made by the command line. Removing a user from the configuration removes their tokens.
    """

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    user_id: int | None = Field(default=None, foreign_key="app_user.id", ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)  # kept to the minute
    revoked_at: datetime | None = _when(nullable=True)


class WebSession(SQLModel, table=True):
    """A browser's sign-in: the SHA-256 of its `parley_session` cookie (never the cookie)."""

    __tablename__ = "web_session"

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE")
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _when()
    expires_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class CannedResponse(SQLModel, table=True):
    """A ready-made reply agents insert; for one workgroup, or for all (`workgroup_id` None)."""

    __tablename__ = "canned_response"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "workgroup_id", "title"),
        # the constraint above never matches NULL workgroups: titles for everyone need this
        _index_where(
            "canned_response_title_for_everyone",
            "organisation_id",
            "title",
            where="workgroup_id IS NULL",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    workgroup_id: int | None = Field(default=None, foreign_key="workgroup.id", ondelete="CASCADE")
    title: str = Field(max_length=100)
    body: str = Field(max_length=2000)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _when()


class QueueSample(SQLModel, table=True):
    """One queue's figures at one moment, for the supervisor dashboard's chart of recent hours."""

    __tablename__ = "queue_sample"
    __table_args__ = (sa.Index("queue_sample_by_time", "workgroup_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: int = _org()
    workgroup_id: int = Field(foreign_key="workgroup.id", ondelete="CASCADE")
    at: datetime = _when()
    waiting: int
    longest_wait_s: int
    answered: int
    abandoned: int
    service_level: float | None = None


def table_of(model: type[SQLModel]) -> sa.Table:
    """Return the SQLAlchemy Core table behind a SQLModel table class, for bulk SQL."""
    return cast(sa.Table, getattr(model, "__table__"))  # noqa: B009 - not in SQLModel's stubs
