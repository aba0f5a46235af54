"""Ambient air quality assessment per HJ 663-2013 (环境空气质量评价技术规范（试行）) with the
limits and data-validity rules of GB 3095-2012 (环境空气质量标准).

Hourly data are arrays whose last axis is the 24 hours of a day (index h covers
h:00-h+1:00, local time), e.g. shape (stations, days, 24); daily data drop that axis.
Missing values are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecohub.standards.aqi import aqi_level
from ecohub.standards.tables import read_table

FloatArray = NDArray[np.float64]

# GB 3095-2012 Table 4 (污染物浓度数据有效性的最低要求).
MIN_HOURS_FOR_DAILY_MEAN = 20  # 24-hour mean: at least 20 hourly values
MIN_HOURS_FOR_8H_MEAN = 6  # 8-hour mean: at least 6 hourly values
MIN_DAYS_PER_YEAR = 324  # annual mean: at least 324 daily values a year
MIN_DAYS_PER_MONTH = 27  # ... and 27 a month
MIN_DAYS_IN_FEBRUARY = 25  # ... 25 in February
# HJ 663-2013 and GB 3095-2012 Table 4: O3 daily maximum 8-hour mean needs at least
# 14 valid 8-hour means between 8:00 and 24:00; with fewer it still counts when it
# exceeds the limit.
MIN_WINDOWS_FOR_O3_8H_MAX = 14

# HJ 663-2013, Table 2 (年评价): the percentile of daily values assessed each year.
ANNUAL_PERCENTILE = {"SO2": 98, "NO2": 98, "PM10": 95, "PM2.5": 95, "CO": 95, "O3": 90}


@cache
def limit(pollutant: str, period: str, grade: int = 2) -> float:
    """GB 3095-2012 Table 1/2 concentration limit (μg/m³; CO mg/m³)."""
    for row in read_table("gb3095_limits"):
        if row["pollutant"] == pollutant and row["period"] == period:
            return float(row[f"grade_{grade}"])
    raise KeyError(f"GB 3095-2012 has no {period} limit for {pollutant}")


def daily_mean(hourly: ArrayLike, min_hours: int = MIN_HOURS_FOR_DAILY_MEAN) -> FloatArray:
    """24-hour mean of each day (last axis = 24 hours); NaN with fewer than ``min_hours``
    valid hourly values (GB 3095-2012 Table 4)."""
    values = np.asarray(hourly, dtype=float)
    count = np.count_nonzero(~np.isnan(values), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(values, axis=-1) / count
    return np.where(count >= min_hours, mean, np.nan)


def daily_max(hourly: ArrayLike, min_hours: int = MIN_HOURS_FOR_DAILY_MEAN) -> FloatArray:
    """Daily maximum hourly value (for the O3 daily maximum 1-hour mean), valid with at
    least ``min_hours`` hourly values."""
    values = np.asarray(hourly, dtype=float)
    count = np.count_nonzero(~np.isnan(values), axis=-1)
    peak = np.max(np.where(np.isnan(values), -np.inf, values), axis=-1)
    return np.where(count >= min_hours, peak, np.nan)


def eight_hour_means(hourly: ArrayLike, min_hours: int = MIN_HOURS_FOR_8H_MEAN) -> FloatArray:
    """The 17 eight-hour moving means of each day, windows starting at 0:00 … 16:00
    (ending 8:00 … 24:00; HJ 663-2013, terms and definitions), each valid with at least
    ``min_hours`` hourly values. Returns the last axis 17 long."""
    values = np.asarray(hourly, dtype=float)
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    zero = np.zeros((*values.shape[:-1], 1))
    sums = np.concatenate([zero, np.cumsum(filled, axis=-1)], axis=-1)
    counts = np.concatenate([zero, np.cumsum(present, axis=-1)], axis=-1)
    window_sum = sums[..., 8:25] - sums[..., 0:17]
    window_count = counts[..., 8:25] - counts[..., 0:17]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = window_sum / window_count
    return np.where(window_count >= min_hours, means, np.nan)


def o3_daily_max_8h(
    hourly: ArrayLike,
    *,
    min_windows: int = MIN_WINDOWS_FOR_O3_8H_MAX,
    limit_value: float | None = None,
) -> FloatArray:
    """O3 daily maximum 8-hour mean (臭氧日最大 8 小时滑动平均).

    The largest valid 8-hour mean of windows ending 8:00-24:00; valid with at least 14
    valid windows, or with fewer when it exceeds the limit (default: grade II, 160 μg/m³).
    """
    means = eight_hour_means(hourly)
    valid = np.count_nonzero(~np.isnan(means), axis=-1)
    peak = np.max(np.where(np.isnan(means), -np.inf, means), axis=-1)
    threshold = limit("O3", "8h") if limit_value is None else limit_value
    ok = (valid >= min_windows) | ((valid > 0) & (peak > threshold))
    return np.where(ok, peak, np.nan)


def percentile(daily: ArrayLike, p: float, axis: int = -1) -> FloatArray:
    """The p-th percentile by HJ 663-2013's method (formula (1)-(2)):

    sort X₁ ≤ … ≤ Xₙ; k = 1 + (n − 1)·p/100; s = ⌊k⌋; m_p = X_s + (X_{s+1} − X_s)(k − s).

    This is linear interpolation between closest ranks (NumPy's "linear" method).
    NaNs are ignored.
    """
    values = np.asarray(daily, dtype=float)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanpercentile(values, p, axis=axis, method="linear"))


def annual_valid(daily: ArrayLike, months: ArrayLike) -> NDArray[np.bool_]:
    """Whether a year of daily values meets GB 3095-2012 Table 4: at least 324 valid
    days, and at least 27 in each month (25 in February). ``months`` gives the month
    (1-12) of each day along the last axis."""
    values = np.asarray(daily, dtype=float)
    month_of_day = np.asarray(months)
    present = ~np.isnan(values)
    ok = np.count_nonzero(present, axis=-1) >= MIN_DAYS_PER_YEAR
    for month in range(1, 13):
        needed = MIN_DAYS_IN_FEBRUARY if month == 2 else MIN_DAYS_PER_MONTH
        in_month = month_of_day == month
        ok &= np.count_nonzero(present & in_month, axis=-1) >= needed
    return np.asarray(ok)


@dataclass(frozen=True)
class AnnualStatistic:
    """A pollutant's annual assessment figures for one or many stations/cities."""

    pollutant: str
    mean: FloatArray | None  # annual mean (None for CO and O3, which have none)
    percentile: FloatArray  # the HJ 663 percentile of daily values
    percentile_rank: int
    valid: NDArray[np.bool_]


def annual_statistics(pollutant: str, daily: ArrayLike, months: ArrayLike) -> AnnualStatistic:
    """Annual mean and percentile of daily values (O3: daily maximum 8-hour means) as
    HJ 663-2013 Table 2 assesses them; ``valid`` per GB 3095-2012 Table 4."""
    values = np.asarray(daily, dtype=float)
    rank = ANNUAL_PERCENTILE[pollutant]
    valid = annual_valid(values, months)
    mean = None
    if pollutant not in {"CO", "O3"}:
        with np.errstate(invalid="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.where(valid, np.nanmean(values, axis=-1), np.nan)
    return AnnualStatistic(
        pollutant=pollutant,
        mean=mean,
        percentile=np.where(valid, percentile(values, rank), np.nan),
        percentile_rank=rank,
        valid=valid,
    )


def exceedance_multiple(value: ArrayLike, limit_value: float) -> FloatArray:
    """超标倍数 = (C − S) / S; zero or negative means compliant."""
    return (np.asarray(value, dtype=float) - limit_value) / limit_value


@dataclass(frozen=True)
class Compliance:
    compliant: NDArray[np.bool_]
    multiple: FloatArray  # (C − S)/S; only meaningful where not compliant


def annual_compliance(stat: AnnualStatistic, grade: int = 2) -> Compliance:
    """Annual compliance (年达标): the annual mean within the annual limit, where one
    exists, and the percentile of daily values within the 24-hour limit (O3: 8-hour).
    The multiple is the larger of the two exceedance multiples."""
    daily_period = "8h" if stat.pollutant == "O3" else "24h"
    multiple = exceedance_multiple(stat.percentile, limit(stat.pollutant, daily_period, grade))
    if stat.mean is not None:
        multiple = np.fmax(
            multiple, exceedance_multiple(stat.mean, limit(stat.pollutant, "annual", grade))
        )
    return Compliance(compliant=np.asarray(multiple <= 0), multiple=multiple)


# The comprehensive index compares each pollutant's annual figure with the grade II limit
# of its period: the six single indexes I_i = C_i / S_i, summed (环境空气质量综合指数,
# 城市环境空气质量排名技术规定, 环办监测〔2018〕19号).
COMPREHENSIVE_ITEMS = (
    ("SO2", "annual"),
    ("NO2", "annual"),
    ("PM10", "annual"),
    ("PM2.5", "annual"),
    ("CO", "24h"),  # 95th percentile of daily means
    ("O3", "8h"),  # 90th percentile of daily maximum 8-hour means
)


@dataclass(frozen=True)
class ComprehensiveIndex:
    single: dict[str, FloatArray]  # I_i
    total: FloatArray  # I_sum (ranked ascending: lower is cleaner)
    largest: FloatArray  # I_max
    primary: list[str]  # pollutant with I_max, per element


def comprehensive_index(
    figures: dict[str, ArrayLike], weights: dict[str, float] | None = None
) -> ComprehensiveIndex:
    """Comprehensive air quality index from annual (or monthly) figures.

    ``figures`` maps SO2, NO2, PM10, PM2.5 to their mean concentrations, CO to the 95th
    percentile of daily means and O3 to the 90th percentile of daily maximum 8-hour
    means. ``weights`` (default 1 each) allow the weighted ranking variant.
    """
    single = {
        name: np.asarray(figures[name], dtype=float) / limit(name, period)
        for name, period in COMPREHENSIVE_ITEMS
    }
    stacked = np.stack(list(single.values()))
    factors = np.array([(weights or {}).get(name, 1.0) for name in single])[:, None]
    total = np.sum(stacked.reshape(len(single), -1) * factors, axis=0).reshape(stacked.shape[1:])
    largest = np.max(stacked, axis=0)
    names = list(single)
    primary_index = np.atleast_1d(np.argmax(stacked, axis=0))
    return ComprehensiveIndex(
        single=single,
        total=total,
        largest=largest,
        primary=[names[i] for i in primary_index],
    )


@dataclass(frozen=True)
class CategoryDays:
    counts: dict[int, int]  # AQI level 1-6 → days
    valid_days: int
    good_days: int  # levels 1-2 (优良天数)

    @property
    def good_ratio(self) -> float:
        """优良天数比例: good days ÷ valid days."""
        return self.good_days / self.valid_days if self.valid_days else float("nan")


def category_days(daily_aqi: ArrayLike) -> CategoryDays:
    """Days per AQI level and the good-day ratio of a series of daily AQI values."""
    levels = aqi_level(daily_aqi).ravel()
    counts = {level: int(np.count_nonzero(levels == level)) for level in range(1, 7)}
    valid = int(np.count_nonzero(levels > 0))
    return CategoryDays(counts=counts, valid_days=valid, good_days=counts[1] + counts[2])
