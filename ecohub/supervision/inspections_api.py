"""Routes of inspections in the field (``router``) under ``/api/v1/supervision``, for the
agency and its inspectors (catalogue dataset ``supervision_assignments``): an
inspector's assignments (the draw picks naming their badge code); submit a record
idempotently by the device's ``client_id`` (``PUT``: 201 when stored, 200 when the same
record was already there, 409 when the id names another record); add attachments
(multipart, checked by their bytes); read back. An inspector (role ``inspector``, the
account named by the badge code) submits only records naming themselves and sees only
those; another inspector's record answers 404.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ecohub.accounts.catalogue import dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.supervision import inspections, service
from ecohub.supervision.service import SupervisionError
from ecohub.web import uploads
from ecohub.web.params import RowId

router = APIRouter(prefix="/api/v1/supervision", tags=["supervision"])
ClientId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class CheckIn(BaseModel):
    item: str = Field(min_length=1, max_length=200)
    result: str = Field(pattern=r"^(ok|problem|na)$")
    note: str = Field(default="", max_length=2000)


class InspectionIn(BaseModel):
    uscc: Annotated[str, Field(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")]
    inspectors: list[Annotated[str, Field(max_length=32)]] = Field(min_length=1, max_length=10)
    inspected_at: dt.datetime
    checks: list[CheckIn] = Field(min_length=1, max_length=100)
    findings: str = Field(default="", max_length=8000)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)
    draw_id: RowId | None = None


def _field(
    caller: Annotated[Principal | None, Depends(dataset_access("supervision_assignments"))],
) -> Principal:
    assert caller is not None  # a conditional dataset never admits the anonymous
    return caller


Field_ = Annotated[Principal, Depends(_field)]


def _inspector(caller: Principal) -> str | None:
    """The caller's badge code when it is an inspector (None: the agency, sees all)."""
    return caller.name if caller.role == Role.INSPECTOR else None


def _visible(caller: Principal, found: dict[str, Any] | None, inspection_id: int) -> dict[str, Any]:
    code = _inspector(caller)
    if found is None or (code is not None and code not in found["inspector_codes"]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no inspection {inspection_id}")
    return found


@router.get("/assignments", summary="Draw picks (an inspector: those naming them)")
async def get_assignments(
    request: Request, caller: Field_, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[dict[str, Any]]:
    return await run_in_threadpool(
        service.assignments, request.app.state.engine, _inspector(caller), limit
    )


def attachments_folder(request: Request) -> FilePath:
    return uploads.attachments_folder(request.app.state.settings.var_dir)


@router.put(
    "/inspections/{client_id}", summary="Submit an inspection record (idempotent by client_id)"
)
async def put_inspection(
    request: Request, response: Response, client_id: ClientId, body: InspectionIn, caller: Field_
) -> dict[str, Any]:
    code = _inspector(caller)
    if code is not None and code not in body.inspectors:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"inspector {code} may submit only records naming themselves"
        )
    record = inspections.record_from(body.model_dump(), client_id)
    try:
        stored, created = await run_in_threadpool(
            inspections.submit, request.app.state.engine, record, caller.actor
        )
    except SupervisionError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return stored


@router.post(
    "/inspections/{inspection_id}/attachments",
    status_code=201,
    summary="Add a photo, document or signature",
)
async def post_attachment(
    request: Request,
    inspection_id: RowId,
    caller: Field_,
    kind: Annotated[str, Form(pattern=r"^(photo|document|signature)$")],
    file: Annotated[UploadFile, File()],
) -> dict[str, Any]:
    engine = request.app.state.engine
    found = await run_in_threadpool(inspections.get_inspection, engine, inspection_id)
    _visible(caller, found, inspection_id)
    data = await file.read(inspections.MAX_ATTACHMENT_BYTES + 1)
    try:
        return await run_in_threadpool(
            inspections.add_attachment,
            request.app.state.engine,
            attachments_folder(request),
            inspection_id,
            kind,
            file.filename or "attachment",
            data,
            caller.actor,
        )
    except uploads.UploadRefused as error:  # empty, too large (413) or not of the kind's types
        raise HTTPException(error.status_code, str(error)) from None
    except SupervisionError as error:  # the record already holds the most it takes
        raise HTTPException(409, str(error)) from None


@router.get("/inspections", summary="Inspection records, newest first")
async def get_inspections(
    request: Request,
    caller: Field_,
    uscc: Annotated[str | None, Query(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return await run_in_threadpool(
        inspections.list_inspections, request.app.state.engine, uscc, limit, _inspector(caller)
    )


@router.get("/inspections/{inspection_id}", summary="One inspection record with its attachments")
async def get_inspection(request: Request, inspection_id: RowId, caller: Field_) -> dict[str, Any]:
    found = await run_in_threadpool(
        inspections.get_inspection, request.app.state.engine, inspection_id
    )
    return _visible(caller, found, inspection_id)


@router.get("/inspections/{inspection_id}/attachments/{sha256}", summary="An attachment's bytes")
async def get_attachment(
    request: Request,
    inspection_id: RowId,
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    caller: Field_,
) -> FileResponse:
    found = await run_in_threadpool(
        inspections.get_inspection, request.app.state.engine, inspection_id
    )
    files = {item["sha256"]: item for item in _visible(caller, found, inspection_id)["attachments"]}
    if sha256 not in files:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such attachment of this inspection")
    item = files[sha256]
    return FileResponse(
        uploads.attachment_path(attachments_folder(request), sha256),
        media_type=item["content_type"],
        filename=item["filename"],
    )
