"""Writing and reading observations.

Writes are bulk and idempotent: a batch is validated, de-duplicated on its key, and
upserted in one transaction (SQLite: ``executemany``; PostgreSQL: ``COPY`` into a
staging table, then one ``INSERT … ON CONFLICT``). Re-sending a batch changes nothing;
a corrected value or flag updates the row and the database's trigger writes the old and
new values to ``observation_revisions``. Rows that fail validation go to the quarantine,
and the rest of the batch is still written.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Connection, Engine, and_, func, literal, or_, select, tuple_

from ecohub.clock import utcnow
from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.db.types import SQLITE_TIMESTAMP_FORMAT
from ecohub.quality.series import Observation
from ecohub.registry.models import MonitoringPoint
from ecohub.timeseries.tables import DataFlag, IntervalKind, observations

DATA_FLAGS = frozenset(flag.value for flag in DataFlag)
INTERVALS = frozenset(kind.value for kind in IntervalKind)
COLUMNS = (
    "point_id",
    "parameter_code",
    "interval",
    "ts",
    "value",
    "data_flag",
    "quality_flag",
    "source",
    "ingested_at",
)


@dataclass(frozen=True)
class WriteResult:
    """What a batch write did."""

    received: int
    written: int  # rows inserted or changed
    unchanged: int  # rows identical to what was stored (re-sent data)
    duplicates: int  # rows repeated inside the batch (the last one counts)
    rejected: int  # rows sent to the quarantine


def _rejection(row: Any, known_points: frozenset[int] | set[int]) -> str | None:
    """Why ``row`` cannot be stored, or None if it can."""
    if row.point_id not in known_points:
        return f"unknown monitoring point id {row.point_id}"
    if row.interval not in INTERVALS:
        return f"interval {row.interval!r} is not one of {sorted(INTERVALS)}"
    if row.data_flag not in DATA_FLAGS:
        return f"data flag {row.data_flag!r} is not an HJ 212 flag ({''.join(sorted(DATA_FLAGS))})"
    if not isinstance(row.ts, dt.datetime) or row.ts.tzinfo is None:
        return f"timestamp {row.ts!r} has no time zone"
    if row.value is not None and not math.isfinite(row.value):
        return f"value {row.value!r} is not a finite number"
    if not row.parameter_code or len(row.parameter_code) > 12:
        return f"parameter code {row.parameter_code!r} is empty or too long"
    return None


def _known_point_ids(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(select(MonitoringPoint.id)).scalars())


def prepare_batch(
    rows: Iterable[Observation],
    known_points: frozenset[int] | set[int],
    *,
    conflicts: set[tuple[int, str, str, dt.datetime]] | None = None,
) -> tuple[list[Observation], list[Rejected], int]:
    """Split a batch into valid unique rows (last one wins per key), rejections, and the
    number of in-batch duplicates. Keys repeated with a different value or flag are added
    to ``conflicts`` when it is given."""
    unique: dict[tuple[int, str, str, dt.datetime], Observation] = {}
    rejected: list[Rejected] = []
    received = 0
    for row in rows:
        received += 1
        # The common case is checked inline; the full reason is only built for bad rows.
        if (
            row.point_id in known_points
            and row.interval in INTERVALS
            and row.data_flag in DATA_FLAGS
            and isinstance(row.ts, dt.datetime)
            and row.ts.tzinfo is not None
            and (row.value is None or math.isfinite(row.value))
            and 0 < len(row.parameter_code) <= 12
        ):
            key = row[:4]  # (point_id, parameter_code, interval, ts), as one C slice
            if conflicts is not None:
                before = unique.get(key)
                if before is not None and (
                    before.value != row.value or before.data_flag != row.data_flag
                ):
                    conflicts.add(key)
            unique[key] = row
            continue
        reason = _rejection(row, known_points) or "invalid observation"
        rejected.append(
            Rejected(
                source=str(getattr(row, "source", "store")),
                reason_code="invalid_observation",
                reason=reason,
                raw=json.dumps(_row_as_json(row), ensure_ascii=False),
            )
        )
    duplicates = received - len(rejected) - len(unique)
    return list(unique.values()), rejected, duplicates


def _row_as_json(row: Any) -> dict[str, Any]:
    data = row._asdict() if hasattr(row, "_asdict") else dict(row)
    return {key: _json_value(value) for key, value in data.items()}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_observations(
    engine: Engine,
    rows: Iterable[Observation],
    *,
    known_points: frozenset[int] | set[int] | None = None,
    ingested_at: dt.datetime | None = None,
) -> WriteResult:
    """Write a batch of observations idempotently in one transaction.

    ``known_points`` (the ids of registered monitoring points) may be passed by callers
    that write many batches; otherwise it is read from the registry.
    """
    points = known_points if known_points is not None else _known_point_ids(engine)
    unique, rejected, duplicates = prepare_batch(rows, points)
    received = len(unique) + len(rejected) + duplicates
    now = ingested_at or utcnow()
    written = 0
    if unique:
        if engine.dialect.name == "postgresql":
            written = _upsert_postgresql(engine, unique, now)
        else:
            written = _upsert_sqlite(engine, unique, now)
    if rejected:
        quarantine_rows(engine, rejected)
    return WriteResult(
        received=received,
        written=written,
        unchanged=len(unique) - written,
        duplicates=duplicates,
        rejected=len(rejected),
    )


_SQLITE_UPSERT = f"""
INSERT INTO observations ({", ".join(COLUMNS)}) VALUES ({", ".join("?" * len(COLUMNS))})
ON CONFLICT (point_id, parameter_code, interval, ts) DO UPDATE SET
  value = excluded.value, data_flag = excluded.data_flag,
  quality_flag = excluded.quality_flag, source = excluded.source,
  ingested_at = excluded.ingested_at
