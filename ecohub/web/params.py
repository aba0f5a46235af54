"""Query parameters and answers that every area's API routes share: ids and cursors,
instants and dates, bounding boxes, JSON and CSV answers, and the catalogue dependency.

Defined once here (as openaq-api-v2 does with its paging and bbox models), so that every
route reads and answers the same way.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Response, status

from ecohub.accounts.catalogue import dataset_access
from ecohub.clock import iso_z

# Database ids in paths and cursors: 32-bit, as both backends store them.
MAX_ROW_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowCursor = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="id cursor")]

# Instants the API accepts: monitoring data begins long after the first and the last
# leaves room for any date arithmetic on it.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def aware(moment: dt.datetime, name: str) -> dt.datetime:
    """``moment`` in UTC; 400 for a time without a zone or outside 1970-2199."""
    if moment.tzinfo is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name} needs a time zone, e.g. 2024-01-15T08:00+08:00"
        )
    check_date(moment.date(), name)
    return moment.astimezone(dt.UTC)


def check_date(day: dt.date, name: str) -> dt.date:
    """400 for dates outside 1970-2199 (where no monitoring data can be)."""
    if not EARLIEST.date() < day < LATEST.date():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} must lie between 1970 and 2199")
    return day


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(part) for part in text.split(","))
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "bbox must be four numbers: west,south,east,north (longitude, latitude)",
        ) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "bbox must have west < east within ±180 and south < north within ±90",
        )
    return west, south, east, north


def json_response(document: Any) -> Response:
    """JSON straight from plain data: these routes return thousands of rows that need
    no validation, and FastAPI's generic encoder would dominate their latency."""
    return Response(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        media_type="application/json",
    )


def csv_response(rows: list[dict[str, Any]], fields: tuple[str, ...], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        buffer.getvalue().encode("utf-8-sig"),  # with a BOM, so that Excel reads Chinese
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def shared_as(dataset_id: str) -> list[Any]:
    """The route dependencies that enforce a catalogue dataset's sharing class."""
    return [Depends(dataset_access(dataset_id))]


iso = iso_z
