"""HJ 663-2013 assessment with GB 3095-2012 limits and validity rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecohub.standards.air_assessment import (
    ANNUAL_PERCENTILE,
    annual_compliance,
    annual_statistics,
    annual_valid,
    category_days,
    comprehensive_index,
    daily_max,
    daily_mean,
    eight_hour_means,
    exceedance_multiple,
    limit,
    o3_daily_max_8h,
    percentile,
)

# GB 3095-2012 Table 1, typed from the standard: (pollutant, period, grade I, grade II).
TABLE_1 = [
    ("SO2", "annual", 20, 60),
    ("SO2", "24h", 50, 150),
    ("SO2", "1h", 150, 500),
    ("NO2", "annual", 40, 40),
    ("NO2", "24h", 80, 80),
    ("NO2", "1h", 200, 200),
    ("CO", "24h", 4, 4),
    ("CO", "1h", 10, 10),
    ("O3", "8h", 100, 160),
    ("O3", "1h", 160, 200),
    ("PM10", "annual", 40, 70),
    ("PM10", "24h", 50, 150),
    ("PM2.5", "annual", 15, 35),
    ("PM2.5", "24h", 35, 75),
]


@pytest.mark.parametrize(("pollutant", "period", "grade_1", "grade_2"), TABLE_1)
def test_gb3095_limits(pollutant: str, period: str, grade_1: float, grade_2: float) -> None:
    assert limit(pollutant, period, 1) == grade_1
    assert limit(pollutant, period, 2) == grade_2


def test_daily_mean_needs_20_hours() -> None:
    day = np.full((3, 24), 40.0)
    day[1, :4] = np.nan  # 20 hours left: valid
    day[2, :5] = np.nan  # 19 hours left: one too few
    day[1, 4:] = np.arange(20) + 30.0  # mean of 30..49 = 39.5
    means = daily_mean(day)
    assert means[0] == 40.0 and means[1] == 39.5 and math.isnan(means[2])
    assert daily_max(day)[1] == 49.0 and math.isnan(daily_max(day)[2])


def test_eight_hour_windows_and_o3_daily_maximum() -> None:
    hours = np.arange(24, dtype=float) * 10  # 0, 10, …, 230
    windows = eight_hour_means(hours)
    assert windows.shape == (17,)
    assert windows[0] == 35.0  # hours 0-7
    assert windows[16] == 195.0  # hours 16-23 (the window ending at 24:00)
    assert o3_daily_max_8h(hours) == 195.0


def test_eight_hour_mean_needs_six_hours() -> None:
    hours = np.full(24, 100.0)
    hours[0:3] = np.nan  # window 0 has 5 hours: invalid; window 1 has 6: valid
    windows = eight_hour_means(hours)
    assert math.isnan(windows[0]) and windows[1] == 100.0


def test_o3_daily_max_needs_14_windows_unless_it_exceeds_the_limit() -> None:
    low = np.full(24, 100.0)
    low[:4] = np.nan  # windows starting 0-1 have 4 and 5 hours: 15 valid windows
    assert int(np.count_nonzero(~np.isnan(eight_hour_means(low)))) == 15
    assert o3_daily_max_8h(low) == 100.0
    low[:11] = np.nan  # only windows starting 9-16 have 6 hours or more: 8 valid
    assert int(np.count_nonzero(~np.isnan(eight_hour_means(low)))) == 8
    assert math.isnan(o3_daily_max_8h(low))
    high = np.where(np.isnan(low), np.nan, 200.0)  # same gaps, above 160 μg/m³
    assert o3_daily_max_8h(high) == 200.0


def test_percentile_method_of_hj663() -> None:
    values = np.arange(1, 11, dtype=float)  # X1..X10 = 1..10
    # k = 1 + (10-1)*0.98 = 9.82, s = 9: X9 + 0.82 (X10 - X9) = 9.82
    assert percentile(values, 98) == pytest.approx(9.82)
    # k = 1 + 9*0.9 = 9.1: 9.1
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(np.array([5.0, np.nan, 1.0, 3.0]), 50) == 3.0
    assert ANNUAL_PERCENTILE == {"SO2": 98, "NO2": 98, "PM10": 95, "PM2.5": 95, "CO": 95, "O3": 90}


def _year(days: int = 366) -> np.ndarray:
    import datetime as dt

    start = dt.date(2024, 1, 1)
    return np.array([(start + dt.timedelta(days=i)).month for i in range(days)])


def test_annual_validity_324_days_and_27_per_month() -> None:
    months = _year()
    daily = np.full(366, 30.0)
    assert annual_valid(daily, months)
    gap = daily.copy()
    gap[np.flatnonzero(months == 3)[:5]] = np.nan  # March keeps 26 days
    assert not annual_valid(gap, months)
    february = daily.copy()
    february[np.flatnonzero(months == 2)[:4]] = np.nan  # February keeps 25: enough
    assert annual_valid(february, months)
    sparse = daily.copy()
    for month in range(1, 13):  # 27 per month but 324 in total is not reached by 12×27
        sparse[np.flatnonzero(months == month)[27:]] = np.nan
    assert np.count_nonzero(~np.isnan(sparse)) == 324
    assert annual_valid(sparse, months)
    sparse[0] = np.nan
    assert not annual_valid(sparse, months)


def test_annual_statistics_and_compliance() -> None:
    months = _year()
    pm25 = np.where(np.arange(366) % 2 == 0, 30.0, 50.0)  # mean 40 > 35; P95 = 50 < 75
    stat = annual_statistics("PM2.5", pm25, months)
    assert stat.mean == pytest.approx(40.0) and stat.percentile == pytest.approx(50.0)
    result = annual_compliance(stat)
    assert not result.compliant
    assert result.multiple == pytest.approx((40 - 35) / 35)
    o3 = np.full(366, 150.0)
    o3_stat = annual_statistics("O3", o3, months)
    assert o3_stat.mean is None and annual_compliance(o3_stat).compliant
    assert exceedance_multiple(240, 160) == pytest.approx(0.5)


def test_comprehensive_index_by_hand() -> None:
    figures = {"SO2": 12, "NO2": 40, "PM10": 70, "PM2.5": 35, "CO": 1.2, "O3": 176}
    index = comprehensive_index(figures)
    # 12/60 + 40/40 + 70/70 + 35/35 + 1.2/4 + 176/160 = 0.2 + 1 + 1 + 1 + 0.3 + 1.1
    assert float(index.total) == pytest.approx(4.6)
    assert float(index.largest) == pytest.approx(1.1) and index.primary == ["O3"]
    weighted = comprehensive_index(figures, weights={"PM2.5": 3, "NO2": 2, "O3": 2})
    assert float(weighted.total) == pytest.approx(0.2 + 2 + 1 + 3 + 0.3 + 2.2)


def test_category_days_and_good_day_ratio() -> None:
    days = category_days(np.array([20, 50, 51, 100, 101, 180, 250, 400, np.nan]))
    assert days.counts == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}
    assert days.valid_days == 8 and days.good_days == 4 and days.good_ratio == 0.5
