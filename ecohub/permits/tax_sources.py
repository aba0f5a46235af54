"""What the environmental protection tax reads besides the emissions accounting, for the
data-source order of 环境保护税法 第十条 and the reductions of 第十三条:

- the supervisory monitoring results (监督性监测, imported through the exchange with the
  tax authority into ``exchange_records``) of a month, by enterprise and outlet code;
- the month's mean measured flow of an outlet (m³/h), for a supervisory concentration ×
  the month's flow (财税〔2018〕23号 一);
- the month's mean and highest hourly concentration converted to the permit's reference
  O2 content where the limit is stated at one, as the limit alarms compare it: the
  logger's converted hourly mean (``-ZsAvg``) where it sent one, else the hourly mean
  converted with the hour's measured O2 (:func:`ecohub.standards.emission.
  reference_oxygen_concentration`, GB 13271-2014 formula (1)).

Reads only; the per-enterprise path (:func:`ecohub.permits.tax.month_tax`) and the
every-enterprise path (:func:`ecohub.permits.bulk.month_all`) call the same functions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, select

from ecohub.permits.accounting import FLOW, HOUR
from ecohub.permits.exchange_schema import Kind
from ecohub.permits.tables import exchange_records
from ecohub.registry.models import MonitoringPoint, Permit, PermitLimit
from ecohub.standards.emission import reference_oxygen_concentration
from ecohub.timeseries.tables import observations, rollups

O2_CODE = "a19001"  # 氧气含量 (%), HJ 212-2017, as the limit alarms read it


@dataclass(frozen=True)
class Supervisory:
    """One supervisory monitoring result of an outlet's pollutant (exchange kind
    ``supervisory_monitoring``)."""

    report_no: str
    pollutant: str  # as the record names it
    sampled_on: dt.date
    concentration: float  # mg/m³ (air) or mg/L (water)
    limit: float | None
    flow: float | None  # m³/h
    agency: str


@dataclass(frozen=True)
class Converted:
    """A pollutant's month at the reference O2 content: mean and highest of the measured
    hours that could be converted; ``unconverted`` hours had neither a converted mean
    nor a measured O2."""

    reference_o2: float
    mean: float | None
    highest: float | None
    hours: int
    unconverted: int


def _number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(Decimal(str(value)))
    except InvalidOperation:
        return None


def supervisory_records(
    connection: Connection, usccs: Iterable[str], year: int, month: int
) -> dict[tuple[str, str], list[Supervisory]]:
    """The supervisory monitoring results sampled in the month (by the record's
    ``sampled_on``), by (credit code, outlet code), in report order."""
    wanted = set(usccs)
    prefix = f"{year}-{month:02d}-"
    found: dict[tuple[str, str], list[Supervisory]] = defaultdict(list)
    rows = connection.execute(
        select(exchange_records.c.payload)
        .where(exchange_records.c.kind == Kind.MONITORING.value)
        .order_by(exchange_records.c.record_key)
    ).scalars()
    for payload in rows:
        if payload.get("uscc") not in wanted or not str(payload.get("sampled_on", "")).startswith(
            prefix
        ):
            continue
        concentration = _number(payload.get("concentration"))
        if concentration is None or concentration < 0:
            continue
        found[(payload["uscc"], payload["outlet_code"])].append(
            Supervisory(
                report_no=str(payload["report_no"]),
                pollutant=str(payload["pollutant"]),
                sampled_on=dt.date.fromisoformat(payload["sampled_on"]),
                concentration=concentration,
                limit=_number(payload.get("limit")),
                flow=_number(payload.get("flow")),
                agency=str(payload.get("agency", "")),
            )
        )
    return dict(found)


def _points(connection: Connection, outlet_id: int) -> list[int]:
    return sorted(
        connection.execute(
            select(MonitoringPoint.id).where(MonitoringPoint.outlet_id == outlet_id)
        ).scalars()
    )


def _hourly(
    connection: Connection, points: list[int], codes: Sequence[str], hours: list[dt.datetime]
) -> dict[tuple[str, int], dict[dt.datetime, float]]:
    """The valid hourly means of ``codes`` at ``points``: (code, point) → hour → value."""
    found: dict[tuple[str, int], dict[dt.datetime, float]] = defaultdict(dict)
    rows = connection.execute(
        select(rollups.c.parameter_code, rollups.c.point_id, rollups.c.ts, rollups.c.value).where(
            rollups.c.point_id.in_(points),
            rollups.c.parameter_code.in_(list(codes)),
            rollups.c.period == "hour",
            rollups.c.statistic == "mean",
            rollups.c.valid.is_(True),
            rollups.c.value.is_not(None),
            rollups.c.ts >= hours[0],
            rollups.c.ts <= hours[-1],
        )
    ).all()
    for code, point, ts, value in rows:
        found[(code, point)][ts] = float(value)
    return found


def _shutdown(connection: Connection, points: list[int], hours: list[dt.datetime]) -> set[Any]:
    rows = connection.execute(
        select(observations.c.ts).where(
            observations.c.point_id.in_(points),
            observations.c.data_flag == "F",
            observations.c.ts >= hours[0],
            observations.c.ts < hours[-1] + HOUR,
        )
    ).scalars()
    return {ts.replace(minute=0, second=0, microsecond=0) for ts in rows}


def month_flow(
    connection: Connection, outlet_id: int, kind: str, hours: list[dt.datetime]
) -> float | None:
    """The mean of the outlet's valid hourly flows in the month (m³/h), the outlet's
    first registered point counting where two measured an hour; None without any."""
    points = _points(connection, outlet_id)
    if not points or kind not in FLOW:
        return None
    code, factor = FLOW[kind]
    series = _hourly(connection, points, [code], hours)
    by_hour: dict[dt.datetime, float] = {}
    for point in reversed(points):  # the lowest id last: it wins
        by_hour.update(series.get((code, point), {}))
    if not by_hour:
        return None
    return sum(by_hour[at] * factor for at in sorted(by_hour)) / len(by_hour)


def reference_o2_limits(
    connection: Connection, outlet_ids: Sequence[int], first: dt.date, last: dt.date
) -> dict[int, dict[str, float]]:
    """The reference O2 content of each limit stated at one, of the latest permit version
    in force in the period (as the accounting takes the limit): outlet → code → O2 %."""
    found: dict[int, dict[str, float | None]] = defaultdict(dict)
    rows = connection.execute(
        select(PermitLimit.outlet_id, PermitLimit.parameter_code, PermitLimit.reference_o2)
        .join(Permit, Permit.id == PermitLimit.permit_id)
        .where(
            PermitLimit.outlet_id.in_(list(outlet_ids)),
            Permit.valid_from <= last,
            Permit.valid_to >= first,
        )
        .order_by(Permit.valid_from, Permit.id)
    ).all()
    for outlet_id, code, reference in rows:
        found[outlet_id][code] = reference
    return {
        outlet: {code: ref for code, ref in codes.items() if ref is not None}
        for outlet, codes in found.items()
        if any(ref is not None for ref in codes.values())
    }


def converted_hours(
    connection: Connection, outlet_id: int, references: dict[str, float], hours: list[dt.datetime]
) -> dict[str, dict[dt.datetime, float | None]]:
    """Each pollutant of ``references`` (code → reference O2 %) by measured hour (valid
    hourly mean, not shut down; the outlet's first registered point where two measured
    the hour): its concentration converted as the limit alarms convert it, None where it
    could not be (neither the logger's ``-ZsAvg`` nor a measured O2)."""
    if not references:
        return {}
    points = _points(connection, outlet_id)
    if not points:
        return {}
    codes = [*references, *(code + "-ZsAvg" for code in references), O2_CODE]
    series = _hourly(connection, points, codes, hours)
    stopped = _shutdown(connection, points, hours)
    out: dict[str, dict[dt.datetime, float | None]] = {}
    for code, reference in sorted(references.items()):
        found: dict[dt.datetime, float | None] = {}
        for at in hours:
            if at in stopped:
                continue
            point = next((p for p in points if at in series.get((code, p), {})), None)
            if point is None:
                continue
            logger = series.get((code + "-ZsAvg", point), {}).get(at)
            o2 = series.get((O2_CODE, point), {}).get(at)
            if logger is not None:
                found[at] = logger
            elif o2 is not None and 0 <= o2 < 21:
                measured = series[(code, point)][at]
                found[at] = reference_oxygen_concentration(measured, o2, reference)
            else:
                found[at] = None
        out[code] = found
    return out


def converted_month(
    connection: Connection, outlet_id: int, references: dict[str, float], hours: list[dt.datetime]
) -> dict[str, Converted]:
    """Each pollutant of ``references`` (code → reference O2 %) over the month's measured
    hours (:func:`converted_hours`): mean and highest of the converted ones."""
    out = {}
    for code, found in converted_hours(connection, outlet_id, references, hours).items():
        values = [value for value in found.values() if value is not None]
        out[code] = Converted(
            reference_o2=references[code],
            mean=sum(values) / len(values) if values else None,
            highest=max(values) if values else None,
            hours=len(values),
            unconverted=len(found) - len(values),
        )
    return out
