"""The agency's back-office queries: quarantined input and its review, and the
transmission and effective-data rate report (read by the agency API and pages)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from ecohub.clock import iso_z, utcnow
from ecohub.db.quarantine import quarantine
from ecohub.registry import service
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, Site
from ecohub.registry.regions import region_prefix
from ecohub.timeseries.rates import daily_rates

QUARANTINE_FIELDS = (
    "id",
    "received_at",
    "times",
    "last_received_at",
    "source",
    "peer",
    "point_code",
    "reason_code",
    "reason",
    "raw",
    "reviewed_at",
    "reviewed_by",
    "review_outcome",
    "review_note",
)


class ReviewOutcome(enum.StrEnum):
    DISMISSED = "dismissed"  # noise, nothing to do
    DEVICE_FAULT = "device_fault"  # the logger or analyser needs repair
    FORWARDED = "forwarded"  # passed to enforcement or the operator


class Review(BaseModel):
    outcome: ReviewOutcome
    note: str | None = Field(default=None, max_length=2000)


# A page of quarantine holds at most this much raw text unless asked for less or more
# (up to MAX_PAGE_BYTES); a row's raw text longer than a page is cut to it.
PAGE_BYTES = 1 << 20
MAX_PAGE_BYTES = 16 << 20


def _row(row: Any, raw_length: int, page_bytes: int) -> dict[str, Any]:
    values = dict(zip(QUARANTINE_FIELDS, row, strict=True))
    for name in ("received_at", "reviewed_at", "last_received_at"):
        if values[name] is not None:
            values[name] = iso_z(values[name])
    values["raw_length"] = raw_length
    values["raw_truncated"] = raw_length > page_bytes
    return values


def list_quarantined(
    engine: Engine,
    *,
    source: str | None = None,
    reason_code: str | None = None,
    reviewed: bool | None = None,
    before: int | None = None,
    limit: int = 100,
    max_bytes: int = PAGE_BYTES,
) -> list[dict[str, Any]]:
    """Quarantined rows, newest first (shared by the API and the portal page): at most
    ``limit`` rows and, after the first, at most ``max_bytes`` characters of raw text
    in all; a raw text longer than ``max_bytes`` is cut to it (``raw_truncated``, with
    its whole ``raw_length``). The next page starts ``before`` the last row's id."""
    columns = [quarantine.c[name] for name in QUARANTINE_FIELDS if name != "raw"]
    query = (
        select(
            *columns,
            func.substr(quarantine.c.raw, 1, max_bytes).label("raw"),
            func.length(quarantine.c.raw).label("raw_length"),
        )
        .order_by(quarantine.c.id.desc())
        .limit(limit)
    )
    if source:
        query = query.where(quarantine.c.source == source)
    if reason_code:
        query = query.where(quarantine.c.reason_code == reason_code)
    if reviewed is not None:
        query = query.where(
            quarantine.c.reviewed_at.is_not(None)
            if reviewed
            else quarantine.c.reviewed_at.is_(None)
        )
    if before is not None:
        query = query.where(quarantine.c.id < before)
    order = [name for name in QUARANTINE_FIELDS if name != "raw"] + ["raw"]
    page: list[dict[str, Any]] = []
    size = 0
    with engine.connect() as connection:
        for found in connection.execute(query):
            values = dict(zip(order, found[:-1], strict=True))
            raw_length = int(found.raw_length or 0)
            size += min(raw_length, max_bytes)
            if page and size > max_bytes:
                break
            page.append(_row([values[name] for name in QUARANTINE_FIELDS], raw_length, max_bytes))
    return page


def review_quarantined(engine: Engine, row_id: int, review: Review, actor: str) -> None:
    """Record a reviewer's decision on one quarantined row (and audit it)."""
    with Session(engine) as session:
        done = session.execute(
            update(quarantine)
            .where(quarantine.c.id == row_id)
            .values(
                reviewed_at=utcnow(),
                reviewed_by=actor,
                review_outcome=review.outcome.value,
                review_note=review.note,
            )
        )
        if done.rowcount == 0:  # type: ignore[attr-defined]
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no quarantined row {row_id}")
        service.audit(
            session,
            actor,
            "review",
            "quarantine",
            str(row_id),
            None,
            {"outcome": review.outcome.value, "note": review.note},
        )
        session.commit()


def transmission_report(
    engine: Engine, day: dt.date, region: str | None, enterprise_id: int | None
) -> list[dict[str, Any]]:
    """Each point's rates for a local day, with its enterprise or site (for the report)."""
    query = (
        select(
            MonitoringPoint.code,
            MonitoringPoint.name,
            Enterprise.uscc,
            Site.code,
            MonitoringPoint.interval_seconds,
        )
        .outerjoin(Outlet, Outlet.id == MonitoringPoint.outlet_id)
        .outerjoin(Enterprise, Enterprise.id == Outlet.enterprise_id)
        .outerjoin(Site, Site.id == MonitoringPoint.site_id)
        .order_by(MonitoringPoint.code)
    )
    if enterprise_id is not None:
        query = query.where(Outlet.enterprise_id == enterprise_id)
    if region:
        prefix = region_prefix(region) + "%"
        query = query.where(Enterprise.region_code.like(prefix) | Site.region_code.like(prefix))
    with engine.connect() as connection:
        points = {row[0]: row for row in connection.execute(query)}
    if not points:
        return []
    rates = daily_rates(engine, day, point_codes=list(points))
    return [
        {
            "point": rate.point_code,
            "name": points[rate.point_code][1],
            "enterprise": points[rate.point_code][2],
            "site": points[rate.point_code][3],
            "interval_seconds": points[rate.point_code][4],
            "day": rate.day.isoformat(),
            "expected": rate.expected,
            "received": rate.received,
            "valid": rate.valid,
            "transmission_rate": round(rate.transmission_rate, 4),
            "effective_rate": round(rate.effective_rate, 4),
        }
        for rate in rates
    ]
