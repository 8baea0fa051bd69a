"""Delivery status of an outbound message; receipts only ever move it forward."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

__all__ = ["RECEIPT_WINDOW", "DeliveryStatus", "OutboundBook", "OutboundTrack", "later_status"]

# How long a message waits for its receipts: brokers send them within minutes, at worst a few
# days; a message still without a final status after this is left as it is (not tracked).
RECEIPT_WINDOW = timedelta(days=7)


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


@dataclass
class OutboundTrack:
    """An outbound message whose fate is not final yet: its parts' statuses, as receipts tell.

    The message is failed when a part failed, delivered when every part was delivered, sent when
    the broker took every part, else queued; a status never moves back (`later_status`).
    """

    message_id: int
    organisation_id: int
    interaction_id: int | None
    author_id: int | None
    broker_account_id: int
    local_number: str
    remote_number: str
    parts: int
    created_at: datetime
    status: DeliveryStatus = DeliveryStatus.QUEUED
    part_status: dict[int, DeliveryStatus] = field(default_factory=dict)
    broker_ids: list[tuple[int, str]] = field(default_factory=list)  # (account, broker's id)
    refused: bool = False  # the broker refused a part for good: it was never sent

    def message_status(self) -> DeliveryStatus:
        statuses = list(self.part_status.values())
        if self.refused or DeliveryStatus.FAILED in statuses:
            found = DeliveryStatus.FAILED
        elif len(statuses) >= self.parts and all(s is DeliveryStatus.DELIVERED for s in statuses):
            found = DeliveryStatus.DELIVERED
        elif len(statuses) >= self.parts:
            found = DeliveryStatus.SENT
        else:
            found = DeliveryStatus.QUEUED
        return later_status(self.status, found)

    @property
    def is_final(self) -> bool:
        return self.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)


class OutboundBook:
    """The outbound messages still waiting for their fate, by message and by the broker's ids.

    A receipt can overtake the commit of the send it reports on (the broker answers the send,
    then posts the receipt at once); such a receipt waits in `early` (the last `EARLY_KEPT`)
    until its part is known.
    """

    EARLY_KEPT = 10_000

    def __init__(self) -> None:
        self.by_message: dict[int, OutboundTrack] = {}
        self.by_broker_id: dict[tuple[int, str], list[tuple[int, int]]] = {}
        self.early: dict[tuple[int, str], tuple[DeliveryStatus, str | None]] = {}

    def track(self, track: OutboundTrack) -> None:
        """Follow a new message (messages come in the order they were made)."""
        self.by_message[track.message_id] = track

    def forget_older_than(self, cutoff: datetime) -> None:
        """Stop following the messages made before `cutoff` (the oldest come first)."""
        while self.by_message:
            oldest = next(iter(self.by_message.values()))
            if oldest.created_at >= cutoff:
                return
            self.forget(oldest)

    def part_sent(
        self, message_id: int, part_index: int, broker_account_id: int, broker_message_id: str
    ) -> OutboundTrack | None:
        track = self.by_message.get(message_id)
        if track is None:
            return None
        key = (broker_account_id, broker_message_id)
        self.by_broker_id.setdefault(key, []).append((message_id, part_index))
        track.broker_ids.append(key)
        status = later_status(
            track.part_status.get(part_index, DeliveryStatus.QUEUED), DeliveryStatus.SENT
        )
        early = self.early.get(key)  # not popped: consolidated messages share a part
        if early is not None:
            status = later_status(status, early[0])
        track.part_status[part_index] = status
        return track

    def receipt(
        self,
        broker_account_id: int,
        broker_message_id: str,
        status: DeliveryStatus,
        reason: str | None,
    ) -> list[tuple[OutboundTrack, int]]:
        """Apply a receipt; return the (message, part) it concerns (none: kept as early)."""
        key = (broker_account_id, broker_message_id)
        found = self.by_broker_id.get(key)
        if not found:
            if len(self.early) >= self.EARLY_KEPT:
                self.early.pop(next(iter(self.early)))
            self.early[key] = (status, reason)
            return []
        tracks = []
        for message_id, part_index in found:
            track = self.by_message.get(message_id)
            if track is None:
                continue
            current = track.part_status.get(part_index, DeliveryStatus.QUEUED)
            track.part_status[part_index] = later_status(current, status)
            tracks.append((track, part_index))
        return tracks

    def forget(self, track: OutboundTrack) -> None:
        """Drop a message whose status is final (its receipts change nothing any more)."""
        self.by_message.pop(track.message_id, None)
        for key in track.broker_ids:
            entries = [e for e in self.by_broker_id.get(key, ()) if e[0] != track.message_id]
            if entries:
                self.by_broker_id[key] = entries
            else:
                self.by_broker_id.pop(key, None)
