"""Registry operations: create, update and delete records, each change audited.

Every function takes an open ``Session`` and the ``actor`` to record; the caller owns the
transaction, so a batch of changes and their audit rows commit or roll back together.
Upserts are keyed by natural keys, so importing the same file twice changes nothing and
writes no audit row the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, insert, inspect, select, text
from sqlalchemy.orm import Session

from ecohub.clock import utcnow
from ecohub.db.base import Base
from ecohub.db.counters import bump_counter, change_counters
from ecohub.registry.models import (
    AuditEntry,
    Enterprise,
    MonitoringPoint,
    Outlet,
    Parameter,
    Permit,
    PermitLimit,
    PermitStatus,
    Region,
    Site,
)
from ecohub.registry.parameters import canonical_parameter_code
from ecohub.registry.schemas import (
    EnterpriseIn,
    OutletIn,
    PermitIn,
    PointIn,
    RegionIn,
    SiteIn,
)

ModelT = TypeVar("ModelT", bound=Base)


class RegistryError(ValueError):
    """A registry change that cannot be made (unknown reference, conflicting key)."""


def snapshot(obj: Base) -> dict[str, Any]:
    """The row's column values as JSON-ready data (for the audit log)."""
    values: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        value = getattr(obj, attr.key)
        if isinstance(value, dt.date | dt.datetime):
            value = value.isoformat()
        values[attr.key] = value
    return values


# The change counter every audited change bumps in its own transaction: a running
# gateway compares it with the version it loaded its points at (registry_version).
REGISTRY_COUNTER = "registry"


def registry_version(source: Engine | Connection) -> int:
    """How many audited changes the registry has had: moves with (and only after the
    commit of) every change, so a cache of the registry loaded after reading it is
    current as long as it stays the same."""
    query = select(change_counters.c.version).where(change_counters.c.name == REGISTRY_COUNTER)
    if isinstance(source, Engine):
        with source.connect() as connection:
            found = connection.execute(query).scalar()
    else:
        found = source.execute(query).scalar()
    return int(found or 0)


def audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    key: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Write one audit row (and count it in ``session.info["audited"]``, which tells an
    import whether a record changed anything), and bump the registry's version (an
    import sets ``session.info["bump_once"]`` and bumps it once for its transaction)."""
    session.info["audited"] = session.info.get("audited", 0) + 1
    if not session.info.get("bump_once"):
        bump_counter(session.connection(), REGISTRY_COUNTER)
    session.add(
        AuditEntry(
            actor=actor, action=action, entity=entity, entity_key=key, before=before, after=after
        )
    )


def audit_row(
    connection: Connection,
    actor: str,
    action: str,
    entity: str,
    key: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """One audit row in the caller's transaction (the areas' own records: cases,
    complaints… — no registry version bump)."""
    connection.execute(
        insert(AuditEntry).values(
            at=utcnow(),
            actor=actor[:100],
            action=action,
            entity=entity,
            entity_key=key[:200],
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
        )
    )


def _upsert(
    session: Session,
    model: type[ModelT],
    lookup: dict[str, Any],
    values: dict[str, Any],
    actor: str,
    key: str,
) -> ModelT:
    entity = model.__tablename__
    existing = session.scalars(select(model).filter_by(**lookup)).one_or_none()
    if existing is None:
        created = model(**lookup, **values)
        session.add(created)
        session.flush()
        audit(session, actor, "create", entity, key, None, snapshot(created))
        return created
    before = snapshot(existing)
    for name, value in values.items():
        setattr(existing, name, value)
    session.flush()
    after = snapshot(existing)
    if after != before:
        audit(session, actor, "update", entity, key, before, after)
    return existing


# The time-series tables that hold point ids (of the timeseries area, above this floor:
# named here, not imported).
POINT_DATA_TABLES = ("observations", "rollups")


def _refuse_if_it_has_data(session: Session, point: MonitoringPoint) -> None:
    """The time-series tables carry no foreign key to points (it is checked row by row
    on every insert), so the registry keeps a point's data from losing its point."""
    for table in POINT_DATA_TABLES:
        found = session.execute(
            text(f"SELECT point_id FROM {table} WHERE point_id = :point LIMIT 1"),
            {"point": point.id},
        ).first()
        if found:
            raise RegistryError(
                f"point {point.code} has stored {table}; it cannot be deleted (retire it instead)"
            )


def _require(session: Session, model: type[ModelT], description: str, **lookup: Any) -> ModelT:
    found = session.scalars(select(model).filter_by(**lookup)).one_or_none()
    if found is None:
        raise RegistryError(f"unknown {description}")
    return found


