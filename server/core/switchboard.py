"""The switchboard: the live state of every organisation, and the decisions on each input.

The driver owns one `Switchboard`, feeds it one event at a time with `handle(event, now=...)`
and persists the effects it returns, in order, in one transaction. The switchboard never does
I/O and never reads the clock. Before the first event the driver loads it with the open
interactions, the consents and the next free ids from the store; after a failed commit the
driver throws it away and loads a fresh one, so memory never runs ahead of the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from server.core.consent import ALL_NUMBERS, Consent, ConsentBook, ConsentState
from server.core.effects import (
    Effect,
    OpenInteraction,
    RecordConsent,
    ReportRoutingProblem,
    StoreDeliveryReceipt,
    StoreInboundMessage,
)
from server.core.errors import CoreError
from server.core.events import DeliveryReceiptReceived, Event, SmsReceived
from server.core.interactions import Interaction, InteractionState
from server.core.keywords import Keyword, classify_keyword
from server.core.routing import OrganisationConfig, choose_queue

__all__ = ["Switchboard", "UnknownOrganisation"]


class UnknownOrganisation(CoreError):
    def __init__(self, organisation_id: int) -> None:
        super().__init__(f"organisation {organisation_id} has no configuration loaded")
        self.organisation_id = organisation_id


_CONSENT_CHANGES: dict[Keyword, tuple[ConsentState, bool]] = {
    # keyword: (new state, applies to all of the organisation's numbers)
    Keyword.STOP: (ConsentState.OPTED_OUT, False),
    Keyword.STOP_ALL: (ConsentState.OPTED_OUT, True),
    Keyword.START: (ConsentState.OPTED_IN, False),
}


class Switchboard:
    def __init__(
        self,
        *,
        configs: Mapping[int, OrganisationConfig],
        open_interactions: Iterable[Interaction] = (),
        consents: Iterable[Consent] = (),
        next_interaction_id: int = 1,
        next_message_id: int = 1,
    ) -> None:
        self._configs: dict[int, OrganisationConfig] = dict(configs)
        self._interactions: dict[int, Interaction] = {}
        self._open_by_parties: dict[tuple[int, str, str], int] = {}
        for interaction in open_interactions:
            self._add(interaction)
        self.consents = ConsentBook(consents)
        self._next_interaction_id = next_interaction_id
        self._next_message_id = next_message_id

    # -- configuration -----------------------------------------------------------------------

    def config_revisions(self) -> dict[int, int]:
        """Return {organisation id: configuration revision} of what is loaded."""
        return {org_id: config.revision for org_id, config in self._configs.items()}

    def use_config(self, config: OrganisationConfig) -> None:
        """Route with `config` from now on; live interactions keep their queues."""
        self._configs[config.id] = config

    # -- reading -----------------------------------------------------------------------------

    def open_interaction(
        self, *, organisation_id: int, local_number: str, remote_number: str
    ) -> Interaction | None:
        interaction_id = self._open_by_parties.get((organisation_id, local_number, remote_number))
        return None if interaction_id is None else self._interactions[interaction_id]

    def interactions(self) -> list[Interaction]:
        return list(self._interactions.values())

    # -- deciding ----------------------------------------------------------------------------

    def handle(self, event: Event, *, now: datetime) -> list[Effect]:
        """Decide what `event` means; return the effects to persist, in order."""
        if isinstance(event, SmsReceived):
            return self._sms_received(event, now)
        return [self._receipt_received(event, now)]

    def _sms_received(self, event: SmsReceived, now: datetime) -> list[Effect]:
        config = self._configs.get(event.organisation_id)
        if config is None:
            raise UnknownOrganisation(event.organisation_id)
        effects: list[Effect] = []
        keyword = classify_keyword(event.body)
        interaction = self.open_interaction(
            organisation_id=event.organisation_id,
            local_number=event.number.e164,
            remote_number=event.remote_number,
        )
        message_id = self._take_message_id()
        problems: tuple[str, ...] = ()
        if interaction is None and keyword is None:
            decision = choose_queue(
                config, number=event.number, ani=event.remote_number, body=event.body
            )
            problems = decision.problems
            interaction = Interaction(
                id=self._take_interaction_id(),
                organisation_id=event.organisation_id,
                number_id=event.number.id,
                local_number=event.number.e164,
                remote_number=event.remote_number,
                queue=decision.queue,
                state=InteractionState.QUEUED,
                enqueued_at=now,
                created_at=now,
            )
            self._add(interaction)
            effects.append(
                OpenInteraction(
                    id=interaction.id,
                    organisation_id=interaction.organisation_id,
                    number_id=interaction.number_id,
                    local_number=interaction.local_number,
                    remote_number=interaction.remote_number,
                    queue=interaction.queue,
                    state=interaction.state,
                    enqueued_at=now,
                    route_id=decision.route_id,
                )
            )
        effects.append(
            StoreInboundMessage(
                id=message_id,
                organisation_id=event.organisation_id,
                interaction_id=None if interaction is None else interaction.id,
                broker_account_id=event.broker_account_id,
                broker_message_id=event.broker_message_id,
                number_id=event.number.id,
                local_number=event.number.e164,
                remote_number=event.remote_number,
                body=event.body,
                media=event.media,
                keyword=keyword,
                received_at=now,
            )
        )
        if keyword in _CONSENT_CHANGES:
            effects.extend(self._consent_change(event, keyword, message_id, now))
        if problems:
            effects.append(ReportRoutingProblem(event.organisation_id, message_id, problems))
        return effects

    def _consent_change(
        self, event: SmsReceived, keyword: Keyword, message_id: int, now: datetime
    ) -> list[Effect]:
        state, everywhere = _CONSENT_CHANGES[keyword]
        scope = ALL_NUMBERS if everywhere else event.number.e164
        if state is ConsentState.OPTED_IN:
            unchanged = not self.consents.is_opted_out(
                organisation_id=event.organisation_id,
                remote_number=event.remote_number,
                local_number=event.number.e164,
            )
        else:
            unchanged = (
                self.consents.state_of(
                    organisation_id=event.organisation_id,
                    remote_number=event.remote_number,
                    scope=scope,
                )
                is state
            )
        if unchanged:
            return []
        self.consents.record(
            Consent(event.organisation_id, event.remote_number, scope, state, changed_at=now)
        )
        return [
            RecordConsent(
                organisation_id=event.organisation_id,
                remote_number=event.remote_number,
                scope=scope,
                state=state,
                keyword=keyword,
                message_id=message_id,
                text=event.body,
                changed_at=now,
            )
        ]

    def _receipt_received(self, event: DeliveryReceiptReceived, now: datetime) -> Effect:
        return StoreDeliveryReceipt(
            organisation_id=event.organisation_id,
            broker_account_id=event.broker_account_id,
            broker_message_id=event.broker_message_id,
            status=event.status,
            broker_status=event.broker_status,
            reason=event.reason,
            received_at=now,
        )

    # -- bookkeeping -------------------------------------------------------------------------

    def _add(self, interaction: Interaction) -> None:
        self._interactions[interaction.id] = interaction
        if interaction.is_open:
            key = (interaction.organisation_id, interaction.local_number, interaction.remote_number)
            self._open_by_parties[key] = interaction.id

    def _take_interaction_id(self) -> int:
        self._next_interaction_id += 1
        return self._next_interaction_id - 1

    def _take_message_id(self) -> int:
        self._next_message_id += 1
        return self._next_message_id - 1
