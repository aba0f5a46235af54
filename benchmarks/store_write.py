"""Bulk-write throughput of the store against each database's raw bulk path.

For 1,000,000 observations on SQLite and on PostgreSQL it prints rows/s of:

- ``store``: ``write_observations`` (validation, in-batch de-duplication, idempotent
  upsert, revision trigger) into an empty table;
- ``store resend``: the same batch again (every row unchanged: nothing written);
- ``raw``: the database's own bulk path into the same table with nothing else done
  (SQLite: one ``executemany`` of plain INSERTs in one transaction, with the rows
  already converted to SQLite's types; PostgreSQL: ``COPY`` straight into the table).

``raw`` is the limit; the target is store ≥ 50 % of raw. Medians of ``--repeats`` runs.

    python -m benchmarks.store_write [--rows 1000000] [--repeats 3] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from benchmarks._common import median_seconds, scratch_store
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet
from ecohub.timeseries.observations import COLUMNS, Observation, sqlite_rows, write_observations

PARAMETERS = [
    "a21026",
    "a21002",
    "a34013",
    "a19001",
    "a01012",
    "a01011",
    "a01013",
    "a01014",
    "a00000",
    "a21005",
]


def make_rows(count: int, points: int) -> list[Observation]:
    """``count`` minute values: ``points`` points × 10 parameters × consecutive minutes."""
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    per_point = count // (points * len(PARAMETERS))
    rows = []
    for minute in range(per_point):
        ts = t0 + dt.timedelta(minutes=minute)
        for point in range(1, points + 1):
            for index, parameter in enumerate(PARAMETERS):
                rows.append(
                    Observation(
                        point, parameter, "min", ts, 10.0 + index + minute % 7, "N", 0, "bench"
                    )
                )
    return rows


def register_points(engine: Engine, points: int) -> None:
    with Session(engine) as session, session.begin():
        enterprise = Enterprise(uscc="914403001922038216", name="bench")
        session.add(enterprise)
        session.flush()
        outlet = Outlet(enterprise_id=enterprise.id, code="DA001", name="stack", kind="gas")
        session.add(outlet)
        session.flush()
        session.add_all(
            MonitoringPoint(
                id=i,
                code=f"B{i:05d}",
                name=f"bench {i}",
                outlet_id=outlet.id,
                interval_seconds=60,
                crc_tolerant=False,
            )
            for i in range(1, points + 1)
        )


def raw_sqlite(engine: Engine, prepared: list[tuple[Any, ...]]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        cursor.executemany(
            f"INSERT INTO observations ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            prepared,
        )
        raw.commit()
    finally:
        raw.close()


def raw_postgresql(engine: Engine, rows: list[Observation], now: dt.datetime) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY observations ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, now))
        raw.commit()
    finally:
        raw.close()


def truncate(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM observations"))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM observations"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    points = 100
    rows = make_rows(args.rows, points)
    print(f"store_write: {len(rows):,} observations, median of {args.repeats} runs")
    print(f"{'backend':<12}{'path':<16}{'seconds':>10}{'rows/s':>14}")
    for backend in args.backends.split(","):
        with scratch_store(backend) as engine:
            bench_backend(engine, rows, points, args.repeats)


def bench_backend(engine: Engine, rows: list[Observation], points: int, repeats: int) -> None:
    backend = engine.dialect.name
    now = dt.datetime.now(dt.UTC)
    register_points(engine, points)
    known = set(range(1, points + 1))
    if backend == "sqlite":
        prepared = list(sqlite_rows(rows, now))
        raw_time = median_seconds(
            lambda: raw_sqlite(engine, prepared), repeats, lambda: truncate(engine)
        )
        del prepared
    else:
        raw_time = median_seconds(
            lambda: raw_postgresql(engine, rows, now), repeats, lambda: truncate(engine)
        )
    store_time = median_seconds(
        lambda: write_observations(engine, rows, known_points=known),
        repeats,
        lambda: truncate(engine),
    )
    resend_time = median_seconds(
        lambda: write_observations(engine, rows, known_points=known), repeats, lambda: None
    )
    for path, seconds in (
        ("raw (limit)", raw_time),
        ("store", store_time),
        ("store resend", resend_time),
    ):
        print(f"{backend:<12}{path:<16}{seconds:>10.2f}{len(rows) / seconds:>14,.0f}")
    print(f"{backend:<12}{'store / raw':<16}{raw_time / store_time:>24.0%}")


if __name__ == "__main__":
    main()
