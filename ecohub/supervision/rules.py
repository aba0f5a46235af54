"""Pure rules of administrative enforcement (行政执法) in the environment agencies: the
deadlines of a penalty case, daily continuous penalties and enterprise environmental credit.

Sources (the article texts and what could not be found: ``docs/supervision.md``):

- 《生态环境行政处罚办法》(生态环境部令第30号, in force 2023-07-01) 第十八条, 第五十七条, and
  《中华人民共和国行政处罚法》(2021) 第六十条, 第六十一条, 第六十四条, 第六十七条, 第七十二条,
  第八十五条: the case deadlines (``data/case_deadlines.csv``) and the late-payment surcharge;
  《民法典》第二百零一条, 第二百零三条: how a period is counted.
- 《中华人民共和国环境保护法》(2014) 第五十九条 and 《环境保护主管部门实施按日连续处罚办法》
  (环境保护部令第28号) 第五条, 第十七条 to 第十九条: daily continuous penalties (按日连续处罚).
- 《企业环境信用评价办法（试行）》(环发〔2013〕150号) and its 附件1: the four credit grades, the
  indicators that could be read (``data/credit_indicators.csv``: 1-5 of 21, each row with
  its source and whether the platform measures it or the agency enters it) and the 一票否决
  conditions; the score thresholds are Guangzhou's (穗环〔2015〕210号), the national ones
  were not found in two searches (``data/credit_grades.csv``, every row with its source).

Tables are data (a locality may change them): every function takes its rules as an argument
and defaults to the packaged table. No database, no settings.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Literal

from ecohub.clock import add_working_days, is_working_day


class CaseStep(enum.StrEnum):
    """The steps of a penalty case, in order (生态环境行政处罚办法, 2023)."""

    DISCOVERED = "discovered"  # 发现线索
    FILED = "filed"  # 立案
    INVESTIGATED = "investigated"  # 调查取证终结
    NOTIFIED = "notified"  # 告知 (with the right to a hearing)
    DECIDED = "decided"  # 处罚决定
    EXECUTED = "executed"  # 执行
    CLOSED = "closed"  # 结案


CASE_STEPS = tuple(step.value for step in CaseStep)
# Events that start a clock: the steps, and the day the party receives the decision (送达):
# 行政处罚法 第六十七条 counts the payment period "自收到行政处罚决定书之日起".
CASE_EVENTS = (*CASE_STEPS, "served")

DayKind = Literal["calendar", "working"]
Grade = Literal["green", "blue", "yellow", "red"]

GRADE_NAMES: Mapping[str, str] = {
    "green": "环保诚信企业（绿牌）",
    "blue": "环保良好企业（蓝牌）",
    "yellow": "环保警示企业（黄牌）",
    "red": "环保不良企业（红牌）",
}
# The English names EcoHub shows (the 办法 has no official English text).
GRADE_NAMES_EN: Mapping[str, str] = {
    "green": "Environmentally trustworthy enterprise (green)",
    "blue": "Environmentally good enterprise (blue)",
    "yellow": "Environmental warning enterprise (yellow)",
    "red": "Environmentally poor enterprise (red)",
}
GRADE_ORDER: tuple[Grade, ...] = ("green", "blue", "yellow", "red")
# 附件1 参考分档分值: the lowest score of each band, used when a result is given as a band.
BAND_MIN_SCORE: Mapping[str, int] = {"1": 80, "2": 50, "3": 0}


def _read_rows(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``data/<name>.csv`` (lines starting with '#' are the source notes)."""
    text = (files("ecohub.supervision") / "data" / f"{name}.csv").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(csv.DictReader(io.StringIO(body)))


# --- deadlines of a penalty case -----------------------------------------------------------


@dataclass(frozen=True)
class CaseDeadline:
    """One deadline of a penalty case: ``step`` must be done within ``days`` (calendar or
    working days) after the date of ``counted_from``; ``extension_days`` is the most the
    rules allow on top of it, with approval."""

    rule: str
    name_zh: str
    step: str
    counted_from: str
    days: int
    day_kind: DayKind
    extension_days: int
    citation: str

    def __post_init__(self) -> None:
        if self.step not in CASE_STEPS:
            raise ValueError(f"{self.rule}: unknown step {self.step!r}")
        if self.counted_from not in CASE_EVENTS:
            raise ValueError(f"{self.rule}: unknown event {self.counted_from!r}")
        if self.day_kind not in ("calendar", "working"):
            raise ValueError(f"{self.rule}: day_kind must be calendar or working")
        if self.days <= 0 or self.extension_days < 0:
            raise ValueError(f"{self.rule}: days must be positive, extension_days not negative")


