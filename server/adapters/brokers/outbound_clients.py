"""The outbound broker clients selected by broker name, and each broker's default API address.

`client_for(account.broker, http)` returns the `sending.BrokerClient` that sends through that
broker over the caller's shared `httpx2.AsyncClient` (proxies are the caller's to configure on
it); call its `send(text, settings)` with `ClientSettings(api_url=...)`, taking
`DEFAULT_API_URLS[broker]` when the account names no address of its own. Each client's module
says its wire format: `inteliquent_client.py`, `twilio_client.py`, `bandwidth_client.py`. The
sandbox broker's client (`sandbox_client.py`) is not selected here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import httpx2

from server.adapters.brokers.bandwidth_client import BandwidthClient
from server.adapters.brokers.inteliquent_client import InteliquentClient
from server.adapters.brokers.sending import BrokerClient, ClientFactory
from server.adapters.brokers.twilio_client import TwilioClient

__all__ = ["DEFAULT_API_URLS", "client_for"]

DEFAULT_API_URLS: Mapping[str, str] = MappingProxyType(
    {
        "inteliquent": "https://messagebroker.inteliquent.com/msgbroker/rest",
        "twilio": "https://api.twilio.com",
        "bandwidth": "https://messaging.bandwidth.com/api/v2",
    }
)

_CLIENTS: Mapping[str, ClientFactory] = MappingProxyType(
    {
        "inteliquent": InteliquentClient,
        "twilio": TwilioClient,
        "bandwidth": BandwidthClient,
    }
)


def client_for(broker: str, http: httpx2.AsyncClient) -> BrokerClient:
    """Return a new client for `broker` sending over `http`.

    Raises KeyError naming the brokers that have a client when `broker` has none.
    """
    try:
        factory = _CLIENTS[broker]
    except KeyError:
        raise KeyError(
            f"no outbound client for broker {broker!r}; clients exist for: "
            f"{', '.join(sorted(_CLIENTS))}"
        ) from None
    return factory(http)
