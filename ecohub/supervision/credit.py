"""Enterprise environmental credit ratings in the store (企业环境信用评价,
环发〔2013〕150号): a year's rating computed by :func:`ecohub.supervision.rules.credit_grade`
from indicator results, stored as a draft in its review window, objected to by the
enterprise, decided by the agency and published.

What the platform measures itself fills in indicator 1 (大气及水污染物达标排放): the share
of the year's measured outlet-hours without a permit-limit exceedance (the online data's
stand-in for the supervisory-monitoring compliance rate of 附件1: ≥ 90 % band 1, 75-90 %
band 2, below band 3, below 50 % scores 0), with the exceedance alarms it rests on listed.
The other indicators (waste, noise, siting, …) are entered by the agency (``result_from``
of the indicator table: a band 1-3 or a score 0-100 given with the request; none of them
has evidence in the store); a direct rule (一票否决, e.g. 私设暗管) likewise. Every grade
explains itself: the indicators, their scores and the evidence rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, insert, select, update

from ecohub.clock import local_year_bounds, utcnow
from ecohub.db.engine import write_transaction
from ecohub.supervision import evidence, rules
from ecohub.supervision.service import SupervisionError, audit, enterprise_of, enterprises
from ecohub.supervision.tables import RatingStatus, credit_ratings

# The one indicator of the table marked ``result_from=measured`` (附件1 指标1): the platform
# computes it from its own data; the others are entered by the agency.
MEASURED_INDICATOR = "air_water_compliance"


def compliance_band(compliance: float) -> str | int:
    """Indicator 1's result from a compliance rate (附件1 指标1: ≥ 90 % 第1档, 75-90 %
    第2档, below 75 % 第3档, below 50 % scores 0)."""
    if compliance >= 0.90:
        return "1"
    if compliance >= 0.75:
        return "2"
    return 0 if compliance < 0.50 else "3"


def measured_indicator(engine: Engine, enterprise_id: int, year: int) -> dict[str, Any]:
    """Indicator 1 from the year's data: measured hours, exceedance hours, the rate."""
    start, end = local_year_bounds(year)
    found = evidence.gather(engine, start, end, [enterprise_id])[enterprise_id]
    measured = found.valid_hours
    if not measured:
        return {
            "result": None,
            "measured_hours": 0,
            "exceedance_hours": found.exceedance_hours,
            "alarms": sorted(found.alarm_ids.get("source_exceedance", [])),
        }
    compliance = max(0.0, 1.0 - found.exceedance_hours / measured)
    return {
        "result": compliance_band(compliance),
        "compliance": round(compliance, 4),
        "measured_hours": measured,
        "exceedance_hours": round(found.exceedance_hours, 2),
        "alarms": sorted(found.alarm_ids.get("source_exceedance", [])),
    }


def rate(
    engine: Engine,
    uscc: str,
    year: int,
    actor: str,
    results: Mapping[str, str | int] | None = None,
    findings: Collection[str] = (),
    green_extras: int = 0,
) -> dict[str, Any]:
    """Compute and store a draft rating (replacing a draft, never a decided one)."""
    ident = enterprise_of(engine, uscc)
    table = rules.credit_rules()
    given = dict(results or {})
    measured = measured_indicator(engine, ident, year)
    if MEASURED_INDICATOR not in given and measured["result"] is not None:
        given[MEASURED_INDICATOR] = measured["result"]
    if not findings:
        missing = sorted(set(table.indicators) - set(given))
        if missing:
            raise SupervisionError(
                "indicator results needed (band 1-3 or a score 0-100): " + ", ".join(missing)
            )
    try:
        graded = rules.credit_grade(
            given if not findings else {}, findings, green_extras=green_extras
        )
    except ValueError as error:
        raise SupervisionError(str(error)) from None
    explanation = _explanation(graded, given, measured, findings, green_extras)
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(credit_ratings.c.status, credit_ratings.c.grade).where(
                credit_ratings.c.enterprise_id == ident, credit_ratings.c.year == year
            )
        ).first()
        if row is not None and row.status != RatingStatus.DRAFT:
            raise SupervisionError(f"{uscc} {year} is {row.status}: a new draft is not allowed")
        values = {
            "grade": graded.grade,
            "status": RatingStatus.DRAFT.value,
            "explanation": explanation,
            "computed_at": utcnow(),
            "updated_by": actor,
            "objection": None,
            "decision": None,
        }
        if row is None:
            connection.execute(
                insert(credit_ratings).values(enterprise_id=ident, year=year, **values)
            )
        else:
            connection.execute(
                update(credit_ratings)
                .where(credit_ratings.c.enterprise_id == ident, credit_ratings.c.year == year)
                .values(**values)
            )
        audit(
            connection,
            actor,
            "rate",
            "credit_rating",
            f"{uscc}/{year}",
            None if row is None else {"grade": row.grade},
            {"grade": graded.grade},
        )
    return _must(get_rating(engine, uscc, year))


