"""The discharge-permit procedure as pure rules: the kinds of application, their steps
and the steps each may follow, the periods of 《排污许可管理条例》(2021) and
《行政许可法》 (``data/permit_deadlines.csv``, a table a locality may edit), and the
validity of the version a decision issues.

- 第十二条: the agency decides within 20 days of acceptance for simplified management
  (简化管理), 30 for key management (重点管理), 45 where a site check (现场核查) is needed.
- 第十四条: a permit is valid for 5 years; a renewal (延续) is applied for 60 days
  before expiry and reviewed within 20 days; a change of name, address, legal
  representative or principal (变更) is applied for within 30 days of the change.
- 行政许可法 第三十二条: incomplete material is told to the applicant at once or within
  5 days, else the application counts as accepted on receipt; 第八十二条: licensing
  periods count working days, which skip the public holidays and count the make-up
  working days (调休) of the State Council's yearly notices
  (:mod:`ecohub.standards.holidays`, :func:`public_calendar`).

The versions: a new permit's first version runs 5 years from the issue day; a change
issues a version from its effective day to the end of the version it changes (which then
ends the day before); a renewal issues a version from the day after the current one
ends, for 5 years.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

from ecohub.clock import add_working_days
from ecohub.permits.report_rules import ManagementClass
from ecohub.standards import holidays
from ecohub.standards.holidays import Calendar


class ApplicationKind(enum.StrEnum):
    NEW = "new"  # 首次申请
    CHANGE = "change"  # 变更
    RENEWAL = "renewal"  # 延续


class ApplicationStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # 提交: awaiting acceptance
    ACCEPTED = "accepted"  # 受理: under review
    NOT_ACCEPTED = "not_accepted"  # 不予受理 (with the reason)
    ISSUED = "issued"  # 核发 / 准予变更 / 准予延续: a version was issued
    REFUSED = "refused"  # 不予许可 (with the reason in writing, 第十二条)
    WITHDRAWN = "withdrawn"  # 撤回 by the applicant


class ReportStatus(enum.StrEnum):
    DRAFT = "draft"  # generated from the data, being completed by the enterprise
    SUBMITTED = "submitted"  # signed and submitted
    ACCEPTED = "accepted"  # reviewed by the agency
    RETURNED = "returned"  # returned by the agency for correction (then draft again)


# The steps each status may move to, and who takes them.
TRANSITIONS: dict[ApplicationStatus, dict[ApplicationStatus, str]] = {
    ApplicationStatus.SUBMITTED: {
        ApplicationStatus.ACCEPTED: "agency",
        ApplicationStatus.NOT_ACCEPTED: "agency",
        ApplicationStatus.WITHDRAWN: "enterprise",
    },
    ApplicationStatus.ACCEPTED: {
        ApplicationStatus.ISSUED: "agency",
        ApplicationStatus.REFUSED: "agency",
        ApplicationStatus.WITHDRAWN: "enterprise",
    },
}
# Steps that need a written reason.
NEEDS_REASON = frozenset({ApplicationStatus.NOT_ACCEPTED, ApplicationStatus.REFUSED})


class ProcedureError(ValueError):
    """A step the procedure does not allow (the message says why)."""


@dataclass(frozen=True)
class Period:
    key: str
    days: int
    working: bool
    source: str


@lru_cache(maxsize=1)
def deadline_table() -> dict[str, Period]:
    """The periods of ``data/permit_deadlines.csv`` by key."""
    text = (files("ecohub.permits") / "data" / "permit_deadlines.csv").read_text("utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    table = {}
    for row in rows:
        if row["unit"] not in {"working", "calendar"}:
            raise ValueError(f"permit_deadlines.csv: {row['key']}: unit {row['unit']!r}")
        table[row["key"]] = Period(
            row["key"], int(row["days"]), row["unit"] == "working", row["source"]
        )
    return table


def public_calendar() -> Calendar:
    """The State Council's holidays and make-up working days (:mod:`ecohub.standards.holidays`,
    the one table the supervision area counts by too)."""
    return holidays.packaged()


def _after(
    period: Period, start: dt.date, holidays: Collection[dt.date], workdays: Collection[dt.date]
) -> dt.date:
    if period.working:
        return add_working_days(start, period.days, holidays, workdays)
    return start + dt.timedelta(days=period.days)


def check_step(current: str, wanted: str, by: str, reason: str | None) -> ApplicationStatus:
    """The new status if ``by`` ('agency' or 'enterprise') may move an application from
    ``current`` to ``wanted``; :class:`ProcedureError` otherwise."""
    try:
        now, target = ApplicationStatus(current), ApplicationStatus(wanted)
    except ValueError as error:
        raise ProcedureError(str(error)) from None
    allowed = TRANSITIONS.get(now, {})
    if target not in allowed:
        raise ProcedureError(f"an application {now.value} cannot become {target.value}")
    if allowed[target] != by:
        raise ProcedureError(f"only the {allowed[target]} may make an application {target.value}")
    if target in NEEDS_REASON and not (reason or "").strip():
        raise ProcedureError(f"{target.value} needs a written reason")
    return target


def acceptance_due(
    submitted_on: dt.date,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
) -> dt.date:
    """The last day to accept or tell what is missing (行政许可法 第三十二条)."""
    return _after(deadline_table()["acceptance"], submitted_on, holidays, workdays)


def decision_due(
    accepted_on: dt.date,
    kind: str,
    management_class: str,
    site_check: bool,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
) -> dt.date:
    """The last day of the agency's decision (第十二条; a renewal's review: 第十四条)."""
    table = deadline_table()
    if ApplicationKind(kind) == ApplicationKind.RENEWAL:
        period = table["renewal_review"]
    elif ManagementClass(management_class) != ManagementClass.KEY:
        period = table["decision_simplified"]
    else:
        period = table["decision_key_site_check" if site_check else "decision_key"]
    return _after(period, accepted_on, holidays, workdays)


def renewal_apply_by(valid_to: dt.date) -> dt.date:
    """The last day to apply for a renewal: 60 days before the permit expires (第十四条;
    ``valid_to`` is its last valid day, so it expires at the end of it)."""
    return (
        valid_to
        + dt.timedelta(days=1)
        - dt.timedelta(days=deadline_table()["renewal_apply_before_expiry"].days)
    )


def change_apply_by(changed_on: dt.date) -> dt.date:
    """The last day to apply for a change of name, address or representative (第十四条)."""
    return changed_on + dt.timedelta(days=deadline_table()["change_apply_within"].days)


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` moved by whole years (29 February to 28 February in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def new_validity(issued_on: dt.date) -> tuple[dt.date, dt.date]:
    """A new permit's first and last valid day: 5 years from the issue day (第十四条)."""
    years = deadline_table()["validity_years"].days
    return issued_on, add_years(issued_on, years) - dt.timedelta(days=1)


def changed_validity(
    effective_on: dt.date, current: tuple[dt.date, dt.date]
) -> tuple[dt.date, dt.date]:
    """A change's version: from its effective day to the end of the current version, which
    must have begun before it and not yet ended."""
    first, last = current
    if not first < effective_on <= last:
        raise ProcedureError(
            f"a change effective on {effective_on} must fall after {first} and by {last}"
        )
    return effective_on, last


def renewed_validity(current_last: dt.date) -> tuple[dt.date, dt.date]:
    """A renewal's version: the day after the current one ends, for 5 years."""
    return new_validity(current_last + dt.timedelta(days=1))
