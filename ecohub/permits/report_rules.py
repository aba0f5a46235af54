"""Execution reports of a discharge permit (排污许可证执行报告) and the completeness of the
self-monitoring they report, as pure rules: HJ 944-2018 《排污单位环境管理台账及排污许可证执行
报告技术规范 总则（试行）》 clause 5, where its text was reached, and the permits' own wording
where the standard leaves a rule to the permit.

What the texts say, and where (``data/report_rules.csv`` names the copy of each row):

- HJ 944-2018 5.1: reports are annual (年度执行报告), quarterly (季度执行报告) and monthly (月度
  执行报告); their period is the natural year, quarter or month, Beijing calendar. A period in
  which the permit was held less than three months (a year), one month (a quarter) or ten days
  (a month) needs no report of its own; its execution goes into the next period's report
  (:func:`first_report_period`).
- HJ 944-2018 5.3 and 5.3.1: the letter of commitment (承诺书) is part of every report; the
  annual report's sections are typed in :func:`sections` in the order of 5.3.1 (the text says
  实际排放情况及 **达标** 判定分析, and lists 遵守法律法规情况 and 环境保护税（排污费）缴纳情况).
- The due dates are the permit's (排污许可管理条例 第二十二条: "按照排污许可证规定的内容、频次和
  时间要求"); HJ 944-2018, as far as it was read, gives none. Two permits' wording is typed as
  schedules (:func:`schedules`): ``cement`` (annual by 31 January, semi-annual by 31 July,
  quarterly within 15 days after the quarter) and ``thermal-power`` (every report by the 15th of
  the month after its period). ``default`` is EcoHub's choice: annual by 31 January and the
  semi-annual by the month's end after the half-year (cement), quarterly and monthly by the 15th
  of the next month (both permits agree for the quarter; monthly from the thermal-power permit).
  A report due on a rest day is not moved here.
- Semi-annual reports (半年执行报告) are not in HJ 944-2018's 5.1; the two permits require them,
  so the kind exists, its sections and threshold typed from those permits.

Not found, and EcoHub's own reading: which management class files which reports. "All holders
of a permit file the annual report" was read (a county bureau's guidance); that key-managed
units (重点管理) also file quarterly reports and simplified ones (简化管理) only the annual is how
the industry specifications are usually summarised, but no such clause was read; units under
registration management (登记管理) hold no permit and file none. The permit's own requirements
override all of this. The quarterly and monthly sections are typed from the two permits (HJ 944's
clause for them was not reached).

Self-monitoring frequencies (:class:`Frequency`) are the words of permits' monitoring tables.
How many samples a period expects is EcoHub's convention (:func:`expected_samples`): one per
calendar day, Monday-to-Sunday week, month, quarter, half-year or year the period touches, and
for automatic monitoring one hourly value per hour (HJ 212 hourly data).
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import NamedTuple, TypeVar

from ecohub.clock import BEIJING

DEFAULT_SCHEDULE = "default"
HOURS_PER_DAY = 24


class PeriodKind(StrEnum):
    """The period of an execution report (HJ 944-2018 5.1; semi-annual from permits)."""

    ANNUAL = "annual"  # 年度执行报告
    SEMIANNUAL = "semiannual"  # 半年执行报告
    QUARTERLY = "quarterly"  # 季度执行报告
    MONTHLY = "monthly"  # 月度执行报告


PERIOD_NAMES_ZH: Mapping[PeriodKind, str] = {
    PeriodKind.ANNUAL: "年度执行报告",
    PeriodKind.SEMIANNUAL: "半年执行报告",
    PeriodKind.QUARTERLY: "季度执行报告",
    PeriodKind.MONTHLY: "月度执行报告",
}


class ManagementClass(StrEnum):
    """The management class of a discharging unit (固定污染源排污许可分类管理名录)."""

    KEY = "key"  # 重点管理
    SIMPLIFIED = "simplified"  # 简化管理
    REGISTRATION = "registration"  # 登记管理


_CLASS_ALIASES = {
    "重点管理": ManagementClass.KEY,
    "重点": ManagementClass.KEY,
    "简化管理": ManagementClass.SIMPLIFIED,
    "简化": ManagementClass.SIMPLIFIED,
    "登记管理": ManagementClass.REGISTRATION,
    "登记": ManagementClass.REGISTRATION,
}


class Frequency(StrEnum):
    """A self-monitoring frequency as permits write it."""

    AUTOMATIC = "自动监测"
    DAILY = "1次/日"
    WEEKLY = "1次/周"
    MONTHLY = "1次/月"
    QUARTERLY = "1次/季度"
    SEMIANNUAL = "1次/半年"
    ANNUAL = "1次/年"


_FREQUENCY_ALIASES = {
    "自动": Frequency.AUTOMATIC,
    "连续": Frequency.AUTOMATIC,
    "在线监测": Frequency.AUTOMATIC,
    "automatic": Frequency.AUTOMATIC,
    "1次/天": Frequency.DAILY,
    "daily": Frequency.DAILY,
    "weekly": Frequency.WEEKLY,
    "monthly": Frequency.MONTHLY,
    "1次/季": Frequency.QUARTERLY,
    "quarterly": Frequency.QUARTERLY,
    "semiannual": Frequency.SEMIANNUAL,
    "annual": Frequency.ANNUAL,
}


class Section(NamedTuple):
    """One section of an execution report."""

    key: str
    zh: str
    en: str
    required: bool


# --- the data table --------------------------------------------------------------------------


@cache
def _rows() -> tuple[dict[str, str], ...]:
    text = (files("ecohub.permits") / "data" / "report_rules.csv").read_text("utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    return tuple(csv.DictReader(io.StringIO(body)))


def _table(name: str) -> list[dict[str, str]]:
    return [row for row in _rows() if row["table"] == name]


@cache
def _due_rules() -> dict[tuple[str, PeriodKind], tuple[int, int | None]]:
    rules = {}
    for row in _table("due"):
        months, day = row["value"].split("/")
        rules[row["name"], PeriodKind(row["kind"])] = (
            int(months),
            None if day == "last" else int(day),
        )
    return rules


@cache
def _thresholds() -> dict[PeriodKind, tuple[str, int]]:
    found = {}
    for row in _table("threshold"):
        unit, count = row["value"].split(":")
        found[PeriodKind(row["kind"])] = (unit, int(count))
    return found


# --- periods ---------------------------------------------------------------------------------


def period_kind(kind: PeriodKind | str) -> PeriodKind:
    """``kind`` as a :class:`PeriodKind` (its value or its Chinese name)."""
    if isinstance(kind, PeriodKind):
        return kind
    for member, name in PERIOD_NAMES_ZH.items():
        if kind in (member.value, name):
            return member
    names = ", ".join(m.value for m in PeriodKind)
    raise ValueError(f"period_kind must be one of {names}; got {kind!r}")


def beijing_date(moment: dt.date | dt.datetime) -> dt.date:
    """The Beijing calendar day of ``moment``: an aware datetime converted to Asia/Shanghai, a
    naive datetime read as Beijing wall time, a date unchanged."""
    if isinstance(moment, dt.datetime):
        return moment.astimezone(BEIJING).date() if moment.tzinfo else moment.date()
    if isinstance(moment, dt.date):
        return moment
    raise ValueError(f"a date or datetime is needed; got {moment!r}")


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_of(kind: PeriodKind | str, day: dt.date | dt.datetime) -> tuple[dt.date, dt.date]:
    """The first and last day of the natural period of ``kind`` holding ``day`` (HJ 944-2018
    5.1: the natural year, quarter or month; the half-year is January-June or July-December)."""
    kind = period_kind(kind)
    day = beijing_date(day)
    months = {
        PeriodKind.ANNUAL: 12,
        PeriodKind.SEMIANNUAL: 6,
        PeriodKind.QUARTERLY: 3,
        PeriodKind.MONTHLY: 1,
    }[kind]
    first_month = (day.month - 1) // months * months + 1
    last_year, last_month = _add_months(day.year, first_month, months - 1)
    return dt.date(day.year, first_month, 1), _month_end(last_year, last_month)


def schedules() -> tuple[str, ...]:
    """The due-date schedules of ``data/report_rules.csv``, ``default`` first."""
    names = {name for name, _kind in _due_rules()}
    return (DEFAULT_SCHEDULE, *sorted(names - {DEFAULT_SCHEDULE}))


def due_date(
    period_kind_: PeriodKind | str,
    period_start: dt.date | dt.datetime,
    schedule: str = DEFAULT_SCHEDULE,
) -> dt.date:
    """The last day to file the report of the period holding ``period_start`` under
    ``schedule`` (a permit's wording, ``data/report_rules.csv``): the D-th day, or the last, of
    the M-th month after the period's last month. E.g. ``default``: the 2024 annual report by
    2025-01-31, the first quarter's by 2024-04-15."""
    kind = period_kind(period_kind_)
    rule = _due_rules().get((schedule, kind))
    if rule is None:
        if schedule not in schedules():
            raise ValueError(f"schedule must be one of {', '.join(schedules())}; got {schedule!r}")
        raise ValueError(f"the schedule {schedule!r} has no {kind.value} report")
    months, day = rule
    _first, last = period_of(kind, period_start)
    year, month = _add_months(last.year, last.month, months)
    end = _month_end(year, month)
    return end if day is None else end.replace(day=min(day, end.day))


def first_report_period(
    kind: PeriodKind | str, issued_on: dt.date | dt.datetime
) -> tuple[dt.date, dt.date]:
    """The first period of ``kind`` needing a report of its own for a permit issued on
    ``issued_on`` (HJ 944-2018 5.1): the period of issue when the permit was held at least three
    months of the year, one month of the quarter or ten days of the month (the issue day
    counted), otherwise the next period, which then reports both."""
    kind = period_kind(kind)
    issued = beijing_date(issued_on)
    first, last = period_of(kind, issued)
    unit, count = _thresholds()[kind]
    if unit == "days":
        held_enough = (last - issued).days + 1 >= count
    else:
        year, month = _add_months(issued.year, issued.month, count)
        day = min(issued.day, _month_end(year, month).day)
        held_enough = dt.date(year, month, day) <= last + dt.timedelta(days=1)
    if held_enough:
        return first, last
    return period_of(kind, last + dt.timedelta(days=1))


def management_class(value: ManagementClass | str) -> ManagementClass:
    """``value`` as a :class:`ManagementClass` (its value or 重点管理 / 简化管理 / 登记管理)."""
    if isinstance(value, ManagementClass):
        return value
    found = _CLASS_ALIASES.get(str(value).strip())
    if found is not None:
        return found
    try:
        return ManagementClass(str(value).strip())
    except ValueError:
        names = ", ".join(m.value for m in ManagementClass)
        raise ValueError(
            f"management_class must be one of {names} (or 重点管理, 简化管理, 登记管理); "
            f"got {value!r}"
        ) from None


def periods_required(management_class_: ManagementClass | str) -> set[PeriodKind]:
    """The reports a unit of a management class files (``data/report_rules.csv``, EcoHub's
    reading: see the module docstring); the permit's own requirements prevail."""
    found = management_class(management_class_)
    return {PeriodKind(row["kind"]) for row in _table("required") if row["name"] == found.value}


@cache
def _sections() -> dict[PeriodKind, tuple[Section, ...]]:
    found: dict[PeriodKind, list[tuple[int, Section]]] = {}
    for row in _table("section"):
        section = Section(row["key"], row["zh"], row["en"], row["value"] == "required")
        found.setdefault(PeriodKind(row["kind"]), []).append((int(row["order"]), section))
    return {kind: tuple(s for _order, s in sorted(rows)) for kind, rows in found.items()}


def sections(period_kind_: PeriodKind | str) -> list[Section]:
    """The sections of a report of ``period_kind_`` in order, each ``(key, zh, en, required)``:
    the annual report's from HJ 944-2018 5.3.1, the others from the permits read."""
    return list(_sections()[period_kind(period_kind_)])


# --- self-monitoring ---------------------------------------------------------------------------


def frequency(value: Frequency | str) -> Frequency:
    """``value`` as a :class:`Frequency` (``1次/季`` and ``1次/季度`` alike; 自动, 连续)."""
    if isinstance(value, Frequency):
        return value
    text = str(value).strip().replace(" ", "").replace("／", "/")
    found = _FREQUENCY_ALIASES.get(text) or _FREQUENCY_ALIASES.get(text.lower())
    if found is not None:
        return found
    try:
        return Frequency(text)
    except ValueError:
        names = ", ".join(m.value for m in Frequency)
        raise ValueError(f"frequency must be one of {names}; got {value!r}") from None


def _unit_index(freq: Frequency, day: dt.date) -> int:
    """An index of the calendar unit of ``freq`` holding ``day``, consecutive units
    consecutive."""
    if freq is Frequency.DAILY:
        return day.toordinal()
    if freq is Frequency.WEEKLY:
        return (day.toordinal() - day.weekday()) // 7  # the week's Monday
    months = {
        Frequency.MONTHLY: 1,
        Frequency.QUARTERLY: 3,
        Frequency.SEMIANNUAL: 6,
        Frequency.ANNUAL: 12,
    }[freq]
    return (day.year * 12 + day.month - 1) // months


def _check_range(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    start, end = beijing_date(start), beijing_date(end)
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    return start, end


def expected_samples(frequency_: Frequency | str, start_date: dt.date, end_date: dt.date) -> int:
    """The samples expected from ``start_date`` to ``end_date``, both included: one per
    calendar unit of the frequency the range touches (a week runs Monday to Sunday), and for
    automatic monitoring 24 hourly values a day. A quarter at 1次/月 expects 3, January 2024 at
    1次/周 expects 5 (its days fall in five weeks), at 自动监测 744."""
    freq = frequency(frequency_)
    start, end = _check_range(start_date, end_date)
    if freq is Frequency.AUTOMATIC:
        return ((end - start).days + 1) * HOURS_PER_DAY
    return _unit_index(freq, end) - _unit_index(freq, start) + 1


@dataclass(frozen=True)
class Completeness:
    """Samples expected and held for one monitoring point and pollutant."""

    frequency: Frequency
    expected: int
    held: int  # periods (or hours, for automatic monitoring) holding at least one sample
    missing: int
    ratio: float  # held / expected, at most 1; 1 when nothing is expected


T = TypeVar("T")


def _held(
    freq: Frequency, start: dt.date, end: dt.date, held: int | Iterable[dt.date | dt.datetime]
) -> int:
    if isinstance(held, bool) or not isinstance(held, int | Iterable):
        raise ValueError(f"held must be a count or the sample dates; got {held!r}")
    if isinstance(held, int):
        if held < 0:
            raise ValueError(f"held must be >= 0; got {held}")
        return held
    units: set[object] = set()
    for moment in held:
        day = beijing_date(moment)
        if not start <= day <= end:
            continue
        if freq is Frequency.AUTOMATIC:
            hour = 0
            if isinstance(moment, dt.datetime):
                hour = (moment.astimezone(BEIJING) if moment.tzinfo else moment).hour
            units.add((day, hour))
        else:
            units.add(_unit_index(freq, day))
    return len(units)


def completeness(
    frequency_: Frequency | str,
    start_date: dt.date,
    end_date: dt.date,
    held: int | Iterable[dt.date | dt.datetime],
) -> Completeness:
    """How complete one point's and pollutant's self-monitoring is from ``start_date`` to
    ``end_date``. ``held`` is either a count or the sample times: given times, a period counts
    once however many samples fall in it (three samples in January do not make a quarter at
    1次/月 complete), and hourly values count by their Beijing hour."""
    freq = frequency(frequency_)
    start, end = _check_range(start_date, end_date)
    expected = expected_samples(freq, start, end)
    count = _held(freq, start, end, held)
    covered = min(count, expected)
    ratio = 1.0 if expected == 0 else covered / expected
    return Completeness(freq, expected, count, expected - covered, ratio)


def completeness_by_point(
    plan: Mapping[T, Frequency | str],
    held: Mapping[T, int | Iterable[dt.date | dt.datetime]],
    start_date: dt.date,
    end_date: dt.date,
) -> dict[T, Completeness]:
    """:func:`completeness` of every entry of a monitoring plan, keyed as the plan is (e.g. by
    ``(point, pollutant)``); an entry with nothing in ``held`` holds nothing."""
    return {
        key: completeness(freq, start_date, end_date, held.get(key, 0))
        for key, freq in plan.items()
    }
