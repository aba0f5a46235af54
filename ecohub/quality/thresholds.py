"""Per-parameter quality-control thresholds: the shipped defaults
(``ecohub/quality/data/thresholds.csv``, explained in the README next to it) merged with
each parameter's valid range from the registry's parameter table, optionally overridden
by a deployment's own CSV.

A row may apply to one kind of monitoring point only (column ``point``: ``ambient`` for
air or water quality stations, ``source`` for pollution-source outlets); such a row
replaces the general row of its code for that kind. The same code often means both (SO2
``a21026`` is μg/m³-scale in ambient air and hundreds of mg/m³ in a flue), and a spike
or flat-line limit cannot fit both."""

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
    spike_floor: float | None = None  # None: the caller's default (a share of valid_max)
    flat_floor: float | None = None  # runs at or below it are not flat lines

    @property
    def spike_checked(self) -> bool:
        return self.spike_step is not None or self.spike_ratio is not None


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


POINT_KINDS = ("ambient", "source")


def _read_csv(
    text: str, base: dict[str, Thresholds], by_kind: dict[str, dict[str, Thresholds]]
) -> dict[str, Thresholds]:
    """Apply one CSV's rows: general rows to (a copy of) ``base``, rows for one kind of
    point to ``by_kind`` (in place), each starting from the code's general row."""
    table = dict(base)
    for row in csv.DictReader(text.splitlines()):
        code = row["code"].strip()
        kind = (row.get("point") or "").strip()
        if kind and kind not in POINT_KINDS:
            raise ValueError(f"thresholds: {code}: point must be one of {POINT_KINDS}: {kind}")
        current = table.get(code, Thresholds(code))
        updated = replace(
            current,
            role=row.get("role") or current.role,
            allow_negative=row.get("allow_negative", "0").strip() == "1",
            spike_step=_optional_float(row.get("spike_step")),
            spike_ratio=_optional_float(row.get("spike_ratio")),
            flat_hours=_optional_float(row.get("flat_hours")),
            flat_tolerance=_optional_float(row.get("flat_tolerance")) or 0.0,
            spike_floor=_optional_float(row.get("spike_floor")),
            flat_floor=_optional_float(row.get("flat_floor")),
        )
        if row.get("valid_min") not in (None, ""):
            updated = replace(updated, valid_min=float(row["valid_min"]))
        if row.get("valid_max") not in (None, ""):
            updated = replace(updated, valid_max=float(row["valid_max"]))
        if kind:
            by_kind.setdefault(kind, {})[code] = updated
        else:
            table[code] = updated
    return table


def _tables(override: str | None) -> tuple[dict[str, Thresholds], dict[str, dict[str, Thresholds]]]:
    """The general rows by code, and the rows for one kind of point by kind and code."""
    table: dict[str, Thresholds] = {}
    for row in load_parameter_rows():
        table[row["code"]] = Thresholds(
            row["code"],
            valid_min=row["valid_min"] if row["valid_min"] is not None else -math.inf,
            valid_max=row["valid_max"] if row["valid_max"] is not None else math.inf,
        )
    by_kind: dict[str, dict[str, Thresholds]] = {}
    shipped = (files("ecohub.quality") / "data" / "thresholds.csv").read_text("utf-8")
    table = _read_csv(shipped, table, by_kind)
    if override:
        table = _read_csv(Path(override).read_text("utf-8"), table, by_kind)
    return table, by_kind


@lru_cache(maxsize=4)
def _cached_tables(
    override: str | None,
) -> tuple[dict[str, Thresholds], dict[str, dict[str, Thresholds]]]:
    return _tables(override)


def threshold_table(override: str | None = None) -> dict[str, Thresholds]:
    """Thresholds of every parameter code (the general rows); ``override`` is the path
    of a deployment CSV."""
    return _cached_tables(override)[0]


def thresholds_for(
    parameter_code: str, override: str | None = None, point: str | None = None
) -> Thresholds:
    """Thresholds of a stored series' parameter code (which may carry an HJ 212 suffix,
    e.g. ``a21026-ZsAvg``; emitted-mass ``-Cou`` series get only the negative check).

    ``point`` is the kind of monitoring point (``ambient`` or ``source``); a row of the
    CSV for that kind wins over the code's general row."""
    base, _, suffix = parameter_code.partition("-")
    general, by_kind = _cached_tables(override)
    known = general.get(base, Thresholds(base))
    if point is not None:
        known = by_kind.get(point, {}).get(base, known)
    if suffix == "Cou":
        return Thresholds(parameter_code, role="mass", flat_hours=None)
    if suffix:
        return replace(known, code=parameter_code)
    return known