WHERE observations.value IS NOT excluded.value
   OR observations.data_flag IS NOT excluded.data_flag
   OR observations.quality_flag IS NOT excluded.quality_flag
"""


def sqlite_rows(rows: Sequence[Observation], ingested_at: dt.datetime) -> Iterator[tuple[Any, ...]]:
    """Rows as SQLite parameters: timestamps as the UTC text SQLAlchemy stores."""
    formatted: dict[dt.datetime, str] = {}  # a batch repeats few distinct timestamps
    utc = dt.UTC
    fmt = SQLITE_TIMESTAMP_FORMAT
    now = ingested_at.astimezone(utc).replace(tzinfo=None).strftime(fmt)
    for row in rows:
        ts = row.ts
        text = formatted.get(ts)
        if text is None:
            text = formatted[ts] = ts.astimezone(utc).replace(tzinfo=None).strftime(fmt)
        yield (
            row.point_id,
            row.parameter_code,
            row.interval,
            text,
            row.value,
            row.data_flag,
            row.quality_flag,
            row.source,
            now,
        )


def _upsert_sqlite(engine: Engine, rows: Sequence[Observation], now: dt.datetime) -> int:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            written = _upsert_sqlite_cursor(cursor, rows, now)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        return written
    finally:
        raw.close()


def _upsert_sqlite_cursor(cursor: Any, rows: Sequence[Observation], now: dt.datetime) -> int:
    cursor.executemany(_SQLITE_UPSERT, sqlite_rows(rows, now))
    return int(cursor.rowcount)


def upsert_rows(connection: Connection, rows: Sequence[Observation], now: dt.datetime) -> int:
    """Upsert already validated, unique rows inside the caller's transaction; returns the
    number of rows inserted or changed."""
    if not rows:
        return 0
    cursor = _cursor_in_transaction(connection)
    try:
        if connection.dialect.name == "postgresql":
            return _upsert_postgresql_cursor(cursor, rows, now)
        return _upsert_sqlite_cursor(cursor, rows, now)
    finally:
        cursor.close()


def _cursor_in_transaction(connection: Connection) -> Any:
    """A driver cursor on ``connection``, whose transaction SQLAlchemy then knows it has
    begun: otherwise, if nothing else ran through SQLAlchemy, ``commit()`` would do
    nothing and the pool would roll the rows back."""
    if not connection.in_transaction():
        connection.begin()
    return connection.connection.cursor()


class Written(NamedTuple):
    """What :func:`insert_new_rows` did: rows inserted or changed, and whether rows
    believed new were found stored (so the whole batch went through the upsert)."""

    rows: int
    fell_back: bool


def insert_new_rows(
    connection: Connection,
    new: Sequence[Observation],
    changed: Sequence[Observation],
    now: dt.datetime,
) -> Written:
    """Write unique rows inside the caller's transaction: ``new`` ones, at keys the caller
    believes the store does not hold, with a plain insert; ``changed`` ones with the
    upsert.

    On PostgreSQL the new rows are copied straight into the table, which costs about a
    quarter of the upsert (measured: 240,000 rows, 1.5 s against 2.5 s without the
    foreign key and 4.5 s with it). Should one of their keys be stored after all
    (another writer got there first), the insert is rolled back to a savepoint and every
    row goes through the upsert, so the result is the same either way. SQLite upserts
    every row: its upsert costs no more than its insert."""
    if connection.dialect.name != "postgresql" or not new:
        return Written(upsert_rows(connection, [*new, *changed], now), False)
    cursor = _cursor_in_transaction(connection)
    try:
        cursor.execute("SAVEPOINT insert_new_rows")
        try:
            _copy_rows(cursor, "observations", new, now)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT insert_new_rows")
            return Written(_upsert_postgresql_cursor(cursor, [*new, *changed], now), True)
        cursor.execute("RELEASE SAVEPOINT insert_new_rows")
        upserted = _upsert_postgresql_cursor(cursor, changed, now) if changed else 0
        return Written(len(new) + upserted, False)
    finally:
        cursor.close()


PG_COPY_TYPES = [
    "int4",
    "text",
    "text",
    "timestamptz",
    "float8",
    "text",
    "int2",
    "text",
    "timestamptz",
]

_PG_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS observations_stage
  (LIKE observations INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""

_PG_UPSERT = f"""
INSERT INTO observations ({", ".join(COLUMNS)})
SELECT {", ".join(COLUMNS)} FROM observations_stage
ON CONFLICT (point_id, parameter_code, interval, ts) DO UPDATE SET
  value = excluded.value, data_flag = excluded.data_flag,
  quality_flag = excluded.quality_flag, source = excluded.source,
  ingested_at = excluded.ingested_at
