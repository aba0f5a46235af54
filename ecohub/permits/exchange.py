"""The exchange with the tax authority (环境保护税涉税信息共享): the records of the eight
kinds of :mod:`ecohub.permits.exchange_schema` kept in ``exchange_records`` (one row per
kind and key), exported as JSON lines or CSV files with a manifest of checksums,
imported idempotently (a record with the same key and content is unchanged, with new
content updated, a bad line named and skipped, or the whole file refused when the import
is strict), review requests answered with review
opinions, and the reconciliation of an enterprise's declared tax against the tax
computed from its monitoring data.

What the platform writes itself: the permit versions (registry), the penalty decisions
(supervision cases that reached 处罚决定), the review opinions (answered here). The
supervisory monitoring results come in from the monitoring station's records through
the import (the platform has no laboratory module) and go out again in the export.

Files: ``<kind>.jsonl``, a line ``{"format": FORMAT_VERSION, "kind": …, "record": {…}}``
each; or ``<kind>.csv`` with :func:`exchange_schema.csv_header` as its header (UTF-8);
``schema.json``, the JSON Schema (draft 2020-12) of the format
(:func:`exchange_docs.schema_document`, also served at ``GET
/api/v1/permits/exchange/schema``); and ``manifest.json``: format, period, the schema file
and the files with their record counts and SHA-256. An export holds the records of its
period only (:func:`exchange_schema.in_period`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from ecohub.clock import iso_z, local_zone, utcnow
from ecohub.permits import exchange_docs
from ecohub.permits import exchange_schema as schema
from ecohub.permits.tables import exchange_records, permit_applications
from ecohub.registry.models import Enterprise, Permit, Region
from ecohub.registry.service import audit_row
from ecohub.supervision.tables import case_steps, cases
from ecohub.textio import csv_cell

MAX_ERRORS_LISTED = 100
SCHEMA_FILE = "schema.json"
CLASS_NAMES = {"key": "重点管理", "simplified": "简化管理"}


class ExchangeError(ValueError):
    """A file or request the exchange refuses (the message names the file and line)."""


@dataclass
class ImportReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)

    def refuse(self, message: str) -> None:
        self.refused += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(message)


def canonical(kind: str, record: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The record as JSON values, its key text and the SHA-256 of its canonical form."""
    payload = schema.to_json(kind, record)
    key = "|".join(str(part) for part in schema.key_of(kind, record))
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return payload, key, hashlib.sha256(text.encode("utf-8")).hexdigest()


def store(
    connection: Connection, kind: str, record: dict[str, Any], *, source: str, report: ImportReport
) -> None:
    """Keep one validated record: new, updated (other content) or unchanged."""
    direction = "out" if schema.record_kind(kind).direction == schema.Direction.ENV_TO_TAX else "in"
    payload, key, sha = canonical(kind, record)
    found = connection.execute(
        select(exchange_records.c.id, exchange_records.c.sha256).where(
            exchange_records.c.kind == kind, exchange_records.c.record_key == key
        )
    ).first()
    values = {
        "payload": payload,
        "sha256": sha,
        "direction": direction,
        "format_version": schema.FORMAT_VERSION,
        "source": source[:200],
        "updated_at": utcnow(),
    }
    if found is None:
        connection.execute(
            insert(exchange_records).values(kind=kind, record_key=key[:300], **values)
        )
        report.new += 1
    elif found.sha256 != sha:
        connection.execute(
            update(exchange_records).where(exchange_records.c.id == found.id).values(**values)
        )
        report.updated += 1
    else:
        report.unchanged += 1


# --- what the platform writes itself ----------------------------------------------------------


