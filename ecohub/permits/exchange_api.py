"""Routes of the exchange with the tax authority under ``/api/v1/permits/exchange``
(catalogue dataset ``permits_exchange``: the agency only): the JSON Schema of the format,
the stored records of a kind, the import of a file from the tax side, review opinions, and
the reconciliation of an enterprise's declared tax with the computed one."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    HTTPException,
    Query,
    Request,
    UploadFile,
)
from fastapi import (
    Path as PathParam,
)
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal
from ecohub.permits import exchange, exchange_docs, exchange_schema, reconcile
from ecohub.permits.accounting import AccountingError
from ecohub.permits.api import parse_month
from ecohub.permits.exchange_schema import Kind

router = APIRouter(prefix="/api/v1/permits/exchange", tags=["permits"])
Agency = Annotated[Principal, Depends(dataset_access("permits_exchange"))]
MAX_FILE_BYTES = 50 * 1024 * 1024


class OpinionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    conclusion: str = Field(min_length=1, max_length=20)
    opinion: str = Field(min_length=1, max_length=4000)
    reviewed_quantity: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    pollutant: str | None = Field(default=None, max_length=100)


async def _run(function: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except (exchange.ExchangeError, AccountingError) as error:
        text = str(error)
        raise HTTPException(404 if text.startswith("no ") else 422, text) from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.get("/schema", summary="The JSON Schema of a line of a .jsonl exchange file")
async def get_schema(caller: Agency) -> dict[str, Any]:
    return exchange_docs.schema_document()


@router.get("/schema/{kind}", summary="The JSON Schema of one kind's record")
async def get_kind_schema(caller: Agency, kind: Kind) -> dict[str, Any]:
    return exchange_schema.json_schema(kind)


@router.get("/records", summary="Stored records of one kind")
async def get_records(
    request: Request,
    caller: Agency,
    kind: Kind,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    return await _run(exchange.records, request.app.state.engine, kind.value, limit)


@router.post("/import", summary="Import a .jsonl or .csv file (named <kind>.csv)")
async def post_import(
    request: Request,
    caller: Agency,
    file: Annotated[UploadFile, File()],
    strict: Annotated[bool, Query(description="refuse the whole file if a line is bad")] = False,
) -> dict[str, Any]:
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise HTTPException(413, f"{file.filename}: more than {MAX_FILE_BYTES:,} bytes")
    name = Path(file.filename or "upload.jsonl").name
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        report = await _run(
            exchange.import_file,
            request.app.state.engine,
            path,
            actor=caller.actor,
            strict=strict,
        )
    return vars(report)


@router.post("/reviews/{request_no}", status_code=201, summary="Answer a review request")
async def post_opinion(
    request: Request,
    caller: Agency,
    body: OpinionIn,
    request_no: Annotated[str, PathParam(min_length=1, max_length=100)],
) -> dict[str, Any]:
    return await _run(
        reconcile.answer_review,
        request.app.state.engine,
        request_no,
        conclusion=body.conclusion,
        opinion=body.opinion,
        actor=caller.actor,
        reviewed_quantity=body.reviewed_quantity,
        pollutant=body.pollutant,
    )


@router.get("/reconciliation", summary="An enterprise's declared tax against the computed one")
async def get_reconciliation(
    request: Request,
    caller: Agency,
    uscc: Annotated[str, Query(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")],
    month: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
) -> dict[str, Any]:
    try:
        year, number = parse_month(month)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return await _run(reconcile.reconcile, request.app.state.engine, uscc, year, number)
