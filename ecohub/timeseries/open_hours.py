"""Summaries of the hours a long-running writer keeps writing, held in memory so that
recomputing an hour's rollup does not read its raw values back.

A data logger reporting every minute touches each hour sixty times; the gateway's
writer recomputes a touched hour every ``rollup_delay`` seconds. Each recomputation used
to ask the store for the hour's summary (:class:`~ecohub.timeseries.rules.BasisSummary`
per data kind). Here the writer keeps that summary and adds each value it inserts, so
only the first recomputation of an hour reads the store.

The memory is only trusted while it provably matches the store:

- it starts from the store: an hour enters when the store summarised it (and the next
  hours of the same series, when the store holds nothing for them yet);
- only pure inserts are added (a value at a key the store did not hold); a batch that
  changes stored values of an hour (a re-sent correction, re-flagging by the quality
  checks, a flat-line range) makes the writer forget that hour;
- every recomputation of hourly rollups, by any writer, counts one more generation in
  the store (:func:`~ecohub.timeseries.rollups.bump_rollup_generation`, in the recomputing
  transaction, which on PostgreSQL also keeps other recomputations waiting until it
  ends). The memory is used only when the generation is the one after this writer's
  last recomputation; another writer's recomputation (a file import, the API, a second
  gateway) in between makes the writer forget every hour and summarise them from the
  store again;
- another writer queueing the same hour marks its queue entry as shared
  (:func:`~ecohub.timeseries.rollups.queue_hours`), which also sends the hour to the store.

A failed transaction clears the memory (it may hold what was rolled back).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from ecohub.quality.flags import INVALIDATING
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.rules import BasisSummary, rollup_code

HourKey = tuple[int, str, int]  # point id, rollup series code, hour start (epoch seconds)
# Hours not touched for this long are dropped (the next touch summarises them again).
IDLE_SECONDS = 300.0
SWEEP_EVERY_SECONDS = 30.0
BASES = ("rt", "min", "hour")


@dataclass(slots=True)
class OpenHour:
    """One hour of one series: per data kind [received, good, total, low, high], and the
    union of its values' quality flags."""

    bases: dict[str, list[float]] = field(default_factory=dict)
    flags: int = 0
    touched: float = 0.0

    def add(self, interval: str, value: float | None, quality_flag: int) -> None:
        counts = self.bases.get(interval)
        if counts is None:
            counts = self.bases[interval] = [0, 0, 0.0, math.inf, -math.inf]
        counts[0] += 1
        self.flags |= quality_flag
        if value is not None and not quality_flag & INVALIDATING:
            counts[1] += 1
            counts[2] += value
            if value < counts[3]:
                counts[3] = value
            if value > counts[4]:
                counts[4] = value

    def summaries(self) -> dict[str, BasisSummary]:
        return {
            basis: BasisSummary(
                int(received),
                int(good),
                total,
                low if good else None,
                high if good else None,
            )
            for basis, (received, good, total, low, high) in self.bases.items()
        }

    @classmethod
    def of(cls, summaries: dict[str, BasisSummary], flags: int) -> OpenHour:
        """An hour as the store summarised it."""
        hour = cls(flags=flags)
        for basis, summary in summaries.items():
            hour.bases[basis] = [
                summary.received,
                summary.good,
                summary.total,
                math.inf if summary.low is None else summary.low,
                -math.inf if summary.high is None else summary.high,
            ]
        return hour


class OpenHours:
    """The writer's open hours (see the module docstring)."""

    def __init__(self) -> None:
        self.hours: dict[HourKey, OpenHour] = {}
        # The store's rollup generation after this writer's last recomputation.
        self.generation: int | None = None
        self._swept = time.monotonic()

    def __len__(self) -> int:
        return len(self.hours)

    def __contains__(self, key: object) -> bool:
        return key in self.hours

    def get(self, key: HourKey) -> OpenHour | None:
        return self.hours.get(key)

    def add_inserted(self, rows: Iterable[Observation]) -> None:
        """Add values the store did not hold before; values of hours not held are
        skipped (the store summarises those hours when they are recomputed)."""
        hours = self.hours
        now = time.monotonic()
        series_of: dict[str, str] = {}
        epoch_of: dict[dt.datetime, int] = {}
        for point_id, code, interval, ts, value, _data_flag, quality_flag, _source in rows:
            if interval not in BASES:
                continue
            series = series_of.get(code)
            if series is None:
                series = series_of[code] = rollup_code(code)
            epoch = epoch_of.get(ts)
            if epoch is None:
                seconds = int(ts.timestamp())
                epoch = epoch_of[ts] = seconds - seconds % 3600
            hour = hours.get((point_id, series, epoch))
            if hour is not None:
                hour.add(interval, value, quality_flag)
                hour.touched = now

    def forget(self, keys: Iterable[HourKey]) -> None:
        for key in keys:
            self.hours.pop(key, None)

    def keep(self, key: HourKey, hour: OpenHour) -> None:
        hour.touched = time.monotonic()
        self.hours[key] = hour

    def clear(self, *, keep_generation: bool = False) -> None:
        """Forget every hour (and, unless ``keep_generation``, the generation: after a
        rolled-back transaction it may name one the store never saw)."""
        self.hours.clear()
        if not keep_generation:
            self.generation = None

    def sweep(self) -> None:
        """Drop hours idle for :data:`IDLE_SECONDS` (checked every
        :data:`SWEEP_EVERY_SECONDS`)."""
        now = time.monotonic()
        if now - self._swept < SWEEP_EVERY_SECONDS:
            return
        self._swept = now
        idle = [key for key, hour in self.hours.items() if now - hour.touched > IDLE_SECONDS]
        for key in idle:
            del self.hours[key]
