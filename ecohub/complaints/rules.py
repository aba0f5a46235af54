"""Pure rules of handling public complaints (环境信访, 12369 举报): the media a complaint
is about, the steps of its handling, the handling deadlines (a data table,
``data/deadlines.csv``, with each row's citation: ``docs/complaints.md``) and the
routing of an event to the agency responsible for its region and medium.

No database, no settings: the service passes the tables in.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from ecohub.clock import add_working_days, is_working_day


class Medium(enum.StrEnum):
    """What a complaint is about (the 12369 platform's 举报类别)."""

    AIR = "air"  # 大气 (odour, smoke, dust, cooking fumes)
    WATER = "water"  # 水
    NOISE = "noise"  # 噪声
    WASTE = "waste"  # 固体废物 (incl. hazardous waste)
    RADIATION = "radiation"  # 辐射
    ECOLOGY = "ecology"  # 生态
    OTHER = "other"


class Step(enum.StrEnum):
    """The recorded steps of an event's handling."""

    RECEIVED = "received"  # 登记 (one per complaint)
    ACCEPTED = "accepted"  # 受理
    NOT_ACCEPTED = "not_accepted"  # 不予受理
    TRANSFERRED = "transferred"  # 转办 to another agency, with the reason
    EXTENDED = "extended"  # 延期, with the days and the reason
    REPLIED = "replied"  # 办结 with findings and reply
    RATED = "rated"  # a complainant's satisfaction
    OBJECTED = "objected"  # a complainant's objection (asks for review)
    REOPENED = "reopened"  # the agency accepts the objection: 复查
    DISMISSED = "dismissed"  # the agency finds the objection unjustified
    CASE = "case"  # linked to a penalty case
    CLOSED = "closed"


# Events that start a clock in ``data/deadlines.csv``.
CLOCK_EVENTS = ("received", "accepted", "replied", "review_requested", "review_replied")


@dataclass(frozen=True)
class Deadline:
    """One handling deadline: done within ``days`` (calendar or working) after the date of
    ``counted_from``, plus at most ``extension_days`` with approval."""

    rule: str
    name_zh: str
    name_en: str
    counted_from: str
    days: int
    day_kind: str
    extension_days: int
    citation: str

    def __post_init__(self) -> None:
        if self.counted_from not in CLOCK_EVENTS:
            raise ValueError(f"deadlines.csv {self.rule}: unknown event {self.counted_from!r}")
        if self.day_kind not in ("calendar", "working"):
            raise ValueError(f"deadlines.csv {self.rule}: day_kind must be calendar or working")
        if self.days <= 0 or self.extension_days < 0:
            raise ValueError(f"deadlines.csv {self.rule}: days must be positive")


def parse_deadlines(text: str, source: str = "deadlines.csv") -> dict[str, Deadline]:
    """Deadlines from CSV text (lines starting with '#' are notes); a bad row raises
    ``ValueError`` naming the line."""
    lines = text.splitlines()
    body = [(number, line) for number, line in enumerate(lines, 1) if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(line for _, line in body)))
    table = {}
    for index, row in enumerate(reader, 1):
        number = body[index][0] if index < len(body) else len(lines)
        try:
            table[row["rule"]] = Deadline(
                rule=row["rule"],
                name_zh=row["name_zh"],
                name_en=row["name_en"],
                counted_from=row["counted_from"],
                days=int(row["days"]),
                day_kind=row["day_kind"],
                extension_days=int(row["extension_days"]),
                citation=row["citation"],
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source} line {number}: {error}") from error
    for needed in ("accept", "complete"):
        if needed not in table:
            raise ValueError(f"{source}: the rule {needed!r} is missing")
    return table


@cache
def deadlines() -> Mapping[str, Deadline]:
    """The packaged deadlines by rule."""
    return parse_deadlines((files("ecohub.complaints") / "data" / "deadlines.csv").read_text())


def due_date(
    rule: Deadline,
    start: dt.date,
    extension_days: int = 0,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
) -> dt.date:
    """The last day of ``rule``'s period started on ``start``: the first day not counted
    (民法典 第二百零一条), a calendar period ending on a rest day running to the next
    working day (第二百零三条), a working-day period counting working days only."""
    if not 0 <= extension_days <= rule.extension_days:
        raise ValueError(
            f"{rule.rule}: an extension of {extension_days} days; the rules allow at most "
            f"{rule.extension_days}"
        )
    total = rule.days + extension_days
    if rule.day_kind == "working":
        return add_working_days(start, total, holidays, workdays)
    last = start + dt.timedelta(days=total)
    while not is_working_day(last, holidays, workdays):
        last += dt.timedelta(days=1)
    return last


def event_deadlines(
    dates: Mapping[str, dt.date | None],
    today: dt.date,
    extension_days: int = 0,
    table: Mapping[str, Deadline] | None = None,
) -> list[dict[str, Any]]:
    """Every deadline of an event whose clock has started. ``dates`` holds the dates of
    ``received``, ``accepted``, ``not_accepted``, ``replied``, ``review_requested`` and
    ``review_replied`` (None: not yet). The acceptance is done by accepting or refusing;
    the handling by the first reply; the review by the reply after the review request.
    A complainant's window (``review_request``) is shown, never overdue for the agency."""
    rules = deadlines() if table is None else table
    done_by = {
        "accept": dates.get("accepted") or dates.get("not_accepted"),
        "complete": dates.get("replied"),
        "review": dates.get("review_replied"),
    }
    out = []
    for rule in rules.values():
        start = dates.get(rule.counted_from)
        if start is None:
            continue
        extension = extension_days if rule.rule == "complete" else 0
        due = due_date(rule, start, min(extension, rule.extension_days))
        window = rule.rule not in done_by
        done = done_by.get(rule.rule)
        out.append(
            {
                "rule": rule.rule,
                "name_zh": rule.name_zh,
                "name_en": rule.name_en,
                "due": due.isoformat(),
                "done_on": done.isoformat() if done else None,
                "window": window,
                "open": window and today <= due,
                "overdue": not window and done is None and today > due,
                "days_over": max(0, (today - due).days) if not window and done is None else 0,
                "late": done is not None and done > due,
                "citation": rule.citation,
            }
        )
    return sorted(out, key=lambda item: item["due"])


@dataclass(frozen=True)
class Agency:
    """A handling agency as routing sees it."""

    code: str
    region_code: str
    media: tuple[str, ...]  # empty: every medium
    parent_code: str | None = None


def route(agencies: Sequence[Agency], region_code: str | None, medium: str) -> Agency | None:
    """The agency responsible for ``medium`` in ``region_code`` (GB/T 2260): the one of
    the region itself, else of its city (first four digits + 00), else of its province
    (first two + 0000); among several at the same level one naming the medium goes
    before one handling every medium. None: no agency covers it (the event waits for
    a manual dispatch)."""
    if not region_code or len(region_code) != 6:
        return None
    levels = (region_code, region_code[:4] + "00", region_code[:2] + "0000")
    for level in dict.fromkeys(levels):
        here = [agency for agency in agencies if agency.region_code == level]
        named = [agency for agency in here if medium in agency.media]
        general = [agency for agency in here if not agency.media]
        for group in (named, general):
            if group:
                return min(group, key=lambda agency: agency.code)
    return None
