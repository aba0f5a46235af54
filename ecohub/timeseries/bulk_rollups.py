"""Rollups and station AQI of whole days of hourly observations at once, on columns: the
rows :mod:`ecohub.timeseries.rollups` writes for the same observations, for bulk imports
of history (``ecohub import cnemc``).

It covers what such an import holds: observations of the hourly data kind, at most one
per series and hour, of local days that hold no other stored values of those series (the
caller checks that; days that do go through :func:`ecohub.timeseries.rollups.recompute`).
Then, by :mod:`ecohub.timeseries.rules`:

- an hour's rollup is its one value (basis ``hour``), valid when the value is valid
  (no invalidating quality flag), with that value's flags;
- a day's rollup follows :func:`~ecohub.timeseries.rules.daily_rollup` (GB 3095-2012
  Table 4: ambient air needs 20 valid hours; sources the same share of their expected
  hours), and for ambient O3 :func:`~ecohub.timeseries.rules.daily_rollups` adds the
  daily maximum 8-hour mean and maximum 1-hour mean (HJ 663-2013);
- the hourly and daily AQI of an ambient station (HJ 633-2012) is
  :func:`ecohub.timeseries.aqi.group_aqi` of a group of one station: the mean of one
  value is that value, so the columns go to the same HJ 633 functions directly
  (``tests/test_cnemc_import.py`` compares the two).

Sums of a day's hours are added in time order, as the databases add them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from ecohub.quality.flags import INVALIDATING
from ecohub.registry.directory import PointInfo
from ecohub.standards.air_assessment import daily_max, o3_daily_max_8h
from ecohub.standards.aqi import AQIResult, daily_aqi, hourly_aqi
from ecohub.timeseries.aqi import DAILY_CODES, HOURLY_CODES
from ecohub.timeseries.rules import (
    AQI_PARAMETERS,
    O3,
    O3_MAX_1H,
    O3_MAX_8H,
    min_hours_for_day,
    statistic_of,
)

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
_EXTRA_STATISTICS = {O3_MAX_8H: "max8h", O3_MAX_1H: "max1h"}


@dataclass(frozen=True)
class HourlyColumns:
    """Hourly observations of several series, sorted by point, code and time (epoch
    seconds, UTC); ``code`` indexes ``codes``, which are in sorted order."""

    codes: tuple[str, ...]
    point: Ints
    code: Ints
    ts: Ints
    value: Floats
    flag: Ints

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class RollupColumns:
    """Rollup rows as columns (``value`` NaN where the row's value is NULL)."""

    period: str  # hour or day
    codes: tuple[str, ...]
    point: Ints
    code: Ints
    ts: Ints
    value: Floats
    samples: Ints
    received: Ints
    valid: Bools
    flags: Ints
    # Hours recomputed without any value (basis "none"), as recompute_hours writes them
    # for the hours of a flat-line range that hold no value; None: no such row.
    empty: Bools | None = None

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def statistics(self) -> tuple[str, ...]:
        """The statistic of each code (indexed like ``codes``)."""
        return tuple(_EXTRA_STATISTICS.get(code) or statistic_of(code) for code in self.codes)


@dataclass(frozen=True)
class AqiColumns:
    """Station AQI rows as columns (``aqi`` NaN where it is NULL)."""

    period: str
    point: Ints
    ts: Ints
    aqi: Floats
    level: Ints
    primary_pollutants: list[str]
    iaqi: list[str]  # JSON objects, as recompute_aqi writes them

    def __len__(self) -> int:
        return len(self.ts)


def hourly_rollups(hours: HourlyColumns) -> RollupColumns:
    """Each observation's hourly rollup (basis ``hour``: its own value)."""
    valid = (hours.flag & INVALIDATING) == 0
    return RollupColumns(
        "hour",
        hours.codes,
        hours.point,
        hours.code,
        hours.ts,
        np.where(valid, hours.value, np.nan),
        valid.astype(np.int64),
        np.ones(len(hours), dtype=np.int64),
        valid,
        hours.flag,
    )


def with_empty_hours(hourly: RollupColumns, point: Ints, code: Ints, ts: Ints) -> RollupColumns:
    """``hourly`` and rows for hours recomputed without values (basis ``none``: no
    value, no samples, invalid), as :func:`ecohub.timeseries.rollups.recompute_hours`
    writes for hours that hold none."""
    if not len(ts):
        return hourly
    none = np.zeros(len(ts), dtype=np.int64)
    return RollupColumns(
        "hour",
        hourly.codes,
        np.concatenate([hourly.point, point]),
        np.concatenate([hourly.code, code]),
        np.concatenate([hourly.ts, ts]),
        np.concatenate([hourly.value, np.full(len(ts), np.nan)]),
        np.concatenate([hourly.samples, none]),
        np.concatenate([hourly.received, none]),
        np.concatenate([hourly.valid, np.zeros(len(ts), dtype=bool)]),
        np.concatenate([hourly.flags, none]),
        np.concatenate([np.zeros(len(hourly), dtype=bool), np.ones(len(ts), dtype=bool)]),
    )


def daily_rollups(
    hours: RollupColumns,
    day_of: Callable[[Ints], Ints],
    points: Mapping[int, PointInfo],
) -> RollupColumns:
    """The daily rollups of the local days of ``hours`` (hourly rollups sorted by
    point, code and time); ``day_of`` maps hour starts to the start of their local
    day (epoch seconds)."""
    day = day_of(hours.ts)
    series = hours.point * len(hours.codes) + hours.code
    starts = np.flatnonzero(
        np.concatenate([[True], (series[1:] != series[:-1]) | (day[1:] != day[:-1])])
    )
    group = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(hours))))
    good = hours.valid & ~np.isnan(hours.value)
    count = np.bincount(group, weights=good, minlength=len(starts)).astype(np.int64)
    received = np.bincount(group, weights=hours.received, minlength=len(starts)).astype(np.int64)
    # Added one by one in time order (bincount), as the databases' SUM adds them.
    total = np.bincount(group, weights=np.where(good, hours.value, 0.0), minlength=len(starts))
    point, code, ts = hours.point[starts], hours.code[starts], day[starts]
    needed = np.array(
        [min_hours_for_day(points[p].interval_seconds, points[p].ambient_air) for p in point],
        dtype=np.int64,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    codes = hours.codes
    o3 = codes.index(O3) if O3 in codes else -1
    ambient = np.array([points[p].ambient_air for p in point], dtype=bool)
    ozone = np.flatnonzero((code == o3) & ambient)
    if not len(ozone):
        return RollupColumns(
            "day", codes, point, code, ts, mean, count, received, count >= needed,
            np.zeros(len(starts), dtype=np.int64),
        )  # fmt: skip
    # Ambient O3: its hours by local hour for the 8-hour and 1-hour maxima (HJ 663-2013);
    # its own mean is math.fsum of the valid hours, as rules.daily_rollups takes it.
    grid = np.full((len(ozone), 24), np.nan)
    slot = np.full(len(starts), -1)
    slot[ozone] = np.arange(len(ozone))
    row_slot = slot[group]
    hour_index = (hours.ts - day) // 3600
    placed = (row_slot >= 0) & good & (hour_index >= 0) & (hour_index < 24)
    grid[row_slot[placed], hour_index[placed]] = hours.value[placed]
    for index, found in zip(ozone.tolist(), grid, strict=True):
        valid_hours = found[~np.isnan(found)]
        if len(valid_hours):
            mean[index] = math.fsum(valid_hours.tolist()) / len(valid_hours)
    peaks = {O3_MAX_8H: o3_daily_max_8h(grid), O3_MAX_1H: daily_max(grid)}
    codes = (*codes, O3_MAX_8H, O3_MAX_1H)
    extra_point = np.concatenate([point[ozone], point[ozone]])
    extra_code = np.repeat([len(codes) - 2, len(codes) - 1], len(ozone))
    extra_value = np.concatenate([peaks[O3_MAX_8H], peaks[O3_MAX_1H]])
    extra_count = np.concatenate([count[ozone], count[ozone]])
    extra_received = np.concatenate([received[ozone], received[ozone]])
    return RollupColumns(
        "day",
        codes,
        np.concatenate([point, extra_point]),
        np.concatenate([code, extra_code]),
        np.concatenate([ts, ts[ozone], ts[ozone]]),
        np.concatenate([mean, extra_value]),
        np.concatenate([count, extra_count]),
        np.concatenate([received, extra_received]),
        np.concatenate([count >= needed, ~np.isnan(extra_value)]),
        np.zeros(len(starts) + 2 * len(ozone), dtype=np.int64),
    )


def station_aqi(rollups: RollupColumns, ambient: Callable[[int], bool]) -> AqiColumns:
    """The AQI of each ambient station's hour (or day) in ``rollups``: from its valid
    rollups of the AQI series (HJ 633-2012), as recompute_aqi computes it."""
    wanted = HOURLY_CODES if rollups.period == "hour" else DAILY_CODES
    touching = np.array([code in AQI_PARAMETERS for code in rollups.codes], dtype=bool)
    is_ambient = _per_point(rollups.point, ambient)
    chosen = is_ambient & touching[rollups.code]
    # (point, time) as one number: np.unique over pairs sorts far slower.
    base = int(rollups.ts.min()) if len(rollups) else 0
    span = int(rollups.ts.max()) - base + 1 if len(rollups) else 1
    keys = np.unique(rollups.point[chosen] * span + (rollups.ts[chosen] - base))
    point, ts = keys // span, keys % span + base
    columns: dict[str, Floats] = {code: np.full(len(ts), np.nan) for code in wanted}
    where = np.flatnonzero(is_ambient & rollups.valid & ~np.isnan(rollups.value))
    at = _positions(point, ts, rollups.point[where], rollups.ts[where])
    for index, code in enumerate(rollups.codes):
        if code in columns:
            mine = (rollups.code[where] == index) & (at >= 0)
            factor = AQI_PARAMETERS[code][1] if code in AQI_PARAMETERS else 1.0
            columns[code][at[mine]] = rollups.value[where[mine]] * factor
    result = _aqi(columns, rollups.period)
    aqi = np.asarray(result.aqi, dtype=float)
    return AqiColumns(
        rollups.period,
        point,
        ts,
        aqi,
        np.asarray(result.level, dtype=np.int64),
        _primary_pollutants(result),
        _iaqi_json(result),
    )


def _per_point(point: Ints, test: Callable[[int], bool]) -> Bools:
    """``test`` of each row's point, called once per point."""
    if not len(point):
        return np.zeros(0, dtype=bool)
    if np.all(point[1:] >= point[:-1]):  # runs of points: no sorting
        starts = np.flatnonzero(np.concatenate([[True], point[1:] != point[:-1]]))
        found = np.array([test(int(p)) for p in point[starts]], dtype=bool)
        return np.repeat(found, np.diff(np.append(starts, len(point))))
    distinct, inverse = np.unique(point, return_inverse=True)
    return np.array([test(int(p)) for p in distinct], dtype=bool)[inverse.reshape(-1)]


def _positions(point: Ints, ts: Ints, find_point: Ints, find_ts: Ints) -> Ints:
    """Index of each (find_point, find_ts) in the sorted unique keys (point, ts), -1 if
    absent."""
    if not len(point):
        return np.full(len(find_point), -1)
    span = int(max(ts.max(), find_ts.max() if len(find_ts) else 0)) + 1
    keys = point * span + ts
    found = find_point * span + find_ts
    index = np.searchsorted(keys, found).clip(0, len(keys) - 1)
    return np.where(keys[index] == found, index, -1)


def _aqi(columns: Mapping[str, Floats], period: str) -> AQIResult:
    """The HJ 633 call of :func:`ecohub.timeseries.aqi.group_aqi`."""
    if period == "hour":
        return hourly_aqi(
            so2=columns["a21026"],
            no2=columns["a21004"],
            pm10=columns["a34002"],
            pm25=columns["a34004"],
            co=columns["a21005"],
            o3=columns[O3],
        )
    return daily_aqi(
        so2=columns["a21026"],
        no2=columns["a21004"],
        pm10=columns["a34002"],
        pm25=columns["a34004"],
        co=columns["a21005"],
        o3_1h_max=columns[O3_MAX_1H],
        o3_8h_max=columns[O3_MAX_8H],
    )


def _primary_pollutants(result: AQIResult) -> list[str]:
    """AQIResult.primary_pollutants joined by commas, built on columns."""
    names = list(result.iaqi)
    with np.errstate(invalid="ignore"):
        frame = pl.DataFrame(
            {name: (result.iaqi[name] == result.aqi) & (result.aqi > 50) for name in names}
        )
    joined = frame.select(
        pl.concat_str(
            [pl.when(pl.col(name)).then(pl.lit(name)) for name in names],
            separator=",",
            ignore_nulls=True,
        )
    )
    return _strings(joined)


def _iaqi_json(result: AQIResult) -> list[str]:
    """``json.dumps({name: int(iaqi)}, sort_keys=True)`` of each row, built on columns."""
    names = sorted(result.iaqi)
    frame = pl.DataFrame({name: result.iaqi[name] for name in names}, nan_to_null=True)
    body = frame.select(
        pl.concat_str(
            [pl.lit(f'"{name}": ') + pl.col(name).cast(pl.Int64).cast(pl.Utf8) for name in names],
            separator=", ",
            ignore_nulls=True,
        )
    )
    return ["{" + text + "}" for text in _strings(body)]


def _strings(frame: pl.DataFrame) -> list[str]:
    return [text or "" for text in frame.to_series().to_list()]
