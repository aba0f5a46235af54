"""Moving averages of hourly air-quality data (滑动平均): the 24-hour means, the O3 8-hour
mean and the maxima that the real-time report (实时报) publishes next to the hourly
values (GB 3095-2012, HJ 663-2013, HJ 633-2012).

Hourly data are arrays whose last axis is consecutive hours; every value is labelled by
the end of its hour (the 16:00 value covers 15:00-16:00; HJ 663-2013 Table A.1). Missing
values are NaN. A window that reaches back before the first element counts those hours
as missing: pass the previous day's hours in front to get the whole window.

Every function defaults to the standards' text. Where the national real-time platform
(CNEMC, 全国城市空气质量实时发布平台) does something else, the publisher's practice is a
named option: :data:`CNEMC_MIN_HOURS`, ``first_hour`` (windows kept inside the natural
day) and ``partial``, collected in :data:`CNEMC_REALTIME` and :data:`CNEMC_REALTIME_2025`.
The evidence for each is in ``docs/standards.md`` ("Validation on real CNEMC data").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecohub.standards.air_assessment import MIN_HOURS_FOR_8H_MEAN, MIN_HOURS_FOR_DAILY_MEAN

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

HOURS_PER_DAY = 24
EIGHT_HOURS = 8
# GB 3095-2012 Table 4 (污染物浓度数据有效性的最低要求).
MIN_HOURS_24H = MIN_HOURS_FOR_DAILY_MEAN  # 24-hour mean: at least 20 hourly values
MIN_HOURS_8H = MIN_HOURS_FOR_8H_MEAN  # 8-hour mean: at least 6 hourly values
# CNEMC's real-time platform publishes a moving average from as few as one hourly value.
CNEMC_MIN_HOURS = 1
# Distance from a half, at the kept precision, below which a value counts as a half: the
# floating-point image of an exact half such as 12.5 or 1.25 (means of data with one
# decimal lie at least 1/(2·24) of a unit away from a half otherwise).
_HALF_TOLERANCE = 1e-6


def round_half_even(values: ArrayLike, decimals: int = 0) -> FloatArray:
    """Round to ``decimals`` places by GB/T 8170-2008, 3.3 (数值修约规则, "四舍六入五成双"),
    the rule HJ 663-2013 refers to for its statistics: a dropped part below a half goes
    down, above a half goes up, exactly a half leaves an even last kept digit.

    NaN stays NaN. Values within 1e-6 of a half (at the kept precision) count as a half.
    """
    scale = 10.0**decimals
    scaled = np.asarray(values, dtype=float) * scale
    floor = np.floor(scaled)
    fraction = scaled - floor
    half = np.abs(fraction - 0.5) < _HALF_TOLERANCE
    with np.errstate(invalid="ignore"):
        up = np.where(half, np.mod(floor, 2) == 1, fraction > 0.5)
    return np.asarray((floor + up) / scale, dtype=float)


def is_half(values: ArrayLike, decimals: int = 0) -> NDArray[np.bool_]:
    """Whether each value lies on a half at ``decimals`` places (where rounding rules
    differ: 12.5 → 12 half-even, 13 half-up)."""
    scaled = np.asarray(values, dtype=float) * 10.0**decimals
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(scaled - np.floor(scaled) - 0.5) < _HALF_TOLERANCE)


def hour_in_day(n_hours: int, first_hour: int) -> IntArray:
    """Position of each hour within its natural day (自然日, 0:00-24:00), 0-23.

    Hours are labelled by the end of their hour, so the day's first hour is labelled 1
    (00:00-01:00) and its last is labelled 0 of the next date (23:00-24:00, HJ 663-2013's
    "24 时"). ``first_hour`` is the label (0-23) of element 0.
    """
    labels = (first_hour + np.arange(n_hours)) % HOURS_PER_DAY
    return np.asarray((labels - 1) % HOURS_PER_DAY, dtype=np.int64)


def window_reach(n_hours: int, hours: int, *, first_hour: int | None = None) -> IntArray:
    """How many hours back the window of each of ``n_hours`` consecutive hours reaches:
    ``hours − 1`` for a trailing window; with ``first_hour`` (the label, 0-23, of element
    0) no further back than the natural day's first hour (label 1)."""
    reach = np.full(n_hours, hours - 1, dtype=np.int64)
    if first_hour is not None:
        reach = np.minimum(reach, hour_in_day(n_hours, first_hour))
    return reach


