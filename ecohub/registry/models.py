"""SQLAlchemy models of the registry (the schema itself lives in the Alembic migrations)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false

from ecohub.clock import utcnow
from ecohub.db.base import Base
from ecohub.db.types import UTCDateTime


class SiteKind(enum.StrEnum):
    """Kinds of monitoring site (the networks an agency runs)."""

    AIR = "air"
    SURFACE_WATER = "surface_water"
    GROUNDWATER = "groundwater"
    NOISE = "noise"
    RADIATION = "radiation"
    POLLUTION_SOURCE = "pollution_source"


class SiteStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECOMMISSIONED = "decommissioned"


class RegionLevel(enum.StrEnum):
    """Levels of GB/T 2260 divisions, as the platform groups by them (a CNEMC city may be a
    county-level city)."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"


class WaterBody(enum.StrEnum):
    """Kinds of surface water (GB 3838-2002 grades lakes and reservoirs apart)."""

    RIVER = "river"
    LAKE = "lake"
    RESERVOIR = "reservoir"


class OutletKind(enum.StrEnum):
    """废气 (gas) or 废水 (water) outlet."""

    GAS = "gas"
    WATER = "water"


def _enum_check(column: str, values: type[enum.StrEnum]) -> str:
    listed = ", ".join(f"'{member.value}'" for member in values)
    return f"{column} IN ({listed})"


class Region(Base):
    """An administrative division with its GB/T 2260 six-digit code."""

    __tablename__ = "regions"
    __table_args__ = (CheckConstraint(_enum_check("level", RegionLevel), name="level"),)

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    level: Mapped[str | None] = mapped_column(String(16))

    parent: Mapped[Region | None] = relationship(remote_side=[code])


class Parameter(Base):
    """A pollutant or parameter from the HJ 212-2017 code table."""

    __tablename__ = "parameters"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    legacy_code: Mapped[str | None] = mapped_column(String(12), unique=True)
    medium: Mapped[str] = mapped_column(String(16))
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(32))
    valid_min: Mapped[float | None] = mapped_column(Float)
    valid_max: Mapped[float | None] = mapped_column(Float)


class Site(Base):
    """A monitoring site or station (air, water, noise, radiation, pollution source)."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint(_enum_check("kind", SiteKind), name="kind"),
        CheckConstraint(_enum_check("status", SiteStatus), name="status"),
        CheckConstraint(_enum_check("water_body", WaterBody), name="water_body"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=SiteStatus.ACTIVE.value)
    # A control site (对照点) of the national air network, left out of its city's AQI.
    control_point: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    basin: Mapped[str | None] = mapped_column(String(100))  # surface water: 流域
    water_body: Mapped[str | None] = mapped_column(String(16))  # river, lake, reservoir


class Enterprise(Base):
    """An enterprise identified by its unified social credit code (GB 32100-2015)."""

    __tablename__ = "enterprises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)
    industry: Mapped[str | None] = mapped_column(String(100))
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)

    outlets: Mapped[list[Outlet]] = relationship(back_populates="enterprise")
    permits: Mapped[list[Permit]] = relationship(back_populates="enterprise")


class Outlet(Base):
    """A discharge outlet (排放口) of an enterprise."""

    __tablename__ = "outlets"
    __table_args__ = (
        UniqueConstraint("enterprise_id", "code", name="uq_outlets_enterprise_code"),
        CheckConstraint(_enum_check("kind", OutletKind), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)

    enterprise: Mapped[Enterprise] = relationship(back_populates="outlets")


class PermitStatus(enum.StrEnum):
    """A permit version's standing; expiry is read from ``valid_to``."""

    IN_FORCE = "in_force"
    REVOKED = "revoked"  # 撤销 (排污许可管理条例): valid_to is then the day before