def _region_or_none(session: Session, code: str | None) -> str | None:
    if code is not None:
        _require(session, Region, f"region {code}", code=code)
    return code


def upsert_region(session: Session, record: RegionIn, actor: str) -> Region:
    _region_or_none(session, record.parent_code)
    return _upsert(
        session,
        Region,
        {"code": record.code},
        {"name": record.name, "parent_code": record.parent_code}
        | ({"level": record.level.value} if record.level is not None else {}),
        actor,
        record.code,
    )


# Site attributes a record sets only when it names them: a registry file that does not
# know a section's basin or a station's control flag leaves what another import set.
_OPTIONAL_SITE_FIELDS = frozenset({"control_point", "basin", "water_body"})


def upsert_site(session: Session, record: SiteIn, actor: str) -> Site:
    unset = _OPTIONAL_SITE_FIELDS - record.model_fields_set
    values = record.model_dump(exclude={"code", *unset}, mode="json")
    _region_or_none(session, record.region_code)
    return _upsert(session, Site, {"code": record.code}, values, actor, record.code)


def upsert_enterprise(session: Session, record: EnterpriseIn, actor: str) -> Enterprise:
    values = record.model_dump(exclude={"uscc"}, mode="json")
    _region_or_none(session, record.region_code)
    return _upsert(session, Enterprise, {"uscc": record.uscc}, values, actor, record.uscc)


def _enterprise(session: Session, uscc: str) -> Enterprise:
    return _require(session, Enterprise, f"enterprise with credit code {uscc}", uscc=uscc)


def upsert_outlet(session: Session, record: OutletIn, actor: str) -> Outlet:
    enterprise = _enterprise(session, record.enterprise_uscc)
    values = record.model_dump(exclude={"enterprise_uscc", "code"}, mode="json")
    return _upsert(
        session,
        Outlet,
        {"enterprise_id": enterprise.id, "code": record.code},
        values,
        actor,
        f"{record.enterprise_uscc}/{record.code}",
    )


def upsert_permit(session: Session, record: PermitIn, actor: str) -> Permit:
    """Create or update a permit; its limits are replaced by the record's limits. A permit
    the permit procedure keeps (several versions, one revoked, or one it issued) is not
    edited here (that would rewrite its history): a record saying what its latest version
    holds is accepted unchanged, any other is refused (a change or renewal is applied for
    in the permits area)."""
    enterprise = _enterprise(session, record.enterprise_uscc)
    limits = []
    for limit in record.limits:
        outlet = _require(
            session,
            Outlet,
            f"outlet {limit.outlet_code} of enterprise {record.enterprise_uscc}",
            enterprise_id=enterprise.id,
            code=limit.outlet_code,
        )
        code = canonical_parameter_code(limit.parameter_code)
        if code is None or session.get(Parameter, code) is None:
            raise RegistryError(f"unknown parameter code {limit.parameter_code!r}")
        limits.append((outlet, code, limit))

    versions = session.scalars(
        select(Permit).filter_by(permit_no=record.permit_no).order_by(Permit.version.desc())
    ).all()
    existing = versions[0] if versions else None
    if existing is not None and _by_procedure(versions):
        if not _same(existing, enterprise.id, record, limits):
            raise RegistryError(
                f"permit {record.permit_no} is kept by the permit procedure (its versions: "
                f"{len(versions)}); the registry does not edit it: apply for a change (变更) "
                "or renewal (延续) in the online service hall (/permits), or revoke it there"
            )
        return existing
    before = _permit_snapshot(existing) if existing else None
    permit = existing or Permit(permit_no=record.permit_no)
    permit.enterprise_id = enterprise.id
    permit.valid_from = record.valid_from
    permit.valid_to = record.valid_to
    wanted = {(outlet.id, code): limit for outlet, code, limit in limits}
    for old in list(permit.limits):
        if (old.outlet_id, old.parameter_code) not in wanted:
            permit.limits.remove(old)
    current = {(old.outlet_id, old.parameter_code): old for old in permit.limits}
    for (outlet_id, code), limit in wanted.items():
        row = current.get((outlet_id, code))
        if row is None:
            row = PermitLimit(outlet_id=outlet_id, parameter_code=code)
            permit.limits.append(row)
        row.concentration_limit = limit.concentration_limit
        row.unit = limit.unit
        row.annual_mass_limit_kg = limit.annual_mass_limit_kg
        row.daily_mass_limit_kg = limit.daily_mass_limit_kg
        row.reference_o2 = limit.reference_o2
    session.add(permit)
    session.flush()
    after = _permit_snapshot(permit)
    if after != before:
        action = "create" if before is None else "update"
        audit(session, actor, action, "permits", record.permit_no, before, after)
    return permit


