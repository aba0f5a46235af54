"""Hourly and daily statistics of a monitoring point's series, with their validity rules.

Pure functions over plain data; :mod:`ecohub.timeseries.rollups` reads the inputs from the
store and writes the results.

Hourly value of a series (HJ 212 data kinds, most authoritative first):

1. the data logger's own hourly value (CN 2061), when it sent one;
2. otherwise the mean (or sum, max, min) of its valid minute values (CN 2051);
3. otherwise of its valid real-time values (CN 2011).

An hour computed from minute or real-time values is valid when its valid values cover at
least 45 minutes (GB 3095-2012 Table 4 for ambient air: "每小时至少有 45 分钟的采样时间";
HJ 75-2017 11.2 for flue-gas CEMS: an hourly mean from at least 45 minutes of valid data).
Each value covers the point's configured spacing of that kind.

Daily value (local calendar day): from the valid hourly values. Ambient air (GB 3095-2012
Table 4 as amended in 2018): at least 20 valid hours; the O3 daily maximum 8-hour mean and
maximum 1-hour mean follow HJ 663-2013 (see :mod:`ecohub.standards.air_assessment`).
Pollution sources (HJ 75-2017 11.2, HJ 355-2019): the same 20-of-24 share of the hours the
point is expected to report (24 for an hourly or faster point, 12 for a point that reports
every two hours), so that a water sampler is judged on its own schedule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ecohub.quality.flags import is_valid
from ecohub.standards.air_assessment import (
    MIN_HOURS_FOR_DAILY_MEAN,
    daily_max,
    o3_daily_max_8h,
)

MIN_COVERED_SECONDS_PER_HOUR = 45 * 60
BASIS_ORDER = ("hour", "min", "rt")
O3 = "a05024"
O3_MAX_8H = "a05024-8hmax"
O3_MAX_1H = "a05024-1hmax"

# Parameter code → (HJ 633 pollutant argument, factor from the parameter table's unit to
# HJ 633's: SO2 and NO2 are stored in mg/m³ (HJ 212-2017 table), AQI uses μg/m³).
AQI_PARAMETERS: dict[str, tuple[str, float]] = {
    "a21026": ("so2", 1000.0),
    "a21004": ("no2", 1000.0),
    "a34002": ("pm10", 1.0),
    "a34004": ("pm25", 1.0),
    "a21005": ("co", 1.0),
    "a05024": ("o3", 1.0),
}


def statistic_of(parameter_code: str) -> str:
    """How a series is aggregated over time: emitted masses (``-Cou``) are summed, a
    series of maxima keeps the maximum, of minima the minimum, everything else is
    averaged."""
    _, _, suffix = parameter_code.partition("-")
    if suffix == "Cou":
        return "sum"
    if suffix in ("Max", "ZsMax"):
        return "max"
    if suffix in ("Min", "ZsMin"):
        return "min"
    return "mean"


def rollup_code(parameter_code: str) -> str:
    """The series an observation rolls up into: real-time converted values
    (``-ZsRtd``) roll up into the converted mean (``-ZsAvg``) that minute and hourly
    packets carry."""
    if parameter_code.endswith("-ZsRtd"):
        return parameter_code[: -len("ZsRtd")] + "ZsAvg"
    return parameter_code


def source_codes(series_code: str) -> tuple[str, ...]:
    """The parameter codes whose observations roll up into ``series_code`` (the inverse
    of :func:`rollup_code`)."""
    if series_code.endswith("-ZsAvg"):
        return series_code, series_code[: -len("ZsAvg")] + "ZsRtd"
    return (series_code,)


class Rollup(NamedTuple):
    """One hourly or daily statistic of one series."""

    value: float | None
    statistic: str
    samples: int  # valid values used
    received: int  # values present, valid or not
    valid: bool
    basis: str  # hour, min or rt for an hour; hour for a day


def _aggregate(values: Sequence[float], statistic: str) -> float | None:
    if not values:
        return None
    if statistic == "sum":
        return math.fsum(values)
    if statistic == "max":
        return max(values)
    if statistic == "min":
        return min(values)
    return math.fsum(values) / len(values)


class BasisSummary(NamedTuple):
    """One hour of one series of one data kind (real-time, minute or hourly values),
    reduced to what the hourly rules need: the store computes these in its query, so that
    recomputing an hour costs the same however many values it holds. (A named tuple: a
    writer builds tens of thousands per recomputation.)"""

    received: int  # values present, valid or not
    good: int  # valid values
    total: float  # sum of the valid values
    low: float | None  # least valid value
    high: float | None  # greatest valid value

    @classmethod
    def of(cls, rows: Sequence[tuple[float | None, int]]) -> BasisSummary:
        """The summary of ``(value, quality_flag)`` pairs."""
        good = [value for value, flag in rows if value is not None and is_valid(flag)]
        return cls(
            len(rows),
            len(good),
            math.fsum(good),
            min(good) if good else None,
            max(good) if good else None,
        )

    def merged(self, other: BasisSummary) -> BasisSummary:
        """Both summaries as one (values of two parameter codes rolling up into one series)."""
        return BasisSummary(
            self.received + other.received,
            self.good + other.good,
            self.total + other.total,
            _extreme(min, self.low, other.low),
            _extreme(max, self.high, other.high),
        )

    def statistic(self, statistic: str) -> float | None:
        """The hour's value by ``statistic`` (see :func:`statistic_of`)."""
        if not self.good:
            return None
        if statistic == "sum":
            return self.total
        if statistic == "max":
            return self.high
        if statistic == "min":
            return self.low
        return self.total / self.good


