"""Enterprise environmental credit ratings in the store (企业环境信用评价,
环发〔2013〕150号): a year's rating computed by :func:`ecohub.supervision.rules.credit_grade`
from indicator results, stored as a draft in its review window, objected to by the
enterprise, decided by the agency and published.

What the platform measures itself fills in indicator 1 (大气及水污染物达标排放: "每个排污口
监督性监测达标率"): per outlet (排污口), the share of the year's valid pollutant-hours of the
pollutants its permits limit without a permit-limit exceedance (the online data's stand-in
for the supervisory-monitoring compliance rate; flow, O2, temperature and other unlimited
series do not count), the worst outlet deciding the band (≥ 90 % band 1, 75-90 % band 2,
below band 3, below 50 % scores 0), with the exceedance alarms it rests on listed.

The review window (``data/credit_review.csv``): a draft may be published only when the
enterprise has answered (objected, and the agency decided) or ``review_days`` after the
draft was made (``computed_at``) have passed. A grade changed by the agency's decision or
by a granted repair carries its own name and reason; a granted repair takes effect when
its public notice (``notice_days`` of ``data/credit_repair.csv``) ends, and the grade read
(:func:`current_grade`) is the one in effect at the time asked.
The other indicators (waste, noise, siting, …) are entered by the agency (``result_from``
of the indicator table: a band 1-3 or a score 0-100 given with the request; none of them
has evidence in the store); a direct rule (一票否决, e.g. 私设暗管) likewise. Every grade
explains itself: the indicators, their scores and the evidence rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine, insert, select, update

from ecohub.clock import local_year_bounds, local_zone, utcnow
from ecohub.db.engine import write_transaction
from ecohub.supervision import evidence, rules
from ecohub.supervision.service import SupervisionError, audit, enterprise_of, enterprises
from ecohub.supervision.tables import RatingStatus, credit_ratings

# The one indicator of the table marked ``result_from=measured`` (附件1 指标1): the platform
# computes it from its own data; the others are entered by the agency.
MEASURED_INDICATOR = "air_water_compliance"


class InputError(SupervisionError):
    """Bad input to a rating (the API answers 422): ``field`` names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ReviewRules:
    review_days: int
    citation: str