@cache
def case_deadlines() -> Mapping[str, CaseDeadline]:
    """The packaged deadlines (``data/case_deadlines.csv``) by rule key."""
    rules = {}
    for row in _read_rows("case_deadlines"):
        day_kind: DayKind = "working" if row["day_kind"] == "working" else "calendar"
        if row["day_kind"] not in ("calendar", "working"):
            raise ValueError(f"case_deadlines.csv: bad day_kind {row['day_kind']!r}")
        rules[row["rule"]] = CaseDeadline(
            rule=row["rule"],
            name_zh=row["name_zh"],
            step=row["step"],
            counted_from=row["counted_from"],
            days=int(row["days"]),
            day_kind=day_kind,
            extension_days=int(row["extension_days"]),
            citation=row["citation"],
        )
    return rules


def due_date(
    rule: CaseDeadline,
    start: dt.date,
    *,
    extension_days: int = 0,
    suspended_days: int = 0,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
    roll_past_holidays: bool = True,
) -> dt.date:
    """The last day on which ``rule``'s step may be done, its clock started on ``start``.

    The first day is not counted (民法典 第二百零一条: "开始的当日不计入，自下一日开始计算"),
    so a case filed on 2024-03-01 must be decided by 2024-05-30 (90 days, 办法 第五十七条:
    "自立案之日起九十日内作出处理决定"). ``extension_days`` approved (at most the rule's
    ``extension_days``: 第五十七条 "可以延长三十日 …… 继续延长期限不得超过三十日") and days the
    case stood suspended (``suspended_days``, 中止) are added. A calendar period whose last day
    is not a working day ends on the next working day when ``roll_past_holidays`` (民法典
    第二百零三条: "期间的最后一日是法定休假日的，以法定休假日结束的次日为期间的最后一日");
    a working-day period (行政处罚法 第八十五条) counts working days only.
    """
    if not 0 <= extension_days <= rule.extension_days:
        raise ValueError(
            f"{rule.rule}: extension of {extension_days} days, the rules allow "
            f"0 to {rule.extension_days}"
        )
    if suspended_days < 0:
        raise ValueError("suspended_days must not be negative")
    total = rule.days + extension_days
    start += dt.timedelta(days=suspended_days)
    if rule.day_kind == "working":
        return add_working_days(start, total, holidays, workdays)
    last = start + dt.timedelta(days=total)
    while roll_past_holidays and not is_working_day(last, holidays, workdays):
        last += dt.timedelta(days=1)
    return last


def case_due_dates(
    events: Mapping[str, dt.date],
    rules: Mapping[str, CaseDeadline] | None = None,
    *,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
) -> dict[str, dt.date]:
    """The due date of every rule whose clock has started: ``events`` maps an event of
    :data:`CASE_EVENTS` to its date; rules whose ``counted_from`` has no date are left out.
    No extension or suspension is assumed (see :func:`due_date`)."""
    unknown = set(events) - set(CASE_EVENTS)
    if unknown:
        raise ValueError(f"unknown case events: {sorted(unknown)}")
    table = case_deadlines() if rules is None else rules
    return {
        key: due_date(rule, events[rule.counted_from], holidays=holidays, workdays=workdays)
        for key, rule in table.items()
        if rule.counted_from in events
    }


def late_payment_surcharge(fine: Decimal, days_late: int) -> Decimal:
    """The surcharge on a fine paid ``days_late`` days after it fell due (加处罚款):
    3 % of the fine a day, never more than the fine (行政处罚法 第七十二条第（一）项:
    "到期不缴纳罚款的，每日按罚款数额的百分之三加处罚款，加处罚款的数额不得超出罚款的数额")."""
    if fine < 0 or days_late < 0:
        raise ValueError("fine and days_late must not be negative")
    return min(fine * Decimal("0.03") * days_late, fine)


# --- daily continuous penalties ------------------------------------------------------------

