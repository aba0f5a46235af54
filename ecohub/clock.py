"""Time on the ground floor: the current instant in UTC, China Standard Time, the
starts of hours and local days, and working days (legal periods counted in them).

The store keeps UTC; HJ 212 and CNEMC times are Beijing time (UTC+8, no daylight saving),
converted at the edge. Daily values follow the local calendar day of ``ECOHUB_TIMEZONE``
(default Asia/Shanghai: Chinese daily means run from local midnight to midnight, GB
3095-2012 3.8). In memory, UTC instants carry the one ``datetime.UTC`` object as their
time zone: Python compares two aware datetimes field by field only when they share it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from functools import lru_cache
from zoneinfo import ZoneInfo

from ecohub.config import get_settings

# China Standard Time, the time of HJ 212 packets and of CNEMC's publications.
CST = dt.timezone(dt.timedelta(hours=8), "CST")
BEIJING = ZoneInfo("Asia/Shanghai")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_zone() -> ZoneInfo:
    """The time zone whose calendar days the daily values follow (``ECOHUB_TIMEZONE``,
    default Asia/Shanghai)."""
    return _zone(get_settings().timezone)


def local_today() -> dt.date:
    """Today's date in the local calendar (Beijing by default)."""
    return utcnow().astimezone(local_zone()).date()


def hour_start(ts: dt.datetime) -> dt.datetime:
    """The start of the UTC hour holding ``ts`` (whole hours are the same in UTC and in
    Beijing time)."""
    return ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_start(ts: dt.datetime) -> dt.datetime:
    """The UTC instant of local midnight starting the local day of ``ts``."""
    local = ts.astimezone(local_zone())
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)


def local_day_start(day: dt.date) -> dt.datetime:
    """The UTC instant of local midnight starting the local calendar day ``day``."""
    return dt.datetime(day.year, day.month, day.day, tzinfo=local_zone()).astimezone(dt.UTC)


def local_year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants starting the local calendar year ``year`` and the next one."""
    zone = local_zone()
    return (
        dt.datetime(year, 1, 1, tzinfo=zone).astimezone(dt.UTC),
        dt.datetime(year + 1, 1, 1, tzinfo=zone).astimezone(dt.UTC),
    )


def previous_local_day(day: dt.datetime) -> dt.datetime:
    """The local midnight before ``day`` (a local midnight in UTC), DST-safe."""
    zone = local_zone()
    local = day.astimezone(zone).date() - dt.timedelta(days=1)
    return dt.datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(dt.UTC)


def local_time(moment: dt.datetime | str | None) -> str:
    """An instant as the installation's local wall time (Beijing time by default), to the
    minute: how pages show times."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(local_zone()).strftime("%Y-%m-%d %H:%M")


def iso_z(moment: dt.datetime) -> str:
    """An instant as ISO 8601 in UTC with a ``Z`` (how the API and payloads write times)."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def is_working_day(
    day: dt.date, holidays: Collection[dt.date] = (), workdays: Collection[dt.date] = ()
) -> bool:
    """Whether ``day`` is a working day: Monday to Friday unless a public holiday
    (法定节假日, ``holidays``), or a weekend day made a working day (调休, ``workdays``).
    The State Council publishes both lists each year; the caller passes them in."""
    if day in workdays:
        return True
    return day.weekday() < 5 and day not in holidays


def add_working_days(
    start: dt.date,
    days: int,
    holidays: Collection[dt.date] = (),
    workdays: Collection[dt.date] = (),
) -> dt.date:
    """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
    day, left = start, days
    while left > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day, holidays, workdays):
            left -= 1
    return day
