"""Inspections in the field (移动执法): a record made on a phone or tablet — the
enterprise, the team, when and where (GPS and its accuracy), each check item with its
result, the findings — and its attachments (photos, documents, signatures as images),
each stored once under its SHA-256 in a content-addressed folder.

Made for a flaky connection: the device gives every record its own ``client_id``, so a
record submitted again (the answer was lost) finds the record already stored and answers
it instead of making a second one; the same ``client_id`` with different contents is
refused. An attachment submitted again is the same attachment (same hash). Attachments
are checked by their bytes, not by the name or type the sender claims: JPEG and PNG for
photos and signatures, those and PDF for documents, at most :data:`MAX_ATTACHMENT_BYTES`
each and :data:`MAX_ATTACHMENTS` a record. Every record and attachment is audited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction
from ecohub.supervision.service import SupervisionError, audit, enterprise_id, enterprises
from ecohub.supervision.tables import draws, inspection_attachments, inspections, inspectors
from ecohub.web.uploads import check_upload, store_bytes

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 30
RESULTS = ("ok", "problem", "na")  # 符合, 存在问题, 不适用
ALLOWED = {
    "photo": ("image/jpeg", "image/png"),
    "signature": ("image/png", "image/jpeg"),
    "document": ("application/pdf", "image/jpeg", "image/png"),
}


@dataclass(frozen=True)
class Check:
    item: str
    result: str  # ok, problem, na
    note: str = ""


@dataclass(frozen=True)
class InspectionRecord:
    """One inspection as the device submits it."""

    client_id: str
    uscc: str
    inspectors: tuple[str, ...]
    inspected_at: dt.datetime
    checks: tuple[Check, ...]
    findings: str
    longitude: float | None = None
    latitude: float | None = None
    accuracy_m: float | None = None
    draw_id: int | None = None

    def digest(self) -> str:
        """SHA-256 of the record's canonical JSON (what tells a resubmission apart from a
        different record under the same ``client_id``)."""
        document = asdict(self)
        document["inspected_at"] = self.inspected_at.astimezone(dt.UTC).isoformat()
        document["inspectors"] = sorted(self.inspectors)
        text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check(record: InspectionRecord, now: dt.datetime) -> None:
    if not record.inspectors:
        raise SupervisionError("an inspection needs its inspectors (at least one)")
    if not record.checks:
        raise SupervisionError("an inspection needs its check items")
    for number, check in enumerate(record.checks, start=1):
        if check.result not in RESULTS:
            raise SupervisionError(
                f"check {number} ({check.item}): result {check.result!r}, expected "
                + ", ".join(RESULTS)
            )
    if record.inspected_at.tzinfo is None:
        raise SupervisionError("inspected_at needs its offset (e.g. +08:00)")
    if record.inspected_at > now + dt.timedelta(minutes=10):
        raise SupervisionError(f"inspected_at {record.inspected_at.isoformat()} is in the future")
    if record.inspected_at.year < 2000:  # and 0001-01-01+00:01 has no UTC instant at all
        raise SupervisionError(f"inspected_at {record.inspected_at.isoformat()} is too long ago")
    if (record.latitude is None) != (record.longitude is None):
        raise SupervisionError("a position needs both latitude and longitude")


def submit(engine: Engine, record: InspectionRecord, actor: str) -> tuple[dict[str, Any], bool]:
    """Store ``record``; returns the stored record and whether it is new (False: the
    same record was already submitted under its ``client_id``). Two submissions of one
    record at the same moment store it once: the loser of the race finds the winner's."""
    _check(record, utcnow())
    digest = record.digest()
    try:
        return _submit(engine, record, digest, actor)
    except IntegrityError:  # the same client_id inserted concurrently: answer the stored one
        found = _by_client_id(engine, record.client_id)
        if found is None:
            raise
        return _must(get_inspection(engine, _same(record, found, digest))), False


def _by_client_id(engine: Engine, client_id: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(inspections.c.id, inspections.c.digest).where(
                inspections.c.client_id == client_id
            )
        ).first()


