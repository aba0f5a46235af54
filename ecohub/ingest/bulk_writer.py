"""Writing the checked days of a bulk import (:mod:`ecohub.ingest.bulk_import`): their
observations, hourly and daily rollups and station AQI computed on columns
(:mod:`ecohub.timeseries.bulk_rollups`) and inserted (:mod:`ecohub.timeseries.bulk_write`)
by writer threads while the next days are read and checked.

The import is bound by the database's work (on PostgreSQL about 3 µs an observation or
hourly rollup, 8 µs a station-AQI row with its foreign-key check), so:

- :data:`DAYS_PER_WRITE` days go into one transaction, in the store's key order: each
  series' leaf pages of the primary keys are then visited once for the four days, not
  once a day. Once the tables outgrow the database's page cache every visit is a read
  and a write of the page (measured, 40 days: 98,000 values/s with a day per transaction,
  155,000 with four on PostgreSQL; 88,000 and 115,000 on SQLite over 20 days);
- on PostgreSQL two writers write at once on two connections, so that the database
  inserts with two processes; on SQLite one thread writes;
- each thread keeps its connection for the whole import, on SQLite with a page cache of
  :data:`SQLITE_CACHE_KIB` (four days touch a leaf page of every series in two tables,
  far more than the usual 16 MiB hold).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import psycopg
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ecohub.clock import day_start, utcnow
from ecohub.ingest.bulk_checks import SeriesRows
from ecohub.registry.directory import PointInfo
from ecohub.timeseries.bulk_rollups import (
    AqiColumns,
    HourlyColumns,
    RollupColumns,
    daily_rollups,
    hourly_rollups,
    station_aqi,
    with_empty_hours,
)
from ecohub.timeseries.bulk_write import insert_observations, insert_rollups, insert_station_aqi
from ecohub.timeseries.rollups import bump_rollup_generation, keep_latest_aqi

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
SQLITE_CACHE_KIB = 256 * 1024  # a SQLite writer's page cache
DAYS_PER_WRITE = 4  # days in one transaction
# What a day meeting stored keys after all raises (another writer got there first).
WRITE_ERRORS = (IntegrityError, psycopg.errors.UniqueViolation, sqlite3.IntegrityError)


@dataclass
class Day:
    """A local day of new values, checked (its rows carry their quality flags)."""

    start: int  # local midnight, epoch seconds
    rows: SeriesRows
    conflicts: Bools
    # (point, code, hour) of a flat-line range without a value: rolled up as "none"
    empty_hours: set[tuple[int, int, int]] = field(default_factory=set)


@dataclass(frozen=True)
class _Derived:
    hourly: RollupColumns
    daily: RollupColumns
    aqi_hours: AqiColumns
    aqi_days: AqiColumns


class DayWriter:
    """Writes days in ``writers`` threads (default: 2 on PostgreSQL, 1 on SQLite),
    keeping at most that many in flight."""

    def __init__(
        self,
        engine: Engine,
        codes: tuple[str, ...],
        *,
        source: str,
        points: Mapping[int, PointInfo],
        day_of: DayOf,
        writers: int | None = None,
        days_per_write: int | None = None,
    ) -> None:
        self.engine = engine
        self.codes = codes
        self.source = source
        self.points = points
        self.day_of = day_of
        postgres = engine.dialect.name == "postgresql"
        self.writers = writers or (2 if postgres else 1)
        self.days_per_write = days_per_write or DAYS_PER_WRITE
        self.written = 0
        self.flagged = 0
        self._pool = ThreadPoolExecutor(self.writers, thread_name_prefix="bulk-writer")
        self._in_flight: deque[tuple[list[Day], Future[int]]] = deque()
        self._group: list[Day] = []  # handed in, waiting for the next transaction
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[tuple[Connection, int | None]] = []  # with SQLite's cache

    def submit(self, day: Day) -> list[Day]:
        """Write ``day`` with the next ones (``days_per_write`` to a transaction),
        waiting while all writers are busy; returns the days that met stored keys
        (written by nobody: the caller takes another path)."""
        self._group.append(day)
        if len(self._group) < self.days_per_write:
            return []
        return self._launch()

    def drain(self) -> list[Day]:
        """Write the days handed in and wait for them; returns those that met stored
        keys."""
        failed = self._launch()
        while self._in_flight:
            failed += self._collect()
        return failed

    def in_flight(self) -> list[Day]:
        """The days handed in and not yet committed."""
        return [day for days, _future in self._in_flight for day in days] + self._group

    def _launch(self) -> list[Day]:
        days, self._group = self._group, []
        if not days:
            return []
        joined = _joined(days)
        derived = self._derive(joined)
        failed = []
        while len(self._in_flight) >= self.writers:
            failed += self._collect()
        self._in_flight.append((days, self._pool.submit(self._write, joined, derived)))
        return failed

    def close(self, *, wait: bool = True) -> None:
        """Stop the threads (after the days in flight) and give the connections back."""
        self._group = []
        try:
            while self._in_flight:
                _days, future = self._in_flight.popleft()
                future.exception()
        finally:
            self._pool.shutdown(wait=wait)
            for connection, cache_size in self._connections:
                if cache_size is not None:
                    connection.exec_driver_sql(f"PRAGMA cache_size={cache_size}")
                    connection.commit()
                connection.close()
            self._connections.clear()

    def _collect(self) -> list[Day]:
        days, future = self._in_flight.popleft()
        try:
            written = future.result()
        except WRITE_ERRORS:
            return days
        self.written += written
        self.flagged += sum(int(np.count_nonzero(day.rows.flag)) for day in days)
        return []

    def _derive(self, day: Day) -> _Derived:
        """A day's rollups and AQI (in the caller's thread, while others write)."""
        points = self.points
        rows = day.rows
        hours = HourlyColumns(self.codes, rows.point, rows.code, rows.ts, rows.value, rows.flag)
        hourly = hourly_rollups(hours)
        daily = daily_rollups(hourly, self.day_of, points)
        if day.empty_hours:
            point, code, ts = np.array(sorted(day.empty_hours), dtype=np.int64).T
            hourly = with_empty_hours(hourly, point, code, ts)

        def ambient(point: int) -> bool:
            return points[point].ambient_air

        return _Derived(hourly, daily, station_aqi(hourly, ambient), station_aqi(daily, ambient))

    def _write(self, day: Day, derived: _Derived) -> int:
        """One day's transaction (in a writer thread): its rows, then the counters
        (whose rows every writer updates: last, so that two days overlap)."""
        now = utcnow()
        rows = day.rows
        hours = HourlyColumns(self.codes, rows.point, rows.code, rows.ts, rows.value, rows.flag)
        connection = self._connection()
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            insert_observations(connection, hours, interval="hour", source=self.source, now=now)
            insert_rollups(connection, derived.hourly, now)
            insert_rollups(connection, derived.daily, now)
            insert_station_aqi(connection, derived.aqi_hours, now)
            insert_station_aqi(connection, derived.aqi_days, now)
            keep_latest_aqi(connection, _latest(derived.aqi_hours, now))
            bump_rollup_generation(connection)
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
        return len(rows)

    def _connection(self) -> Connection:
        """The writer thread's own connection (see the module docstring)."""
        found: Connection | None = getattr(self._local, "connection", None)
        if found is None:
            found = self.engine.connect()
            before = None
            if found.dialect.name == "sqlite":
                before = int(found.exec_driver_sql("PRAGMA cache_size").scalar_one())
                found.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
                found.commit()
            self._local.connection = found
            with self._lock:
                self._connections.append((found, before))
        return found


