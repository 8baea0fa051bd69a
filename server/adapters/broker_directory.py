"""The broker directory: every broker account and its numbers, as the webhooks need them.

The HTTP side looks an account up by (broker, public id) and a number by its E.164 form before
anything reaches the driver. The directory is immutable; the driver builds a new one when a
configuration changes and swaps it in whole.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from server.core.routing import LocalNumber

__all__ = ["AccountEntry", "BrokerDirectory", "NumberEntry"]


@dataclass(frozen=True)
class NumberEntry:
    organisation_id: int
    number: LocalNumber


@dataclass(frozen=True)
class AccountEntry:
    id: int
    provider_id: int
    broker: str
    public_id: str
    region: str
    inbound_enabled: bool
    credentials: Mapping[str, str] = field(repr=False)
    numbers: Mapping[str, NumberEntry] = field(default_factory=dict)
    sending: Mapping[str, Any] = field(default_factory=dict, repr=False)  # brokers.yaml `sending:`


@dataclass(frozen=True)
class BrokerDirectory:
    accounts: Mapping[tuple[str, str], AccountEntry] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def account(self, *, broker: str, public_id: str) -> AccountEntry | None:
        return self.accounts.get((broker, public_id))

    @functools.cached_property
    def _by_id(self) -> Mapping[int, AccountEntry]:
        return {account.id: account for account in self.accounts.values()}

    def account_by_id(self, account_id: int) -> AccountEntry | None:
        """The account with the store's id `account_id` (what the outbox names)."""
        return self._by_id.get(account_id)
