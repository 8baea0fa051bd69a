"""Sending one text with a broker client, as the client tests do."""

from __future__ import annotations

import asyncio

import httpx2

from server.adapters.brokers.sending import ClientFactory, ClientSettings, OutboundText


def send_once(client: ClientFactory, text: OutboundText, settings: ClientSettings) -> str:
    """Send `text` with a new `client` on a fresh httpx2.AsyncClient; return the broker's id."""

    async def run() -> str:
        async with httpx2.AsyncClient() as http:
            return await client(http).send(text, settings)

    return asyncio.run(run())
