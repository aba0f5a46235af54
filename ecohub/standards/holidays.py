"""The public holidays and make-up working days (调休) of the State Council's yearly
notices (``data/public_holidays.csv``, each row with its notice): the one calendar by
which a penalty case counts its working-day periods (行政处罚法 第八十五条) and rolls a
calendar period ending on a rest day (民法典 第二百零三条), and the permit procedure its
licensing periods (行政许可法 第八十二条). Pure: the packaged table, read once. Past
``last_year`` only weekends are rest days: add each year's rows when its notice is
published."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True)
class Calendar:
    """Public holidays (法定节假日 and the rest of each holiday period) and the weekend
    days made working days (调休上班)."""

    holidays: frozenset[dt.date]
    workdays: frozenset[dt.date]

    @property
    def last_year(self) -> int | None:
        """The last year the table lists (later years: weekends only)."""
        return max((day.year for day in self.holidays | self.workdays), default=None)


def parse(text: str, name: str = "public_holidays.csv") -> Calendar:
    """A calendar from the table's text (lines starting with '#' are its sources); a bad
    row is refused naming its line."""
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(line for _n, line in lines)))
    for (number, _line), row in zip(lines[1:], reader, strict=False):
        try:
            day = dt.date.fromisoformat(row["day"])
        except (TypeError, ValueError):
            message = f"{name} line {number}: day {row.get('day')!r} is not a date"
            raise ValueError(message) from None
        if row.get("kind") == "holiday":
            holidays.add(day)
        elif row.get("kind") == "workday":
            if day.weekday() < 5:
                raise ValueError(f"{name} line {number}: workday {day} is not a weekend day")
            workdays.add(day)
        else:
            kind = row.get("kind")
            raise ValueError(f"{name} line {number}: kind {kind!r}, expected holiday or workday")
    both = holidays & workdays
    if both:
        raise ValueError(f"{name}: {min(both)} is both a holiday and a working day")
    return Calendar(frozenset(holidays), frozenset(workdays))


@cache
def packaged() -> Calendar:
    """The packaged table (``data/public_holidays.csv``)."""
    text = (files("ecohub.standards") / "data" / "public_holidays.csv").read_text("utf-8")
    return parse(text)
