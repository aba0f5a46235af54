"""The CNEMC live-publication feed (全国城市空气质量实时发布平台, the service
``GetAQIDataPublishLives``) as GeoJSON: parse it into station records and check the
published AQI, primary pollutant and category against HJ 633-2012.

The feed is a FeatureCollection with one Point ([lon, lat]) per station; every property
is a string and ``-;`` means missing. ``timepoint`` is Beijing time without an offset.
Concentrations are μg/m³, CO mg/m³, keyed here by the names of the hourly station files
(``PM2.5``, ``PM2.5_24h``, …, ``O3``, ``O3_24h``, ``O3_8h``, ``O3_8h_24h``, ``CO``,
``CO_24h``).

Known quirk, reported and not hidden: in the 2018 copy of the feed the ``o3`` and
``o3_24h`` labels (and ``o3_8h``/``o3_8h_24h``) hold each other's values; the published
AQI is reproduced with ``o3_24h`` as the 1-hour O3 (see :func:`validate_live_feed`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecohub.standards.aqi import AQIResult, aqi_level, aqi_levels, hourly_aqi

BEIJING = dt.timezone(dt.timedelta(hours=8), "CST")
MISSING = "-;"
# Feed property → concentration name (as in the china_sites files).
CONCENTRATIONS = {
    "pm2_5": "PM2.5",
    "pm2_5_24h": "PM2.5_24h",
    "pm10": "PM10",
    "pm10_24h": "PM10_24h",
    "so2": "SO2",
    "so2_24h": "SO2_24h",
    "no2": "NO2",
    "no2_24h": "NO2_24h",
    "o3": "O3",
    "o3_24h": "O3_24h",
    "o3_8h": "O3_8h",
    "o3_8h_24h": "O3_8h_24h",
    "co": "CO",
    "co_24h": "CO_24h",
}
# Published primary-pollutant names (HJ 633-2012 Table 1 wording) → pollutant; the
# part in brackets, when there is one, is not needed to tell them apart.
PRIMARY_POLLUTANTS = {
    "细颗粒物": "PM2.5",
    "PM2.5": "PM2.5",
    "颗粒物": "PM10",
    "可吸入颗粒物": "PM10",
    "PM10": "PM10",
    "二氧化硫": "SO2",
    "SO2": "SO2",
    "二氧化氮": "NO2",
    "NO2": "NO2",
    "一氧化碳": "CO",
    "CO": "CO",
    "臭氧1小时": "O3",
    "臭氧1小时平均": "O3",
    "臭氧8小时": "O3_8h",
    "臭氧8小时平均": "O3_8h",
}
# Which feed property the validator takes as the 1-hour O3.
O3_AS_LABELLED = "o3"
O3_SWAPPED = "o3_24h"
O3_PER_STATION = "per_station"
O3_OPTIONS = (O3_AS_LABELLED, O3_SWAPPED, O3_PER_STATION)
MAX_EXAMPLES = 5


class LiveFeedError(ValueError):
    """Malformed feed input; the message names the feature index and the field."""


@dataclass(frozen=True)
class LiveRecord:
    """One station's hour in the live feed."""

    index: int  # the feature's position in the collection
    station_code: str
    name: str
    city: str
    lon: float
    lat: float
    timepoint: dt.datetime  # aware, Beijing time
    aqi: float | None
    primary_pollutants: tuple[str, ...]  # pollutant names; empty when none is published
    quality: str | None  # the published category (优, 良, 轻度污染 …)
    concentrations: Mapping[str, float | None]


def parse_live_feed(source: str | bytes | Mapping[str, Any]) -> list[LiveRecord]:
    """Parse a live-feed GeoJSON document (text, bytes or the decoded object)."""
    if isinstance(source, str | bytes):
        try:
            document = json.loads(source)
        except ValueError as error:
            raise LiveFeedError(f"not JSON: {error}") from error
    else:
        document = source
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        raise LiveFeedError("expected a GeoJSON FeatureCollection")
    features = document.get("features")
    if not isinstance(features, list):
        raise LiveFeedError("expected a list under 'features'")
    return [_record(index, feature) for index, feature in enumerate(features)]