def _window_view(values: FloatArray, longest: int, fill: float) -> FloatArray:
    """Each hour's last ``longest`` hours as a new last axis (a view), oldest first;
    hours before element 0 hold ``fill``."""
    padded = np.concatenate([np.full((*values.shape[:-1], longest - 1), fill), values], axis=-1)
    return np.lib.stride_tricks.sliding_window_view(padded, longest, axis=-1)


def _inside(reach: IntArray) -> NDArray[np.bool_]:
    """(n, longest): whether each position of each hour's window is inside the window."""
    longest = int(reach.max(initial=0)) + 1
    back = np.arange(longest - 1, -1, -1)  # hours back from the window's end
    return np.asarray(back[np.newaxis, :] <= reach[:, np.newaxis])


def _window_sum(values: FloatArray, reach: IntArray) -> FloatArray:
    inside = _inside(reach)
    view = _window_view(values, inside.shape[1], 0.0)
    # Each window summed on its own (no running sums that drift over long series).
    return np.asarray(np.einsum("...nk,nk->...n", view, inside.astype(float)), dtype=float)


def valid_hours(hourly: ArrayLike, reach: IntArray) -> FloatArray:
    """Number of valid (non-NaN) values over hours h − reach[h] … h, along the last
    axis (``reach`` as from :func:`window_reach`); hours before element 0 count as
    missing."""
    present = ~np.isnan(np.asarray(hourly, dtype=float))
    return _window_sum(present.astype(float), np.asarray(reach))


def _window_mean(values: FloatArray, reach: IntArray, min_hours: int) -> FloatArray:
    present = ~np.isnan(values)
    total = _window_sum(np.where(present, values, 0.0), reach)
    count = _window_sum(present.astype(float), reach)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    return np.asarray(np.where(count >= max(min_hours, 1), mean, np.nan), dtype=float)


def _window_max(values: FloatArray, reach: IntArray, min_values: int) -> FloatArray:
    present = ~np.isnan(values)
    inside = _inside(reach)
    view = _window_view(np.where(present, values, -np.inf), inside.shape[1], -np.inf)
    peak = np.where(inside, view, -np.inf).max(axis=-1)
    count = _window_sum(present.astype(float), reach)
    return np.asarray(np.where(count >= max(min_values, 1), peak, np.nan), dtype=float)


def moving_mean(hourly: ArrayLike, hours: int, *, min_hours: int) -> FloatArray:
    """Mean of the ``hours`` hourly values ending at each hour (h − hours + 1 … h), along
    the last axis; NaN where fewer than ``min_hours`` of them are valid."""
    values = np.asarray(hourly, dtype=float)
    return _window_mean(values, window_reach(values.shape[-1], hours), min_hours)


def moving_max(hourly: ArrayLike, hours: int, *, min_hours: int = 1) -> FloatArray:
    """Largest of the ``hours`` hourly values ending at each hour, along the last axis;
    NaN where fewer than ``min_hours`` of them are valid."""
    values = np.asarray(hourly, dtype=float)
    return _window_max(values, window_reach(values.shape[-1], hours), min_hours)


def mean_24h(hourly: ArrayLike, *, min_hours: int = MIN_HOURS_24H) -> FloatArray:
    """24-hour moving mean (24 小时滑动平均) of SO2, NO2, PM10, PM2.5 or CO, for each hour:
    the mean of hours h − 23 … h.

    GB 3095-2012, 3.10 and Table 4: a 24-hour mean needs at least 20 valid hourly values
    (``min_hours``). CNEMC's real-time platform publishes it from any number of valid
    hours (``min_hours=CNEMC_MIN_HOURS``) and rounds it half-even
    (:func:`round_half_even`; CO to one decimal, the others to integers).
    """
    return moving_mean(hourly, HOURS_PER_DAY, min_hours=min_hours)


def o3_8h_mean(
    hourly: ArrayLike,
    *,
    min_hours: int = MIN_HOURS_8H,
    first_hour: int | None = None,
    partial: bool = True,
) -> FloatArray:
    """O3 8-hour moving mean (臭氧 8 小时滑动平均) for each hour.

    HJ 663-2013 Table A.1: the 8-hour mean at hour X is the mean of the 1-hour values of
    X − 7 … X; GB 3095-2012 Table 4: valid with at least 6 of them (``min_hours``). The
    windows run across midnight.

    CNEMC's real-time platform keeps the window inside the natural day: pass
    ``first_hour`` (the label, 0-23, of element 0). From the day's 8th hour (label 8) to
    its 24th (label 0 of the next date, 24:00) the window is the full X − 7 … X; at the
    day's first hours (labels 1 … 7) it covers hours 1 … X only (``partial=True``, the
    2019-2023 files) or there is no value (``partial=False``, the 2025 files). With
    ``min_hours=CNEMC_MIN_HOURS`` this is what the platform publishes as ``O3_8h``
    (rounded half-even to an integer).
    """
    values = np.asarray(hourly, dtype=float)
    n = values.shape[-1]
    reach = window_reach(n, EIGHT_HOURS, first_hour=first_hour)
    means = _window_mean(values, reach, min_hours)
    if first_hour is not None and not partial:
        means[..., reach < EIGHT_HOURS - 1] = np.nan
    return means


