"""The HTTP door of the ingestion pipeline: ``POST /api/v1/measurements``.

It takes JSON lines (``application/x-ndjson``), a JSON array (``application/json``) or
CSV (``text/csv``) in the measurement format of :mod:`ecohub.ingest.measurements` and
answers one result per row: accepted, or rejected with the reason. Rejected rows are
quarantined; accepted rows are committed before the answer is sent.

Uploading needs an API key (``Authorization: Bearer ek_…`` or ``X-API-Key``) or a
signed-in session; enterprise callers may only upload for their own enterprise's points.
The app's ``state.submit`` stores a batch: a local pipeline, or the gateway's shared
batch writer under ``ecohub serve``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.auth import principal
from ecohub.accounts.keys import Principal, Role
from ecohub.db.quarantine import Rejected
from ecohub.ingest.measurements import (
    CSV_FIELDS,
    MeasurementError,
    Resolver,
    csv_row_item,
    parse_item,
)
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.service import audit
from ecohub.timeseries.observations import Observation

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
UPLOAD_ROLES = frozenset({Role.ADMIN, Role.AGENCY, Role.OPERATOR, Role.ENTERPRISE})

Submit = Callable[[list[Observation], list[Rejected]], Awaitable[None]]
router = APIRouter(tags=["ingest"])


class RowResult(BaseModel):
    row: int
    status: str  # accepted or rejected
    reason_code: str | None = None
    reason: str | None = None


class UploadResult(BaseModel):
    accepted: int
    rejected: int
    rows: list[RowResult]


def _local_submitter(engine: Engine) -> Submit:
    """Without a shared batch writer: one pipeline, one writer at a time."""
    pipeline = Pipeline(engine)
    lock = threading.Lock()

    def write(rows: list[Observation], rejected: list[Rejected]) -> None:
        with lock:
            pipeline.process(rows, rejected)

    async def submit(rows: list[Observation], rejected: list[Rejected]) -> None:
        await run_in_threadpool(write, rows, rejected)

    return submit


@router.post(
    "/api/v1/measurements",
    response_model=UploadResult,
    summary="Upload measurements (JSON lines, JSON array or CSV)",
)
async def upload_measurements(
    request: Request, caller: Annotated[Principal, Depends(principal)]
) -> UploadResult:
    if caller.role not in UPLOAD_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not upload data")
    body = await _read_limited(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    items = _items(body, content_type)
    return await _ingest(request.app.state, caller, items)


def install(state: Any, engine: Engine, submit: Submit | None) -> None:
    """Give an app's ``state`` what the upload route needs: how to store a batch
    (default: a local pipeline) and the point resolver."""
    state.submit = submit or _local_submitter(engine)
    state.resolver = Resolver(engine)


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds {MAX_UPLOAD_BYTES} bytes"
        )
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"upload exceeds {MAX_UPLOAD_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _items(body: bytes, content_type: str) -> list[tuple[Any, str]]:
    """The upload's rows as (parsed item or parse error, raw text)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not UTF-8: {error}") from None
    if content_type == "text/csv":
        items = list(_csv_items(text))
    elif content_type == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body is not JSON: {error}") from None
        rows = document if isinstance(document, list) else [document]
        items = [(row, json.dumps(row, ensure_ascii=False)) for row in rows]
    elif content_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        items = list(_json_lines(text))
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send application/x-ndjson, application/json or text/csv",
        )
    if len(items) > MAX_ROWS:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_ROWS} rows per upload"
        )
    return items


def _json_lines(text: str) -> Iterator[tuple[Any, str]]:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            yield json.loads(line), line
        except json.JSONDecodeError as error:
            yield MeasurementError("bad_json", f"not JSON: {error}"), line


def _csv_items(text: str) -> Iterator[tuple[Any, str]]:
    reader = csv.DictReader(io.StringIO(text))
    unknown = set(reader.fieldnames or ()) - set(CSV_FIELDS)
    if unknown or not reader.fieldnames:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"CSV header must use the columns {', '.join(CSV_FIELDS)}"
            + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""),
        )
    for row in reader:
        yield csv_row_item(row), ",".join(str(value) for value in row.values())


async def _ingest(state: Any, caller: Principal, items: list[tuple[Any, str]]) -> UploadResult:
    resolver: Resolver = state.resolver
    results: list[RowResult] = []
    rows: list[Observation] = []
    rejected: list[Rejected] = []
    for number, (item, raw) in enumerate(items, start=1):
        try:
            if isinstance(item, MeasurementError):
                raise item
            measured = parse_item(item)
            produced = []
            for measurement in measured:
                observation, point = resolver.observation(measurement, "http")
                if caller.role == Role.ENTERPRISE and point.enterprise_id != caller.enterprise_id:
                    raise MeasurementError(
                        "forbidden_point",
                        f"point {point.code} does not belong to this key's enterprise",
                    )
                produced.append(observation)
        except MeasurementError as error:
            results.append(RowResult(row=number, status="rejected", **_reason(error)))
            rejected.append(
                Rejected(
                    source="http",
                    reason_code=error.reason_code,
                    reason=f"row {number}: {error.reason}",
                    raw=raw,
                    peer=caller.name[:100],
                )
            )
            continue
        rows.extend(produced)
        results.append(RowResult(row=number, status="accepted"))
    try:
        await state.submit(rows, rejected)
    except Exception as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the store did not accept the batch: {error}"
        ) from None
    accepted = sum(1 for result in results if result.status == "accepted")
    await run_in_threadpool(
        _audit_upload, state.engine, caller, accepted, len(results) - accepted, len(rows)
    )
    return UploadResult(accepted=accepted, rejected=len(results) - accepted, rows=results)


def _audit_upload(
    engine: Engine, caller: Principal, accepted: int, rejected: int, values: int
) -> None:
    """One audit row per upload: who wrote how much (the values carry source "http")."""
    with Session(engine) as session:
        audit(
            session,
            caller.actor,
            "upload",
            "measurements",
            f"{accepted} rows",
            None,
            {"accepted_rows": accepted, "rejected_rows": rejected, "values": values},
        )
        session.commit()


def _reason(error: MeasurementError) -> dict[str, str]:
    return {"reason_code": error.reason_code, "reason": error.reason}


def shared_writer_submit(writer: Any) -> Submit:
    """A submit function over a running :class:`~ecohub.ingest.batch_writer.BatchWriter`."""

    async def submit(rows: list[Observation], rejected: list[Rejected]) -> None:
        await asyncio.shield(writer.submit(rows, rejected))

    return submit