def _record(index: int, feature: Any) -> LiveRecord:
    def fail(name: str, problem: str) -> LiveFeedError:
        return LiveFeedError(f"feature {index}: field {name!r}: {problem}")

    if not isinstance(feature, Mapping):
        raise LiveFeedError(f"feature {index}: not an object")
    properties = feature.get("properties")
    if not isinstance(properties, Mapping):
        raise fail("properties", "missing or not an object")

    def text(name: str) -> str:
        value = properties.get(name)
        if not isinstance(value, str):
            raise fail(name, "missing" if value is None else f"not a string: {value!r}")
        return value.strip()

    def number(name: str) -> float | None:
        value = text(name)
        if value == MISSING:
            return None
        try:
            result = float(value)
        except ValueError:
            raise fail(name, f"not a number or {MISSING!r}: {value!r}") from None
        if not math.isfinite(result) or result < 0:
            raise fail(name, f"not a non-negative number: {value!r}")
        return result

    lon, lat = _coordinates(feature.get("geometry"), fail)
    code = text("stationcode")
    if not code or code == MISSING:
        raise fail("stationcode", "empty")
    quality = text("quality")
    return LiveRecord(
        index=index,
        station_code=code,
        name=text("positionname"),
        city=text("area"),
        lon=lon,
        lat=lat,
        timepoint=_timepoint(text("timepoint"), fail),
        aqi=number("aqi"),
        primary_pollutants=_primary(text("primarypollutant"), fail),
        quality=None if quality == MISSING else quality,
        concentrations={name: number(key) for key, name in CONCENTRATIONS.items()},
    )


