"""Published surface-water results in CSV, for validating the GB 3838 classes.

Expected columns: ``site``, ``time``, ``class`` (the published class: I, II, III, IV, V
or 劣V; Roman or Arabic numerals), an optional ``water_body`` (``lake`` for lakes and
reservoirs) and one column per parameter, named by EcoHub key (pH, DO, CODMn, COD, BOD5,
NH3-N, TP, TN, …) or HJ 212 code, in mg/L. Empty cells are not measured.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ecohub.standards.water import CLASS_NAMES, assess, water_parameters

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

    @property
    def match_rate(self) -> float:
        return self.matched / self.compared if self.compared else float("nan")


def validate_water_file(path: Path, report: WaterValidation | None = None) -> WaterValidation:
    result = report or WaterValidation()
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
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
        lake = (row.get("water_body") or "").strip().lower() in {"lake", "reservoir", "湖库"}
        computed = assess(values, lake=lake).water_class
        result.compared += 1
        if computed == published:
            result.matched += 1
        else:
            key = f"published {CLASS_NAMES[published - 1]}, computed {CLASS_NAMES[computed - 1]}"
            result.mismatches[key] += 1
            if len(result.examples) < 10:
                result.examples.append(f"{where} {row.get('site')} {row.get('time')}: {key}")
    return result
