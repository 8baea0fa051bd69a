"""Alembic environment: runs on the connection `database.migrate` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from server.adapters.persistence import tables  # noqa: F401 - registers the tables
from server.adapters.sandbox_broker import tables as sandbox_tables  # noqa: F401 - same

target_metadata = SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `parley migrate`, which supplies the connection")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
