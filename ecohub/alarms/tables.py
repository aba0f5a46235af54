"""Tables of the alarm system: alarms and their history, maintenance windows,
notification subscriptions and the notification outbox.

An alarm is one ongoing condition (``condition_key``: rule, subject, parameter). The
database itself refuses a second unclosed alarm with the same key, so a condition that
persists can never open twice, whichever process evaluates it.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from ecohub.db.base import Base
from ecohub.db.types import UTCDateTime


class AlarmKind(enum.StrEnum):
    """The rules that raise alarms."""

    SOURCE_EXCEEDANCE = "source_exceedance"  # hourly mean above the permit's limit
    MASS_OVERRUN = "mass_overrun"  # daily or annual emitted mass above the permit's
    AMBIENT_EXCEEDANCE = "ambient_exceedance"  # station value above GB 3095 limit
    AQI = "aqi"  # station hourly AQI above the configured category threshold
    DATA_ANOMALY = "data_anomaly"  # quality-control flags lasting N hours
    OFFLINE = "offline"  # a point silent longer than a multiple of its interval
    HEAVY_POLLUTION = "heavy_pollution"  # city yellow/orange/red warning
    PASSWORD_GUESSING = "password_guessing"  # wrong HJ 212 passwords: an MN or sender blocked
    CASE_OVERDUE = "case_overdue"  # a penalty case's step past its legal deadline
    COMPLAINT_OVERDUE = "complaint_overdue"  # a complaint's handling past its deadline


class AlarmStatus(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Channel(enum.StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after the last retry


def _listed(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(member.value) for member in values)})"


metadata = Base.metadata

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("condition_key", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("point_id", Integer, ForeignKey("monitoring_points.id")),
    Column("site_id", Integer, ForeignKey("sites.id")),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id")),
    Column("region_code", String(6)),
    Column("parameter_code", String(16)),
    Column("summary", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    # Data time: the first and last period the condition held, and when it cleared.
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_active_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("duration_seconds", Float),
    # Wall-clock lifecycle.
    Column("opened_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime),
    Column("acknowledged_by", String(100)),
    Column("closed_at", UTCDateTime),
    Column("closed_by", String(100)),
    Column("close_reason", Text),
    CheckConstraint(_listed("kind", AlarmKind), name="kind"),
    CheckConstraint(_listed("status", AlarmStatus), name="status"),
)
Index(
    "uq_alarms_one_unclosed_per_condition",
    alarms.c.condition_key,
    unique=True,
    sqlite_where=text("status <> 'closed'"),
    postgresql_where=text("status <> 'closed'"),
)
Index("ix_alarms_status_kind", alarms.c.status, alarms.c.kind)
Index("ix_alarms_point_id", alarms.c.point_id)
Index("ix_alarms_started_at", alarms.c.started_at)

alarm_events = Table(
    "alarm_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    # opened, updated (new evidence), escalated, acknowledged, annotated, closed
    Column("action", String(16), nullable=False),
    Column("note", Text),
    Column("details", JSON),
)
Index("ix_alarm_events_alarm_id", alarm_events.c.alarm_id)

maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("point_id", Integer, ForeignKey("monitoring_points.id"), nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("ends_at > starts_at", name="window"),
)
Index("ix_maintenance_windows_point", maintenance_windows.c.point_id, maintenance_windows.c.ends_at)

alarm_subscriptions = Table(
    "alarm_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("target", String(500), nullable=False),  # webhook URL or e-mail address
    Column("secret", String(64)),  # HMAC key of webhook signatures
    # Filters; NULL matches everything. kinds and events are comma-separated.
    Column("kinds", String(200)),
    Column("events", String(100), nullable=False, server_default="opened,escalated,closed"),
    Column("region_code", String(6)),
    Column("enterprise_id", Integer, ForeignKey("enterprises.id")),
    Column("site_id", Integer, ForeignKey("sites.id")),
    Column("digest_minutes", Integer),  # NULL: deliver at once; else batch per window
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint(_listed("channel", Channel), name="channel"),
    CheckConstraint("digest_minutes IS NULL OR digest_minutes > 0", name="digest"),
)

notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_id",
        Integer,
        ForeignKey("alarm_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alarm_id", Integer, ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(16), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("status", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("sent_at", UTCDateTime),
    CheckConstraint(_listed("status", DeliveryStatus), name="status"),
)
Index("ix_notifications_due", notifications.c.status, notifications.c.next_attempt_at)