# 《环境保护主管部门实施按日连续处罚办法》第五条: the violations (受到罚款处罚，被责令改正，
# 拒不改正的) for which a daily continuous penalty may be imposed; 第六条: local regulations
# may add kinds (地方性法规可以 …… 增加按日连续处罚的违法行为的种类).
DAILY_PENALTY_VIOLATIONS: Mapping[str, str] = {
    "exceeds_standard_or_total": "超过国家或者地方规定的污染物排放标准，或者超过重点污染物排放"
    "总量控制指标排放污染物的",
    "evading_supervision": "通过暗管、渗井、渗坑、灌注或者篡改、伪造监测数据，或者不正常运行"
    "防治污染设施等逃避监管的方式排放污染物的",
    "prohibited_pollutant": "排放法律、法规规定禁止排放的污染物的",
    "hazardous_waste_dumping": "违法倾倒危险废物的",
    "other_illegal_discharge": "其他违法排放污染物行为",
}


def penalty_days(order_served: dt.date, reinspections: Sequence[tuple[dt.date, bool]]) -> int:
    """The days of a daily continuous penalty (计罚日数).

    办法 第十七条: "按日连续处罚的计罚日数为责令改正违法行为决定书送达排污者之日的次日起，
    至环境保护主管部门复查发现违法排放污染物行为之日止。再次复查仍拒不改正的，计罚日数累计
    执行。" ``reinspections`` are (date, violation still found) in date order; the days run
    from the day after ``order_served`` to the last re-inspection of the unbroken run that
    found the violation continuing. A re-inspection finding it corrected ends the count: a
    later violation needs a new decision and starts a new cycle (第十八条: "应当重新作出处罚
    决定，按日连续处罚的计罚周期重新起算"), so later re-inspections are not counted here.
    """
    last_found: dt.date | None = None
    previous = order_served
    for day, still_found in reinspections:
        if day <= previous:
            raise ValueError("re-inspections must follow the order's service, in date order")
        previous = day
        if not still_found:
            break
        last_found = day
    if last_found is None:
        return 0
    return (last_found - order_served).days


def daily_penalty(original: Decimal, days: int) -> Decimal:
    """The amount of a daily continuous penalty: the original fine times the days.

    办法 第十九条: "按日连续处罚每日的罚款数额，为原处罚决定书确定的罚款数额。按照按日连续
    处罚规则决定的罚款数额，为原处罚决定书确定的罚款数额乘以计罚日数。" (环境保护法 第五十九条:
    "按照原处罚数额按日连续处罚".)"""
    if original < 0 or days < 0:
        raise ValueError("original fine and days must not be negative")
    return original * days


# --- enterprise environmental credit -------------------------------------------------------


ResultFrom = Literal["measured", "agency"]
RESULT_FROM: tuple[ResultFrom, ...] = ("measured", "agency")


@dataclass(frozen=True)
class CreditIndicator:
    """One indicator of 附件1: its weight (percent), the text of its three bands, how its
    result is obtained (``measured`` by the platform from its evidence, or entered by the
    ``agency``) and where the row was read."""

    key: str
    number: int
    category: str
    name_zh: str
    weight: Decimal
    bands: tuple[str, str, str]
    result_from: ResultFrom = "agency"
    source: str = ""
    name_en: str = ""


@dataclass(frozen=True)
class GradeThreshold:
    """The lowest weighted score (and number of green extra indicators) of a grade."""

    grade: Grade
    min_score: Decimal
    min_green_extras: int
    citation: str
    source: str = ""


@dataclass(frozen=True)
class DirectRule:
    """A condition that decides the grade whatever the score (一票否决)."""

    key: str
    grade: Grade
    text: str
    citation: str
    source: str = ""
    text_en: str = ""


@dataclass(frozen=True)
class CreditRules:
    indicators: Mapping[str, CreditIndicator]
    thresholds: tuple[GradeThreshold, ...]  # best grade first
    direct: Mapping[str, DirectRule]


@dataclass(frozen=True)
class CreditGrade:
    """The grade of an enterprise, its weighted score (None when a direct rule decided it)
    and what decided it: the direct rules met, or the indicators below band 1."""

    grade: Grade
    name_zh: str
    score: Decimal | None
    decided_by: tuple[str, ...]
    explanation: str


def _grade(value: str) -> Grade:
    for grade in GRADE_ORDER:
        if value == grade:
            return grade
    raise ValueError(f"unknown credit grade {value!r}")


def _result_from(value: str) -> ResultFrom:
    for kind in RESULT_FROM:
        if value == kind:
            return kind
    raise ValueError(f"unknown result_from {value!r}: expected measured or agency")