def _same(record: InspectionRecord, found: Any, digest: str) -> int:
    """The stored record's id when it is ``record`` (same digest); refused otherwise."""
    if found.digest != digest:
        raise SupervisionError(
            f"client_id {record.client_id} already names a different inspection "
            f"(#{found.id}); give a new record a new client_id"
        )
    return int(found.id)


def _submit(
    engine: Engine, record: InspectionRecord, digest: str, actor: str
) -> tuple[dict[str, Any], bool]:
    with write_transaction(engine) as connection:
        found = connection.execute(
            select(inspections.c.id, inspections.c.digest).where(
                inspections.c.client_id == record.client_id
            )
        ).first()
        if found is not None:
            existing = _same(record, found, digest)
        else:
            existing = None
            ident = enterprise_id(connection, record.uscc)
            known = set(
                connection.execute(
                    select(inspectors.c.code).where(
                        inspectors.c.code.in_(record.inspectors), inspectors.c.active.is_(True)
                    )
                ).scalars()
            )
            unknown = sorted(set(record.inspectors) - known)
            if unknown:
                raise SupervisionError(f"not active inspectors: {', '.join(unknown)}")
            if (
                record.draw_id is not None
                and connection.execute(
                    select(draws.c.id).where(draws.c.id == record.draw_id)
                ).first()
                is None
            ):
                raise SupervisionError(f"no draw {record.draw_id}")
            new_id = _insert(connection, record, ident, digest, actor)
    if existing is not None:
        return _must(get_inspection(engine, existing)), False
    return _must(get_inspection(engine, new_id)), True


def _insert(connection: Any, record: InspectionRecord, ident: int, digest: str, actor: str) -> int:
    checks = [asdict(check) for check in record.checks]
    new_id = int(
        connection.execute(
            insert(inspections)
            .values(
                client_id=record.client_id,
                enterprise_id=ident,
                draw_id=record.draw_id,
                inspector_codes=sorted(record.inspectors),
                inspected_at=record.inspected_at,
                longitude=record.longitude,
                latitude=record.latitude,
                accuracy_m=record.accuracy_m,
                checks=checks,
                findings=record.findings,
                problems=sum(1 for check in record.checks if check.result == "problem"),
                digest=digest,
                submitted_by=actor,
                submitted_at=utcnow(),
            )
            .returning(inspections.c.id)
        ).scalar_one()
    )
    audit(
        connection,
        actor,
        "create",
        "inspection",
        str(new_id),
        None,
        {"client_id": record.client_id, "enterprise": record.uscc, "digest": digest},
    )
    return new_id


def _must(found: dict[str, Any] | None) -> dict[str, Any]:
    if found is None:
        raise SupervisionError("the inspection vanished")
    return found


def check_attachment(kind: str, filename: str, data: bytes) -> str:
    """The content type of an attachment of ``kind`` if it would be taken (checked by its
    bytes, as :func:`add_attachment` does), without storing anything: the form checks every
    file before it stores the record."""
    if kind not in ALLOWED:
        raise SupervisionError(f"kind {kind!r}: expected one of {', '.join(ALLOWED)}")
    return check_upload(f"{filename} ({kind})", data, ALLOWED[kind], MAX_ATTACHMENT_BYTES)


def add_attachment(
    engine: Engine,
    folder: Path,
    inspection_id: int,
    kind: str,
    filename: str,
    data: bytes,
    actor: str,
) -> dict[str, Any]:
    """Store one attachment of an inspection (idempotent: the same bytes again are the
    same attachment). The file is written before the row, atomically (a temporary file
    renamed), so a row never names missing bytes. An empty, too large or mistyped file
    raises :class:`ecohub.web.uploads.UploadRefused` (its ``status_code`` says which)."""
    content_type = check_attachment(kind, filename, data)
    sha = store_bytes(folder, data)
    name = Path(filename).name[:200] or sha
    # The same file attached at the same moment by two requests is stored once.
    with contextlib.suppress(IntegrityError):
        _attach(engine, inspection_id, sha, kind, content_type, len(data), name, actor)
    return {
        "sha256": sha,
        "kind": kind,
        "content_type": content_type,
        "size": len(data),
        "filename": name,
    }