def _extreme(pick: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(pick(a, b))


def hourly_rollup(
    by_basis: Mapping[str, BasisSummary],
    statistic: str,
    *,
    interval_seconds: int,
    minute_interval_seconds: int,
) -> Rollup | None:
    """The hourly statistic from one hour's observations of one series, summarised per
    interval kind; None when the hour has none."""
    for basis in BASIS_ORDER:
        summary = by_basis.get(basis)
        if summary is not None and summary.received:
            break
    else:
        return None
    if basis == "hour":
        valid = summary.good >= 1
    else:
        spacing = minute_interval_seconds if basis == "min" else interval_seconds
        valid = summary.good * spacing >= MIN_COVERED_SECONDS_PER_HOUR
    return Rollup(
        summary.statistic(statistic), statistic, summary.good, summary.received, valid, basis
    )


def expected_hours_per_day(interval_seconds: int) -> int:
    """Hourly values a point can deliver in a day: 24, or fewer for a point reporting
    less often than hourly (a water sampler every 2 h: 12)."""
    return max(1, min(24, 86400 // max(interval_seconds, 3600)))


def min_hours_for_day(interval_seconds: int, ambient_air: bool) -> int:
    """Valid hours needed for a valid daily value (see the module docstring)."""
    if ambient_air:
        return MIN_HOURS_FOR_DAILY_MEAN
    return math.ceil(expected_hours_per_day(interval_seconds) * MIN_HOURS_FOR_DAILY_MEAN / 24)


def daily_rollup(
    parameter_code: str,
    hours: BasisSummary,
    *,
    interval_seconds: int,
    ambient_air: bool,
) -> Rollup:
    """A series' own daily statistic from its day's hourly values, summarised: ``good``
    counts the valid hours (their ``total``, ``low`` and ``high``), ``received`` the raw
    values of all its hours."""
    statistic = statistic_of(parameter_code)
    needed = min_hours_for_day(interval_seconds, ambient_air)
    # Ambient air needs MIN_HOURS_FOR_DAILY_MEAN (GB 3095-2012 Table 4), as
    # ecohub.standards.air_assessment.daily_mean; an invalid day keeps its value for display.
    return Rollup(
        hours.statistic(statistic),
        statistic,
        hours.good,
        hours.received,
        hours.good >= needed,
        "hour",
    )


def daily_rollups(
    parameter_code: str,
    hourly: Sequence[float | None],
    received: int,
    *,
    interval_seconds: int,
    ambient_air: bool,
) -> dict[str, Rollup]:
    """Daily statistics of one series from its 24 hourly values (index = local hour,
    None where the hour is missing or invalid). Returns the series' own daily value and,
    for ambient O3, also the daily maximum 8-hour and 1-hour means."""
    good = [value for value in hourly if value is not None]
    hours = BasisSummary(
        received, len(good), math.fsum(good), min(good, default=None), max(good, default=None)
    )
    own = daily_rollup(
        parameter_code, hours, interval_seconds=interval_seconds, ambient_air=ambient_air
    )
    result = {parameter_code: own}
    if ambient_air and parameter_code == O3:
        array = np.array(hourly, dtype=float)  # None → NaN
        for code, statistic, peak in (
            (O3_MAX_8H, "max8h", float(o3_daily_max_8h(array))),
            (O3_MAX_1H, "max1h", float(daily_max(array))),
        ):
            valid = not math.isnan(peak)
            result[code] = Rollup(
                peak if valid else None, statistic, len(good), received, valid, "hour"
            )
    return result