@cache
def credit_rules() -> CreditRules:
    """The packaged credit tables (``data/credit_indicators.csv``, ``credit_grades.csv``)."""
    indicators = {
        row["key"]: CreditIndicator(
            key=row["key"],
            number=int(row["number"]),
            category=row["category"],
            name_zh=row["name_zh"],
            weight=Decimal(row["weight"]),
            bands=(row["band_1"], row["band_2"], row["band_3"]),
            result_from=_result_from(row["result_from"]),
            source=row["source"],
            name_en=row.get("name_en") or "",
        )
        for row in _read_rows("credit_indicators")
    }
    grades = _read_rows("credit_grades")
    thresholds = sorted(
        (
            GradeThreshold(
                _grade(r["grade"]),
                Decimal(r["min_score"]),
                int(r["min_green_extras"]),
                r["citation"],
                r["source"],
            )
            for r in grades
            if r["kind"] == "threshold"
        ),
        key=lambda t: (t.min_score, t.min_green_extras),
        reverse=True,
    )
    direct = {
        r["key"]: DirectRule(
            r["key"],
            _grade(r["grade"]),
            r["text"],
            r["citation"],
            r["source"],
            r.get("text_en") or "",
        )
        for r in grades
        if r["kind"] == "direct"
    }
    return CreditRules(indicators, tuple(thresholds), direct)


def indicator_score(value: str | int, key: str = "result") -> int:
    """A result as a score 0-100: an int is the score given; a band ("1", "2", "3") scores
    its lowest value (第1档 80, 第2档 50, 第3档 0: 附件1 gives ranges only, so the band's floor
    is EcoHub's choice). ``key`` names the indicator in the error."""
    if isinstance(value, bool):
        raise ValueError(f"{key}: {value!r} is neither a band 1-3 nor a score 0-100")
    if isinstance(value, str):
        if value not in BAND_MIN_SCORE:
            raise ValueError(f"{key}: unknown band {value!r}: expected 1, 2 or 3")
        return BAND_MIN_SCORE[value]
    if not 0 <= value <= 100:
        raise ValueError(f"{key}: score {value} outside 0-100")
    return value


def credit_grade(
    results: Mapping[str, str | int],
    findings: Collection[str] = (),
    *,
    green_extras: int = 0,
    rules: CreditRules | None = None,
) -> CreditGrade:
    """The credit grade of an enterprise for a year.

    ``results`` gives every indicator of the table a score (0-100) or a band; ``findings``
    are the keys of direct rules found in the year. A direct rule decides the grade
    regardless of the scores ("实行'一票否决'，直接评定为'环保不良企业'"). Otherwise the
    weighted mean score (weights of 附件1, over the indicators of the table) falls in a
    threshold band; the top grade also needs ``green_extras`` green extra indicators.
    """
    table = credit_rules() if rules is None else rules
    unknown = set(findings) - set(table.direct)
    if unknown:
        raise ValueError(f"findings: unknown direct rules {sorted(unknown)}")
    met = [table.direct[key] for key in sorted(findings)]
    if met:
        chosen = max((rule.grade for rule in met), key=GRADE_ORDER.index)
        texts = "; ".join(f"{rule.text} ({rule.citation})" for rule in met)
        return CreditGrade(
            chosen, GRADE_NAMES[chosen], None, tuple(r.key for r in met), f"一票否决: {texts}"
        )
    missing = set(table.indicators) - set(results)
    extra = set(results) - set(table.indicators)
    if missing or extra:
        raise ValueError(f"results: indicators missing {sorted(missing)}, unknown {sorted(extra)}")
    scores = {key: indicator_score(value, key) for key, value in results.items()}
    weights = {key: ind.weight for key, ind in table.indicators.items()}
    score = sum((weights[k] * scores[k] for k in scores), Decimal(0)) / sum(weights.values())
    for threshold in table.thresholds:
        if score >= threshold.min_score and green_extras >= threshold.min_green_extras:
            break
    else:
        raise ValueError("the thresholds do not cover the score")
    lower = tuple(k for k, s in sorted(scores.items()) if s < BAND_MIN_SCORE["1"])
    explanation = f"weighted score {score:.2f} ≥ {threshold.min_score} ({threshold.citation})"
    if lower:
        explanation += "; below band 1: " + ", ".join(
            f"{table.indicators[k].name_zh} {scores[k]}" for k in lower
        )
    return CreditGrade(threshold.grade, GRADE_NAMES[threshold.grade], score, lower, explanation)
