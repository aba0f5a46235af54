"""Import registry records from CSV or JSON files.

A JSON file holds lists under ``regions``, ``sites``, ``enterprises``, ``outlets``,
``permits`` and ``points``; a CSV file holds one kind (named by ``--kind`` or by the
file name, e.g. ``sites.csv``). Permits in CSV take one row per limit.

The whole file is read and checked first (UTF-8, JSON or CSV structure, known columns):
a file that cannot be read is refused with its name, line and what is wrong, before
anything is written (:class:`RegistryFileError`). Its records are then applied in
dependency order in one transaction (SQLite's write lock taken at its start), each
record in a savepoint inside it: a bad record is reported with its location and reason
and quarantined, and the good records around it still land. A file of more than
``chunk_records`` records is applied in chunks of that many, each its own transaction;
should the store refuse one (busy after every retry), :class:`ImportInterrupted` says
exactly which chunks were stored, and running the same import again finishes it (the
upserts leave stored records unchanged).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ecohub.db.counters import bump_counter
from ecohub.db.engine import StoreBusy, retry_busy, write_transaction
from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.registry import service
from ecohub.registry.schemas import (
    EnterpriseIn,
    OutletIn,
    PermitIn,
    PermitLimitIn,
    PointIn,
    RegionIn,
    SiteIn,
)

Record = tuple[str, str, dict[str, Any]]  # (kind, location, fields)

# Dependency order: a record may only name records of kinds before it.
KINDS: dict[str, tuple[type[BaseModel], Callable[[Session, Any, str], object]]] = {
    "regions": (RegionIn, service.upsert_region),
    "sites": (SiteIn, service.upsert_site),
    "enterprises": (EnterpriseIn, service.upsert_enterprise),
    "outlets": (OutletIn, service.upsert_outlet),
    "permits": (PermitIn, service.upsert_permit),
    "points": (PointIn, service.upsert_point),
}

_PERMIT_FIELDS = ("permit_no", "enterprise_uscc", "valid_from", "valid_to")


@dataclass
class ImportReport:
    """Outcome of one import: counts per kind, every rejected record, and the chunks
    committed (first and last location of each)."""

    accepted: dict[str, int] = field(default_factory=dict)  # valid, new or changed or not
    unchanged: dict[str, int] = field(default_factory=dict)  # of those, identical already
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)
    chunks: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0  # records committed (accepted or rejected)

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())

    def add(self, other: ImportReport) -> None:
        for kind, count in other.accepted.items():
            self.accepted[kind] = self.accepted.get(kind, 0) + count
        for kind, count in other.unchanged.items():
            self.unchanged[kind] = self.unchanged.get(kind, 0) + count
        self.rejected += other.rejected
        self.chunks += other.chunks
        self.records += other.records


class RegistryFileError(ValueError):
    """A registry file that cannot be read at all (its name, line and what is wrong);
    nothing of it was written."""


class ImportInterrupted(RuntimeError):
    """The store refused a chunk of the import; ``report`` holds what was committed
    before it (nothing of the refused chunk or after it)."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


def _format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _blank_to_none(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (None if value == "" else value) for key, value in row.items() if key}


