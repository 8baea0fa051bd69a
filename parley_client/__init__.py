"""Parley's reference client of the agent protocol (docs/protocol.md): start with
`await AgentClient.connect(url, token=...)`, then `events()` and the command methods."""

from parley_client.client import (
    PROTOCOL_VERSION,
    AgentClient,
    ClientError,
    CommandFailed,
    ConnectFailed,
    ConnectionClosed,
    Event,
    ProtocolError,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AgentClient",
    "ClientError",
    "CommandFailed",
    "ConnectFailed",
    "ConnectionClosed",
    "Event",
    "ProtocolError",
]
