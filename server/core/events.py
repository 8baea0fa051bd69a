"""Inputs to the core, named for what happened. The driver builds them from adapters' reports."""

from __future__ import annotations

from dataclasses import dataclass

from server.core.delivery import DeliveryStatus
from server.core.routing import LocalNumber

__all__ = ["DeliveryReceiptReceived", "Event", "Media", "SmsReceived"]


@dataclass(frozen=True)
class Media:
    url: str
    content_type: str | None = None


@dataclass(frozen=True)
class SmsReceived:
    """A text (SMS, or MMS when `media` is not empty) a broker delivered to one of our numbers."""

    organisation_id: int
    broker_account_id: int
    broker_message_id: str
    number: LocalNumber
    remote_number: str
    body: str
    media: tuple[Media, ...] = ()


@dataclass(frozen=True)
class DeliveryReceiptReceived:
    """A broker reports what became of a message it was given to send."""

    organisation_id: int
    broker_account_id: int
    broker_message_id: str
    status: DeliveryStatus
    broker_status: str
    reason: str | None = None


Event = SmsReceived | DeliveryReceiptReceived