class Permit(Base):
    """One version of a pollutant discharge permit (排污许可证) with its validity dates.

    A change (变更) or renewal (延续) issues a new version under the same number: the
    versions of one number have consecutive validity ranges, so that the version in force
    on a day is the one whose range holds it (limits, alarms, accounting, disclosure)."""

    __tablename__ = "permits"
    __table_args__ = (
        CheckConstraint("valid_to >= valid_from", name="validity"),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(_enum_check("status", PermitStatus), name="status"),
        UniqueConstraint("permit_no", "version", name="uq_permits_number_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    permit_no: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(
        String(12), default=PermitStatus.IN_FORCE.value, server_default="in_force"
    )
    # 重点管理 (key) or 简化管理 (simplified), 固定污染源排污许可分类管理名录.
    management_class: Mapped[str | None] = mapped_column(String(12))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprises.id"), index=True)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)

    enterprise: Mapped[Enterprise] = relationship(back_populates="permits")
    limits: Mapped[list[PermitLimit]] = relationship(
        back_populates="permit", cascade="all, delete-orphan"
    )


def versions_shown(permits: list[Permit], day: dt.date) -> list[Permit]:
    """Of each permit number, the version in force on ``day``, else its latest version,
    ordered by number."""
    chosen: dict[str, Permit] = {}
    for permit in sorted(permits, key=lambda p: (p.permit_no, p.version)):
        current = chosen.get(permit.permit_no)
        in_force = permit.valid_from <= day <= permit.valid_to
        if current is None or in_force or not (current.valid_from <= day <= current.valid_to):
            chosen[permit.permit_no] = permit
    return [chosen[number] for number in sorted(chosen)]


class PermitLimit(Base):
    """A permitted limit for one pollutant at one outlet."""

    __tablename__ = "permit_limits"
    __table_args__ = (
        UniqueConstraint("permit_id", "outlet_id", "parameter_code", name="uq_permit_limits_key"),
        CheckConstraint("concentration_limit > 0", name="positive_limit"),
        CheckConstraint(
            "annual_mass_limit_kg IS NULL OR annual_mass_limit_kg > 0", name="positive_mass"
        ),
        CheckConstraint(
            "daily_mass_limit_kg IS NULL OR daily_mass_limit_kg > 0", name="positive_daily_mass"
        ),
        CheckConstraint(
            "reference_o2 IS NULL OR (reference_o2 >= 0 AND reference_o2 < 21)",
            name="reference_o2",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("permits.id", ondelete="CASCADE"), index=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), index=True)
    parameter_code: Mapped[str] = mapped_column(ForeignKey("parameters.code"))
    concentration_limit: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    annual_mass_limit_kg: Mapped[float | None] = mapped_column(Float)
    daily_mass_limit_kg: Mapped[float | None] = mapped_column(Float)
    # O2 content (%) the concentration limit is stated at (基准氧含量); None: as measured.
    reference_o2: Mapped[float | None] = mapped_column(Float)

    permit: Mapped[Permit] = relationship(back_populates="limits")
    outlet: Mapped[Outlet] = relationship()


class MonitoringPoint(Base):
    """A monitoring point: one data logger (HJ 212 MN) measuring an outlet or a site."""

    __tablename__ = "monitoring_points"
    __table_args__ = (
        CheckConstraint(
            "(outlet_id IS NULL) <> (site_id IS NULL)", name="measures_one_outlet_or_site"
        ),
        CheckConstraint("interval_seconds > 0", name="positive_interval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    mn: Mapped[str | None] = mapped_column(String(32), unique=True)
    password: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    outlet_id: Mapped[int | None] = mapped_column(ForeignKey("outlets.id"), index=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), index=True)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=60)
    # Spacing of the logger's minute data (HJ 212 CN 2051), used for hourly coverage.
    minute_interval_seconds: Mapped[int] = mapped_column(Integer, default=600, server_default="600")
    crc_tolerant: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    outlet: Mapped[Outlet | None] = relationship()
    site: Mapped[Site | None] = relationship()


class AuditEntry(Base):
    """One change to the registry: who, when, what, and the row before and after."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(64))
    entity_key: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
