"""What the agency, the complainant and the public read of complaints: the events of an
agency with their deadlines, one event with its complaints (contact details decrypted
only for the handling agency's staff), the complainant's self-query (ticket and code:
the progress, the reply, nothing else) and the public statistics (counts by region,
medium and month, handling times, and a density grid coarse enough to identify no one).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ecohub.clock import local_zone, utcnow
from ecohub.complaints.handling import OPEN_STATUSES, handler_agency
from ecohub.complaints.rules import Deadline, Step, event_deadlines
from ecohub.complaints.secrets import Keyring
from ecohub.complaints.tables import (
    EventStatus,
    complaint_agencies,
    complaint_events,
    complaint_handlers,
    complaint_photos,
    complaint_steps,
    complaints,
)
from ecohub.registry.models import Region

# Public density cells: 0.02° (about 2 km) and only cells with at least this many
# complaints, so that no cell points at one household.
DENSITY_CELL_DEG = 0.02
DENSITY_MIN_COUNT = 3


def _day(moment: dt.datetime | None) -> dt.date | None:
    return moment.astimezone(local_zone()).date() if moment is not None else None


def event_dates(event: Any, steps: list[Any]) -> dict[str, dt.date | None]:
    """The dates (Beijing) that start and stop an event's clocks."""
    refused = next((s.at for s in steps if s.step == Step.NOT_ACCEPTED.value), None)
    review_reply = None
    if event.review_requested_at is not None:
        review_reply = next(
            (
                s.at
                for s in steps
                if s.step == Step.REPLIED.value
                and s.note == "review"
                and s.at >= event.review_requested_at
            ),
            None,
        )
    return {
        "received": _day(event.received_at),
        "accepted": _day(event.accepted_at),
        "not_accepted": _day(refused),
        "replied": _day(event.replied_at),
        "review_requested": _day(event.review_requested_at),
        "review_replied": _day(review_reply),
    }


def _steps_by_event(connection: Connection, ids: list[int]) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = defaultdict(list)
    for start in range(0, len(ids), 1000):
        rows = connection.execute(
            select(complaint_steps)
            .where(
                complaint_steps.c.event_id.in_(ids[start : start + 1000]),
                complaint_steps.c.step != Step.RECEIVED.value,
            )
            .order_by(complaint_steps.c.at, complaint_steps.c.id)
        ).all()
        for row in rows:
            found[row.event_id].append(row)
    return found


def deadlines_of(
    connection: Connection,
    events: Sequence[Any],
    today: dt.date,
    table: Mapping[str, Deadline] | None = None,
) -> dict[int, list[dict[str, Any]]]:
    steps = _steps_by_event(connection, [event.id for event in events])
    return {
        event.id: event_deadlines(
            event_dates(event, steps.get(event.id, [])), today, event.extension_days, table
        )
        for event in events
    }


def _event_summary(event: Any, deadlines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": event.id,
        "title": event.title,
        "medium": event.medium,
        "status": event.status,
        "region_code": event.region_code,
        "agency_code": event.agency_code,
        "complaint_count": event.complaint_count,
        "received_at": event.received_at,
        "longitude": event.longitude,
        "latitude": event.latitude,
        "deadlines": deadlines,
        "overdue": any(item["overdue"] for item in deadlines),
    }


def list_events(
    engine: Engine,
    agencies: list[str] | None = None,
    status: str | None = None,
    overdue_only: bool = False,
    limit: int = 200,
    today: dt.date | None = None,
) -> list[dict[str, Any]]:
    """Events (newest first) of the given agencies (None: all), with their deadlines."""
    today = today or utcnow().astimezone(local_zone()).date()
    query = select(complaint_events).order_by(complaint_events.c.received_at.desc())
    if agencies is not None:
        query = query.where(complaint_events.c.agency_code.in_(agencies))
    if status:
        query = query.where(complaint_events.c.status == status)
    elif overdue_only:
        query = query.where(
            complaint_events.c.status.in_((*OPEN_STATUSES, EventStatus.REPLIED.value))
        )
    with engine.connect() as connection:
        rows = connection.execute(query.limit(limit if not overdue_only else None)).all()
        due = deadlines_of(connection, rows, today)
    out = [_event_summary(row, due[row.id]) for row in rows]
    if overdue_only:
        out = [item for item in out if item["overdue"]][:limit]
    return out


