"""The environmental management ledger (环境管理台账, HJ 944-2018) of a permit: its facilities
and entries, written by the enterprise holding the permit and read by the agency; and the
ledger's completeness over a report's period (:func:`completeness`), which the execution
report carries as its ``ledger`` section.

An entry names its record kind and condition (``ledger_rules``), the time it is about
(Beijing time on input and output, UTC stored), its values (checked against the kind's
fields, each error naming the field), the operator who recorded it on site and, for
facility records, the facility. Entries are append-only: a correction is a new entry naming
the entry it corrects, of the same permit and kind, and an entry is corrected at most once
(correct the correction to correct again). Every write is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, insert, select
from sqlalchemy.exc import IntegrityError

from ecohub.clock import local_time, local_zone, utcnow
from ecohub.permits import ledger_rules
from ecohub.permits.ledger_rules import FACILITY_KINDS, Condition, RecordKind
from ecohub.permits.ledger_tables import ledger_entries, ledger_facilities
from ecohub.registry.models import Outlet, Parameter, Permit, PermitLimit
from ecohub.registry.service import audit_row

FUTURE_SLACK = dt.timedelta(minutes=10)  # a phone's clock a little ahead is not an error
MAX_LIST = 1000


class LedgerError(ValueError):
    """A ledger request refused (the message names the field, or says what is missing)."""


class NotFound(LedgerError):
    """No such permit, facility or entry (for the caller)."""


def permit_enterprise(connection: Connection, permit_no: str) -> int:
    """The enterprise holding ``permit_no`` (its latest version)."""
    found = connection.execute(
        select(Permit.enterprise_id)
        .where(Permit.permit_no == permit_no)
        .order_by(Permit.version.desc())
        .limit(1)
    ).scalar()
    if found is None:
        raise NotFound(f"no permit {permit_no}")
    return int(found)


def _writable(connection: Connection, permit_no: str, enterprise_id: int | None) -> int:
    """The permit's enterprise, if ``enterprise_id`` (the writer's) holds it."""
    holder = permit_enterprise(connection, permit_no)
    if enterprise_id is not None and holder != enterprise_id:
        raise NotFound(f"no permit {permit_no}")
    return holder


def _text(value: Any, name: str, width: int) -> str:
    text = str(value or "").strip()
    if not text:
        raise LedgerError(f"{name}: required")
    if len(text) > width:
        raise LedgerError(f"{name}: longer than {width} characters")
    return text


def add_facility(
    engine: Engine,
    permit_no: str,
    *,
    code: str,
    name: str,
    kind: str,
    actor: str,
    enterprise_id: int | None,
) -> dict[str, Any]:
    """Register a production or pollution control facility of a permit (its code as the
    permit writes it, e.g. MF0001 or TA001)."""
    code, name = _text(code, "code", 32), _text(name, "name", 200)
    try:
        kind = ledger_rules.FacilityKind(kind).value
    except ValueError:
        raise LedgerError(f"kind must be production or treatment; got {kind!r}") from None
    values = {"permit_no": permit_no, "code": code, "name": name, "kind": kind}
    try:
        with engine.begin() as connection:
            holder = _writable(connection, permit_no, enterprise_id)
            facility_id = connection.execute(
                insert(ledger_facilities)
                .values(enterprise_id=holder, created_at=utcnow(), created_by=actor[:100], **values)
                .returning(ledger_facilities.c.id)
            ).scalar_one()
            audit_row(
                connection, actor, "create", "ledger_facilities", str(facility_id), None, values
            )
    except IntegrityError:
        raise LedgerError(f"code: permit {permit_no} already has a facility {code}") from None
    return {"id": facility_id, **values}


def list_facilities(engine: Engine, permit_no: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ledger_facilities.c.id,
                ledger_facilities.c.code,
                ledger_facilities.c.name,
                ledger_facilities.c.kind,
            )
            .where(ledger_facilities.c.permit_no == permit_no)
            .order_by(ledger_facilities.c.code)
        )
        return [dict(row._mapping) for row in rows]


def _facility(
    connection: Connection, permit_no: str, kind: RecordKind, code: str | None
) -> int | None:
    wanted = FACILITY_KINDS.get(kind)
    if wanted is None:
        if code:
            raise LedgerError(f"facility: a {kind.value} record names no facility")
        return None
    if not code:
        raise LedgerError(f"facility: a {kind.value} record names its {wanted.value} facility")
    found = connection.execute(
        select(ledger_facilities.c.id, ledger_facilities.c.kind).where(
            ledger_facilities.c.permit_no == permit_no, ledger_facilities.c.code == code
        )
    ).first()
    if found is None:
        raise LedgerError(f"facility: permit {permit_no} has no facility {code}")
    if found.kind != wanted.value:
        raise LedgerError(f"facility: {code} is a {found.kind} facility, not {wanted.value}")
    return int(found.id)


def _check_monitoring(connection: Connection, permit_no: str, values: Mapping[str, Any]) -> None:
    outlets = select(PermitLimit.outlet_id).join(Permit, Permit.id == PermitLimit.permit_id)
    outlet = connection.execute(
        select(Outlet.id).where(
            Outlet.code == values["outlet_code"],
            Outlet.id.in_(outlets.where(Permit.permit_no == permit_no)),
        )
    ).first()
    if outlet is None:
        raise LedgerError(
            f"values.outlet_code: permit {permit_no} has no outlet {values['outlet_code']}"
        )
    known = connection.execute(
        select(Parameter.code).where(Parameter.code == values["parameter_code"])
    ).first()
    if known is None:
        raise LedgerError(f"values.parameter_code: no parameter {values['parameter_code']}")


def _corrected(
    connection: Connection, permit_no: str, kind: RecordKind, corrects: int | None
) -> None:
    if corrects is None:
        return
    found = connection.execute(
        select(ledger_entries.c.permit_no, ledger_entries.c.kind).where(
            ledger_entries.c.id == corrects
        )
    ).first()
    if found is None or found.permit_no != permit_no:
        raise LedgerError(f"corrects: permit {permit_no} has no entry {corrects}")
    if found.kind != kind.value:
        raise LedgerError(f"corrects: entry {corrects} is a {found.kind} record, not {kind.value}")
    later = connection.execute(
        select(ledger_entries.c.id).where(ledger_entries.c.corrects_id == corrects)
    ).scalar()
    if later is not None:
        raise LedgerError(f"corrects: entry {corrects} is already corrected by entry {later}")


def add_entry(
    engine: Engine,
    permit_no: str,
    *,
    kind: str,
    at: dt.datetime | str,
    values: Mapping[str, Any],
    operator: str,
    actor: str,
    enterprise_id: int | None,
    condition: str = Condition.NORMAL,
    facility: str | None = None,
    corrects: int | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Append an entry to a permit's ledger (or a correction of entry ``corrects``)."""
    try:
        rule = ledger_rules.rule(kind, condition)
        moment = ledger_rules.parse_time(at, "at")
        checked = ledger_rules.check_values(rule, values, moment)
    except ValueError as error:
        raise LedgerError(str(error)) from None
    if moment > utcnow() + FUTURE_SLACK:
        raise LedgerError(f"at: {local_time(moment)} is in the future")
    operator = _text(operator, "operator", 100)
    with engine.begin() as connection:
        holder = _writable(connection, permit_no, enterprise_id)
        facility_id = _facility(connection, permit_no, rule.kind, (facility or "").strip() or None)
        if rule.kind == RecordKind.MONITORING:
            _check_monitoring(connection, permit_no, checked)
        _corrected(connection, permit_no, rule.kind, corrects)
        row = {
            "enterprise_id": holder,
            "permit_no": permit_no,
            "facility_id": facility_id,
            "kind": rule.kind.value,
            "condition": rule.condition.value,
            "recorded_for": moment,
            "data": checked,
            "operator": operator,
            "note": (note or "").strip()[:4000] or None,
            "corrects_id": corrects,
            "entered_at": utcnow(),
            "entered_by": actor[:100],
        }
        entry_id = connection.execute(
            insert(ledger_entries).values(**row).returning(ledger_entries.c.id)
        ).scalar_one()
        audit_row(
            connection,
            actor,
            "correct" if corrects else "create",
            "ledger_entries",
            str(entry_id),
            None if corrects is None else {"entry": corrects},
            {"permit_no": permit_no, "kind": rule.kind.value, "values": checked},
        )
    return get_entry(engine, entry_id)