WHERE observations.value IS DISTINCT FROM excluded.value
   OR observations.data_flag IS DISTINCT FROM excluded.data_flag
   OR observations.quality_flag IS DISTINCT FROM excluded.quality_flag
"""


def _upsert_postgresql(engine: Engine, rows: Sequence[Observation], now: dt.datetime) -> int:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        try:
            written = _upsert_postgresql_cursor(cursor, rows, now)
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        return written
    finally:
        raw.close()


def _copy_rows(cursor: Any, table: str, rows: Sequence[Observation], now: dt.datetime) -> None:
    """Binary ``COPY`` of observations (ingested at ``now``) into ``table``."""
    with cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(PG_COPY_TYPES)
        for row in rows:
            copy.write_row((*row, now))


def _upsert_postgresql_cursor(cursor: Any, rows: Sequence[Observation], now: dt.datetime) -> int:
    cursor.execute(_PG_STAGE)
    _copy_rows(cursor, "observations_stage", rows, now)
    cursor.execute(_PG_UPSERT)
    written = int(cursor.rowcount)
    # ON COMMIT DELETE ROWS empties the stage only at commit; a caller's transaction may
    # upsert again before that.
    cursor.execute("TRUNCATE observations_stage")
    return written


# --- reads -------------------------------------------------------------------------


class StoredObservation(NamedTuple):
    point_id: int
    parameter_code: str
    interval: str
    ts: dt.datetime
    value: float | None
    data_flag: str
    quality_flag: int
    source: str
    ingested_at: dt.datetime


def _stored(rows: Iterable[Any]) -> list[StoredObservation]:
    return [StoredObservation(*row) for row in rows]


def latest_values(
    engine: Engine,
    *,
    point_ids: Sequence[int] | None = None,
    parameter_codes: Sequence[str] | None = None,
    interval: str | None = None,
) -> list[StoredObservation]:
    """The newest observation of every (point, parameter, interval), optionally filtered."""
    newest = select(
        observations.c.point_id,
        observations.c.parameter_code,
        observations.c.interval,
        func.max(observations.c.ts).label("ts"),
    ).group_by(observations.c.point_id, observations.c.parameter_code, observations.c.interval)
    if point_ids is not None:
        newest = newest.where(observations.c.point_id.in_(point_ids))
    if parameter_codes is not None:
        newest = newest.where(observations.c.parameter_code.in_(parameter_codes))
    if interval is not None:
        newest = newest.where(observations.c.interval == interval)
    latest = newest.subquery()
    query = (
        select(observations)
        .join(
            latest,
            and_(
                observations.c.point_id == latest.c.point_id,
                observations.c.parameter_code == latest.c.parameter_code,
                observations.c.interval == latest.c.interval,
                observations.c.ts == latest.c.ts,
            ),
        )
        .order_by(observations.c.point_id, observations.c.parameter_code, observations.c.interval)
    )
    with engine.connect() as connection:
        return _stored(connection.execute(query))


def read_range(
    engine: Engine,
    *,
    point_id: int,
    parameter_code: str,
    interval: str,
    start: dt.datetime,
    end: dt.datetime,
) -> list[StoredObservation]:
    """Observations of one series with ``start <= ts < end``, oldest first."""
    query = (
        select(observations)
        .where(
            observations.c.point_id == point_id,
            observations.c.parameter_code == parameter_code,
            observations.c.interval == interval,
            observations.c.ts >= start,
            observations.c.ts < end,
        )
        .order_by(observations.c.ts)
    )
    with engine.connect() as connection:
        return _stored(connection.execute(query))


PageKey = tuple[dt.datetime, int, str, str]


@dataclass(frozen=True)
class Page:
    rows: list[StoredObservation]
    next_key: PageKey | None  # pass as ``after`` for the next page; None on the last page


def read_page(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    point_ids: Sequence[int] | None = None,
    parameter_codes: Sequence[str] | None = None,
    interval: str | None = None,
    after: PageKey | None = None,
    limit: int = 1000,
) -> Page:
    """One page of observations in ``[start, end)``, ordered by time then key.

    Keyset pagination: a page costs the same however deep it is, and rows written
    meanwhile never shift later pages.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    order = (
        observations.c.ts,
        observations.c.point_id,
        observations.c.parameter_code,
        observations.c.interval,
    )
    query = select(observations).where(observations.c.ts >= start, observations.c.ts < end)
    if point_ids is not None:
        query = query.where(observations.c.point_id.in_(point_ids))
    if parameter_codes is not None:
        query = query.where(observations.c.parameter_code.in_(parameter_codes))
    if interval is not None:
        query = query.where(observations.c.interval == interval)
    if after is not None:
        ts, point_id, parameter_code, interval_kind = after
        query = query.where(
            or_(
                observations.c.ts > ts,
                and_(
                    observations.c.ts == ts,
                    tuple_(
                        observations.c.point_id,
                        observations.c.parameter_code,
                        observations.c.interval,
                    )
                    > tuple_(literal(point_id), literal(parameter_code), literal(interval_kind)),
                ),
            )
        )
    query = query.order_by(*order).limit(limit + 1)
    with engine.connect() as connection:
        rows = _stored(connection.execute(query))
    if len(rows) <= limit:
        return Page(rows=rows, next_key=None)
    rows = rows[:limit]
    last = rows[-1]
    return Page(rows=rows, next_key=(last.ts, last.point_id, last.parameter_code, last.interval))


def count_observations(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar_one())
