"""Delivery status of an outbound message; receipts only ever move it forward."""

from __future__ import annotations

import enum

__all__ = ["DeliveryStatus", "later_status"]


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.FAILED: 2,
}


def later_status(current: DeliveryStatus, reported: DeliveryStatus) -> DeliveryStatus:
    """Return the status after a receipt says `reported`: never backwards, final stays final."""
    return reported if _RANK[reported] > _RANK[current] else current