def agencies(engine: Engine) -> list[dict[str, Any]]:
    """The handling agencies with their staff counts."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(complaint_agencies).order_by(complaint_agencies.c.code)
        ).all()
        staff = Counter(
            connection.execute(select(complaint_handlers.c.agency_code)).scalars().all()
        )
    return [
        {
            "code": row.code,
            "name": row.name,
            "region_code": row.region_code,
            "parent_code": row.parent_code,
            "media": list(row.media),
            "active": row.active,
            "staff": staff.get(row.code, 0),
        }
        for row in rows
    ]


def supervised_agencies(engine: Engine, code: str) -> list[str]:
    """``code`` and every agency below it (the level above supervises their handling)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(complaint_agencies.c.code, complaint_agencies.c.parent_code)
        ).all()
    children: dict[str | None, list[str]] = defaultdict(list)
    for row in rows:
        children[row.parent_code].append(row.code)
    found, stack = [], [code]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def get_event(
    engine: Engine, event_id: int, viewer: str | None, keys: Keyring | None
) -> dict[str, Any] | None:
    """One event with its complaints and steps. Contact details are decrypted only when
    ``viewer`` (an account) is staff of the event's handling agency."""
    today = utcnow().astimezone(local_zone()).date()
    with engine.connect() as connection:
        event = connection.execute(
            select(complaint_events).where(complaint_events.c.id == event_id)
        ).first()
        if event is None:
            return None
        steps = connection.execute(
            select(complaint_steps)
            .where(complaint_steps.c.event_id == event_id)
            .order_by(complaint_steps.c.at, complaint_steps.c.id)
        ).all()
        members = connection.execute(
            select(complaints).where(complaints.c.event_id == event_id).order_by(complaints.c.id)
        ).all()
        photos = connection.execute(
            select(complaint_photos).where(
                complaint_photos.c.complaint_id.in_([row.id for row in members])
            )
        ).all()
        handling = viewer is not None and handler_agency(connection, viewer) == event.agency_code
    dates = event_dates(event, [s for s in steps if s.step != Step.RECEIVED.value])
    found = _event_summary(event, event_deadlines(dates, today, event.extension_days))
    found.update(
        findings=event.findings,
        reply=event.reply,
        case_id=event.case_id,
        enterprise_id=event.enterprise_id,
        extension_days=event.extension_days,
        accepted_at=event.accepted_at,
        replied_at=event.replied_at,
        review_requested_at=event.review_requested_at,
        contacts_visible=handling,
        steps=[
            {
                "step": s.step,
                "at": s.at,
                "actor": s.actor,
                "agency_code": s.agency_code,
                "to_agency_code": s.to_agency_code,
                "days": s.days,
                "note": s.note,
                "complaint_id": s.complaint_id,
            }
            for s in steps
        ],
        complaints=[_member(row, handling, keys, photos) for row in members],
    )
    return found


def _member(
    row: Any, handling: bool, keys: Keyring | None, photos: Sequence[Any]
) -> dict[str, Any]:
    contact = None
    if handling and row.contact_cipher and keys is not None:
        contact = keys.decrypt(row.contact_cipher)
    return {
        "id": row.id,
        "ticket": row.ticket,
        "channel": row.channel,
        "medium": row.medium,
        "text": row.text,
        "address": row.address,
        "longitude": row.longitude,
        "latitude": row.latitude,
        "observed_at": row.observed_at,
        "received_at": row.received_at,
        "anonymous": row.anonymous,
        "has_contact": row.contact_cipher is not None,
        "contact": contact,
        "linked_to": row.linked_to,
        "link_score": row.link_score,
        "link_distance_m": row.link_distance_m,
        "link_hours": row.link_hours,
        "satisfaction": row.satisfaction,
        "objection": row.objection,
        "photos": [
            {"sha256": p.sha256, "content_type": p.content_type, "size": p.size}
            for p in photos
            if p.complaint_id == row.id
        ],
    }