def _joined(days: list[Day]) -> Day:
    """Several days as one, in the store's key order."""
    if len(days) == 1:
        return days[0]
    rows = SeriesRows.concat([day.rows for day in days])
    order = np.lexsort((rows.ts, rows.series))
    return Day(
        days[0].start,
        rows.take(order),
        np.concatenate([day.conflicts for day in days])[order],
        set().union(*(day.empty_hours for day in days)),
    )


def _latest(aqi: AqiColumns, now: dt.datetime) -> list[dict[str, object]]:
    """The newest hour with an AQI of each station, as recompute_aqi's rows."""
    present = np.flatnonzero(~np.isnan(aqi.aqi))
    if not len(present):
        return []
    # Sorted by point and time: the last row of each point is its newest.
    point = aqi.point[present]
    last = present[np.concatenate([point[1:] != point[:-1], [True]])]
    return [
        {
            "point_id": int(aqi.point[i]),
            "ts": utc(int(aqi.ts[i])),
            "aqi": int(aqi.aqi[i]),
            "level": int(aqi.level[i]),
            "primary_pollutants": aqi.primary_pollutants[i],
            "computed_at": now,
        }
        for i in last.tolist()
    ]


def utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class DayOf:
    """The local day start (epoch seconds) of instants, computed once per hour."""

    def __init__(self) -> None:
        self._by_hour: dict[int, int] = {}

    def __call__(self, ts: Ints) -> Ints:
        hours = ts - ts % 3600
        distinct, inverse = np.unique(hours, return_inverse=True)
        starts = [self._start(int(hour)) for hour in distinct]
        return np.array(starts, dtype=np.int64)[inverse.reshape(-1)]

    def _start(self, hour: int) -> int:
        found = self._by_hour.get(hour)
        if found is None:
            found = self._by_hour[hour] = int(day_start(utc(hour)).timestamp())
        return found
