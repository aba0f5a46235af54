"""Bulk upserts of derived rows (rollups, AQI) below SQLAlchemy's per-row machinery.

The pipeline rewrites thousands of rollup rows per batch. Through SQLAlchemy's
``executemany`` every value of every row passes its type's bind processor, and on
PostgreSQL every row is a statement; here SQLite gets one prepared ``executemany`` with
timestamps formatted once per distinct instant, and PostgreSQL one ``COPY`` into a
temporary stage table (binary) followed by one ``INSERT … SELECT … ON CONFLICT``. Both write
exactly what the SQLAlchemy path would (timestamps as UTC, booleans as the dialect
stores them), so the rest of the code reads the rows as usual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.sql import sqltypes

from ecohub.db.types import SQLITE_TIMESTAMP_FORMAT, UTCDateTime


def bulk_upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    *,
    updates: Mapping[str, str] | None = None,
) -> None:
    """Insert ``rows`` into ``table``, replacing every non-key column of rows whose
    ``keys`` already exist, inside the caller's transaction. ``updates`` gives a
    column's SQL expression instead (both dialects name the new row ``excluded``)."""
    if not rows:
        return
    columns = [column.name for column in table.columns]
    assignments = ", ".join(
        f"{name} = {(updates or {}).get(name, f'excluded.{name}')}"
        for name in columns
        if name not in keys
    )
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {assignments}"
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            _upsert_postgresql(cursor, table, columns, keys, rows, conflict)
        else:
            _upsert_sqlite(cursor, table, columns, rows, conflict)
    finally:
        cursor.close()


def _upsert_sqlite(
    cursor: Any,
    table: Table,
    columns: list[str],
    rows: Sequence[dict[str, Any]],
    conflict: str,
) -> None:
    statement = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) {conflict}"
    )
    # Only the timestamp columns need converting; the rest pass as they are.
    stamped = [index for index, name in enumerate(columns) if _is_timestamp(table, name)]
    formatted: dict[dt.datetime, str] = {}

    def text(item: dt.datetime | None) -> str | None:
        if item is None:
            return None
        found = formatted.get(item)
        if found is None:
            if item.tzinfo is None:
                raise ValueError(f"timestamp {item.isoformat()} has no time zone")
            utc = item.astimezone(dt.UTC).replace(tzinfo=None)
            found = formatted[item] = utc.strftime(SQLITE_TIMESTAMP_FORMAT)
        return found

    pick = itemgetter(*columns)

    def parameters(row: dict[str, Any]) -> list[Any]:
        values = list(pick(row))
        for index in stamped:
            values[index] = text(values[index])
        return values

    cursor.executemany(statement, map(parameters, rows))


def _is_timestamp(table: Table, name: str) -> bool:
    return isinstance(table.c[name].type, UTCDateTime)


# SQLAlchemy type → PostgreSQL type for a binary COPY; the first match counts (the
# small and big integers are Integers too).
_COPY_TYPES: tuple[tuple[type, str], ...] = (
    (UTCDateTime, "timestamptz"),
    (sqltypes.Boolean, "bool"),
    (sqltypes.SmallInteger, "int2"),
    (sqltypes.BigInteger, "int8"),
    (sqltypes.Integer, "int4"),
    (sqltypes.Float, "float8"),
    (sqltypes.String, "text"),
)


def copy_types(table: Table) -> list[str] | None:
    """PostgreSQL type names of ``table``'s columns for a binary ``COPY`` (None if one
    has a type not listed in _COPY_TYPES: the caller then copies text)."""
    names = []
    for column in table.columns:
        name = next((pg for kind, pg in _COPY_TYPES if isinstance(column.type, kind)), None)
        if name is None:
            return None
        names.append(name)
    return names


def _upsert_postgresql(
    cursor: Any,
    table: Table,
    columns: list[str],
    keys: Sequence[str],
    rows: Sequence[dict[str, Any]],
    conflict: str,
) -> None:
    name = table.name
    stage = f"{name}_stage"
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    listed = ", ".join(columns)
    # Binary: no value is formatted as text and parsed back (a third of the upsert's
    # time for rollup rows).
    types = copy_types(table)
    binary = " (FORMAT BINARY)" if types is not None else ""
    pick = itemgetter(*columns)
    with cursor.copy(f"COPY {stage} ({listed}) FROM STDIN{binary}") as copy:
        if types is not None:
            copy.set_types(types)
        for row in rows:
            copy.write_row(pick(row))
    # In key order: two writers upserting overlapping keys then lock rows in the same
    # order and cannot deadlock.
    cursor.execute(
        f"INSERT INTO {name} ({listed}) SELECT {listed} FROM {stage} "
        f"ORDER BY {', '.join(keys)} {conflict}"
    )
    cursor.execute(f"DELETE FROM {stage}")  # the transaction may stage more rows
