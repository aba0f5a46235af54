"""The evidence the platform holds on enterprises over a period, each item linked to its
source rows, and the risk score computed from it (:mod:`ecohub.supervision.risk`).

For every enterprise (or the ones asked for), from what the store holds:

- permit-limit exceedances: the ``source_exceedance`` alarms overlapping the period, with
  their hours (clipped to the period), the pollutants and the largest exceedance
  multiple (超标倍数) their evidence recorded; alarm ids listed;
- mass overruns (``mass_overrun`` alarms: a day's or a year's emitted mass above the
  permit's), counted, alarm ids listed;
- data anomalies (``data_anomaly``, falsification-pattern flags lasting hours) and
  offline time (``offline`` alarms, hours), alarm ids listed;
- the data received (数据传输率: values received ÷ values expected at each point's
  interval) and the valid hours (有效率: valid hours ÷ the period's hours), both from
  the daily rollups of the enterprise's outlet points. The series expected are those
  that reported and every (point, pollutant) the permits in force limit at the point's
  outlet: an expected series that sent nothing counts as wholly missing, so that an
  enterprise whose monitors are silent does not look clean;
- per outlet (排污口), the valid hours of the pollutants its permits limit and their
  exceedance hours (:func:`outlet_compliance`, indicator 1 of the credit rating);
- cases: opened in the period, decided penalties (amount) and rectifications overdue —
  an order to correct whose latest re-inspection still found the violation; case ids
  listed.

Each query groups in the database (one per kind of evidence), so that the whole
directory is one pass, not a query per enterprise. Complaints join the evidence when the
complaints area exists (not built yet).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, func, select

from ecohub.alarms.tables import alarms
from ecohub.clock import local_zone
from ecohub.complaints.tables import complaint_events
from ecohub.registry.models import MonitoringPoint, Outlet, Permit, PermitLimit
from ecohub.registry.regions import region_prefix
from ecohub.supervision.risk import Weight, evidence_values, risk_score
from ecohub.supervision.rules import CaseStep
from ecohub.supervision.service import enterprises
from ecohub.supervision.tables import case_reinspections, case_steps, cases
from ecohub.timeseries.tables import rollups

points = MonitoringPoint.__table__
outlets = Outlet.__table__
permits = Permit.__table__
permit_limits = PermitLimit.__table__
EVIDENCE_ALARMS = ("source_exceedance", "mass_overrun", "data_anomaly", "offline")


@dataclass
class Evidence:
    """One enterprise's evidence over a period (hours are clock hours)."""

    enterprise_id: int
    uscc: str
    name: str
    region: str | None
    longitude: float | None = None
    latitude: float | None = None
    exceedance_hours: float = 0.0
    exceedance_pollutants: set[str] = field(default_factory=set)
    max_multiple: float = 0.0
    mass_overruns: int = 0  # mass_overrun alarms (daily or annual mass above the permit's)
    anomaly_hours: float = 0.0
    offline_hours: float = 0.0
    # Over the (point, parameter) series of its outlets that reported in the period or
    # that a permit in force limits (expected even when silent):
    expected_values: float = 0.0  # the period ÷ each point's interval, summed
    received_values: int = 0  # raw values received (the daily rollups' ``received``)
    series_hours: int = 0  # the period's hours × series
    valid_hours: int = 0  # valid hours (the daily rollups' ``samples``)
    silent_series: int = 0  # expected (permit-limited) series that sent nothing
    cases_opened: int = 0
    penalties: int = 0
    penalty_yuan: Decimal = Decimal(0)
    overdue_rectifications: int = 0
    # Complaint events received in the period whose handling found this enterprise the
    # source (the reply named it, or a case was opened from the event), and their
    # complaints.
    complaint_events: int = 0
    complaints: int = 0
    alarm_ids: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    case_ids: list[int] = field(default_factory=list)
    complaint_event_ids: list[int] = field(default_factory=list)

    @property
    def transmission_rate(self) -> float | None:
        """数据传输率: values received ÷ values expected (HJ 356-2019 / HJ 75-2017: 实际
        传输的数据个数 ÷ 应传输的数据个数; a point is expected once per interval)."""
        if not self.expected_values:
            return None
        return min(1.0, self.received_values / self.expected_values)

    @property
    def effective_rate(self) -> float | None:
        """数据有效率 on hours: valid hours ÷ the period's hours of every series."""
        return self.valid_hours / self.series_hours if self.series_hours else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "enterprise_id": self.enterprise_id,
            "uscc": self.uscc,
            "name": self.name,
            "region": self.region,
            "longitude": self.longitude,
            "latitude": self.latitude,
            "exceedance_hours": round(self.exceedance_hours, 2),
            "exceedance_pollutants": sorted(self.exceedance_pollutants),
            "max_exceedance_multiple": round(self.max_multiple, 3),
            "mass_overruns": self.mass_overruns,
            "anomaly_hours": round(self.anomaly_hours, 2),
            "offline_hours": round(self.offline_hours, 2),
            "transmission_rate": self.transmission_rate,
            "effective_rate": self.effective_rate,
            "silent_series": self.silent_series,
            "cases_opened": self.cases_opened,
            "penalties": self.penalties,
            "penalty_yuan": str(self.penalty_yuan),
            "overdue_rectifications": self.overdue_rectifications,
            "complaint_events": self.complaint_events,
            "complaints": self.complaints,
            "sources": {
                "alarms": {k: sorted(v) for k, v in self.alarm_ids.items()},
                "cases": sorted(self.case_ids),
                "complaint_events": sorted(self.complaint_event_ids),
            },
        }


