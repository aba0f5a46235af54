"""The one ingestion pipeline every input goes through: quality-check → store raw →
update rollups, in one transaction per batch.

The doors (HJ 212 gateway, MQTT, HTTP upload, file import) parse their input and
identify the monitoring point; from then on a value is treated the same whatever door it
came in by. A batch is written exactly once: the store's keys make re-sent values
no-ops, so every door can be at-least-once.

A long-running writer (the gateway's, the MQTT subscriber's) may defer the rollups:
with ``rollup_delay`` > 0 a batch only queues the hours it touched, in its own
transaction, and :meth:`Pipeline.flush_rollups` recomputes every queued hour at most
that many seconds later — once, however many batches touched it meanwhile. Loggers
that report every minute touch each hour sixty times; recomputing it once per delay
instead of once per batch is what lets the gateway answer quickly under load. The hour
still in progress waits for a refresh every ``current_hour_refresh`` seconds, or for
data of a later hour, which end it. The queue is in the store, so rollups owed at a
crash are recomputed at the next start.

Quality control needs each value's neighbours (spikes, flat lines). For data arriving in
time order the pipeline keeps, per series, the last few stored values and the start of
the current constant run; for late, re-sent or backfilled values it reads the stored
values around them, re-checks the whole window and re-flags stored neighbours whose
flags change.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from sqlalchemy import Connection, Engine, and_, select, update

from ecohub.analytics.rollups import rollup_code
from ecohub.config import get_settings
from ecohub.quality import checks
from ecohub.quality.flags import QualityFlag
from ecohub.quality.thresholds import (
    EARLIEST_PLAUSIBLE,
    FLOW_CODES,
    FUTURE_TOLERANCE,
    Thresholds,
    thresholds_for,
)
from ecohub.registry.models import MonitoringPoint, Site, SiteKind
from ecohub.store.db import utcnow, write_transaction
from ecohub.store.observations import (
    Observation,
    WriteResult,
    insert_new_rows,
    prepare_batch,
)
from ecohub.store.open_hours import OpenHours
from ecohub.store.quarantine import Rejected, quarantine_rows
from ecohub.store.rollups import (
    PointInfo,
    SeriesHour,
    count_queued_hours,
    hour_start,
    new_queue_token,
    queue_hours,
    recompute,
    take_queue_entries,
)
from ecohub.store.tables import observations

SeriesKey = tuple[int, str, str]  # point id, parameter code, interval kind
_timestamp = operator.attrgetter("ts")
_value = operator.attrgetter("value")
_data_flag = operator.attrgetter("data_flag")
_message_key = operator.itemgetter(0, 2, 3)  # point id, interval kind, timestamp
RAW_INTERVALS = frozenset({"rt", "min", "hour"})
# The data kinds sent while their hour is in progress (an hourly value ends its hour).
STREAMED_INTERVALS = frozenset({"rt", "min"})
# Plain ints for the per-row loops (an enum member's int() costs more than the bit test).
_SPIKE = int(QualityFlag.SPIKE)
_FLAT_LINE = int(QualityFlag.FLAT_LINE)
_CONFLICTING_DUPLICATE = int(QualityFlag.CONFLICTING_DUPLICATE)
# Between batches the queue is recomputed in transactions of about FLUSH_CHUNK_SECONDS
# (a waiting batch, and the loggers' answers, wait for at most one), sized from the time
# the previous chunks took per hour, within FLUSH_CHUNK_HOURS.
FLUSH_CHUNK_SECONDS = 0.05
FLUSH_CHUNK_HOURS = (50, 1000)
FIRST_FLUSH_CHUNK_HOURS = 100
# Recomputing the queue may take at most about a fifth of a deferring writer's time
# (see Pipeline.rollup_gap), and the hourly figures lag by at most a minute plus one
# recomputation.
ROLLUP_WORK_FACTOR = 4.0
MAX_ROLLUP_GAP = 60.0


class SeriesState(NamedTuple):
    """The tail of a series kept between batches: its first value of the current
    constant run and its last two values (as stored, with their flags). A named tuple:
    each batch replaces the tails of thousands of series."""

    rows: list[Observation]  # distinct, oldest first, at most 3
    run_start: int = 0  # index in rows of the first value of the current constant run
    run_flagged: bool = False


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


@dataclass(slots=True)
class _Merged:
    """One series' rows to check: stored context and new values, oldest first.

    A series that continues its kept tail (``streaming``) has its new rows from
    ``first_new`` on, none of them at a stored key: the per-row lists stay None (most
    series of a batch; building them was a measurable share of the writer's time)."""

    key: SeriesKey
    rows: list[Observation]
    first_new: int  # rows before it are stored context
    streaming: bool  # context is the kept tail (True) or a window read from the store
    new: list[bool] | None = None  # window: which rows are new
    previous: list[float] | None = None  # window: stored value at a new row's key (NaN: none)
    replaced: list[bool] | None = None  # window: a new row at a key the store already held
    run_start: int = 0  # streaming: index of the kept run's first value
    run_flagged: bool = False


@dataclass
class PreparedBatch:
    """A batch checked by :meth:`Pipeline.prepare`, waiting for :meth:`Pipeline.commit`."""

    now: dt.datetime
    result: PipelineResult
    rejected: list[Rejected]  # input rejected by the door or by validation
    unique: list[Observation]
    # The tails this batch replaced, as they were before it (filled while it is checked).
    saved_state: dict[SeriesKey, SeriesState | None]
    checked: _Checked | None = None


class _Checked(NamedTuple):
    """What the checks decided for a batch."""

    ranges: list[tuple[SeriesKey, dt.datetime, dt.datetime]]  # stored flat-line runs
    inserted: list[Observation]  # new rows at keys the store did not hold
    changed: list[Observation]  # rows replacing stored ones


@dataclass
class PointDirectory:
    """Monitoring points as the pipeline needs them, read from the registry on demand."""

    engine: Engine
    points: dict[int, PointInfo] = field(default_factory=dict)

    def refresh(self) -> None:
        query = select(
            MonitoringPoint.id,
            MonitoringPoint.outlet_id,
            Site.kind,
            MonitoringPoint.interval_seconds,
            MonitoringPoint.minute_interval_seconds,
        ).outerjoin(Site, MonitoringPoint.site_id == Site.id)
        with self.engine.connect() as connection:
            self.points = {
                point_id: PointInfo(
                    id=point_id,
                    ambient_air=kind == SiteKind.AIR.value,
                    source=outlet_id is not None or kind == SiteKind.POLLUTION_SOURCE.value,
                    interval_seconds=interval or 60,
                    minute_interval_seconds=minute_interval or 600,
                )
                for point_id, outlet_id, kind, interval, minute_interval in connection.execute(
                    query
                )
            }

    def ids(self, wanted: Iterable[int] = ()) -> set[int]:
        """Known point ids; re-reads the registry when one of ``wanted`` is unknown."""
        if any(point_id not in self.points for point_id in wanted):
            self.refresh()
        return set(self.points)


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
    ) -> None:
        """``rollup_delay``: 0 recomputes the rollups in every batch's transaction;
        more defers them, and the hour in progress is then recomputed every
        ``current_hour_refresh`` seconds (default: the setting; 0: with the other hours)
        until it ends (see the module docstring)."""
        from ecohub.alarms.evaluate import AlarmEvaluator

        self.engine = engine
        settings = get_settings()
        enabled = settings.alarms_enabled if alarms is None else alarms
        self.alarms = AlarmEvaluator(engine, settings) if enabled else None
        self.directory = PointDirectory(engine)
        self.thresholds_path = (
            thresholds_path if thresholds_path is not None else get_settings().qc_thresholds
        )
        self.state: dict[SeriesKey, SeriesState] = {}
        self._thresholds: dict[str, Thresholds] = {}
        self._settings: dict[tuple[str, bool], int] = {}  # (code, source point) → row
        self._settings_rows: list[tuple[float, ...]] = []
        self._settings_table = np.empty((0, 9))
        self.rollup_delay = rollup_delay
        self.current_hour_refresh = (
            settings.current_hour_refresh if current_hour_refresh is None else current_hour_refresh
        )
        # Deferred rollups: the hours this writer queued since they were last recomputed,
        # the token of its queue entries, and its memory of the hours it writes.
        self._queued: set[SeriesHour] = set()
        self.queue_token = new_queue_token()
        self.open_hours = OpenHours() if rollup_delay > 0 else None
        self._pending: _Pending | None = None
        # Time spent recomputing since the queue was last drained, and by the last
        # complete flush (see rollup_gap).
        self._flush_seconds = 0.0
        self._last_flush_seconds = 0.0
        self._cycle_left: int | None = None  # hours left in the current flush cycle
        self._cycle_began = 0.0
        self._seconds_per_hour = 0.0  # recomputation time per queued hour, smoothed
        # When the oldest queued hour was queued; -inf at start: an earlier run may
        # have left hours queued (a crash), so the first flush is due at once.
        self._queued_since: float | None = -math.inf if rollup_delay > 0 else None
        # The hour in progress: the start of the latest hour of real-time or minute data
        # this writer stored (never after the present hour), and when an hour from it on
        # was first queued since the last cycle that took those hours too.
        self._frontier: dt.datetime | None = None
        self._current_since: float | None = None
        self._cycle_before: dt.datetime | None = None  # the running cycle takes hours before
        self._queued_in_cycle = False  # hours due were queued while a cycle ran

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
            batch.checked = self._check(merged, unique, conflicts, now, result, saved_state)
        except BaseException:
            self._restore(saved_state)
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
            self._restore(batch.saved_state)
            if self.alarms is not None:
                self.alarms.forget()
            raise
        return batch.result

    def forget_series(self) -> None:
        """Drop every kept series tail (the next batches read the store instead)."""
        self.state.clear()

    def _restore(self, saved_state: dict[SeriesKey, SeriesState | None]) -> None:
        for key, state in saved_state.items():
            if state is None:
                self.state.pop(key, None)
            else:
                self.state[key] = state

    def _remember(self, pending: _Pending) -> None:
        """After a batch committed: what it queued, and its values in the open hours."""
        self._queued |= pending.queued
        if self.open_hours is not None:
            self.open_hours.add_inserted(pending.inserted)
            self.open_hours.forget(_hour_keys(pending.stale))

    # --- steps ----------------------------------------------------------------------

    def _thresholds_of(self, code: str) -> Thresholds:
        found = self._thresholds.get(code)
        if found is None:
            found = self._thresholds[code] = thresholds_for(code, self.thresholds_path)
        return found

    def _store(self, connection: Connection, batch: PreparedBatch) -> None:
        assert batch.checked is not None
        now, result, unique = batch.now, batch.result, batch.unique
        inserted, changed, range_flags = (
            batch.checked.inserted,
            batch.checked.changed,
            batch.checked.ranges,
        )
        written, fell_back = insert_new_rows(connection, inserted, changed, now)
        for key, start, end in range_flags:
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
                .values(
                    quality_flag=observations.c.quality_flag.op("|")(int(QualityFlag.FLAT_LINE))
                )
            )
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
            self._note_queued(dirty, _latest_streamed_hour(inserted, changed), now)
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

    def _note_queued(
        self, dirty: set[SeriesHour], latest: dt.datetime | None, now: dt.datetime
    ) -> None:
        """Start the clocks of the hours just queued: those before the hour in progress
        are due a gap later; those from it on at the next refresh, or once the data
        moves on to a later hour (which ends the hour in progress)."""
        clock = time.monotonic()
        if latest is not None:
            latest = min(latest, hour_start(now))  # a logger's clock ahead moves nothing
            if self._frontier is None or latest > self._frontier:
                self._frontier = latest
                if self._current_since is not None:  # the hour in progress has ended
                    since = self._current_since
                    if self._queued_since is None or since < self._queued_since:
                        self._queued_since = since
                    self._current_since = None
                    if self._cycle_left is not None:
                        self._queued_in_cycle = True
        frontier = self._frontier if self.current_hour_refresh > 0 else None
        for _point_id, _code, hour in dirty:
            if frontier is None or hour < frontier:
                if self._queued_since is None:
                    self._queued_since = clock
                if self._cycle_left is not None:
                    self._queued_in_cycle = True
            elif self._current_since is None:
                self._current_since = clock

    def _refresh_due(self, clock: float) -> bool:
        """The hour in progress is due for recomputation (always, when it is not set
        apart: ``current_hour_refresh`` 0)."""
        return (
            self._frontier is None
            or self.current_hour_refresh <= 0
            or (
                self._current_since is not None
                and clock - self._current_since >= self.current_hour_refresh
            )
        )

    def rollups_due(self, *, busy: bool = True) -> bool:
        """Queued hours have waited :meth:`rollup_gap` seconds, or only ``rollup_delay``
        when the writer is not ``busy`` (no batch waiting: nothing to protect), or may
        be left from an earlier run or an unfinished flush.

        A cycle under way while batches keep coming takes its share of the writer's
        time, 1 / (1 + ROLLUP_WORK_FACTOR), and no more: its next chunk is due once the
        chunks so far are that share of the time since the cycle began. (Otherwise
        chunks and batches alternated one for one, and while a cycle lasted the writer
        kept up with about half the load.)"""
        now = time.monotonic()
        if self._queued_since is None:
            return self._current_since is not None and self._refresh_due(now)
        if busy and self._cycle_left is not None:
            return self._flush_seconds <= (now - self._cycle_began) / (1 + ROLLUP_WORK_FACTOR)
        gap = self.rollup_gap() if busy else self.rollup_delay
        return now - self._queued_since >= gap or (
            self._current_since is not None and self._refresh_due(now)
        )

    def rollup_gap(self) -> float:
        """Seconds between two recomputations of the queue: ``rollup_delay``, stretched
        so that recomputing takes at most about 1 / (1 + ROLLUP_WORK_FACTOR) of the
        writer's time (capped at MAX_ROLLUP_GAP). Under a load the recomputation cannot
        follow, each recomputation then covers more values per hour, instead of the
        loggers' answers waiting for it."""
        stretched = ROLLUP_WORK_FACTOR * self._last_flush_seconds
        return max(self.rollup_delay, min(MAX_ROLLUP_GAP, stretched))

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
        self._queued_since = None
        started = time.monotonic()
        take = None
        try:
            with write_transaction(self.engine) as connection:
                if limit is None:
                    self._cycle_before = None
                    self._current_since = None
                elif self._cycle_left is None:
                    self._cycle_before = self._frontier
                    if self._refresh_due(started):
                        self._cycle_before = None
                        self._current_since = None
                    self._cycle_left = count_queued_hours(connection, self._cycle_before)
                    self._cycle_began = started
                    self._queued_in_cycle = False
                if limit is not None:
                    take = max(1, min(limit, self._cycle_left or 0))
                entries = take_queue_entries(connection, take, self._cycle_before)
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
            self._queued_since = -math.inf  # still queued: try again at the next chance
            if self._cycle_before is None:
                self._current_since = -math.inf  # the hour in progress too
            self._cycle_left = None
            if self.open_hours is not None:
                self.open_hours.clear()  # it may hold what was rolled back
            if self.alarms is not None:
                self.alarms.forget()
            raise
        finally:
            took = time.monotonic() - started
            self._flush_seconds += took
        if dirty:
            # Smoothed, so that one slow chunk (a cold cache, a busy disk) does not
            # shrink the next ones to nothing.
            self._seconds_per_hour = 0.7 * self._seconds_per_hour + 0.3 * took / len(dirty)
        more = take is not None and len(dirty) >= take  # the queue may hold more
        if self._cycle_left is not None:
            self._cycle_left -= len(dirty)
        if more and self._cycle_left is not None and self._cycle_left > 0:
            result.rollups_pending = True
            self._queued_since = -math.inf
            return result
        # The cycle is complete: it took _flush_seconds in all.
        self._last_flush_seconds, self._flush_seconds = self._flush_seconds, 0.0
        self._cycle_left = None
        if self._queued_in_cycle:
            # Queued during the cycle: due a gap after it ends. Counting the gap from
            # its start let a cycle spread between batches over longer than the gap
            # start the next one at once, and recomputation took half the writer's time.
            self._queued_since = time.monotonic()
            self._queued_in_cycle = False
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
            result = self.flush_rollups(limit=chunk or self._chunk_hours())
            if not result.rollups_pending or batch_waiting():
                return

    def flush_all_rollups(
        self, *, chunk: int = FLUSH_CHUNK_HOURS[1], now: dt.datetime | None = None
    ) -> None:
        """Recompute every queued hour, the hour in progress included, in transactions
        of at most ``chunk`` hours: a writer stopping after a busy spell has tens of
        thousands queued, and recomputing them in one transaction took the gateway's
        writer process 100 MB more at shutdown than at any time before."""
        self._cycle_left = None  # a new cycle, over every hour queued now
        self._current_since = -math.inf  # the hour in progress is due too
        while self.flush_rollups(limit=chunk, now=now).rollups_pending:
            pass

    def _chunk_hours(self) -> int:
        least, most = FLUSH_CHUNK_HOURS
        if self._seconds_per_hour <= 0:
            return FIRST_FLUSH_CHUNK_HOURS  # unmeasured: a small one, to learn from
        return max(least, min(most, int(FLUSH_CHUNK_SECONDS / self._seconds_per_hour)))

    def _merge(
        self,
        by_series: dict[SeriesKey, list[Observation]],
        before_reading: Callable[[], None] | None = None,
    ) -> list[_Merged]:
        merged: list[_Merged] = []
        windows: dict[SeriesKey, list[Observation]] = {}
        get_state = self.state.get
        for key, rows in by_series.items():
            if len(rows) > 1:
                rows.sort(key=_timestamp)
            state = get_state(key)
            if state is not None and rows[0].ts > state.rows[-1].ts:
                context = state.rows
                # Positional: this runs once per series of every batch.
                merged.append(
                    _Merged(
                        key,
                        [*context, *rows],
                        len(context),
                        True,
                        None,
                        None,
                        None,
                        state.run_start,
                        state.run_flagged,
                    )
                )
            else:
                windows[key] = rows
        if windows:
            if before_reading is not None:
                before_reading()
            with self.engine.connect() as connection:
                stored = self._read_windows(connection, windows)
            for key, rows in windows.items():
                by_ts: dict[dt.datetime, tuple[Observation, bool, float, bool]] = {
                    row.ts: (row, False, math.nan, False) for row in stored.get(key, [])
                }
                for row in rows:
                    before = by_ts.get(row.ts)
                    previous = math.nan
                    if before is not None:
                        previous = math.nan if before[0].value is None else before[0].value
                    by_ts[row.ts] = (row, True, previous, before is not None)
                ordered = [by_ts[ts] for ts in sorted(by_ts)]
                new = [item[1] for item in ordered]
                merged.append(
                    _Merged(
                        key,
                        [item[0] for item in ordered],
                        new.index(True),
                        False,
                        new=new,
                        previous=[item[2] for item in ordered],
                        replaced=[item[3] for item in ordered],
                    )
                )
        return merged

    def _window_seconds(self, code: str) -> float:
        thresholds = self._thresholds_of(code)
        flat = (thresholds.flat_hours or 0) * 3600
        return max(flat, checks.SPIKE_MAX_GAP_SECONDS)

    def _read_windows(
        self, connection: Connection, windows: dict[SeriesKey, list[Observation]]
    ) -> dict[SeriesKey, list[Observation]]:
        """Stored rows around each series' new rows: for each point and interval kind,
        from its earliest new value minus the checks' reach to its latest plus the reach,
        read for up to _WINDOW_CHUNK points with nearby windows in one query (a gateway's
        first batch after a start has a window for every series)."""
        spans: dict[tuple[str, int], tuple[dt.datetime, dt.datetime, set[str]]] = {}
        for key, rows in windows.items():
            reach = dt.timedelta(seconds=self._window_seconds(key[1]))
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

    def _check(
        self,
        merged: list[_Merged],
        unique: list[Observation],
        conflicts: set[tuple[int, str, str, dt.datetime]],
        now: dt.datetime,
        result: PipelineResult,
        saved: dict[SeriesKey, SeriesState | None],
    ) -> _Checked:
        """Run every check over all series at once; returns the stored ranges to mark as
        flat lines and the rows to write: new ones, and stored ones that are replaced or
        re-flagged. Each series' tail is kept for the next batch (the one it replaces
        goes to ``saved``)."""
        flat_rows = [row for item in merged for row in item.rows]
        n = len(flat_rows)
        if n == 0:
            return _Checked([], [], [])
        # Columns are built once over all rows (a batch holds thousands of short series)
        # and each series' thresholds are spread over its rows.
        lengths = [len(item.rows) for item in merged]
        sid = np.repeat(np.arange(len(merged), dtype=np.int64), lengths)
        rows_of_series = [self._check_settings(item.key) for item in merged]
        if len(self._settings_table) != len(self._settings_rows):
            self._settings_table = np.array(self._settings_rows, dtype=float)
        settings = self._settings_table[np.repeat(rows_of_series, lengths)]
        step, ratio, floor, flat_seconds, tolerance, valid_min, valid_max = settings[:, :7].T
        allow_negative = settings[:, 7].astype(bool)
        concentration = settings[:, 8].astype(bool)
        ts = np.array(_epoch_seconds(flat_rows), dtype=float)
        values = np.array(list(map(_value, flat_rows)), dtype=float)  # None → NaN
        previous = np.full(n, math.nan)  # NaN but in windows read from the store
        position = 0
        for item in merged:
            if item.previous is not None:
                previous[position : position + len(item.rows)] = item.previous
            position += len(item.rows)
        data_flags = list(map(_data_flag, flat_rows))

        # Each concentration's message flow (the zero-flow check reads no other row's).
        flow = self._message_flow(unique)
        message_flow = np.full(n, math.nan)
        if flow:
            wanted = np.flatnonzero(concentration)
            keys = map(_message_key, map(flat_rows.__getitem__, wanted.tolist()))
            message_flow[wanted] = np.array(list(map(flow.get, keys)), dtype=float)  # None → NaN
        static = np.zeros(n, dtype=np.int64)
        static |= checks.device_flag(data_flags) * int(QualityFlag.DEVICE_FLAG)
        static |= checks.out_of_range(values, valid_min, valid_max) * int(QualityFlag.RANGE)
        static |= checks.negative(values, allow_negative) * int(QualityFlag.NEGATIVE)
        now_s = now.timestamp()
        static |= checks.future_time(ts, now_s, FUTURE_TOLERANCE.total_seconds()) * int(
            QualityFlag.FUTURE_TIME
        )
        static |= checks.past_time(ts, EARLIEST_PLAUSIBLE.timestamp()) * int(QualityFlag.PAST_TIME)
        static |= checks.zero_flow(concentration, message_flow) * int(QualityFlag.ZERO_FLOW)
        static |= checks.conflicting_duplicates(values, previous) * int(
            QualityFlag.CONFLICTING_DUPLICATE
        )
        # Values already flagged invalid by a point check do not take part in the series
        # checks (a fault value must not make its neighbours look like a spike).
        series_values = np.where(static & ~int(QualityFlag.CONFLICTING_DUPLICATE), np.nan, values)
        spike = checks.spikes(sid, ts, series_values, step, ratio, floor)
        flat = checks.flat_lines(sid, ts, series_values, tolerance, flat_seconds)
        spike_array = spike * int(QualityFlag.SPIKE)
        flat_array = flat * int(QualityFlag.FLAT_LINE)
        new_bits = (static | spike_array | flat_array).tolist()
        spike_bits = spike_array.tolist()
        flat_bits = flat_array.tolist()
        checked = series_values.tolist()
        tolerances = tolerance.tolist()

        inserted: list[Observation] = []
        changed: list[Observation] = []
        ranges: list[tuple[SeriesKey, dt.datetime, dt.datetime]] = []
        position = 0
        for item in merged:
            rows = item.rows
            count = len(rows)
            first_new = item.first_new
            new, replaced = item.new, item.replaced
            for offset in range(count):
                row = rows[offset]
                index = position + offset
                if offset >= first_new if new is None else new[offset]:
                    bits = new_bits[index]
                    if conflicts and row[:4] in conflicts:
                        bits |= _CONFLICTING_DUPLICATE
                    if bits:
                        result.flagged += 1
                    if bits != row.quality_flag:
                        row = row._replace(quality_flag=bits)
                    (changed if replaced is not None and replaced[offset] else inserted).append(row)
                    continue
                if new is None:
                    # The kept tail (most stored rows of a batch, so not a call): a
                    # flat-line flag may be added; only its last row, whose right
                    # neighbour just came, is re-judged as a spike.
                    bits = row.quality_flag | flat_bits[index]
                    if offset == first_new - 1 and offset > 0:
                        bits = (bits & ~_SPIKE) | spike_bits[index]
                else:
                    bits = self._restored_bits(
                        item, offset, row, spike_bits[index], flat_bits[index]
                    )
                if bits != row.quality_flag:
                    result.reflagged += 1
                    rows[offset] = row = row._replace(quality_flag=bits)
                    changed.append(row)
            if (
                item.streaming
                and first_new > 0
                and not item.run_flagged
                and flat_bits[position + item.run_start]
            ):
                # The kept run now qualifies: flag its stored values we no longer hold.
                ranges.append((item.key, item.rows[item.run_start].ts, item.rows[first_new - 1].ts))
            run_start = _trailing_run_start(checked, tolerances[position], position, count)
            self._keep_state(
                item, run_start - position, bool(flat_bits[position + count - 1]), saved
            )
            position += count
        return _Checked(ranges, inserted, changed)

    def _check_settings(self, key: SeriesKey) -> int:
        """The row of ``_settings_rows`` that holds one series' check thresholds as
        numbers, in the order :meth:`_check` reads them (a series is a dictionary look-up;
        the rows become one array, indexed for all series at once)."""
        concentration = bool(self.directory.points[key[0]].source)
        cache_key = (key[1], concentration)
        found = self._settings.get(cache_key)
        if found is None:
            t = self._thresholds_of(key[1])
            found = self._settings[cache_key] = len(self._settings_rows)
            self._settings_rows.append(
                (
                    math.nan if t.spike_step is None else t.spike_step,
                    math.nan if t.spike_ratio is None else t.spike_ratio,
                    0.001 * t.valid_max if math.isfinite(t.valid_max) else 0.0,
                    math.nan if t.flat_hours is None else t.flat_hours * 3600,
                    t.flat_tolerance,
                    t.valid_min,
                    t.valid_max,
                    float(t.allow_negative),
                    float(t.role == "concentration" and concentration),
                )
            )
        return found

    @staticmethod
    def _restored_bits(
        item: _Merged, offset: int, row: Observation, spike_bit: int, flat_bit: int
    ) -> int:
        """New flags of a stored row in a window read from the store (:meth:`_check`
        re-flags the kept tail's rows itself).

        A spike needs both neighbours: only rows with both inside the window are re-judged.
        A flat-line flag is added when the row's run now qualifies; it is removed only
        where the whole run is visible, inside the window.
        """
        bits = row.quality_flag
        last_index = len(item.rows) - 1
        if 0 < offset < last_index:
            bits = (bits & ~_SPIKE) | spike_bit
            bits = (bits & ~_FLAT_LINE) | flat_bit
        else:
            bits |= flat_bit
        return bits

    def _keep_state(
        self,
        item: _Merged,
        run_start: int,
        run_flat: bool,
        saved: dict[SeriesKey, SeriesState | None],
    ) -> None:
        """Keep the series' tail for the next batch, when the batch ends the series (and
        the tail it replaces in ``saved``, for a rollback)."""
        key, rows = item.key, item.rows
        saved[key] = self.state.get(key)  # a batch has one _Merged per series
        last = len(rows) - 1
        if not (last >= item.first_new if item.new is None else item.new[last]):
            # Stored values follow the new ones: this was a backfill; re-read next time.
            self.state.pop(key, None)
            return
        if last < 2:  # one or two rows: keep them all
            kept, start = rows[:], run_start
        elif run_start >= last - 1:  # the run is within the last two rows
            kept, start = rows[-2:], run_start - (last - 1)
        else:
            kept, start = [rows[run_start], rows[-2], rows[-1]], 0
        self.state[key] = SeriesState(kept, start, run_flat)

    @staticmethod
    def _message_flow(rows: Sequence[Observation]) -> dict[tuple[int, str, dt.datetime], float]:
        """The flow value of each message (point, interval kind, timestamp) in the batch."""
        flow: dict[tuple[int, str, dt.datetime], float] = {}
        for row in rows:
            if row.parameter_code in FLOW_CODES:
                flow[(row.point_id, row.interval, row.ts)] = (
                    math.nan if row.value is None else row.value
                )
        return flow


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


def _trailing_run_start(values: list[float], tolerance: float, position: int, count: int) -> int:
    """Index of the first row of the constant run that ends the series at ``position``
    (``count`` rows)."""
    index = position + count - 1
    while index > position:
        if not (abs(values[index] - values[index - 1]) <= tolerance):
            break
        index -= 1
    return index


def _epoch_seconds(rows: Sequence[Observation]) -> list[float]:
    """Each row's timestamp as seconds since the epoch (a batch repeats few instants, so
    each is converted once; the loops over rows run in C)."""
    stamps = list(map(_timestamp, rows))
    seconds = {ts: ts.timestamp() for ts in set(stamps)}
    return list(map(seconds.__getitem__, stamps))


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