def o3_1h_max_24h(hourly: ArrayLike, *, min_hours: int = 1) -> FloatArray:
    """Largest O3 1-hour value of the past 24 hours (h − 23 … h), published by the
    real-time platform as ``O3_24h``; NaN with fewer than ``min_hours`` valid hours.

    HJ 633-2012 has no such indicator for the hourly report: it is the running form of
    the daily report's "O3 daily maximum 1-hour mean" (HJ 633-2012 Table 1 and 5.2), and
    the platform publishes it from any number of valid hours.
    """
    return moving_max(hourly, HOURS_PER_DAY, min_hours=min_hours)


def o3_8h_max(
    eight_hour: ArrayLike,
    *,
    first_hour: int | None = None,
    min_values: int = 1,
) -> FloatArray:
    """Largest O3 8-hour mean up to each hour, from the 8-hour means of
    :func:`o3_8h_mean` (published by the real-time platform as ``O3_8h_24h``).

    By default the maximum of the past 24 hours (the 8-hour means ending h − 23 … h).

    CNEMC's real-time platform takes the maximum within the natural day instead: pass
    ``first_hour`` (the label of element 0). At the day's hours labelled 1 … 23 it is the
    largest 8-hour mean of the day so far, the first partial windows (labels 1 … 7) of
    :func:`o3_8h_mean` included; at 24:00 (label 0 of the next date) it is the daily
    value of HJ 663-2013, the largest of the windows ending 8:00 … 24:00 only. (The daily
    report's statistic with its validity rule, at least 14 valid windows, is
    :func:`ecohub.standards.air_assessment.o3_daily_max_8h`.)
    NaN with fewer than ``min_values`` valid 8-hour means.
    """
    values = np.asarray(eight_hour, dtype=float)
    n = values.shape[-1]
    if first_hour is None:
        reach = window_reach(n, HOURS_PER_DAY)
    else:
        reach = hour_in_day(n, first_hour)
        day_end = reach == HOURS_PER_DAY - 1
        reach = np.where(day_end, HOURS_PER_DAY - EIGHT_HOURS, reach)
    return _window_max(values, reach, min_values)


@dataclass(frozen=True)
class MovingAverageRules:
    """The rules for recomputing a whole set of moving averages (see the functions)."""

    name: str
    min_hours_24h: int = MIN_HOURS_24H
    min_hours_8h: int = MIN_HOURS_8H
    o3_within_day: bool = False  # 8-hour windows and their maximum kept inside the day
    o3_partial: bool = True  # within the day: 8-hour means at the day's first 7 hours

    def eight_hour(self, hourly: ArrayLike, first_hour: int) -> FloatArray:
        """The O3 8-hour means (:func:`o3_8h_mean`); ``first_hour``: label of element 0."""
        return o3_8h_mean(
            hourly,
            min_hours=self.min_hours_8h,
            first_hour=first_hour if self.o3_within_day else None,
            partial=self.o3_partial,
        )

    def eight_hour_max(self, eight_hour: ArrayLike, first_hour: int) -> FloatArray:
        """Their maximum (:func:`o3_8h_max`)."""
        return o3_8h_max(eight_hour, first_hour=first_hour if self.o3_within_day else None)


# The standards' text: GB 3095-2012 Table 4 thresholds, HJ 663-2013 trailing windows.
STANDARD = MovingAverageRules(name="standard")
# What the CNEMC real-time platform publishes, established on the CNEMC files in the
# shared data (docs/standards.md, "Validation on real CNEMC data"): the 2019-2023 files…
CNEMC_REALTIME = MovingAverageRules(
    name="cnemc",
    min_hours_24h=CNEMC_MIN_HOURS,
    min_hours_8h=CNEMC_MIN_HOURS,
    o3_within_day=True,
)
# … and the 2025 files, which publish no 8-hour mean at the day's first 7 hours.
CNEMC_REALTIME_2025 = replace(CNEMC_REALTIME, name="cnemc-2025", o3_partial=False)