def records_from_json(text: str, source: str) -> Iterator[Record]:
    """Yield (kind, location, record) from a JSON registry document."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RegistryFileError(
            f"{source} line {error.lineno}, column {error.colno}: not JSON ({error.msg})"
        ) from None
    except RecursionError:
        raise RegistryFileError(f"{source}: JSON nested too deeply to be a registry") from None
    if not isinstance(document, dict):
        raise RegistryFileError(f"{source}: expected a JSON object with lists per kind")
    unknown = set(document) - set(KINDS)
    if unknown:
        raise RegistryFileError(
            f"{source}: unknown kinds {sorted(unknown)}; expected some of {list(KINDS)}"
        )
    for kind in KINDS:
        entries = document.get(kind, [])
        if not isinstance(entries, list):
            raise RegistryFileError(f"{source}: {kind} must be a list of records")
        for index, record in enumerate(entries):
            if not isinstance(record, dict):
                raise RegistryFileError(f"{source}:{kind}[{index}]: a record must be an object")
            yield kind, f"{source}:{kind}[{index}]", record


def records_from_csv(text: str, kind: str, source: str) -> Iterator[Record]:
    """Yield (kind, location, record) from a CSV of one kind (line numbers in locations)."""
    reader = csv.DictReader(io.StringIO(text))
    _check_header(reader.fieldnames, kind, source)
    if kind != "permits":
        for row in _rows(reader, source):
            yield kind, f"{source}:{reader.line_num}", _blank_to_none(row)
        return
    # Permits: one row per limit, grouped by permit number.
    grouped: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in _rows(reader, source):
        values = _blank_to_none(row)
        permit_no = values.get("permit_no") or f"<line {reader.line_num}>"
        location, permit = grouped.setdefault(
            permit_no,
            (
                f"{source}:{reader.line_num}",
                {**{k: values.get(k) for k in _PERMIT_FIELDS}, "limits": []},
            ),
        )
        limit = {k: v for k, v in values.items() if k not in _PERMIT_FIELDS}
        if any(v is not None for v in limit.values()):
            permit["limits"].append(limit)
    for location, permit in grouped.values():
        yield "permits", location, permit


def _check_header(fields: Iterable[str] | None, kind: str, source: str) -> None:
    """The header names the kind's fields only (permits: the permit's and a limit's)."""
    if not fields:
        raise RegistryFileError(f"{source} line 1: no header row")
    schema = KINDS[kind][0]
    known = set(schema.model_fields)
    if kind == "permits":
        known = set(_PERMIT_FIELDS) | set(PermitLimitIn.model_fields)
    unknown = [name for name in fields if name not in known]
    if unknown:
        raise RegistryFileError(
            f"{source} line 1: unknown column(s) {', '.join(map(repr, unknown))} for {kind}; "
            f"known: {', '.join(sorted(known))}"
        )


def _rows(reader: csv.DictReader[str], source: str) -> Iterator[dict[str, Any]]:
    """The reader's rows; a row with more cells than the header is a broken file."""
    try:
        for row in reader:
            if None in row:
                header = len(reader.fieldnames or [])
                cells = header + len(row[None])
                raise RegistryFileError(
                    f"{source} line {reader.line_num}: {cells} cells, the header has {header}"
                )
            yield row
    except csv.Error as error:
        raise RegistryFileError(f"{source} line {reader.line_num}: {error}") from None


def decode_text(data: bytes, source: str) -> str:
    """A file's bytes as UTF-8 text (with or without a byte-order mark); anything else is
    refused naming the line and column of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        start = error.start
        line = data.count(b"\n", 0, start) + 1
        column = start - (data.rfind(b"\n", 0, start) + 1) + 1
        raise RegistryFileError(
            f"{source} line {line}, column {column}: not UTF-8 (byte 0x{data[start]:02x}); "
            "save the file as UTF-8"
        ) from None


def read_records(path: Path, kind: str | None = None) -> list[Record]:
    """All records of a registry file, in dependency order; :class:`RegistryFileError`
    if the file cannot be read as a whole."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RegistryFileError(f"{path.name}: cannot be read ({error.strerror})") from None
    text = decode_text(data, path.name)
    if path.suffix.lower() == ".json":
        records = list(records_from_json(text, path.name))
    elif path.suffix.lower() == ".csv":
        kind = kind or path.stem.lower()
        if kind not in KINDS:
            raise RegistryFileError(
                f"{path.name}: cannot tell what the CSV holds; pass --kind (one of {list(KINDS)})"
            )
        records = list(records_from_csv(text, kind, path.name))
    else:
        raise RegistryFileError(f"{path.name}: expected a .json or .csv file")
    order = list(KINDS)
    return sorted(records, key=lambda item: order.index(item[0]))


