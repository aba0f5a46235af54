"""Execution reports of a discharge permit (排污许可证执行报告, HJ 944-2018): generated from
the data the platform holds for the permit's period — the mass emitted by each outlet and
pollutant with the hours measured and substituted, the hours whose measured mean was
above the permit's limit (with the alarms raised on them), the self-monitoring
completeness against the version's plan, the account of missing data, and the
completeness of the environmental management ledger per record kind (``ledger``:
:mod:`ecohub.permits.ledger`, the automatic monitoring counted from the data) — then
completed by the enterprise (an explanation for each exceedance, the text of the
sections the data cannot write), signed (an uploaded image of the signed page) and
submitted once its period is over and the report was generated from the whole period;
the agency accepts it or returns it with a note.

The report's periods, due dates and sections are :mod:`ecohub.permits.report_rules`.
Exceedance here compares the measured hourly mean as stored with the limit as written (no
reference-oxygen correction: the limit alarms apply that and are listed beside it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from ecohub.alarms.tables import alarms
from ecohub.clock import hour_start, local_time, local_today, local_zone, utcnow
from ecohub.permits import ledger, report_rules, tax_sources
from ecohub.permits.accounting import account_outlet, span_hours
from ecohub.permits.rules import ReportStatus
from ecohub.permits.tables import execution_reports, permit_monitoring
from ecohub.registry.models import MonitoringPoint, Outlet, Parameter, Permit, PermitLimit
from ecohub.registry.service import audit_row
from ecohub.standards import cems
from ecohub.web import uploads

SIGNATURE_TYPES = ("image/png", "image/jpeg", "application/pdf")
SIGNATURE_MAX_BYTES = 10 * 1024 * 1024
MAX_RUNS = 200  # hour runs listed per pollutant (the counts are always whole)
EDITABLE = {ReportStatus.DRAFT.value, ReportStatus.RETURNED.value}


class ReportError(ValueError):
    """A request about a report the procedure refuses (the message says why)."""


def _runs(hours: list[dt.datetime]) -> list[dict[str, Any]]:
    """Consecutive hours as runs in Beijing time: [{from, to, hours}]."""
    runs: list[list[dt.datetime]] = []
    for at in sorted(hours):
        if runs and at - runs[-1][1] == dt.timedelta(hours=1):
            runs[-1][1] = at
        else:
            runs.append([at, at])
    return [
        {
            "from": local_time(first),
            "to": local_time(last),
            "hours": int((last - first).total_seconds() // 3600) + 1,
        }
        for first, last in runs[:MAX_RUNS]
    ]


def _versions(connection: Connection, permit_no: str, first: dt.date, last: dt.date) -> list[Any]:
    return list(
        connection.execute(
            select(Permit)
            .where(
                Permit.permit_no == permit_no, Permit.valid_from <= last, Permit.valid_to >= first
            )
            .order_by(Permit.version)
        ).all()
    )


def _pollutant(
    item: Any,
    hours: list[dt.datetime],
    plan: dict[str, str],
    first: dt.date,
    last: dt.date,
    recorded: list[dt.datetime],
    at_reference: dict[dt.datetime, float | None] | None = None,
) -> dict[str, Any]:
    """One pollutant of one outlet: mass, hours, exceedances, completeness, missing data.
    ``recorded``: the ledger's manual monitoring records of it, which count for a manual
    plan as the data's measured days do. ``at_reference``: where the limit is stated at a
    reference O2 content, each measured hour's concentration converted to it (as the
    limit alarms judge it; None where it could not be converted): an hour exceeds when
    that value is above the limit."""
    over, substituted, unresolved = [], [], []
    measured_days = {at.astimezone(local_zone()).date() for at in recorded}
    held = 0
    limits = item.hour_limits or (item.limit,) * len(hours)
    for at, hour, limit in zip(hours, item.accounting.hours, limits, strict=True):
        if hour.concentration_basis == cems.Basis.MEASURED and hour.concentration is not None:
            held += 1
            measured_days.add(at.astimezone(local_zone()).date())
            judged = hour.concentration if at_reference is None else at_reference.get(at)
            if limit is not None and judged is not None and judged > limit:  # version in force
                over.append(at)
        elif hour.state == cems.HourState.SHUTDOWN:
            held += 1  # a stopped plant owes no value (HJ 212 flag F)
        elif hour.concentration_basis == cems.Basis.UNRESOLVED or hour.mass_kg is None:
            unresolved.append(at)
        else:
            substituted.append(at)
    totals = item.accounting.totals
    frequency = plan.get(item.parameter_code)
    complete = None
    if frequency is not None:
        found = report_rules.completeness(
            frequency,
            first,
            last,
            held if frequency == report_rules.Frequency.AUTOMATIC else measured_days,
        )
        expected = found.expected
        if found.frequency == report_rules.Frequency.AUTOMATIC:
            expected = len(hours)  # the hours accounted (a period not over: up to now)
        complete = {
            "frequency": found.frequency.value,
            "expected": expected,
            "held": found.held,
            "missing": max(expected - found.held, 0),
            "ratio": round(min(found.held / expected, 1.0), 4) if expected else 1.0,
        }
    return {
        "parameter_code": item.parameter_code,
        "name": item.name,
        "unit": item.unit,
        "limit": item.limit,
        "limits_in_force": item.limit_spans(hours) if item.hour_limits else [],
        "mass_kg": round(totals.mass_kg, 4),
        "annual_mass_limit_kg": item.annual_mass_limit_kg,
        "hours_measured": totals.hours_measured,
        "hours_substituted": totals.hours_substituted,
        "hours_shutdown": totals.hours_shutdown,
        "hours_unresolved": totals.hours_unresolved,
        "usable_as_basis": item.accounting.usable_as_basis,
        "mean_concentration": item.mean_concentration,
        "highest_concentration": item.highest_concentration,
        "exceedance_hours": len(over),
        "exceedances": _runs(over),
        "self_monitoring": complete,
        "in_plan": frequency is not None,
        "substituted": _runs(substituted),
        "unresolved": _runs(unresolved),
    }


def build(
    connection: Connection, permit_no: str, kind: str, first: dt.date, last: dt.date
) -> dict[str, Any]:
    """What the data say for a permit's period (the ``generated`` part of a report)."""
    versions = _versions(connection, permit_no, first, last)
    if not versions:
        raise ReportError(f"permit {permit_no} is not in force between {first} and {last}")
    latest = versions[-1]
    zone = local_zone()
    # A period not yet over is accounted up to the last whole hour (and says so).
    now = hour_start(utcnow())
    end = min(dt.datetime(last.year, last.month, last.day, tzinfo=zone) + dt.timedelta(days=1), now)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=zone)
    if end <= start:
        raise ReportError(f"the period {first} – {last} has not begun")
    hours = span_hours(start, end)
    partial = end < dt.datetime(last.year, last.month, last.day, tzinfo=zone) + dt.timedelta(days=1)
    last = (end - dt.timedelta(seconds=1)).astimezone(zone).date() if partial else last
    out = _outlets(connection, permit_no, latest.id, hours, first, last)
    _english_names(connection, out)
    return {
        "permit_no": permit_no,
        "versions": [
            {
                "version": v.version,
                "valid_from": v.valid_from.isoformat(),
                "valid_to": v.valid_to.isoformat(),
            }
            for v in versions
        ],
        "management_class": latest.management_class,
        "period": {"kind": kind, "first": first.isoformat(), "last": last.isoformat()},
        "partial": partial,
        "data_until": local_time(end),
        "sections": [section._asdict() for section in report_rules.sections(kind)],
        "outlets": out,
        "exceedance_hours": sum(p["exceedance_hours"] for o in out for p in o["pollutants"]),
        "ledger": ledger.completeness(connection, permit_no, first, last, _monitoring(out)),
    }


