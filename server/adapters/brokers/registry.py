"""Registry of broker wire formats: the `BrokerWire` interface and the modules selected by name.

Each broker module (`inteliquent`, `twilio`, `bandwidth`, `sandbox`) implements `BrokerWire`.
Look one up with `broker_wire(account.broker)`, call `check_credentials` when configuration
is applied, and `authenticate` then `parse` on every webhook, answering with
`success_response()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from server.adapters.brokers import bandwidth, inteliquent, sandbox, twilio
from server.adapters.brokers.webhook import WebhookItem, WebhookRequest

__all__ = ["BROKERS", "BrokerWire", "broker_wire"]


class BrokerWire(Protocol):
    """One broker's inbound webhook format: what a broker module exposes."""

    @property
    def NAME(self) -> str:
        """The broker's name, as accounts are configured with it."""
        ...

    @property
    def SIGNS_URL(self) -> bool:
        """Whether `authenticate` reads `request.url` (else the adapter need not build it)."""
        ...

    @property
    def CREDENTIAL_FIELDS(self) -> frozenset[str]:
        """The keys an account's credentials may hold."""
        ...

    def check_credentials(self, credentials: Mapping[str, str]) -> list[str]:
        """Return human-readable problems with `credentials`; empty when they are usable."""
        ...

    def authenticate(self, request: WebhookRequest, credentials: Mapping[str, str]) -> None:
        """Raise AuthenticationFailed unless the request comes from the account's broker."""
        ...

    def parse(self, request: WebhookRequest) -> list[WebhookItem]:
        """Return the texts and receipts the request carries; raise MalformedWebhook."""
        ...

    def success_response(self, *, stored: int, duplicates: int) -> tuple[bytes, str]:
        """Return the body and media type the broker expects when a webhook is accepted;
        `stored` items were new, `duplicates` seen before."""
        ...


def _by_name(*modules: BrokerWire) -> Mapping[str, BrokerWire]:
    return MappingProxyType({module.NAME: module for module in modules})


BROKERS: Mapping[str, BrokerWire] = _by_name(inteliquent, twilio, bandwidth, sandbox)


def broker_wire(name: str) -> BrokerWire:
    """Return the wire format of the broker called `name`; raise KeyError for an unknown name."""
    try:
        return BROKERS[name]
    except KeyError:
        raise KeyError(f"unknown broker {name!r}; known: {', '.join(sorted(BROKERS))}") from None