def gather(
    engine: Engine, start: dt.datetime, end: dt.datetime, enterprise_ids: list[int] | None = None
) -> dict[int, Evidence]:
    """Evidence of the enterprises (all of them by default) from ``start`` to ``end``
    (UTC instants; a period of local days is their local midnights)."""
    if end <= start:
        raise ValueError(f"the period ends ({end}) before it starts ({start})")
    wanted = enterprise_ids
    query = select(
        enterprises.c.id,
        enterprises.c.uscc,
        enterprises.c.name,
        enterprises.c.region_code,
        enterprises.c.longitude,
        enterprises.c.latitude,
    )
    if wanted is not None:
        query = query.where(enterprises.c.id.in_(wanted))
    with engine.connect() as connection:
        found = {
            row.id: Evidence(
                row.id, row.uscc, row.name, row.region_code, row.longitude, row.latitude
            )
            for row in connection.execute(query).all()
        }
        _alarm_evidence(connection, found, start, end)
        _data_evidence(connection, found, start, end)
        _case_evidence(connection, found, start, end)
        _complaint_evidence(connection, found, start, end)
    return found


def _complaint_evidence(
    connection: Any, found: dict[int, Evidence], start: dt.datetime, end: dt.datetime
) -> None:
    """Complaint events received in the period and traced to an enterprise."""
    rows = connection.execute(
        select(
            complaint_events.c.id,
            complaint_events.c.enterprise_id,
            complaint_events.c.complaint_count,
        ).where(
            complaint_events.c.enterprise_id.is_not(None),
            complaint_events.c.received_at >= start,
            complaint_events.c.received_at < end,
        )
    ).all()
    for event_id, enterprise_id, count in rows:
        evidence = found.get(enterprise_id)
        if evidence is not None:
            evidence.complaint_events += 1
            evidence.complaints += count
            evidence.complaint_event_ids.append(event_id)


def _alarm_evidence(
    connection: Any, found: dict[int, Evidence], start: dt.datetime, end: dt.datetime
) -> None:
    rows = connection.execute(
        select(
            alarms.c.id,
            alarms.c.kind,
            alarms.c.enterprise_id,
            alarms.c.parameter_code,
            alarms.c.started_at,
            alarms.c.last_active_at,
            alarms.c.ended_at,
            alarms.c.evidence,
        ).where(
            alarms.c.kind.in_(EVIDENCE_ALARMS),
            alarms.c.enterprise_id.is_not(None),
            alarms.c.started_at < end,
            func.coalesce(alarms.c.ended_at, alarms.c.last_active_at) >= start,
        )
    ).all()
    for row in rows:
        evidence = found.get(row.enterprise_id)
        if evidence is None:
            continue
        hours = _alarm_hours(row, start, end)
        evidence.alarm_ids[row.kind].append(row.id)
        if row.kind == "mass_overrun":
            evidence.mass_overruns += 1
        elif row.kind == "source_exceedance":
            evidence.exceedance_hours += hours
            if row.parameter_code:
                evidence.exceedance_pollutants.add(row.parameter_code)
            multiple = ((row.evidence or {}).get("peak") or {}).get("multiple")
            if isinstance(multiple, int | float):
                evidence.max_multiple = max(evidence.max_multiple, float(multiple))
        elif row.kind == "data_anomaly":
            evidence.anomaly_hours += hours
        else:
            evidence.offline_hours += hours


def _alarm_hours(row: Any, start: dt.datetime, end: dt.datetime) -> float:
    """An alarm's hours within the period (an open alarm's last active hour counts)."""
    last = row.ended_at or row.last_active_at
    if row.kind != "offline" and row.ended_at is None:
        last = row.last_active_at + dt.timedelta(hours=1)
    return max(0.0, (min(last, end) - max(row.started_at, start)).total_seconds() / 3600)


