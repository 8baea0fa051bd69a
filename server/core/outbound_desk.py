"""The switchboard's outbound side: texts going out, and what becomes of them.

An agent's reply, a conversation an agent starts and Parley's answer to STOP / START / HELP
each become one outbound message (`StoreOutboundMessage`: the message row and its outbox row,
one transaction). The sender works the outbox after the commit and reports back: each part the
broker took (`PartSent`) or a failure (`SendFailed`, retried later or final). Receipts move the
message's status forward only (`delivery.OutboundBook`), and the author sees every move as a
`message_status` event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from server.core.consent import ConsentBook, ConsentState
from server.core.delivery import RECEIPT_WINDOW, DeliveryStatus, OutboundBook, OutboundTrack
from server.core.dispatching import Dispatcher
from server.core.effects import (
    CommandResult,
    DeferSend,
    Effect,
    MarkSent,
    OpenInteraction,
    RecordConsent,
    RecordPartSent,
    SavePartStatus,
    StoreDeliveryReceipt,
    StoreOutboundMessage,
)
from server.core.errors import CommandRefused
from server.core.events import (
    ConversationStarted,
    DeliveryReceiptReceived,
    PartSent,
    ReplyWritten,
    SendFailed,
)
from server.core.interactions import Interaction, InteractionState
from server.core.keywords import Keyword
from server.core.outbound import (
    Attachment,
    OutboundNumber,
    OutboundPlan,
    plan_text,
    route_for,
    usable_numbers,
)
from server.core.phone_numbers import ImpossibleNumber, to_e164
from server.core.routing import OrganisationConfig, QueueKind, QueueRef
from server.core.views import message_view

__all__ = ["OutboundDesk"]

_LIVE = frozenset({InteractionState.CONNECTED, InteractionState.IDLE})
_KEYWORD_REPLIES = {
    Keyword.STOP: "stop",
    Keyword.STOP_ALL: "stop",
    Keyword.START: "start",
    Keyword.HELP: "help",
}


class OutboundDesk(Dispatcher):
    """Sends texts and follows them; the `Switchboard` provides what is declared here."""

    consents: ConsentBook
    outbound: OutboundBook
    _take_message_id: Callable[[], int]
    _take_interaction_id: Callable[[], int]
    _open: Callable[..., OpenInteraction]
    _connected_to: Callable[[int, int, int], Interaction]
    _open_by_parties: dict[tuple[int, str, str], int]
    _record_consent: Callable[..., RecordConsent]
    _activity: Callable[[Interaction, datetime, list[Effect]], None]
    _answered: Callable[[Interaction, datetime], None]

    # -- texts going out ---------------------------------------------------------------------

    @staticmethod
    def _number_of(
        config: OrganisationConfig, *, number_id: int, e164: str, broker_account_id: int
    ) -> OutboundNumber:
        """The number a text goes out from, as configured (as it was, if it is no longer)."""
        found = config.numbers.get(e164)
        if found is not None:
            return found
        return OutboundNumber(id=number_id, e164=e164, broker_account_id=broker_account_id)

    def _plan(
        self,
        config: OrganisationConfig,
        *,
        body: str,
        number: OutboundNumber,
        remote_number: str,
        user_id: int | None,
        attachments: tuple[Attachment, ...] = (),
    ) -> OutboundPlan:
        recipient = route_for(
            config.outbound_routes,
            destination=remote_number,
            local_number=number.e164,
            broker_account_id=number.broker_account_id,
            region=config.region,
            user_id=user_id,
            workgroups=() if user_id is None else config.memberships.get(user_id, ()),
        )
        policy = config.account(number.broker_account_id)
        return plan_text(
            body,
            recipient=recipient,
            policy=policy,
            mms_enabled=policy.mms_enabled if number.mms_enabled is None else number.mms_enabled,
            attachments=attachments,
        )

    def _refuse_opted_out(
        self, organisation_id: int, remote_number: str, local_number: str
    ) -> None:
        if self.consents.is_opted_out(
            organisation_id=organisation_id, remote_number=remote_number, local_number=local_number
        ):
            raise CommandRefused(
                "opted_out", f"{remote_number} has opted out of texts from {local_number}"
            )

    def _send_text(
        self,
        plan: OutboundPlan,
        *,
        organisation_id: int,
        interaction_id: int | None,
        number: OutboundNumber,
        remote_number: str,
        author_id: int | None,
        now: datetime,
        effects: list[Effect],
    ) -> dict[str, object]:
        """Store the text and its outbox row; track it for receipts; return its view."""
        message_id = self._take_message_id()
        effects.append(
            StoreOutboundMessage(
                id=message_id,
                organisation_id=organisation_id,
                interaction_id=interaction_id,
                broker_account_id=number.broker_account_id,
                number_id=number.id,
                local_number=number.e164,
                remote_number=remote_number,
                body=plan.body,
                author_id=author_id,
                created_at=now,
                recipient=plan.recipient,
                parts=plan.parts,
                media=plan.media,
            )
        )
        self.outbound.track(
            OutboundTrack(
                message_id=message_id,
                organisation_id=organisation_id,
                interaction_id=interaction_id,
                author_id=author_id,
                broker_account_id=number.broker_account_id,
                local_number=number.e164,
                remote_number=remote_number,
                parts=len(plan.parts),
                created_at=now,
            )
        )
        self.outbound.forget_older_than(now - RECEIPT_WINDOW)
        return message_view(
            message_id=message_id,
            interaction_id=interaction_id,
            direction="outbound",
            sender=number.e164,
            recipient=remote_number,
            body=plan.body,
            media=[{"url": url, "content_type": None} for url in plan.media],
            keyword=None,
            status=DeliveryStatus.QUEUED.value,
            author_id=author_id,
            created_at=now,
        )

    def _reply_written(self, event: ReplyWritten, now: datetime, effects: list[Effect]) -> None:
        interaction = self._connected_to(event.organisation_id, event.user_id, event.interaction_id)
        if not event.text.strip() and not event.attachments:
            raise CommandRefused("bad_command", "a reply needs some text or an attachment")
        self._refuse_opted_out(
            interaction.organisation_id, interaction.remote_number, interaction.local_number
        )
        config = self.config(interaction.organisation_id)
        number = self._number_of(
            config,
            number_id=interaction.number_id,
            e164=interaction.local_number,
            broker_account_id=interaction.broker_account_id,
        )
        plan = self._plan(
            config,
            body=event.text,
            number=number,
            remote_number=interaction.remote_number,
            user_id=event.user_id,
            attachments=event.attachments,
        )
        self._activity(interaction, now, effects)
        view = self._send_text(
            plan,
            organisation_id=interaction.organisation_id,
            interaction_id=interaction.id,
            number=number,
            remote_number=interaction.remote_number,
            author_id=event.user_id,
            now=now,
            effects=effects,
        )
        self._push_message(interaction, event.user_id, view, effects)
        effects.append(CommandResult({"message": view}))

    def _from_number(
        self, config: OrganisationConfig, user_id: int, asked: str | None
    ) -> OutboundNumber:
        """The number an agent starts a conversation from: theirs or their workgroups'."""
        usable = usable_numbers(
            config.numbers.values(),
            user_id=user_id,
            workgroups=config.memberships.get(user_id, frozenset()),
        )
        if asked is not None:
            for number in usable:
                if number.e164 == asked:
                    return number
            raise CommandRefused(
                "number_not_allowed",
                f"{asked} is not your direct number nor a number of your workgroups",
            )
        if not usable:
            raise CommandRefused(
                "number_not_allowed", "you have no direct number and your workgroups have none"
            )
        return usable[0]

    def _conversation_started(
        self, event: ConversationStarted, now: datetime, effects: list[Effect]
    ) -> None:
        config = self.config(event.organisation_id)
        agent = self.floor.agents.get(event.user_id)
        try:
            remote_number = to_e164(event.remote_number, region=config.region)
            asked = (
                None
                if event.local_number is None
                else to_e164(event.local_number, region=config.region)
            )
        except ImpossibleNumber as error:
            raise CommandRefused("bad_number", str(error)) from None
        number = self._from_number(config, event.user_id, asked)
        if not event.text.strip() and not event.attachments:
            raise CommandRefused("bad_command", "the first text needs some words or an attachment")
        existing = self._open_by_parties.get((event.organisation_id, number.e164, remote_number))
        if existing is not None:
            raise CommandRefused(
                "conversation_open",
                f"interaction {existing} with {remote_number} from {number.e164} is still open",
            )
        self._refuse_opted_out(event.organisation_id, remote_number, number.e164)
        plan = self._plan(
            config,
            body=event.text,
            number=number,
            remote_number=remote_number,
            user_id=event.user_id,
            attachments=event.attachments,
        )
        interaction = Interaction(
            id=self._take_interaction_id(),
            organisation_id=event.organisation_id,
            number_id=number.id,
            local_number=number.e164,
            remote_number=remote_number,
            queue=QueueRef(QueueKind.USER, event.user_id),
            state=InteractionState.CONNECTED,
            enqueued_at=now,
            created_at=now,
            broker_account_id=number.broker_account_id,
            agent_id=event.user_id,
        )
        self._answered(interaction, now)
        effects.append(self._open(interaction, route_id=None))
        effects.append(self._save(interaction))  # whose agent it is
        if agent is not None:
            agent.active.add(interaction.id)
            self._refresh(agent)
        view = self._send_text(
            plan,
            organisation_id=interaction.organisation_id,
            interaction_id=interaction.id,
            number=number,
            remote_number=remote_number,
            author_id=event.user_id,
            now=now,
            effects=effects,
        )
        self._push_interaction(interaction, event.user_id, effects)
        self._push_message(interaction, event.user_id, view, effects)
        effects.append(CommandResult({"interaction_id": interaction.id, "message": view}))

    def _keyword_reply(
        self,
        organisation_id: int,
        keyword: Keyword,
        *,
        number: OutboundNumber,
        remote_number: str,
        now: datetime,
        effects: list[Effect],
    ) -> None:
        """Answer STOP / START / HELP with the organisation's text ("" answers nothing).

        The confirmation of an opt-out is the one text sent to a number that opted out. A text
        that cannot be routed is not sent (the keyword itself is kept all the same).
        """
        config = self.config(organisation_id)
        text = config.keyword_replies.get(_KEYWORD_REPLIES.get(keyword, ""), "")
        if not text:
            return
        try:
            plan = self._plan(
                config, body=text, number=number, remote_number=remote_number, user_id=None
            )
        except CommandRefused:
            return
        self._send_text(
            plan,
            organisation_id=organisation_id,
            interaction_id=None,
            number=number,
            remote_number=remote_number,
            author_id=None,
            now=now,
            effects=effects,
        )

    # -- what became of them -----------------------------------------------------------------

    def _status_moved(
        self,
        track: OutboundTrack,
        reason: str | None,
        now: datetime,
        effects: list[Effect],
        *,
        attempts: int | None = None,
    ) -> None:
        """Record a tracked message's status, if its parts moved it, and tell its author and
        the agent who holds its interaction now (who sees Parley's own texts, and another
        agent's from before a transfer, in the transcript)."""
        status = track.message_status()
        if status is track.status:
            return
        track.status = status
        effects.append(MarkSent(track.message_id, status, reason, now, attempts))
        interaction_id = track.interaction_id
        told: set[int | None] = set()
        if interaction_id is not None:
            interaction = self._interactions.get(interaction_id)
            told = {track.author_id, None if interaction is None else interaction.agent_id}
        for user_id in sorted(user for user in told if user is not None):
            self._push(
                track.organisation_id,
                user_id,
                effects,
                kind="message_status",
                interaction_id=interaction_id,
                message_id=track.message_id,
                status=status.value,
                reason=reason,
            )
        if track.is_final:
            self.outbound.forget(track)

    def _part_sent(self, event: PartSent, now: datetime, effects: list[Effect]) -> None:
        track = self.outbound.part_sent(
            event.message_id, event.part_index, event.broker_account_id, event.broker_message_id
        )
        status = DeliveryStatus.SENT if track is None else track.part_status[event.part_index]
        effects.append(
            RecordPartSent(
                organisation_id=event.organisation_id,
                message_id=event.message_id,
                part_index=event.part_index,
                broker_account_id=event.broker_account_id,
                broker_message_id=event.broker_message_id,
                status=status,
                at=now,
                rides_with=event.rides_with,
            )
        )
        if track is not None:
            self._status_moved(track, None, now, effects)

    def _send_failed(self, event: SendFailed, now: datetime, effects: list[Effect]) -> None:
        if event.retry_at is not None:
            effects.append(
                DeferSend(event.message_id, event.attempts, event.retry_at, event.reason)
            )
            return
        track = self.outbound.by_message.get(event.message_id)
        if track is None:
            effects.append(
                MarkSent(event.message_id, DeliveryStatus.FAILED, event.reason, now, event.attempts)
            )
            return
        track.refused = True
        self._status_moved(track, event.reason, now, effects, attempts=event.attempts)
        if event.opted_out:  # the broker says the recipient opted out: as a STOP from them
            effects.append(
                self._record_consent(
                    organisation_id=track.organisation_id,
                    remote_number=track.remote_number,
                    scope=track.local_number,
                    state=ConsentState.OPTED_OUT,
                    keyword=Keyword.STOP,
                    message_id=track.message_id,
                    text="(the broker reported the recipient opted out)",
                    now=now,
                )
            )

    def _receipt_received(
        self, event: DeliveryReceiptReceived, now: datetime, effects: list[Effect]
    ) -> None:
        effects.append(
            StoreDeliveryReceipt(
                organisation_id=event.organisation_id,
                broker_account_id=event.broker_account_id,
                broker_message_id=event.broker_message_id,
                status=event.status,
                broker_status=event.broker_status,
                reason=event.reason,
                received_at=now,
            )
        )
        for track, part_index in self.outbound.receipt(
            event.broker_account_id, event.broker_message_id, event.status, event.reason
        ):
            effects.append(
                SavePartStatus(track.message_id, part_index, track.part_status[part_index], now)
            )
            self._status_moved(track, event.reason, now, effects)