def _entry_query() -> Any:
    later = ledger_entries.alias("later")
    return (
        select(
            ledger_entries,
            ledger_facilities.c.code.label("facility_code"),
            ledger_facilities.c.name.label("facility_name"),
            later.c.id.label("corrected_by"),
        )
        .outerjoin(ledger_facilities, ledger_facilities.c.id == ledger_entries.c.facility_id)
        .outerjoin(later, later.c.corrects_id == ledger_entries.c.id)
    )


def _as_dict(row: Any) -> dict[str, Any]:
    found = dict(row._mapping)
    found["at"] = local_time(found.pop("recorded_for"))
    found["values"] = found.pop("data")
    found["entered_at"] = local_time(found["entered_at"])
    return found


def get_entry(engine: Engine, entry_id: int) -> dict[str, Any]:
    with engine.connect() as connection:
        row = connection.execute(_entry_query().where(ledger_entries.c.id == entry_id)).first()
    if row is None:
        raise NotFound(f"no entry {entry_id}")
    return _as_dict(row)


def _window(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = local_zone()
    start = dt.datetime(first.year, first.month, first.day, tzinfo=zone)
    end = dt.datetime(last.year, last.month, last.day, tzinfo=zone) + dt.timedelta(days=1)
    return start, end


def list_entries(
    engine: Engine,
    permit_no: str,
    *,
    kind: str | None = None,
    first: dt.date | None = None,
    last: dt.date | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The permit's entries, newest first (corrected ones too, with ``corrected_by``)."""
    query = _entry_query().where(ledger_entries.c.permit_no == permit_no)
    if kind:
        query = query.where(ledger_entries.c.kind == ledger_rules.rule(kind).kind.value)
    if (first is None) != (last is None):
        raise LedgerError("first, last: give both days of the range, or neither")
    if first is not None and last is not None:
        if last < first:
            raise LedgerError(f"last: {last} is before first {first}")
        start, end = _window(first, last)
        query = query.where(
            ledger_entries.c.recorded_for >= start, ledger_entries.c.recorded_for < end
        )
    query = query.order_by(ledger_entries.c.recorded_for.desc(), ledger_entries.c.id.desc())
    with engine.connect() as connection:
        return [_as_dict(row) for row in connection.execute(query.limit(min(limit, MAX_LIST)))]


def _standing(connection: Connection, permit_no: str, first: dt.date, last: dt.date) -> list[Any]:
    """The period's entries no later entry corrects."""
    later = ledger_entries.alias("later")
    start, end = _window(first, last)
    return list(
        connection.execute(
            select(
                ledger_entries.c.kind,
                ledger_entries.c.condition,
                ledger_entries.c.facility_id,
                ledger_entries.c.recorded_for,
                ledger_entries.c.data,
            ).where(
                ledger_entries.c.permit_no == permit_no,
                ledger_entries.c.recorded_for >= start,
                ledger_entries.c.recorded_for < end,
                ~exists().where(and_(later.c.corrects_id == ledger_entries.c.id)),
            )
        ).all()
    )


def monitoring_times(
    connection: Connection, permit_no: str, first: dt.date, last: dt.date
) -> dict[tuple[str, str], list[dt.datetime]]:
    """The manual monitoring records of the period by (outlet code, parameter code)."""
    found: dict[tuple[str, str], list[dt.datetime]] = {}
    for row in _standing(connection, permit_no, first, last):
        if row.kind == RecordKind.MONITORING:
            key = (row.data["outlet_code"], row.data["parameter_code"])
            found.setdefault(key, []).append(row.recorded_for)
    return found


def completeness(
    connection: Connection,
    permit_no: str,
    first: dt.date,
    last: dt.date,
    monitoring: tuple[int, int],
) -> list[dict[str, Any]]:
    """The ledger section of an execution report: per record kind the records held
    against those HJ 944-2018's frequencies expect from ``first`` to ``last``; abnormal
    periods counted as ``events``. ``monitoring`` is (expected, held) of the self-monitoring
    plan as the report counted it: automatic monitoring held by the platform's own hourly
    data, manual monitoring by the data and the ledger's monitoring records."""
    facilities: dict[str, list[int]] = {}
    for row in connection.execute(
        select(ledger_facilities.c.id, ledger_facilities.c.kind).where(
            ledger_facilities.c.permit_no == permit_no
        )
    ):
        facilities.setdefault(row.kind, []).append(row.id)
    times: dict[tuple[str, str], dict[Any, list[dt.datetime]]] = {}
    for row in _standing(connection, permit_no, first, last):
        times.setdefault((row.kind, row.condition), {}).setdefault(row.facility_id, []).append(
            row.recorded_for
        )
    out = []
    for kind in RecordKind:
        normal = ledger_rules.rule(kind, Condition.NORMAL)
        owners = (
            facilities.get(FACILITY_KINDS[kind].value, []) if kind in FACILITY_KINDS else [None]
        )
        by_owner = times.get((kind.value, Condition.NORMAL.value), {})
        expected = ledger_rules.expected(normal, first, last, len(owners))
        held = ledger_rules.held(
            normal, first, last, {owner: by_owner.get(owner, []) for owner in owners}
        )
        if kind == RecordKind.MONITORING:
            expected, held = monitoring
        events = times.get((kind.value, Condition.ABNORMAL.value), {})
        out.append(
            {
                "kind": kind.value,
                "zh": normal.zh,
                "en": normal.en,
                "frequency": normal.frequency,
                "facilities": len(owners) if kind in FACILITY_KINDS else None,
                "expected": expected,
                "held": held,
                "missing": None if expected is None else max(expected - held, 0),
                "events": sum(len(v) for v in events.values()),
            }
        )
    return out