def review_rules() -> ReviewRules:
    """The packaged review window (``data/credit_review.csv``)."""
    text = files("ecohub.supervision").joinpath("data/credit_review.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    values = {row["key"]: row["value"] for row in rows}
    days = int(values["review_days"])
    if days < 0:
        raise ValueError("credit_review.csv: review_days must not be negative")
    return ReviewRules(days, values["citation"])


def review_closes(computed_at: dt.datetime, rules_: ReviewRules | None = None) -> dt.datetime:
    """When the review window of a draft made at ``computed_at`` closes."""
    return computed_at + dt.timedelta(days=(rules_ or review_rules()).review_days)


def compliance_band(compliance: float) -> str | int:
    """Indicator 1's result from a compliance rate (附件1 指标1: ≥ 90 % 第1档, 75-90 %
    第2档, below 75 % 第3档, below 50 % scores 0)."""
    if compliance >= 0.90:
        return "1"
    if compliance >= 0.75:
        return "2"
    return 0 if compliance < 0.50 else "3"


def measured_indicator(engine: Engine, enterprise_id: int, year: int) -> dict[str, Any]:
    """Indicator 1 from the year's data, per outlet over its permit-limited pollutants
    (:func:`ecohub.supervision.evidence.outlet_compliance`); the worst outlet with valid
    hours decides the band; None when no outlet has any."""
    start, end = local_year_bounds(year)
    per_outlet = evidence.outlet_compliance(engine, enterprise_id, start, end)
    rated = [item for item in per_outlet if item["compliance"] is not None]
    alarms = sorted({i for o in per_outlet for p in o["pollutants"] for i in p["alarms"]})
    found = {
        "measured_hours": sum(item["valid_hours"] for item in per_outlet),
        "exceedance_hours": round(sum(item["exceedance_hours"] for item in per_outlet), 2),
        "outlets": per_outlet,
        "alarms": alarms,
        "rule": "附件1 指标1: 每个排污口监督性监测达标率 (per outlet, permit-limited pollutants)",
    }
    if not rated:
        return {"result": None, **found}
    worst = min(rated, key=lambda item: (item["compliance"], item["outlet"]))
    return {
        "result": compliance_band(worst["compliance"]),
        "compliance": worst["compliance"],
        "worst_outlet": worst["outlet"],
        **found,
    }


def _check_given(given: Mapping[str, str | int], findings: Collection[str]) -> None:
    """Each result and finding checked, the error naming its field."""
    table = rules.credit_rules()
    for key, value in given.items():
        if key not in table.indicators:
            raise InputError(
                f"results.{key}", f"unknown indicator (known: {', '.join(table.indicators)})"
            )
        try:
            rules.indicator_score(value, key)
        except ValueError as error:
            raise InputError(f"results.{key}", str(error).removeprefix(f"{key}: ")) from None
    unknown = sorted(set(findings) - set(table.direct))
    if unknown:
        raise InputError(
            "findings", f"unknown direct rules {unknown} (known: {', '.join(table.direct)})"
        )


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
    _check_given(given, findings)
    measured = measured_indicator(engine, ident, year)
    if MEASURED_INDICATOR not in given and measured["result"] is not None:
        given[MEASURED_INDICATOR] = measured["result"]
    if not findings:
        missing = sorted(set(table.indicators) - set(given))
        if missing:
            raise InputError(
                "results",
                "indicator results needed (band 1-3 or a score 0-100): "
                + ", ".join(f"results.{key}" for key in missing),
            )
    try:
        graded = rules.credit_grade(
            given if not findings else {}, findings, green_extras=green_extras
        )
    except ValueError as error:
        raise InputError("results", str(error)) from None
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
        "name_en": rules.GRADE_NAMES_EN[graded.grade],
        "score": None if graded.score is None else str(graded.score.quantize(Decimal("0.01"))),
        "decided_by": list(graded.decided_by),
        "text": graded.explanation,
        "indicators": [
            {
                "key": key,
                "name_zh": item.name_zh,
                "weight": str(item.weight),
                "result": given.get(key),
                "score": rules.indicator_score(given[key], key) if key in given else None,
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


def current_grade(
    grade: str, explanation: Mapping[str, Any], now: dt.datetime | None = None
) -> dict[str, Any]:
    """The grade in effect at ``now``: the rating's, raised by every granted repair whose
    public notice has ended; a repair still in its notice is ``pending``."""
    now = now or utcnow()
    effective, pending = grade, None
    for repair in explanation.get("repairs", []):
        starts = repair.get("effective_at")
        if starts is None:  # stored before repairs waited for their notice: already applied
            continue
        if dt.datetime.fromisoformat(starts) <= now:
            effective = repair["to"]
        else:
            pending = repair
    return {"grade": effective, "pending_repair": pending}


def describe(grade: str, explanation: Mapping[str, Any]) -> dict[str, str]:
    """The grade's names (from the grade itself, never a stored copy) and the reason it
    stands: the rating's own explanation, or the decision or repair that set it."""
    text = str(explanation.get("text", ""))
    if explanation.get("grade") != grade:
        changes = [*explanation.get("changes", []), *explanation.get("repairs", [])]
        setting = [change for change in changes if change.get("to") == grade]
        if setting:
            last = setting[-1]
            label = "信用修复" if "citation" in last else "复核决定"
            text = f"{label}: {last.get('decision') or last.get('reason', '')}"
    return {
        "name_zh": rules.GRADE_NAMES[grade],
        "name_en": rules.GRADE_NAMES_EN[grade],
        "text": text,
    }


def get_rating(
    engine: Engine, uscc: str, year: int, now: dt.datetime | None = None
) -> dict[str, Any] | None:
    """A rating as stored, with the grade in effect now (``current``), its names and the
    end of its review window."""
    with engine.connect() as connection:
        row = connection.execute(
            select(credit_ratings, enterprises.c.uscc, enterprises.c.name.label("enterprise"))
            .join(enterprises, enterprises.c.id == credit_ratings.c.enterprise_id)
            .where(enterprises.c.uscc == uscc, credit_ratings.c.year == year)
        ).first()
    if row is None:
        return None
    found = dict(row._mapping)
    current = current_grade(row.grade, row.explanation, now)
    found["current"] = {**current, **describe(current["grade"], row.explanation)}
    found["review_closes_at"] = review_closes(row.computed_at)
    return found


def _move(
    engine: Engine,
    uscc: str,
    year: int,
    actor: str,
    allowed: tuple[RatingStatus, ...],
    values: dict[str, Any],
    check: Callable[[Any], None] | None = None,
    explain: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Move a rating to ``values["status"]`` from one of ``allowed``; ``check`` may refuse
    (raising), ``explain`` gives the explanation to store instead of the old one."""
    with write_transaction(engine) as connection:
        row = connection.execute(
            select(credit_ratings)
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
        if check is not None:
            check(row)
        stored = dict(values)
        if explain is not None:
            stored["explanation"] = explain(row)
        connection.execute(
            update(credit_ratings)
            .where(
                credit_ratings.c.enterprise_id == row.enterprise_id, credit_ratings.c.year == year
            )
            .values(**stored, updated_by=actor)
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
    if not text.strip():
        raise InputError("text", "an objection needs the enterprise's reasons")
    return _move(
        engine,
        uscc,
        year,
        actor,
        (RatingStatus.DRAFT,),
        {"status": RatingStatus.OBJECTED.value, "objection": text},
    )


def _regraded(
    explanation: Mapping[str, Any], grade: str, reason: str, at: dt.datetime
) -> dict[str, Any]:
    """The explanation of a rating whose grade the agency changed: the new grade with its
    names and reason, the computed one kept, the change listed."""
    changed = dict(explanation)
    if explanation.get("grade") == grade:
        return changed
    changed.setdefault(
        "computed",
        {key: explanation.get(key) for key in ("grade", "name_zh", "text")},
    )
    changed["changes"] = [
        *explanation.get("changes", []),
        {"from": explanation.get("grade"), "to": grade, "at": at.isoformat(), "reason": reason},
    ]
    changed.update(
        grade=grade,
        name_zh=rules.GRADE_NAMES[grade],
        name_en=rules.GRADE_NAMES_EN[grade],
        text=f"复核决定: {reason}",
    )
    return changed


def decide(
    engine: Engine, uscc: str, year: int, grade: str, text: str, actor: str
) -> dict[str, Any]:
    """The agency's decision: the grade kept or changed, with its reasons (a changed grade
    is stored with its own name and reason, the computed one kept beside it)."""
    if grade not in rules.GRADE_ORDER:
        raise InputError("grade", f"{grade!r}: expected one of {', '.join(rules.GRADE_ORDER)}")
    if not text.strip():
        raise InputError("text", "a decision needs its reasons")
    now = utcnow()
    return _move(
        engine,
        uscc,
        year,
        actor,
        (RatingStatus.DRAFT, RatingStatus.OBJECTED),
        {"status": RatingStatus.DECIDED.value, "grade": grade, "decision": text},
        explain=lambda row: _regraded(row.explanation, grade, text, now),
    )


def publish(
    engine: Engine, uscc: str, year: int, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Publish a decided rating (on the portal and the open API): refused while the
    review window is open, unless the enterprise has answered (objected)."""
    now = now or utcnow()
    window = review_rules()

    def window_closed(row: Any) -> None:
        closes = review_closes(row.computed_at, window)
        if row.objection is None and now < closes:
            local = closes.astimezone(local_zone())
            raise SupervisionError(
                f"the review window of {uscc} {year} is open until "
                f"{local:%Y-%m-%d %H:%M} (Beijing time; {window.review_days} days after the "
                f"draft, {window.citation}) and the enterprise has not answered"
            )

    values = {"status": RatingStatus.PUBLISHED.value, "published_at": now}
    return _move(engine, uscc, year, actor, (RatingStatus.DECIDED,), values, check=window_closed)


def published_ratings(
    engine: Engine,
    year: int | None = None,
    uscc: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Published grades as in effect at ``now``: enterprise, year, grade, its names (from
    the grade) and the reason it stands."""
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
    out = []
    for r in rows:
        current = current_grade(r.grade, r.explanation, now)
        grade = current["grade"]
        pending = current["pending_repair"]
        out.append(
            {
                "uscc": r.uscc,
                "enterprise": r.enterprise,
                "region": r.region_code,
                "year": r.year,
                "grade": grade,
                "blacklisted": grade == "red",
                **describe(grade, r.explanation),
                "repair_pending": None
                if pending is None
                else {"to": pending["to"], "effective_at": pending["effective_at"]},
            }
        )
    return out


def latest_published(engine: Engine, uscc: str) -> dict[str, Any] | None:
    """An enterprise's latest published grade (year, grade, blacklisted, names), or None."""
    found = published_ratings(engine, uscc=uscc)
    if not found:
        return None
    latest = found[0]  # newest year first
    return {key: latest[key] for key in ("year", "grade", "blacklisted", "name_zh", "name_en")}
