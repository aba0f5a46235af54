"""Column types and SQL functions that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

SQLITE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    PostgreSQL stores ``timestamptz``; SQLite stores the UTC wall time as text. Naive
    datetimes are refused: an unlabelled local time is how a data set gets shifted by
    eight hours.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        utc = value.astimezone(dt.UTC)
        # SQLite's DateTime formats a naive value itself; PostgreSQL takes it aware.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class iso_utc(FunctionElement[str]):
    """A timestamp column as ISO 8601 text in UTC to the second (``2024-01-15T08:00:00Z``),
    formatted by the database: for long series this saves converting every row to a
    Python datetime and back to text."""

    type = String()
    inherit_cache = True


@compiles(iso_utc, "sqlite")
def _iso_utc_sqlite(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    return "strftime('%Y-%m-%dT%H:%M:%SZ', " + compiler.process(element.clauses, **kw) + ")"


@compiles(iso_utc, "postgresql")
def _iso_utc_postgresql(element: iso_utc, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"


class epoch_seconds(FunctionElement[int]):
    """A timestamp column as whole seconds since 1970-01-01 UTC, computed by the
    database: the rollups read hundreds of thousands of timestamps per batch and only
    need their hour."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Only the first 19 characters: SQLite rounds fractional seconds, and a value at
    # 08:59:59.9995 must stay in the 08:00 hour.
    column = compiler.process(element.clauses, **kw)
    return "CAST(strftime('%s', substr(" + column + ", 1, 19)) AS INTEGER)"


@compiles(epoch_seconds, "postgresql")
def _epoch_seconds_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return "CAST(floor(EXTRACT(EPOCH FROM " + column + ")) AS BIGINT)"


class flag_union(FunctionElement[Any]):
    """The bitwise OR of an integer flag column over a group: PostgreSQL's ``bit_or``;
    SQLite has no such aggregate, so it lists the group's distinct flags (a group
    rarely holds more than one or two) and :func:`union_value` ORs them."""

    inherit_cache = True


@compiles(flag_union, "sqlite")
def _flag_union_sqlite(element: flag_union, compiler: SQLCompiler, **kw: Any) -> str:
    return "group_concat(DISTINCT " + compiler.process(element.clauses, **kw) + ")"


@compiles(flag_union, "postgresql")
def _flag_union_postgresql(element: flag_union, compiler: SQLCompiler, **kw: Any) -> str:
    return "bit_or(" + compiler.process(element.clauses, **kw) + ")"


def union_value(found: int | str | None) -> int:
    """The OR of the flags that :class:`flag_union` read."""
    if found is None:
        return 0
    if isinstance(found, int):
        return found
    union = 0
    for part in found.split(","):
        union |= int(part)
    return union
