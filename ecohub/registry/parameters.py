"""The HJ 212 parameter code table: loading it, and mapping legacy codes onto it."""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib.resources import files
from typing import Any


def load_parameter_rows() -> list[dict[str, Any]]:
    """Rows of ``hj212_parameters.csv`` as dicts ready for the ``parameters`` table."""
    text = (files("ecohub.registry") / "data" / "hj212_parameters.csv").read_text("utf-8")
    rows = []
    for row in csv.DictReader(text.splitlines()):
        rows.append(
            {
                "code": row["code"],
                "legacy_code": row["legacy_code"] or None,
                "medium": row["medium"],
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "unit": row["unit"],
                "valid_min": float(row["valid_min"]) if row["valid_min"] else None,
                "valid_max": float(row["valid_max"]) if row["valid_max"] else None,
            }
        )
    return rows


@lru_cache(maxsize=1)
def _code_index() -> tuple[frozenset[str], dict[str, str]]:
    rows = load_parameter_rows()
    current = frozenset(row["code"] for row in rows)
    legacy = {row["legacy_code"]: row["code"] for row in rows if row["legacy_code"]}
    return current, legacy


def canonical_parameter_code(code: str) -> str | None:
    """The HJ 212-2017 code for ``code``, which may be a 2017 code or a HJ/T 212-2005 one.

    Returns ``None`` for a code that is in neither table.
    """
    current, legacy = _code_index()
    if code in current:
        return code
    return legacy.get(code)


# Common names people type for the parameters they look up most (case and spaces ignored).
COMMON_NAMES = {
    "pm2.5": "a34004",
    "pm25": "a34004",
    "pm10": "a34002",
    "so2": "a21026",
    "no2": "a21004",
    "nox": "a21002",
    "no": "a21003",
    "o3": "a05024",
    "co": "a21005",
    "flow": "a00000",
    "o2": "a19001",
    "cod": "w01018",
    "codmn": "w01019",
    "nh3-n": "w21003",
    "nh3n": "w21003",
    "tp": "w21011",
    "tn": "w21001",
    "ph": "w01001",
    "do": "w01009",
}
# Ambient air reports these gases in μg/m³ (GB 3095-2012 Table 1), while the parameter
# table (and flue gas, GB 13223 and others) uses mg/m³; CO stays in mg/m³ in both.
AMBIENT_MICROGRAM_CODES = frozenset({"a21026", "a21004", "a21002", "a21003"})
MICROGRAM = "μg/m³"


def resolve_parameter(text: str) -> str | None:
    """The HJ 212-2017 code for a code (2017 or 2005), a common name (``PM2.5``, ``SO2``,
    ``NH3-N``…) or the table's English or Chinese name; a statistic suffix (``-Cou``)
    is kept. None when nothing matches."""
    text = text.strip()
    whole = COMMON_NAMES.get(text.lower().replace(" ", ""))
    if whole is not None:
        return whole
    base, dash, suffix = text.partition("-")
    code = canonical_parameter_code(base) or COMMON_NAMES.get(base.lower().replace(" ", ""))
    if code is None:
        wanted = text.lower()
        for row in load_parameter_rows():
            if wanted in (row["name_en"].lower(), row["name_zh"].lower()):
                return str(row["code"])
    return None if code is None else code + dash + suffix


def display_unit(code: str, ambient: bool) -> tuple[str, float]:
    """The unit a parameter is shown in, and the factor from the stored value: ambient
    air gases in μg/m³ (stored in mg/m³), everything else in the table's unit."""
    base = code.partition("-")[0]
    unit = _units().get(base, "")
    if ambient and base in AMBIENT_MICROGRAM_CODES:
        return MICROGRAM, 1000.0
    return unit, 1.0


@lru_cache(maxsize=1)
def _units() -> dict[str, str]:
    return {row["code"]: row["unit"] for row in load_parameter_rows()}
