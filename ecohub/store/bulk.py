"""Bulk upserts of derived rows (rollups, AQI) below SQLAlchemy's per-row machinery.

The pipeline rewrites thousands of rollup rows per batch. Through SQLAlchemy's
``executemany`` every value of every row passes its type's bind processor, and on
PostgreSQL every row is a statement; here SQLite gets one prepared ``executemany`` with
timestamps formatted once per distinct instant, and PostgreSQL one ``COPY`` into a
temporary stage table followed by one ``INSERT … SELECT … ON CONFLICT``. Both write
exactly what the SQLAlchemy path would (timestamps as UTC, booleans as the dialect
stores them), so the rest of the code reads the rows as usual.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

from ecohub.store.db import SQLITE_TIMESTAMP_FORMAT


def bulk_upsert(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows`` into ``table``, replacing every non-key column of rows whose
    ``keys`` already exist, inside the caller's transaction."""
    if not rows:
        return
    columns = [column.name for column in table.columns]
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns if name not in keys)
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            _upsert_postgresql(cursor, table.name, columns, rows, conflict)
        else:
            _upsert_sqlite(cursor, table.name, columns, rows, conflict)
    finally:
        cursor.close()


def _upsert_sqlite(
    cursor: Any, name: str, columns: list[str], rows: Sequence[dict[str, Any]], conflict: str
) -> None:
    statement = (
        f"INSERT INTO {name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) {conflict}"
    )
    formatted: dict[dt.datetime, str] = {}

    def value(item: Any) -> Any:
        if isinstance(item, dt.datetime):
            text = formatted.get(item)
            if text is None:
                if item.tzinfo is None:
                    raise ValueError(f"timestamp {item.isoformat()} has no time zone")
                utc = item.astimezone(dt.UTC).replace(tzinfo=None)
                text = formatted[item] = utc.strftime(SQLITE_TIMESTAMP_FORMAT)
            return text
        return item

    cursor.executemany(statement, ([value(row[c]) for c in columns] for row in rows))


def _upsert_postgresql(
    cursor: Any, name: str, columns: list[str], rows: Sequence[dict[str, Any]], conflict: str
) -> None:
    stage = f"{name}_stage"
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} "
        f"(LIKE {name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    listed = ", ".join(columns)
    with cursor.copy(f"COPY {stage} ({listed}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])
    cursor.execute(f"INSERT INTO {name} ({listed}) SELECT {listed} FROM {stage} {conflict}")
    cursor.execute(f"DELETE FROM {stage}")  # the transaction may stage more rows
