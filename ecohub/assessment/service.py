"""The annual assessment of a year's air stations and cities from the store's daily
rollups (HJ 663-2013 with GB 3095-2012, HJ 633-2012 and the 2018 city ranking rules),
stored as one report per station, city and the nation, and read back by the API, the
pages and ``ecohub assess annual``.

One pass over the year's valid daily rollups of the air stations, one local day per
query (the ``(period, ts)`` index), fills a (stations, days, series) array; a city's
daily value of each pollutant is the mean of its non-control stations' valid daily
values that day (HJ 663-2013; control sites, ``Site.control_point``, are assessed as
stations but left out of their city), and its daily AQI is computed from those means
(HJ 633-2012 §5, as :func:`ecohub.timeseries.aqi.group_aqi`). The rules are
:mod:`ecohub.assessment.rules`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine, Float, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ecohub.assessment.rules import (
    GRADES,
    UNITS,
    NationalFigures,
    YearAssessment,
    assess_year,
    competition_ranks,
    group_means,
    months_of_year,
    national_figures,
    ranking_key,
)
from ecohub.assessment.tables import annual_assessments
from ecohub.clock import iso_z, local_year_bounds, local_zone, utcnow
from ecohub.registry.models import MonitoringPoint, Region, Site, SiteKind
from ecohub.registry.regions import city_level_codes, city_of
from ecohub.standards.air_assessment import COMPREHENSIVE_ITEMS, limit
from ecohub.standards.aqi import daily_aqi
from ecohub.timeseries.rules import AQI_PARAMETERS, O3_MAX_1H, O3_MAX_8H
from ecohub.timeseries.tables import rollups

# Pollutant → the daily rollup series assessed (O3: the daily maximum 8-hour mean).
SERIES = {
    "SO2": "a21026",
    "NO2": "a21004",
    "PM10": "a34002",
    "PM2.5": "a34004",
    "CO": "a21005",
    "O3": O3_MAX_8H,
}
READ_CODES = (*SERIES.values(), O3_MAX_1H)  # the O3 1-hour maximum for the daily AQI
# The store keeps SO2 and NO2 in mg/m³ (HJ 212-2017); the standards use μg/m³.
FACTORS = np.array(
    [AQI_PARAMETERS[code][1] if code in AQI_PARAMETERS else 1.0 for code in READ_CODES]
)
NATION = "CN"
# A year still under way is computed again when its stored assessment is this old.
REFRESH_OPEN_YEAR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
CHUNK_POINTS = 100  # monitoring points a query


class epoch_days(FunctionElement[float]):
    """A timestamp column as days since 1970-01-01 UTC, computed by the database, so
    that a year's rows need no Python datetime each."""

    type = Float()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _epoch_days_sqlite(element: epoch_days, compiler: SQLCompiler, **kw: Any) -> str:
    return "(julianday(" + compiler.process(element.clauses, **kw) + ") - 2440587.5)"


@compiles(epoch_days, "postgresql")
def _epoch_days_postgresql(element: epoch_days, compiler: SQLCompiler, **kw: Any) -> str:
    # date_part gives a double; extract would give a numeric (a Decimal per row).
    return "(date_part('epoch', " + compiler.process(element.clauses, **kw) + ") / 86400.0)"


class NoAssessment(LookupError):
    """No data for the year, or no such city or station in it (a 404)."""


@dataclass(frozen=True)
class Stations:
    """The air stations of the registry, in code order."""

    codes: list[str]
    names: list[str]
    cities: list[str | None]  # the city a station lies in
    control: list[bool]
    point_index: dict[int, int]  # monitoring point id → station index


