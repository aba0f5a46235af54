"""Emissions accounting from the stored monitoring data: for one outlet and one month
(Beijing calendar), the mass of each pollutant its permit limits, hour by hour from the
valid hourly means of concentration and flow at the outlet's points, with the
substitution rules of :mod:`ecohub.standards.cems` for missing and invalid hours,
shutdown hours (HJ 212 data flag ``F``) emitting nothing, and the share of hours
measured versus substituted.

Flow: HJ 212's ``a00000`` (flue gas, m³/s) and ``w00000`` (waste water, L/s) are taken
to m³/h. Concentrations are the hourly means as measured (not corrected to the permit's
reference oxygen: the mass is what left the stack).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, select

from ecohub.clock import local_zone
from ecohub.registry.models import (
    Enterprise,
    MonitoringPoint,
    Outlet,
    Parameter,
    Permit,
    PermitLimit,
)
from ecohub.standards import cems
from ecohub.timeseries.tables import observations, rollups

HOUR = dt.timedelta(hours=1)
# The flow parameter of each outlet kind and its factor to m³/h.
FLOW = {"gas": ("a00000", 3600.0), "water": ("w00000", 3.6)}


class AccountingError(ValueError):
    """A request the accounting cannot answer (the message says why)."""


@dataclass(frozen=True)
class PollutantPeriod:
    """One pollutant of one outlet in one month, as accounted."""

    parameter_code: str
    name: str
    unit: str
    limit: float | None
    annual_mass_limit_kg: float | None
    accounting: cems.Accounting
    mean_concentration: float | None  # of the measured hours (实施条例 第十条)
    highest_concentration: float | None  # the highest measured hourly mean
    # The concentration limit in force at each hour (None where no version in force
    # limits the pollutant): a change or renewal mid-period changes it at its date.
    hour_limits: tuple[float | None, ...] = ()

    def limit_spans(self, hours: Sequence[dt.datetime]) -> list[dict[str, Any]]:
        """The limit's spans over ``hours`` (the hours accounted): from, to (the last
        hour's local date) and the limit, one entry per change."""
        zone = local_zone()
        spans: list[dict[str, Any]] = []
        for at, limit in zip(hours, self.hour_limits, strict=True):
            day = at.astimezone(zone).date().isoformat()
            if spans and spans[-1]["limit"] == limit:
                spans[-1]["to"] = day
            else:
                spans.append({"from": day, "to": day, "limit": limit})
        return spans

    def summary(self) -> PollutantTotals:
        """The totals without the hours: what the tax and its page read."""
        return PollutantTotals(
            parameter_code=self.parameter_code,
            name=self.name,
            unit=self.unit,
            limit=self.limit,
            annual_mass_limit_kg=self.annual_mass_limit_kg,
            totals=self.accounting.totals,
            usable_as_basis=self.accounting.usable_as_basis,
            mean_concentration=self.mean_concentration,
            highest_concentration=self.highest_concentration,
        )


@dataclass(frozen=True)
class PollutantTotals:
    """One pollutant of one outlet over a span, accounted, without its hours: from
    :meth:`PollutantPeriod.summary`, or from the accounting of every outlet at once
    (:mod:`ecohub.permits.bulk`)."""

    parameter_code: str
    name: str
    unit: str
    limit: float | None
    annual_mass_limit_kg: float | None
    totals: cems.Totals
    usable_as_basis: bool
    mean_concentration: float | None
    highest_concentration: float | None


def month_hours(year: int, month: int) -> list[dt.datetime]:
    """The hours (UTC instants) of a calendar month in the local time zone."""
    zone = local_zone()
    start = dt.datetime(year, month, 1, tzinfo=zone)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return span_hours(start, end)


def year_hours(year: int) -> list[dt.datetime]:
    """The hours of a calendar year in the local time zone."""
    zone = local_zone()
    return span_hours(
        dt.datetime(year, 1, 1, tzinfo=zone), dt.datetime(year + 1, 1, 1, tzinfo=zone)
    )


def span_hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    hours, at = [], start.astimezone(dt.UTC)
    while at < end.astimezone(dt.UTC):
        hours.append(at)
        at += HOUR
    return hours


def outlets_of(connection: Connection, uscc: str) -> tuple[Any, list[Any]]:
    enterprise = connection.execute(select(Enterprise).where(Enterprise.uscc == uscc)).first()
    if enterprise is None:
        raise AccountingError(f"no enterprise with credit code {uscc!r}")
    found = connection.execute(
        select(Outlet).where(Outlet.enterprise_id == enterprise.id).order_by(Outlet.code)
    ).all()
    return enterprise, list(found)


