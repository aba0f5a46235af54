"""The versions of a permit as the registry holds them: each with its limits, plan,
validity and standing (in force, pending, expired, revoked), and revocation (撤销), which
ends the version in force the day before it takes effect and revokes the versions issued
to follow it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, delete, select
from sqlalchemy.orm import Session

from ecohub.clock import local_today
from ecohub.permits import rules
from ecohub.permits.lifecycle import PermitError, versions_of
from ecohub.permits.tables import permit_applications, permit_documents, permit_monitoring
from ecohub.registry.models import (
    Enterprise,
    Outlet,
    Parameter,
    Permit,
    PermitLimit,
    PermitStatus,
)
from ecohub.registry.service import audit


def revoke(
    engine: Engine, permit_no: str, *, on: dt.date, reason: str, actor: str
) -> dict[str, Any]:
    """Revoke (撤销) a permit from ``on``: the version in force then ends the day before,
    and every later version not yet in force (a renewal or change already issued) is
    revoked too, its limits and plan removed so that no reader applies them (they stay in
    its audit entry). Each version is audited. ``on`` must fall after the permit's first
    day, and some version must be in force on it or begin on or after it."""
    if not reason.strip():
        raise PermitError("a revocation needs a written reason")
    with Session(engine) as session, session.begin():
        versions = session.scalars(
            select(Permit).where(Permit.permit_no == permit_no).order_by(Permit.version)
        ).all()
        if not versions:
            raise PermitError(f"no permit {permit_no!r}")
        live = [v for v in versions if v.status == PermitStatus.IN_FORCE]
        current = next((v for v in live if v.valid_from < on <= v.valid_to), None)
        later = [v for v in live if v.valid_from >= on]
        if on <= versions[0].valid_from or (current is None and not later):
            raise PermitError(
                f"permit {permit_no} has no version in force on {on} or after it "
                "(a revocation takes effect after the permit's first day)"
            )
        if current is not None:
            before = {"valid_to": current.valid_to.isoformat(), "status": current.status}
            current.valid_to = on - dt.timedelta(days=1)
            current.status = PermitStatus.REVOKED.value
            after = {"valid_to": current.valid_to.isoformat(), "status": current.status}
            audit(
                session,
                actor,
                "update",
                "permits",
                f"{permit_no} v{current.version}",
                before,
                {**after, "reason": reason},
            )
        for version in later:
            _void(session, version, reason, actor)
    return permit_versions(engine, permit_no)


def _void(session: Session, version: Permit, reason: str, actor: str) -> None:
    """Revoke a version not yet in force: its limits and plan go into the audit entry."""
    limits = [
        {
            "outlet_id": limit.outlet_id,
            "parameter_code": limit.parameter_code,
            "concentration_limit": limit.concentration_limit,
            "unit": limit.unit,
            "annual_mass_limit_kg": limit.annual_mass_limit_kg,
            "daily_mass_limit_kg": limit.daily_mass_limit_kg,
            "reference_o2": limit.reference_o2,
        }
        for limit in version.limits
    ]
    plan = [
        {
            "outlet_id": row.outlet_id,
            "parameter_code": row.parameter_code,
            "frequency": row.frequency,
        }
        for row in session.execute(
            select(permit_monitoring).where(permit_monitoring.c.permit_id == version.id)
        )
    ]
    before = {"status": version.status, "limits": limits, "monitoring": plan}
    version.limits.clear()
    session.execute(delete(permit_monitoring).where(permit_monitoring.c.permit_id == version.id))
    version.status = PermitStatus.REVOKED.value
    session.flush()
    audit(
        session,
        actor,
        "update",
        "permits",
        f"{version.permit_no} v{version.version}",
        before,
        {"status": version.status, "limits": [], "monitoring": [], "reason": reason},
    )


def _contents(
    connection: Connection, ids: list[int]
) -> tuple[list[Any], list[Any], dict[int, dict[str, Any]]]:
    """The limits, plans and issuing applications (reference, id, documents) of permit
    versions."""
    limits = connection.execute(
        select(
            PermitLimit.permit_id,
            PermitLimit.parameter_code,
            PermitLimit.concentration_limit,
            PermitLimit.unit,
            PermitLimit.annual_mass_limit_kg,
            PermitLimit.reference_o2,
            Outlet.code.label("outlet"),
            Parameter.name_zh,
            Parameter.name_en,
        )
        .join(Outlet, Outlet.id == PermitLimit.outlet_id)
        .join(Parameter, Parameter.code == PermitLimit.parameter_code)
        .where(PermitLimit.permit_id.in_(ids))
        .order_by(Outlet.code, PermitLimit.parameter_code)
    ).all()
    plan = connection.execute(
        select(permit_monitoring, Outlet.code.label("outlet"))
        .join(Outlet, Outlet.id == permit_monitoring.c.outlet_id)
        .where(permit_monitoring.c.permit_id.in_(ids))
        .order_by(Outlet.code, permit_monitoring.c.parameter_code)
    ).all()
    applications = {
        row.permit_id: {"reference": row.reference, "id": row.id, "documents": []}
        for row in connection.execute(
            select(
                permit_applications.c.permit_id,
                permit_applications.c.reference,
                permit_applications.c.id,
            ).where(permit_applications.c.permit_id.in_(ids))
        )
    }
    by_id = {found["id"]: found for found in applications.values()}
    for document in connection.execute(
        select(
            permit_documents.c.id,
            permit_documents.c.application_id,
            permit_documents.c.title,
            permit_documents.c.media_type,
        )
        .where(permit_documents.c.application_id.in_(list(by_id)))
        .order_by(permit_documents.c.id)
    ):
        by_id[document.application_id]["documents"].append(dict(document._mapping))
    return list(limits), list(plan), applications


def standing_of(status: str, valid_from: dt.date, valid_to: dt.date, today: dt.date) -> str:
    """in_force, pending (not yet), expired or revoked."""
    if status != PermitStatus.IN_FORCE:
        return status
    if valid_to < today:
        return "expired"
    return "pending" if valid_from > today else "in_force"


def permit_versions(engine: Engine, permit_no: str) -> dict[str, Any]:
    """Every version of a permit with its limits, plan, validity and standing."""
    today = local_today()
    with engine.connect() as connection:
        versions = versions_of(connection, permit_no)
        if not versions:
            raise PermitError(f"no permit {permit_no!r}")
        enterprise = connection.execute(
            select(Enterprise.uscc, Enterprise.name).where(
                Enterprise.id == versions[0].enterprise_id
            )
        ).one()
        limits, plan, applications = _contents(connection, [v.id for v in versions])
    out = []
    for version in versions:
        out.append(
            {
                "version": version.version,
                "valid_from": version.valid_from.isoformat(),
                "valid_to": version.valid_to.isoformat(),
                "status": version.status,
                "standing": standing_of(
                    version.status, version.valid_from, version.valid_to, today
                ),
                "management_class": version.management_class,
                "application": applications.get(version.id, {}).get("reference"),
                "application_id": applications.get(version.id, {}).get("id"),
                "documents": applications.get(version.id, {}).get("documents", []),
                "renewal_apply_by": rules.renewal_apply_by(version.valid_to).isoformat(),
                "limits": [
                    {
                        "outlet": row.outlet,
                        "parameter_code": row.parameter_code,
                        "name_zh": row.name_zh,
                        "name_en": row.name_en,
                        "concentration_limit": row.concentration_limit,
                        "unit": row.unit,
                        "annual_mass_limit_kg": row.annual_mass_limit_kg,
                        "reference_o2": row.reference_o2,
                    }
                    for row in limits
                    if row.permit_id == version.id
                ],
                "monitoring": [
                    {
                        "outlet": row.outlet,
                        "parameter_code": row.parameter_code,
                        "frequency": row.frequency,
                    }
                    for row in plan
                    if row.permit_id == version.id
                ],
            }
        )
    return {
        "permit_no": permit_no,
        "uscc": enterprise.uscc,
        "name": enterprise.name,
        "versions": out,
    }


def list_permits(
    engine: Engine, enterprise_id: int | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Permit numbers (of one enterprise, or all) with their enterprise and the version
    shown today: the one in force, else the latest; ordered by number."""
    today = local_today()
    query = (
        select(Permit, Enterprise.uscc, Enterprise.name)
        .join(Enterprise, Enterprise.id == Permit.enterprise_id)
        .order_by(Permit.permit_no, Permit.version)
    )
    if enterprise_id is not None:
        query = query.where(Permit.enterprise_id == enterprise_id)
    chosen: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            in_force = row.valid_from <= today <= row.valid_to
            shown = chosen.get(row.permit_no)
            if shown is not None and shown["in_force"] and not in_force:
                continue
            chosen[row.permit_no] = {
                "permit_no": row.permit_no,
                "uscc": row.uscc,
                "name": row.name,
                "version": row.version,
                "valid_from": row.valid_from.isoformat(),
                "valid_to": row.valid_to.isoformat(),
                "standing": standing_of(row.status, row.valid_from, row.valid_to, today),
                "in_force": in_force and row.status == PermitStatus.IN_FORCE,
            }
            if len(chosen) > limit:
                break
    return list(chosen.values())[:limit]