def _outlets(
    connection: Connection,
    permit_no: str,
    permit_id: int,
    hours: list[dt.datetime],
    first: dt.date,
    last: dt.date,
) -> list[dict[str, Any]]:
    """Each outlet the permit version limits, with its pollutants and alarms."""
    outlet_ids = sorted(
        set(
            connection.execute(
                select(PermitLimit.outlet_id).where(PermitLimit.permit_id == permit_id)
            ).scalars()
        )
    )
    outlets = connection.execute(
        select(Outlet).where(Outlet.id.in_(outlet_ids)).order_by(Outlet.code)
    ).all()
    plans: dict[int, dict[str, str]] = {}
    for row in connection.execute(
        select(permit_monitoring).where(permit_monitoring.c.permit_id == permit_id)
    ):
        plans.setdefault(row.outlet_id, {})[row.parameter_code] = row.frequency
    out = []
    recorded = ledger.monitoring_times(connection, permit_no, first, last)
    references = tax_sources.reference_o2_limits(
        connection, [outlet.id for outlet in outlets], first, last
    )
    for outlet in outlets:
        accounted = account_outlet(connection, outlet, hours)
        converted = tax_sources.converted_hours(
            connection, outlet.id, references.get(outlet.id, {}), hours
        )
        out.append(
            {
                "code": outlet.code,
                "name": outlet.name,
                "kind": outlet.kind,
                "pollutants": [
                    _pollutant(
                        item,
                        hours,
                        plans.get(outlet.id, {}),
                        first,
                        last,
                        recorded.get((outlet.code, item.parameter_code), []),
                        converted.get(item.parameter_code),
                    )
                    for item in accounted
                ],
                "alarms": _alarms(connection, outlet.id, hours),
            }
        )
    return out


