"""What every broker client does alike over HTTP (server/adapters/brokers/broker_http.py), shown
for each: an unusable API address is a refusal; a slow answer, a dropped connection and nothing
listening are worth a retry. Each broker's own answers (its errors, its ids) are in its own
test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from server.adapters.brokers.sending import BrokerRejected, BrokerUnavailable
from tests.adapters.brokers import test_bandwidth_client as bandwidth
from tests.adapters.brokers import test_inteliquent_client as inteliquent
from tests.adapters.brokers import test_twilio_client as twilio
from tests.broker_servers import BandwidthServer, Fault, InteliquentServer, TwilioServer
from tests.broker_servers.base import BrokerServer
from tests.end_to_end.server_process import free_port


@dataclass(frozen=True)
class Client:
    """One broker client, the fake broker it talks to, and a send through it."""

    server: Callable[[], BrokerServer]
    send: Callable[..., str]  # send(api_url, *, timeout_s=...) -> the broker's id
    ok: int  # the status of an accepted send


CLIENTS = {
    "twilio": Client(
        server=lambda: TwilioServer(
            account_sid=twilio.SID, auth_token=twilio.TOKEN, numbers=[twilio.OURS]
        ),
        send=twilio.send,
        ok=201,
    ),
    "inteliquent": Client(
        server=lambda: InteliquentServer(api_key=inteliquent.API_KEY, numbers=["12065550100"]),
        send=inteliquent.send,
        ok=200,
    ),
    "bandwidth": Client(
        server=lambda: BandwidthServer(
            account_id=bandwidth.ACCOUNT_ID,
            application_id=bandwidth.APPLICATION_ID,
            username=bandwidth.API_USER[0],
            password=bandwidth.API_USER[1],
            numbers=[bandwidth.OURS],
        ),
        send=bandwidth.send,
        ok=202,
    ),
}


@pytest.fixture(scope="module", params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest) -> Iterator[tuple[Client, BrokerServer]]:
    chosen = CLIENTS[request.param]
    with chosen.server() as server:
        yield chosen, server


@pytest.fixture
def broker(client: tuple[Client, BrokerServer]) -> tuple[Client, BrokerServer]:
    client[1].reset()
    return client


@pytest.mark.parametrize("address", ["ftp://127.0.0.1/api", "not a url"])
def test_an_unusable_api_address_is_rejected(
    broker: tuple[Client, BrokerServer], address: str
) -> None:
    chosen, server = broker
    with pytest.raises(BrokerRejected) as raised:
        chosen.send(address)

    assert raised.value.reason == "invalid_api_url"
    assert server.received() == []


def test_a_slow_answer_raises_broker_unavailable(broker: tuple[Client, BrokerServer]) -> None:
    chosen, server = broker
    server.fail_next(Fault.slow(1.0))

    with pytest.raises(BrokerUnavailable, match="in time"):
        chosen.send(server.api_url, timeout_s=0.2)

    assert len(server.wait_for(1)) == 1


def test_a_dropped_connection_raises_broker_unavailable(
    broker: tuple[Client, BrokerServer],
) -> None:
    chosen, server = broker
    server.fail_next(Fault.dropped(), times=2)

    for _ in range(2):
        with pytest.raises(BrokerUnavailable) as raised:
            chosen.send(server.api_url)
        assert raised.value.status is None
    chosen.send(server.api_url)

    assert [r.status for r in server.received()] == [None, None, chosen.ok]


def test_nothing_listening_raises_broker_unavailable(broker: tuple[Client, BrokerServer]) -> None:
    chosen, _ = broker
    with pytest.raises(BrokerUnavailable) as raised:
        chosen.send(f"http://127.0.0.1:{free_port()}/api")

    assert raised.value.status is None
