"""The simulated data loggers as registry records: a simulated enterprise with a flue-gas
and a waste-water outlet per logger, and one monitoring point (MN, password) each; or
the registry's own outlet loggers, for the demo."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.registry import service
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, OutletKind
from ecohub.registry.schemas import EnterpriseIn, OutletIn, PointIn
from ecohub.registry.uscc import uscc_check_character

SIM_USCC_BODY = "91110000MA00NMR01"

SIM_USCC = SIM_USCC_BODY + uscc_check_character(SIM_USCC_BODY)

PASSWORD = "123456"


@dataclass(frozen=True)
class SimulatedPoint:
    mn: str
    password: str
    kind: str  # gas | water


def register_simulated_points(engine: Engine, count: int) -> list[SimulatedPoint]:
    """Register (idempotently) ``count`` simulated loggers: even ones gas, odd ones water."""
    points = []
    with Session(engine) as session, session.begin():
        service.upsert_enterprise(
            session, EnterpriseIn(uscc=SIM_USCC, name="仿真排污单位（模拟数据）"), "simulator"
        )
        existing = {
            mn
            for mn in session.scalars(
                select(MonitoringPoint.mn).join(Outlet).where(MonitoringPoint.mn.like("SIM%"))
            )
        }
        for index in range(count):
            kind = "gas" if index % 2 == 0 else "water"
            mn = f"SIM{index:011d}"
            points.append(SimulatedPoint(mn, PASSWORD, kind))
            if mn in existing:
                continue
            # HJ 608-2017 outlet codes: DA/DW and 3 digits; beyond 2,000 simulated points
            # several points share an outlet (a simulator's choice, harmless for load).
            outlet_code = f"{'DA' if kind == 'gas' else 'DW'}{index // 2 % 1000:03d}"
            service.upsert_outlet(
                session,
                OutletIn(
                    enterprise_uscc=SIM_USCC,
                    code=outlet_code,
                    name=f"模拟排口{index}",
                    kind=OutletKind(kind),
                ),
                "simulator",
            )
            service.upsert_point(
                session,
                PointIn(
                    code=f"SIM{index:05d}",
                    name=f"模拟数采仪{index}",
                    mn=mn,
                    password=PASSWORD,
                    enterprise_uscc=SIM_USCC,
                    outlet_code=outlet_code,
                    interval_seconds=60,
                ),
                "simulator",
            )
    return points


def registered_loggers(engine: Engine, exclude_simulated: bool = True) -> list[SimulatedPoint]:
    """The registry's outlet points that have an MN and password, as simulated loggers
    (used by the demo to stream data for the demo enterprises)."""
    with Session(engine) as session:
        rows = session.execute(
            select(MonitoringPoint.mn, MonitoringPoint.password, Outlet.kind)
            .join(Outlet, Outlet.id == MonitoringPoint.outlet_id)
            .where(MonitoringPoint.mn.is_not(None), MonitoringPoint.password.is_not(None))
            .order_by(MonitoringPoint.mn)
        ).all()
    return [
        SimulatedPoint(mn, password, kind)
        for mn, password, kind in rows
        if not (exclude_simulated and mn.startswith("SIM"))
    ]


@dataclass(frozen=True)
class Removed:
    """What :func:`remove_simulated` removed."""

    points: int
    outlets: int
    values: int


def remove_simulated(engine: Engine, actor: str) -> Removed:
    """Remove the simulated enterprise, its outlets and points, and everything stored
    for those points (observations and their revisions, rollups, AQI, the rollup queue,
    alarms with their history and notifications, quarantined input), in one transaction;
    the registry's deletions are audited."""
    from sqlalchemy import delete

    from ecohub.alarms.tables import alarm_events, alarms, notifications
    from ecohub.db.quarantine import quarantine
    from ecohub.timeseries.tables import (
        observation_revisions,
        observations,
        rollup_queue,
        rollups,
        station_aqi,
        station_aqi_latest,
    )

    with Session(engine) as session, session.begin():
        enterprise = session.scalars(select(Enterprise).filter_by(uscc=SIM_USCC)).one_or_none()
        if enterprise is None:
            return Removed(0, 0, 0)
        points = session.scalars(
            select(MonitoringPoint).join(Outlet).where(Outlet.enterprise_id == enterprise.id)
        ).all()
        ids = [point.id for point in points]
        codes = [point.code for point in points]
        values = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            values += session.execute(
                delete(observations).where(observations.c.point_id.in_(chunk))
            ).rowcount  # type: ignore[attr-defined]
            for table in (
                observation_revisions,
                rollups,
                station_aqi,
                station_aqi_latest,
                rollup_queue,
            ):
                session.execute(delete(table).where(table.c.point_id.in_(chunk)))
            owned = select(alarms.c.id).where(alarms.c.point_id.in_(chunk))
            session.execute(delete(notifications).where(notifications.c.alarm_id.in_(owned)))
            session.execute(delete(alarm_events).where(alarm_events.c.alarm_id.in_(owned)))
            session.execute(delete(alarms).where(alarms.c.point_id.in_(chunk)))
            session.execute(
                delete(quarantine).where(quarantine.c.point_code.in_(codes[start : start + 500]))
            )
        outlets = [outlet.code for outlet in enterprise.outlets]
        for code in codes:
            service.delete_entity(session, "points", code, actor)
        for outlet in list(enterprise.outlets):
            before = service.snapshot(outlet)
            session.delete(outlet)
            session.flush()
            service.audit(session, actor, "delete", "outlets", outlet.code, before, None)
        service.delete_entity(session, "enterprises", SIM_USCC, actor)
    return Removed(len(codes), len(outlets), values)
