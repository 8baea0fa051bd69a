"""A start reads no history beyond the windows it needs: the live interactions through the
`interaction_live` partial index, the recent closures (the day's figures, wait estimates,
reopen windows) through `interaction_closed`. A store keeps months of closed interactions until
its purge: with 1,008,000 of them these reads took 1.04 s on SQLite, and 0.18 s through the
indexes (bench/README.md, recovery). Checked with each store's own planner on the statements a
start really runs: SQLite's plan names the index; PostgreSQL, told not to scan tables, still
finds a plan through it (so each query's condition is one the index serves)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.adapters.persistence.database import create_store_engine
from server.adapters.persistence.live_state import (
    load_closures,
    load_histories,
    load_open_interactions,
    load_organisation_configs,
)
from server.adapters.persistence.queue_samples import closed_today
from tests.conftest import fresh_database_url
from tests.end_to_end.organisations import ACME, provision

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = fresh_database_url(tmp_path)
    provision(url, tmp_path / "config", ACME)
    engine = create_store_engine(url)
    yield engine
    engine.dispose()


def _statements(engine: sa.Engine, read: Any) -> list[tuple[str, Any]]:
    """The statements on `interaction` that `read(connection)` runs, with their parameters."""
    ran: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM interaction" in statement:
            ran.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as connection:
            read(connection)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return ran


def _plan(engine: sa.Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return "\n".join(str(row[-1]) for row in rows)
        connection.exec_driver_sql("SET enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        return "\n".join(str(row[0]) for row in rows)


def test_the_start_reads_live_interactions_through_their_index(engine: sa.Engine) -> None:
    [(statement, parameters)] = _statements(engine, load_open_interactions)
    assert not parameters  # the condition is the index's own, literals and all
    plan = _plan(engine, statement, parameters)
    assert "interaction_live" in plan, plan


def test_the_start_reads_recent_closures_through_their_index(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        configs = load_organisation_configs(connection)
    # a reopen window, so that the start reads the closures whose window is still open
    configs = {
        org_id: replace(config, care=replace(config.care, reopen_window_s=3600))
        for org_id, config in configs.items()
    }
    reads = {
        "wait estimates": lambda c: load_histories(c, now=NOW),
        "reopen windows": lambda c: load_closures(c, configs, now=NOW),
        "the day's figures": lambda c: closed_today(c, configs, now=NOW),
    }
    for what, read in reads.items():
        statements = _statements(engine, read)
        assert statements, what
        for statement, parameters in statements:
            plan = _plan(engine, statement, parameters)
            assert "interaction_closed" in plan, (what, plan)
