"""Penalty cases (行政处罚案件) in the store: a case opens when a violation is discovered
(by an inspection, an alarm, a complaint), goes through its steps in order — filed,
investigated, notified, decided, executed, closed — each with its date, and may carry an
order to correct with re-inspections (for daily continuous penalties, Art. 59 of the
Environmental Protection Law).

The legal deadlines of each step and the daily-penalty arithmetic are the pure rules of
:mod:`ecohub.supervision.rules` (deadlines as a data table); this module stores the dates
and asks :mod:`ecohub.supervision.deadlines` what is due and what is overdue (with the
State Council's holidays and the case's extensions and suspensions, recorded by
:mod:`ecohub.supervision.case_terms` with the day the decision was served). Every change
is audited. A decided case is published (行政处罚决定公开) by the agency.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from ecohub.alarms.tables import alarms
from ecohub.clock import utcnow
from ecohub.complaints.handling import note_case
from ecohub.complaints.intake import ComplaintError
from ecohub.db.engine import write_transaction
from ecohub.supervision import rules
from ecohub.supervision.deadlines import TimeChanges, deadlines, time_change_list, time_changes
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import SupervisionError, audit, enterprise_id, enterprises
from ecohub.supervision.tables import (
    case_reinspections,
    case_steps,
    cases,
    inspections,
)

STEPS = tuple(CaseStep)


def open_case(
    engine: Engine,
    uscc: str,
    title: str,
    violation: str,
    discovered_on: dt.date,
    actor: str,
    *,
    source_alarm_id: int | None = None,
    source_inspection_id: int | None = None,
    source_complaint_event_id: int | None = None,
) -> int:
    """Open a case at its discovery (from an alarm, a field inspection, a complaint
    event, or none); returns its id. A source must concern the same enterprise; the
    complaint event then names the case and the enterprise (its complainants' reply
    can say so)."""
    if not title.strip() or not violation.strip():
        raise SupervisionError("a case needs a title and the violation found")
    with write_transaction(engine) as connection:
        ident = enterprise_id(connection, uscc)
        for table, key, name in (
            (alarms, source_alarm_id, "alarm"),
            (inspections, source_inspection_id, "inspection"),
        ):
            if key is None:
                continue
            owner = connection.execute(
                select(table.c.enterprise_id).where(table.c.id == key)
            ).first()
            if owner is None or owner.enterprise_id != ident:
                raise SupervisionError(f"{name} {key} is not one of {uscc}'s")
        case_id = int(
            connection.execute(
                insert(cases)
                .values(
                    enterprise_id=ident,
                    title=title[:200],
                    violation=violation,
                    step=CaseStep.DISCOVERED.value,
                    daily_penalty=False,
                    source_alarm_id=source_alarm_id,
                    source_inspection_id=source_inspection_id,
                    created_by=actor,
                    created_at=utcnow(),
                )
                .returning(cases.c.id)
            ).scalar_one()
        )
        if source_complaint_event_id is not None:
            try:
                note_case(connection, source_complaint_event_id, case_id, ident, actor, utcnow())
            except ComplaintError as error:
                raise SupervisionError(str(error)) from None
        connection.execute(
            insert(case_steps).values(
                case_id=case_id,
                step=CaseStep.DISCOVERED.value,
                on_date=discovered_on,
                note=violation[:2000],
                actor=actor,
                recorded_at=utcnow(),
            )
        )
        audit(
            connection,
            actor,
            "create",
            "case",
            str(case_id),
            None,
            {
                "enterprise": uscc,
                "title": title,
                "discovered_on": discovered_on.isoformat(),
                "source_alarm_id": source_alarm_id,
                "source_inspection_id": source_inspection_id,
                "source_complaint_event_id": source_complaint_event_id,
            },
        )
    return case_id


def record_step(
    engine: Engine,
    case_id: int,
    step: str,
    on: dt.date,
    actor: str,
    *,
    note: str | None = None,
    penalty_yuan: Decimal | None = None,
    legal_basis: str | None = None,
) -> dict[str, Any]:
    """Record the next step of a case (steps go in order; a date before the previous
    step's is refused). A decision needs its penalty and legal basis."""
    try:
        wanted = CaseStep(step)
    except ValueError:
        raise SupervisionError(
            f"step {step!r}: expected one of {', '.join(s.value for s in STEPS)}"
        ) from None
    with write_transaction(engine) as connection:
        row = connection.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            raise SupervisionError(f"no case {case_id}")
        current = CaseStep(row.step)
        if STEPS.index(wanted) != STEPS.index(current) + 1:
            raise SupervisionError(
                f"case {case_id} is at {current.value}: the next step is "
                + (STEPS[STEPS.index(current) + 1].value if current != CaseStep.CLOSED else "none")
            )
        previous = connection.execute(
            select(case_steps.c.on_date).where(
                case_steps.c.case_id == case_id, case_steps.c.step == current.value
            )
        ).scalar_one()
        if on < previous:
            raise SupervisionError(
                f"{wanted.value} on {on} is before {current.value} on {previous}"
            )
        changes: dict[str, Any] = {"step": wanted.value}
        if wanted == CaseStep.DECIDED:
            if penalty_yuan is None or penalty_yuan < 0 or not (legal_basis or "").strip():
                raise SupervisionError(
                    "a decision needs the penalty (yuan, ≥ 0) and its legal basis"
                )
            changes |= {"penalty_yuan": penalty_yuan, "legal_basis": legal_basis}
        connection.execute(update(cases).where(cases.c.id == case_id).values(**changes))
        connection.execute(
            insert(case_steps).values(
                case_id=case_id,
                step=wanted.value,
                on_date=on,
                note=note,
                actor=actor,
                recorded_at=utcnow(),
            )
        )
        audit(
            connection,
            actor,
            "update",
            "case",
            str(case_id),
            {"step": current.value},
            {**{k: str(v) for k, v in changes.items()}, "on": on.isoformat()},
        )
    found = get_case(engine, case_id, today=on)
    assert found is not None
    return found


def order_correction(
    engine: Engine,
    case_id: int,
    served_on: dt.date,
    actor: str,
    *,
    violation_kind: str | None = None,
) -> None:
    """Record the service of the order to correct (责令改正违法行为决定书). The case counts
    days for a daily continuous penalty only when its violation is of a kind of 按日连续处罚
    办法 第五条 (``violation_kind``, a key of :data:`rules.DAILY_PENALTY_VIOLATIONS`, given
    here or before). Once re-inspections follow an order, serving another one is refused:
    a violation found again after correction starts a new cycle (第十八条), a new case."""
    kinds = rules.DAILY_PENALTY_VIOLATIONS
    if violation_kind is not None and violation_kind not in kinds:
        raise SupervisionError(
            f"violation_kind {violation_kind!r}: expected one of {', '.join(kinds)} "
            "(按日连续处罚办法 第五条)"
        )
    with write_transaction(engine) as connection:
        before = connection.execute(
            select(cases.c.order_served_on, cases.c.violation_kind).where(cases.c.id == case_id)
        ).first()
        if before is None:
            raise SupervisionError(f"no case {case_id}")
        visited = connection.execute(
            select(case_reinspections.c.on_date)
            .where(case_reinspections.c.case_id == case_id)
            .limit(1)
        ).first()
        if visited is not None and served_on != before.order_served_on:
            raise SupervisionError(
                f"case {case_id}: re-inspections follow the order served on "
                f"{before.order_served_on}; a new order starts a new penalty cycle "
                "(按日连续处罚办法 第十八条): open a new case for it"
            )
        kind = violation_kind or before.violation_kind
        connection.execute(
            update(cases)
            .where(cases.c.id == case_id)
            .values(order_served_on=served_on, violation_kind=kind, daily_penalty=kind in kinds)
        )
        audit(
            connection,
            actor,
            "update",
            "case",
            str(case_id),
            {
                "order_served_on": str(before.order_served_on),
                "violation_kind": before.violation_kind,
            },
            {"order_served_on": served_on.isoformat(), "violation_kind": kind},
        )


def reinspect(
    engine: Engine, case_id: int, on: dt.date, continuing: bool, actor: str, note: str = ""
) -> None:
    """Record a re-inspection after the order to correct: whether the violation goes on.
    One a day: a second visit on the same day is refused (its findings go in the note)."""
    taken = SupervisionError(
        f"case {case_id} already has a re-inspection on {on}: one a day (put a second "
        "visit's findings in that day's note)"
    )
    try:
        with write_transaction(engine) as connection:
            served = connection.execute(
                select(cases.c.order_served_on).where(cases.c.id == case_id)
            ).first()
            if served is None:
                raise SupervisionError(f"no case {case_id}")
            if served.order_served_on is None:
                raise SupervisionError(f"case {case_id}: no order to correct has been served")
            if on <= served.order_served_on:
                raise SupervisionError(
                    f"a re-inspection on {on} must come after the order served on "
                    f"{served.order_served_on}"
                )
            if connection.execute(
                select(case_reinspections.c.on_date).where(
                    case_reinspections.c.case_id == case_id, case_reinspections.c.on_date == on
                )
            ).first():
                raise taken
            connection.execute(
                insert(case_reinspections).values(
                    case_id=case_id, on_date=on, continuing=continuing, note=note, actor=actor
                )
            )
            audit(
                connection,
                actor,
                "create",
                "case_reinspection",
                f"{case_id}/{on.isoformat()}",
                None,
                {"continuing": continuing, "note": note},
            )
    except IntegrityError:  # the same day recorded at the same moment by another request
        raise taken from None


def publish_case(engine: Engine, case_id: int, actor: str) -> None:
    """Publish a decided case's penalty decision."""
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(cases.c.step, cases.c.published_at).where(cases.c.id == case_id)
        ).first()
        if row is None:
            raise SupervisionError(f"no case {case_id}")
        if STEPS.index(CaseStep(row.step)) < STEPS.index(CaseStep.DECIDED):
            raise SupervisionError(f"case {case_id} is not decided yet: nothing to publish")
        if row.published_at is None:
            now = utcnow()
            connection.execute(update(cases).where(cases.c.id == case_id).values(published_at=now))
            audit(
                connection,
                actor,
                "publish",
                "case",
                str(case_id),
                None,
                {"published_at": now.isoformat()},
            )


