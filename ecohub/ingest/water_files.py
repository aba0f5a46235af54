"""Published surface-water results, for validating the GB 3838 classes.

Two kinds of file:

- the national surface-water automatic stations' real-time release (CNEMC), its JSON API
  answer or its CSV form (``ecohub.ingest.cnemc_water``), recognised by content: each
  section's published class against :func:`~ecohub.standards.water.automatic_station_class`
  (pH, DO, CODMn, NH3-N, TP; lake and reservoir TP limits by the section's water body);
  rows without a class (-1) are left out and counted;
- a generic CSV with the columns ``site``, ``time``, ``class`` (the published class: I,
  II, III, IV, V or 劣V; Roman or Arabic numerals), an optional ``water_body`` (``lake``
  for lakes and reservoirs) and one column per parameter, named by EcoHub key (pH, DO,
  CODMn, COD, BOD5, NH3-N, TP, TN, …) or HJ 212 code, in mg/L. Empty cells are not
  measured. All routine parameters of the 2011 method count.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ecohub.ingest.cnemc_water import NO_CLASS, CnemcWaterFormatError, is_release, read_release
from ecohub.standards.water import (
    AUTOMATIC_STATION_PARAMETERS,
    CLASS_NAMES,
    assess,
    automatic_station_class,
    water_parameters,
)

_CLASS_ALIASES = {name: index for index, name in enumerate(CLASS_NAMES, start=1)}
_CLASS_ALIASES.update(
    {
        "1": 1,
        "2": 2,
        "3": 3,
        "4": 4,
        "5": 5,
        "6": 6,
        "劣5": 6,
        "劣Ⅴ": 6,
        "Ⅰ": 1,
        "Ⅱ": 2,
        "Ⅲ": 3,
        "Ⅳ": 4,
        "Ⅴ": 5,
        "V+": 6,
    }
)


@dataclass
class WaterValidation:
    compared: int = 0
    matched: int = 0
    mismatches: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    rejected_rows: list[str] = field(default_factory=list)
    unclassified: int = 0  # rows published without a class (CNEMC -1), left out
    unexplained: list[str] = field(default_factory=list)  # every mismatch, with its values
    water_bodies: Counter[str] = field(default_factory=Counter)  # compared rows by kind

    @property
    def match_rate(self) -> float:
        return self.matched / self.compared if self.compared else float("nan")


def validate_water_file(
    path: Path, report: WaterValidation | None = None, *, year: int | None = None
) -> WaterValidation:
    """Compare each published class in ``path`` with ours, into ``report``. ``year``: the
    year of a CNEMC release's ``MM-DD HH:MM`` times (see ``read_release``)."""
    result = report if report is not None else WaterValidation()
    data = path.read_bytes()
    if is_release(data):
        return validate_cnemc_release(path, result, year=year)
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    known = water_parameters()
    for row in reader:
        where = f"{path.name}:{reader.line_num}"
        published = _CLASS_ALIASES.get((row.get("class") or "").strip())
        if published is None:
            result.rejected_rows.append(f"{where}: class {row.get('class')!r} is not I-V or 劣V")
            continue
        values: dict[str, float] = {}
        for column, cell in row.items():
            if column in known and cell not in (None, ""):
                try:
                    values[column] = float(cell)
                except ValueError:
                    result.rejected_rows.append(f"{where}: {column}={cell!r} is not a number")
        if not values:
            result.rejected_rows.append(f"{where}: no parameter values")
            continue
        lake = (row.get("water_body") or "").strip().lower() in {
            "lake",
            "reservoir",
            "lake-reservoir",
            "湖库",
        }
        computed = assess(values, lake=lake).water_class
        result.compared += 1
        if computed == published:
            result.matched += 1
        else:
            key = f"published {CLASS_NAMES[published - 1]}, computed {CLASS_NAMES[computed - 1]}"
            result.mismatches[key] += 1
            if len(result.examples) < 10:
                result.examples.append(f"{where} {row.get('site')} {row.get('time')}: {key}")
            shown = ", ".join(f"{name}={value:g}" for name, value in values.items())
            result.unexplained.append(
                f"{where} {row.get('site')} {row.get('time')}: {key}; {shown}"
            )
        result.water_bodies["lake-reservoir" if lake else "river"] += 1
    return result


def validate_cnemc_release(
    path: Path,
    report: WaterValidation | None = None,
    *,
    year: int | None = None,
    water_bodies: Mapping[str, str] | None = None,
) -> WaterValidation:
    """Compare the class of each section of a CNEMC real-time release with
    :func:`~ecohub.standards.water.automatic_station_class` on its unrounded values.
    Sections without a class are counted in ``unclassified``; malformed rows are rejected
    (with their row and field); ``water_bodies`` maps section codes to a known kind."""
    result = report if report is not None else WaterValidation()
    try:
        records = read_release(
            path, year=year, water_bodies=water_bodies, rejected=result.rejected_rows
        )
    except CnemcWaterFormatError as error:
        result.rejected_rows.append(str(error))
        return result
    for record in records:
        if record.published_class == NO_CLASS:
            result.unclassified += 1
            continue
        values = record.values()
        found = automatic_station_class(values, lake=record.lake)
        computed = found.water_class if found is not None else None
        result.compared += 1
        result.water_bodies[f"{record.water_body} ({record.water_body_basis})"] += 1
        if computed == record.published_class:
            result.matched += 1
            continue
        key = (
            f"published {CLASS_NAMES[record.published_class - 1]}, computed "
            f"{CLASS_NAMES[computed - 1] if computed is not None else 'none'}"
        )
        result.mismatches[key] += 1
        where = f"{path.name} row {record.row} {record.province} {record.basin} {record.name}"
        if len(result.examples) < 10:
            result.examples.append(f"{where} {record.time:%Y-%m-%d %H:%M}: {key}")
        shown = ", ".join(
            f"{name}={values[name]:g}" if name in values else f"{name}=--"
            for name in (*AUTOMATIC_STATION_PARAMETERS, "TN")
        )
        result.unexplained.append(
            f"{where} {record.time:%Y-%m-%d %H:%M} ({record.water_body}, "
            f"{record.water_body_basis}): {key}; {shown}"
        )
    return result
