"""The simulated data loggers as registry records: a simulated enterprise with a flue-gas
and a waste-water outlet per logger, and one monitoring point (MN, password) each; or
the registry's own outlet loggers, for the demo."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.registry import service
from ecohub.registry.models import MonitoringPoint, Outlet, OutletKind
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
            outlet_code = f"{'DA' if kind == 'gas' else 'DW'}{index:05d}"
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