def _limits(
    connection: Connection, outlet_id: int, first: dt.date, last: dt.date
) -> tuple[dict[str, tuple[float, float | None]], list[tuple[dt.date, dt.date, dict[str, float]]]]:
    """The concentration and annual mass limits (kg) of the permit in force in the period
    (the latest one), and every version in force in it: (valid from, valid to, its
    concentration limits), oldest first."""
    rows = connection.execute(
        select(
            PermitLimit.parameter_code,
            PermitLimit.concentration_limit,
            PermitLimit.annual_mass_limit_kg,
            Permit.id,
            Permit.valid_from,
            Permit.valid_to,
        )
        .join(Permit, Permit.id == PermitLimit.permit_id)
        .where(
            PermitLimit.outlet_id == outlet_id,
            Permit.valid_from <= last,
            Permit.valid_to >= first,
        )
        .order_by(Permit.valid_from, Permit.id)
    ).all()
    versions: dict[int, tuple[dt.date, dt.date, dict[str, float]]] = {}
    for code, limit, _, permit, valid_from, valid_to in rows:
        versions.setdefault(permit, (valid_from, valid_to, {}))[2][code] = limit
    return {code: (limit, annual) for code, limit, annual, *_ in rows}, list(versions.values())


def hour_limits(
    versions: list[tuple[dt.date, dt.date, dict[str, float]]],
    code: str,
    hours: Sequence[dt.datetime],
) -> tuple[float | None, ...]:
    """The limit of ``code`` in force at each hour: the latest version (by valid from)
    whose days hold the hour's local date; None where none does or it does not limit
    ``code``."""
    zone = local_zone()
    found: dict[dt.date, float | None] = {}
    out = []
    for at in hours:
        day = at.astimezone(zone).date()
        if day not in found:
            holding = [limits for start, end, limits in versions if start <= day <= end]
            found[day] = holding[-1].get(code) if holding else None
        out.append(found[day])
    return tuple(out)


def _series(
    connection: Connection, points: list[int], codes: Sequence[str], hours: list[dt.datetime]
) -> dict[str, dict[dt.datetime, tuple[float | None, bool]]]:
    """Each parameter's hourly mean at the outlet's points: (value, valid) by hour. Where
    two points of the outlet both have an hour, the valid one is taken, and of two valid
    ones the point with the lowest id (the outlet's first registered), as in
    :mod:`ecohub.permits.bulk`."""
    found: dict[str, dict[dt.datetime, tuple[float | None, bool]]] = defaultdict(dict)
    rows = connection.execute(
        select(rollups.c.parameter_code, rollups.c.ts, rollups.c.value, rollups.c.valid)
        .where(
            rollups.c.point_id.in_(points),
            rollups.c.parameter_code.in_(list(codes)),
            rollups.c.period == "hour",
            rollups.c.statistic == "mean",
            rollups.c.ts >= hours[0],
            rollups.c.ts <= hours[-1],
        )
        .order_by(rollups.c.point_id)
    ).all()
    for code, ts, value, valid in rows:
        earlier = found[code].get(ts)
        if earlier is None or (valid and not earlier[1]):
            found[code][ts] = (value, bool(valid) and value is not None)
    return found


def _shutdown(
    connection: Connection, points: list[int], hours: list[dt.datetime]
) -> set[dt.datetime]:
    """Hours with a value flagged ``F`` (停运, HJ 212-2017 table 7) at the outlet's points."""
    rows = connection.execute(
        select(observations.c.ts).where(
            observations.c.point_id.in_(points),
            observations.c.data_flag == "F",
            and_(observations.c.ts >= hours[0], observations.c.ts < hours[-1] + HOUR),
        )
    ).scalars()
    return {ts.replace(minute=0, second=0, microsecond=0) for ts in rows}


def _state(entry: tuple[float | None, bool] | None) -> cems.HourState:
    if entry is None:
        return cems.HourState.MISSING
    return cems.HourState.VALID if entry[1] else cems.HourState.INVALID