def _english_names(connection: Connection, outlets: list[dict[str, Any]]) -> None:
    """Each pollutant's English name from the registry's parameters (the Chinese kept where
    a parameter has none)."""
    codes = {p["parameter_code"] for o in outlets for p in o["pollutants"]}
    names: dict[str, str] = {
        row.code: row.name_en
        for row in connection.execute(
            select(Parameter.code, Parameter.name_en).where(Parameter.code.in_(sorted(codes)))
        )
    }
    for outlet in outlets:
        for item in outlet["pollutants"]:
            item["name_en"] = names.get(item["parameter_code"]) or item["name"]


def _monitoring(outlets: list[dict[str, Any]]) -> tuple[int, int]:
    """(expected, held) of the whole self-monitoring plan over the period: the monitoring
    ledger (HJ 944-2018 监测记录信息), automatic monitoring recorded by the data itself."""
    found = [p["self_monitoring"] for o in outlets for p in o["pollutants"] if p["self_monitoring"]]
    return (
        sum(c["expected"] for c in found),
        sum(min(c["held"], c["expected"]) for c in found),
    )


def _alarms(
    connection: Connection, outlet_id: int, hours: list[dt.datetime]
) -> list[dict[str, Any]]:
    """The limit and mass alarms of the outlet's points in the period (their ids: the
    evidence rows)."""
    points = select(MonitoringPoint.id).where(MonitoringPoint.outlet_id == outlet_id)
    rows = connection.execute(
        select(
            alarms.c.id,
            alarms.c.kind,
            alarms.c.parameter_code,
            alarms.c.summary,
            alarms.c.started_at,
            alarms.c.ended_at,
        )
        .where(
            alarms.c.point_id.in_(points),
            alarms.c.kind.in_(["source_exceedance", "mass_overrun"]),
            alarms.c.started_at < hours[-1] + dt.timedelta(hours=1),
            (alarms.c.ended_at.is_(None)) | (alarms.c.ended_at >= hours[0]),
        )
        .order_by(alarms.c.started_at)
        .limit(MAX_RUNS)
    ).all()
    return [
        {
            "id": row.id,
            "kind": row.kind,
            "parameter_code": row.parameter_code,
            "summary": row.summary,
            "started_at": local_time(row.started_at),
            "ended_at": local_time(row.ended_at),
        }
        for row in rows
    ]


def generate(
    engine: Engine, permit_no: str, kind: str, day: dt.date, *, actor: str
) -> dict[str, Any]:
    """Generate (or regenerate, while still a draft or returned) the report of the period of
    ``kind`` holding ``day``; the enterprise's completion is kept."""
    try:
        kind = report_rules.period_kind(kind).value
        first, last = report_rules.period_of(kind, day)
        due = report_rules.due_date(kind, first)
    except ValueError as error:
        raise ReportError(str(error)) from None
    with engine.begin() as connection:
        generated = build(connection, permit_no, kind, first, last)
        enterprise_id = connection.execute(
            select(Permit.enterprise_id).where(Permit.permit_no == permit_no).limit(1)
        ).scalar_one()
        existing = connection.execute(
            select(execution_reports.c.id, execution_reports.c.status).where(
                execution_reports.c.permit_no == permit_no,
                execution_reports.c.period_kind == kind,
                execution_reports.c.period_start == first,
            )
        ).first()
        values = {"generated": generated, "generated_at": utcnow()}
        if existing is None:
            report_id = connection.execute(
                insert(execution_reports)
                .values(
                    permit_no=permit_no,
                    enterprise_id=enterprise_id,
                    period_kind=kind,
                    period_start=first,
                    period_end=last,
                    due_on=due,
                    status=ReportStatus.DRAFT.value,
                    completed={},
                    **values,
                )
                .returning(execution_reports.c.id)
            ).scalar_one()
        elif existing.status in EDITABLE:
            report_id = existing.id
            connection.execute(
                update(execution_reports)
                .where(execution_reports.c.id == report_id)
                .values(**values)
            )
        else:
            raise ReportError(f"the report of {permit_no} for {first}-{last} is {existing.status}")
        audit_row(
            connection,
            actor,
            "generate",
            "execution_reports",
            f"{permit_no}/{kind}/{first}",
            None,
            {"status": "draft"},
        )
    return get_report(engine, report_id)


def _report(connection: Connection, report_id: int) -> Any:
    found = connection.execute(
        select(execution_reports).where(execution_reports.c.id == report_id)
    ).first()
    if found is None:
        raise ReportError(f"no report {report_id}")
    return found


