"""The versions of a permit as the registry holds them: each with its limits, plan,
validity and standing (in force, pending, expired, revoked), and revocation (撤销), which
ends the version in force the day before it takes effect."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from ecohub.clock import local_today
from ecohub.permits import rules
from ecohub.permits.lifecycle import PermitError, versions_of
from ecohub.permits.tables import permit_applications, permit_monitoring
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
    """Revoke (撤销) the version in force on ``on`` from that day: it ends the day before."""
    if not reason.strip():
        raise PermitError("a revocation needs a written reason")
    with Session(engine) as session, session.begin():
        versions = session.scalars(
            select(Permit).where(Permit.permit_no == permit_no).order_by(Permit.version)
        ).all()
        current = next((v for v in versions if v.valid_from < on <= v.valid_to), None)
        if current is None:
            raise PermitError(f"permit {permit_no} has no version in force before and on {on}")
        if current is not versions[-1]:
            raise PermitError(f"permit {permit_no} has a later version; revoke from its first day")
        before = {"valid_to": current.valid_to.isoformat(), "status": current.status}
        current.valid_to = on - dt.timedelta(days=1)
        current.status = PermitStatus.REVOKED.value
        audit(
            session,
            actor,
            "update",
            "permits",
            f"{permit_no} v{current.version}",
            before,
            {"valid_to": current.valid_to.isoformat(), "status": current.status, "reason": reason},
        )
    return permit_versions(engine, permit_no)


def _contents(
    connection: Connection, ids: list[int]
) -> tuple[list[Any], list[Any], dict[int, str]]:
    """The limits, plans and issuing applications of permit versions."""
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
        row.permit_id: row.reference
        for row in connection.execute(
            select(permit_applications.c.permit_id, permit_applications.c.reference).where(
                permit_applications.c.permit_id.in_(ids)
            )
        )
    }
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
                "application": applications.get(version.id),
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
