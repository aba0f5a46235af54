"""Agency routes: registry management with its audit log, quarantine review and the
transmission-rate report.

- ``PUT /api/v1/registry/{entity}`` creates or updates one region, site, enterprise,
  outlet, permit (with its limits) or monitoring point, validated by the registry's
  schemas; ``DELETE /api/v1/registry/{entity}/{key}`` removes one. Admin and agency
  callers only; every change lands in the audit log under the caller's name, which
  ``GET /api/v1/audit`` reads back (device passwords redacted).
- ``GET /api/v1/quarantine`` lists rejected packets and rows (newest first, filters,
  ``before`` cursor, pages bounded by row count and by raw text size, ``max_bytes``);
  ``POST /api/v1/quarantine/{id}/review`` records the reviewer's decision. Quarantine is
  not shared outside the agency.
- ``GET /api/v1/reports/transmission`` gives each monitoring point's transmission and
  effective-data rates for a day; an enterprise caller sees its own points only.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecohub.accounts.catalogue import AGENCY_ROLES, dataset_access
from ecohub.accounts.keys import Principal, Role
from ecohub.agency.service import (
    MAX_PAGE_BYTES,
    PAGE_BYTES,
    Review,
    list_quarantined,
    review_quarantined,
    transmission_report,
)
from ecohub.clock import iso_z
from ecohub.registry import schemas, service
from ecohub.registry.models import AuditEntry
from ecohub.web.params import RowCursor, RowId, check_date, json_response

router = APIRouter(prefix="/api/v1", tags=["agency"])

_UPSERT: dict[str, tuple[type[BaseModel], Any]] = {
    "regions": (schemas.RegionIn, service.upsert_region),
    "sites": (schemas.SiteIn, service.upsert_site),
    "enterprises": (schemas.EnterpriseIn, service.upsert_enterprise),
    "outlets": (schemas.OutletIn, service.upsert_outlet),
    "permits": (schemas.PermitIn, service.upsert_permit),
    "points": (schemas.PointIn, service.upsert_point),
}
SECRET_FIELDS = frozenset({"password", "password_hash"})


class Entity(enum.StrEnum):
    REGIONS = "regions"
    SITES = "sites"
    ENTERPRISES = "enterprises"
    OUTLETS = "outlets"
    PERMITS = "permits"
    POINTS = "points"


class DeletableEntity(enum.StrEnum):
    REGIONS = "regions"
    SITES = "sites"
    ENTERPRISES = "enterprises"
    PERMITS = "permits"
    POINTS = "points"


def _redact(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in values.items()}


# --- registry management -----------------------------------------------------------------

RegistryCaller = Annotated[Principal | None, Depends(dataset_access("registry"))]


def _upsert(engine: Engine, entity: str, record: BaseModel, actor: str) -> dict[str, Any]:
    _schema, upsert = _UPSERT[entity]
    with Session(engine) as session:
        try:
            row = upsert(session, record, actor)
            session.commit()
        except service.RegistryError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from None
        except IntegrityError as error:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"conflicts with the registry: {error.orig}"
            ) from None
        result = _redact(service.snapshot(row))
    assert result is not None
    return result


@router.put(
    "/registry/{entity}",
    summary="Create or update one registry record (audited)",
)
async def put_record(
    request: Request,
    caller: RegistryCaller,
    entity: Entity,
    record: Annotated[dict[str, Any], Body(description="the record, as the registry schema")],
) -> Response:
    assert caller is not None
    schema, _upsert_function = _UPSERT[entity.value]
    try:
        parsed = schema.model_validate(record)
    except ValidationError as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": e["loc"], "msg": e["msg"]} for e in error.errors()],
        ) from None
    result = await run_in_threadpool(
        _upsert, request.app.state.engine, entity.value, parsed, caller.actor
    )
    return json_response(result)


def _delete(engine: Engine, entity: str, key: str, actor: str) -> None:
    with Session(engine) as session:
        try:
            service.delete_entity(session, entity, key, actor)
            session.commit()
        except service.RegistryError as error:
            message = str(error)
            missing = message.startswith("unknown ")
            code = status.HTTP_404_NOT_FOUND if missing else status.HTTP_409_CONFLICT
            raise HTTPException(code, message) from None
        except IntegrityError:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{entity} {key} is still referenced (by points, data or alarms); "
                "retire it instead of deleting it",
            ) from None


@router.delete(
    "/registry/{entity}/{key}", status_code=204, summary="Delete one registry record (audited)"
)
async def delete_record(
    request: Request, caller: RegistryCaller, entity: DeletableEntity, key: str
) -> None:
    assert caller is not None
    await run_in_threadpool(_delete, request.app.state.engine, entity.value, key, caller.actor)


def _audit(engine: Engine, entity: str | None, before_id: int | None, limit: int) -> list[dict]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    with Session(engine) as session:
        return [
            {
                "id": entry.id,
                "at": iso_z(entry.at),
                "actor": entry.actor,
                "action": entry.action,
                "entity": entry.entity,
                "key": entry.entity_key,
                "before": _redact(entry.before),
                "after": _redact(entry.after),
            }
            for entry in session.scalars(query)
        ]


@router.get("/audit", summary="The audit log of registry and account changes, newest first")
async def audit_log(
    request: Request,
    caller: RegistryCaller,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    before: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    rows = await run_in_threadpool(_audit, request.app.state.engine, entity, before, limit)
    return json_response(rows)


# --- quarantine review -------------------------------------------------------------------

QuarantineCaller = Annotated[Principal | None, Depends(dataset_access("quarantine"))]


@router.get("/quarantine", summary="Quarantined packets and rows, newest first")
async def get_quarantine(
    request: Request,
    caller: QuarantineCaller,
    source: Annotated[str | None, Query(max_length=16)] = None,
    reason_code: Annotated[str | None, Query(max_length=32)] = None,
    reviewed: bool | None = None,
    before: RowCursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    max_bytes: Annotated[
        int,
        Query(
            ge=1024,
            le=MAX_PAGE_BYTES,
            description="Raw text per page (characters); a longer raw text is cut to it "
            "(raw_truncated, raw_length). Page on with before = the last row's id.",
        ),
    ] = PAGE_BYTES,
) -> Response:
    rows = await run_in_threadpool(
        lambda: list_quarantined(
            request.app.state.engine,
            source=source,
            reason_code=reason_code,
            reviewed=reviewed,
            before=before,
            limit=limit,
            max_bytes=max_bytes,
        )
    )
    return json_response(rows)


@router.get("/quarantine/{row_id}", summary="One quarantined packet or row")
async def get_quarantined(request: Request, caller: QuarantineCaller, row_id: RowId) -> Response:
    rows = await run_in_threadpool(
        lambda: list_quarantined(
            request.app.state.engine, before=row_id + 1, limit=1, max_bytes=MAX_PAGE_BYTES
        )
    )
    if not rows or rows[0]["id"] != row_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined row {row_id}")
    return json_response(rows[0])


@router.post("/quarantine/{row_id}/review", status_code=204, summary="Record the review of a row")
async def review(request: Request, caller: QuarantineCaller, row_id: RowId, body: Review) -> None:
    assert caller is not None
    await run_in_threadpool(
        review_quarantined, request.app.state.engine, row_id, body, caller.actor
    )


# --- transmission-rate report ------------------------------------------------------------


@router.get(
    "/reports/transmission",
    summary="Transmission and effective-data rates of each monitoring point for a day",
)
async def transmission(
    request: Request,
    caller: Annotated[Principal | None, Depends(dataset_access("transmission_rates"))],
    day: dt.date,
    region: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
) -> Response:
    assert caller is not None
    check_date(day, "day")
    enterprise_id = None
    if caller.role not in AGENCY_ROLES:
        enterprise_id = caller.enterprise_id if caller.role == Role.ENTERPRISE else -1
    rows = await run_in_threadpool(
        transmission_report, request.app.state.engine, day, region, enterprise_id
    )
    return json_response(rows)
