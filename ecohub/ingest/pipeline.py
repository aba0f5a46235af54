"""The one ingestion pipeline every input goes through: quality-check → store raw →
update rollups, in one transaction per batch.

The doors (HJ 212 gateway, MQTT, HTTP upload, file import) parse their input and
identify the monitoring point; from then on a value is treated the same whatever door it
came in by. A batch is written exactly once: the store's keys make re-sent values
no-ops, so every door can be at-least-once.

The pipeline reads, calls and writes; its two other jobs live apart:

- applying the quality checks to a batch with each series' kept tail:
  :mod:`ecohub.quality.batch` (for late or backfilled values the pipeline reads the
  stored values around them, and re-flags stored neighbours whose flags change);
- deciding when a deferring writer (``rollup_delay`` > 0) recomputes its queued
  rollups: :mod:`ecohub.ingest.schedule`. The queue is in the store, so rollups owed at
  a crash are recomputed at the next start.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, Engine, and_, select, update

from ecohub.clock import hour_start, utcnow
from ecohub.config import Settings, get_settings
from ecohub.db.engine import write_transaction
from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.ingest.schedule import FLUSH_CHUNK_HOURS, RollupSchedule
from ecohub.quality.batch import Checked, Merged, SeriesChecks, SeriesKey, SeriesState
from ecohub.quality.flags import QualityFlag
from ecohub.registry.directory import PointDirectory
from ecohub.timeseries.observations import (
    Observation,
    WriteResult,
    insert_new_rows,
    prepare_batch,
)
from ecohub.timeseries.open_hours import OpenHours
from ecohub.timeseries.queue import (
    count_queued_hours,
    new_queue_token,
    queue_hours,
    take_queue_entries,
)
from ecohub.timeseries.rollups import SeriesHour, recompute
from ecohub.timeseries.rules import rollup_code
from ecohub.timeseries.tables import observations

RAW_INTERVALS = frozenset({"rt", "min", "hour"})
# The data kinds sent while their hour is in progress (an hourly value ends its hour).
STREAMED_INTERVALS = frozenset({"rt", "min"})


@dataclass
class PipelineResult:
    """What one batch did."""

    received: int = 0
    written: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    flagged: int = 0  # stored with at least one quality flag
    reflagged: int = 0  # stored neighbours whose flags changed
    hours_recomputed: int = 0
    hours_queued: int = 0  # deferred to flush_rollups
    alarm_events: int = 0  # alarms opened, escalated or closed
    rollups_pending: bool = False  # flush_rollups left queued hours for the next call

    def as_write_result(self) -> WriteResult:
        return WriteResult(
            received=self.received,
            written=self.written,
            unchanged=self.unchanged,
            duplicates=self.duplicates,
            rejected=self.rejected,
        )


@dataclass
class PreparedBatch:
    """A batch checked by :meth:`Pipeline.prepare`, waiting for :meth:`Pipeline.commit`."""

    now: dt.datetime
    result: PipelineResult
    rejected: list[Rejected]  # input rejected by the door or by validation
    unique: list[Observation]
    # The tails this batch replaced, as they were before it (filled while it is checked).
    saved_state: dict[SeriesKey, SeriesState | None]
    checked: Checked | None = None


class Pipeline:
    """Quality control, storage and rollups of observation batches on one store."""

    def __init__(
        self,
        engine: Engine,
        *,
        thresholds_path: str | None = None,
        alarms: bool | None = None,
        rollup_delay: float = 0.0,
        current_hour_refresh: float | None = None,
        settings: Settings | None = None,
    ) -> None:
        """``rollup_delay``: 0 recomputes the rollups in every batch's transaction;
        more defers them, and the hour in progress is then recomputed every
        ``current_hour_refresh`` seconds (default: the setting; 0: with the other hours)
        until it ends (see :mod:`ecohub.ingest.schedule`)."""
        from ecohub.alarms.evaluate import AlarmEvaluator

        self.engine = engine
        settings = settings or get_settings()
        enabled = settings.alarms_enabled if alarms is None else alarms
        self.alarms = AlarmEvaluator(engine, settings) if enabled else None
        self.directory = PointDirectory(engine)
        self.checks = SeriesChecks(
            thresholds_path if thresholds_path is not None else settings.qc_thresholds,
            lambda point_id: self.directory.points[point_id].source,
        )
        self.rollup_delay = rollup_delay
        self.schedule = RollupSchedule(
            rollup_delay,
            settings.current_hour_refresh if current_hour_refresh is None else current_hour_refresh,
        )
        # Deferred rollups: the hours this writer queued since they were last recomputed,
        # the token of its queue entries, and its memory of the hours it writes.
        self._queued: set[SeriesHour] = set()
        self.queue_token = new_queue_token()
        self.open_hours = OpenHours() if rollup_delay > 0 else None
        self._pending: _Pending | None = None

    @property
    def state(self) -> dict[SeriesKey, SeriesState]:
        """Each series' kept tail (see :class:`ecohub.quality.batch.SeriesChecks`)."""
        return self.checks.state

    # --- public ---------------------------------------------------------------------

    def process(
        self,
        rows: Iterable[Observation],
        rejected: Sequence[Rejected] = (),
        *,
        now: dt.datetime | None = None,
    ) -> PipelineResult:
        """Check, store and roll up one batch; rejected input goes to the quarantine in
        the same transaction. Returns the counts."""
        return self.commit(self.prepare(rows, rejected, now=now))

    def prepare(
        self,
        rows: Iterable[Observation],
        rejected: Sequence[Rejected] = (),
        *,
        now: dt.datetime | None = None,
        before_reading: Callable[[], None] | None = None,
    ) -> PreparedBatch:
        """The first half of :meth:`process`: validate and quality-check a batch, and keep
        its series' tails. Reads the store only for series whose kept tail does not
        reach the new values, after calling ``before_reading`` (a writer that commits
        the previous batch meanwhile waits for it there). Must be followed by
        :meth:`commit` of the result before the next batch is prepared."""
        now = now or utcnow()
        rows = list(rows)
        known = self.directory.ids({row.point_id for row in rows})
        conflicts: set[tuple[int, str, str, dt.datetime]] = set()
        unique, invalid, duplicates = prepare_batch(rows, known, conflicts=conflicts)
        result = PipelineResult(
            received=len(rows), duplicates=duplicates, rejected=len(invalid) + len(rejected)
        )
        saved_state: dict[SeriesKey, SeriesState | None] = {}
        batch = PreparedBatch(now, result, [*rejected, *invalid], unique, saved_state)
        if not unique:
            return batch
        try:
            by_series: dict[SeriesKey, list[Observation]] = defaultdict(list)
            for row in unique:
                by_series[row[:3]].append(row)  # (point_id, parameter_code, interval)
            merged = self._merge(by_series, before_reading)
            batch.checked = checked = self.checks.check(merged, unique, conflicts, now, saved_state)
            result.flagged += checked.flagged
            result.reflagged += checked.reflagged
        except BaseException:
            self.checks.restore(saved_state)
            raise
        return batch

    def commit(self, batch: PreparedBatch) -> PipelineResult:
        """The second half of :meth:`process`: store a prepared batch, its quarantined
        input and its rollups (or their queue entries) in one transaction."""
        self._pending = None
        try:
            with write_transaction(self.engine) as connection:
                if batch.rejected:
                    quarantine_rows(connection, batch.rejected)
                if batch.checked is not None:
                    self._store(connection, batch)
            if self._pending is not None:
                self._remember(self._pending)
        except BaseException:
            # The batch was rolled back: forget what it taught us about the series.
            self.checks.restore(batch.saved_state)
            if self.alarms is not None:
                self.alarms.forget()
            raise
        return batch.result

    def forget_series(self) -> None:
        """Drop every kept series tail (the next batches read the store instead)."""
        self.checks.forget()

    def _remember(self, pending: _Pending) -> None:
        """After a batch committed: what it queued, and its values in the open hours."""
        self._queued |= pending.queued
        if self.open_hours is not None:
            self.open_hours.add_inserted(pending.inserted)
            self.open_hours.forget(_hour_keys(pending.stale))

    # --- steps ----------------------------------------------------------------------

    def _store(self, connection: Connection, batch: PreparedBatch) -> None:
        """Write a checked batch and its flat-line ranges; then queue or recompute the
        hours it touched and judge the alarms."""
        assert batch.checked is not None
        now, result, unique = batch.now, batch.result, batch.unique
        inserted, changed, range_flags = (
            batch.checked.inserted,
            batch.checked.changed,
            batch.checked.ranges,
        )
        written, fell_back = insert_new_rows(connection, inserted, changed, now)
        _flag_flat_ranges(connection, range_flags)
        result.written = max(0, written - result.reflagged)
        result.unchanged = len(unique) - result.written
        inserted_hours = _hours_of(inserted)
        stale = _hours_of(changed)  # stored values changed: memory is void
        dirty = inserted_hours | stale
        if fell_back:  # some "new" rows were stored already: trust nothing about them
            stale |= inserted_hours
            inserted = []
        for key, start, end in range_flags:
            if key[2] in RAW_INTERVALS:
                hour = hour_start(start)
                while hour <= end:
                    dirty.add((key[0], rollup_code(key[1]), hour))
                    stale.add((key[0], rollup_code(key[1]), hour))
                    hour += dt.timedelta(hours=1)
        seen = {row.point_id for row in unique}
        if self.rollup_delay > 0:
            # An hour is queued once between two recomputations of it.
            fresh = dirty - self._queued
            queue_hours(connection, fresh, self.queue_token)
            self._pending = _Pending(inserted, stale, fresh)
            result.hours_queued = len(dirty)
            self.schedule.note_queued(dirty, _latest_streamed_hour(inserted, changed), now)
            if self.alarms is not None:  # last seen, back online; the rest at the flush
                result.alarm_events = len(self.alarms.evaluate(connection, [], [], [], seen, now))
            return
        result.hours_recomputed = len(dirty)
        recomputed = recompute(connection, dirty, self.directory.points, now)
        if self.alarms is not None:
            result.alarm_events = len(
                self.alarms.evaluate(
                    connection, recomputed.hours, recomputed.days, recomputed.aqi, seen, now
                )
            )

    def rollups_due(self, *, busy: bool = True) -> bool:
        """Queued rollups are due (see :meth:`RollupSchedule.due`)."""
        return self.schedule.due(busy=busy)

    def rollup_gap(self) -> float:
        """Seconds between two recomputations of the queue (see
        :meth:`RollupSchedule.gap`)."""
        return self.schedule.gap()

    def flush_rollups(
        self,
        *,
        now: dt.datetime | None = None,
        limit: int | None = None,
    ) -> PipelineResult:
        """Recompute queued hours (all, or the ``limit`` oldest), their days and AQI, and
        judge the alarms on them; returns the counts, with ``rollups_pending`` set when
        hours are left (they stay due). The hours leave the queue in the transaction that
        recomputes them.

        With ``limit``, successive calls form a cycle that covers the hours queued when
        it began; hours queued meanwhile wait for the next cycle, :meth:`rollup_gap`
        after this one ends (under load the queue would otherwise refill as fast as it
        drains, and batches and recomputation would alternate for ever). Such a cycle
        leaves the hour in progress queued, unless its refresh is due: loggers keep
        adding to it, and recomputing it at every cycle cost more than all the rest.
        Without ``limit`` every queued hour is taken."""
        now = now or utcnow()
        result = PipelineResult()
        schedule = self.schedule
        started = schedule.start_flush()
        take = None
        try:
            with write_transaction(self.engine) as connection:
                take, before = schedule.cycle(
                    limit, started, lambda hour: count_queued_hours(connection, hour)
                )
                entries = take_queue_entries(connection, take, before)
                dirty = {(point_id, code, hour) for point_id, code, hour, _t in entries}
                if self.open_hours is not None:
                    # Hours another writer queued (or queued too) may hold its values.
                    shared = {(p, c, h) for p, c, h, t in entries if t != self.queue_token}
                    self.open_hours.forget(_hour_keys(shared))
                self._recompute_queued(dirty, now, result, connection)
            self._queued -= dirty
            if self.open_hours is not None:
                self.open_hours.sweep()
        except BaseException:
            schedule.flush_failed()  # still queued: try again at the next chance
            if self.open_hours is not None:
                self.open_hours.clear()  # it may hold what was rolled back
            if self.alarms is not None:
                self.alarms.forget()
            raise
        finally:
            took = time.monotonic() - started
            schedule.flush_seconds += took
        result.rollups_pending = schedule.flush_done(took, len(dirty), take)
        return result

    def _recompute_queued(
        self,
        dirty: set[SeriesHour],
        now: dt.datetime,
        result: PipelineResult,
        connection: Connection,
    ) -> None:
        if not dirty:
            return
        if any(point_id not in self.directory.points for point_id, _c, _h in dirty):
            self.directory.refresh()
        dirty = {key for key in dirty if key[0] in self.directory.points}
        recomputed = recompute(connection, dirty, self.directory.points, now, self.open_hours)
        result.hours_recomputed = len(dirty)
        if self.alarms is not None:
            result.alarm_events = len(
                self.alarms.evaluate(
                    connection, recomputed.hours, recomputed.days, recomputed.aqi, (), now
                )
            )

    def flush_rollups_between(
        self,
        batch_waiting: Callable[[], bool],
        *,
        chunk: int | None = None,
    ) -> None:
        """Recompute the queue in chunks of hours, one transaction each, until it is
        empty or ``batch_waiting()`` says a batch of raw values is waiting: a logger's
        answer then waits for at most one chunk, not for the whole queue. Chunks take
        about FLUSH_CHUNK_SECONDS unless ``chunk`` fixes their number of hours."""
        while True:
            result = self.flush_rollups(limit=chunk or self.schedule.chunk_hours())
            if not result.rollups_pending or batch_waiting():
                return

    def flush_all_rollups(
        self, *, chunk: int = FLUSH_CHUNK_HOURS[1], now: dt.datetime | None = None
    ) -> None:
        """Recompute every queued hour, the hour in progress included, in transactions
        of at most ``chunk`` hours: a writer stopping after a busy spell has tens of
        thousands queued, and recomputing them in one transaction took the gateway's
        writer process 100 MB more at shutdown than at any time before."""
        self.schedule.begin_full_cycle()  # over every hour queued now, the hour in progress too
        while self.flush_rollups(limit=chunk, now=now).rollups_pending:
            pass

    def _merge(
        self,
        by_series: dict[SeriesKey, list[Observation]],
        before_reading: Callable[[], None] | None = None,
    ) -> list[Merged]:
        """Each series' new rows with their context: the kept tail, or the stored rows
        around them (read after calling ``before_reading``)."""
        merged, windows = self.checks.split(by_series)
        if windows:
            if before_reading is not None:
                before_reading()
            with self.engine.connect() as connection:
                stored = self._read_windows(connection, windows)
            window = self.checks.window
            merged.extend(window(key, rows, stored.get(key, [])) for key, rows in windows.items())
        return merged

    def _read_windows(
        self, connection: Connection, windows: dict[SeriesKey, list[Observation]]
    ) -> dict[SeriesKey, list[Observation]]:
        """Stored rows around each series' new rows: for each point and interval kind,
        from its earliest new value minus the checks' reach to its latest plus the reach,
        read for up to _WINDOW_CHUNK points with nearby windows in one query (a gateway's
        first batch after a start has a window for every series)."""
        spans: dict[tuple[str, int], tuple[dt.datetime, dt.datetime, set[str]]] = {}
        for key, rows in windows.items():
            reach = dt.timedelta(seconds=self.checks.window_seconds(key))
            first, last = rows[0].ts - reach, rows[-1].ts + reach
            before = spans.get((key[2], key[0]))
            if before is not None:
                first, last = min(first, before[0]), max(last, before[1])
                before[2].add(key[1])
                spans[(key[2], key[0])] = (first, last, before[2])
            else:
                spans[(key[2], key[0])] = (first, last, {key[1]})
        found: dict[SeriesKey, list[Observation]] = defaultdict(list)
        for interval, group in _window_groups(spans):
            start = min(spans[(interval, point_id)][0] for point_id in group)
            end = max(spans[(interval, point_id)][1] for point_id in group)
            codes = sorted({code for point_id in group for code in spans[(interval, point_id)][2]})
            query = select(
                observations.c.point_id,
                observations.c.parameter_code,
                observations.c.ts,
                observations.c.value,
                observations.c.data_flag,
                observations.c.quality_flag,
                observations.c.source,
            ).where(
                observations.c.point_id.in_(group),
                observations.c.interval == interval,
                observations.c.parameter_code.in_(codes),
                observations.c.ts >= start,
                observations.c.ts <= end,
            )
            for point_id, code, ts, value, data_flag, quality_flag, source in connection.execute(
                query
            ):
                first, last, wanted = spans[(interval, point_id)]
                if code in wanted and first <= ts <= last:
                    found[(point_id, code, interval)].append(
                        Observation(
                            point_id, code, interval, ts, value, data_flag, quality_flag, source
                        )
                    )
        return found


