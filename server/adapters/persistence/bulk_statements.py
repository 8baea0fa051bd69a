"""The writer's hot INSERTs and UPDATEs, run through the DBAPI with one tuple per row.

For every execution SQLAlchemy Core looks the statement's compiled form up in its cache, builds
a parameter dict per row (`construct_params`) and sets up an execution context and a result; for
the few statements the writer runs in every group (interactions, inbound messages, interaction
saves, agent events, handlers) that was most of the writer thread's time at 500 texts/s
(bench/README.md, dispatch). A `BulkStatement` writes its SQL once per dialect and hands plain
tuples to `executemany` of a cursor of the connection's own DBAPI connection, inside the
connection's transaction. Each value still goes through its column's own bind processor (UTC
timestamps, JSON, booleans), so a row stored this way is the row Core would store, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["BulkStatement", "placeholder"]

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # sqlite3; psycopg

_Processor = Callable[[Any], Any]


class BulkStatement:
    """One INSERT (`insert`) or UPDATE by key (`update`) of a table; `run(connection, rows)`
    writes dict rows keyed by column name in the connection's current transaction. Columns are
    named in one string separated by spaces, as `collections.namedtuple` takes its fields."""

    def __init__(self, table: sa.Table, columns: Sequence[str], template: str) -> None:
        if len(columns) < 2:
            raise ValueError("a bulk statement takes two columns or more")  # itemgetter's tuple
        self._table = table
        self._columns = tuple(columns)
        # {table}, {columns} and {values}, or {key} for an update; {conflict} and {excluded}
        self._template = template
        self._key = ""  # an upsert's conflict column
        self._values = operator.itemgetter(*self._columns)
        self._prepared: weakref.WeakKeyDictionary[
            Dialect, tuple[str, tuple[tuple[int, _Processor], ...]]
        ] = weakref.WeakKeyDictionary()

    @classmethod
    def insert(
        cls, table: sa.Table, columns: str, *, ignore_duplicates: bool = False
    ) -> BulkStatement:
        """An INSERT of `columns`; with `ignore_duplicates` a row that breaks a unique key is
        skipped (`ON CONFLICT DO NOTHING`, on SQLite and PostgreSQL). Raises ValueError when a
        column with a Python-side default is left out: Core would fill it in, this would not."""
        names = columns.split()
        defaulted = [c.name for c in table.columns if c.default is not None and c.name not in names]
        if defaulted:
            raise ValueError(f"{table.name}: columns with a default must be given: {defaulted}")
        template = "INSERT INTO {table} ({columns}) VALUES ({values})"
        if ignore_duplicates:
            template += " ON CONFLICT DO NOTHING"
        return cls(table, names, template)

    @classmethod
    def update(cls, table: sa.Table, columns: str, *, key: str) -> BulkStatement:
        """An UPDATE of `columns` of the row whose `key` column equals the row's `key` value.
        Raises ValueError when a column updated on every change (`onupdate`) is left out."""
        names = columns.split()
        automatic = [
            c.name for c in table.columns if c.onupdate is not None and c.name not in names
        ]
        if automatic:
            raise ValueError(f"{table.name}: columns with onupdate must be given: {automatic}")
        return cls(table, [*names, key], "UPDATE {table} SET {assignments} WHERE {key}")

    @classmethod
    def upsert(cls, table: sa.Table, columns: str, *, key: str) -> BulkStatement:
        """An INSERT of `columns` that updates the other columns of the row whose `key` (a
        unique column, among `columns`) is taken already (`ON CONFLICT ... DO UPDATE`, on
        SQLite and PostgreSQL). Raises ValueError as `insert` does."""
        names = columns.split()
        if key not in names:
            raise ValueError(f"{table.name}: the key {key!r} must be among the columns")
        statement = cls.insert(table, columns)
        statement._template += " ON CONFLICT ({conflict}) DO UPDATE SET {excluded}"
        statement._key = key
        return statement

    def run(self, connection: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Write `rows` (each holding at least the statement's columns; KeyError otherwise).
        Raises the DBAPI's own errors (`sqlite3.Error`, `psycopg.Error`), untranslated."""
        if not rows:
            return
        sql, processors = self._prepare(connection.dialect)
        values = self._values
        if processors:
            parameters = [_processed(values(row), processors) for row in rows]
        else:
            parameters = [values(row) for row in rows]
        cursor = connection.connection.cursor()
        try:
            cursor.executemany(sql, parameters)
        finally:
            cursor.close()

    def _prepare(self, dialect: Dialect) -> tuple[str, tuple[tuple[int, _Processor], ...]]:
        prepared = self._prepared.get(dialect)
        if prepared is None:
            prepared = (self._sql(dialect), self._processors(dialect))
            self._prepared[dialect] = prepared
        return prepared

    def _sql(self, dialect: Dialect) -> str:
        mark = placeholder(dialect)
        quote = dialect.identifier_preparer.quote
        *assigned, last = self._columns
        return self._template.format(
            table=quote(self._table.name),
            columns=", ".join(quote(name) for name in self._columns),
            values=", ".join(mark for _ in self._columns),
            assignments=", ".join(f"{quote(name)} = {mark}" for name in assigned),
            key=f"{quote(last)} = {mark}",
            conflict=quote(self._key),
            excluded=", ".join(
                f"{quote(name)} = excluded.{quote(name)}"
                for name in self._columns
                if name != self._key
            ),
        )

    def _processors(self, dialect: Dialect) -> tuple[tuple[int, _Processor], ...]:
        """(position, bind processor) of every column whose values need converting."""
        found = []
        for index, name in enumerate(self._columns):
            column_type = self._table.columns[name].type
            process = column_type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                found.append((index, process))
        return tuple(found)


def _processed(values: tuple[Any, ...], processors: tuple[tuple[int, _Processor], ...]) -> Any:
    converted = list(values)
    for index, process in processors:
        converted[index] = process(converted[index])
    return tuple(converted)


def placeholder(dialect: Dialect) -> str:
    """The DBAPI's positional parameter marker: `?` for sqlite3, `%s` for psycopg."""
    return _PLACEHOLDERS[dialect.paramstyle]
