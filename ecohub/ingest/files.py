"""The file door: historical backfill from CSV or JSON-lines files of measurements (the
format of :mod:`ecohub.ingest.measurements`), in batches through the pipeline.

A file is checked whole before anything is written (:func:`check_file`): every line
UTF-8, and for CSV a header of known columns and rows the CSV reader can read; a file
that fails is refused (:class:`FileFormatError`) naming the file, the line and the
column. Bad rows are then quarantined with their line number, field and reason; the good
rows around them are stored. Rows go to the store in committed batches of
:data:`BATCH_ROWS`; should the store refuse one (busy after its retries),
:class:`ImportStopped` says through which line the file was stored, and importing the
file again finishes it (stored rows are left unchanged).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ecohub.db.engine import StoreBusy, retry_busy
from ecohub.db.quarantine import Rejected
from ecohub.ingest.measurements import (
    CSV_FIELDS,
    MeasurementError,
    Resolver,
    csv_row_item,
    parse_item,
    parse_json,
)
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation

BATCH_ROWS = 20_000
JSON_LINES = (".jsonl", ".ndjson", ".json")


class FileFormatError(ValueError):
    """A file that cannot be read as measurements at all (wrong header, not UTF-8, broken
    CSV): nothing of it was stored."""


@dataclass
class FileImportResult:
    rows: int = 0
    values: int = 0
    written: int = 0
    unchanged: int = 0
    rejected: int = 0
    flagged: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    stored_through: int = 0  # the file's lines up to this one are stored
    rejections: list[str] = field(default_factory=list)  # the first reasons, with lines


class ImportStopped(RuntimeError):
    """The store refused a batch; ``result`` says what was stored before it."""

    def __init__(self, message: str, result: FileImportResult) -> None:
        super().__init__(message)
        self.result = result


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, decoded strictly as UTF-8 (a BOM dropped);
    :class:`FileFormatError` names the line and column of a byte that is not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise FileFormatError(
                    f"{path.name} line {number}, column {error.start + 1}: not UTF-8 "
                    f"(byte 0x{raw[error.start]:02x}); save the file as UTF-8"
                ) from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a CSV file whose header is checked first."""
    reader = csv.DictReader(line for _number, line in _lines(path))
    try:
        fields = set(reader.fieldnames or ())
        if not fields or fields - set(CSV_FIELDS) or not {"parameter", "ts", "value"} <= fields:
            raise FileFormatError(
                f"{path.name} line 1: the header must use the columns {', '.join(CSV_FIELDS)} "
                f"(got {', '.join(reader.fieldnames or [])})"
            )
        for row in reader:
            yield reader.line_num, row
    except csv.Error as error:
        raise FileFormatError(f"{path.name} line {reader.line_num}: {error}") from None


def check_file(path: Path) -> int:
    """Read the whole file as :func:`import_measurement_file` will, writing nothing;
    returns its data rows. Raises :class:`FileFormatError` naming file, line and column
    when it cannot be read."""
    if path.suffix.lower() in JSON_LINES:
        return sum(1 for _number, line in _lines(path) if line.strip())
    return sum(1 for _ in _csv_rows(path))


def _items(path: Path) -> Iterator[tuple[int, Any, str]]:
    """(line number, item or parse error, raw text) of each data row."""
    if path.suffix.lower() in JSON_LINES:
        for number, line in _lines(path):
            if not line.strip():
                continue
            text = line.rstrip("\r\n")
            try:
                yield number, parse_json(text), text
            except MeasurementError as error:
                yield number, error, text
        return
    for number, row in _csv_rows(path):
        raw = ",".join("" if v is None else str(v) for v in row.values())
        yield number, csv_row_item(row), raw


def import_measurement_file(
    pipeline: Pipeline,
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    attempts: int = 3,
    pause: float = 1.0,
    check: bool = True,
) -> FileImportResult:
    """Import one CSV (``.csv``) or JSON-lines (``.jsonl``) file; ``progress`` is called
    with the number of rows read so far after each batch. The file is checked whole
    first (``check``); a batch the store refuses as busy is tried ``attempts`` times."""
    if check:
        check_file(path)
    resolver = Resolver(pipeline.engine)
    result = FileImportResult()
    rows: list[Observation] = []
    rejected: list[Rejected] = []
    line = 0

    def flush() -> None:
        try:
            done = retry_busy(
                lambda: pipeline.process(rows, rejected),
                attempts=attempts,
                pause=pause,
                what=f"{path.name} lines {result.stored_through + 1:,}-{line:,}",
            )
        except (StoreBusy, SQLAlchemyError) as error:
            stored = (
                f"lines 1-{result.stored_through:,} are stored"
                if result.stored_through
                else "nothing was stored"
            )
            raise ImportStopped(
                f"{error}; {stored}; import the file again to finish it (rows already "
                "stored are left unchanged)",
                result,
            ) from error
        result.written += done.written
        result.unchanged += done.unchanged
        result.flagged += done.flagged
        result.stored_through = line
        rows.clear()
        rejected.clear()

    for number, item, raw in _items(path):
        line = number
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
            reason = f"{path.name} line {number}: {error.reason}"
            if len(result.rejections) < 20:
                result.rejections.append(reason)
            rejected.append(
                Rejected(
                    source="file",
                    reason_code=error.reason_code,
                    reason=reason,
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
    return max(0, lines - (0 if path.suffix.lower() in JSON_LINES else 1))
