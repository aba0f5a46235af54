"""Transmission and effective-data rates of monitoring points (数据传输率, 数据有效率),
the figures agencies use to judge a data logger's operation.

Per point and local day: the point is expected to deliver one reading every
``interval_seconds`` (its configured interval), i.e. ``86400 / interval`` slots a day.
A slot counts as *received* when any raw observation (real-time, minute or hourly) of
the point falls in it, and as *valid* when every value in it is valid (no invalidating
quality flag). Transmission rate = received ÷ expected; effective-data rate = valid ÷
expected. Days still running are judged on the slots elapsed so far.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import Engine, select

from ecohub.clock import day_start, utcnow
from ecohub.quality.flags import INVALIDATING
from ecohub.registry.models import MonitoringPoint
from ecohub.timeseries.tables import observations


@dataclass(frozen=True)
class DailyRate:
    point_code: str
    day: dt.date
    expected: int
    received: int
    valid: int

    @property
    def transmission_rate(self) -> float:
        return self.received / self.expected if self.expected else 0.0

    @property
    def effective_rate(self) -> float:
        return self.valid / self.expected if self.expected else 0.0


def expected_slots(interval_seconds: int, day_start_utc: dt.datetime, now: dt.datetime) -> int:
    """Slots a point owes for the local day starting at ``day_start_utc`` (up to ``now``)."""
    elapsed = min(86400.0, max(0.0, (now - day_start_utc).total_seconds()))
    return math.ceil(elapsed / interval_seconds)


def slot_counts(
    timestamps_valid: list[tuple[dt.datetime, bool]], day_start_utc: dt.datetime, interval: int
) -> tuple[int, int]:
    """(received, valid) slots of one point and day from its (timestamp, all-valid) rows."""
    slots: dict[int, bool] = {}
    for ts, valid in timestamps_valid:
        slot = int((ts - day_start_utc).total_seconds() // interval)
        if 0 <= slot < 86400 // interval:
            slots[slot] = slots.get(slot, True) and valid
    return len(slots), sum(1 for valid in slots.values() if valid)


def daily_rates(
    engine: Engine,
    day: dt.date,
    *,
    point_codes: list[str] | None = None,
    now: dt.datetime | None = None,
) -> list[DailyRate]:
    """Transmission and effective-data rates of every (or the given) point for one local
    day."""
    now = now or utcnow()
    start = day_start(dt.datetime(day.year, day.month, day.day, 12, tzinfo=dt.UTC))
    # day_start of noon UTC is the local midnight of that local date for UTC+-12 zones.
    end = start + dt.timedelta(days=1)
    query = select(MonitoringPoint.id, MonitoringPoint.code, MonitoringPoint.interval_seconds)
    if point_codes is not None:
        query = query.where(MonitoringPoint.code.in_(point_codes))
    with engine.connect() as connection:
        points = list(connection.execute(query.order_by(MonitoringPoint.code)))
        rows: dict[int, list[tuple[dt.datetime, bool]]] = defaultdict(list)
        ids = [point_id for point_id, _code, _interval in points]
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            found = connection.execute(
                select(observations.c.point_id, observations.c.ts, observations.c.quality_flag)
                .where(
                    observations.c.point_id.in_(chunk),
                    observations.c.interval.in_(("rt", "min", "hour")),
                    observations.c.ts >= start,
                    observations.c.ts < end,
                )
                .distinct()
            )
            for point_id, ts, flag in found:
                rows[point_id].append((ts, not flag & INVALIDATING))
    result = []
    for point_id, code, interval in points:
        received, valid = slot_counts(rows.get(point_id, []), start, interval)
        result.append(DailyRate(code, day, expected_slots(interval, start, now), received, valid))
    return result
