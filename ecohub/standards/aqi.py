"""Air quality index per HJ 633-2012 (环境空气质量指数（AQI）技术规定（试行）).

All functions take NumPy arrays (or scalars) of concentrations — μg/m³, CO in mg/m³ — and
work on whole tables of station-hours at once. A missing concentration is NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecohub.standards.tables import read_table

FloatArray = NDArray[np.float64]

# HJ 633-2012 Table 1, first row: the IAQI values of the breakpoints.
IAQI_STEPS = np.array([0, 50, 100, 150, 200, 300, 400, 500], dtype=float)
# Floating-point slack before rounding up: (100-50)/(75-35)*(75-35)+50 must give 100.
_EPSILON = 1e-9
_BLOCK = 1 << 16

# What an SO2 1-hour value above 800 μg/m³ contributes to the hourly AQI (the 1-hour
# breakpoints stop at 800, HJ 633-2012 Table 1 note 2):
# - "24h": the standard's text, the IAQI of the SO2 24-hour mean (missing without it);
# - "omit": no SO2 IAQI for that hour;
# - "cap": IAQI 200, the step of the last 1-hour breakpoint. This is CNEMC's published
#   practice: station 2671A on 2019-11-01 at 02:00 had SO2 966 μg/m³ (24-hour mean 147,
#   IAQI 99; every other IAQI ≤ 25) and the published AQI was 200; the only other such
#   hour in the shared files (2647A, 2018-01-01 14:00, SO2 879) is consistent with it
#   (docs/standards.md, "Validation on real CNEMC data").
SO2_ABOVE_800_24H = "24h"
SO2_ABOVE_800_OMIT = "omit"
SO2_ABOVE_800_CAP = "cap"
SO2_ABOVE_800_OPTIONS = (SO2_ABOVE_800_24H, SO2_ABOVE_800_OMIT, SO2_ABOVE_800_CAP)
CNEMC_SO2_ABOVE_800 = SO2_ABOVE_800_CAP

# Pollutants of the hourly (real-time) report and the daily report, as
# (name in results, pollutant, averaging period of the breakpoints used).
HOURLY_ITEMS = (
    ("SO2", "SO2", "1h"),
    ("NO2", "NO2", "1h"),
    ("PM10", "PM10", "24h"),
    ("PM2.5", "PM2.5", "24h"),
    ("CO", "CO", "1h"),
    ("O3", "O3", "1h"),
)
DAILY_ITEMS = (
    ("SO2", "SO2", "24h"),
    ("NO2", "NO2", "24h"),
    ("PM10", "PM10", "24h"),
    ("PM2.5", "PM2.5", "24h"),
    ("CO", "CO", "24h"),
    ("O3_1h", "O3", "1h"),
    ("O3_8h", "O3", "8h"),
)


@cache
def breakpoints(pollutant: str, period: str) -> FloatArray:
    """Concentration breakpoints of HJ 633-2012 Table 1 for one pollutant and period
    (NaN where the table gives none)."""
    for row in read_table("hj633_breakpoints"):
        if row["pollutant"] == pollutant and row["period"] == period:
            return np.array(
                [
                    float(row[str(int(step))]) if row[str(int(step))] else np.nan
                    for step in IAQI_STEPS
                ]
            )
    raise KeyError(f"HJ 633-2012 has no breakpoints for {pollutant} {period}")


@cache
def _segments(pollutant: str, period: str) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Per segment of Table 1: slope and intercept of formula (1), the defined
    breakpoints, and the IAQI above the last one (500, or NaN where the table stops)."""
    table = breakpoints(pollutant, period)
    defined = int(np.count_nonzero(~np.isnan(table)))
    points = table[:defined]
    steps = IAQI_STEPS[:defined]
    slope = np.diff(steps) / np.diff(points)
    intercept = steps[:-1] - slope * points[:-1]
    above = 500.0 if defined == len(IAQI_STEPS) else np.nan
    return slope, intercept, points, above


