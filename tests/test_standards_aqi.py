"""HJ 633-2012 AQI: every breakpoint at and around its boundaries, typed from Table 1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecohub.standards.aqi import aqi_level, aqi_levels, daily_aqi, hourly_aqi, iaqi, level_info

STEPS = [0, 50, 100, 150, 200, 300, 400, 500]
# HJ 633-2012 Table 1, typed from the standard (not read from the package's data file).
TABLE_1 = {
    ("SO2", "24h"): [0, 50, 150, 475, 800, 1600, 2100, 2620],
    ("SO2", "1h"): [0, 150, 500, 650, 800],
    ("NO2", "24h"): [0, 40, 80, 180, 280, 565, 750, 940],
    ("NO2", "1h"): [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    ("PM10", "24h"): [0, 50, 150, 250, 350, 420, 500, 600],
    ("CO", "24h"): [0, 2, 4, 14, 24, 36, 48, 60],
    ("CO", "1h"): [0, 5, 10, 35, 60, 90, 120, 150],
    ("O3", "1h"): [0, 160, 200, 300, 400, 800, 1000, 1200],
    ("O3", "8h"): [0, 100, 160, 215, 265, 800],
    ("PM2.5", "24h"): [0, 35, 75, 115, 150, 250, 350, 500],
}
CASES = [
    (pollutant, period, index, bp)
    for (pollutant, period), points in TABLE_1.items()
    for index, bp in enumerate(points)
]


@pytest.mark.parametrize(("pollutant", "period", "index", "bp"), CASES)
def test_at_each_breakpoint_the_iaqi_is_the_step(
    pollutant: str, period: str, index: int, bp: float
) -> None:
    assert iaqi(bp, pollutant, period) == STEPS[index]


@pytest.mark.parametrize(("pollutant", "period", "index", "bp"), [c for c in CASES if c[2] > 0])
def test_just_below_and_just_above_each_breakpoint(
    pollutant: str, period: str, index: int, bp: float
) -> None:
    points = TABLE_1[(pollutant, period)]
    delta = (points[index] - points[index - 1]) / 1000
    # Just below: within the lower segment, rounded up to the step itself.
    assert iaqi(bp - delta, pollutant, period) == STEPS[index]
    if index + 1 < len(points):
        # Just above: the next segment has begun, rounded up to step + 1.
        assert iaqi(bp + delta, pollutant, period) == STEPS[index] + 1


@pytest.mark.parametrize(
    ("concentration", "pollutant", "period", "expected"),
    [
        # Formula (1) by hand: (200-150)/(150-115)*(120-115)+150 = 157.14 → 158
        (120, "PM2.5", "24h", 158),
        # (100-50)/(75-35)*(36-35)+50 = 51.25 → 52
        (36, "PM2.5", "24h", 52),
        # (150-100)/(250-150)*(200-150)+100 = 125
        (200, "PM10", "24h", 125),
        # (100-50)/(10-5)*(7.3-5)+50 = 73
        (7.3, "CO", "1h", 73),
        # (300-200)/(800-400)*(500-400)+200 = 225
        (500, "O3", "1h", 225),
    ],
)
def test_formula_one_by_hand(
    concentration: float, pollutant: str, period: str, expected: int
) -> None:
    assert iaqi(concentration, pollutant, period) == expected


def test_above_the_table_and_missing_values() -> None:
    assert iaqi(600, "PM2.5", "24h") == 500  # beyond 500 μg/m³: reported as 500
    assert math.isnan(float(iaqi(801, "SO2", "1h")))  # Table 1 note 2
    assert math.isnan(float(iaqi(801, "O3", "8h")))  # Table 1 note 3
    assert math.isnan(float(iaqi(np.nan, "PM10", "24h")))
    assert math.isnan(float(iaqi(-1, "PM10", "24h")))


def test_hourly_aqi_uses_so2_24h_above_800() -> None:
    result = hourly_aqi(
        so2=[900, 900],
        no2=[10, 10],
        pm10=[10, 10],
        pm25=[10, 10],
        co=[0.2, 0.2],
        o3=[10, 10],
        so2_24h=[400, np.nan],
    )
    # SO2 24-h 400: (150-100)/(475-150)*(400-150)+100 = 138.46 → 139
    assert result.iaqi["SO2"][0] == 139
    assert result.aqi[0] == 139
    assert math.isnan(result.iaqi["SO2"][1])  # no 24-h mean: no SO2 IAQI
    assert result.aqi[1] == 15  # PM10 10 → 10, PM2.5 10 → 15 (50/35*10 = 14.3 → 15)


def test_hourly_aqi_primary_and_exceeding_pollutants() -> None:
    result = hourly_aqi(
        so2=[5, 5, 5],
        no2=[20, 20, 250],
        pm10=[40, 200, 40],
        pm25=[30, 150, 20],
        co=[0.5, 0.5, 0.5],
        o3=[50, 50, 50],
    )
    assert list(result.aqi) == [43, 200, 105]
    assert result.primary_pollutants() == [[], ["PM2.5"], ["NO2"]]
    assert result.exceeding_pollutants() == [[], ["PM10", "PM2.5"], ["NO2"]]
    assert list(result.level) == [1, 4, 3]


def test_ties_make_several_primary_pollutants() -> None:
    # PM10 150 → 100 and PM2.5 75 → 100.
    result = hourly_aqi(so2=5, no2=10, pm10=150, pm25=75, co=0.3, o3=20)
    assert result.primary_pollutants() == [["PM10", "PM2.5"]]


def test_daily_aqi_o3_8h_above_800_uses_1h() -> None:
    result = daily_aqi(
        so2=[10], no2=[10], pm10=[10], pm25=[10], co=[0.5], o3_1h_max=[900], o3_8h_max=[850]
    )
    # O3 1-h 900: (400-300)/(1000-800)*(900-800)+300 = 350
    assert result.iaqi["O3_8h"][0] == 350 and result.aqi[0] == 350


def test_daily_aqi_missing_everything_is_missing() -> None:
    nan = [np.nan]
    result = daily_aqi(so2=nan, no2=nan, pm10=nan, pm25=nan, co=nan, o3_1h_max=nan, o3_8h_max=nan)
    assert math.isnan(result.aqi[0]) and aqi_level(result.aqi)[0] == 0


# HJ 633-2012 Table 2, typed from the standard.
TABLE_2 = [
    (1, 0, 50, "一级", "优", "绿色", (0, 228, 0)),
    (2, 51, 100, "二级", "良", "黄色", (255, 255, 0)),
    (3, 101, 150, "三级", "轻度污染", "橙色", (255, 126, 0)),
    (4, 151, 200, "四级", "中度污染", "红色", (255, 0, 0)),
    (5, 201, 300, "五级", "重度污染", "紫色", (153, 0, 76)),
    (6, 301, 500, "六级", "严重污染", "褐红色", (126, 0, 35)),
]


@pytest.mark.parametrize(("level", "low", "high", "level_zh", "category", "colour", "rgb"), TABLE_2)
def test_levels_categories_and_colours(
    level: int,
    low: int,
    high: int,
    level_zh: str,
    category: str,
    colour: str,
    rgb: tuple[int, int, int],
) -> None:
    for aqi in (low, high):
        info = level_info(aqi)
        assert info is not None
        assert (info.level, info.level_zh, info.category_zh, info.colour_zh, info.rgb) == (
            level,
            level_zh,
            category,
            colour,
            rgb,
        )
        assert info.advice_zh and info.effect_en and info.advice_en
    if level > 1:
        assert aqi_level(low - 1) == level - 1


def test_six_levels_with_health_advice() -> None:
    levels = aqi_levels()
    assert len(levels) == 6
    assert levels[0].advice_zh == "各类人群可正常活动"
    assert levels[2].advice_zh.startswith("儿童、老年人及心脏病、呼吸系统疾病患者应减少")
    assert levels[5].hex == "#7E0023"