def _permit_records(
    connection: Connection, first: dt.date, last: dt.date
) -> Iterator[dict[str, Any]]:
    """Every permit version in force some day of the period (with a management class)."""
    rows = connection.execute(
        select(Permit, Enterprise.uscc, Enterprise.name, Region.name.label("region"))
        .join(Enterprise, Enterprise.id == Permit.enterprise_id)
        .outerjoin(Region, Region.code == Enterprise.region_code)
        .where(Permit.valid_from <= last, Permit.valid_to >= first)
        .order_by(Permit.permit_no, Permit.version)
    ).all()
    issued = connection.execute(
        select(
            permit_applications.c.permit_id,
            permit_applications.c.kind,
            permit_applications.c.decided_at,
        ).where(permit_applications.c.permit_id.is_not(None))
    ).all()
    kinds: dict[int, str] = {row.permit_id: row.kind for row in issued}
    decided: dict[int, dt.datetime | None] = {row.permit_id: row.decided_at for row in issued}
    for row in rows:
        if row.management_class not in CLASS_NAMES:
            continue  # a permit typed into the registry without its class: not exportable
        status = {"change": "变更", "renewal": "延续"}.get(kinds.get(row.id, ""), "有效")
        issued_at = decided.get(row.id)  # the decision's day is a Beijing calendar day
        issued_on = issued_at.astimezone(local_zone()).date() if issued_at else row.valid_from
        yield {
            "permit_no": row.permit_no,
            "version": row.version,
            "uscc": row.uscc,
            "unit_name": row.name,
            "management_class": CLASS_NAMES[row.management_class],
            "issuer": f"{row.region or ''}生态环境局",
            "issued_on": issued_on.isoformat(),
            "valid_from": row.valid_from.isoformat(),
            "valid_to": row.valid_to.isoformat(),
            "status": "撤销" if row.status == "revoked" else status,
        }


def _penalty_records(
    connection: Connection, first: dt.date, last: dt.date
) -> Iterator[dict[str, Any]]:
    """Penalty decisions (cases with a 处罚决定 step in the period)."""
    rows = connection.execute(
        select(cases, Enterprise.uscc, Enterprise.name, case_steps.c.on_date)
        .join(Enterprise, Enterprise.id == cases.c.enterprise_id)
        .join(case_steps, case_steps.c.case_id == cases.c.id)
        .where(case_steps.c.step == "decided", case_steps.c.on_date.between(first, last))
        .order_by(cases.c.id)
    ).all()
    for row in rows:
        yield {
            "decision_no": f"EH-{row.on_date.year}-{row.id:06d}",  # EcoHub's case reference
            "uscc": row.uscc,
            "unit_name": row.name,
            "decided_on": row.on_date.isoformat(),
            "violation": row.violation,
            "legal_basis": row.legal_basis or "—",
            "fine": None if row.penalty_yuan is None else str(row.penalty_yuan),
        }


