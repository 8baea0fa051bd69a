"""A start reads the live interactions through the `interaction_live` partial index, not by
scanning the history (a store keeps months of closed interactions: ~0.12 s a million rows of
scan on SQLite here, bench/README.md, recovery). Checked with each store's own planner on a
migrated store: SQLite's plan names the index; PostgreSQL, told not to scan tables, still finds
a plan through it (so the query's condition implies the index's)."""

from __future__ import annotations

from pathlib import Path

from server.adapters.persistence.database import create_store_engine, migrate
from server.adapters.persistence.live_state import _OPEN
from tests.conftest import fresh_database_url


def test_the_start_reads_live_interactions_through_their_index(tmp_path: Path) -> None:
    engine = create_store_engine(fresh_database_url(tmp_path))
    try:
        migrate(engine)
        compiled = _OPEN.compile(engine)
        assert not compiled.params  # the condition is the index's own, literals and all
        with engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
                steps = [row[-1] for row in plan]
                assert "SCAN interaction USING INDEX interaction_live" in steps, steps
            else:
                connection.exec_driver_sql("SET enable_seqscan = off")
                lines = connection.exec_driver_sql(f"EXPLAIN {compiled}").scalars().all()
                assert any("interaction_live" in line for line in lines), lines
    finally:
        engine.dispose()
