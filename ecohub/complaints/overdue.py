"""Overdue handling as alarms, and closing: a periodic sweep (the housekeeping of
``ecohub serve`` and ``ecohub complaints sweep``) opens a ``complaint_overdue`` alarm for
every deadline of an event past its due date (acceptance, handling, review), closes it
once the step is done, and closes replied events whose review window has passed with no
objection pending. An alarm more than :data:`ESCALATE_AFTER_DAYS` days over turns
``serious`` and names the agency above the handling one, which supervises it (the level
above's supervision of overdue handling); the agency portal lists them for it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from ecohub.alarms.events import Event, Sample, Subject
from ecohub.alarms.lifecycle import apply_samples
from ecohub.alarms.notify import enqueue
from ecohub.alarms.rules import Judgement
from ecohub.alarms.tables import AlarmKind, AlarmStatus, alarms
from ecohub.clock import local_day_start, local_zone, utcnow
from ecohub.complaints.handling import OPEN_STATUSES, close
from ecohub.complaints.queries import deadlines_of
from ecohub.complaints.tables import EventStatus, complaint_agencies, complaint_events
from ecohub.db.engine import write_transaction

ESCALATE_AFTER_DAYS = 15
DAY = dt.timedelta(days=1)


def sweep_overdue_complaints(engine: Engine, now: dt.datetime | None = None) -> list[Event]:
    """Open, escalate and close ``complaint_overdue`` alarms as of ``now``, and close the
    events whose review window has passed; returns the alarm events (queued)."""
    now = now or utcnow()
    today = now.astimezone(local_zone()).date()
    watched = (*OPEN_STATUSES, EventStatus.REPLIED.value, EventStatus.NOT_ACCEPTED.value)
    with write_transaction(engine) as connection:
        rows = connection.execute(
            select(complaint_events).where(complaint_events.c.status.in_(watched))
        ).all()
        parents = dict(
            connection.execute(select(complaint_agencies.c.code, complaint_agencies.c.parent_code))
            .tuples()
            .all()
        )
        unclosed = set(
            connection.execute(
                select(alarms.c.condition_key).where(
                    alarms.c.kind == AlarmKind.COMPLAINT_OVERDUE.value,
                    alarms.c.status != AlarmStatus.CLOSED.value,
                )
            ).scalars()
        )
        due = deadlines_of(connection, rows, today)
        samples, to_close = [], []
        for row in rows:
            if _closable(row, due[row.id], today):
                to_close.append(row.id)
            for deadline in due[row.id]:
                if deadline["window"]:
                    continue
                key = f"complaint_overdue:{row.id}:{deadline['rule']}"
                if not deadline["overdue"] and key not in unclosed:
                    continue
                supervisor = parents.get(row.agency_code) if row.agency_code else None
                samples.append(_sample(row, deadline, key, supervisor, today, now))
        events = apply_samples(connection, samples, now)
        enqueue(connection, events, now)
    for event_id in to_close:
        close(engine, event_id, "system:sweep")
    return events


def _closable(row: Any, deadlines: list[dict[str, Any]], today: dt.date) -> bool:
    """A replied (or refused) event whose every step is done and whose complainants'
    windows to object (复查, 复核) have all passed."""
    if row.status not in (EventStatus.REPLIED.value, EventStatus.NOT_ACCEPTED.value):
        return False
    for deadline in deadlines:
        if deadline["window"] and today <= dt.date.fromisoformat(deadline["due"]):
            return False
        if not deadline["window"] and deadline["done_on"] is None:
            return False
    return True


def _sample(
    row: Any,
    deadline: dict[str, Any],
    key: str,
    supervisor: str | None,
    today: dt.date,
    now: dt.datetime,
) -> Sample:
    due = dt.date.fromisoformat(deadline["due"])
    days_over = (today - due).days
    active = bool(deadline["overdue"])
    escalated = days_over > ESCALATE_AFTER_DAYS
    judgement = Judgement(
        active=active,
        severity="serious" if escalated else "warning",
        evidence={
            "event_id": row.id,
            "title": row.title,
            "rule": deadline["rule"],
            "name_zh": deadline["name_zh"],
            "due": deadline["due"],
            "days_over": days_over,
            "agency": row.agency_code,
            "supervising_agency": supervisor if escalated else None,
            "citation": deadline["citation"],
        },
        summary=f"complaint event {row.id}: {deadline['rule']} due {deadline['due']}, "
        f"{days_over} days over" + (f", supervised by {supervisor}" if escalated else ""),
    )
    at = local_day_start(due + DAY) if active else min(now, local_day_start(today))
    return Sample(
        AlarmKind.COMPLAINT_OVERDUE,
        key,
        at,
        DAY,
        judgement,
        Subject(None, None, None, row.region_code),
    )