def _validated(kind: str, records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for record in records:
        yield schema.validate(kind, {k: v for k, v in record.items() if v is not None})


def refresh(engine: Engine, first: dt.date, last: dt.date, actor: str) -> ImportReport:
    """Write the period's permit and penalty records into the exchange store."""
    report = ImportReport()
    with engine.begin() as connection:
        for kind, made in (
            (schema.Kind.PERMIT.value, _permit_records(connection, first, last)),
            (schema.Kind.PENALTY.value, _penalty_records(connection, first, last)),
        ):
            for record in _validated(kind, made):
                store(connection, kind, record, source=f"ecohub {first}..{last}", report=report)
        audit_row(
            connection, actor, "refresh", "exchange_records", f"{first}..{last}", None, vars(report)
        )
    return report


def export(
    engine: Engine,
    folder: Path,
    *,
    first: dt.date,
    last: dt.date,
    kinds: list[str] | None = None,
    fmt: str = "jsonl",
    actor: str,
) -> dict[str, Any]:
    """Refresh the platform's records of the period, then write the stored records of
    ``kinds`` (default: the four the environment side sends) that belong to the period
    (:func:`exchange_schema.in_period`), with ``schema.json`` (the JSON Schema of the
    format) and ``manifest.json``."""
    if fmt not in {"jsonl", "csv"}:
        raise ExchangeError(f"format: {fmt!r} is neither jsonl nor csv")
    wanted = kinds or [
        k.value for k, v in schema.KINDS.items() if v.direction == schema.Direction.ENV_TO_TAX
    ]
    for kind in wanted:
        schema.record_kind(kind)  # a clear error for an unknown kind
    refresh(engine, first, last, actor)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    with engine.connect() as connection:
        for kind in wanted:
            payloads = [
                row.payload
                for row in connection.execute(
                    select(exchange_records.c.payload)
                    .where(exchange_records.c.kind == kind)
                    .order_by(exchange_records.c.record_key)
                )
                if schema.in_period(kind, row.payload, first, last)
            ]
            path = folder / f"{kind}.{fmt}"
            data = _encode(kind, payloads, fmt)
            path.write_bytes(data)
            files.append(
                {
                    "file": path.name,
                    "kind": kind,
                    "records": len(payloads),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
    described = schema_bytes()
    (folder / SCHEMA_FILE).write_bytes(described)
    manifest = {
        "format": schema.FORMAT_VERSION,
        "period": {"first": first.isoformat(), "last": last.isoformat()},
        "created_at": iso_z(utcnow()),
        "schema": {"file": SCHEMA_FILE, "sha256": hashlib.sha256(described).hexdigest()},
        "files": files,
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8"
    )
    return manifest


def schema_bytes() -> bytes:
    """:func:`exchange_docs.schema_document` as the file written beside each manifest."""
    text = json.dumps(exchange_docs.schema_document(), ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


def _encode(kind: str, payloads: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "jsonl":
        lines = (
            json.dumps(
                {"format": schema.FORMAT_VERSION, "kind": kind, "record": payload},
                ensure_ascii=False,
                sort_keys=True,
            )
            for payload in payloads
        )
        return "".join(line + "\n" for line in lines).encode("utf-8")
    buffer = io.StringIO()
    header = schema.csv_header(kind)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for payload in payloads:
        writer.writerow(
            [csv_cell("" if payload.get(name) is None else payload[name]) for name in header]
        )
    return buffer.getvalue().encode("utf-8")


# --- import -------------------------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ExchangeError(
            f"{source}: not UTF-8 at byte {error.start} (a GB18030 file converts with "
            "`iconv -f GB18030 -t UTF-8`)"
        ) from None


def _jsonl_lines(
    text: str, source: str, report: ImportReport
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            report.refuse(f"{source}:{number}: not JSON ({error.msg})")
            continue
        if not isinstance(item, dict) or item.get("format") != schema.FORMAT_VERSION:
            report.refuse(f"{source}:{number}: format must be {schema.FORMAT_VERSION!r}")
            continue
        if not isinstance(item.get("record"), dict):
            report.refuse(f"{source}:{number}: no record object")
            continue
        yield number, str(item.get("kind")), item["record"]


def _csv_lines(text: str, kind: str, source: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = schema.csv_header(kind)
    try:
        unknown = [name for name in reader.fieldnames or [] if name not in header]
        if unknown:
            raise ExchangeError(
                f"{source}: columns {', '.join(unknown)} are not in the {kind} layout"
            )
        for row in reader:
            # A cell written safe for spreadsheets (a leading ') is read back as typed.
            cleaned = {
                k: (v[1:] if v[:1] == "'" and v[1:2] and v[1:2] in "=+-@" else v)
                for k, v in row.items()
                if v not in (None, "") and k is not None
            }
            if row.get(None):
                cleaned["(cells beyond the header)"] = row[None]
            yield reader.line_num, kind, cleaned
    except csv.Error as error:  # the file is not CSV from here on
        raise ExchangeError(f"{source}:{reader.line_num}: {error}") from None


def import_file(
    engine: Engine,
    path: Path,
    *,
    kind: str | None = None,
    actor: str,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import one ``.jsonl`` or ``.csv`` file (a CSV's kind: ``kind`` or its name). A bad
    line is named (file:line: field) and skipped; with ``strict`` it refuses the whole file
    (ExchangeError naming every bad line listed, nothing of the file written)."""
    source = path.name
    text = _decode(path.read_bytes(), source)
    report = ImportReport()
    if path.suffix == ".jsonl":
        lines = _jsonl_lines(text, source, report)
    elif path.suffix == ".csv":
        kind = kind or path.stem
        try:
            schema.record_kind(kind)
        except ValueError as error:
            raise ExchangeError(f"{source}: {error}") from None
        lines = _csv_lines(text, kind, source)
    else:
        raise ExchangeError(f"{source}: a .jsonl or .csv file is expected")
    with engine.begin() as connection:
        for count, (number, line_kind, raw) in enumerate(lines, start=1):
            try:
                record = schema.validate(line_kind, raw)
            except ValueError as error:
                report.refuse(f"{source}:{number}: {error}")
                continue
            store(connection, line_kind, record, source=source, report=report)
            if progress is not None and count % 500 == 0:
                progress(500)
        if strict and report.refused:
            raise ExchangeError(
                f"{source}: {report.refused} bad line(s), nothing imported: "
                + "; ".join(report.errors)
            )
        audit_row(
            connection,
            actor,
            "import",
            "exchange_records",
            source,
            None,
            {k: v for k, v in vars(report).items() if k != "errors"},
        )
    return report


def records(engine: Engine, kind: str, limit: int = 1000) -> list[dict[str, Any]]:
    schema.record_kind(kind)
    with engine.connect() as connection:
        rows = connection.execute(
            select(exchange_records.c.payload)
            .where(exchange_records.c.kind == kind)
            .order_by(exchange_records.c.record_key)
            .limit(limit)
        )
        return [row.payload for row in rows]
