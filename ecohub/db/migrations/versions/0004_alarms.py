"""Alarms, their history, maintenance windows, subscriptions and the notification outbox;
quality flags of hourly rollups; reference O2 and daily mass of permit limits.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = ecohub.db.types.UTCDateTime(timezone=True)
KINDS = (
    "'source_exceedance', 'mass_overrun', 'ambient_exceedance', 'aqi', 'data_anomaly', "
    "'offline', 'heavy_pollution'"
)


def upgrade() -> None:
    op.add_column(
        "rollups", sa.Column("flags", sa.SmallInteger(), server_default="0", nullable=False)
    )
    with op.batch_alter_table("permit_limits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_mass_limit_kg", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("reference_o2", sa.Float(), nullable=True))
        batch_op.create_check_constraint(
            "positive_daily_mass", "daily_mass_limit_kg IS NULL OR daily_mass_limit_kg > 0"
        )
        batch_op.create_check_constraint(
            "reference_o2", "reference_o2 IS NULL OR (reference_o2 >= 0 AND reference_o2 < 21)"
        )

    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("condition_key", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("parameter_code", sa.String(length=16), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("started_at", UTC, nullable=False),
        sa.Column("last_active_at", UTC, nullable=False),
        sa.Column("ended_at", UTC, nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("opened_at", UTC, nullable=False),
        sa.Column("acknowledged_at", UTC, nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("closed_at", UTC, nullable=True),
        sa.Column("closed_by", sa.String(length=100), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_alarms_kind")),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'closed')", name=op.f("ck_alarms_status")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprises.id"], name=op.f("fk_alarms_enterprise_id_enterprises")
        ),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_alarms_point_id_monitoring_points"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], name=op.f("fk_alarms_site_id_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index("ix_alarms_point_id", "alarms", ["point_id"])
    op.create_index("ix_alarms_started_at", "alarms", ["started_at"])
    op.create_index("ix_alarms_status_kind", "alarms", ["status", "kind"])
    op.create_index(
        "uq_alarms_one_unclosed_per_condition",
        "alarms",
        ["condition_key"],
        unique=True,
        sqlite_where=sa.text("status <> 'closed'"),
        postgresql_where=sa.text("status <> 'closed'"),
    )

    op.create_table(
        "alarm_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_events_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
    )
    op.create_index("ix_alarm_events_alarm_id", "alarm_events", ["alarm_id"])

    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTC, nullable=False),
        sa.Column("ends_at", UTC, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_maintenance_windows_window")),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_maintenance_windows_point_id_monitoring_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maintenance_windows")),
    )
    op.create_index("ix_maintenance_windows_point", "maintenance_windows", ["point_id", "ends_at"])

    op.create_table(
        "alarm_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=True),
        sa.Column("kinds", sa.String(length=200), nullable=True),
        sa.Column(
            "events",
            sa.String(length=100),
            server_default="opened,escalated,closed",
            nullable=False,
        ),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("digest_minutes", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.CheckConstraint(
            "channel IN ('webhook', 'email')", name=op.f("ck_alarm_subscriptions_channel")
        ),
        sa.CheckConstraint(
            "digest_minutes IS NULL OR digest_minutes > 0",
            name=op.f("ck_alarm_subscriptions_digest"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_alarm_subscriptions_enterprise_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_alarm_subscriptions_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_subscriptions")),
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("alarm_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", UTC, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", UTC, nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_notifications_status")
        ),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_notifications_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["alarm_subscriptions.id"],
            name=op.f("fk_notifications_subscription_id_alarm_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_notifications_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("alarm_subscriptions")
    op.drop_index("ix_maintenance_windows_point", table_name="maintenance_windows")
    op.drop_table("maintenance_windows")
    op.drop_index("ix_alarm_events_alarm_id", table_name="alarm_events")
    op.drop_table("alarm_events")
    op.drop_index("uq_alarms_one_unclosed_per_condition", table_name="alarms")
    op.drop_index("ix_alarms_status_kind", table_name="alarms")
    op.drop_index("ix_alarms_started_at", table_name="alarms")
    op.drop_index("ix_alarms_point_id", table_name="alarms")
    op.drop_table("alarms")
    with op.batch_alter_table("permit_limits", schema=None) as batch_op:
        batch_op.drop_constraint("reference_o2", type_="check")
        batch_op.drop_constraint("positive_daily_mass", type_="check")
        batch_op.drop_column("reference_o2")
        batch_op.drop_column("daily_mass_limit_kg")
    op.drop_column("rollups", "flags")