def _by_procedure(versions: Sequence[Permit]) -> bool:
    """Whether a permit's versions are the permit procedure's: more than one (a change
    or renewal), one revoked, or one issued by it (it alone sets the management class).
    Editing such a version in place would rewrite its history."""
    return len(versions) > 1 or any(
        v.status != PermitStatus.IN_FORCE or v.management_class is not None for v in versions
    )


def _same(
    permit: Permit, enterprise_id: int, record: PermitIn, limits: list[tuple[Outlet, str, Any]]
) -> bool:
    """Whether a record says what a permit version already holds."""
    held = {
        (row.outlet_id, row.parameter_code): (
            row.concentration_limit,
            row.unit,
            row.annual_mass_limit_kg,
            row.daily_mass_limit_kg,
            row.reference_o2,
        )
        for row in permit.limits
    }
    wanted = {
        (outlet.id, code): (
            limit.concentration_limit,
            limit.unit,
            limit.annual_mass_limit_kg,
            limit.daily_mass_limit_kg,
            limit.reference_o2,
        )
        for outlet, code, limit in limits
    }
    return (permit.enterprise_id, permit.valid_from, permit.valid_to, held) == (
        enterprise_id,
        record.valid_from,
        record.valid_to,
        wanted,
    )


def _permit_snapshot(permit: Permit) -> dict[str, Any]:
    data = snapshot(permit)
    data["limits"] = sorted(
        (
            {k: v for k, v in snapshot(limit).items() if k not in {"id", "permit_id"}}
            for limit in permit.limits
        ),
        key=lambda row: (row["outlet_id"], row["parameter_code"]),
    )
    return data


def upsert_point(session: Session, record: PointIn, actor: str) -> MonitoringPoint:
    outlet_id: int | None = None
    site_id: int | None = None
    if record.site_code:
        site_id = _require(session, Site, f"site {record.site_code}", code=record.site_code).id
    else:
        assert record.enterprise_uscc and record.outlet_code  # checked by PointIn
        enterprise = _enterprise(session, record.enterprise_uscc)
        outlet_id = _require(
            session,
            Outlet,
            f"outlet {record.outlet_code} of enterprise {record.enterprise_uscc}",
            enterprise_id=enterprise.id,
            code=record.outlet_code,
        ).id
    if record.mn:
        clash = session.scalars(select(MonitoringPoint).filter_by(mn=record.mn)).one_or_none()
        if clash is not None and clash.code != record.code:
            raise RegistryError(f"MN {record.mn} already belongs to point {clash.code}")
    values = {
        "name": record.name,
        "mn": record.mn,
        "password": record.password,
        "outlet_id": outlet_id,
        "site_id": site_id,
        "interval_seconds": record.interval_seconds,
        "minute_interval_seconds": record.minute_interval_seconds,
        "crc_tolerant": record.crc_tolerant,
    }
    return _upsert(session, MonitoringPoint, {"code": record.code}, values, actor, record.code)


# Natural key of each deletable entity, as the CLI and API name it.
_DELETABLE: dict[str, tuple[type[Base], str]] = {
    "regions": (Region, "code"),
    "sites": (Site, "code"),
    "enterprises": (Enterprise, "uscc"),
    "permits": (Permit, "permit_no"),
    "points": (MonitoringPoint, "code"),
}


def delete_entity(session: Session, entity: str, key: str, actor: str) -> None:
    """Delete one record by its natural key, auditing the row as it was."""
    if entity not in _DELETABLE:
        raise RegistryError(f"cannot delete {entity!r}; one of {', '.join(_DELETABLE)}")
    model, column = _DELETABLE[entity]
    if model is Permit:
        _delete_permit(session, key, actor)
        return
    row = _require(session, model, f"{entity} {key}", **{column: key})
    if isinstance(row, MonitoringPoint):
        _refuse_if_it_has_data(session, row)
    before = _permit_snapshot(row) if isinstance(row, Permit) else snapshot(row)
    session.delete(row)
    session.flush()
    audit(session, actor, "delete", model.__tablename__, key, before, None)


def _delete_permit(session: Session, permit_no: str, actor: str) -> None:
    """Delete every version of a permit, auditing each as it was."""
    versions = session.scalars(
        select(Permit).filter_by(permit_no=permit_no).order_by(Permit.version)
    ).all()
    if not versions:
        raise RegistryError(f"unknown permits {permit_no}")
    for row in versions:
        before = _permit_snapshot(row)
        session.delete(row)
        session.flush()
        audit(session, actor, "delete", "permits", permit_no, before, None)
