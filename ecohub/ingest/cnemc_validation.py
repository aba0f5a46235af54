"""Validation of CNEMC's published hourly station files (``china_sites_YYYYMMDD.csv``)
against the standards: the hourly AQI per HJ 633-2012 (``ecohub.standards``); the
moving averages are in :mod:`ecohub.ingest.cnemc_moving_averages`.

Files are read one at a time and only each station's last hours are kept between
consecutive days, so any number of files runs in bounded memory. The file layout: a
header ``date,hour,type,<station codes…>``, 15 rows (types) per hour, empty cells for
missing values, CRLF or LF. Real files carry quirks that are kept, not cleaned: a
station column given twice (the first is used), unnamed trailing columns (dropped), a
last row cut short (its missing cells are missing values), an hour without rows.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ecohub.standards.aqi import SO2_ABOVE_800_24H, hourly_aqi
from ecohub.standards.moving_averages import (
    HOURS_PER_DAY,
)

FloatArray = NDArray[np.float64]

TYPES = (
    "AQI",
    "PM2.5",
    "PM2.5_24h",
    "PM10",
    "PM10_24h",
    "SO2",
    "SO2_24h",
    "NO2",
    "NO2_24h",
    "O3",
    "O3_24h",
    "O3_8h",
    "O3_8h_24h",
    "CO",
    "CO_24h",
)
HOURLY_TYPES = ("SO2", "NO2", "PM10", "PM2.5", "CO", "O3")
MAX_EXAMPLES = 5

# Mismatch causes.
SO2_ABOVE_800 = "SO2 1-h above 800 μg/m³ (HJ 633-2012 Table 1 note 2)"
NOTHING_PUBLISHED = "no concentration published (an AQI without its concentrations)"
POLLUTANT_MISSING = "AQI recomputed without a pollutant not published that hour"
PUBLISHED_HIGHER = "published AQI higher than recomputed"
PUBLISHED_LOWER = "published AQI lower than recomputed"


class CnemcFileError(ValueError):
    """A file that is not a CNEMC hourly station file."""


@dataclass(frozen=True)
class StationDay:
    """One file: every published type as an array (stations, 24 hours), NaN missing."""

    path: Path
    date: dt.date
    stations: tuple[str, ...]
    values: dict[str, FloatArray]
    hours: NDArray[np.bool_]  # which hours have rows in the file
    notes: tuple[str, ...]  # quirks met while reading


def read_station_day(path: Path | str, data: bytes | None = None) -> StationDay:
    """Read one ``china_sites_YYYYMMDD.csv`` file (or ``data``, the bytes of an archive
    member named ``path``), columns by name. Raises :class:`CnemcFileError` for a file
    of another shape."""
    path = Path(path)
    raw = path.read_bytes() if data is None else data
    lines = raw.decode("utf-8-sig").replace("\r", "").split("\n")
    header = [name.strip() for name in lines[0].split(",")]
    if header[:3] != ["date", "hour", "type"]:
        raise CnemcFileError(f"{path}: expected the columns date,hour,type,…; got {header[:3]}")
    rows = [line for line in lines[1:] if line]
    matrix, keys, short_rows = _parse_rows(path, rows, len(header) - 3)
    notes: list[str] = []
    if short_rows:
        notes.append(f"{short_rows} row(s) cut short: the missing cells are missing values")
    columns: dict[str, int] = {}
    for index, code in enumerate(header[3:]):
        if not code:
            notes.append(f"unnamed column {index + 3} dropped")
        elif code in columns:
            first = matrix[:, columns[code]]
            same = np.array_equal(first, matrix[:, index], equal_nan=True)
            notes.append(
                f"station {code} given twice (columns {columns[code] + 3} and {index + 3}, "
                f"{'identical' if same else 'different'} values); the first is used"
            )
        else:
            columns[code] = index
    dates = {date for date, _, _ in keys}
    if len(dates) != 1:
        raise CnemcFileError(f"{path}: expected one date, found {sorted(dates)[:5]}")
    try:
        date = dt.datetime.strptime(dates.pop(), "%Y%m%d").date()
        hours = np.array([int(hour) for _, hour, _ in keys], dtype=np.int64)
    except ValueError as error:
        raise CnemcFileError(f"{path}: bad date or hour: {error}") from error
    if hours.min() < 0 or hours.max() >= HOURS_PER_DAY:
        raise CnemcFileError(f"{path}: hour outside 0-23")
    kept = matrix[:, list(columns.values())]
    values = {name: np.full((len(columns), HOURS_PER_DAY), np.nan) for name in TYPES}
    unknown = sorted({kind for _, _, kind in keys if kind not in values})
    if unknown:
        notes.append(f"unknown types ignored: {', '.join(unknown)}")
    for row, (hour, (_, _, kind)) in enumerate(zip(hours, keys, strict=True)):
        if kind in values:
            values[kind][:, hour] = kept[row]
    present = np.zeros(HOURS_PER_DAY, dtype=bool)
    present[hours] = True
    if not present.all():
        notes.append(f"hours without rows: {', '.join(map(str, np.flatnonzero(~present)))}")
    return StationDay(path, date, tuple(columns), values, present, tuple(notes))


def _parse_rows(
    path: Path, rows: list[str], width: int
) -> tuple[FloatArray, list[tuple[str, str, str]], int]:
    """The numbers of each row as a matrix (rows, width), NaN for empty or missing cells,
    and each row's (date, hour, type). A number that does not parse is missing."""
    matrix = np.full((len(rows), width), np.nan)
    keys: list[tuple[str, str, str]] = []
    short_rows = 0
    for index, row in enumerate(rows):
        parts = row.split(",", 3)
        if len(parts) < 3:
            raise CnemcFileError(f"{path}: row {index + 2} has fewer than 3 fields")
        keys.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
        cells = parts[3] if len(parts) == 4 else ""
        count = cells.count(",") + 1 if len(parts) == 4 else 0
        short_rows += count < width
        if count > width:
            raise CnemcFileError(f"{path}: row {index + 2} has more fields than the header")
        # Fast path: empty cells as "nan", then one C-level parse of the whole row.
        text = f",{cells},".replace(",,", ",nan,").replace(",,", ",nan,")[1:-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            numbers = np.fromstring(text, sep=",") if count else np.empty(0)
        if numbers.size != count:
            numbers = np.array([_number(cell) for cell in cells.split(",")])
        matrix[index, :count] = numbers
    return matrix, keys, short_rows


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def station_label(day: StationDay, station: int | np.integer, hour: int | np.integer) -> str:
    return f"{day.stations[station]} {day.date.isoformat()} {hour:02d}h"


# --- hourly AQI -----------------------------------------------------------------------


@dataclass
class AQIReport:
    """Published hourly AQI against HJ 633-2012 recomputed from the published 1-hour
    concentrations. Station-hours without a published AQI are not compared;
    ``withheld`` counts those that nonetheless publish at least one concentration."""

    so2_above_800: str
    files: int = 0
    compared: int = 0
    exact: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    withheld: int = 0
    withheld_examples: list[str] = field(default_factory=list)
    so2_above_800_hours: int = 0
    # Of ``compared``: hours publishing fewer than all six concentrations.
    incomplete_compared: int = 0
    incomplete_exact: int = 0
    # china_sites files publish no primary pollutant: nothing to compare.
    primary_compared: int = 0
    primary_matched: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def exact_rate(self) -> float:
        return self.exact / self.compared if self.compared else float("nan")

    def add(self, cause: str, text: str) -> None:
        self.causes[cause] += 1
        examples = self.examples.setdefault(cause, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(text)


def validate_aqi_files(
    paths: Iterable[Path | str], *, so2_above_800: str = SO2_ABOVE_800_24H
) -> AQIReport:
    """Recompute every station-hour's AQI (:func:`ecohub.standards.aqi.hourly_aqi`, with
    the file's SO2_24h for the standard's SO2 > 800 rule) and compare it with the
    published ``AQI`` row. ``so2_above_800="cap"`` applies CNEMC's practice instead."""
    report = AQIReport(so2_above_800=so2_above_800)
    for path in paths:
        day = read_station_day(path)
        report.files += 1
        report.notes.extend(f"{day.path.name}: {note}" for note in day.notes)
        _compare_aqi(day, report)
    return report


def _compare_aqi(day: StationDay, report: AQIReport) -> None:
    v = day.values
    result = hourly_aqi(
        so2=v["SO2"],
        no2=v["NO2"],
        pm10=v["PM10"],
        pm25=v["PM2.5"],
        co=v["CO"],
        o3=v["O3"],
        so2_24h=v["SO2_24h"],
        so2_above_800=report.so2_above_800,
    )
    published = v["AQI"]
    computed = result.aqi
    has_published = ~np.isnan(published)
    missing = np.stack([np.isnan(v[name]) for name in HOURLY_TYPES])
    with np.errstate(invalid="ignore"):
        above_800 = v["SO2"] > 800
    report.so2_above_800_hours += int(np.count_nonzero(above_800))
    report.compared += int(np.count_nonzero(has_published))
    match = has_published & (computed == published)
    report.exact += int(np.count_nonzero(match))
    incomplete = has_published & missing.any(axis=0)
    report.incomplete_compared += int(np.count_nonzero(incomplete))
    report.incomplete_exact += int(np.count_nonzero(incomplete & match))
    withheld = ~has_published & ~missing.all(axis=0)
    report.withheld += int(np.count_nonzero(withheld))
    for station, hour in zip(*np.nonzero(withheld), strict=True):
        if len(report.withheld_examples) >= MAX_EXAMPLES:
            break
        report.withheld_examples.append(
            f"{station_label(day, station, hour)}: recomputed {computed[station, hour]:g} "
            f"({_concentrations(v, station, hour)})"
        )
    for station, hour in zip(*np.nonzero(has_published & ~match), strict=True):
        if above_800[station, hour]:
            cause = SO2_ABOVE_800
        elif missing[:, station, hour].all():
            cause = NOTHING_PUBLISHED
        elif missing[:, station, hour].any():
            cause = POLLUTANT_MISSING
        elif published[station, hour] > computed[station, hour]:
            cause = PUBLISHED_HIGHER
        else:
            cause = PUBLISHED_LOWER
        report.add(
            cause,
            f"{station_label(day, station, hour)}: published {published[station, hour]:g}, "
            f"recomputed {computed[station, hour]:g} ({_concentrations(v, station, hour)}, "
            f"SO2_24h={v['SO2_24h'][station, hour]:g})",
        )


def _concentrations(values: dict[str, FloatArray], station: int, hour: int) -> str:
    return ", ".join(f"{name}={values[name][station, hour]:g}" for name in HOURLY_TYPES)