def iaqi(concentration: ArrayLike, pollutant: str, period: str) -> FloatArray:
    """Individual AQI (空气质量分指数) per HJ 633-2012, 5.1, formula (1):

    IAQI_P = (IAQI_Hi − IAQI_Lo) / (BP_Hi − BP_Lo) × (C_P − BP_Lo) + IAQI_Lo,

    rounded up to an integer (HJ 633-2012, 5.3: results are rounded up, 进位取整).
    A concentration above the highest breakpoint gives 500 where the table goes to 500.
    Where the table stops short (SO2 1-h above 800, O3 8-h above 800; Table 1, notes 2
    and 3) the result is NaN: the caller substitutes as the standard says.
    Negative or missing concentrations give NaN.
    """
    given = np.asarray(concentration, dtype=float)
    values = given.reshape(-1)
    slope, intercept, points, above = _segments(pollutant, period)
    result = np.empty_like(values)
    capped = not np.isnan(above)
    # Work in cache-sized blocks: whole-table temporaries would cost a page fault per
    # page on every call.
    for start in range(0, values.size, _BLOCK):
        block = values[start : start + _BLOCK]
        # Segment k spans (BP_k, BP_k+1]; a value equal to a breakpoint ends the segment
        # below it, which gives the same IAQI as starting the one above.
        segment = np.searchsorted(points, block, side="left")
        np.clip(segment, 1, len(points) - 1, out=segment)
        segment -= 1
        out = result[start : start + _BLOCK]
        np.multiply(slope[segment], block, out=out)
        out += intercept[segment]
        out -= _EPSILON
        np.ceil(out, out=out)
        out += 0.0  # turns -0.0 into 0.0
        with np.errstate(invalid="ignore"):
            if capped:
                np.minimum(out, above, out=out)  # the last segment rises to 500
            else:
                out[block > points[-1]] = np.nan
            out[block < 0] = np.nan
    return result.reshape(given.shape)


@dataclass(frozen=True)
class AQIResult:
    """AQI of a table of records (one element per station-hour or station-day)."""

    aqi: FloatArray  # NaN where no IAQI could be computed
    iaqi: dict[str, FloatArray]

    @property
    def level(self) -> NDArray[np.int8]:
        """AQI level 1-6 (HJ 633-2012 Table 2); 0 where the AQI is missing."""
        return aqi_level(self.aqi)

    def primary_pollutants(self) -> list[list[str]]:
        """首要污染物: the pollutant(s) with the largest IAQI when the AQI exceeds 50
        (HJ 633-2012, 5.4)."""
        return _names_where(self, lambda values, aqi: (values == aqi) & (aqi > 50))

    def exceeding_pollutants(self) -> list[list[str]]:
        """超标污染物: pollutants whose IAQI exceeds 100 (HJ 633-2012, 5.4)."""
        return _names_where(self, lambda values, aqi: values > 100)


def _names_where(result: AQIResult, test: Any) -> list[list[str]]:
    names = list(result.iaqi)
    with np.errstate(invalid="ignore"):
        masks = np.stack([test(result.iaqi[name], result.aqi) for name in names], axis=-1)
    masks = np.atleast_2d(masks)
    return [[names[j] for j in np.flatnonzero(row)] for row in masks]


def _combine(iaqis: dict[str, FloatArray]) -> AQIResult:
    stacked = np.stack(list(iaqis.values()))
    all_missing = np.all(np.isnan(stacked), axis=0)
    with np.errstate(invalid="ignore"):
        aqi = np.where(
            all_missing, np.nan, np.nanmax(np.where(np.isnan(stacked), -1, stacked), axis=0)
        )
    return AQIResult(aqi=np.asarray(aqi, dtype=float), iaqi=iaqis)


def hourly_aqi(
    *,
    so2: ArrayLike,
    no2: ArrayLike,
    pm10: ArrayLike,
    pm25: ArrayLike,
    co: ArrayLike,
    o3: ArrayLike,
    so2_24h: ArrayLike | None = None,
    so2_above_800: str = SO2_ABOVE_800_24H,
) -> AQIResult:
    """Hourly (real-time report, 实时报) AQI from 1-hour mean concentrations.

    HJ 633-2012, 5.2 and Table 1: SO2, NO2, CO and O3 use their 1-hour breakpoints;
    PM10 and PM2.5, which have only 24-hour breakpoints, use those with the 1-hour
    concentration. Table 1 note 2: above 800 μg/m³ the SO2 1-hour value has no IAQI and
    the SO2 24-hour mean's IAQI is reported instead (pass ``so2_24h``; without it the
    SO2 IAQI is missing for those hours).

    ``so2_above_800`` chooses what an SO2 1-hour value above 800 μg/m³ contributes:
    ``"24h"`` (default, the standard's text, as above), ``"omit"`` (no SO2 IAQI that
    hour) or ``"cap"`` (:data:`SO2_ABOVE_800_CAP`: the IAQI of the table's last 1-hour
    breakpoint, 200, which is what CNEMC's published hourly AQI shows).
    """
    if so2_above_800 not in SO2_ABOVE_800_OPTIONS:
        raise ValueError(
            f"so2_above_800 must be one of {', '.join(SO2_ABOVE_800_OPTIONS)}; "
            f"got {so2_above_800!r}"
        )
    so2_hourly = iaqi(so2, "SO2", "1h")
    above = np.asarray(so2, dtype=float) > 800
    if so2_above_800 == SO2_ABOVE_800_CAP:
        so2_hourly = np.where(above, IAQI_STEPS[4], so2_hourly)
    elif so2_above_800 == SO2_ABOVE_800_24H and so2_24h is not None:
        so2_hourly = np.where(above, iaqi(so2_24h, "SO2", "24h"), so2_hourly)
    return _combine(
        {
            "SO2": so2_hourly,
            "NO2": iaqi(no2, "NO2", "1h"),
            "PM10": iaqi(pm10, "PM10", "24h"),
            "PM2.5": iaqi(pm25, "PM2.5", "24h"),
            "CO": iaqi(co, "CO", "1h"),
            "O3": iaqi(o3, "O3", "1h"),
        }
    )