def air_stations(engine: Engine) -> Stations:
    """Every air station with its monitoring points and its city (:func:`city_of`)."""
    with engine.connect() as connection:
        cities_known = city_level_codes(connection)
        rows = connection.execute(
            select(MonitoringPoint.id, Site.code, Site.name, Site.region_code, Site.control_point)
            .join(Site, Site.id == MonitoringPoint.site_id)
            .where(Site.kind == SiteKind.AIR.value)
            .order_by(Site.code, MonitoringPoint.id)
        ).all()
    codes: list[str] = []
    names: list[str] = []
    cities: list[str | None] = []
    control: list[bool] = []
    point_index: dict[int, int] = {}
    for point_id, code, name, region, is_control in rows:
        if not codes or codes[-1] != code:
            codes.append(code)
            names.append(name)
            cities.append(city_of(region, cities_known))
            control.append(bool(is_control))
        point_index[point_id] = len(codes) - 1
    return Stations(codes, names, cities, control, point_index)


def read_daily(
    engine: Engine,
    year: int,
    stations: Stations,
    on_progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The valid daily values of the year, shaped (stations, days, READ_CODES), in
    μg/m³ (CO mg/m³), NaN where missing; a station with several points gets their
    mean. Read in chunks of stations along the rollups' primary key (point, series,
    period, time), which on SQLite costs half as much a row as the (period, time)
    index, with times as numbers of days; ``on_progress(done, total)`` counts points."""
    start, end = local_year_bounds(year)
    days = round((end - start) / DAY)
    shape = (len(stations.codes), days, len(READ_CODES))
    size = shape[0] * shape[1] * shape[2]
    sums = np.zeros(size)
    counts = np.zeros(size)
    points = sorted(stations.point_index, key=stations.point_index.__getitem__)
    station_of = np.full(max(points, default=0) + 1, -1)
    for point, index in stations.point_index.items():
        station_of[point] = index
    first_day = (start - EPOCH) / DAY
    with engine.connect() as connection:
        for first in range(0, len(points), CHUNK_POINTS):
            chunk = points[first : first + CHUNK_POINTS]
            for series, code in enumerate(READ_CODES):
                rows = connection.execute(
                    select(rollups.c.point_id, epoch_days(rollups.c.ts), rollups.c.value).where(
                        rollups.c.point_id.in_(chunk),
                        rollups.c.parameter_code == code,
                        rollups.c.period == "day",
                        rollups.c.ts >= start,
                        rollups.c.ts < end,
                        rollups.c.valid,
                        rollups.c.value.is_not(None),
                    )
                ).all()
                if not rows:
                    continue
                point_ids, times, values = zip(*rows, strict=True)
                at_station = station_of[np.fromiter(point_ids, np.int64, len(rows))]
                at_day = np.rint(np.fromiter(times, float, len(rows)) - first_day)
                at_day = at_day.astype(np.int64)
                flat = (at_station * days + at_day) * len(READ_CODES) + series
                low = int(flat.min())  # a chunk's stations are contiguous
                added = np.bincount(flat - low, np.fromiter(values, float, len(rows)))
                sums[low : low + added.size] += added
                counts[low : low + added.size] += np.bincount(flat - low)
            if on_progress is not None:
                on_progress(min(first + CHUNK_POINTS, len(points)), len(points))
    sums, counts = sums.reshape(shape), counts.reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan) * FACTORS


def entity_aqi(values: np.ndarray) -> np.ndarray:
    """Daily AQI (HJ 633-2012 5.2, Table 1) of entities' daily values (…, READ_CODES)."""

    def column(code: str) -> np.ndarray:
        return values[..., READ_CODES.index(code)]

    return daily_aqi(
        so2=column(SERIES["SO2"]),
        no2=column(SERIES["NO2"]),
        pm10=column(SERIES["PM10"]),
        pm25=column(SERIES["PM2.5"]),
        co=column(SERIES["CO"]),
        o3_1h_max=column(O3_MAX_1H),
        o3_8h_max=column(O3_MAX_8H),
    ).aqi


def assess_entities(values: np.ndarray, year: int) -> YearAssessment:
    """The annual assessment of entities from their daily values (entities, days, codes)."""
    daily = {name: values[..., READ_CODES.index(code)] for name, code in SERIES.items()}
    return assess_year(daily, months_of_year(year), entity_aqi(values))


