"""The bulk path of history imports (``ecohub import cnemc``): hourly values checked,
stored and rolled up a whole day at a time, ending with the rows the ingestion pipeline
(:mod:`ecohub.ingest.pipeline`) would store for them, several times faster.

A day of values (a local day of ``ECOHUB_TIMEZONE``; a CNEMC file is one Beijing day)
goes one of three ways:

- **bulk**, when the store holds no values of its series in that day: quality flags by
  :class:`~ecohub.ingest.bulk_checks.HourlyChecks`, then the observations, their hourly
  and daily rollups and the stations' hourly and daily AQI computed on columns
  (:mod:`ecohub.timeseries.bulk_rollups`) and inserted with COPY or executemany
  (:mod:`ecohub.timeseries.bulk_write`), four days to a transaction
  (:mod:`ecohub.ingest.bulk_writer`);
- **already stored**, when every value is stored unchanged: nothing is written and
  nothing around it re-judged (importing a file again changes nothing; the pipeline
  would re-check such a day with the stored values around it, and could clear the
  flat-line flags of runs only partly inside that window);
- **pipeline**, otherwise (a late file overlapping stored hours, corrected values): the
  day goes through :meth:`Pipeline.process`, which reads the stored values around it
  and recomputes every hour, day and AQI it touches.

A day's flags are final once the next day is checked (its first value judges the last
as a spike; a flat run crossing midnight flags the run), so a day is written after the
next one is checked. Stored rows that new values re-flag (typically the last hours
before the first imported day) are updated, and their hours, days and AQI recomputed by
:func:`ecohub.timeseries.rollups.recompute`, as the pipeline does.

Alarms are not judged: a bulk import of history raises no live alarms (the pipeline
path of overlapping days runs with alarms off too).

While a day is read and checked, the previous ones are written by writer threads (on
PostgreSQL two transactions at once on two connections, on SQLite one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, Engine, and_, bindparam, select, update

from ecohub.clock import utcnow
from ecohub.config import Settings, get_settings
from ecohub.db.engine import write_transaction
from ecohub.db.types import epoch_seconds
from ecohub.ingest.bulk_checks import CODE_SPAN, HourlyChecks, SeriesRows
from ecohub.ingest.bulk_writer import Day, DayOf, DayWriter, utc
from ecohub.ingest.pipeline import Pipeline
from ecohub.quality.flags import INVALID_DATA_FLAGS, QualityFlag
from ecohub.quality.series import Observation
from ecohub.registry.directory import PointDirectory
from ecohub.timeseries.rollups import SeriesHour, recompute
from ecohub.timeseries.tables import observations

Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
_RAW = ("rt", "min", "hour")
_CHUNK = 50_000  # rows per Pipeline.process call on the pipeline path


@dataclass
class BulkResult:
    """What an import did, in values and days."""

    values: int = 0  # values handed in
    written: int = 0  # values stored (new or changed)
    unchanged: int = 0  # values already stored as they are
    flagged: int = 0  # new values stored with a quality flag
    reflagged: int = 0  # stored values whose flags changed
    days_bulk: int = 0
    days_unchanged: int = 0
    days_pipeline: int = 0


class BulkImporter:
    """Imports hourly values of the series ``codes`` (rows index them) into one store,
    day by day; hand in each file's rows with :meth:`add`, then call :meth:`finish`."""

    def __init__(
        self,
        engine: Engine,
        codes: Sequence[str],
        *,
        source: str,
        thresholds_path: str | None = None,
        writers: int | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.engine = engine
        self.codes = tuple(codes)
        self.source = source
        self.directory = PointDirectory(engine, load=True)
        thresholds = thresholds_path if thresholds_path is not None else settings.qc_thresholds
        self.checks = HourlyChecks(
            self.codes, thresholds, lambda point: self.directory.points[point].source
        )
        self.pipeline = Pipeline(
            engine, thresholds_path=thresholds, alarms=False, settings=settings
        )
        self.result = BulkResult()
        self._day_of = DayOf()
        self.writer = DayWriter(
            engine,
            self.codes,
            source=source,
            points=self.directory.points,
            day_of=self._day_of,
            writers=writers,
        )
        self._open: dict[int, list[tuple[SeriesRows, Bools]]] = {}
        self._pending: Day | None = None

    # --- public ---------------------------------------------------------------------

    def add(self, rows: SeriesRows, conflicts: Bools | None = None) -> None:
        """Hand in one file's values (sorted by point, code and time); days that no
        later file can add to (those before this file's first day) are imported."""
        if not len(rows):
            return
        self.result.values += len(rows)
        if conflicts is None:
            conflicts = np.zeros(len(rows), dtype=bool)
        day = self._day_of(rows.ts)
        for start in np.unique(day).tolist():
            mask = day == start
            self._open.setdefault(start, []).append((rows.take(mask), conflicts[mask]))
        earliest = int(day.min())
        for start in sorted(d for d in self._open if d < earliest):
            self._process(self._assemble(start))

    def finish(self) -> BulkResult:
        """Import the days still open, write everything and wait for it."""
        try:
            for start in sorted(self._open):
                self._process(self._assemble(start))
            self._write_pending()
            self._drain()
        finally:
            self.writer.close()
        self.result.written += self.writer.written
        self.result.flagged += self.writer.flagged
        return self.result

    def abort(self) -> None:
        """Stop after an error: the days in flight are finished, the others dropped
        (importing the files again imports them)."""
        self.writer.close()

    # --- one day ----------------------------------------------------------------------

    def _assemble(self, start: int) -> Day:
        """A day's parts as one batch: sorted, the last value of a repeated key kept
        (marked as a conflicting duplicate where the values differ)."""
        parts = self._open.pop(start)
        if len(parts) == 1:
            return Day(start, *parts[0])
        rows = SeriesRows.concat([rows for rows, _ in parts])
        conflicts = np.concatenate([c for _, c in parts])
        order = np.lexsort((np.arange(len(rows)), rows.ts, rows.series))
        rows, conflicts = rows.take(order), conflicts[order]
        same = (rows.series[1:] == rows.series[:-1]) & (rows.ts[1:] == rows.ts[:-1])
        last = np.concatenate([~same, [True]])
        differs = same & (rows.value[1:] != rows.value[:-1])
        # A key repeated with another value: its kept (last) row carries the conflict.
        group = np.cumsum(np.concatenate([[True], ~same])) - 1
        conflicted = np.zeros(group[-1] + 1, dtype=bool)
        conflicted[group[1:][differs]] = True
        conflicts = conflicts | conflicted[group]
        return Day(start, rows.take(last), conflicts[last])

    def _process(self, day: Day) -> None:
        stored = self._stored_in_day(day)
        if not len(stored.ts):
            self._checked(day)
            self.result.days_bulk += 1
        elif _all_stored(day.rows, stored):
            # Nothing to write, and nothing re-judged around it: the values after it
            # are checked with the stored ones (importing again changes nothing).
            self._write_pending()
            self.checks.forget()
            self.result.unchanged += len(day.rows)
            self.result.days_unchanged += 1
        else:
            self._through_pipeline(day)
            self.result.days_pipeline += 1

    def _checked(self, day: Day) -> None:
        """Check a day with the kept tails (or the stored windows); settle the previous
        day's flags and write it; keep this day to write after the next one."""
        windows = self.checks.windows(day.rows)
        context = SeriesRows.empty()
        if windows:
            first = min(w.first for w in windows)
            last = max(w.last for w in windows)
            points = [w.point for w in windows]
            stored_rows = self._read_rows(points, first, last, exclude=(day.start, self._next(day)))
            unwritten = self._unwritten()
            unwritten = unwritten.take(np.flatnonzero(np.isin(unwritten.point, points)))
            context = _union(unwritten, stored_rows)
        checked = self.checks.check(day.rows, context, utcnow().timestamp(), day.conflicts)
        day.rows = replace(day.rows, flag=checked.flags)
        stale = self._settle(checked.changed, checked.ranges)
        if len(stale[0]) or stale[1]:
            self._drain()
            self._reflag(*stale)
        self._write_pending()
        self._pending = day

    def _settle(
        self, changed: SeriesRows, ranges: list[tuple[int, int, int, int]]
    ) -> tuple[SeriesRows, list[tuple[int, int, int, int]]]:
        """Apply re-flags to the day waiting to be written; return those of stored rows."""
        pending = self._pending
        if pending is None:
            return changed, ranges
        keys = _keys(pending.rows)
        found = np.searchsorted(keys, _keys(changed)).clip(0, max(len(keys) - 1, 0))
        held = (keys[found] == _keys(changed)) if len(keys) else np.zeros(len(changed), bool)
        flags = pending.rows.flag.copy()
        flags[found[held]] = changed.flag[held]
        stored_ranges = []
        series, ts = pending.rows.series, pending.rows.ts
        for point, code, first, last in ranges:
            mine = np.flatnonzero(series == point * CODE_SPAN + code)
            held_from = int(ts[mine].min()) if len(mine) else last + 1
            if first < held_from:  # the run's stored rows
                stored_ranges.append((point, code, first, min(last, held_from - 1)))
            if held_from > last:
                continue
            inside = mine[(ts[mine] >= first) & (ts[mine] <= last)]
            flags[inside] |= int(QualityFlag.FLAT_LINE)
            # The pipeline recomputes every hour of the range: those without a value
            # get a rollup row without one.
            hours = range(max(first, held_from) // 3600 * 3600, last + 1, 3600)
            pending.empty_hours |= {(point, code, hour) for hour in hours} - {
                (point, code, int(t) // 3600 * 3600) for t in ts[inside]
            }
        pending.rows = replace(pending.rows, flag=flags)
        return changed.take(~held), stored_ranges

    def _reflag(self, rows: SeriesRows, ranges: list[tuple[int, int, int, int]]) -> None:
        """Stored rows re-flagged: their flags updated and their hours, days and AQI
        recomputed, in one transaction (as Pipeline._store does)."""
        now = utcnow()
        dirty: set[SeriesHour] = set()
        with write_transaction(self.engine) as connection:
            if len(rows):
                connection.execute(
                    update(observations)
                    .where(
                        observations.c.point_id == bindparam("p"),
                        observations.c.parameter_code == bindparam("c"),
                        observations.c.interval == "hour",
                        observations.c.ts == bindparam("t"),
                    )
                    .values(quality_flag=bindparam("f"), ingested_at=now),
                    [
                        {"p": p, "c": self.codes[c], "t": utc(t), "f": f}
                        for p, c, t, f in zip(
                            rows.point.tolist(), rows.code.tolist(), rows.ts.tolist(),
                            rows.flag.tolist(), strict=True,
                        )
                    ],
                )  # fmt: skip
                dirty |= {(p, self.codes[c], utc(t - t % 3600)) for p, c, t in _triples(rows)}
            for point, code, first, last in ranges:
                dirty |= self._flag_range(connection, point, self.codes[code], first, last)
            recompute(connection, dirty, self.directory.points, now)
        self.result.reflagged += len(rows)

    def _flag_range(
        self, connection: Connection, point: int, code: str, first: int, last: int
    ) -> set[SeriesHour]:
        connection.execute(
            update(observations)
            .where(
                and_(
                    observations.c.point_id == point,
                    observations.c.parameter_code == code,
                    observations.c.interval == "hour",
                    observations.c.ts >= utc(first),
                    observations.c.ts <= utc(last),
                )
            )
            .values(quality_flag=observations.c.quality_flag.op("|")(int(QualityFlag.FLAT_LINE)))
        )
        return {(point, code, utc(hour)) for hour in range(first - first % 3600, last + 1, 3600)}

    def _through_pipeline(self, day: Day) -> None:
        """A day overlapping stored values: through the pipeline (after everything
        before it is written); the kept tails are no longer those of the store."""
        self._write_pending()
        self._drain()
        self.pipeline.forget_series()
        rows = [
            Observation(p, self.codes[c], "hour", utc(t), v, "N", 0, self.source)
            for p, c, t, v in zip(
                day.rows.point.tolist(), day.rows.code.tolist(), day.rows.ts.tolist(),
                day.rows.value.tolist(), strict=True,
            )
        ]  # fmt: skip
        for start in range(0, len(rows), _CHUNK):
            done = self.pipeline.process(rows[start : start + _CHUNK])
            self.result.written += done.written
            self.result.unchanged += done.unchanged
            self.result.flagged += done.flagged
            self.result.reflagged += done.reflagged
        self.checks.forget()

    # --- writing ----------------------------------------------------------------------

    def _unwritten(self) -> SeriesRows:
        """The rows of days not committed yet (the day waiting and those in flight):
        context for windows, as the store will hold them."""
        days = self.writer.in_flight()
        if self._pending is not None:
            days.append(self._pending)
        return SeriesRows.concat([day.rows for day in days]) if days else SeriesRows.empty()

    def _write_pending(self) -> None:
        day, self._pending = self._pending, None
        if day is not None:
            self._redo(self.writer.submit(day))

    def _drain(self) -> None:
        self._redo(self.writer.drain())

    def _redo(self, failed: list[Day]) -> None:
        """Days that met stored keys after all (a writer got there first) go through
        the pipeline."""
        for day in failed:
            self._drain()
            self._through_pipeline(day)

    def _next(self, day: Day) -> int:
        return int(self._day_of(np.array([day.start + 26 * 3600]))[0])

    def _stored_in_day(self, day: Day) -> _Stored:
        """The stored raw values of the day's points and codes within the day."""
        points = np.unique(day.rows.point).tolist()
        query = (
            select(
                observations.c.point_id,
                observations.c.parameter_code,
                observations.c.interval,
                epoch_seconds(observations.c.ts),
                observations.c.value,
                observations.c.data_flag,
                observations.c.quality_flag,
            )
            .where(
                observations.c.ts >= utc(day.start),
                observations.c.ts < utc(self._next(day)),
                observations.c.parameter_code.in_(self.codes),
                observations.c.interval.in_(_RAW),
                observations.c.point_id.in_(points),
            )
        )  # fmt: skip
        with self.engine.connect() as connection:
            found = connection.execute(query).all()
        return _Stored.of(found, self.codes)

    def _read_rows(
        self, points: list[int], first: int, last: int, exclude: tuple[int, int]
    ) -> SeriesRows:
        """Stored hourly values of ``points`` from ``first`` to ``last`` (inclusive),
        outside ``exclude`` (the day being checked)."""
        query = select(
            observations.c.point_id,
            observations.c.parameter_code,
            observations.c.interval,
            epoch_seconds(observations.c.ts),
            observations.c.value,
            observations.c.data_flag,
            observations.c.quality_flag,
        ).where(
            observations.c.point_id.in_(points),
            observations.c.parameter_code.in_(self.codes),
            observations.c.interval == "hour",
            observations.c.ts >= utc(first),
            observations.c.ts <= utc(last),
        )
        with self.engine.connect() as connection:
            found = _Stored.of(connection.execute(query).all(), self.codes)
        rows = found.rows()
        outside = (rows.ts < exclude[0]) | (rows.ts >= exclude[1])
        return rows.take(np.flatnonzero(outside))


@dataclass(frozen=True)
class _Stored:
    """Stored raw values read back: their interval kinds and rows (sorted)."""

    interval: NDArray[np.object_]
    point: Ints
    code: Ints
    ts: Ints
    value: NDArray[np.float64]
    data_flag: NDArray[np.object_]
    flag: Ints

    @classmethod
    def of(cls, found: Sequence[Sequence[object]], codes: Sequence[str]) -> _Stored:
        index = {code: position for position, code in enumerate(codes)}
        columns = list(zip(*found, strict=True)) if found else [()] * 7
        point, code, interval, ts, value, data_flag, flag = columns
        stored = cls(
            np.array(interval, dtype=object),
            np.array(point, dtype=np.int64),
            np.array([index[c] for c in code], dtype=np.int64),
            np.array(ts, dtype=np.int64),
            np.array([np.nan if v is None else v for v in value], dtype=float),
            np.array(data_flag, dtype=object),
            np.array(flag, dtype=np.int64),
        )
        order = np.lexsort((stored.ts, stored.point * CODE_SPAN + stored.code))
        return cls(*(getattr(stored, name)[order] for name in cls.__dataclass_fields__))

    def rows(self) -> SeriesRows:
        device = np.array([f in INVALID_DATA_FLAGS for f in self.data_flag], dtype=bool)
        return SeriesRows(self.point, self.code, self.ts, self.value, self.flag, device)


def _all_stored(rows: SeriesRows, stored: _Stored) -> bool:
    """Whether every row is stored as an hourly value with the same value and a normal
    data flag (importing it again would change nothing)."""
    hourly = np.flatnonzero((stored.interval == "hour") & (stored.data_flag == "N"))
    keys = _keys(stored.rows().take(hourly))
    if len(keys) < len(rows):
        return False
    wanted = _keys(rows)
    at = np.searchsorted(keys, wanted).clip(0, len(keys) - 1)
    values = stored.value[hourly][at]
    return bool(np.all(keys[at] == wanted) and np.all(values == rows.value))


def _union(first: SeriesRows, second: SeriesRows) -> SeriesRows:
    """Rows of both, one per key (``first``'s where both hold it)."""
    both = SeriesRows.concat([first, second])
    _unique, index = np.unique(_keys(both), return_index=True)
    return both.take(index)


def _keys(rows: SeriesRows) -> Ints:
    """One sortable number per (series, time)."""
    return rows.series * (1 << 34) + rows.ts


def _triples(rows: SeriesRows) -> list[tuple[int, int, int]]:
    return list(zip(rows.point.tolist(), rows.code.tolist(), rows.ts.tolist(), strict=True))
