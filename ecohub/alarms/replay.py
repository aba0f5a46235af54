"""Judging the alarm rules over stored history: after a bulk import of past data (which
raises no live alarms), or to ask what the rules would have raised in a past episode.

The stored hourly and daily rollups and station AQI are handed to the same
:class:`~ecohub.alarms.evaluate.AlarmEvaluator` the pipeline uses, one local day at a
time in time order (so that episodes grow day by day as they did), each day in its own
transaction. Offline alarms are not judged from history (silence leaves no rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from ecohub.alarms.evaluate import AlarmEvaluator
from ecohub.alarms.tables import AlarmKind, alarms
from ecohub.clock import day_start
from ecohub.config import Settings
from ecohub.db.engine import write_transaction
from ecohub.registry.models import Region
from ecohub.timeseries.tables import rollups, station_aqi

DAY = dt.timedelta(days=1)


@dataclass
class Replay:
    """What judging a stretch of history did."""

    days: int = 0
    hours: int = 0
    events: int = 0


def judge_history(
    engine: Engine,
    start: dt.datetime,
    end: dt.datetime,
    settings: Settings | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Judge every local day from the one holding ``start`` up to ``end``."""
    evaluator = AlarmEvaluator(engine, settings)
    result = Replay()
    day = day_start(start)
    while day < end:
        following = day_start(day + dt.timedelta(hours=26))  # a local day is 23-25 hours
        with write_transaction(engine) as connection:
            hours = _rows(connection, rollups, "hour", day, following)
            days = _rows(connection, rollups, "day", day, following)
            aqi = _rows(connection, station_aqi, "hour", day, following) + _rows(
                connection, station_aqi, "day", day, following
            )
            events = evaluator.evaluate(connection, hours, days, aqi, (), following)
        result.days += 1
        result.hours += len(hours)
        result.events += len(events)
        if progress is not None:
            progress(1)
        day = following
    return result


def _rows(
    connection: Any, table: Any, period: str, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    found = connection.execute(
        select(table).where(table.c.period == period, table.c.ts >= start, table.c.ts < end)
    )
    return [dict(row._mapping) for row in found]


@dataclass(frozen=True)
class Warning:
    """One heavy-pollution warning a city had: its highest level and when."""

    city: str
    name: str
    level: str  # yellow, orange or red
    started: dt.datetime
    ended: dt.datetime | None
    days: int


def heavy_pollution_warnings(engine: Engine, start: dt.datetime, end: dt.datetime) -> list[Warning]:
    """The heavy-pollution warnings whose episodes overlap ``[start, end)``, by city."""
    with engine.connect() as connection:
        names = {code: name for code, name in connection.execute(select(Region.code, Region.name))}
        found = connection.execute(
            select(alarms).where(
                alarms.c.kind == AlarmKind.HEAVY_POLLUTION.value,
                alarms.c.started_at < end,
                (alarms.c.ended_at.is_(None)) | (alarms.c.ended_at > start),
            )
        ).all()
    warnings = []
    for row in found:
        alarm = row._mapping
        evidence = alarm["evidence"] or {}
        warnings.append(
            Warning(
                city=alarm["region_code"],
                name=names.get(alarm["region_code"], alarm["region_code"]),
                level=alarm["severity"],
                started=alarm["started_at"],
                ended=alarm["ended_at"],
                days=int(evidence.get("active_periods", 0)),
            )
        )
    return sorted(warnings, key=lambda w: (w.started, w.city))