@dataclass
class AnnualReport:
    """A year's assessment: a document per station and city, and the national one."""

    year: int
    computed_at: dt.datetime
    stations: list[dict[str, Any]]
    cities: list[dict[str, Any]]  # in rank order
    nation: dict[str, Any]


def compute(
    engine: Engine, year: int, on_progress: Callable[[int, int], None] | None = None
) -> AnnualReport | None:
    """The annual assessment of every air station and city with data in ``year`` (None
    when there is none)."""
    stations = air_stations(engine)
    values = read_daily(engine, year, stations, on_progress)
    has_data = np.any(~np.isnan(values), axis=(1, 2))
    if not has_data.any():
        return None
    kept = np.flatnonzero(has_data)
    values = values[kept]
    station_result = assess_entities(values, year)
    # A city's daily values: the mean of its non-control stations' (HJ 663-2013).
    assessed_in = [None if stations.control[i] else stations.cities[i] for i in kept]
    city_codes = sorted({code for code in assessed_in if code})
    city_number = {code: n for n, code in enumerate(city_codes)}
    group = np.array([city_number[code] if code else -1 for code in assessed_in])
    city_result = assess_entities(group_means(values, group, len(city_codes)), year)
    names = _region_names(engine, {c for c in stations.cities if c})
    station_docs = [
        {
            "code": stations.codes[i],
            "name": stations.names[i],
            "city": stations.cities[i],
            "city_name": names.get(stations.cities[i] or ""),
            "control_point": stations.control[i],
            **entity_document(station_result, n),
        }
        for n, i in enumerate(kept)
    ]
    members = np.bincount(group[group >= 0], minlength=len(city_codes))
    city_docs = [
        {
            "code": code,
            "name": names.get(code, code),
            "province": code[:2] + "0000",
            "stations": int(members[n]),
            **entity_document(city_result, n),
        }
        for n, code in enumerate(city_codes)
    ]
    rank_cities(city_docs)
    nation = nation_document(year, national_figures(city_result), len(station_docs), city_docs)
    return AnnualReport(year, utcnow(), station_docs, city_docs, nation)


def _region_names(engine: Engine, codes: set[str]) -> dict[str, str]:
    with engine.connect() as connection:
        return {
            code: name
            for code, name in connection.execute(
                select(Region.code, Region.name).where(Region.code.in_(codes))
            )
        }


def _number(value: Any, digits: int = 3) -> float | None:
    number = float(value)
    return None if math.isnan(number) else round(number, digits)


def entity_document(result: YearAssessment, n: int) -> dict[str, Any]:
    """One entity's figures as a JSON-ready document."""
    pollutants = {}
    for name, year in result.pollutants.items():
        valid = bool(year.valid[n])
        pollutants[name] = {
            "unit": UNITS[name],
            "mean": None if year.mean is None else _number(year.mean[n]),
            "percentile": _number(year.percentile[n]),
            "percentile_rank": year.percentile_rank,
            "figure": _number(year.figure[n]),
            "single_index": _number(result.index.single[name][n]),
            "valid_days": int(year.valid_days[n]),
            "month_days": [int(days) for days in year.month_days[n]],
            "valid": valid,
            **{f"multiple_grade_{grade}": _number(year.multiple[grade][n]) for grade in GRADES},
            **{
                f"compliant_grade_{grade}": bool(year.compliant[grade][n]) if valid else None
                for grade in GRADES
            },
        }
    total = _number(result.index.total[n])
    valid = bool(result.valid[n])
    return {
        "valid": valid,
        "compliant_grade_1": bool(result.compliant[1][n]) if valid else None,
        "compliant_grade_2": bool(result.compliant[2][n]) if valid else None,
        "index": total,
        "largest_index": _number(result.index.largest[n]),
        "primary": result.index.primary[n] if total is not None else None,
        "aqi_days": int(result.aqi_days[n]),
        "good_days": int(result.good_days[n]),
        "good_ratio": _number(result.good_ratio[n], 4),
        "level_days": [int(days) for days in result.level_days[n]],
        "pollutants": pollutants,
    }


