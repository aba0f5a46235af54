"""The file door: historical backfill from CSV or JSON-lines files of measurements (the
format of :mod:`ecohub.ingest.measurements`), in batches through the pipeline.

Bad rows are quarantined with their line number and the reason; the good rows around
them are stored. Re-importing a file changes nothing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecohub.db.quarantine import Rejected
from ecohub.ingest.measurements import (
    CSV_FIELDS,
    MeasurementError,
    Resolver,
    csv_row_item,
    parse_item,
)
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation

BATCH_ROWS = 20_000


class FileFormatError(ValueError):
    """A file that cannot be read as measurements at all (wrong header, not text)."""


@dataclass
class FileImportResult:
    rows: int = 0
    values: int = 0
    written: int = 0
    unchanged: int = 0
    rejected: int = 0
    flagged: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def _items(path: Path) -> Iterator[tuple[int, Any, str]]:
    """(line number, item or parse error, raw text) of each data row."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line), line.rstrip("\n")
                except json.JSONDecodeError as error:
                    yield number, MeasurementError("bad_json", f"not JSON: {error}"), line
            return
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        if not fields or fields - set(CSV_FIELDS) or not {"parameter", "ts", "value"} <= fields:
            raise FileFormatError(
                f"{path.name}: the header must use the columns {', '.join(CSV_FIELDS)} "
                f"(got {', '.join(reader.fieldnames or [])})"
            )
        for row in reader:
            raw = ",".join("" if v is None else str(v) for v in row.values())
            yield reader.line_num, csv_row_item(row), raw


def import_measurement_file(
    pipeline: Pipeline,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> FileImportResult:
    """Import one CSV (``.csv``) or JSON-lines (``.jsonl``) file; ``progress`` is called
    with the number of rows read so far after each batch."""
    resolver = Resolver(pipeline.engine)
    result = FileImportResult()
    rows: list[Observation] = []
    rejected: list[Rejected] = []

    def flush() -> None:
        done = pipeline.process(rows, rejected)
        result.written += done.written
        result.unchanged += done.unchanged
        result.flagged += done.flagged
        rows.clear()
        rejected.clear()

    for number, item, raw in _items(path):
        result.rows += 1
        try:
            if isinstance(item, MeasurementError):
                raise item
            for measurement in parse_item(item):
                rows.append(resolver.observation(measurement, "file")[0])
                result.values += 1
        except MeasurementError as error:
            result.rejected += 1
            result.reasons[error.reason_code] = result.reasons.get(error.reason_code, 0) + 1
            rejected.append(
                Rejected(
                    source="file",
                    reason_code=error.reason_code,
                    reason=f"{path.name} line {number}: {error.reason}",
                    raw=raw,
                    peer=path.name[:100],
                )
            )
        if len(rows) >= BATCH_ROWS:
            flush()
            if progress is not None:
                progress(result.rows)
    flush()
    if progress is not None:
        progress(result.rows)
    return result


def count_rows(path: Path) -> int:
    """Data rows in a file (for a progress bar's total)."""
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return max(0, lines - (0 if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else 1))
