"""Moving averages (GB 3095-2012 Table 4, HJ 663-2013 Table A.1, GB/T 8170 rounding) on
small hand-worked series, and CNEMC's real-time practice on series typed from its
published files (china_sites_2019010x.csv)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecohub.standards.moving_averages import (
    CNEMC_MIN_HOURS,
    CNEMC_REALTIME,
    CNEMC_REALTIME_2025,
    MIN_HOURS_8H,
    MIN_HOURS_24H,
    STANDARD,
    hour_in_day,
    is_half,
    mean_24h,
    moving_max,
    moving_mean,
    o3_1h_max_24h,
    o3_8h_max,
    o3_8h_mean,
    round_half_even,
    valid_hours,
    window_reach,
)

NAN = float("nan")


def test_thresholds_are_gb3095_table_4() -> None:
    assert MIN_HOURS_24H == 20  # 24-hour mean: at least 20 hourly values
    assert MIN_HOURS_8H == 6  # 8-hour mean: at least 6 hourly values
    assert CNEMC_MIN_HOURS == 1
    assert (STANDARD.min_hours_24h, STANDARD.min_hours_8h, STANDARD.o3_within_day) == (20, 6, False)
    assert (CNEMC_REALTIME.min_hours_24h, CNEMC_REALTIME.o3_within_day) == (1, True)
    assert CNEMC_REALTIME.o3_partial and not CNEMC_REALTIME_2025.o3_partial


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        # GB/T 8170-2008 3.3: below a half down, above up, a half to the even digit.
        (0.5, 0, 0.0),
        (1.5, 0, 2.0),
        (2.5, 0, 2.0),
        (98.5, 0, 98.0),
        (71.5, 0, 72.0),
        (2.49, 0, 2.0),
        (2.51, 0, 3.0),
        (0.85, 1, 0.8),
        (0.75, 1, 0.8),
        (1.25, 1, 1.2),
        (1.35, 1, 1.4),
        (0.849, 1, 0.8),
        (0.851, 1, 0.9),
    ],
)
def test_round_half_even(value: float, decimals: int, expected: float) -> None:
    assert round_half_even(value, decimals) == expected


def test_round_half_even_of_computed_means_and_nan() -> None:
    # Means whose binary value sits just off the half still count as halves.
    assert round_half_even(np.mean([0.8, 0.9]), 1) == 0.8  # 0.85
    assert round_half_even(np.mean([2.9, 3.0]), 1) == 3.0  # 2.95
    assert math.isnan(float(round_half_even(NAN)))
    assert is_half(np.mean([0.8, 0.9]), 1) and not is_half(0.86, 1)


def test_24_hour_mean_of_a_full_day() -> None:
    hours = np.arange(1.0, 25.0)  # 1 … 24: mean 12.5
    means = mean_24h(hours)
    assert means[-1] == 12.5
    # Fewer than 20 hours in the window (the series starts here): no value…
    assert np.isnan(means[:19]).all()
    assert means[19] == 10.5  # 1 … 20: exactly 20 hours
    # …unless the publisher's practice is asked for.
    assert mean_24h(hours, min_hours=CNEMC_MIN_HOURS)[0] == 1.0


def test_24_hour_mean_needs_20_valid_hours() -> None:
    day = np.full(24, 40.0)
    day[:4] = NAN  # 20 valid
    assert mean_24h(day)[-1] == 40.0
    day[4] = NAN  # 19 valid
    assert math.isnan(mean_24h(day)[-1])
    assert mean_24h(day, min_hours=1)[-1] == 40.0


def test_24_hour_mean_runs_across_midnight() -> None:
    # Yesterday 24 × 10, today 24 × 34: at today's hour h the window holds 23 − h of
    # yesterday's hours and h + 1 of today's.
    two_days = np.concatenate([np.full(24, 10.0), np.full(24, 34.0)])
    means = mean_24h(two_days)
    assert means[23] == 10.0
    assert means[24] == 11.0  # (23 × 10 + 34) / 24
    assert means[35] == 22.0  # (12 × 10 + 12 × 34) / 24
    assert means[47] == 34.0


def test_24_hour_means_typed_from_cnemc_files() -> None:
    # china_sites_20190102.csv, hours 0-23, published at 23:00 (half-even: 98.5 → 98).
    pm25_1037a = [79, 101, 112, 120, 142, 147, 160, 152, 209, 188, 170, 85,
                  45, 41, 46, 40, 34, 43, 52, 86, 99, 55, 96, 62]  # fmt: skip
    assert round_half_even(mean_24h(pm25_1037a)[-1]) == 98  # PM2.5_24h of 1037A
    no2_1070a = [75, 74, 74, 74, 74, 72, 69, 66, 70, 66, 53, 42,
                 39, 45, 48, 39, 52, 82, 96, 103, 104, 102, 100, 97]  # fmt: skip
    assert round_half_even(mean_24h(no2_1070a)[-1]) == 72  # NO2_24h of 1070A: 71.5 → 72


def test_moving_mean_and_max_along_the_last_axis() -> None:
    table = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, NAN, 2.0, 1.0]])
    assert moving_mean(table, 2, min_hours=2).tolist()[0][1:] == [1.5, 2.5, 3.5]
    means = moving_mean(table, 2, min_hours=1)
    assert means[1].tolist() == [4.0, 4.0, 2.0, 1.5]
    assert moving_max(table, 3)[1].tolist() == [4.0, 4.0, 4.0, 2.0]
    assert valid_hours(table, window_reach(4, 3))[1].tolist() == [1.0, 1.0, 2.0, 2.0]


def test_8_hour_mean_hours_x_minus_7_to_x() -> None:
    o3 = np.array([10.0, 20, 30, 40, 50, 60, 70, 80, 90])
    means = o3_8h_mean(o3)
    assert np.isnan(means[:5]).all()  # fewer than 6 hours
    assert means[5] == 35.0  # 10 … 60
    assert means[7] == 45.0  # 10 … 80
    assert means[8] == 55.0  # 20 … 90
    o3[2:4] = NAN  # window ending at 80 keeps 6 of 8 hours: (10+20+50+60+70+80)/6
    assert o3_8h_mean(o3)[7] == 290 / 6
    o3[4] = NAN  # 5 of 8
    assert math.isnan(o3_8h_mean(o3)[7])


def test_hour_in_day_counts_from_label_1() -> None:
    # Labels 0, 1, …, 23, 0: label 0 closes the previous day (24:00).
    assert hour_in_day(26, 0).tolist() == [23, *range(23), 23, 0]
    assert window_reach(10, 8, first_hour=0).tolist() == [7, 0, 1, 2, 3, 4, 5, 6, 7, 7]


# 1001A, china_sites_20190101.csv hours 17-23 and china_sites_20190102.csv hours 0-23,
# then china_sites_20190103.csv hour 0.
O3_1001A = [46, 38, 26, 31, 32, 24, 20,
            17, 20, 10, 13, 21, 18, 32, 31, 24, 20, 17, 21,
            24, 23, 16, 13, 7, 6, 1, 1, 2, 2, 2, 2,
            2]  # fmt: skip
O3_8H_1001A = [29, 20, 15, 14, 16, 16, 19, 21, 21, 21, 22, 23,
               23, 24, 22, 20, 18, 16, 14, 11, 9, 6, 4, 3,
               2]  # fmt: skip
O3_8H_24H_1001A = [40, 20, 20, 20, 20, 20, 20, 21, 21, 21, 22, 23,
                   23, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
                   24]  # fmt: skip


def test_cnemc_8_hour_mean_restarts_each_day() -> None:
    # Element 0 is hour 17 of 2019-01-01; element 7 is 2019-01-02 00:00 (label 0, the
    # previous day's 24:00: hours 17-24, (46+38+26+31+32+24+20+17)/8 = 29.25 → 29).
    means = o3_8h_mean(O3_1001A, min_hours=CNEMC_MIN_HOURS, first_hour=17)
    published = round_half_even(means[7:])
    assert published.tolist() == O3_8H_1001A
    # At 01:00 only the day's first hour counts (20), at 02:00 the first two (15) …
    assert means[8] == 20.0 and means[9] == 15.0
    # … whereas the standard's window runs back over midnight.
    assert o3_8h_mean(O3_1001A)[8] == np.mean(O3_1001A[1:9])


def test_cnemc_8_hour_maximum_of_the_day_so_far() -> None:
    means = round_half_even(o3_8h_mean(O3_1001A, min_hours=1, first_hour=17))
    peak = o3_8h_max(means, first_hour=17)
    # From 2019-01-02 01:00 to 2019-01-03 00:00 (the day's 24:00).
    assert peak[8:].tolist() == O3_8H_24H_1001A[1:]


def test_cnemc_8_hour_maximum_at_24h_leaves_out_the_first_partial_windows() -> None:
    # 1035A on 2019-01-01: the 8-hour means published at 01:00 … 24:00 (O3_8h), and the
    # O3_8h_24h published at 2019-01-02 00:00: 25, the largest of the windows ending
    # 08:00 … 24:00, not 35 (the one-hour "window" at 01:00).
    o3_8h = [35, 34, 32, 30, 27, 24, 21, 20, 18, 17, 17, 18,
             20, 22, 24, 25, 23, 21, 18, 14, 13, 13, 14, 16]  # fmt: skip
    peak = o3_8h_max(o3_8h, first_hour=1)
    assert peak[0] == 35 and peak[22] == 35  # 01:00 and 23:00: the day so far
    assert peak[23] == 25  # 24:00
    assert o3_8h_max(o3_8h)[23] == 35  # a plain 24-hour maximum would say 35


def test_2025_practice_publishes_no_partial_windows() -> None:
    o3 = np.arange(1.0, 25.0)  # labels 1 … 24 of one day
    means = o3_8h_mean(o3, min_hours=1, first_hour=1, partial=False)
    assert np.isnan(means[:7]).all()
    assert means[7] == 4.5  # 1 … 8


def test_o3_1h_maximum_of_the_past_24_hours() -> None:
    o3 = np.array([52.0] + [10.0] * 23 + [30.0, 20.0])
    peaks = o3_1h_max_24h(o3)
    assert peaks[23] == 52.0  # 52 is 23 hours back
    assert peaks[24] == 30.0  # 52 has left the window
    assert peaks[25] == 30.0
    assert math.isnan(float(o3_1h_max_24h([NAN, NAN])[1]))


def test_8_hour_maximum_of_the_past_24_hours() -> None:
    means = np.array([5.0, 9.0] + [1.0] * 23)
    peaks = o3_8h_max(means)
    assert peaks[1] == 9.0 and peaks[24] == 9.0
    assert o3_8h_max(np.array([5.0, 9.0] + [1.0] * 24))[25] == 1.0
