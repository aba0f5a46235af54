"""Loading the standards' tables shipped as CSV files in ``ecohub/standards/data``."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib.resources import files


@cache
def read_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``data/<name>.csv`` as dicts (comment lines starting with '#' skipped)."""
    text = (files("ecohub.standards") / "data" / f"{name}.csv").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(csv.DictReader(io.StringIO(body)))
