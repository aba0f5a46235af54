"""The HTTP door of the ingestion pipeline: ``POST /api/v1/measurements``.

It takes JSON lines (``application/x-ndjson``), a JSON array (``application/json``) or
CSV (``text/csv``) in the measurement format of :mod:`ecohub.ingest.measurements` and
answers one result per row: accepted, or rejected with the reason. Rejected rows are
quarantined; accepted rows are committed before the answer is sent.

Uploading needs an API key (``Authorization: Bearer ek_…`` or ``X-API-Key``) or a
signed-in session; enterprise callers may only upload for their own enterprise's points.
The app's ``state.submit`` stores a batch: a local pipeline, or the gateway's shared
batch writer under ``ecohub serve``.

An upload is parsed off the event loop, so that the HJ 212 loggers served by the same
loop keep their answer times: a small one in a worker thread, a large one (over
:data:`THREAD_PARSE_BYTES`) in a worker process, since a thread parsing megabytes holds
the interpreter's lock against the loop (every socket call of the loop then waits for
it; docs/security.md has the measurements). At most
``upload_max_in_progress`` uploads are read and parsed at once (others wait up to
``upload_queue_seconds``, then get 503 with ``Retry-After``), and their rows reach the
batch writer in slices of :data:`SUBMIT_ROWS`, so that one upload never makes a batch
that holds up the loggers' answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import multiprocessing
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
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
    parse_json,
)
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.service import audit
from ecohub.timeseries.observations import Observation

MAX_UPLOAD_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
SUBMIT_ROWS = 5_000  # rows per batch-writer submission of one upload
# Rejected rows of one upload quarantined one by one; the rest are counted in one row
# (the answer still gives every row's reason): a 15 MB upload of bad rows stored 111 MB.
UPLOAD_REJECTS_KEPT = 100
THREAD_PARSE_BYTES = 256 * 1024  # larger uploads are parsed in a worker process
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


_EXAMPLE_ROW = {
    "point": "P0001",
    "parameter": "a21026",
    "ts": "2024-01-15T08:00:00+08:00",
    "value": 23.5,
    "interval": "hour",
    "flag": "N",
}
_MEASUREMENT = {
    "type": "object",
    "required": ["parameter", "ts", "value"],
    "properties": {
        "point": {"type": "string", "description": "monitoring point code (or give mn)"},
        "mn": {"type": "string", "description": "the logger's HJ 212 MN"},
        "parameter": {"type": "string", "description": "HJ 212-2017 code (a21026…)"},
        "ts": {"type": "string", "format": "date-time", "description": "with an offset"},
        "value": {"type": ["number", "null"]},
        "interval": {"type": "string", "enum": ["rt", "min", "hour", "day"]},
        "flag": {"type": "string", "description": "HJ 212 data flag (N F M S D C T B)"},
    },
}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "Measurements, one per row, in one of three forms (at most "
        f"{MAX_ROWS:,} rows and {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB).",
        "content": {
            "application/x-ndjson": {
                "schema": {"type": "string"},
                "example": '{"point": "P0001", "parameter": "a21026", '
                '"ts": "2024-01-15T08:00:00+08:00", "value": 23.5, "interval": "hour"}',
            },
            "application/json": {
                "schema": {"type": "array", "items": _MEASUREMENT},
                "example": [_EXAMPLE_ROW],
            },
            "text/csv": {
                "schema": {"type": "string"},
                "example": "point,parameter,ts,value,interval,flag\n"
                "P0001,a21026,2024-01-15T08:00:00+08:00,23.5,hour,N\n",
            },
        },
    }
}


@router.post(
    "/api/v1/measurements",
    response_model=UploadResult,
    summary="Upload measurements (JSON lines, JSON array or CSV)",
    openapi_extra=UPLOAD_BODY,
)
async def upload_measurements(
    request: Request, caller: Annotated[Principal, Depends(principal)]
) -> Response:
    if caller.role not in UPLOAD_ROLES:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this key may not upload data")
    state = request.app.state
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    async with _upload_slot(state):
        body = await _read_limited(request)
        if len(body) <= THREAD_PARSE_BYTES:
            parsed = await run_in_threadpool(
                _parse_upload, body, content_type, caller, state.resolver
            )
        else:
            url = state.engine.url.render_as_string(hide_password=False)
            try:
                parsed = await asyncio.get_running_loop().run_in_executor(
                    state.upload_slots.pool(), _parse_in_worker, body, content_type, caller, url
                )
            except _UploadRefused as refused:
                raise HTTPException(refused.status_code, refused.detail) from None
        del body
        await _store(state, parsed)
    await run_in_threadpool(_audit_upload, state.engine, caller, *parsed.counts)
    return Response(parsed.answer, media_type="application/json")


class _Slots:
    """Uploads in progress, at most ``limit`` (per event loop: tests run apps on
    several), and the worker processes that parse the large ones (started on first use,
    ``spawn``: the parent runs threads and an event loop)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.loop: asyncio.AbstractEventLoop | None = None
        self.semaphore: asyncio.Semaphore | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self.semaphore is None or self.loop is not loop:
            self.loop, self.semaphore = loop, asyncio.Semaphore(self.limit)
        return self.semaphore

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(self.limit, mp_context=context)
            return self._pool


