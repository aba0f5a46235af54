"""Recomputing rollups (hourly and daily statistics) and station AQI in the store.

Called by the ingestion pipeline inside the transaction that stored the raw values, with
the set of (point, series, hour) the batch touched: exactly those hours are recomputed
from what the store now holds, then exactly the local days containing them, then the
AQI of the air-station hours and days among them. Late or corrected data therefore
updates every figure it affects and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, and_, func, select
from sqlalchemy.dialects import postgresql, sqlite

from ecohub.clock import day_start
from ecohub.db.bulk import bulk_upsert
from ecohub.db.counters import bump_counter
from ecohub.db.types import epoch_seconds, flag_union, union_value
from ecohub.quality.flags import INVALIDATING
from ecohub.registry.directory import PointInfo
from ecohub.timeseries.aqi import DAILY_CODES, HOURLY_CODES, group_aqi
from ecohub.timeseries.open_hours import OpenHour, OpenHours
from ecohub.timeseries.rules import (
    AQI_PARAMETERS,
    O3,
    BasisSummary,
    Rollup,
    daily_rollup,
    daily_rollups,
    hourly_rollup,
    rollup_code,
    source_codes,
    statistic_of,
)
from ecohub.timeseries.tables import observations, rollups, station_aqi, station_aqi_latest

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
_CHUNK = 500

SeriesHour = tuple[int, str, dt.datetime]  # point id, rollup series code, hour start (UTC)


def _clusters(instants: Iterable[dt.datetime], gap: dt.timedelta) -> Iterator[list[dt.datetime]]:
    """Sorted instants split where consecutive ones are more than ``gap`` apart, so that
    one late value does not make a query span a year."""
    ordered = sorted(set(instants))
    cluster: list[dt.datetime] = []
    for instant in ordered:
        if cluster and instant - cluster[-1] > gap:
            yield cluster
            cluster = []
        cluster.append(instant)
    if cluster:
        yield cluster


def _point_batches(
    keys: Iterable[tuple[int, dt.datetime]], gap: dt.timedelta
) -> Iterator[tuple[dt.datetime, dt.datetime, list[int]]]:
    """(first instant, last instant, point ids) to query for (point, instant) keys: one
    batch per cluster of nearby instants, at most ``_CHUNK`` points each."""
    by_instant: dict[dt.datetime, set[int]] = defaultdict(set)
    for point_id, instant in keys:
        by_instant[instant].add(point_id)
    for cluster in _clusters(by_instant, gap):
        point_ids = sorted({p for instant in cluster for p in by_instant[instant]})
        for start in range(0, len(point_ids), _CHUNK):
            yield cluster[0], cluster[-1], point_ids[start : start + _CHUNK]


def recompute_hours(
    connection: Connection,
    dirty: set[SeriesHour],
    points: dict[int, PointInfo],
    now: dt.datetime,
    open_hours: OpenHours | None = None,
) -> tuple[set[SeriesHour], list[dict[str, Any]]]:
    """Recompute the hourly rollups of ``dirty``; returns the (point, series, local day)
    whose daily values must follow, and the rows written.

    With ``open_hours`` (a long-running writer's memory, see :mod:`ecohub.timeseries.open_hours`)
    the hours it holds and can trust are computed from it, the others from the store,
    and the memory is updated with what was written.
    """
    if open_hours is None:
        bump_rollup_generation(connection)  # writers that keep open hours look at it
        held = {}
    else:
        held = _trusted_hours(connection, dirty, open_hours)
    from_store = {key for key in dirty if (key[0], key[1], _epoch(key[2])) not in held}
    summaries, flags_of, empty_next = _hour_summaries(
        connection, from_store, lookahead=LOOKAHEAD_HOURS if open_hours is not None else 0
    )
    for key, open_hour in held.items():
        summaries[key] = open_hour.summaries()
        flags_of[key] = open_hour.flags
    results = []
    for point_id, code, hour in dirty:
        point = points[point_id]
        key = (point_id, code, _epoch(hour))
        rollup = hourly_rollup(
            summaries.get(key, {}),
            statistic_of(code),
            interval_seconds=point.interval_seconds,
            minute_interval_seconds=point.minute_interval_seconds,
        )
        if rollup is None:
            rollup = Rollup(None, statistic_of(code), 0, 0, False, "none")
        results.append(_row(point_id, code, "hour", hour, rollup, now, flags_of.get(key, 0)))
    bulk_upsert(connection, rollups, results, ["point_id", "parameter_code", "period", "ts"])
    if open_hours is not None:
        for point_id, code, hour in from_store:
            key = (point_id, code, _epoch(hour))
            open_hours.keep(key, OpenHour.of(summaries.get(key, {}), flags_of.get(key, 0)))
        for key in empty_next:
            if key not in open_hours:
                open_hours.keep(key, OpenHour())
    days = _DayOf()
    return {(point_id, code, days.start(hour)) for point_id, code, hour in dirty}, results


# Hours after each hour summarised by the store that a writer's memory starts empty when
# the store holds nothing for them yet (a logger's next hour then never needs the store).
LOOKAHEAD_HOURS = 2


def _hour_summaries(
    connection: Connection, dirty: set[SeriesHour], lookahead: int = 0
) -> tuple[
    dict[tuple[int, str, int], dict[str, BasisSummary]],
    dict[tuple[int, str, int], int],
    set[tuple[int, str, int]],
]:
    """Each hour's summaries per data kind and the union of its flags, as the store
    computes them; and, of the ``lookahead`` hours following each, those that hold no
    values."""
    # The database summarises each hour (count, sum, least and greatest valid value per
    # data kind) and the rules of timeseries.rules are applied to the summaries: reading
    # every raw value back made an hour of minute data cost sixty times a summary.
    wanted = {(p, code, _epoch(hour)) for p, code, hour in dirty}
    following = {
        (p, code, epoch + 3600 * step)
        for p, code, epoch in wanted
        for step in range(1, lookahead + 1)
    } - wanted
    summaries: dict[tuple[int, str, int], dict[str, BasisSummary]] = defaultdict(dict)
    flags_of: dict[tuple[int, str, int], int] = defaultdict(int)
    if not dirty:
        return summaries, flags_of, set()
    series_of: dict[str, str] = {}
    # Every key column is constrained, so that both databases seek each series' range in
    # the primary key instead of scanning a point's whole history.
    codes = sorted({raw for _p, code, _h in dirty for raw in source_codes(code)})
    reach = HOUR * (1 + lookahead)
    occupied: set[tuple[int, str, int]] = set()
    for first, last, chunk in _point_batches(((p, hour) for p, _code, hour in dirty), reach):
        query = _summary_query(chunk, codes, first, last + reach)
        for (
            point_id,
            code,
            interval,
            index,
            received,
            count,
            total,
            low,
            high,
            flags,
        ) in connection.execute(query):
            series = series_of.get(code)
            if series is None:
                series = series_of[code] = rollup_code(code)
            key = (point_id, series, index * 3600)
            if key not in wanted:
                occupied.add(key)
                continue
            summary = BasisSummary(received, count, total or 0.0, low, high)
            by_basis = summaries[key]
            before = by_basis.get(interval)
            by_basis[interval] = summary if before is None else before.merged(summary)
            flags_of[key] |= union_value(flags)
    return summaries, flags_of, following - occupied


def _summary_query(
    point_ids: list[int], codes: list[str], first: dt.datetime, end: dt.datetime
) -> Select[Any]:
    """Per point, parameter, data kind and hour from ``first`` to ``end``: the values
    received, the valid ones, their sum, least and greatest, and the union of flags."""
    value = observations.c.value
    good = and_(value.is_not(None), observations.c.quality_flag.op("&")(INVALIDATING) == 0)
    hour_index = (epoch_seconds(observations.c.ts) // 3600).label("hour_index")
    return (
        select(
            observations.c.point_id,
            observations.c.parameter_code,
            observations.c.interval,
            hour_index,
            func.count(),
            func.count().filter(good),
            func.sum(value).filter(good),
            func.min(value).filter(good),
            func.max(value).filter(good),
            flag_union(observations.c.quality_flag),
        )
        .where(
            observations.c.point_id.in_(point_ids),
            observations.c.parameter_code.in_(codes),
            observations.c.interval.in_(("rt", "min", "hour")),
            observations.c.ts >= first,
            observations.c.ts < end,
        )
        .group_by(
            observations.c.point_id,
            observations.c.parameter_code,
            observations.c.interval,
            hour_index,
        )
    )


ROLLUP_GENERATION = "rollups"  # change_counters row bumped by every recomputation


def bump_rollup_generation(connection: Connection) -> int:
    """Count one more recomputation of hourly rollups, in its transaction; returns the
    new count. On PostgreSQL the counter's row stays locked until the transaction ends,
    so recomputations of one store follow each other (SQLite's are serial anyway)."""
    return bump_counter(connection, ROLLUP_GENERATION)


def _trusted_hours(
    connection: Connection, dirty: set[SeriesHour], open_hours: OpenHours
) -> dict[tuple[int, str, int], OpenHour]:
    """The hours of ``dirty`` held in memory, if no other writer recomputed rollups
    since this one last did (the generation it then saw is the one before this
    recomputation's); otherwise the memory is forgotten and every hour comes from the
    store."""
    generation = bump_rollup_generation(connection)
    trusted = open_hours.generation is not None and generation == open_hours.generation + 1
    open_hours.generation = generation
    if not trusted:
        open_hours.clear(keep_generation=True)
        return {}
    held: dict[tuple[int, str, int], OpenHour] = {}
    for point_id, code, hour in dirty:
        key = (point_id, code, _epoch(hour))
        found = open_hours.get(key)
        if found is not None:
            held[key] = found
    return held


@lru_cache(maxsize=8192)
def _epoch(instant: dt.datetime) -> int:
    # Cached: a recomputation asks for the same few hours tens of thousands of times.
    return int(instant.timestamp())


class _DayOf:
    """Local day start of instants, computed once per distinct hour (time-zone
    arithmetic per row was a large share of recomputing days)."""

    def __init__(self) -> None:
        self._by_hour: dict[int, tuple[int, dt.datetime]] = {}

    def of_epoch(self, epoch: int) -> tuple[int, dt.datetime]:
        """(epoch, datetime) of the local midnight starting the day of ``epoch``."""
        hour = epoch - epoch % 3600
        found = self._by_hour.get(hour)
        if found is None:
            start = day_start(dt.datetime.fromtimestamp(hour, dt.UTC))
            found = self._by_hour[hour] = (_epoch(start), start)
        return found

    def start(self, instant: dt.datetime) -> dt.datetime:
        return self.of_epoch(_epoch(instant))[1]


def _row(
    point_id: int,
    code: str,
    period: str,
    ts: dt.datetime,
    rollup: Rollup,
    now: dt.datetime,
    flags: int = 0,
) -> dict[str, Any]:
    return {
        "point_id": point_id,
        "parameter_code": code,
        "period": period,
        "ts": ts,
        "value": rollup.value,
        "statistic": rollup.statistic,
        "samples": rollup.samples,
        "received": rollup.received,
        "valid": rollup.valid,
        "basis": rollup.basis,
        "flags": flags,
        "computed_at": now,
    }


def recompute_days(
    connection: Connection,
    dirty: set[SeriesHour],
    points: dict[int, PointInfo],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Recompute the daily rollups of ``dirty`` (point, series, local-day start); returns
    the rows written."""
    # Ambient O3 needs its hours in order (the daily maximum 8-hour mean); every other
    # series only a summary of its day's valid hours, which the database computes.
    in_order = {key for key in dirty if points[key[0]].ambient_air and key[1] == O3}
    summaries = _day_summaries(connection, dirty - in_order)
    hourly, received = _day_hours(connection, in_order)
    results: list[dict[str, Any]] = []
    for key in dirty:
        point_id, code, day = key
        point = points[point_id]
        if key in in_order:
            produced = daily_rollups(
                code,
                hourly.get(key, [None] * 24),
                received[key],
                interval_seconds=point.interval_seconds,
                ambient_air=point.ambient_air,
            )
        else:
            produced = {
                code: daily_rollup(
                    code,
                    summaries.get(key, _NO_HOURS),
                    interval_seconds=point.interval_seconds,
                    ambient_air=point.ambient_air,
                )
            }
        results.extend(
            _row(point_id, series, "day", day, rollup, now) for series, rollup in produced.items()
        )
    bulk_upsert(connection, rollups, results, ["point_id", "parameter_code", "period", "ts"])
    return results


_NO_HOURS = BasisSummary(0, 0, 0.0, None, None)


def _day_summaries(connection: Connection, keys: set[SeriesHour]) -> dict[SeriesHour, BasisSummary]:
    """Each (point, series, local day)'s hourly rollups summarised by the database: one
    query per day and chunk of points."""
    by_day: dict[dt.datetime, set[tuple[int, str]]] = defaultdict(set)
    for point_id, code, day in keys:
        by_day[day].add((point_id, code))
    value = rollups.c.value
    good = and_(rollups.c.valid.is_(True), value.is_not(None))
    codes = sorted({code for _p, code, _day in keys})
    found: dict[SeriesHour, BasisSummary] = {}
    for day, series in by_day.items():
        next_day = day_start(day + dt.timedelta(hours=26))  # a local day has 23 to 25 hours
        point_ids = sorted({point_id for point_id, _code in series})
        for start in range(0, len(point_ids), _CHUNK):
            query = (
                select(
                    rollups.c.point_id,
                    rollups.c.parameter_code,
                    func.sum(rollups.c.received),
                    func.count().filter(good),
                    func.sum(value).filter(good),
                    func.min(value).filter(good),
                    func.max(value).filter(good),
                )
                .where(
                    rollups.c.point_id.in_(point_ids[start : start + _CHUNK]),
                    rollups.c.parameter_code.in_(codes),
                    rollups.c.period == "hour",
                    rollups.c.ts >= day,
                    rollups.c.ts < next_day,
                )
                .group_by(rollups.c.point_id, rollups.c.parameter_code)
            )
            for point_id, code, received, count, total, low, high in connection.execute(query):
                if (point_id, code) in series:
                    found[(point_id, code, day)] = BasisSummary(
                        int(received or 0), count, total or 0.0, low, high
                    )
    return found


def _day_hours(
    connection: Connection, keys: set[SeriesHour]
) -> tuple[dict[SeriesHour, list[float | None]], dict[SeriesHour, int]]:
    """Each (point, series, local day)'s valid hourly values by local hour (None where
    missing or invalid), and its raw values received."""
    wanted = {(p, code, _epoch(day)): (p, code, day) for p, code, day in keys}
    hourly: dict[SeriesHour, list[float | None]] = {}
    received: dict[SeriesHour, int] = defaultdict(int)
    if not keys:
        return hourly, received
    days = _DayOf()
    codes = sorted({code for _p, code, _day in keys})
    for first, last, chunk in _point_batches(((p, day) for p, _code, day in keys), DAY):
        query = select(
            rollups.c.point_id,
            rollups.c.parameter_code,
            epoch_seconds(rollups.c.ts),
            rollups.c.value,
            rollups.c.valid,
            rollups.c.received,
        ).where(
            rollups.c.point_id.in_(chunk),
            rollups.c.period == "hour",
            rollups.c.parameter_code.in_(codes),
            rollups.c.ts >= first,
            rollups.c.ts < last + DAY,
        )
        for point_id, code, epoch, value, valid, count in connection.execute(query):
            day_epoch, _ = days.of_epoch(epoch)
            key = wanted.get((point_id, code, day_epoch))
            if key is None:
                continue
            slots = hourly.setdefault(key, [None] * 24)
            index = (epoch - day_epoch) // 3600
            if 0 <= index < 24 and valid:
                slots[index] = value
            received[key] += count
    return hourly, received


def _aqi_rows(
    connection: Connection,
    keys: set[tuple[int, dt.datetime]],
    period: str,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    codes = list(HOURLY_CODES if period == "hour" else DAILY_CODES)
    span = HOUR if period == "hour" else DAY
    values: dict[tuple[int, dt.datetime], dict[str, float]] = defaultdict(dict)
    for first, last, chunk in _point_batches(keys, span):
        query = select(
            rollups.c.point_id, rollups.c.parameter_code, rollups.c.ts, rollups.c.value
        ).where(
            rollups.c.point_id.in_(chunk),
            rollups.c.period == period,
            rollups.c.parameter_code.in_(codes),
            rollups.c.valid.is_(True),
            rollups.c.ts >= first,
            rollups.c.ts <= last,
        )
        for point_id, code, ts, value in connection.execute(query):
            if (point_id, ts) in keys and value is not None:
                values[(point_id, ts)][code] = value
    ordered = sorted(keys)
    if not ordered:
        return []
    # A station is a group of one: the same HJ 633 computation as a city's.
    result = group_aqi(
        [{code: [value] for code, value in values[key].items()} for key in ordered], period
    )
    primaries = result.primary_pollutants()
    levels = result.level
    rows = []
    for index, (point_id, ts) in enumerate(ordered):
        aqi = result.aqi[index]
        iaqi = {
            name: int(series[index])
            for name, series in result.iaqi.items()
            if not math.isnan(series[index])
        }
        rows.append(
            {
                "point_id": point_id,
                "period": period,
                "ts": ts,
                "aqi": None if math.isnan(aqi) else int(aqi),
                "level": int(levels[index]),
                "primary_pollutants": ",".join(primaries[index]),
                "iaqi": json.dumps(iaqi, sort_keys=True),
                "computed_at": now,
            }
        )
    return rows


def recompute_aqi(
    connection: Connection,
    hours: set[tuple[int, dt.datetime]],
    days: set[tuple[int, dt.datetime]],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """Recompute the hourly and daily AQI (HJ 633-2012) of air-station points; returns
    the rows written."""
    keys = ["point_id", "period", "ts"]
    hourly = _aqi_rows(connection, hours, "hour", now)
    daily = _aqi_rows(connection, days, "day", now)
    bulk_upsert(connection, station_aqi, hourly, keys)
    bulk_upsert(connection, station_aqi, daily, keys)
    _keep_latest(connection, hourly)
    return hourly + daily


def keep_latest_aqi(connection: Connection, hourly: list[dict[str, Any]]) -> None:
    """Move each station's newest-AQI row forward with station-AQI rows written outside
    :func:`recompute_aqi` (the bulk import's); bumps its change counter."""
    _keep_latest(connection, hourly)


def _keep_latest(connection: Connection, hourly: list[dict[str, Any]]) -> None:
    """Move each station's newest-AQI row forward (never back: late data for an older
    hour leaves it alone)."""
    newest: dict[int, dict[str, Any]] = {}
    for row in hourly:
        if row["aqi"] is None:
            continue
        kept = newest.get(row["point_id"])
        if kept is None or row["ts"] > kept["ts"]:
            newest[row["point_id"]] = row
    if not newest:
        return
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(station_aqi_latest)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["point_id"],
            set_={
                name: excluded[name]
                for name in ("ts", "aqi", "level", "primary_pollutants", "computed_at")
            },
            where=excluded.ts >= station_aqi_latest.c.ts,
        ),
        [
            {
                name: row[name]
                for name in ("point_id", "ts", "aqi", "level", "primary_pollutants", "computed_at")
            }
            for row in newest.values()
        ],
    )
    bump_counter(connection, "station_aqi_latest")


@dataclass
class Recomputed:
    """The derived rows one batch rewrote (what the alarm rules look at)."""

    hours: list[dict[str, Any]]
    days: list[dict[str, Any]]
    aqi: list[dict[str, Any]]


def recompute(
    connection: Connection,
    dirty_hours: set[SeriesHour],
    points: dict[int, PointInfo],
    now: dt.datetime,
    open_hours: OpenHours | None = None,
) -> Recomputed:
    """Recompute every hour in ``dirty_hours``, the days containing them and the AQI
    (``open_hours``: see :func:`recompute_hours`)."""
    if not dirty_hours:
        return Recomputed([], [], [])
    dirty_days, hour_rows = recompute_hours(connection, dirty_hours, points, now, open_hours)
    day_rows = recompute_days(connection, dirty_days, points, now)
    aqi_hours = {
        (point_id, hour)
        for point_id, code, hour in dirty_hours
        if points[point_id].ambient_air and code in AQI_PARAMETERS
    }
    aqi_days = {
        (point_id, day)
        for point_id, code, day in dirty_days
        if points[point_id].ambient_air and code in AQI_PARAMETERS
    }
    return Recomputed(hour_rows, day_rows, recompute_aqi(connection, aqi_hours, aqi_days, now))
