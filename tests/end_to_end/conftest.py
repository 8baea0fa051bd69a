"""End-to-end fixtures: two provisioned organisations and a real server on a fresh store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine
from tests.conftest import TIMEOUT_SCALE, fresh_database_url
from tests.end_to_end.organisations import ACME, GLOBEX, Organisation, provision
from tests.end_to_end.server_process import ParleyServer

STORED_TABLES = ("interaction", "message", "delivery_receipt", "consent")


@dataclass
class Stack:
    server: ParleyServer
    engine: sa.Engine
    folder: Path

    def client(self, org: Organisation | None = None) -> httpx2.Client:
        headers = {} if org is None else {"Authorization": f"Bearer {org.token}"}
        return httpx2.Client(
            base_url=self.server.base_url, headers=headers, timeout=30 * TIMEOUT_SCALE
        )

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table: int(connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar())
                for table in STORED_TABLES
            }

    def rows(self, query: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.text(query), params))


def start_stack(folder: Path, env: dict[str, str] | None = None) -> Stack:
    url = fresh_database_url(folder)
    provision(url, folder / "config", ACME, GLOBEX)
    server = ParleyServer(database_url=url, log_path=folder / "server.log", env=env)
    server.start()
    return Stack(server=server, engine=create_store_engine(url), folder=folder)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server for a whole test module; tests use distinct phone numbers to stay apart."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.server.stop()
    running.engine.dispose()
