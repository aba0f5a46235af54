"""Database engine and the declarative base shared by every table.

SQLite gets WAL mode, foreign keys and a busy timeout on every connection so that a
gateway and a CLI command can share the file; PostgreSQL is used as it comes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    create_engine,
    event,
)
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# Stable constraint names so that Alembic migrations are identical on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every EcoHub table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


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


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Bulk writes touch many B-tree pages: a 16 MiB page cache instead of the 2 MiB
    # default. 64 MiB was no faster on the gateway benchmark (the operating system caches
    # the file too) and held 70-100 MB more in the writer process.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``, creating the SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///path or postgresql+psycopg://user@host/db"
    )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error.

    SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``): a transaction that reads
    first and writes later could otherwise fail when another writer got in between.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()


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