def _dates(row: Any, steps: Any) -> dict[str, dt.date]:
    dates = {step: on for step, on, *_rest in steps}
    if row.decision_served_on is not None:
        dates["served"] = row.decision_served_on
    return dates


def get_case(engine: Engine, case_id: int, *, today: dt.date) -> dict[str, Any] | None:
    """A case with its steps, deadlines (due and overdue as of ``today``, with the
    approved extensions and suspensions), its re-inspections, the daily penalty they make
    and the surcharge on a fine paid late."""
    with engine.connect() as connection:
        row = connection.execute(
            select(cases, enterprises.c.uscc, enterprises.c.name.label("enterprise"))
            .join(enterprises, enterprises.c.id == cases.c.enterprise_id)
            .where(cases.c.id == case_id)
        ).first()
        if row is None:
            return None
        steps = connection.execute(
            select(
                case_steps.c.step, case_steps.c.on_date, case_steps.c.note, case_steps.c.actor
            ).where(case_steps.c.case_id == case_id)
        ).all()
        visits = connection.execute(
            select(
                case_reinspections.c.on_date,
                case_reinspections.c.continuing,
                case_reinspections.c.note,
            )
            .where(case_reinspections.c.case_id == case_id)
            .order_by(case_reinspections.c.on_date)
        ).all()
        changes = time_changes(connection, [case_id])[case_id]
        terms = time_change_list(connection, case_id)
    document = dict(row._mapping)
    dates = _dates(row, steps)
    fine = Decimal(row.penalty_yuan) if row.penalty_yuan is not None else None
    document["steps"] = [
        {"step": s, "on": on.isoformat(), "note": note, "actor": actor}
        for s, on, note, actor in sorted(steps, key=lambda item: STEPS.index(CaseStep(item[0])))
    ]
    document["deadlines"] = deadlines(dates, today, changes=changes, fine=fine)
    document["time_changes"] = terms
    document["reinspections"] = [
        {"on": on.isoformat(), "continuing": continuing, "note": note}
        for on, continuing, note in visits
    ]
    document["daily_penalty_days"] = 0
    document["daily_penalty_yuan"] = None
    served = row.order_served_on
    counted = [(on, c) for on, c, _n in visits if served is not None and on > served]
    if counted:
        days = rules.penalty_days(served, counted)
        document["daily_penalty_days"] = days
        if fine is not None and row.daily_penalty:
            document["daily_penalty_yuan"] = rules.daily_penalty(fine, days)
    document |= _late_payment(document["deadlines"], dates, fine, today)
    return document