def _limited_series(start: dt.datetime, end: dt.datetime) -> Any:
    """(enterprise, point, pollutant, interval) of every point at an outlet whose permits
    in force during the period limit that pollutant: the series the period expects."""
    zone = local_zone()
    first = start.astimezone(zone).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    return (
        select(
            outlets.c.enterprise_id,
            points.c.id,
            permit_limits.c.parameter_code,
            points.c.interval_seconds,
        )
        .join(points, points.c.outlet_id == outlets.c.id)
        .join(permit_limits, permit_limits.c.outlet_id == outlets.c.id)
        .join(permits, permits.c.id == permit_limits.c.permit_id)
        .where(permits.c.valid_from <= last, permits.c.valid_to >= first)
        .distinct()
    )


def _data_evidence(
    connection: Any, found: dict[int, Evidence], start: dt.datetime, end: dt.datetime
) -> None:
    """Values received and valid hours per enterprise, from the **daily** rollups of its
    outlets' points (a day's ``received`` counts its raw values, ``samples`` its valid
    hours: 24 times fewer rows than the hourly ones); expected: the period over each
    point's interval, for every (point, parameter) that reported in the period."""
    seconds = (end - start).total_seconds()
    per_series = (
        select(
            outlets.c.enterprise_id,
            rollups.c.point_id,
            rollups.c.parameter_code,
            points.c.interval_seconds,
            func.sum(rollups.c.received).label("received"),
            func.sum(rollups.c.samples).label("valid"),
        )
        .join(points, points.c.id == rollups.c.point_id)
        .join(outlets, outlets.c.id == points.c.outlet_id)
        .where(rollups.c.period == "day", rollups.c.ts >= start, rollups.c.ts < end)
        .group_by(
            outlets.c.enterprise_id,
            rollups.c.point_id,
            rollups.c.parameter_code,
            points.c.interval_seconds,
        )
    )
    reported = set()
    for enterprise_id, point, code, interval, received, valid in connection.execute(per_series):
        evidence = found.get(enterprise_id)
        if evidence is not None:
            reported.add((point, code))
            evidence.expected_values += seconds / max(1, int(interval))
            evidence.received_values += int(received or 0)
            evidence.series_hours += int(seconds // 3600)
            evidence.valid_hours += int(valid or 0)
    for enterprise_id, point, code, interval in connection.execute(_limited_series(start, end)):
        evidence = found.get(enterprise_id)
        if evidence is not None and (point, code) not in reported:
            evidence.expected_values += seconds / max(1, int(interval))
            evidence.series_hours += int(seconds // 3600)
            evidence.silent_series += 1


def _outlet_rows(
    connection: Any, enterprise_id: int, start: dt.datetime, end: dt.datetime
) -> tuple[list[Any], list[Any]]:
    """The valid hours per (outlet, point, pollutant) from the daily rollups, and the
    enterprise's ``source_exceedance`` alarms overlapping the period."""
    valid_rows = connection.execute(
        select(
            points.c.outlet_id,
            rollups.c.point_id,
            rollups.c.parameter_code,
            func.sum(rollups.c.samples),
        )
        .join(points, points.c.id == rollups.c.point_id)
        .join(outlets, outlets.c.id == points.c.outlet_id)
        .where(
            outlets.c.enterprise_id == enterprise_id,
            rollups.c.period == "day",
            rollups.c.ts >= start,
            rollups.c.ts < end,
        )
        .group_by(points.c.outlet_id, rollups.c.point_id, rollups.c.parameter_code)
    ).all()
    alarm_rows = connection.execute(
        select(
            alarms.c.id,
            alarms.c.kind,
            alarms.c.point_id,
            alarms.c.parameter_code,
            alarms.c.started_at,
            alarms.c.last_active_at,
            alarms.c.ended_at,
        ).where(
            alarms.c.kind == "source_exceedance",
            alarms.c.enterprise_id == enterprise_id,
            alarms.c.started_at < end,
            func.coalesce(alarms.c.ended_at, alarms.c.last_active_at) >= start,
        )
    ).all()
    return list(valid_rows), list(alarm_rows)


def outlet_compliance(
    engine: Engine, enterprise_id: int, start: dt.datetime, end: dt.datetime
) -> list[dict[str, Any]]:
    """Per outlet (排污口) of the enterprise, over the pollutants its permits in force limit
    there: valid hours (the daily rollups' ``samples`` of those series), hours of
    ``source_exceedance`` alarms on them (each series' capped at its valid hours) and the
    compliance rate = 1 − exceedance ÷ valid (None without valid hours). Counted per
    pollutant-hour (监测项次); flow, O2, temperature and other unlimited series do not
    count. 附件1 指标1 rates "每个排污口" by this rate: the worst outlet decides."""
    with engine.connect() as connection:
        limited = {
            (point, code)
            for ident, point, code, _interval in connection.execute(_limited_series(start, end))
            if ident == enterprise_id
        }
        known = connection.execute(
            select(outlets.c.id, outlets.c.code, outlets.c.name)
            .where(outlets.c.enterprise_id == enterprise_id)
            .order_by(outlets.c.code)
        ).all()
        valid_rows, alarm_rows = _outlet_rows(connection, enterprise_id, start, end)
    valid: dict[tuple[int, str], int] = {}
    where: dict[int, int] = {}
    for outlet_id, point, code, hours in valid_rows:
        where[point] = outlet_id
        if (point, code) in limited:
            valid[(point, code)] = int(hours or 0)
    exceeded: dict[tuple[int, str], float] = defaultdict(float)
    alarm_ids: dict[tuple[int, str], list[int]] = defaultdict(list)
    for row in alarm_rows:
        key = (row.point_id, row.parameter_code)
        if key in limited:
            exceeded[key] += _alarm_hours(row, start, end)
            alarm_ids[key].append(row.id)
    out = []
    for outlet_id, code, name in known:
        series = sorted(key for key in valid if where.get(key[0]) == outlet_id)
        hours = sum(valid[key] for key in series)
        over = sum(min(exceeded[key], valid[key]) for key in series)
        out.append(
            {
                "outlet_id": outlet_id,
                "outlet": code,
                "name": name,
                "valid_hours": hours,
                "exceedance_hours": round(over, 2),
                "compliance": round(1 - over / hours, 4) if hours else None,
                "pollutants": [
                    {
                        "point_id": point,
                        "parameter": parameter,
                        "valid_hours": valid[(point, parameter)],
                        "exceedance_hours": round(exceeded[(point, parameter)], 2),
                        "alarms": sorted(alarm_ids[(point, parameter)]),
                    }
                    for point, parameter in series
                ],
            }
        )
    return out


def _case_evidence(
    connection: Any, found: dict[int, Evidence], start: dt.datetime, end: dt.datetime
) -> None:
    zone = local_zone()  # case dates are local (Beijing) dates
    first, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    opened = connection.execute(
        select(
            cases.c.id,
            cases.c.enterprise_id,
            cases.c.penalty_yuan,
            cases.c.order_served_on,
            case_steps.c.step,
            case_steps.c.on_date,
        )
        .join(case_steps, case_steps.c.case_id == cases.c.id)
        .where(
            case_steps.c.step.in_((CaseStep.DISCOVERED.value, CaseStep.DECIDED.value)),
            case_steps.c.on_date >= first,
            case_steps.c.on_date < last,
        )
    ).all()
    for row in opened:
        evidence = found.get(row.enterprise_id)
        if evidence is None:
            continue
        if row.id not in evidence.case_ids:
            evidence.case_ids.append(row.id)
        if row.step == CaseStep.DISCOVERED.value:
            evidence.cases_opened += 1
        else:
            evidence.penalties += 1
            evidence.penalty_yuan += Decimal(row.penalty_yuan or 0)
    latest = (
        select(case_reinspections.c.case_id, func.max(case_reinspections.c.on_date).label("on"))
        .group_by(case_reinspections.c.case_id)
        .subquery()
    )
    overdue = connection.execute(
        select(cases.c.id, cases.c.enterprise_id)
        .join(latest, latest.c.case_id == cases.c.id)
        .join(
            case_reinspections,
            and_(
                case_reinspections.c.case_id == latest.c.case_id,
                case_reinspections.c.on_date == latest.c.on,
            ),
        )
        .where(case_reinspections.c.continuing.is_(True), latest.c.on < last)
    ).all()
    for case_id, enterprise_id in overdue:
        evidence = found.get(enterprise_id)
        if evidence is not None:
            evidence.overdue_rectifications += 1
            if case_id not in evidence.case_ids:
                evidence.case_ids.append(case_id)


def ranked(
    engine: Engine,
    start: dt.datetime,
    end: dt.datetime,
    weights: Mapping[str, Weight],
    *,
    region: str | None = None,
    enterprise_ids: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Enterprises by risk score, highest first (``region``: a GB/T 2260 code or its
    prefix — a province's two digits, a city's four), each with its evidence and the
    score's components."""
    found = gather(engine, start, end, enterprise_ids)
    out = []
    for evidence in found.values():
        if region and not (evidence.region or "").startswith(region_prefix(region)):
            continue
        document = evidence.as_dict()
        document["risk"] = risk_score(evidence_values(document), weights)
        out.append(document)
    out.sort(key=lambda item: (-item["risk"]["score"], item["uscc"]))
    return out
