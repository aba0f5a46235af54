"""When a deferring writer recomputes its queued rollups (the pipeline's second job).

A long-running writer (the gateway's, the MQTT subscriber's) may defer the rollups: with
``rollup_delay`` > 0 a batch only queues the hours it touched, in its own transaction,
and :meth:`Pipeline.flush_rollups` recomputes every queued hour at most that many
seconds later — once, however many batches touched it meanwhile. Loggers that report
every minute touch each hour sixty times; recomputing it once per delay instead of once
per batch is what lets the gateway answer quickly under load. The hour still in progress
waits for a refresh every ``current_hour_refresh`` seconds, or for data of a later hour,
which end it.

This module holds only the clocks and the cycle bookkeeping; the pipeline reads and
writes the queue itself. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable

from ecohub.clock import hour_start

# Between batches the queue is recomputed in transactions of about FLUSH_CHUNK_SECONDS
# (a waiting batch, and the loggers' answers, wait for at most one), sized from the time
# the previous chunks took per hour, within FLUSH_CHUNK_HOURS.
FLUSH_CHUNK_SECONDS = 0.05
FLUSH_CHUNK_HOURS = (50, 1000)
FIRST_FLUSH_CHUNK_HOURS = 100
# Recomputing the queue may take at most about a fifth of a deferring writer's time
# (see RollupSchedule.gap), and the hourly figures lag by at most a minute plus one
# recomputation.
ROLLUP_WORK_FACTOR = 4.0
MAX_ROLLUP_GAP = 60.0

SeriesHour = tuple[int, str, dt.datetime]


class RollupSchedule:
    """The clocks of one deferring writer's rollup queue."""

    def __init__(self, rollup_delay: float, current_hour_refresh: float) -> None:
        self.rollup_delay = rollup_delay
        self.current_hour_refresh = current_hour_refresh
        # Time spent recomputing since the queue was last drained, and by the last
        # complete flush (see gap).
        self.flush_seconds = 0.0
        self.last_flush_seconds = 0.0
        self.cycle_left: int | None = None  # hours left in the current flush cycle
        self.cycle_began = 0.0
        self.seconds_per_hour = 0.0  # recomputation time per queued hour, smoothed
        # When the oldest queued hour was queued; -inf at start: an earlier run may
        # have left hours queued (a crash), so the first flush is due at once.
        self.queued_since: float | None = -math.inf if rollup_delay > 0 else None
        # The hour in progress: the start of the latest hour of real-time or minute data
        # this writer stored (never after the present hour), and when an hour from it on
        # was first queued since the last cycle that took those hours too.
        self.frontier: dt.datetime | None = None
        self.current_since: float | None = None
        self.cycle_before: dt.datetime | None = None  # the running cycle takes hours before
        self.queued_in_cycle = False  # hours due were queued while a cycle ran

    def note_queued(
        self, dirty: Iterable[SeriesHour], latest: dt.datetime | None, now: dt.datetime
    ) -> None:
        """Start the clocks of the hours just queued: those before the hour in progress
        are due a gap later; those from it on at the next refresh, or once the data
        moves on to a later hour (which ends the hour in progress)."""
        clock = time.monotonic()
        if latest is not None:
            latest = min(latest, hour_start(now))  # a logger's clock ahead moves nothing
            if self.frontier is None or latest > self.frontier:
                self.frontier = latest
                if self.current_since is not None:  # the hour in progress has ended
                    since = self.current_since
                    if self.queued_since is None or since < self.queued_since:
                        self.queued_since = since
                    self.current_since = None
                    if self.cycle_left is not None:
                        self.queued_in_cycle = True
        frontier = self.frontier if self.current_hour_refresh > 0 else None
        for _point_id, _code, hour in dirty:
            if frontier is None or hour < frontier:
                if self.queued_since is None:
                    self.queued_since = clock
                if self.cycle_left is not None:
                    self.queued_in_cycle = True
            elif self.current_since is None:
                self.current_since = clock

    def refresh_due(self, clock: float) -> bool:
        """The hour in progress is due for recomputation (always, when it is not set
        apart: ``current_hour_refresh`` 0)."""
        return (
            self.frontier is None
            or self.current_hour_refresh <= 0
            or (
                self.current_since is not None
                and clock - self.current_since >= self.current_hour_refresh
            )
        )

    def due(self, *, busy: bool = True) -> bool:
        """Queued hours have waited :meth:`gap` seconds, or only ``rollup_delay`` when
        the writer is not ``busy`` (no batch waiting: nothing to protect), or may be
        left from an earlier run or an unfinished flush.

        A cycle under way while batches keep coming takes its share of the writer's
        time, 1 / (1 + ROLLUP_WORK_FACTOR), and no more: its next chunk is due once the
        chunks so far are that share of the time since the cycle began. (Otherwise
        chunks and batches alternated one for one, and while a cycle lasted the writer
        kept up with about half the load.)"""
        now = time.monotonic()
        if self.queued_since is None:
            return self.current_since is not None and self.refresh_due(now)
        if busy and self.cycle_left is not None:
            return self.flush_seconds <= (now - self.cycle_began) / (1 + ROLLUP_WORK_FACTOR)
        gap = self.gap() if busy else self.rollup_delay
        return now - self.queued_since >= gap or (
            self.current_since is not None and self.refresh_due(now)
        )

    def gap(self) -> float:
        """Seconds between two recomputations of the queue: ``rollup_delay``, stretched
        so that recomputing takes at most about 1 / (1 + ROLLUP_WORK_FACTOR) of the
        writer's time (capped at MAX_ROLLUP_GAP). Under a load the recomputation cannot
        follow, each recomputation then covers more values per hour, instead of the
        loggers' answers waiting for it."""
        stretched = ROLLUP_WORK_FACTOR * self.last_flush_seconds
        return max(self.rollup_delay, min(MAX_ROLLUP_GAP, stretched))

    def chunk_hours(self) -> int:
        """Hours per chunk, sized to take about FLUSH_CHUNK_SECONDS."""
        least, most = FLUSH_CHUNK_HOURS
        if self.seconds_per_hour <= 0:
            return FIRST_FLUSH_CHUNK_HOURS  # unmeasured: a small one, to learn from
        return max(least, min(most, int(FLUSH_CHUNK_SECONDS / self.seconds_per_hour)))

    def start_flush(self) -> float:
        """A flush begins: nothing is queued-and-waiting any more; returns its clock."""
        self.queued_since = None
        return time.monotonic()

    def cycle(
        self,
        limit: int | None,
        started: float,
        count_queued: Callable[[dt.datetime | None], int],
    ) -> tuple[int | None, dt.datetime | None]:
        """How many queued hours this flush takes (None: all) and before which hour.

        With ``limit``, successive flushes form a cycle that covers the hours queued when
        it began (``count_queued`` counts those before a given hour); hours queued
        meanwhile wait for the next cycle. Such a cycle leaves the hour in progress
        queued, unless its refresh is due."""
        if limit is None:
            self.cycle_before = None
            self.current_since = None
        elif self.cycle_left is None:
            self.cycle_before = self.frontier
            if self.refresh_due(started):
                self.cycle_before = None
                self.current_since = None
            self.cycle_left = count_queued(self.cycle_before)
            self.cycle_began = started
            self.queued_in_cycle = False
        take = None if limit is None else max(1, min(limit, self.cycle_left or 0))
        return take, self.cycle_before

    def flush_failed(self) -> None:
        """A flush rolled back: its hours stay queued and are due at the next chance."""
        self.queued_since = -math.inf
        if self.cycle_before is None:
            self.current_since = -math.inf  # the hour in progress too
        self.cycle_left = None

    def flush_done(self, took: float, hours: int, take: int | None) -> bool:
        """Account for a committed flush that recomputed ``hours`` in ``took`` seconds;
        True when the cycle has hours left (they stay due)."""
        if hours:
            # Smoothed, so that one slow chunk (a cold cache, a busy disk) does not
            # shrink the next ones to nothing.
            self.seconds_per_hour = 0.7 * self.seconds_per_hour + 0.3 * took / hours
        more = take is not None and hours >= take  # the queue may hold more
        if self.cycle_left is not None:
            self.cycle_left -= hours
        if more and self.cycle_left is not None and self.cycle_left > 0:
            self.queued_since = -math.inf
            return True
        # The cycle is complete: it took flush_seconds in all.
        self.last_flush_seconds, self.flush_seconds = self.flush_seconds, 0.0
        self.cycle_left = None
        if self.queued_in_cycle:
            # Queued during the cycle: due a gap after it ends. Counting the gap from
            # its start let a cycle spread between batches over longer than the gap
            # start the next one at once, and recomputation took half the writer's time.
            self.queued_since = time.monotonic()
            self.queued_in_cycle = False
        return False

    def begin_full_cycle(self) -> None:
        """The next flushes form a new cycle over every hour queued now, the hour in
        progress included."""
        self.cycle_left = None
        self.current_since = -math.inf