def import_records(
    engine: Engine,
    records: Iterable[Record],
    actor: str,
    *,
    chunk_records: int | None = None,
    attempts: int = 3,
    lock_timeout: float | None = None,
    pause: float = 1.0,
    on_chunk: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Apply records in one transaction, or in committed chunks of ``chunk_records``;
    quarantine and report the bad ones. A chunk refused because the store is busy is
    tried ``attempts`` times (each waiting ``lock_timeout`` for the lock, then pausing
    ``pause`` seconds, doubling); then :class:`ImportInterrupted` carries the report of
    the chunks committed. ``on_chunk`` is called with the report after each commit."""
    records = list(records)
    report = ImportReport()
    size = chunk_records or max(1, len(records))
    for start in range(0, len(records), size):
        chunk = records[start : start + size]
        first, last = chunk[0][1], chunk[-1][1]
        try:
            part = retry_busy(
                lambda chunk=chunk: _apply(engine, chunk, actor, lock_timeout),  # type: ignore[misc]
                attempts=attempts,
                pause=pause,
                what=f"records {start + 1:,}-{start + len(chunk):,} ({first} to {last})",
            )
        except (StoreBusy, SQLAlchemyError) as error:
            stored = (
                f"records 1-{report.records:,} were stored ({report.chunks[0][0]} to "
                f"{report.chunks[-1][1]}, {len(report.chunks)} chunk(s) of {size:,})"
                if report.chunks
                else "nothing was stored"
            )
            raise ImportInterrupted(
                f"{error}; {stored}; run the same import again to finish it (records "
                "already stored are left unchanged)",
                report,
            ) from error
        part.chunks.append((first, last))
        report.add(part)
        if on_chunk is not None:
            on_chunk(report)
    return report


def _apply(
    engine: Engine, records: list[Record], actor: str, lock_timeout: float | None
) -> ImportReport:
    """One chunk in one transaction, each record in a savepoint within it."""
    with write_transaction(engine, lock_timeout) as connection:
        return _apply_in(connection, records, actor)


def _apply_in(connection: Connection, records: list[Record], actor: str) -> ImportReport:
    report = ImportReport(records=len(records))
    rejects: list[Rejected] = []
    with Session(bind=connection) as session:
        # The registry's version is bumped once for the whole transaction, below, not
        # for every record (1.5 ms each: a third of a station list's import).
        session.info["bump_once"] = True
        for kind, location, record in records:
            schema, apply = KINDS[kind]
            try:
                parsed = schema.model_validate(record)
                audited = session.info.get("audited", 0)
                with session.begin_nested():
                    apply(session, parsed, actor)
                if session.info.get("audited", 0) == audited:
                    report.unchanged[kind] = report.unchanged.get(kind, 0) + 1
            except ValidationError as error:
                reason = _format_validation_error(error)
            except (service.RegistryError, IntegrityError) as error:
                reason = str(error.orig) if isinstance(error, IntegrityError) else str(error)
            else:
                report.accepted[kind] = report.accepted.get(kind, 0) + 1
                continue
            report.rejected.append((location, reason))
            rejects.append(
                Rejected(
                    source="registry",
                    reason_code=f"bad_{kind.removesuffix('s')}",
                    reason=f"{location}: {reason}",
                    raw=json.dumps(record, ensure_ascii=False, default=str),
                )
            )
        session.flush()
        if session.info.get("audited", 0):
            bump_counter(connection, service.REGISTRY_COUNTER)
    quarantine_rows(connection, rejects)
    return report


def import_file(
    engine: Engine, path: Path, actor: str, kind: str | None = None, **options: Any
) -> ImportReport:
    """Import one registry file (CSV or JSON); ``options`` as :func:`import_records`."""
    return import_records(engine, read_records(path, kind), actor, **options)