def rank_cities(cities: list[dict[str, Any]]) -> None:
    """Order cities by the comprehensive index (lowest first; invalid years after the
    valid ones) and give each its competition rank (None without an index)."""
    cities.sort(key=lambda city: (*ranking_key(city["index"], city["valid"]), city["code"]))
    keys = [ranking_key(city["index"], city["valid"]) for city in cities]
    for city, rank in zip(cities, competition_ranks(keys), strict=True):
        city["rank"] = rank if city["index"] is not None else None


def limits() -> dict[str, dict[str, Any]]:
    """GB 3095-2012 Table 1 limits of what the annual assessment compares, per pollutant:
    the annual mean (where one exists) and the 24-hour (O3: 8-hour) limit that the
    percentile is held to, grade I and II."""
    found: dict[str, dict[str, Any]] = {}
    for name, _period in COMPREHENSIVE_ITEMS:
        daily = "8h" if name == "O3" else "24h"
        found[name] = {
            "unit": UNITS[name],
            "daily_period": daily,
            **{
                f"annual_grade_{g}": limit(name, "annual", g) if name not in ("CO", "O3") else None
                for g in GRADES
            },
            **{f"daily_grade_{g}": limit(name, daily, g) for g in GRADES},
        }
    return found


def nation_document(
    year: int, figures: NationalFigures, stations: int, cities: list[dict[str, Any]]
) -> dict[str, Any]:
    share = figures.share_meeting_grade_2
    return {
        "year": year,
        "stations": stations,
        "cities": len(cities),
        "cities_assessed": figures.cities_assessed,
        "cities_meeting_grade_2": figures.cities_meeting_grade_2,
        "share_meeting_grade_2": None if share is None else round(share, 4),
        "means": {
            name: _number(value) if value is not None else None
            for name, value in figures.means.items()
        },
        "cities_counted": figures.cities_counted,
        "good_ratio": None if figures.good_ratio is None else round(figures.good_ratio, 4),
    }


# --- storing and reading ----------------------------------------------------------


def save(engine: Engine, report: AnnualReport) -> None:
    """Replace the stored assessment of the report's year."""
    rows = [
        {
            "year": report.year,
            "scope": "station",
            "code": doc["code"],
            "city": doc["city"],
            "position": None,
            "document": json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
            "computed_at": report.computed_at,
        }
        for doc in report.stations
    ]
    rows += [
        {
            "year": report.year,
            "scope": "city",
            "code": doc["code"],
            "city": doc["code"],
            "position": doc["rank"],
            "document": json.dumps(doc, ensure_ascii=False, separators=(",", ":")),
            "computed_at": report.computed_at,
        }
        for doc in report.cities
    ]
    rows.append(
        {
            "year": report.year,
            "scope": "nation",
            "code": NATION,
            "city": None,
            "position": None,
            "document": json.dumps(report.nation, ensure_ascii=False, separators=(",", ":")),
            "computed_at": report.computed_at,
        }
    )
    try:
        with engine.begin() as connection:
            connection.execute(
                delete(annual_assessments).where(annual_assessments.c.year == report.year)
            )
            for chunk in range(0, len(rows), 1000):
                connection.execute(insert(annual_assessments), rows[chunk : chunk + 1000])
    except IntegrityError:
        pass  # another process stored the same year's assessment meanwhile


def assess(
    engine: Engine, year: int, on_progress: Callable[[int, int], None] | None = None
) -> AnnualReport | None:
    """Compute and store the assessment of ``year`` (None when it has no data)."""
    report = compute(engine, year, on_progress)
    if report is not None:
        save(engine, report)
    return report