def self_query(engine: Engine, keys: Keyring, ticket: str, code: str) -> dict[str, Any] | None:
    """What the complainant sees with the right ticket and code (None otherwise): the
    progress, the deadlines, the reply; nothing of other complainants."""
    with engine.connect() as connection:
        row = connection.execute(
            select(complaints).where(complaints.c.ticket == ticket.strip())
        ).first()
        if row is None or not keys.code_matches(row.ticket, code, row.code_digest):
            return None
        event = connection.execute(
            select(complaint_events).where(complaint_events.c.id == row.event_id)
        ).one()
        steps = connection.execute(
            select(complaint_steps.c.step, complaint_steps.c.at, complaint_steps.c.complaint_id)
            .where(complaint_steps.c.event_id == event.id)
            .order_by(complaint_steps.c.at, complaint_steps.c.id)
        ).all()
        agency = connection.execute(
            select(complaint_agencies.c.name).where(complaint_agencies.c.code == event.agency_code)
        ).scalar()
        full = deadlines_of(connection, [event], utcnow().astimezone(local_zone()).date())
    public_steps = {Step.ACCEPTED, Step.NOT_ACCEPTED, Step.TRANSFERRED, Step.EXTENDED}
    public_steps |= {Step.REPLIED, Step.REOPENED, Step.DISMISSED, Step.CLOSED}
    return {
        "ticket": row.ticket,
        "medium": row.medium,
        "text": row.text,
        "address": row.address,
        "received_at": row.received_at,
        "status": event.status,
        "agency": agency,
        "linked_count": event.complaint_count,
        "reply": event.reply,
        "replied_at": event.replied_at,
        "satisfaction": row.satisfaction,
        "objection": row.objection,
        "deadlines": full[event.id],
        "progress": [
            {"step": s.step, "at": s.at}
            for s in steps
            if s.step in public_steps or (s.complaint_id == row.id)
        ],
    }


def statistics_of(engine: Engine, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """Public statistics of complaints received in [start, end): by region (city), medium
    and month (Beijing), the handling time (days from receipt to reply, median and 90th
    percentile per medium), satisfaction, and the density grid."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                complaints.c.region_code,
                complaints.c.medium,
                complaints.c.received_at,
                complaints.c.longitude,
                complaints.c.latitude,
                complaints.c.satisfaction,
                complaint_events.c.replied_at,
            )
            .join(complaint_events, complaint_events.c.id == complaints.c.event_id)
            .where(complaints.c.received_at >= start, complaints.c.received_at < end)
        ).all()
        names = dict(connection.execute(select(Region.code, Region.name)).tuples().all())
        events = connection.execute(
            select(func.count())
            .select_from(complaint_events)
            .where(complaint_events.c.received_at >= start, complaint_events.c.received_at < end)
        ).scalar_one()
    zone = local_zone()
    by_region: Counter[str] = Counter()
    by_medium: Counter[str] = Counter()
    by_month: Counter[str] = Counter()
    cells: Counter[tuple[int, int]] = Counter()
    satisfaction: Counter[str] = Counter()
    days: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_region[row.region_code or ""] += 1
        by_medium[row.medium] += 1
        by_month[row.received_at.astimezone(zone).strftime("%Y-%m")] += 1
        cells[(int(row.longitude // DENSITY_CELL_DEG), int(row.latitude // DENSITY_CELL_DEG))] += 1
        if row.satisfaction:
            satisfaction[row.satisfaction] += 1
        if row.replied_at is not None:
            days[row.medium].append((row.replied_at - row.received_at).total_seconds() / 86400)
    return {
        "complaints": len(rows),
        "events": events,
        "by_region": [
            {"region_code": code, "name": names.get(code, ""), "count": count}
            for code, count in by_region.most_common()
        ],
        "by_medium": dict(by_medium.most_common()),
        "by_month": dict(sorted(by_month.items())),
        "handling_days": {
            medium: {
                "replied": len(values),
                "median": round(statistics.median(values), 1),
                "p90": round(sorted(values)[int(0.9 * (len(values) - 1))], 1),
            }
            for medium, values in sorted(days.items())
        },
        "satisfaction": dict(satisfaction),
        "density": {
            "cell_deg": DENSITY_CELL_DEG,
            "min_count": DENSITY_MIN_COUNT,
            "cells": [
                {
                    "longitude": round((x + 0.5) * DENSITY_CELL_DEG, 3),
                    "latitude": round((y + 0.5) * DENSITY_CELL_DEG, 3),
                    "count": count,
                }
                for (x, y), count in sorted(cells.items())
                if count >= DENSITY_MIN_COUNT
            ],
        },
    }
