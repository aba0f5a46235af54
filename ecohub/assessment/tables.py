"""The stored annual assessments: one row per station, city and the nation for a year,
each holding its report as a JSON document (what the API and the pages serve).

An assessment is computed from the year's daily rollups (:mod:`ecohub.assessment.service`)
by ``ecohub assess annual``, or on the first request for a year that has none; each
row carries the time it was computed.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
)

from ecohub.db.base import metadata
from ecohub.db.types import UTCDateTime

annual_assessments = Table(
    "annual_assessments",
    metadata,
    Column("year", SmallInteger, nullable=False),  # local calendar year (Beijing time)
    Column("scope", String(8), nullable=False),  # station, city or nation
    Column("code", String(32), nullable=False),  # site code, city code (GB/T 2260), CN
    Column("city", String(6)),  # a station's city (none for a control site's own)
    Column("position", Integer),  # a city's rank by the comprehensive index
    Column("document", Text, nullable=False),  # the report as JSON
    Column("computed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("year", "scope", "code"),
)
Index("ix_annual_assessments_city", annual_assessments.c.year, annual_assessments.c.city)
