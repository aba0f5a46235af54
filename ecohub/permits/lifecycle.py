"""The discharge permit as a living document: applications (new, change, renewal)
submitted by the enterprise through the API or the portal (the seeds' online service
hall), accepted or not, reviewed and decided by the agency within the periods of
:mod:`ecohub.permits.rules`, each step audited and its documents kept by hash; a decision
to issue writes a new **version** of the permit into the registry (its outlets, limits
and self-monitoring plan), which the limit alarms, the accounting and the disclosure
then read for the days it is in force; revocation ends the version in force.

The permit number of a new permit is the fixed-source code of HJ 608-2017 (the credit
code, a 3-digit sequence of the enterprise's permits, the mark ``P``): one directory
across the platform.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.orm import Session

from ecohub.clock import local_today, local_zone, utcnow
from ecohub.permits import report_rules, rules
from ecohub.permits.tables import (
    permit_application_steps,
    permit_applications,
    permit_documents,
    permit_monitoring,
)
from ecohub.registry.models import (
    Enterprise,
    Outlet,
    OutletKind,
    Parameter,
    Permit,
    PermitLimit,
    PermitStatus,
)
from ecohub.registry.parameters import canonical_parameter_code
from ecohub.registry.schemas import PermitLimitIn
from ecohub.registry.service import audit, audit_row
from ecohub.registry.source_code import build_source_code, validate_outlet_code
from ecohub.web import uploads

DOCUMENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
DOCUMENT_MAX_BYTES = 20 * 1024 * 1024
MAX_LIMITS = 500  # rows of one application


class PermitError(ValueError):
    """A request the permit procedure refuses (the message says why). An error in an
    application's content also names where: the ``section`` (limits, monitoring,
    outlets or a field), the ``item`` (1-based) and ``column`` in it, and pydantic's error
    ``problem`` and ``context``, so that a form can say it in the user's language."""

    def __init__(
        self,
        message: str,
        *,
        section: str | None = None,
        item: int | None = None,
        column: str | None = None,
        problem: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.section, self.item, self.column = section, item, column
        self.problem, self.context = problem, context or {}


class OutletSpec(BaseModel):
    """An outlet the permit covers; a new one is registered on issue (HJ 608 code)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(min_length=5, max_length=5)
    name: str = Field(min_length=1, max_length=200)
    kind: OutletKind
    longitude: float | None = Field(default=None, ge=-180, le=180)
    latitude: float | None = Field(default=None, ge=-90, le=90)

    @field_validator("code")
    @classmethod
    def _hj608(cls, value: str) -> str:
        return validate_outlet_code(value)


class MonitoringSpec(BaseModel):
    """One row of the self-monitoring plan (自行监测方案)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    outlet_code: str
    parameter_code: str
    frequency: str = Field(min_length=1, max_length=20)

    @field_validator("frequency")
    @classmethod
    def _frequency(cls, value: str) -> str:
        return report_rules.frequency(value).value


class Content(BaseModel):
    """What an application asks for. A change names the day it takes effect."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    outlets: list[OutletSpec] = Field(default_factory=list, max_length=200)
    limits: list[PermitLimitIn] = Field(min_length=1, max_length=MAX_LIMITS)
    monitoring: list[MonitoringSpec] = Field(default_factory=list, max_length=MAX_LIMITS)
    effective_on: dt.date | None = None  # a change's first day
    reason: str = Field(default="", max_length=2000)  # what changes and why


def _content(kind: str, raw: dict[str, Any]) -> Content:
    try:
        content = Content.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        raise _located(first) from None
    if kind == rules.ApplicationKind.CHANGE and content.effective_on is None:
        raise PermitError(
            "content.effective_on: a change names the day it takes effect",
            section="effective_on",
            problem="missing",
        )
    return content


def _located(error: Any) -> PermitError:
    """A validation error of an application's content, its list items counted from 1."""
    parts = list(error["loc"])
    section = str(parts[0]) if parts else None
    item = parts[1] + 1 if len(parts) > 1 and isinstance(parts[1], int) else None
    column = str(parts[2]) if item is not None and len(parts) > 2 else None
    where = f"content.{section}"
    if item is not None:
        where += f", item {item}" + (f", {column}" if column else "")
    else:
        where = "content." + ".".join(str(part) for part in parts)
    return PermitError(
        f"{where}: {error['msg']}",
        section=section,
        item=item,
        column=column,
        problem=str(error["type"]),
        context={
            key: f"{value:g}" if isinstance(value, float) else str(value)
            for key, value in (error.get("ctx") or {}).items()
        },
    )


def _enterprise(connection: Connection, uscc: str) -> Any:
    found = connection.execute(select(Enterprise).where(Enterprise.uscc == uscc)).first()
    if found is None:
        raise PermitError(f"no enterprise with credit code {uscc!r}")
    return found


def versions_of(connection: Connection, permit_no: str) -> list[Any]:
    return list(
        connection.execute(
            select(Permit).where(Permit.permit_no == permit_no).order_by(Permit.version)
        ).all()
    )


def _reference(connection: Connection, year: int) -> str:
    """The next application reference of the (Beijing calendar) year: SQ, the year, a
    6-digit number one above the highest of the year."""
    prefix = f"SQ{year}"
    highest = connection.execute(
        select(func.max(permit_applications.c.reference)).where(
            permit_applications.c.reference.like(f"{prefix}%")
        )
    ).scalar_one()
    number = int(highest[len(prefix) :]) if highest and highest[len(prefix) :].isdigit() else 0
    return f"{prefix}{number + 1:06d}"


def _step(
    connection: Connection, application_id: int, step: str, actor: str, note: str | None
) -> None:
    connection.execute(
        insert(permit_application_steps).values(
            application_id=application_id, step=step, at=utcnow(), actor=actor[:100], note=note
        )
    )


def apply(
    engine: Engine,
    *,
    uscc: str,
    kind: str,
    management_class: str,
    content: dict[str, Any],
    actor: str,
    permit_no: str | None = None,
) -> dict[str, Any]:
    """File an application; a change or renewal names the permit it is for."""
    try:
        kind = rules.ApplicationKind(kind).value
        management_class = report_rules.ManagementClass(management_class).value
    except ValueError as error:
        raise PermitError(str(error)) from None
    if management_class == report_rules.ManagementClass.REGISTRATION:
        raise PermitError(
            "a unit under registration (登记管理) files a registration form, not a permit"
        )
    checked = _content(kind, content)
    with engine.begin() as connection:
        enterprise = _enterprise(connection, uscc)
        note = None
        if kind == rules.ApplicationKind.NEW:
            permit_no = None
        else:
            versions = versions_of(connection, permit_no or "")
            if not versions or versions[-1].enterprise_id != enterprise.id:
                raise PermitError(f"enterprise {uscc} holds no permit {permit_no!r}")
            if versions[-1].status == PermitStatus.REVOKED:
                raise PermitError(f"permit {permit_no} was revoked")
            if kind == rules.ApplicationKind.RENEWAL:
                due = rules.renewal_apply_by(versions[-1].valid_to)
                if local_today() > due:
                    note = f"late: a renewal was due by {due} (排污许可管理条例 第十四条)"
        reference = _reference(connection, local_today().year)
        application_id = connection.execute(
            insert(permit_applications)
            .values(
                reference=reference,
                enterprise_id=enterprise.id,
                kind=kind,
                status=rules.ApplicationStatus.SUBMITTED.value,
                permit_no=permit_no,
                management_class=management_class,
                site_check="no",
                content=checked.model_dump(mode="json"),
                submitted_by=actor[:100],
                submitted_at=utcnow(),
            )
            .returning(permit_applications.c.id)
        ).scalar_one()
        _step(connection, application_id, "submitted", actor, note)
        audit_row(
            connection, actor, "create", "permit_applications", reference, None, {"kind": kind}
        )
    return get_application(engine, application_id)


def _application(connection: Connection, application_id: int) -> Any:
    found = connection.execute(
        select(permit_applications).where(permit_applications.c.id == application_id)
    ).first()
    if found is None:
        raise PermitError(f"no application {application_id}")
    return found


def decide(
    engine: Engine,
    application_id: int,
    wanted: str,
    *,
    actor: str,
    by: str,
    reason: str | None = None,
    site_check: bool = False,
    on: dt.date | None = None,
    holidays: Collection[dt.date] | None = None,
    workdays: Collection[dt.date] | None = None,
) -> dict[str, Any]:
    """Move an application: accept (with whether a site check is needed), not accept,
    refuse or issue (agency), withdraw (enterprise). Issuing writes the version. The
    decision's working days skip the public holidays and count the make-up working days
    (调休) of :func:`rules.public_calendar` unless ``holidays``/``workdays`` are given."""
    on = on or local_today()
    calendar = rules.public_calendar()
    holidays = calendar.holidays if holidays is None else holidays
    workdays = calendar.workdays if workdays is None else workdays
    try:
        with engine.begin() as connection:
            row = _application(connection, application_id)
            target = rules.check_step(row.status, wanted, by, reason)
            values: dict[str, Any] = {"status": target.value}
            if target == rules.ApplicationStatus.ACCEPTED:
                values["accepted_on"] = on
                values["site_check"] = "yes" if site_check else "no"
                values["decision_due"] = rules.decision_due(
                    on, row.kind, row.management_class, site_check, holidays, workdays
                )
            elif target != rules.ApplicationStatus.WITHDRAWN:
                values["decided_at"] = utcnow()
                values["decision_note"] = reason
            if target == rules.ApplicationStatus.ISSUED:
                permit_id, permit_no = _issue(connection, row, actor, on)
                values["permit_id"], values["permit_no"] = permit_id, permit_no
            connection.execute(
                update(permit_applications)
                .where(permit_applications.c.id == application_id)
                .values(**values)
            )
            _step(connection, application_id, target.value, actor, reason)
            audit_row(
                connection,
                actor,
                "update",
                "permit_applications",
                row.reference,
                {"status": row.status},
                {"status": target.value, "note": reason},
            )
    except rules.ProcedureError as error:
        raise PermitError(str(error)) from None
    return get_application(engine, application_id)


def _validity(connection: Connection, row: Any, on: dt.date) -> tuple[dt.date, dt.date, Any]:
    """The new version's first and last day and the version it follows (None: new)."""
    if row.kind == rules.ApplicationKind.NEW:
        first, last = rules.new_validity(on)
        return first, last, None
    versions = versions_of(connection, row.permit_no)
    latest = versions[-1]
    if row.kind == rules.ApplicationKind.RENEWAL:
        first, last = rules.renewed_validity(latest.valid_to)
        return first, last, latest
    effective = dt.date.fromisoformat(row.content["effective_on"])
    current = next((v for v in versions if v.valid_from <= effective <= v.valid_to), None)
    if current is None or current.version != latest.version:
        raise PermitError(f"permit {row.permit_no} has no latest version in force on {effective}")
    first, last = rules.changed_validity(effective, (current.valid_from, current.valid_to))
    return first, last, current


def _issue(connection: Connection, row: Any, actor: str, on: dt.date) -> tuple[int, str]:
    """Write the version an application asked for into the registry."""
    first, last, previous = _validity(connection, row, on)
    with Session(bind=connection) as session:
        enterprise = session.get(Enterprise, row.enterprise_id)
        assert enterprise is not None
        outlets = _outlets(session, enterprise, row.content, actor)
        if previous is None:
            permit_no, version = next_permit_no(session, enterprise.uscc), 1
        else:
            permit_no, version = row.permit_no, previous.version + 1
            if row.kind == rules.ApplicationKind.CHANGE:
                _shorten(session, previous.id, first, actor, row.reference)
        permit = Permit(
            permit_no=permit_no,
            version=version,
            status=PermitStatus.IN_FORCE.value,
            management_class=row.management_class,
            enterprise_id=enterprise.id,
            valid_from=first,
            valid_to=last,
        )
        for limit in row.content["limits"]:
            spec = PermitLimitIn.model_validate(limit)
            permit.limits.append(
                PermitLimit(
                    outlet_id=outlets[spec.outlet_code],
                    parameter_code=_parameter(session, spec.parameter_code),
                    concentration_limit=spec.concentration_limit,
                    unit=spec.unit,
                    annual_mass_limit_kg=spec.annual_mass_limit_kg,
                    daily_mass_limit_kg=spec.daily_mass_limit_kg,
                    reference_o2=spec.reference_o2,
                )
            )
        session.add(permit)
        session.flush()
        audit(
            session,
            actor,
            "create",
            "permits",
            f"{permit_no} v{version}",
            None,
            {
                "valid_from": first.isoformat(),
                "valid_to": last.isoformat(),
                "application": row.reference,
            },
        )
        session.flush()
        permit_id = permit.id
    for item in row.content.get("monitoring", []):
        connection.execute(
            insert(permit_monitoring).values(
                permit_id=permit_id,
                outlet_id=outlets[item["outlet_code"]],
                parameter_code=_parameter_code(connection, item["parameter_code"]),
                frequency=item["frequency"],
            )
        )
    return permit_id, permit_no


def next_permit_no(session: Session, uscc: str) -> str:
    """The number of an enterprise's next permit (HJ 608-2017): its credit code, one above
    the highest 3-digit sequence it holds under any mark, ``P``; a number already taken
    (by any enterprise) is skipped."""
    taken = set(
        session.scalars(
            select(Permit.permit_no).where(Permit.permit_no.like(f"{uscc}%")).distinct()
        )
    )
    sequences = [
        int(number[len(uscc) : len(uscc) + 3])
        for number in taken
        if len(number) == len(uscc) + 4 and number[len(uscc) : len(uscc) + 3].isdigit()
    ]
    sequence = max(sequences, default=0) + 1
    while sequence <= 999:
        number = build_source_code(uscc, sequence)
        if number not in taken:
            return number
        sequence += 1
    raise PermitError(f"enterprise {uscc} holds permits up to sequence 999 (HJ 608-2017)")


def _shorten(session: Session, permit_id: int, first: dt.date, actor: str, reference: str) -> None:
    """End the version a change replaces the day before the change takes effect (audited
    as its own entry)."""
    old = session.get(Permit, permit_id)
    assert old is not None
    before = old.valid_to.isoformat()
    old.valid_to = first - dt.timedelta(days=1)
    audit(
        session,
        actor,
        "update",
        "permits",
        f"{old.permit_no} v{old.version}",
        {"valid_to": before},
        {"valid_to": old.valid_to.isoformat(), "changed_by": reference},
    )


def _parameter_code(connection: Connection, code: str) -> str:
    found = canonical_parameter_code(code)
    if (
        found is None
        or connection.execute(select(Parameter.code).where(Parameter.code == found)).first() is None
    ):
        raise PermitError(f"unknown parameter code {code!r}")
    return found


def _parameter(session: Session, code: str) -> str:
    return _parameter_code(session.connection(), code)


def _outlets(
    session: Session, enterprise: Enterprise, content: dict[str, Any], actor: str
) -> dict[str, int]:
    """The enterprise's outlets by code, registering those the application adds."""
    known = {
        outlet.code: outlet
        for outlet in session.scalars(select(Outlet).where(Outlet.enterprise_id == enterprise.id))
    }
    for spec in content.get("outlets", []):
        if spec["code"] in known:
            continue
        outlet = Outlet(
            enterprise_id=enterprise.id,
            code=spec["code"],
            name=spec["name"],
            kind=spec["kind"],
            longitude=spec.get("longitude"),
            latitude=spec.get("latitude"),
        )
        session.add(outlet)
        session.flush()
        audit(session, actor, "create", "outlets", f"{enterprise.uscc}/{outlet.code}", None, spec)
        known[outlet.code] = outlet
    wanted = {limit["outlet_code"] for limit in content["limits"]} | {
        item["outlet_code"] for item in content.get("monitoring", [])
    }
    missing = sorted(wanted - set(known))
    if missing:
        raise PermitError(
            f"outlets {', '.join(missing)} are neither registered nor in the application"
        )
    return {code: outlet.id for code, outlet in known.items()}


def add_document(
    engine: Engine, folder: Path, application_id: int, *, title: str, data: bytes, actor: str
) -> dict[str, Any]:
    """Keep a document of an application's current step (PDF or image, by its bytes)."""
    media_type = uploads.check_upload(title, data, DOCUMENT_TYPES, DOCUMENT_MAX_BYTES)
    sha = uploads.store_bytes(folder, data)
    with engine.begin() as connection:
        row = _application(connection, application_id)
        document_id = connection.execute(
            insert(permit_documents)
            .values(
                application_id=application_id,
                step=row.status,
                title=title[:200],
                media_type=media_type,
                size=len(data),
                sha256=sha,
                uploaded_by=actor[:100],
                uploaded_at=utcnow(),
            )
            .returning(permit_documents.c.id)
        ).scalar_one()
        audit_row(
            connection,
            actor,
            "create",
            "permit_documents",
            f"{row.reference}/{document_id}",
            None,
            {"sha256": sha},
        )
    return {"id": document_id, "sha256": sha, "media_type": media_type, "size": len(data)}


def get_application(engine: Engine, application_id: int) -> dict[str, Any]:
    """An application with its steps, documents and due dates."""
    with engine.connect() as connection:
        row = _application(connection, application_id)
        uscc = connection.execute(
            select(Enterprise.uscc).where(Enterprise.id == row.enterprise_id)
        ).scalar_one()
        steps = connection.execute(
            select(permit_application_steps)
            .where(permit_application_steps.c.application_id == application_id)
            .order_by(permit_application_steps.c.id)
        ).all()
        documents = connection.execute(
            select(permit_documents)
            .where(permit_documents.c.application_id == application_id)
            .order_by(permit_documents.c.id)
        ).all()
    found = dict(row._mapping)
    found["uscc"] = uscc
    calendar = rules.public_calendar()
    found["acceptance_due"] = rules.acceptance_due(
        found["submitted_at"].astimezone(local_zone()).date(),
        calendar.holidays,
        calendar.workdays,
    ).isoformat()
    found["steps"] = [dict(step._mapping) for step in steps]
    found["documents"] = [dict(document._mapping) for document in documents]
    return found


def list_applications(
    engine: Engine, enterprise_id: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    query = (
        select(permit_applications, Enterprise.uscc, Enterprise.name)
        .join(Enterprise, Enterprise.id == permit_applications.c.enterprise_id)
        .order_by(permit_applications.c.id.desc())
        .limit(limit)
    )
    if enterprise_id is not None:
        query = query.where(permit_applications.c.enterprise_id == enterprise_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
