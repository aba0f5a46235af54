"""The deadlines of a penalty case as they stand: the rules' periods
(:mod:`ecohub.supervision.rules`, ``data/case_deadlines.csv``) counted with the State
Council's holidays and make-up working days (:mod:`ecohub.standards.holidays`) and the
case's approved extensions and suspensions (``case_time_changes``: 生态环境行政处罚办法
第五十七条, 第十八条; 中止), shared by the case reads, the dashboard and the overdue sweep."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from ecohub.standards import holidays
from ecohub.standards.holidays import Calendar
from ecohub.supervision import rules
from ecohub.supervision.tables import case_time_changes

# Deadlines that are the agency's own duty although counted from their own step: done
# when the event named here is recorded (行政处罚法 第六十一条: the decision is served
# within 7 days when the party was absent; the date of service is ``served``).
DONE_BY_EVENT: dict[str, str] = {"serve_decision": "served"}
# Time changes by rule key: (approved extension days, suspended days).
TimeChanges = dict[str, tuple[int, int]]


def deadlines(
    dates: dict[str, dt.date],
    today: dt.date,
    *,
    changes: TimeChanges | None = None,
    fine: Decimal | None = None,
    calendar: Calendar | None = None,
) -> list[dict[str, Any]]:
    """Every deadline whose clock has started (the packaged table), counted with the
    State Council's holidays and make-up working days (:mod:`ecohub.standards.holidays`) and the
    case's approved extensions and suspensions (``changes``): due date, the date its
    step was done, whether it is overdue (not done and ``today`` past the due date) and
    whether it was done late. ``dates`` maps the steps and ``served`` (the day the
    decision was served) to their dates. A rule counted from its own step is the party's
    window (to ask for a hearing): shown, never overdue for the agency — except the
    serving of the decision, the agency's own duty, done when ``served`` is recorded.
    Paying the fine is shown only for a fine above zero (``fine``)."""
    table = rules.case_deadlines()
    days = calendar or holidays.packaged()
    out = []
    for key, rule in table.items():
        start = dates.get(rule.counted_from)
        if start is None or (key == "pay_fine" and not (fine and fine > 0)):
            continue
        extension, suspended = (changes or {}).get(key, (0, 0))
        due = rules.due_date(
            rule,
            start,
            extension_days=min(max(extension, 0), rule.extension_days),
            suspended_days=max(suspended, 0),
            holidays=days.holidays,
            workdays=days.workdays,
        )
        window = rule.step == rule.counted_from and key not in DONE_BY_EVENT
        done = None if window else dates.get(DONE_BY_EVENT.get(key, rule.step))
        out.append(
            {
                "rule": key,
                "name_zh": rule.name_zh,
                "step": rule.step,
                "due": due.isoformat(),
                "done_on": done.isoformat() if done else None,
                "window": window,
                "overdue": not window and done is None and today > due,
                "late": done is not None and done > due,
                "extension_days": extension,
                "suspended_days": suspended,
                "citation": rule.citation,
            }
        )
    out.sort(key=lambda item: (item["due"], item["rule"]))
    return out


def time_changes(connection: Connection, case_ids: list[int]) -> dict[int, TimeChanges]:
    """Each case's approved extensions and suspensions, summed by rule."""
    found: dict[int, TimeChanges] = {case_id: {} for case_id in case_ids}
    if not case_ids:
        return found
    query = select(
        case_time_changes.c.case_id,
        case_time_changes.c.rule,
        case_time_changes.c.kind,
        case_time_changes.c.days,
    )
    if len(case_ids) <= 500:  # else every row, fewer than the cases (no long IN list)
        query = query.where(case_time_changes.c.case_id.in_(case_ids))
    for case_id, rule, kind, days in connection.execute(query).all():
        if case_id not in found:
            continue
        extension, suspended = found[case_id].get(rule, (0, 0))
        if kind == "extension":
            extension += int(days)
        else:
            suspended += int(days)
        found[case_id][rule] = (extension, suspended)
    return found


def time_change_list(connection: Connection, case_id: int) -> list[dict[str, Any]]:
    """A case's extensions and suspensions as recorded, oldest first."""
    rows = connection.execute(
        select(
            case_time_changes.c.rule,
            case_time_changes.c.kind,
            case_time_changes.c.days,
            case_time_changes.c.on_date,
            case_time_changes.c.reason,
            case_time_changes.c.actor,
        )
        .where(case_time_changes.c.case_id == case_id)
        .order_by(case_time_changes.c.id)
    ).all()
    return [{**row._mapping, "on_date": row.on_date.isoformat()} for row in rows]
