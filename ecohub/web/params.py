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
import re
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, Response, status

from ecohub.accounts.catalogue import dataset_access
from ecohub.clock import CST, iso_z
from ecohub.textio import csv_cell

# Database ids in paths and cursors: 32-bit, as both backends store them.
MAX_ROW_ID = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowCursor = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID, description="id cursor")]

# Instants the API accepts: monitoring data begins long after the first and the last
# leaves room for any date arithmetic on it.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def aware(moment: dt.datetime, name: str) -> dt.datetime:
    """``moment`` in UTC (a time without an offset is Beijing time); 400 outside
    1970-2199."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CST)
    check_date(moment.date(), name)
    return moment.astimezone(dt.UTC)


# A time as users type it: ISO 8601, a date alone (its midnight), with or without an
# offset. Without one it is Beijing time, the platform's one rule; answers carry "Z".
INSTANT_HELP = (
    "ISO 8601 date or time; without an offset it is Beijing time (UTC+8): 2024-01-15, "
    "2024-01-15T08:00, 2024-01-15T08:00+08:00 or 2024-01-15T00:00Z"
)
Instant = Annotated[
    str | None,
    Query(description=INSTANT_HELP, examples=["2024-01-15", "2024-01-15T08:00+08:00"]),
]
# "+08:00" sent unencoded in a query string arrives as " 08:00".
_LOST_PLUS = re.compile(r" (\d{2}:?\d{2})$")


def instant(text: str | None, name: str) -> dt.datetime | None:
    """A query parameter's instant in UTC (None when absent); 400 naming the parameter
    and the accepted forms for anything else."""
    if text is None or not text.strip():
        return None
    cleaned = _LOST_PLUS.sub(r"+\1", text.strip())
    try:
        if len(cleaned) == 10:
            day = dt.date.fromisoformat(cleaned)
            moment = dt.datetime(day.year, day.month, day.day)
        else:
            moment = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name}: {text!r} is not a date or time ({INSTANT_HELP})"
        ) from None
    return aware(moment, name)


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
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    return Response(
        buffer.getvalue().encode("utf-8-sig"),  # with a BOM, so that Excel reads Chinese
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def shared_as(dataset_id: str) -> list[Any]:
    """The route dependencies that enforce a catalogue dataset's sharing class."""
    return [Depends(dataset_access(dataset_id))]


iso = iso_z


_QUERY_NAMES: dict[int, frozenset[str]] = {}


def _query_names(route: Any) -> frozenset[str]:
    found = _QUERY_NAMES.get(id(route))
    if found is None:
        names: set[str] = set()
        pending = [route.dependant]
        while pending:  # the route's own parameters and its dependencies'
            dependant = pending.pop()
            names.update(param.alias for param in dependant.query_params)
            pending.extend(dependant.dependencies)
        found = _QUERY_NAMES[id(route)] = frozenset(names)
    return found


async def known_query_only(request: Request) -> None:
    """400 for an API request with a query parameter its route does not take (a typo such
    as ``interval=day`` for ``period=day`` must not be silently ignored), naming the
    parameters the route takes."""
    route = request.scope.get("route")
    if route is None or not request.url.path.startswith("/api/"):
        return
    allowed = _query_names(route)
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)}; {request.url.path} takes: "
            f"{', '.join(sorted(allowed)) or 'none'}",
        )