def _explanation(
    graded: rules.CreditGrade,
    given: Mapping[str, str | int],
    measured: dict[str, Any],
    findings: Collection[str],
    green_extras: int,
) -> dict[str, Any]:
    """What a rating stores to explain itself: the grade, the rule that decided it, each
    indicator with its result, score and evidence."""
    table = rules.credit_rules()
    return {
        "grade": graded.grade,
        "name_zh": graded.name_zh,
        "score": None if graded.score is None else str(graded.score.quantize(Decimal("0.01"))),
        "decided_by": list(graded.decided_by),
        "text": graded.explanation,
        "indicators": [
            {
                "key": key,
                "name_zh": item.name_zh,
                "weight": str(item.weight),
                "result": given.get(key),
                "score": rules.indicator_score(given[key]) if key in given else None,
                "result_from": item.result_from,
                "evidence": measured if item.result_from == "measured" else "agency finding",
            }
            for key, item in table.indicators.items()
        ],
        "findings": sorted(findings),
        "green_extras": green_extras,
    }


def _must(found: dict[str, Any] | None) -> dict[str, Any]:
    assert found is not None
    return found


def get_rating(engine: Engine, uscc: str, year: int) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(credit_ratings, enterprises.c.uscc, enterprises.c.name.label("enterprise"))
            .join(enterprises, enterprises.c.id == credit_ratings.c.enterprise_id)
            .where(enterprises.c.uscc == uscc, credit_ratings.c.year == year)
        ).first()
    return None if row is None else dict(row._mapping)


def _move(
    engine: Engine,
    uscc: str,
    year: int,
    actor: str,
    allowed: tuple[RatingStatus, ...],
    values: dict[str, Any],
) -> dict[str, Any]:
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(credit_ratings.c.enterprise_id, credit_ratings.c.status, credit_ratings.c.grade)
            .join(enterprises, enterprises.c.id == credit_ratings.c.enterprise_id)
            .where(enterprises.c.uscc == uscc, credit_ratings.c.year == year)
        ).first()
        if row is None:
            raise SupervisionError(f"no rating of {uscc} for {year}")
        if RatingStatus(row.status) not in allowed:
            raise SupervisionError(
                f"the rating of {uscc} for {year} is {row.status}: expected "
                + " or ".join(status.value for status in allowed)
            )
        connection.execute(
            update(credit_ratings)
            .where(
                credit_ratings.c.enterprise_id == row.enterprise_id, credit_ratings.c.year == year
            )
            .values(**values, updated_by=actor)
        )
        audit(
            connection,
            actor,
            values["status"],
            "credit_rating",
            f"{uscc}/{year}",
            {"status": row.status, "grade": row.grade},
            {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in values.items()},
        )
    return _must(get_rating(engine, uscc, year))


def object_to(engine: Engine, uscc: str, year: int, text: str, actor: str) -> dict[str, Any]:
    """The enterprise objects to its draft rating (within the review window)."""
    return _move(
        engine,
        uscc,
        year,
        actor,
        (RatingStatus.DRAFT,),
        {"status": RatingStatus.OBJECTED.value, "objection": text},
    )


def decide(
    engine: Engine, uscc: str, year: int, grade: str, text: str, actor: str
) -> dict[str, Any]:
    """The agency's decision: the grade kept or changed, with its reasons."""
    if grade not in rules.GRADE_ORDER:
        raise SupervisionError(f"grade {grade!r}: expected one of {', '.join(rules.GRADE_ORDER)}")
    return _move(
        engine,
        uscc,
        year,
        actor,
        (RatingStatus.DRAFT, RatingStatus.OBJECTED),
        {"status": RatingStatus.DECIDED.value, "grade": grade, "decision": text},
    )


def publish(engine: Engine, uscc: str, year: int, actor: str) -> dict[str, Any]:
    """Publish a decided rating (on the portal and the open API)."""
    values = {"status": RatingStatus.PUBLISHED.value, "published_at": utcnow()}
    return _move(engine, uscc, year, actor, (RatingStatus.DECIDED,), values)


def published_ratings(
    engine: Engine, year: int | None = None, uscc: str | None = None
) -> list[dict[str, Any]]:
    """Published grades: enterprise, year, grade and the rating's explanation text."""
    query = (
        select(
            enterprises.c.uscc,
            enterprises.c.name.label("enterprise"),
            enterprises.c.region_code,
            credit_ratings.c.year,
            credit_ratings.c.grade,
            credit_ratings.c.explanation,
        )
        .join(enterprises, enterprises.c.id == credit_ratings.c.enterprise_id)
        .where(credit_ratings.c.status == RatingStatus.PUBLISHED.value)
        .order_by(credit_ratings.c.year.desc(), enterprises.c.uscc)
    )
    if year is not None:
        query = query.where(credit_ratings.c.year == year)
    if uscc is not None:
        query = query.where(enterprises.c.uscc == uscc)
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        {
            "uscc": r.uscc,
            "enterprise": r.enterprise,
            "region": r.region_code,
            "year": r.year,
            "grade": r.grade,
            "blacklisted": r.grade == "red",
            "name_zh": r.explanation.get("name_zh"),
            "text": r.explanation.get("text"),
        }
        for r in rows
    ]


def latest_published(engine: Engine, uscc: str) -> dict[str, Any] | None:
    """An enterprise's latest published grade (year, grade, blacklisted), or None."""
    found = published_ratings(engine, uscc=uscc)
    if not found:
        return None
    latest = found[0]  # newest year first
    return {key: latest[key] for key in ("year", "grade", "blacklisted", "name_zh")}
