"""The national analyses over the lake, on DuckDB: the annual assessment of every air
station and city (HJ 663-2013 with GB 3095-2012), the city ranking by the comprehensive
index, the good-day ratios and the national figures, and Mann-Kendall trends of the
annual figures over several years.

They give exactly the in-database results (:func:`ecohub.assessment.service.compute`)
because they are the same computation over the same numbers: the year's valid daily
rollups, read from the lake's Parquet instead of the store, are gathered into the same
(stations, days, series) array in the same way, and the same pure rules
(:mod:`ecohub.assessment.rules`) and report documents are applied to it. Stations and
their cities come from the lake's points dimension, written by the export as the
assessment assigns them (:func:`ecohub.registry.regions.city_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from ecohub.assessment import service
from ecohub.assessment.rules import POLLUTANTS, group_means, national_figures
from ecohub.assessment.service import (
    DAY,
    EPOCH,
    FACTORS,
    READ_CODES,
    AnnualReport,
    Stations,
    assess_entities,
)
from ecohub.clock import local_year_bounds, utcnow
from ecohub.lake.query import connect, table_source
from ecohub.standards.trend import mann_kendall

MICROSECONDS_A_DAY = 86_400_000_000


@dataclass(frozen=True)
class LakeStations:
    """The air stations of the lake's points dimension (as
    :func:`ecohub.assessment.service.air_stations` reads them from the registry) and the
    names of their cities."""

    stations: Stations
    city_names: dict[str, str]


def lake_stations(lake: Path) -> LakeStations:
    """The air stations of the lake, in site-code order with their points."""
    points = (
        pl.read_parquet(lake / "points" / "points.parquet")
        .filter(pl.col("site_kind") == "air")
        .sort("site_code", "point_id")
    )
    codes: list[str] = []
    names: list[str] = []
    cities: list[str | None] = []
    control: list[bool] = []
    point_index: dict[int, int] = {}
    city_names: dict[str, str] = {}
    for row in points.iter_rows(named=True):
        if not codes or codes[-1] != row["site_code"]:
            codes.append(row["site_code"])
            names.append(row["site_name"])
            cities.append(row["city"])
            control.append(bool(row["control_point"]))
        point_index[row["point_id"]] = len(codes) - 1
        if row["city"] and row["city_name"] is not None:
            city_names[row["city"]] = row["city_name"]
    return LakeStations(Stations(codes, names, cities, control, point_index), city_names)


def first_day(year: int) -> float:
    """The local year's first day in days since 1970-01-01 UTC (a fraction: its local
    midnight in UTC)."""
    return (local_year_bounds(year)[0] - EPOCH) / DAY


def daily_array(stations: Stations, year: int, frame: pl.DataFrame) -> np.ndarray:
    """The (stations, days, READ_CODES) array of a year's valid daily values from rows
    (``point_id``, ``micros``: the time in µs since 1970 UTC, ``parameter``, ``value``),
    accumulated as :func:`ecohub.assessment.service.read_daily` does (a station with
    several points gets their mean; μg/m³, CO mg/m³; NaN where missing)."""
    start, end = local_year_bounds(year)
    days = round((end - start) / DAY)
    shape = (len(stations.codes), days, len(READ_CODES))
    size = shape[0] * shape[1] * shape[2]
    station_of = np.full(max(stations.point_index, default=0) + 1, -1)
    for point, index in stations.point_index.items():
        station_of[point] = index
    series_of = {code: n for n, code in enumerate(READ_CODES)}
    frame = frame.filter(
        pl.col("parameter").is_in(READ_CODES)
        & (pl.col("point_id") < station_of.size)
        & pl.col("value").is_not_null()
    )
    at_station = station_of[frame["point_id"].to_numpy()]
    times = frame["micros"].to_numpy() / MICROSECONDS_A_DAY
    at_day = np.rint(times - first_day(year)).astype(np.int64)
    series = np.array([series_of[code] for code in frame["parameter"].to_list()], np.int64)
    kept = (at_station >= 0) & (at_day >= 0) & (at_day < days)
    flat = ((at_station * days + at_day) * len(READ_CODES) + series)[kept]
    sums = np.bincount(flat, frame["value"].to_numpy()[kept], minlength=size)
    counts = np.bincount(flat, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(counts > 0, sums / counts, np.nan).reshape(shape)
    return np.asarray(values * FACTORS)


def read_daily_duckdb(lake: Path, year: int, stations: Stations) -> np.ndarray:
    """The year's valid daily rollups from the lake (its ``year`` partition, which holds
    the local calendar year), through DuckDB, as :func:`daily_array`."""
    codes = ", ".join(f"'{code}'" for code in READ_CODES)
    with connect(lake) as connection:
        frame = connection.execute(
            f"""SELECT point_id, epoch_us(ts) AS micros, parameter, value
            FROM {table_source(lake, "rollups")}
            WHERE year = ? AND parameter IN ({codes}) AND period = 'day' AND valid
              AND value IS NOT NULL""",
            [year],
        ).pl()
    return daily_array(stations, year, frame)


def station_document(lake_points: LakeStations, index: int, result: Any, n: int) -> dict[str, Any]:
    """Station ``index``'s report document from row ``n`` of an assessment."""
    stations = lake_points.stations
    return {
        "code": stations.codes[index],
        "name": stations.names[index],
        "city": stations.cities[index],
        "city_name": lake_points.city_names.get(stations.cities[index] or ""),
        "control_point": stations.control[index],
        **service.entity_document(result, n),
    }