class _Pending(NamedTuple):
    """What a deferring writer's batch changes in its memory once committed."""

    inserted: list[Observation]
    stale: set[SeriesHour]
    queued: set[SeriesHour]


def _hours_of(rows: Iterable[Observation]) -> set[SeriesHour]:
    """The series hours that ``rows`` (raw values) roll up into."""
    hours: dict[dt.datetime, dt.datetime] = {}  # a batch repeats few instants and codes
    series: dict[str, str] = {}
    found = set()
    for row in rows:
        if row.interval not in RAW_INTERVALS:
            continue
        hour = hours.get(row.ts)
        if hour is None:
            hour = hours[row.ts] = hour_start(row.ts)
        code = series.get(row.parameter_code)
        if code is None:
            code = series[row.parameter_code] = rollup_code(row.parameter_code)
        found.add((row.point_id, code, hour))
    return found


def _latest_streamed_hour(*batches: Iterable[Observation]) -> dt.datetime | None:
    """The start of the latest hour of real-time or minute values among ``batches``."""
    latest = None
    for rows in batches:
        for row in rows:
            if row.interval in STREAMED_INTERVALS and (latest is None or row.ts > latest):
                latest = row.ts
    return None if latest is None else hour_start(latest)


def _hour_keys(hours: Iterable[SeriesHour]) -> list[tuple[int, str, int]]:
    return [(point_id, code, int(hour.timestamp())) for point_id, code, hour in hours]


