"""The one point directory: every monitoring point as the doors, the pipeline and the
rollups need it, read from the registry in one query (the point → outlet → enterprise
and point → site join lives here and nowhere else).

A point is looked up by id (the pipeline, the rollups), by HJ 212 MN (the gateway) or
by code (uploads, MQTT). Long-running processes keep one directory and refresh it when
they meet a point they do not know, or periodically.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, select

from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, Site, SiteKind


@dataclass(frozen=True, slots=True)
class PointInfo:
    """What the platform's data paths need to know of one registered monitoring point."""

    id: int
    ambient_air: bool  # measures an ambient air station (AQI, GB 3095 rules)
    source: bool  # measures a pollution-source outlet
    interval_seconds: int
    minute_interval_seconds: int
    code: str = ""
    mn: str | None = None
    password: str | None = None
    crc_tolerant: bool = False
    enterprise_id: int | None = None
    outlet_id: int | None = None
    site_id: int | None = None
    region_code: str | None = None  # the site's region, else the enterprise's
    control_point: bool = False  # the site is a control site (对照点)


def point_query() -> Select[Any]:
    """The registry join every directory reads: point, its outlet's enterprise, its site."""
    return select(
        MonitoringPoint.id,
        MonitoringPoint.code,
        MonitoringPoint.mn,
        MonitoringPoint.password,
        MonitoringPoint.crc_tolerant,
        MonitoringPoint.interval_seconds,
        MonitoringPoint.minute_interval_seconds,
        MonitoringPoint.outlet_id,
        Outlet.enterprise_id,
        Site.kind,
        MonitoringPoint.site_id,
        Site.region_code,
        Enterprise.region_code,
        Site.control_point,
    ).select_from(
        MonitoringPoint.__table__.outerjoin(
            Outlet.__table__, MonitoringPoint.outlet_id == Outlet.id
        )
        .outerjoin(Enterprise.__table__, Outlet.enterprise_id == Enterprise.id)
        .outerjoin(Site.__table__, MonitoringPoint.site_id == Site.id)
    )


def read_points(source: Engine | Connection) -> list[PointInfo]:
    """Every registered monitoring point (read on an engine or in a transaction)."""
    if isinstance(source, Engine):
        with source.connect() as connection:
            rows = connection.execute(point_query()).all()
    else:
        rows = source.execute(point_query()).all()
    return [
        PointInfo(
            id=point_id,
            ambient_air=kind == SiteKind.AIR.value,
            source=outlet_id is not None or kind == SiteKind.POLLUTION_SOURCE.value,
            interval_seconds=interval or 60,
            minute_interval_seconds=minute_interval or 600,
            code=code,
            mn=mn,
            password=password,
            crc_tolerant=bool(tolerant),
            enterprise_id=enterprise_id,
            outlet_id=outlet_id,
            site_id=site_id,
            region_code=site_region or enterprise_region,
            control_point=bool(control),
        )
        for (
            point_id,
            code,
            mn,
            password,
            tolerant,
            interval,
            minute_interval,
            outlet_id,
            enterprise_id,
            kind,
            site_id,
            site_region,
            enterprise_region,
            control,
        ) in rows
    ]


class PointDirectory:
    """Monitoring points by id, MN and code, read from the registry on demand."""

    def __init__(self, engine: Engine, *, load: bool = False) -> None:
        self.engine = engine
        self.points: dict[int, PointInfo] = {}
        self.by_mn: dict[str, PointInfo] = {}
        self.by_code: dict[str, PointInfo] = {}
        self.loaded_at = 0.0
        if load:
            self.refresh()

    def refresh(self) -> None:
        """Read every point from the registry again."""
        found = read_points(self.engine)
        self.points = {point.id: point for point in found}
        self.by_mn = {point.mn: point for point in found if point.mn}
        self.by_code = {point.code: point for point in found}
        self.loaded_at = time.monotonic()

    load = refresh

    def ids(self, wanted: Iterable[int] = ()) -> set[int]:
        """Known point ids; re-reads the registry when one of ``wanted`` is unknown."""
        if any(point_id not in self.points for point_id in wanted):
            self.refresh()
        return set(self.points)

    def get(self, mn: str) -> PointInfo | None:
        """The point with HJ 212 MN ``mn``."""
        return self.by_mn.get(mn)

    def __len__(self) -> int:
        return len(self.by_mn)
