"""Outbound decisions: which route a text takes, from which number, as what parts and media.

Outbound routes are tried in order (PureConnect's "Configure Outbound Routing"): the first whose
regular expression is found in the destination (E.164) and whose broker account holds the
number the text goes out from wins. The route gives the number as the broker is given it
(`formatted_number`, `$0` the whole match, `$1` the first group...), and allows the route only
for some classes of destination (local, long distance, international, toll free) and, when it
names any, only for some users and workgroups. An organisation with no routes sends each text
through its number's own account, to the E.164 destination.

A text is cut into SMS parts by the account's policy (`sms_segments.prepare`). Attachments go as
MMS when the number (or its account) has MMS on and they are all MMS-able; otherwise the text
carries a link to each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.core.errors import CommandRefused
from server.core.media import AttachmentRef, can_go_as_mms, link_text
from server.core.phone_numbers import NumberClass, classify_destination
from server.core.sms_segments import LongTextPolicy, prepare

__all__ = [
    "AccountPolicy",
    "Attachment",
    "NumberClass",
    "OutboundNumber",
    "OutboundPlan",
    "OutboundRoute",
    "plan_text",
    "route_for",
    "usable_numbers",
]


@dataclass(frozen=True)
class OutboundRoute:
    id: int
    name: str
    pattern: re.Pattern[str]
    formatted_number: str
    broker_account_id: int
    classifications: frozenset[NumberClass]
    users: frozenset[int] = frozenset()
    workgroups: frozenset[int] = frozenset()

    def allows(self, user_id: int | None, workgroups: Iterable[int]) -> bool:
        """Whether the user may use the route (None: Parley itself, e.g. a STOP reply)."""
        if user_id is None or not (self.users or self.workgroups):
            return True
        return user_id in self.users or not self.workgroups.isdisjoint(workgroups)


@dataclass(frozen=True)
class AccountPolicy:
    """What the core needs of a broker account to send through it."""

    id: int
    outbound_enabled: bool = True
    mms_enabled: bool = False
    long_text: LongTextPolicy = "split"
    max_parts: int = 10


@dataclass(frozen=True)
class OutboundNumber:
    """A number of the organisation that texts can go out from."""

    id: int
    e164: str
    broker_account_id: int
    user_id: int | None = None  # a direct number's user
    workgroup_id: int | None = None
    mms_enabled: bool | None = None  # None: as its account says

    def usable_by(self, user_id: int, workgroups: Iterable[int]) -> bool:
        """An agent may start conversations from their own number or their workgroups'."""
        if self.user_id is not None:
            return self.user_id == user_id
        return self.workgroup_id in set(workgroups)


def usable_numbers(
    numbers: Iterable[OutboundNumber], *, user_id: int, workgroups: Iterable[int]
) -> list[OutboundNumber]:
    """The numbers an agent may start conversations from, the default first: their direct
    numbers, then their workgroups' (each by E.164)."""
    member_of = frozenset(workgroups)
    return sorted(
        (number for number in numbers if number.usable_by(user_id, member_of)),
        key=lambda number: (number.user_id is None, number.e164),
    )


@dataclass(frozen=True)
class Attachment:
    """An uploaded file to send: `url` is its public, expiring address."""

    ref: AttachmentRef
    url: str


@dataclass(frozen=True)
class OutboundPlan:
    """How one text goes out: the broker's recipient, the SMS parts (one text for MMS), media."""

    recipient: str
    body: str
    parts: tuple[str, ...]
    media: tuple[str, ...] = ()


def _formatted(template: str, match: re.Match[str]) -> str:
    def group(found: re.Match[str]) -> str:
        return match.group(int(found.group(1))) or ""

    return re.sub(r"\$(\d)", group, template)


def route_for(
    routes: Sequence[OutboundRoute],
    *,
    destination: str,
    local_number: str,
    broker_account_id: int,
    region: str,
    user_id: int | None,
    workgroups: Iterable[int] = (),
) -> str:
    """Return the recipient as the broker is given it (the route's formatted number).

    Raises `CommandRefused` ("no_route") when no route of the account matches, or
    ("route_not_allowed") when the first that matches does not serve this class of number or
    this user.
    """
    if not routes:
        return destination
    number_class = classify_destination(destination, local_number=local_number, region=region)
    for route in routes:
        if route.broker_account_id != broker_account_id:
            continue
        match = route.pattern.search(destination)
        if match is None:
            continue
        if number_class not in route.classifications:
            raise CommandRefused(
                "route_not_allowed",
                f"outbound route {route.name!r} does not serve {number_class.label} numbers "
                f"such as {destination}",
            )
        if not route.allows(user_id, workgroups):
            raise CommandRefused(
                "route_not_allowed", f"you may not send through outbound route {route.name!r}"
            )
        return _formatted(route.formatted_number, match)
    raise CommandRefused(
        "no_route", f"no outbound route sends from {local_number} to {destination}"
    )


def plan_text(
    body: str,
    *,
    recipient: str,
    policy: AccountPolicy,
    mms_enabled: bool,
    attachments: Sequence[Attachment] = (),
) -> OutboundPlan:
    """Decide the parts and media of a text; raise `CommandRefused` (e.g. `TooLong`)."""
    if not policy.outbound_enabled:
        raise CommandRefused("outbound_disabled", "this number's broker account does not send")
    as_mms = can_go_as_mms([a.ref for a in attachments], mms_enabled=mms_enabled)
    if as_mms:
        return OutboundPlan(
            recipient=recipient,
            body=body,
            parts=(body,),
            media=tuple(attachment.url for attachment in attachments),
        )
    text = link_text(body, [attachment.url for attachment in attachments])
    if not text.strip():
        raise CommandRefused("bad_command", "a text needs some words or an attachment")
    parts = prepare(text, long_text=policy.long_text, max_parts=policy.max_parts)
    return OutboundPlan(
        recipient=recipient,
        body=text if policy.long_text == "split" else "".join(parts),
        parts=parts,
    )
