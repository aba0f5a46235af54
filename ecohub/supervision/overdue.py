"""Overdue case steps as alarms: a periodic sweep (the housekeeping of ``ecohub serve``
and ``ecohub supervision sweep``) opens a ``case_overdue`` alarm for every step of an
open case past its legal deadline (:func:`ecohub.supervision.deadlines.deadlines`: counted
with the State Council's holidays and make-up working days and the case's approved
extensions and suspensions, so an extended case raises nothing before its new date), and
closes it once the step is recorded or the case closed; the alarm system notifies and
keeps its history like any other alarm. An overdue step more than
:data:`ESCALATE_AFTER_DAYS` days past its deadline turns ``serious``: the level above
supervises it (the agency's supervision of overdue handling).
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
from ecohub.db.engine import write_transaction
from ecohub.supervision.deadlines import deadlines, time_changes
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import enterprises
from ecohub.supervision.tables import case_steps, cases

ESCALATE_AFTER_DAYS = 30
DAY = dt.timedelta(days=1)


def sweep_overdue_cases(engine: Engine, now: dt.datetime | None = None) -> list[Event]:
    """Open, escalate and close ``case_overdue`` alarms as of ``now``; returns the events
    (queued for notification)."""
    now = now or utcnow()
    today = now.astimezone(local_zone()).date()
    with write_transaction(engine) as connection:
        rows = connection.execute(
            select(
                cases.c.id,
                cases.c.title,
                cases.c.step,
                cases.c.enterprise_id,
                enterprises.c.region_code,
                cases.c.penalty_yuan,
                cases.c.decision_served_on,
            ).join(enterprises, enterprises.c.id == cases.c.enterprise_id)
        ).all()
        dated: dict[int, dict[str, dt.date]] = {row.id: {} for row in rows}
        for case_id, step, on in connection.execute(
            select(case_steps.c.case_id, case_steps.c.step, case_steps.c.on_date)
        ).all():
            if case_id in dated:
                dated[case_id][step] = on
        for row in rows:
            if row.decision_served_on is not None:
                dated[row.id]["served"] = row.decision_served_on
        changes = time_changes(connection, list(dated))
        unclosed = set(
            connection.execute(
                select(alarms.c.condition_key).where(
                    alarms.c.kind == AlarmKind.CASE_OVERDUE.value,
                    alarms.c.status != AlarmStatus.CLOSED.value,
                )
            ).scalars()
        )
        samples = []
        for row in rows:
            closed = row.step == CaseStep.CLOSED.value
            found = deadlines(dated[row.id], today, changes=changes[row.id], fine=row.penalty_yuan)
            for deadline in found:
                if deadline["window"]:
                    continue
                key = f"case_overdue:{row.id}:{deadline['rule']}"
                active = not closed and deadline["overdue"]
                if not active and key not in unclosed:
                    continue
                samples.append(_sample(row, deadline, key, active, today, now))
        events = apply_samples(connection, samples, now)
        enqueue(connection, events, now)
    return events


def _sample(
    row: Any, deadline: dict[str, Any], key: str, active: bool, today: dt.date, now: dt.datetime
) -> Sample:
    due = dt.date.fromisoformat(str(deadline["due"]))
    days_over = (today - due).days
    judgement = Judgement(
        active=active,
        severity="serious" if days_over > ESCALATE_AFTER_DAYS else "warning",
        evidence={
            "case_id": row.id,
            "title": row.title,
            "rule": deadline["rule"],
            "step": deadline["step"],
            "name_zh": deadline["name_zh"],
            "due": deadline["due"],
            "days_over": days_over,
            "citation": deadline["citation"],
        },
        summary=f"case {row.id}: {deadline['step']} due {deadline['due']}, {days_over} days over",
    )
    # The condition holds from the day after the due date; a sample a day.
    at = local_day_start(due + DAY) if active else min(now, local_day_start(today))
    return Sample(
        AlarmKind.CASE_OVERDUE,
        key,
        at,
        DAY,
        judgement,
        Subject(None, None, row.enterprise_id, row.region_code),
    )
