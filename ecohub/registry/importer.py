"""Import registry records from CSV or JSON files.

A JSON file holds lists under ``regions``, ``sites``, ``enterprises``, ``outlets``,
``permits`` and ``points``; a CSV file holds one kind (named by ``--kind`` or by the
file name, e.g. ``sites.csv``). Permits in CSV take one row per limit. Records are
applied in dependency order, each in its own savepoint: a bad record is reported with
its location and reason and quarantined, and the good records around it still land.
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
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.registry import service
from ecohub.registry.schemas import EnterpriseIn, OutletIn, PermitIn, PointIn, RegionIn, SiteIn

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
    """Outcome of one import: counts per kind and every rejected record."""

    accepted: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)

    @property
    def accepted_total(self) -> int:
        return sum(self.accepted.values())


def _format_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


def _blank_to_none(row: dict[str, Any]) -> dict[str, Any]:
    return {key: (None if value == "" else value) for key, value in row.items() if key}


def records_from_json(text: str, source: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (kind, location, record) from a JSON registry document."""
    document = json.loads(text)
    if not isinstance(document, dict):
        raise ValueError(f"{source}: expected a JSON object with lists per kind")
    unknown = set(document) - set(KINDS)
    if unknown:
        raise ValueError(
            f"{source}: unknown kinds {sorted(unknown)}; expected some of {list(KINDS)}"
        )
    for kind in KINDS:
        for index, record in enumerate(document.get(kind, [])):
            yield kind, f"{source}:{kind}[{index}]", record


def records_from_csv(
    text: str, kind: str, source: str
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Yield (kind, location, record) from a CSV of one kind (line numbers in locations)."""
    reader = csv.DictReader(io.StringIO(text))
    if kind != "permits":
        for row in reader:
            yield kind, f"{source}:{reader.line_num}", _blank_to_none(row)
        return
    # Permits: one row per limit, grouped by permit number.
    grouped: dict[str, tuple[str, dict[str, Any]]] = {}
    for row in reader:
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


def read_records(path: Path, kind: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """All records of a registry file, in dependency order."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json":
        records = list(records_from_json(text, path.name))
    elif path.suffix.lower() == ".csv":
        kind = kind or path.stem.lower()
        if kind not in KINDS:
            raise ValueError(
                f"{path.name}: cannot tell what the CSV holds; pass --kind (one of {list(KINDS)})"
            )
        records = list(records_from_csv(text, kind, path.name))
    else:
        raise ValueError(f"{path.name}: expected a .json or .csv file")
    order = list(KINDS)
    return sorted(records, key=lambda item: order.index(item[0]))


def import_records(
    engine: Engine, records: Iterable[tuple[str, str, dict[str, Any]]], actor: str
) -> ImportReport:
    """Apply records, each in a savepoint; quarantine and report the bad ones."""
    report = ImportReport()
    rejects: list[Rejected] = []
    with Session(engine) as session, session.begin():
        for kind, location, record in records:
            schema, apply = KINDS[kind]
            try:
                parsed = schema.model_validate(record)
                with session.begin_nested():
                    apply(session, parsed, actor)
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
        quarantine_rows(session.connection(), rejects)
    return report


def import_file(engine: Engine, path: Path, actor: str, kind: str | None = None) -> ImportReport:
    """Import one registry file (CSV or JSON)."""
    return import_records(engine, read_records(path, kind), actor)
