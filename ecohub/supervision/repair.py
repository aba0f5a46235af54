"""Credit repair (信用修复): an enterprise rated yellow (环保警示) or red (环保不良) that has
rectified may, within the window after its grade was published, ask to have it repaired;
the agency grants (the grade raised by the table's ``levels_up`` once the public notice of
``notice_days`` has ended — until then the published grade stands and the repair shows as
pending; the repair noted in the rating's explanation) or refuses, with reasons. The
grade in effect is read by :func:`ecohub.supervision.credit.current_grade`.

The rules are a data table (``data/credit_repair.csv``; the national 办法 leaves repair
to the provinces: the packaged values follow Guangdong, 粤环函〔2015〕947号 as applied by
Guangzhou, 穗环〔2019〕131号). What the platform checks itself is the rectification: a
request needs a re-inspection of one of the enterprise's cases that found the violation
corrected (``continuing`` false) after the grade was published — the agency's own finding
on site, linked as the evidence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine, insert, select, update

from ecohub.clock import local_zone, utcnow
from ecohub.db.engine import write_transaction
from ecohub.supervision.credit import InputError, current_grade
from ecohub.supervision.rules import GRADE_ORDER
from ecohub.supervision.service import SupervisionError, audit, enterprises
from ecohub.supervision.tables import (
    RatingStatus,
    case_reinspections,
    cases,
    credit_ratings,
    credit_repairs,
)


@dataclass(frozen=True)
class RepairRules:
    window_days: int
    grades: tuple[str, ...]
    levels_up: int
    notice_days: int
    citation: str


def repair_rules() -> RepairRules:
    """The packaged table (``data/credit_repair.csv``)."""
    text = files("ecohub.supervision").joinpath("data/credit_repair.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    values = {row["key"]: row["value"] for row in rows}
    return RepairRules(
        int(values["window_days"]),
        tuple(values["grades"].split()),
        int(values["levels_up"]),
        int(values["notice_days"]),
        values["citation"],
    )


def repaired_grade(grade: str, rules: RepairRules) -> str:
    """The grade after a repair: ``levels_up`` better (GRADE_ORDER is best first), never
    above blue (环保诚信 is earned by a year's record, not by a repair)."""
    index = GRADE_ORDER.index(grade)
    return GRADE_ORDER[max(1, index - rules.levels_up)]


def _rating(connection: Any, uscc: str, year: int) -> Any:
    row = connection.execute(
        select(credit_ratings, enterprises.c.id.label("ident"))
        .join(enterprises, enterprises.c.id == credit_ratings.c.enterprise_id)
        .where(enterprises.c.uscc == uscc, credit_ratings.c.year == year)
    ).first()
    if row is None:
        raise SupervisionError(f"no rating of {uscc} for {year}")
    return row


def _corrections(connection: Any, row: Any) -> list[dict[str, Any]]:
    """The re-inspections since the grade was published that found a violation of the
    enterprise corrected (the request's evidence); refused when there is none."""
    published_on = row.published_at.astimezone(local_zone()).date()
    corrected = connection.execute(
        select(cases.c.id, case_reinspections.c.on_date)
        .join(case_reinspections, case_reinspections.c.case_id == cases.c.id)
        .where(
            cases.c.enterprise_id == row.ident,
            case_reinspections.c.continuing.is_(False),
            case_reinspections.c.on_date >= published_on,
        )
    ).all()
    if not corrected:
        raise SupervisionError(
            f"no re-inspection since the grade was published ({published_on}) found a "
            "violation of this enterprise corrected: rectification comes first"
        )
    return [{"case_id": case_id, "reinspected_on": on.isoformat()} for case_id, on in corrected]


def request_repair(
    engine: Engine, uscc: str, year: int, reason: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The enterprise's request; refused with the reason when the grade is not one the
    table repairs, not published, past the window, already asked for, or no re-inspection
    after publication found the violation corrected."""
    now = now or utcnow()
    table = repair_rules()
    if not reason.strip():
        raise InputError(
            "text", "a repair request needs the enterprise's account of its rectification"
        )
    with write_transaction(engine) as connection:
        row = _rating(connection, uscc, year)
        if row.status != RatingStatus.PUBLISHED.value or row.published_at is None:
            raise SupervisionError(f"the rating of {uscc} for {year} is not published")
        current = current_grade(row.grade, row.explanation, now)
        if current["pending_repair"] is not None:
            raise SupervisionError(
                f"a granted repair of {uscc} {year} is in its public notice until "
                f"{current['pending_repair']['notice_until']}"
            )
        grade = current["grade"]
        if grade not in table.grades:
            raise SupervisionError(f"a {grade} grade is not repaired ({table.citation})")
        deadline = row.published_at + dt.timedelta(days=table.window_days)
        if now > deadline:
            raise SupervisionError(
                f"the repair window closed on {deadline.astimezone(local_zone()).date()} "
                f"({table.window_days} days after publication; {table.citation})"
            )
        if (
            connection.execute(
                select(credit_repairs.c.id).where(
                    credit_repairs.c.enterprise_id == row.ident,
                    credit_repairs.c.year == year,
                    credit_repairs.c.status == "requested",
                )
            ).first()
            is not None
        ):
            raise SupervisionError(f"a repair of {uscc} {year} is already requested")
        evidence = _corrections(connection, row)
        repair_id = int(
            connection.execute(
                insert(credit_repairs)
                .values(
                    enterprise_id=row.ident,
                    year=year,
                    status="requested",
                    from_grade=grade,
                    reason=reason,
                    evidence=evidence,
                    requested_by=actor,
                    requested_at=now,
                )
                .returning(credit_repairs.c.id)
            ).scalar_one()
        )
        audit(
            connection,
            actor,
            "request",
            "credit_repair",
            str(repair_id),
            None,
            {"enterprise": uscc, "year": year, "grade": grade},
        )
    return {"id": repair_id, "status": "requested", "from_grade": grade, "evidence": evidence}


def decide_repair(
    engine: Engine,
    uscc: str,
    year: int,
    grant: bool,
    decision: str,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The agency grants or refuses the open request; a granted repair is noted in the
    rating's explanation with its public notice, and raises the published grade when the
    notice ends (``effective_at``), not before."""
    now = now or utcnow()
    table = repair_rules()
    if not decision.strip():
        raise InputError("text", "a repair decision needs its reasons")
    with write_transaction(engine) as connection:
        row = _rating(connection, uscc, year)
        request = connection.execute(
            select(credit_repairs).where(
                credit_repairs.c.enterprise_id == row.ident,
                credit_repairs.c.year == year,
                credit_repairs.c.status == "requested",
            )
        ).first()
        if request is None:
            raise SupervisionError(f"no open repair request of {uscc} for {year}")
        grade = current_grade(row.grade, row.explanation, now)["grade"]
        to_grade = repaired_grade(grade, table) if grant else None
        connection.execute(
            update(credit_repairs)
            .where(credit_repairs.c.id == request.id)
            .values(
                status="granted" if grant else "refused",
                to_grade=to_grade,
                decision=decision,
                decided_by=actor,
                decided_at=now,
            )
        )
        effective_at = now + dt.timedelta(days=table.notice_days) if grant else None
        if to_grade is not None and effective_at is not None:
            noted = {
                "from": grade,
                "to": to_grade,
                "decided_at": now.isoformat(),
                "notice_until": effective_at.astimezone(local_zone()).date().isoformat(),
                "effective_at": effective_at.isoformat(),
                "decision": decision,
                "evidence": request.evidence,
                "citation": table.citation,
            }
            explanation = dict(row.explanation)
            explanation["repairs"] = [*explanation.get("repairs", []), noted]
            connection.execute(
                update(credit_ratings)
                .where(credit_ratings.c.enterprise_id == row.ident, credit_ratings.c.year == year)
                .values(explanation=explanation, updated_by=actor)
            )
        audit(
            connection,
            actor,
            "grant" if grant else "refuse",
            "credit_repair",
            str(request.id),
            {"grade": grade},
            {
                "grade": to_grade or grade,
                "effective_at": None if effective_at is None else effective_at.isoformat(),
            },
        )
    return {
        "id": request.id,
        "status": "granted" if grant else "refused",
        "to_grade": to_grade,
        "effective_at": effective_at,
    }
