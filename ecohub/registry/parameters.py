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