def daily_aqi(
    *,
    so2: ArrayLike,
    no2: ArrayLike,
    pm10: ArrayLike,
    pm25: ArrayLike,
    co: ArrayLike,
    o3_1h_max: ArrayLike,
    o3_8h_max: ArrayLike,
) -> AQIResult:
    """Daily report (日报) AQI (HJ 633-2012, 5.2 and Table 1).

    SO2, NO2, PM10, PM2.5 and CO use 24-hour means; O3 uses the daily maximum 1-hour
    mean and the daily maximum 8-hour moving mean. Table 1 note 3: above 800 μg/m³ the
    O3 8-hour value has no IAQI and the O3 1-hour IAQI is reported instead.
    """
    o3_1h = iaqi(o3_1h_max, "O3", "1h")
    o3_8h = iaqi(o3_8h_max, "O3", "8h")
    o3_8h = np.where(np.asarray(o3_8h_max, dtype=float) > 800, o3_1h, o3_8h)
    return _combine(
        {
            "SO2": iaqi(so2, "SO2", "24h"),
            "NO2": iaqi(no2, "NO2", "24h"),
            "PM10": iaqi(pm10, "PM10", "24h"),
            "PM2.5": iaqi(pm25, "PM2.5", "24h"),
            "CO": iaqi(co, "CO", "24h"),
            "O3_1h": o3_1h,
            "O3_8h": o3_8h,
        }
    )


@dataclass(frozen=True)
class AQILevel:
    """One row of HJ 633-2012 Table 2."""

    level: int
    aqi_low: int
    aqi_high: int | None
    level_zh: str
    category_zh: str
    category_en: str
    colour_zh: str
    colour_en: str
    rgb: tuple[int, int, int]
    effect_zh: str
    advice_zh: str
    effect_en: str
    advice_en: str

    @property
    def hex(self) -> str:
        return "#{:02X}{:02X}{:02X}".format(*self.rgb)


@cache
def aqi_levels() -> tuple[AQILevel, ...]:
    """The six AQI levels with category, colour, health effects and advice."""
    levels = []
    for row in read_table("hj633_levels"):
        rgb = tuple(int(part) for part in row["rgb"].split())
        levels.append(
            AQILevel(
                level=int(row["level"]),
                aqi_low=int(row["aqi_low"]),
                aqi_high=int(row["aqi_high"]) if row["aqi_high"] else None,
                level_zh=row["level_zh"],
                category_zh=row["category_zh"],
                category_en=row["category_en"],
                colour_zh=row["colour_zh"],
                colour_en=row["colour_en"],
                rgb=(rgb[0], rgb[1], rgb[2]),
                effect_zh=row["effect_zh"],
                advice_zh=row["advice_zh"],
                effect_en=row["effect_en"],
                advice_en=row["advice_en"],
            )
        )
    return tuple(levels)


_LEVEL_EDGES = np.array([50, 100, 150, 200, 300], dtype=float)


def aqi_level(aqi: ArrayLike) -> NDArray[np.int8]:
    """AQI level 1-6 per HJ 633-2012 Table 2 (0 for a missing AQI)."""
    values = np.asarray(aqi, dtype=float)
    levels = np.searchsorted(_LEVEL_EDGES, values, side="left") + 1
    return np.where(np.isnan(values), 0, levels).astype(np.int8)


def level_info(aqi: float) -> AQILevel | None:
    """The Table 2 row of one AQI value (None if missing)."""
    level = int(aqi_level(aqi))
    return aqi_levels()[level - 1] if level else None