def _coordinates(geometry: Any, fail: Any) -> tuple[float, float]:
    if not isinstance(geometry, Mapping) or geometry.get("type") != "Point":
        raise fail("geometry", "expected a Point")
    point = geometry.get("coordinates")
    if (
        not isinstance(point, Sequence)
        or len(point) != 2
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
    ):
        raise fail("geometry.coordinates", f"expected [lon, lat], got {point!r}")
    lon, lat = float(point[0]), float(point[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise fail("geometry.coordinates", f"outside [-180, 180] × [-90, 90]: {point!r}")
    return lon, lat


def _timepoint(value: str, fail: Any) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail("timepoint", f"not an ISO date-time: {value!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=BEIJING)
    return moment.astimezone(BEIJING)


def _primary(value: str, fail: Any) -> tuple[str, ...]:
    if value in {MISSING, ""}:
        return ()
    normal = value.replace("（", "(").replace("）", ")").replace("，", ",").replace("、", ",")
    names = []
    for part in normal.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        name = PRIMARY_POLLUTANTS.get(part) or PRIMARY_POLLUTANTS.get(part.split("(")[0])
        if name is None:
            raise fail("primarypollutant", f"unknown pollutant {part!r}")
        names.append(name)
    return tuple(names)


# --- validation ------------------------------------------------------------------------


@dataclass
class LiveValidation:
    """The published AQI, primary pollutant and category against HJ 633-2012."""

    o3_1h_field: str
    records: int = 0
    compared: int = 0  # records with a published AQI
    exact: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    primary_compared: int = 0
    primary_matched: int = 0
    primary_examples: list[str] = field(default_factory=list)
    quality_compared: int = 0
    quality_matched: int = 0
    # Which property reproduces each published AQI as the 1-hour O3: "o3", "o3_24h",
    # "both" (O3 does not decide the AQI, or the two agree), "neither".
    o3_reproduces: Counter[str] = field(default_factory=Counter)
    needs_o3_24h: list[str] = field(default_factory=list)  # station codes
    # Order of each label pair where both are published: a maximum of the past 24 h
    # (o3_24h, o3_8h_24h) cannot be below the current value it is taken over.
    o3_order: Counter[str] = field(default_factory=Counter)
    o3_8h_order: Counter[str] = field(default_factory=Counter)

    @property
    def exact_rate(self) -> float:
        return self.exact / self.compared if self.compared else float("nan")

    def add(self, cause: str, text: str) -> None:
        self.causes[cause] += 1
        examples = self.examples.setdefault(cause, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(text)


def validate_live_feed(
    records: Iterable[LiveRecord], *, o3_1h_field: str = O3_AS_LABELLED
) -> LiveValidation:
    """Recompute each station's hourly AQI (HJ 633-2012 5.2, Table 1:
    :func:`ecohub.standards.aqi.hourly_aqi`), its primary pollutant (5.4: the
    pollutant(s) with the largest IAQI when the AQI exceeds 50) and category (Table 2),
    and compare them with the published ones.

    ``o3_1h_field`` names the property read as the 1-hour O3: ``"o3"`` (default, as
    labelled), ``"o3_24h"`` (the labels read swapped) or ``"per_station"`` (whichever
    reproduces the published AQI, ``"o3"`` when both or neither do). Whatever the
    option, the report counts which property reproduces each station
    (``o3_reproduces``, ``needs_o3_24h``) and how the labelled values are ordered
    (``o3_order``, ``o3_8h_order``).
    """
    if o3_1h_field not in O3_OPTIONS:
        raise ValueError(f"o3_1h_field must be one of {', '.join(O3_OPTIONS)}")
    rows = list(records)
    report = LiveValidation(o3_1h_field=o3_1h_field, records=len(rows))
    if not rows:
        return report

    def column(name: str) -> np.ndarray:
        return np.array([_nan(r.concentrations.get(name)) for r in rows])

    published = np.array([_nan(r.aqi) for r in rows])
    labelled, swapped = _aqi(rows, column, "O3"), _aqi(rows, column, "O3_24h")
    by_labelled = labelled.aqi == published
    by_swapped = swapped.aqi == published
    use_swapped = {
        O3_AS_LABELLED: np.zeros(len(rows), bool),
        O3_SWAPPED: np.ones(len(rows), bool),
        O3_PER_STATION: by_swapped & ~by_labelled,
    }[o3_1h_field]
    _tally_o3(report, rows, published, by_labelled, by_swapped, column)
    primary_labelled = labelled.primary_pollutants()
    primary_swapped = swapped.primary_pollutants()
    categories = [level.category_zh for level in aqi_levels()]
    for i, row in enumerate(rows):
        if row.aqi is None:
            continue
        chosen = swapped if use_swapped[i] else labelled
        recomputed = chosen.aqi[i]
        report.compared += 1
        if recomputed == row.aqi:
            report.exact += 1
        else:
            report.add(
                _cause(row, recomputed, by_labelled[i], by_swapped[i], use_swapped[i]),
                f"{row.station_code} {row.name} ({row.city}): published {row.aqi:g}, "
                f"recomputed {recomputed:g} (o3={_text(row, 'O3')}, "
                f"o3_24h={_text(row, 'O3_24h')})",
            )
        primary = (primary_swapped if use_swapped[i] else primary_labelled)[i]
        report.primary_compared += 1
        if sorted(primary) == sorted(row.primary_pollutants):
            report.primary_matched += 1
        elif len(report.primary_examples) < MAX_EXAMPLES:
            report.primary_examples.append(
                f"{row.station_code}: published {'/'.join(row.primary_pollutants) or '-'}, "
                f"recomputed {'/'.join(primary) or '-'} (AQI {row.aqi:g})"
            )
        if row.quality is not None:
            report.quality_compared += 1
            level = int(aqi_level(row.aqi))
            report.quality_matched += int(level > 0 and categories[level - 1] == row.quality)
    return report


def _aqi(rows: list[LiveRecord], column: Any, o3: str) -> AQIResult:
    return hourly_aqi(
        so2=column("SO2"),
        no2=column("NO2"),
        pm10=column("PM10"),
        pm25=column("PM2.5"),
        co=column("CO"),
        o3=column(o3),
        so2_24h=column("SO2_24h"),
    )


def _tally_o3(
    report: LiveValidation,
    rows: list[LiveRecord],
    published: np.ndarray,
    by_labelled: np.ndarray,
    by_swapped: np.ndarray,
    column: Any,
) -> None:
    has = ~np.isnan(published)
    for key, mask in (
        ("both", by_labelled & by_swapped),
        ("o3", by_labelled & ~by_swapped),
        ("o3_24h", by_swapped & ~by_labelled),
        ("neither", has & ~by_labelled & ~by_swapped),
    ):
        report.o3_reproduces[key] += int(np.count_nonzero(mask))
    report.needs_o3_24h = [rows[i].station_code for i in np.flatnonzero(by_swapped & ~by_labelled)]
    for counter, current, peak in (
        (report.o3_order, column("O3"), column("O3_24h")),
        (report.o3_8h_order, column("O3_8h"), column("O3_8h_24h")),
    ):
        with np.errstate(invalid="ignore"):
            counter["24h label above"] += int(np.count_nonzero(peak > current))
            counter["equal"] += int(np.count_nonzero(peak == current))
            counter["24h label below"] += int(np.count_nonzero(peak < current))


def _cause(
    row: LiveRecord, recomputed: float, by_labelled: bool, by_swapped: bool, swapped: bool
) -> str:
    if not swapped and by_swapped:
        return "reproduced only with o3_24h as the 1-hour O3"
    if swapped and by_labelled:
        return "reproduced only with o3 as the 1-hour O3"
    if any(row.concentrations.get(name) is None for name in ("SO2", "NO2", "PM10", "PM2.5", "CO")):
        return "a concentration is not published"
    if math.isnan(recomputed):
        return "no concentration to recompute from"
    so2 = row.concentrations.get("SO2")
    if so2 is not None and so2 > 800:
        return "SO2 1-h above 800 μg/m³"
    return "published higher" if row.aqi is not None and row.aqi > recomputed else "published lower"


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


def _text(row: LiveRecord, name: str) -> str:
    value = row.concentrations.get(name)
    return MISSING if value is None else f"{value:g}"