def _late_payment(
    found: list[dict[str, Any]], dates: dict[str, dt.date], fine: Decimal | None, today: dt.date
) -> dict[str, Any]:
    """Days the fine is (or was) paid after the 15 days from service, and the surcharge of
    行政处罚法 第七十二条 on them (:func:`rules.late_payment_surcharge`)."""
    pay = next((d for d in found if d["rule"] == "pay_fine"), None)
    if pay is None or fine is None:
        return {"late_payment_days": 0, "late_payment_surcharge_yuan": None}
    until = dates.get(CaseStep.EXECUTED.value, today)
    late = max(0, (until - dt.date.fromisoformat(pay["due"])).days)
    return {
        "late_payment_days": late,
        "late_payment_surcharge_yuan": rules.late_payment_surcharge(fine, late),
    }


def _case_rows(connection: Connection, query: Any) -> tuple[list[Any], dict[int, Any]]:
    rows = list(connection.execute(query).all())
    ids = [row.id for row in rows]
    dated: dict[int, dict[str, dt.date]] = {case_id: {} for case_id in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for case_id, step, on in connection.execute(
            select(case_steps.c.case_id, case_steps.c.step, case_steps.c.on_date).where(
                case_steps.c.case_id.in_(chunk)
            )
        ).all():
            dated[case_id][step] = on
    for row in rows:
        if row.decision_served_on is not None:
            dated[row.id]["served"] = row.decision_served_on
    changes: dict[int, TimeChanges] = time_changes(connection, ids)
    return rows, {row.id: (dated[row.id], changes[row.id]) for row in rows}


def _listed(today: dt.date, row: Any, dates: Any) -> dict[str, Any]:
    fine = Decimal(row.penalty_yuan) if row.penalty_yuan is not None else None
    found = deadlines(dates[0], today, changes=dates[1], fine=fine)
    document = {k: v for k, v in row._mapping.items() if k != "decision_served_on"}
    return {**document, "overdue": [d for d in found if d["overdue"]]}


def _list_query() -> Any:
    return select(
        cases.c.id,
        cases.c.title,
        cases.c.step,
        cases.c.enterprise_id,
        enterprises.c.uscc,
        enterprises.c.name.label("enterprise"),
        enterprises.c.longitude,
        enterprises.c.latitude,
        cases.c.penalty_yuan,
        cases.c.published_at,
        cases.c.decision_served_on,
    ).join(enterprises, enterprises.c.id == cases.c.enterprise_id)


def list_cases(
    engine: Engine,
    *,
    today: dt.date,
    enterprise_id: int | None = None,
    overdue_only: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Cases, newest first, each with its current step and overdue deadlines as of
    ``today`` (an enterprise's own when ``enterprise_id`` is given)."""
    query = _list_query().order_by(cases.c.id.desc())
    if enterprise_id is not None:
        query = query.where(cases.c.enterprise_id == enterprise_id)
    if overdue_only:  # a closed case has nothing overdue
        query = query.where(cases.c.step != CaseStep.CLOSED.value)
    found = []
    with engine.connect() as connection:
        rows, dated = _case_rows(connection, query)
    for row in rows:
        listed = _listed(today, row, dated[row.id])
        if overdue_only and not listed["overdue"]:
            continue
        found.append(listed)
        if len(found) >= limit:
            break
    return found


def open_cases(engine: Engine, *, today: dt.date) -> list[dict[str, Any]]:
    """Every open (not closed) case, read directly: the overdue ones first, the longest
    overdue (earliest due date) first, then the others oldest first."""
    query = _list_query().where(cases.c.step != CaseStep.CLOSED.value).order_by(cases.c.id)
    with engine.connect() as connection:
        rows, dated = _case_rows(connection, query)
    found = [_listed(today, row, dated[row.id]) for row in rows]
    found.sort(key=lambda c: (min((d["due"] for d in c["overdue"]), default="9999"), c["id"]))
    return found


def published_decisions(engine: Engine, limit: int = 500) -> list[dict[str, Any]]:
    """Published penalty decisions: the enterprise, the violation, the legal basis, the
    penalty and the date decided (no inspector, no complainant)."""
    query = (
        select(
            cases.c.id,
            enterprises.c.uscc,
            enterprises.c.name.label("enterprise"),
            cases.c.title,
            cases.c.violation,
            cases.c.legal_basis,
            cases.c.penalty_yuan,
            case_steps.c.on_date.label("decided_on"),
            cases.c.published_at,
        )
        .join(enterprises, enterprises.c.id == cases.c.enterprise_id)
        .join(
            case_steps,
            (case_steps.c.case_id == cases.c.id) & (case_steps.c.step == CaseStep.DECIDED.value),
        )
        .where(cases.c.published_at.is_not(None))
        .order_by(cases.c.published_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query).all()]
