"""The annual air-quality assessment of stations and cities (HJ 663-2013 年评价, with the
limits and validity rules of GB 3095-2012 and the comprehensive index of the 2018 city
ranking rules), as pure rules over a calendar year of daily values.

Inputs are arrays shaped (entities, days of the year), NaN where a day has no valid
daily value; a city is an entity whose daily values are the means of its stations'
(:func:`group_means`). The formulas themselves are in
:mod:`ecohub.standards.air_assessment`; this module applies them to many entities at
once and adds what a report needs: the valid days per month, compliance with grade I
and II, the days per AQI level, competition ranks and the national figures.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecohub.standards.air_assessment import (
    ANNUAL_PERCENTILE,
    AnnualStatistic,
    ComprehensiveIndex,
    annual_compliance,
    annual_valid,
    comprehensive_index,
    percentile,
)
from ecohub.standards.aqi import aqi_level

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

# The six pollutants of GB 3095-2012 Table 1 in the order reports print them.
POLLUTANTS = ("SO2", "NO2", "PM10", "PM2.5", "CO", "O3")
UNITS = {name: "mg/m³" if name == "CO" else "μg/m³" for name in POLLUTANTS}
HAS_ANNUAL_MEAN = frozenset({"SO2", "NO2", "PM10", "PM2.5"})  # CO and O3 have none
GRADES = (1, 2)


def months_of_year(year: int) -> IntArray:
    """The month (1-12) of each day of the local calendar year ``year``."""
    first = dt.date(year, 1, 1)
    days = (dt.date(year + 1, 1, 1) - first).days
    return np.array([(first + dt.timedelta(days=i)).month for i in range(days)], dtype=np.int64)


def group_means(values: ArrayLike, group: ArrayLike, groups: int) -> FloatArray:
    """The arithmetic mean of each group's valid values, element by element along the
    other axes (HJ 663-2013: a city's daily value of a pollutant is the mean of its
    assessment stations' valid daily values that day); NaN where a group has none.

    ``values`` is shaped (entities, …), ``group`` gives each entity's group index
    (−1: in none, e.g. a control site)."""
    array = np.asarray(values, dtype=float)
    member = np.asarray(group)[None, :] == np.arange(groups)[:, None]  # (groups, entities)
    flat = array.reshape(array.shape[0], -1)
    present = ~np.isnan(flat)
    weights = member.astype(float)
    sums = weights @ np.where(present, flat, 0.0)
    counts = weights @ present.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return means.reshape(groups, *array.shape[1:])


@dataclass(frozen=True)
class PollutantYear:
    """One pollutant's annual figures for many entities (HJ 663-2013 Table 2).

    The figures are computed from whatever valid days there are; ``valid`` says whether
    the year meets GB 3095-2012 Table 4, and compliance is judged only where it does.
    """

    pollutant: str
    mean: FloatArray | None  # annual mean (SO2, NO2, PM10, PM2.5)
    percentile: FloatArray  # the HJ 663 percentile of the daily values
    percentile_rank: int
    valid_days: IntArray  # (entities,)
    month_days: IntArray  # (entities, 12)
    valid: BoolArray
    multiple: dict[int, FloatArray]  # grade → (C − S)/S, the larger of mean and percentile
    compliant: dict[int, BoolArray]  # grade → valid and within the limits

    @property
    def figure(self) -> FloatArray:
        """What the comprehensive index divides by the limit: the annual mean, or the
        percentile for CO (95th of daily means) and O3 (90th of daily maximum 8-h)."""
        return self.mean if self.mean is not None else self.percentile


def pollutant_year(pollutant: str, daily: ArrayLike, months: ArrayLike) -> PollutantYear:
    """A pollutant's annual mean, percentile, valid days per month and year, and its
    compliance with grade I and II limits (HJ 663-2013 5.1, Table 2; GB 3095-2012
    Tables 1 and 4)."""
    values = np.atleast_2d(np.asarray(daily, dtype=float))
    month_of_day = np.asarray(months)
    present = ~np.isnan(values)
    month_days = np.stack(
        [np.count_nonzero(present & (month_of_day == m), axis=-1) for m in range(1, 13)],
        axis=-1,
    )
    valid = annual_valid(values, month_of_day)
    rank = ANNUAL_PERCENTILE[pollutant]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # entities without any valid day
        mean = np.nanmean(values, axis=-1) if pollutant in HAS_ANNUAL_MEAN else None
    stat = AnnualStatistic(pollutant, mean, percentile(values, rank), rank, valid)
    compliance = {grade: annual_compliance(stat, grade) for grade in GRADES}
    return PollutantYear(
        pollutant=pollutant,
        mean=mean,
        percentile=stat.percentile,
        percentile_rank=rank,
        valid_days=np.count_nonzero(present, axis=-1),
        month_days=month_days,
        valid=valid,
        multiple={grade: c.multiple for grade, c in compliance.items()},
        compliant={grade: valid & c.compliant for grade, c in compliance.items()},
    )


@dataclass(frozen=True)
class YearAssessment:
    """The annual assessment of many entities (stations or cities)."""

    pollutants: dict[str, PollutantYear]
    index: ComprehensiveIndex  # I_i, I_sum, I_max, primary (NaN where a figure is missing)
    valid: BoolArray  # all six pollutants' years valid
    compliant: dict[int, BoolArray]  # grade → all six valid and compliant
    level_days: IntArray  # (entities, 6): days at AQI level 1-6 (HJ 633-2012 Table 2)

    @property
    def aqi_days(self) -> IntArray:
        """Days with a daily AQI (the good-day ratio's denominator)."""
        return np.asarray(self.level_days.sum(axis=-1))

    @property
    def good_days(self) -> IntArray:
        """优良天数: days at AQI level 1 or 2 (AQI ≤ 100)."""
        return np.asarray(self.level_days[:, 0] + self.level_days[:, 1])

    @property
    def good_ratio(self) -> FloatArray:
        """优良天数比例: good days ÷ days with a daily AQI."""
        days = self.aqi_days
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(days > 0, self.good_days / days, np.nan)


def level_days(daily_aqi: ArrayLike) -> IntArray:
    """Days per AQI level 1-6 of each entity's daily AQI series (entities, days)."""
    levels = aqi_level(np.atleast_2d(np.asarray(daily_aqi, dtype=float)))
    return np.stack([np.count_nonzero(levels == lv, axis=-1) for lv in range(1, 7)], axis=-1)


def assess_year(
    daily: Mapping[str, ArrayLike], months: ArrayLike, daily_aqi: ArrayLike
) -> YearAssessment:
    """The annual assessment of entities from their daily values of the six pollutants
    (``daily``: SO2, NO2, PM10, PM2.5, CO daily means; O3 daily maximum 8-hour means;
    μg/m³, CO mg/m³) and their daily AQI (HJ 633-2012)."""
    years = {name: pollutant_year(name, daily[name], months) for name in POLLUTANTS}
    index = comprehensive_index({name: year.figure for name, year in years.items()})
    valid = np.logical_and.reduce([year.valid for year in years.values()])
    compliant = {
        grade: np.logical_and.reduce([year.compliant[grade] for year in years.values()])
        for grade in GRADES
    }
    return YearAssessment(
        pollutants=years,
        index=index,
        valid=valid,
        compliant=compliant,
        level_days=level_days(daily_aqi),
    )


def competition_ranks(keys: Sequence[tuple[Any, ...]]) -> list[int]:
    """Standard competition ranks (1, 2, 2, 4) of rows sorted by ``keys``; equal keys
    share a rank. ``keys`` must already be in sorted order."""
    ranks: list[int] = []
    for position, key in enumerate(keys, start=1):
        ranks.append(ranks[-1] if ranks and keys[position - 2] == key else position)
    return ranks


def ranking_key(index: float, valid: bool) -> tuple[bool, bool, float]:
    """How cities are ordered: by the comprehensive index to two decimals (as the 2018
    ranking rules publish it), lowest (cleanest) first; cities with an invalid year
    (GB 3095-2012 Table 4) after every valid one, cities without an index last."""
    missing = index is None or math.isnan(index)
    return (missing, not valid, 0.0 if missing else round(index, 2))


@dataclass(frozen=True)
class NationalFigures:
    """The national figures of a year from the cities' annual values."""

    means: dict[str, float | None]  # pollutant → mean of the valid cities' figures
    cities_counted: dict[str, int]  # pollutant → cities with a valid year of it
    cities_assessed: int  # cities with all six valid
    cities_meeting_grade_2: int
    good_ratio: float | None  # mean of the cities' good-day ratios

    @property
    def share_meeting_grade_2(self) -> float | None:
        if not self.cities_assessed:
            return None
        return self.cities_meeting_grade_2 / self.cities_assessed


def national_figures(cities: YearAssessment) -> NationalFigures:
    """The mean of the cities' annual values of each pollutant (cities whose year of it
    is valid) and the share of cities meeting grade II in all six (of the cities with
    all six valid), as the national bulletins report them."""
    means: dict[str, float | None] = {}
    counted: dict[str, int] = {}
    for name, year in cities.pollutants.items():
        chosen = year.figure[year.valid]
        counted[name] = int(chosen.size)
        means[name] = float(np.mean(chosen)) if chosen.size else None
    ratios = cities.good_ratio[cities.valid]
    return NationalFigures(
        means=means,
        cities_counted=counted,
        cities_assessed=int(np.count_nonzero(cities.valid)),
        cities_meeting_grade_2=int(np.count_nonzero(cities.compliant[2])),
        good_ratio=float(np.nanmean(ratios)) if np.any(~np.isnan(ratios)) else None,
    )