_WORKER_RESOLVERS: dict[str, Resolver] = {}


def _parse_in_worker(body: bytes, content_type: str, caller: Principal, url: str) -> _Parsed:
    """:func:`_parse_upload` in a worker process, with a resolver of its own per store."""
    resolver = _WORKER_RESOLVERS.get(url)
    if resolver is None:
        from ecohub.db.engine import make_engine

        resolver = _WORKER_RESOLVERS[url] = Resolver(make_engine(url))
    try:
        return _parse_upload(body, content_type, caller, resolver)
    except HTTPException as error:  # its headers and detail cross the process boundary
        raise _UploadRefused(error.status_code, str(error.detail)) from None


class _UploadRefused(Exception):
    """An upload refused in a worker process (an HTTPException does not pickle back)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail


@contextlib.asynccontextmanager
async def _upload_slot(state: Any) -> AsyncIterator[None]:
    """A place among the uploads in progress, waited for ``upload_queue_seconds`` at
    most; 503 with ``Retry-After`` when none frees."""
    settings = getattr(state, "settings", None)
    wait = settings.upload_queue_seconds if settings is not None else 10.0
    semaphore = state.upload_slots.get()
    try:
        await asyncio.wait_for(semaphore.acquire(), wait)
    except TimeoutError:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{state.upload_slots.limit} uploads are in progress; send this one again later",
            headers={"Retry-After": "5"},
        ) from None
    try:
        yield
    finally:
        semaphore.release()


@dataclass
class _Parsed:
    """An upload's rows, its rejected input, its counts (accepted and rejected rows,
    values) and the answer, one result per row, as JSON (built where it was parsed: in
    a worker, never on the event loop)."""

    rows: list[Observation]
    rejected: list[Rejected]
    counts: tuple[int, int, int] = (0, 0, 0)
    answer: bytes = b""


def _answer(results: list[tuple[int, str | None, str | None]]) -> tuple[bytes, int]:
    rows = [
        {
            "row": row,
            "status": "accepted" if code is None else "rejected",
            "reason_code": code,
            "reason": reason,
        }
        for row, code, reason in results
    ]
    accepted = sum(1 for _row, code, _reason in results if code is None)
    document = {"accepted": accepted, "rejected": len(results) - accepted, "rows": rows}
    return json.dumps(document, ensure_ascii=False).encode(), accepted


def _parse_upload(body: bytes, content_type: str, caller: Principal, resolver: Resolver) -> _Parsed:
    """The upload's rows checked and resolved (in a worker thread or process)."""
    parsed = _Parsed([], [])
    results: list[tuple[int, str | None, str | None]] = []
    for number, (item, raw) in enumerate(_items(body, content_type), start=1):
        try:
            if isinstance(item, MeasurementError):
                raise item
            produced = []
            for measurement in parse_item(item):
                observation, point = resolver.observation(measurement, "http")
                if caller.role == Role.ENTERPRISE and point.enterprise_id != caller.enterprise_id:
                    raise MeasurementError(
                        "forbidden_point",
                        f"point {point.code} does not belong to this key's enterprise",
                    )
                produced.append(observation)
        except MeasurementError as error:
            results.append((number, error.reason_code, error.reason))
            if len(parsed.rejected) < UPLOAD_REJECTS_KEPT:
                parsed.rejected.append(
                    Rejected(
                        source="http",
                        reason_code=error.reason_code,
                        reason=f"row {number}: {error.reason}",
                        raw=raw,
                        peer=caller.name[:100],
                    )
                )
            continue
        parsed.rows.extend(produced)
        results.append((number, None, None))
    parsed.answer, accepted = _answer(results)
    more = len(results) - accepted - len(parsed.rejected)
    if more > 0:
        codes = Counter(code for _row, code, _reason in results if code is not None)
        parsed.rejected.append(
            Rejected(
                source="http",
                reason_code="more_rejected",
                reason=f"{more:,} more rejected rows of this upload were counted, not kept "
                f"(reasons of all its rejected rows: {dict(codes.most_common(10))})",
                raw="",
                peer=caller.name[:100],
                times=more,
            )
        )
    parsed.counts = (accepted, len(results) - accepted, len(parsed.rows))
    return parsed