def complete(
    engine: Engine,
    report_id: int,
    *,
    texts: dict[str, str],
    explanations: dict[str, str],
    actor: str,
) -> dict[str, Any]:
    """The enterprise's part: the sections' text and an explanation per exceedance (keyed
    ``outlet/parameter``); every pollutant with exceedance hours needs one to submit."""
    with engine.begin() as connection:
        row = _report(connection, report_id)
        if row.status not in EDITABLE:
            raise ReportError(f"report {report_id} is {row.status}: it can no longer be changed")
        keys = {section["key"] for section in row.generated["sections"]}
        unknown = sorted(set(texts) - keys)
        if unknown:
            raise ReportError(
                f"texts: no section {', '.join(unknown)} in a {row.period_kind} report"
            )
        completed = {
            "texts": {**row.completed.get("texts", {}), **texts},
            "explanations": {**row.completed.get("explanations", {}), **explanations},
        }
        connection.execute(
            update(execution_reports)
            .where(execution_reports.c.id == report_id)
            .values(completed=completed)
        )
        audit_row(
            connection,
            actor,
            "update",
            "execution_reports",
            str(report_id),
            None,
            {"completed": sorted(completed["texts"])},
        )
    return get_report(engine, report_id)


def missing_explanations(generated: dict[str, Any], completed: dict[str, Any]) -> list[str]:
    given = completed.get("explanations", {})
    return [
        f"{outlet['code']}/{item['parameter_code']}"
        for outlet in generated["outlets"]
        for item in outlet["pollutants"]
        if item["exceedance_hours"]
        and not str(given.get(f"{outlet['code']}/{item['parameter_code']}", "")).strip()
    ]


def _period_over(row: Any) -> None:
    """A report is submitted only for a period that is over and from data generated after
    it (``generated.partial`` false): the enterprise regenerates it after the period."""
    if row.period_end >= local_today():
        raise ReportError(
            f"the period {row.period_start} – {row.period_end} is not over: submit the report "
            f"after {row.period_end}, regenerated from the whole period's data"
        )
    if row.generated.get("partial"):
        raise ReportError(
            f"the report was generated before its period ended (data until "
            f"{row.generated.get('data_until')}): generate it again, then submit"
        )


def submit(
    engine: Engine, folder: Path, report_id: int, *, signature: bytes, name: str, actor: str
) -> dict[str, Any]:
    """Sign (the uploaded image of the signed page) and submit."""
    uploads.check_upload(name, signature, SIGNATURE_TYPES, SIGNATURE_MAX_BYTES)
    with engine.begin() as connection:
        row = _report(connection, report_id)
        if row.status not in EDITABLE:
            raise ReportError(f"report {report_id} is {row.status}")
        _period_over(row)
        missing = missing_explanations(row.generated, row.completed)
        if missing:
            raise ReportError(f"explain the exceedances of {', '.join(missing)} before submitting")
        sha = uploads.store_bytes(folder, signature)
        connection.execute(
            update(execution_reports)
            .where(execution_reports.c.id == report_id)
            .values(
                status=ReportStatus.SUBMITTED.value,
                signature_sha256=sha,
                submitted_at=utcnow(),
                submitted_by=actor[:100],
            )
        )
        audit_row(
            connection,
            actor,
            "submit",
            "execution_reports",
            str(report_id),
            {"status": row.status},
            {"status": "submitted", "signature": sha},
        )
    return get_report(engine, report_id)


def review(
    engine: Engine, report_id: int, *, accept: bool, note: str | None, actor: str
) -> dict[str, Any]:
    """The agency accepts a submitted report or returns it with a note."""
    if not accept and not (note or "").strip():
        raise ReportError("a returned report needs a note saying what to correct")
    status = ReportStatus.ACCEPTED if accept else ReportStatus.RETURNED
    with engine.begin() as connection:
        row = _report(connection, report_id)
        if row.status != ReportStatus.SUBMITTED:
            raise ReportError(f"report {report_id} is {row.status}, not submitted")
        connection.execute(
            update(execution_reports)
            .where(execution_reports.c.id == report_id)
            .values(
                status=status.value, reviewed_at=utcnow(), reviewed_by=actor[:100], review_note=note
            )
        )
        audit_row(
            connection,
            actor,
            "review",
            "execution_reports",
            str(report_id),
            {"status": row.status},
            {"status": status.value, "note": note},
        )
    return get_report(engine, report_id)


def get_report(engine: Engine, report_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        found = dict(_report(connection, report_id)._mapping)
    found["missing_explanations"] = missing_explanations(found["generated"], found["completed"])
    return found


def list_reports(
    engine: Engine, enterprise_id: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    columns = [c for c in execution_reports.c if c.name not in {"generated", "completed"}]
    query = (
        select(*columns)
        .order_by(execution_reports.c.period_start.desc(), execution_reports.c.id.desc())
        .limit(limit)
    )
    if enterprise_id is not None:
        query = query.where(execution_reports.c.enterprise_id == enterprise_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
