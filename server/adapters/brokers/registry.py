"""Registry of broker wire formats: the `BrokerWire` interface and the brokers selected by name.

Each built-in broker module (`inteliquent`, `twilio`, `bandwidth`, `sandbox`) implements
`BrokerWire`; `BROKERS` holds them. A broker described by a definition file is a
`generic_broker.GenericBroker`, also a `BrokerWire`: `load_brokers(folder)` returns the built-in
brokers and those of the folder's definitions, once at start (the composition root and the CLI
call it and pass the mapping on; nothing here changes after import). Look one up with
`broker_wire(account.broker, brokers)`, call `check_credentials` when configuration is applied,
and `authenticate` then `parse` on every webhook, answering with `success_response()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from server.adapters.brokers import bandwidth, inteliquent, sandbox, twilio
from server.adapters.brokers.generic_broker import load_definitions
from server.adapters.brokers.webhook import WebhookItem, WebhookRequest

__all__ = ["BROKERS", "BrokerWire", "broker_wire", "load_brokers"]


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


# The built-in brokers.
BROKERS: Mapping[str, BrokerWire] = _by_name(inteliquent, twilio, bandwidth, sandbox)


def load_brokers(definitions: Path | None) -> Mapping[str, BrokerWire]:
    """Return the built-in brokers and a `GenericBroker` for each definition file in the
    folder `definitions` (None: the built-in brokers only).

    Raises `generic_broker.DefinitionInvalid` (a `ConfigInvalid`) listing every problem, among
    them a definition that takes a built-in broker's name or a folder that does not exist.
    """
    if definitions is None:
        return BROKERS
    generic = load_definitions(definitions, reserved=BROKERS.keys())
    return MappingProxyType({**BROKERS, **generic})


def broker_wire(name: str, brokers: Mapping[str, BrokerWire] = BROKERS) -> BrokerWire:
    """Return the wire format of the broker called `name` among `brokers` (by default the
    built-in ones); raise KeyError naming the known brokers for an unknown name."""
    try:
        return brokers[name]
    except KeyError:
        raise KeyError(f"unknown broker {name!r}; known: {', '.join(sorted(brokers))}") from None