def account_outlet(
    connection: Connection, outlet: Any, hours: list[dt.datetime]
) -> list[PollutantPeriod]:
    """Every pollutant the outlet's permit limits, accounted over ``hours`` (a month's or
    a year's, :func:`month_hours`, :func:`year_hours`)."""
    if outlet.kind not in FLOW:
        raise AccountingError(f"outlet {outlet.code}: kind {outlet.kind!r} has no flow")
    zone = local_zone()
    limits, versions = _limits(
        connection,
        outlet.id,
        hours[0].astimezone(zone).date(),
        hours[-1].astimezone(zone).date(),
    )
    points = list(
        connection.execute(
            select(MonitoringPoint.id).where(MonitoringPoint.outlet_id == outlet.id)
        ).scalars()
    )
    flow_code, factor = FLOW[outlet.kind]
    if not points or not limits:
        return []
    series = _series(connection, points, [*limits, flow_code], hours)
    stopped = _shutdown(connection, points, hours)
    names = {
        row.code: (row.name_zh, row.unit)
        for row in connection.execute(
            select(Parameter.code, Parameter.name_zh, Parameter.unit).where(
                Parameter.code.in_(list(limits))
            )
        ).all()
    }
    flows = series.get(flow_code, {})
    out = []
    for code, (limit, annual) in sorted(limits.items()):
        values = series.get(code, {})
        made = []
        for at in hours:
            entry, flow = values.get(at), flows.get(at)
            state = cems.HourState.SHUTDOWN if at in stopped else _state(entry)
            made.append(
                cems.Hour(
                    concentration=entry[0] if entry else None,
                    flow=flow[0] * factor if flow and flow[0] is not None else None,
                    state=state,
                    flow_state=None if state == cems.HourState.SHUTDOWN else _state(flow),
                )
            )
        accounting = (
            cems.account_flue_gas(made) if outlet.kind == "gas" else cems.account_wastewater(made)
        )
        measured = [
            hour.concentration
            for hour in accounting.hours
            if hour.concentration_basis == cems.Basis.MEASURED and hour.concentration is not None
        ]
        name, unit = names.get(code, (code, ""))
        out.append(
            PollutantPeriod(
                parameter_code=code,
                name=name,
                unit=unit,
                limit=limit,
                annual_mass_limit_kg=annual,
                accounting=accounting,
                mean_concentration=sum(measured) / len(measured) if measured else None,
                highest_concentration=max(measured) if measured else None,
                hour_limits=hour_limits(versions, code, hours),
            )
        )
    return out


def enterprise_id_of(engine: Engine, uscc: str) -> int | None:
    with engine.connect() as connection:
        found = connection.execute(select(Enterprise.id).where(Enterprise.uscc == uscc)).scalar()
    return int(found) if found is not None else None


def enterprise_month(engine: Engine, uscc: str, year: int, month: int) -> dict[str, Any]:
    """Every outlet of the enterprise, accounted for the month."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2200:
        raise AccountingError(f"month {year}-{month:02d} is not a month")
    with engine.connect() as connection:
        enterprise, outlets = outlets_of(connection, uscc)
        hours = month_hours(year, month)
        accounted = {outlet.id: account_outlet(connection, outlet, hours) for outlet in outlets}
    return {"enterprise": enterprise, "outlets": outlets, "accounted": accounted}


def enterprise_year(engine: Engine, uscc: str, year: int) -> dict[str, Any]:
    """The year's mass of every pollutant of every outlet against the permit's annual
    mass limit, with each month's mass and the hours measured and substituted."""
    if not 2000 <= year <= 2200:
        raise AccountingError(f"year {year} is out of range")
    hours = year_hours(year)
    zone = local_zone()
    months = [(at.astimezone(zone).year, at.astimezone(zone).month) for at in hours]
    with engine.connect() as connection:
        enterprise, outlets = outlets_of(connection, uscc)
        accounted = {outlet.id: account_outlet(connection, outlet, hours) for outlet in outlets}
    rows = []
    for outlet in outlets:
        for item in accounted[outlet.id]:
            totals = item.accounting.totals
            by_month = cems.totals_by_key(months, item.accounting)
            limit = item.annual_mass_limit_kg
            rows.append(
                {
                    "outlet": outlet.code,
                    "parameter_code": item.parameter_code,
                    "name": item.name,
                    "mass_kg": round(totals.mass_kg, 4),
                    "annual_mass_limit_kg": limit,
                    "share_of_limit": round(totals.mass_kg / limit, 4) if limit else None,
                    "over_limit": bool(limit) and totals.mass_kg > (limit or 0),
                    "hours_measured": totals.hours_measured,
                    "hours_substituted": totals.hours_substituted,
                    "hours_shutdown": totals.hours_shutdown,
                    "hours_unresolved": totals.hours_unresolved,
                    "usable_as_basis": item.accounting.usable_as_basis,
                    "months": {
                        f"{key[0]}-{key[1]:02d}": round(value.mass_kg, 4)
                        for key, value in by_month.items()
                    },
                }
            )
    return {"uscc": enterprise.uscc, "name": enterprise.name, "year": year, "pollutants": rows}