def ensure(engine: Engine, year: int, now: dt.datetime | None = None) -> dt.datetime:
    """Make sure ``year`` has a stored assessment, computing it when there is none or
    when the year was still under way and it is older than an hour; returns the time
    it was computed. Raises :class:`NoAssessment` when the year has no data."""
    now = now or utcnow()
    with engine.connect() as connection:
        computed = connection.execute(
            select(annual_assessments.c.computed_at).where(
                annual_assessments.c.year == year, annual_assessments.c.scope == "nation"
            )
        ).scalar_one_or_none()
    _start, end = local_year_bounds(year)
    if computed is not None and (computed >= end or now - computed < REFRESH_OPEN_YEAR):
        return computed
    report = assess(engine, year)
    if report is None:
        raise NoAssessment(f"no valid daily air-quality data in {year}")
    return report.computed_at


def newest_year(engine: Engine) -> int | None:
    """The local year of the newest daily PM2.5 rollup (the default year to assess)."""
    with engine.connect() as connection:
        newest = connection.execute(
            select(func.max(rollups.c.ts)).where(
                rollups.c.period == "day", rollups.c.parameter_code == SERIES["PM2.5"]
            )
        ).scalar_one_or_none()
    return newest.astimezone(local_zone()).year if newest else None


def _documents(engine: Engine, year: int, scope: str, city: str | None = None) -> list[Any]:
    query = select(annual_assessments.c.document).where(
        annual_assessments.c.year == year, annual_assessments.c.scope == scope
    )
    if city is not None:
        query = query.where(annual_assessments.c.city == city)
    order = annual_assessments.c.position if scope == "city" else annual_assessments.c.code
    with engine.connect() as connection:
        return [json.loads(doc) for doc in connection.execute(query.order_by(order)).scalars()]


def _check_city(engine: Engine, code: str) -> str:
    with engine.connect() as connection:
        name = connection.execute(select(Region.name).where(Region.code == code)).scalar()
    if name is None:
        raise NoAssessment(f"unknown city {code!r}")
    return str(name)


def fetch_cities(engine: Engine, year: int) -> dict[str, Any]:
    """The ranking of the year's cities with their figures, and the national figures."""
    computed = ensure(engine, year)
    cities = _documents(engine, year, "city")
    cities.sort(key=lambda city: (city["rank"] is None, city["rank"] or 0, city["code"]))
    return {
        "year": year,
        "computed_at": iso_z(computed),
        "national": _documents(engine, year, "nation")[0],
        "limits": limits(),
        "cities": cities,
    }


def fetch_stations(engine: Engine, year: int, city: str | None) -> dict[str, Any]:
    """The year's station assessments, all or one city's (its control sites included)."""
    if city is not None:
        _check_city(engine, city)
    computed = ensure(engine, year)
    stations = _documents(engine, year, "station", city)
    if city is not None and not stations:
        raise NoAssessment(f"no air stations with data in city {city!r} in {year}")
    return {
        "year": year,
        "computed_at": iso_z(computed),
        "city": city,
        "limits": limits(),
        "stations": stations,
    }


def fetch_city(engine: Engine, year: int, code: str) -> dict[str, Any]:
    """A city's annual report card: its figures and rank, and its stations'."""
    name = _check_city(engine, code)
    computed = ensure(engine, year)
    found = [doc for doc in _documents(engine, year, "city", code) if doc["code"] == code]
    if not found:
        raise NoAssessment(f"no assessment of {name} ({code}) in {year}: no station data")
    with engine.connect() as connection:
        ranked = connection.execute(
            select(func.count()).where(
                annual_assessments.c.year == year,
                annual_assessments.c.scope == "city",
                annual_assessments.c.position.is_not(None),
            )
        ).scalar_one()
    return {
        "year": year,
        "computed_at": iso_z(computed),
        "city": found[0],
        "cities_ranked": ranked,
        "limits": limits(),
        "stations": _documents(engine, year, "station", code),
    }
