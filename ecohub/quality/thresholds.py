"""Per-parameter quality-control thresholds: the shipped defaults
(``ecohub/quality/data/thresholds.csv``, explained in the README next to it) merged with
each parameter's valid range from the registry's parameter table, optionally overridden
by a deployment's own CSV."""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from ecohub.registry.parameters import load_parameter_rows

FLOW_CODES = frozenset({"a00000", "w00000"})
# Earliest plausible timestamp: data loggers whose clock was reset report 1970 or 2000.
EARLIEST_PLAUSIBLE = dt.datetime(2005, 1, 1, tzinfo=dt.UTC)
# How far ahead of the platform's clock a device clock may run before values are flagged.
FUTURE_TOLERANCE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Thresholds:
    """Quality-control settings of one parameter (units of the parameter table)."""

    code: str
    role: str = "concentration"  # concentration, flow or auxiliary
    valid_min: float = -math.inf
    valid_max: float = math.inf
    allow_negative: bool = False
    spike_step: float | None = None
    spike_ratio: float | None = None
    flat_hours: float | None = 6.0
    flat_tolerance: float = 0.0

    @property
    def spike_checked(self) -> bool:
        return self.spike_step is not None or self.spike_ratio is not None


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def _read_csv(text: str, base: dict[str, Thresholds]) -> dict[str, Thresholds]:
    table = dict(base)
    for row in csv.DictReader(text.splitlines()):
        code = row["code"].strip()
        current = table.get(code, Thresholds(code))
        table[code] = replace(
            current,
            role=row.get("role") or current.role,
            allow_negative=row.get("allow_negative", "0").strip() == "1",
            spike_step=_optional_float(row.get("spike_step")),
            spike_ratio=_optional_float(row.get("spike_ratio")),
            flat_hours=_optional_float(row.get("flat_hours")),
            flat_tolerance=_optional_float(row.get("flat_tolerance")) or 0.0,
        )
        if row.get("valid_min") not in (None, ""):
            table[code] = replace(table[code], valid_min=float(row["valid_min"]))
        if row.get("valid_max") not in (None, ""):
            table[code] = replace(table[code], valid_max=float(row["valid_max"]))
    return table


@lru_cache(maxsize=4)
def threshold_table(override: str | None = None) -> dict[str, Thresholds]:
    """Thresholds of every parameter code; ``override`` is the path of a deployment CSV."""
    table: dict[str, Thresholds] = {}
    for row in load_parameter_rows():
        table[row["code"]] = Thresholds(
            row["code"],
            valid_min=row["valid_min"] if row["valid_min"] is not None else -math.inf,
            valid_max=row["valid_max"] if row["valid_max"] is not None else math.inf,
        )
    shipped = (files("ecohub.quality") / "data" / "thresholds.csv").read_text("utf-8")
    table = _read_csv(shipped, table)
    if override:
        table = _read_csv(Path(override).read_text("utf-8"), table)
    return table


def thresholds_for(parameter_code: str, override: str | None = None) -> Thresholds:
    """Thresholds of a stored series' parameter code (which may carry an HJ 212 suffix,
    e.g. ``a21026-ZsAvg``; emitted-mass ``-Cou`` series get only the negative check)."""
    base, _, suffix = parameter_code.partition("-")
    known = threshold_table(override).get(base, Thresholds(base))
    if suffix == "Cou":
        return Thresholds(parameter_code, role="mass", flat_hours=None)
    if suffix:
        return replace(known, code=parameter_code)
    return known
