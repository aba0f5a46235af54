"""The environmental management ledger (环境管理台账) of a permit holder as pure rules: HJ
944-2018 《排污单位环境管理台账及排污许可证执行报告技术规范 总则（试行）》, clause 4 as issued
permits copy it into their ledger tables (``data/ledger_rules.csv`` names each copy; the
standard's own text was not reached).

The ledger records five kinds of information: 基本信息 (basic information: once a year
while unchanged, and at each change), 生产设施运行管理信息 (production facilities: running
state, load, output and materials once a day or batch in normal operation; one record per
abnormal period with its start and end, cause, measures and whether it was reported),
污染防治设施运行管理信息 (pollution control facilities: operation once a day, reagents by
day or batch; one record per abnormal period), 监测记录信息 (monitoring records, as the
self-monitoring plan and HJ 819 set; automatic monitoring is recorded by the data itself)
and 其他环境管理信息 (other information, as the law and the industry specification require).
Records are kept at least five years.

What a period expects (:func:`expected`) is EcoHub's count over those frequencies: one
record per Beijing day the period touches for each facility in normal operation, one per
year for the basic information; abnormal periods and other information expect no count.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

from ecohub.clock import BEIJING
from ecohub.permits import report_rules

PER_EVENT = "per_event"
PER_PLAN = "per_plan"
AS_REQUIRED = "as_required"
MAX_TEXT = 2000


class RecordKind(StrEnum):
    """The five kinds of ledger records (HJ 944-2018 clause 4)."""

    BASIC = "basic"  # 基本信息
    PRODUCTION = "production"  # 生产设施运行管理信息
    TREATMENT = "treatment"  # 污染防治设施运行管理信息
    MONITORING = "monitoring"  # 监测记录信息
    OTHER = "other"  # 其他环境管理信息


class Condition(StrEnum):
    NORMAL = "normal"  # 正常工况 / 正常情况
    ABNORMAL = "abnormal"  # 非正常工况 / 异常情况


class FacilityKind(StrEnum):
    PRODUCTION = "production"  # 生产设施
    TREATMENT = "treatment"  # 污染防治设施


FACILITY_KINDS = {
    RecordKind.PRODUCTION: FacilityKind.PRODUCTION,
    RecordKind.TREATMENT: FacilityKind.TREATMENT,
}


class Field(NamedTuple):
    name: str
    type: str  # text, number, percent, bool, time
    required: bool


class Rule(NamedTuple):
    """One record kind in one condition: its names, frequency and fields."""

    kind: RecordKind
    condition: Condition
    zh: str
    en: str
    frequency: str
    fields: tuple[Field, ...]
    source: str


@cache
def rules() -> dict[tuple[RecordKind, Condition], Rule]:
    """The rows of ``data/ledger_rules.csv`` by (kind, condition)."""
    text = (files("ecohub.permits") / "data" / "ledger_rules.csv").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    found = {}
    for row in csv.DictReader(io.StringIO(body)):
        fields = []
        for cell in row["fields"].split(";"):
            name, kind = cell.split(":")
            fields.append(Field(name, kind.rstrip("!"), kind.endswith("!")))
        rule = Rule(
            RecordKind(row["kind"]),
            Condition(row["condition"]),
            row["zh"],
            row["en"],
            row["frequency"],
            tuple(fields),
            row["source"],
        )
        found[rule.kind, rule.condition] = rule
    return found


def rule(kind: str, condition: str = Condition.NORMAL) -> Rule:
    """The rule of ``kind`` in ``condition``; a ValueError naming the field otherwise."""
    try:
        record_kind = RecordKind(kind)
    except ValueError:
        names = ", ".join(k.value for k in RecordKind)
        raise ValueError(f"kind must be one of {names}; got {kind!r}") from None
    try:
        found_condition = Condition(condition)
    except ValueError:
        raise ValueError(f"condition must be normal or abnormal; got {condition!r}") from None
    found = rules().get((record_kind, found_condition))
    if found is None:
        raise ValueError(f"condition: a {kind} record has no {condition} condition")
    return found


def parse_time(value: Any, name: str) -> dt.datetime:
    """An aware UTC datetime from an aware datetime or ISO text; naive times are Beijing time."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("T", " "))
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not a time (YYYY-MM-DD HH:MM)") from None
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name}: a time is needed; got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    return value.astimezone(dt.UTC)


def _value(field: Field, value: Any) -> Any:
    name = f"values.{field.name}"
    if field.type == "text":
        text = str(value).strip()
        if not text:
            raise ValueError(f"{name}: empty")
        if len(text) > MAX_TEXT:
            raise ValueError(f"{name}: longer than {MAX_TEXT} characters")
        return text
    if field.type == "bool":
        if isinstance(value, bool):
            return value
        words = {"yes": True, "true": True, "是": True, "no": False, "false": False, "否": False}
        found = words.get(str(value).strip().lower())
        if found is None:
            raise ValueError(f"{name}: yes or no expected; got {value!r}")
        return found
    if field.type == "time":
        return parse_time(value, name).astimezone(BEIJING).isoformat()  # as the page shows it
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: a number is expected; got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}: must be a finite number >= 0; got {value!r}")
    if field.type == "percent" and number > 200:
        raise ValueError(f"{name}: a load above 200 % is not plausible; got {number:g}")
    return number


def check_values(found: Rule, values: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
    """The record's values checked against its rule (each error names its field): required
    fields present, no unknown field, types as the rule says, an abnormal period's end not
    before its start."""
    known = {field.name: field for field in found.fields}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(
            f"values.{unknown[0]}: not a field of a {found.kind.value} {found.condition.value} "
            f"record (fields: {', '.join(known)})"
        )
    checked: dict[str, Any] = {}
    for field in found.fields:
        value = values.get(field.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if field.required:
                raise ValueError(f"values.{field.name}: required")
            continue
        checked[field.name] = _value(field, value)
    ended = checked.get("ended_at")
    if ended is not None and dt.datetime.fromisoformat(ended) < at:
        raise ValueError("values.ended_at: before the record's start time")
    return checked


def expected(found: Rule, first: dt.date, last: dt.date, facilities: int) -> int | None:
    """The records a period from ``first`` to ``last`` (Beijing days, both included) expects
    of a rule: daily rules one per day per facility, the annual rule one per calendar year
    touched; None where the standard sets no count (abnormal periods, as required, and the
    monitoring plan, counted by the report from the plan)."""
    if found.frequency in (PER_EVENT, PER_PLAN, AS_REQUIRED):
        return None
    per_unit = report_rules.expected_samples(found.frequency, first, last)
    return per_unit * (facilities if found.kind in FACILITY_KINDS else 1)


def held(
    found: Rule, first: dt.date, last: dt.date, times: Mapping[Any, Iterable[dt.datetime]]
) -> int:
    """The calendar units of the rule's frequency holding at least one record, summed over
    the facilities (``times`` by facility; one key for rules without facilities); for rules
    without a count, the records."""
    if found.frequency in (PER_EVENT, PER_PLAN, AS_REQUIRED):
        return sum(len(list(moments)) for moments in times.values())
    return sum(
        min(
            report_rules.completeness(found.frequency, first, last, list(moments)).held,
            report_rules.expected_samples(found.frequency, first, last),
        )
        for moments in times.values()
    )