async def _store(state: Any, parsed: _Parsed) -> None:
    """Submit the rows in slices, each durable before the next is sent, and each paced
    by the shared writer's backlog (see :func:`shared_writer_submit`)."""
    rows, rejected = parsed.rows, parsed.rejected
    pace = getattr(state.submit, "pace", None)
    try:
        for start in range(0, max(len(rows), 1), SUBMIT_ROWS):
            if pace is not None:
                await pace(min(SUBMIT_ROWS, len(rows) - start))
            await state.submit(rows[start : start + SUBMIT_ROWS], rejected if start == 0 else [])
    except Exception as error:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"the store did not accept the batch: {error}"
        ) from None


def install(state: Any, engine: Engine, submit: Submit | None) -> None:
    """Give an app's ``state`` what the upload route needs: how to store a batch
    (default: a local pipeline) and the point resolver."""
    state.submit = submit or _local_submitter(engine)
    state.resolver = Resolver(engine)
    settings = getattr(state, "settings", None)
    state.upload_slots = _Slots(settings.upload_max_in_progress if settings is not None else 2)


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


def _items(body: bytes, content_type: str) -> Iterator[tuple[Any, str]]:
    """The upload's rows as (parsed item or parse error, raw text), one at a time (the
    rows of a 15 MB upload held at once took 200 MB)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = body.count(b"\n", 0, error.start) + 1
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"body is not UTF-8: line {line}, byte 0x{body[error.start]:02x}",
        ) from None
    if content_type == "text/csv":
        items = _csv_items(text)
    elif content_type == "application/json":
        try:
            document = parse_json(text)
        except MeasurementError as error:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"body: {error.reason}") from None
        rows = document if isinstance(document, list) else [document]
        items = ((row, json.dumps(row, ensure_ascii=False)) for row in rows)
    elif content_type in ("application/x-ndjson", "application/jsonl", "application/json-lines"):
        items = _json_lines(text)
    else:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send application/x-ndjson, application/json or text/csv",
        )
    for count, item in enumerate(items, start=1):
        if count > MAX_ROWS:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_ROWS} rows per upload"
            )
        yield item


def _json_lines(text: str) -> Iterator[tuple[Any, str]]:
    for number, line in enumerate(io.StringIO(text), start=1):
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            yield parse_json(line), line
        except MeasurementError as error:
            yield MeasurementError(error.reason_code, f"line {number}: {error.reason}"), line


def _csv_items(text: str) -> Iterator[tuple[Any, str]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fields = reader.fieldnames
        unknown = set(fields or ()) - set(CSV_FIELDS)
        if unknown or not fields:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                f"CSV header must use the columns {', '.join(CSV_FIELDS)}"
                + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""),
            )
        for row in reader:
            yield csv_row_item(row), ",".join(str(value) for value in row.values())
    except csv.Error as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"CSV line {reader.line_num}: {error}"
        ) from None


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


def shared_writer_submit(writer: Any) -> Submit:
    """A submit function over a running :class:`~ecohub.ingest.batch_writer.BatchWriter`.
    Its ``pace`` (used by uploads before each slice) waits, a minute at most, while the
    writer's journal backlog has less than half its room left: the rest is the loggers',
    whose answers would otherwise wait for commits behind a large upload."""

    async def submit(rows: list[Observation], rejected: list[Rejected]) -> None:
        await asyncio.shield(writer.submit(rows, rejected))

    async def pace(rows: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60.0
        room = writer.max_backlog_rows // 2
        while writer.backlog_rows + rows > room and loop.time() < deadline:
            await asyncio.sleep(0.05)

    submit.pace = pace  # type: ignore[attr-defined]
    return submit
