"""What changes a penalty case's periods, recorded and audited: the day its penalty
decision was served (行政处罚法 第六十一条: the agency's duty within 7 working days when
the party was absent; it starts the party's 15 days to pay, 第六十七条, after which the
surcharge of 第七十二条 runs), approved extensions (生态环境行政处罚办法 第五十七条: 90 days
to decide, extended by 30 and again by at most 30 with approval; 第十八条: 15 days to file,
extended by at most 15) and suspensions (中止: days the clock stood still). The deadlines
as they stand: :mod:`ecohub.supervision.deadlines`."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine

from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction
from ecohub.supervision import rules
from ecohub.supervision.deadlines import deadlines, time_changes
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import SupervisionError, audit
from ecohub.supervision.tables import case_steps, case_time_changes, cases

STEPS = tuple(CaseStep)
TimeKind = Literal["extension", "suspension"]


def _case(connection: Connection, case_id: int) -> Any:
    row = connection.execute(
        select(cases.c.step, cases.c.decision_served_on, cases.c.penalty_yuan).where(
            cases.c.id == case_id
        )
    ).first()
    if row is None:
        raise SupervisionError(f"no case {case_id}")
    return row


def _dates(connection: Connection, case_id: int, served: dt.date | None) -> dict[str, dt.date]:
    dates = {
        step: on
        for step, on in connection.execute(
            select(case_steps.c.step, case_steps.c.on_date).where(case_steps.c.case_id == case_id)
        ).all()
    }
    if served is not None:
        dates["served"] = served
    return dates


def serve_decision(engine: Engine, case_id: int, served_on: dt.date, actor: str) -> None:
    """Record the day the penalty decision was served on the party (送达; the day it was
    handed over when the party was present). Not before the decision; recording the same
    day again changes nothing, another day is refused once recorded."""
    with write_transaction(engine) as connection:
        row = _case(connection, case_id)
        if STEPS.index(CaseStep(row.step)) < STEPS.index(CaseStep.DECIDED):
            raise SupervisionError(f"case {case_id} is not decided yet: no decision to serve")
        decided = _dates(connection, case_id, None)[CaseStep.DECIDED.value]
        if served_on < decided:
            raise SupervisionError(
                f"decision_served_on {served_on} is before the decision of {decided}"
            )
        if row.decision_served_on is not None:
            if row.decision_served_on == served_on:
                return
            raise SupervisionError(
                f"case {case_id}: the decision was served on {row.decision_served_on}, "
                "already recorded"
            )
        connection.execute(
            update(cases).where(cases.c.id == case_id).values(decision_served_on=served_on)
        )
        audit(
            connection,
            actor,
            "update",
            "case",
            str(case_id),
            {"decision_served_on": None},
            {"decision_served_on": served_on.isoformat()},
        )


def change_time(
    engine: Engine,
    case_id: int,
    kind: str,
    rule: str,
    days: int,
    on: dt.date,
    reason: str,
    actor: str,
) -> dict[str, Any]:
    """Record an approved extension (``on``: the day it was approved, on or before the
    deadline it extends; all extensions of a rule together at most the rule's
    ``extension_days``) or a suspension (中止, ``on``: its first day) of ``rule``'s period;
    returns the deadline as it now stands. The step must not be done yet, and a party's
    window (to ask for a hearing) is not the agency's to change."""
    table = rules.case_deadlines()
    if kind not in ("extension", "suspension"):
        raise SupervisionError(f"kind {kind!r}: expected extension or suspension")
    if rule not in table:
        raise SupervisionError(f"rule {rule!r}: expected one of {', '.join(table)}")
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 366:
        raise SupervisionError(f"days {days!r}: a whole number of days from 1 to 366")
    if not reason.strip():
        raise SupervisionError(f"an {kind} needs its reason (and who approved it)")
    with write_transaction(engine) as connection:
        row = _case(connection, case_id)
        changes = time_changes(connection, [case_id])[case_id]
        fine = row.penalty_yuan
        current = {
            d["rule"]: d
            for d in deadlines(
                _dates(connection, case_id, row.decision_served_on), on, changes=changes, fine=fine
            )
        }
        _check_change(case_id, kind, table[rule], current.get(rule), changes, days, on)
        connection.execute(
            insert(case_time_changes).values(
                case_id=case_id,
                rule=rule,
                kind=kind,
                days=days,
                on_date=on,
                reason=reason[:2000],
                actor=actor,
                recorded_at=utcnow(),
            )
        )
        audit(
            connection,
            actor,
            "create",
            "case_time_change",
            str(case_id),
            None,
            {"rule": rule, "kind": kind, "days": days, "on": on.isoformat(), "reason": reason},
        )
        changes = time_changes(connection, [case_id])[case_id]
        dates = _dates(connection, case_id, row.decision_served_on)
    return next(d for d in deadlines(dates, on, changes=changes, fine=fine) if d["rule"] == rule)


def _check_change(
    case_id: int,
    kind: str,
    rule: rules.CaseDeadline,
    current: dict[str, Any] | None,
    changes: dict[str, tuple[int, int]],
    days: int,
    on: dt.date,
) -> None:
    if current is None:
        raise SupervisionError(f"case {case_id}: the clock of {rule.rule} has not started")
    if current["window"]:
        raise SupervisionError(f"{rule.rule} is the party's window, not the agency's period")
    if current["done_on"] is not None:
        raise SupervisionError(
            f"case {case_id}: {rule.rule} was done on {current['done_on']}, nothing to change"
        )
    if kind == "extension":
        granted = changes.get(rule.rule, (0, 0))[0]
        if granted + days > rule.extension_days:
            raise SupervisionError(
                f"{rule.rule}: {granted} days already granted, {days} more exceed the "
                f"{rule.extension_days} days the rules allow ({rule.citation})"
            )
        if on > dt.date.fromisoformat(current["due"]):
            raise SupervisionError(
                f"an extension approved on {on} comes after the deadline of {current['due']}"
            )
