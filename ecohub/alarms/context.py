"""What the alarm rules need to know of the registry: each monitoring point's context
(outlet, enterprise, site, region, whether it is an ambient air station), the permitted
limits of each outlet's pollutants with their permits' validity, and the air stations of
each city; read in one go and refreshed by the evaluator."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from ecohub.alarms.events import Subject
from ecohub.registry.directory import read_points
from ecohub.registry.models import Permit, PermitLimit
from ecohub.registry.regions import city_level_codes, city_of


@dataclass(frozen=True)
class PointContext:
    """What the rules need to know of a monitoring point."""

    id: int
    code: str
    outlet_id: int | None
    enterprise_id: int | None
    site_id: int | None
    region_code: str | None
    ambient_air: bool
    interval_seconds: int

    @property
    def subject(self) -> Subject:
        return Subject(self.id, self.site_id, self.enterprise_id, self.region_code)


@dataclass(frozen=True)
class LimitInfo:
    """One permitted limit of an outlet's pollutant, with its permit's validity."""

    permit_no: str
    valid_from: dt.date
    valid_to: dt.date
    concentration_limit: float
    unit: str
    reference_o2: float | None
    daily_mass_kg: float | None
    annual_mass_kg: float | None


@dataclass
class AlarmRegistry:
    points: dict[int, PointContext] = field(default_factory=dict)
    limits: dict[tuple[int, str], list[LimitInfo]] = field(default_factory=dict)
    city_stations: dict[str, list[int]] = field(default_factory=dict)
    city_of_point: dict[int, str] = field(default_factory=dict)  # ambient, not control
    loaded_at: dt.datetime | None = None


def load_registry(connection: Connection, now: dt.datetime) -> AlarmRegistry:
    """The points (from the registry's point directory), their permitted limits and the
    air stations of each city, as the rules need them."""
    registry = AlarmRegistry(loaded_at=now)
    cities = city_level_codes(connection)
    for point in read_points(connection):
        registry.points[point.id] = PointContext(
            point.id,
            point.code,
            point.outlet_id,
            point.enterprise_id,
            point.site_id,
            point.region_code,
            point.ambient_air,
            point.interval_seconds,
        )
        city = city_of(point.region_code, cities)
        if point.ambient_air and city and not point.control_point:
            registry.city_stations.setdefault(city, []).append(point.id)
            registry.city_of_point[point.id] = city
    limits = select(
        PermitLimit.outlet_id,
        PermitLimit.parameter_code,
        Permit.permit_no,
        Permit.valid_from,
        Permit.valid_to,
        PermitLimit.concentration_limit,
        PermitLimit.unit,
        PermitLimit.reference_o2,
        PermitLimit.daily_mass_limit_kg,
        PermitLimit.annual_mass_limit_kg,
    ).join(Permit, Permit.id == PermitLimit.permit_id)
    for outlet_id, code, *info in connection.execute(limits):
        registry.limits.setdefault((outlet_id, code), []).append(LimitInfo(*info))
    return registry