def _attach(
    engine: Engine,
    inspection_id: int,
    sha: str,
    kind: str,
    content_type: str,
    size: int,
    name: str,
    actor: str,
) -> None:
    with write_transaction(engine) as connection:
        if (
            connection.execute(
                select(inspections.c.id).where(inspections.c.id == inspection_id)
            ).first()
            is None
        ):
            raise SupervisionError(f"no inspection {inspection_id}")
        stored = connection.execute(
            select(inspection_attachments.c.sha256).where(
                inspection_attachments.c.inspection_id == inspection_id
            )
        ).all()
        if sha not in {row.sha256 for row in stored}:
            if len(stored) >= MAX_ATTACHMENTS:
                raise SupervisionError(
                    f"inspection {inspection_id} has {MAX_ATTACHMENTS} attachments, the most "
                    "one record takes"
                )
            connection.execute(
                insert(inspection_attachments).values(
                    inspection_id=inspection_id,
                    sha256=sha,
                    kind=kind,
                    content_type=content_type,
                    size=size,
                    filename=name,
                    added_at=utcnow(),
                )
            )
            audit(
                connection,
                actor,
                "create",
                "inspection_attachment",
                f"{inspection_id}/{sha}",
                None,
                {"kind": kind, "size": size},
            )


def get_inspection(engine: Engine, inspection_id: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(inspections, enterprises.c.uscc, enterprises.c.name.label("enterprise"))
            .join(enterprises, enterprises.c.id == inspections.c.enterprise_id)
            .where(inspections.c.id == inspection_id)
        ).first()
        if row is None:
            return None
        files = connection.execute(
            select(
                inspection_attachments.c.sha256,
                inspection_attachments.c.kind,
                inspection_attachments.c.content_type,
                inspection_attachments.c.size,
                inspection_attachments.c.filename,
            )
            .where(inspection_attachments.c.inspection_id == inspection_id)
            .order_by(inspection_attachments.c.added_at)
        ).all()
    document = dict(row._mapping)
    document["attachments"] = [dict(item._mapping) for item in files]
    return document


def list_inspections(
    engine: Engine, uscc: str | None = None, limit: int = 100, inspector: str | None = None
) -> list[dict[str, Any]]:
    """Records, newest first (``inspector``: only those naming that badge code)."""
    query = (
        select(
            inspections.c.id,
            inspections.c.client_id,
            enterprises.c.uscc,
            enterprises.c.name.label("enterprise"),
            inspections.c.inspected_at,
            inspections.c.inspector_codes,
            inspections.c.problems,
        )
        .join(enterprises, enterprises.c.id == inspections.c.enterprise_id)
        .order_by(inspections.c.inspected_at.desc())
    )
    if uscc is not None:
        query = query.where(enterprises.c.uscc == uscc)
    found: list[dict[str, Any]] = []
    with engine.connect() as connection:
        for row in connection.execute(query):
            if inspector is None or inspector in row.inspector_codes:
                found.append(dict(row._mapping))
                if len(found) >= limit:
                    break
    return found


def record_from(document: Mapping[str, Any], client_id: str) -> InspectionRecord:
    """A record from its API form (already validated by the route's model)."""
    checks: Sequence[Mapping[str, Any]] = document["checks"]
    return InspectionRecord(
        client_id=client_id,
        uscc=document["uscc"],
        inspectors=tuple(document["inspectors"]),
        inspected_at=document["inspected_at"],
        checks=tuple(Check(c["item"], c["result"], c.get("note") or "") for c in checks),
        findings=document.get("findings") or "",
        longitude=document.get("longitude"),
        latitude=document.get("latitude"),
        accuracy_m=document.get("accuracy_m"),
        draw_id=document.get("draw_id"),
    )