def cities_and_nation(
    lake_points: LakeStations, values: np.ndarray, kept: np.ndarray, year: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The cities' documents in rank order and the national figures, from the daily
    values of the stations with data (``kept``: their indices), as the in-database
    assessment computes them: a city's daily values are the means of its non-control
    stations' over the whole (cities × stations) matrix at once."""
    stations = lake_points.stations
    assessed_in = [None if stations.control[i] else stations.cities[i] for i in kept]
    city_codes = sorted({code for code in assessed_in if code})
    city_number = {code: n for n, code in enumerate(city_codes)}
    group = np.array([city_number[code] if code else -1 for code in assessed_in])
    city_result = assess_entities(group_means(values, group, len(city_codes)), year)
    members = np.bincount(group[group >= 0], minlength=len(city_codes))
    city_docs = [
        {
            "code": code,
            "name": lake_points.city_names.get(code, code),
            "province": code[:2] + "0000",
            "stations": int(members[n]),
            **service.entity_document(city_result, n),
        }
        for n, code in enumerate(city_codes)
    ]
    service.rank_cities(city_docs)
    nation = service.nation_document(year, national_figures(city_result), len(kept), city_docs)
    return city_docs, nation


def report_from_daily(
    lake_points: LakeStations, values: np.ndarray, year: int
) -> AnnualReport | None:
    """The annual report of the stations' daily values (None without any)."""
    has_data = np.any(~np.isnan(values), axis=(1, 2))
    if not has_data.any():
        return None
    kept = np.flatnonzero(has_data)
    values = values[kept]
    result = assess_entities(values, year)
    station_docs = [station_document(lake_points, int(i), result, n) for n, i in enumerate(kept)]
    cities, nation = cities_and_nation(lake_points, values, kept, year)
    return AnnualReport(year, utcnow(), station_docs, cities, nation)


def assess_duckdb(lake: Path, year: int) -> AnnualReport | None:
    """The annual assessment of ``year`` over the lake on DuckDB."""
    lake_points = lake_stations(lake)
    return report_from_daily(lake_points, read_daily_duckdb(lake, year, lake_points.stations), year)


def good_days(report: AnnualReport) -> list[dict[str, Any]]:
    """Each city's good-day ratio (优良天数比例, AQI ≤ 100) in rank order."""
    return [
        {
            "code": city["code"],
            "name": city["name"],
            "good_days": city["good_days"],
            "aqi_days": city["aqi_days"],
            "good_ratio": city["good_ratio"],
        }
        for city in report.cities
    ]


def trends(
    reports: Sequence[AnnualReport], pollutant: str = "PM2.5", scope: str = "city"
) -> list[dict[str, Any]]:
    """The Mann-Kendall test and Sen's slope (:mod:`ecohub.standards.trend`) of each
    city's (or station's) annual figure of ``pollutant`` over the years of ``reports``
    (the annual mean; CO and O3 their percentile), from the published, rounded figures;
    years without a figure are left out and ``valid_years`` counts the years that meet
    GB 3095-2012 Table 4."""
    if pollutant not in POLLUTANTS:
        raise ValueError(f"unknown pollutant {pollutant!r}; one of {', '.join(POLLUTANTS)}")
    series: dict[str, dict[str, Any]] = {}
    for report in sorted(reports, key=lambda r: r.year):
        for doc in report.cities if scope == "city" else report.stations:
            figures = doc["pollutants"][pollutant]
            entry = series.setdefault(
                doc["code"], {"name": doc["name"], "years": [], "values": [], "valid": 0}
            )
            if figures["figure"] is not None:
                entry["years"].append(report.year)
                entry["values"].append(figures["figure"])
                entry["valid"] += int(figures["valid"])
    found = []
    for code, entry in sorted(series.items()):
        test = mann_kendall(entry["years"], entry["values"])
        found.append(
            {
                "code": code,
                "name": entry["name"],
                "pollutant": pollutant,
                "years": entry["years"],
                "values": entry["values"],
                "valid_years": entry["valid"],
                "s": test.s,
                "z": test.z,
                "p": test.p,
                "tau": test.tau,
                "slope": test.slope,
                "trend": test.trend,
            }
        )
    return found
