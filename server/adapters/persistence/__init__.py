"""Persistence: the SQLModel tables, migrations, the writer's SQL and the read queries."""