_WINDOW_CHUNK = 500


def _window_groups(
    spans: dict[tuple[str, int], tuple[dt.datetime, dt.datetime, set[str]]],
) -> Iterator[tuple[str, list[int]]]:
    """(interval kind, point ids) to read together: points in order of their window's
    start, a new group where a window starts after the group's windows end (so one late
    value does not stretch a query over months) or the group is full."""
    by_interval: dict[str, list[tuple[dt.datetime, dt.datetime, int]]] = defaultdict(list)
    for (interval, point_id), (first, last, _codes) in spans.items():
        by_interval[interval].append((first, last, point_id))
    for interval, items in by_interval.items():
        items.sort()
        group: list[int] = []
        group_end: dt.datetime | None = None
        for first, last, point_id in items:
            if group and (len(group) >= _WINDOW_CHUNK or (group_end and first > group_end)):
                yield interval, group
                group, group_end = [], None
            group.append(point_id)
            group_end = last if group_end is None else max(group_end, last)
        if group:
            yield interval, group


def _flag_flat_ranges(
    connection: Connection, ranges: Sequence[tuple[SeriesKey, dt.datetime, dt.datetime]]
) -> None:
    """Add the flat-line flag to stored rows of runs that now qualify."""
    for key, start, end in ranges:
        connection.execute(
            update(observations)
            .where(
                and_(
                    observations.c.point_id == key[0],
                    observations.c.parameter_code == key[1],
                    observations.c.interval == key[2],
                    observations.c.ts >= start,
                    observations.c.ts <= end,
                )
            )
            .values(quality_flag=observations.c.quality_flag.op("|")(int(QualityFlag.FLAT_LINE)))
        )
