"""Tables of the time series: observations and their revisions, rollups, station AQI and
the rollup queue.

Observations are keyed by (point, parameter, interval kind, timestamp), which is what
makes every write idempotent: the same value sent twice is one row.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
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


class IntervalKind(enum.StrEnum):
    """Averaging interval of an observation (HJ 212 CN 2011/2051/2061/2031)."""

    REALTIME = "rt"
    MINUTE = "min"
    HOUR = "hour"
    DAY = "day"


class DataFlag(enum.StrEnum):
    """HJ 212-2017 data flags (数据标记, table 7)."""

    NORMAL = "N"  # 在线监控（监测）仪器仪表工作正常
    STOPPED = "F"  # 停运
    MAINTENANCE = "M"  # 维护
    MANUAL = "S"  # 手工输入的设定值
    FAULT = "D"  # 故障
    CALIBRATION = "C"  # 校准
    OVER_RANGE = "T"  # 超测上限
    COMM_FAULT = "B"  # 通讯异常


def _equal_to_one(column: str, values: list[str]) -> str:
    """``column = 'a' OR column = 'b' …``: SQLite checks ``IN`` lists of more than two
    values with a lookup table built for every row, which cost 6 µs per inserted
    observation (migration 0010)."""
    return " OR ".join(f"{column} = '{value}'" for value in values)


observations = Table(
    "observations",
    metadata,
    # No foreign key to monitoring_points: it would be checked row by row at every
    # insert; the registry refuses to delete a point with data instead (migration 0008).
    Column("point_id", Integer, nullable=False),
    Column("parameter_code", String(12), nullable=False),
    Column("interval", String(4), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("value", Float),
    Column("data_flag", String(1), nullable=False, server_default="N"),
    Column("quality_flag", SmallInteger, nullable=False, server_default="0"),
    Column("source", String(16), nullable=False),
    Column("ingested_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("point_id", "parameter_code", "interval", "ts"),
    CheckConstraint(_equal_to_one("data_flag", [f.value for f in DataFlag]), name="data_flag"),
    CheckConstraint(_equal_to_one("interval", [k.value for k in IntervalKind]), name="interval"),
    # SQLite: store rows in the primary-key B-tree itself (one tree to update, not two).
    sqlite_with_rowid=False,
)
Index("ix_observations_ts", observations.c.ts)

observation_revisions = Table(
    "observation_revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("point_id", Integer, nullable=False),
    Column("parameter_code", String(12), nullable=False),
    Column("interval", String(4), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("old_value", Float),
    Column("new_value", Float),
    Column("old_data_flag", String(1)),
    Column("new_data_flag", String(1)),
    Column("old_source", String(16)),
    Column("new_source", String(16)),
    Column("revised_at", UTCDateTime, nullable=False),
)
Index(
    "ix_observation_revisions_key",
    observation_revisions.c.point_id,
    observation_revisions.c.parameter_code,
    observation_revisions.c.ts,
)

# --- derived data: rollups and AQI ---------------------------------------------------

rollups = Table(
    "rollups",
    metadata,
    Column("point_id", Integer, nullable=False),  # no foreign key, as observations
    Column("parameter_code", String(16), nullable=False),
    Column("period", String(4), nullable=False),  # hour or day
    Column("ts", UTCDateTime, nullable=False),  # period start (days: local midnight, in UTC)
    Column("value", Float),
    Column("statistic", String(8), nullable=False),  # mean, sum, max, min, max8h, max1h
    Column("samples", Integer, nullable=False),  # valid values used
    Column("received", Integer, nullable=False),  # values present, valid or not
    Column("valid", Boolean, nullable=False),  # meets the validity rule of its period
    Column("basis", String(4), nullable=False),  # interval kind it was computed from
    # Quality flags of the hour's raw values OR-ed together (hours; days: 0).
    Column("flags", SmallInteger, nullable=False, server_default="0"),
    Column("computed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("point_id", "parameter_code", "period", "ts"),
    CheckConstraint("period IN ('hour', 'day')", name="period"),
    sqlite_with_rowid=False,
)
Index("ix_rollups_period_ts", rollups.c.period, rollups.c.ts)

station_aqi = Table(
    "station_aqi",
    metadata,
    Column("point_id", Integer, ForeignKey("monitoring_points.id"), nullable=False),
    Column("period", String(4), nullable=False),  # hour or day
    Column("ts", UTCDateTime, nullable=False),
    Column("aqi", Integer),  # NULL when no pollutant had a valid value
    Column("level", SmallInteger, nullable=False),  # 1-6, 0 when the AQI is missing
    Column("primary_pollutants", String(64), nullable=False),  # comma-separated, may be empty
    Column("iaqi", Text, nullable=False),  # JSON object pollutant → IAQI
    Column("computed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("point_id", "period", "ts"),
    CheckConstraint("period IN ('hour', 'day')", name="period"),
    sqlite_with_rowid=False,
)
Index("ix_station_aqi_period_ts", station_aqi.c.period, station_aqi.c.ts)

# The newest non-missing hourly AQI of each station (the map's feed), kept by
# recompute_aqi so that reading it is one row per station.
station_aqi_latest = Table(
    "station_aqi_latest",
    metadata,
    Column("point_id", Integer, ForeignKey("monitoring_points.id"), primary_key=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("aqi", Integer, nullable=False),
    Column("level", SmallInteger, nullable=False),
    Column("primary_pollutants", String(64), nullable=False),
    Column("computed_at", UTCDateTime, nullable=False),
)

# Hours whose rollups are due (``ecohub.timeseries.queue.queue_hours``): written in the
# transaction that stored their raw values, so a crash before the recomputation loses
# nothing. ``token`` names the batch that queued the hour last; a recomputation removes
# only the entries it read, so an hour queued again meanwhile stays queued. No index on
# the token: an unindexed token lets PostgreSQL re-queue an hour with a cheap in-page
# (HOT) update.
rollup_queue = Table(
    "rollup_queue",
    metadata,
    Column("point_id", Integer, nullable=False),
    Column("parameter_code", String(16), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("token", BigInteger, nullable=False),
    PrimaryKeyConstraint("point_id", "parameter_code", "hour"),
    sqlite_with_rowid=False,
)
# Chunks take the oldest hours first: without this index each chunk sorted the whole
# queue (on PostgreSQL 8.5 ms a chunk with 20,000 hours queued, measured).
Index("ix_rollup_queue_hour", rollup_queue.c.hour, rollup_queue.c.point_id)
