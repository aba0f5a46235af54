"""Rollups (hourly and daily statistics), station AQI, API keys, minute-data spacing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lookup", sa.String(length=8), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("created_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("revoked_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_api_keys_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("lookup", name=op.f("uq_api_keys_lookup")),
    )
    op.create_table(
        "rollups",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("ts", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("statistic", sa.String(length=8), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=4), nullable=False),
        sa.Column("computed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("period IN ('hour', 'day')", name=op.f("ck_rollups_period")),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_rollups_point_id_monitoring_points"),
        ),
        sa.PrimaryKeyConstraint(
            "point_id", "parameter_code", "period", "ts", name=op.f("pk_rollups")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.create_index("ix_rollups_period_ts", ["period", "ts"], unique=False)

    op.create_table(
        "station_aqi",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=4), nullable=False),
        sa.Column("ts", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("aqi", sa.Integer(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("primary_pollutants", sa.String(length=64), nullable=False),
        sa.Column("iaqi", sa.Text(), nullable=False),
        sa.Column("computed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("period IN ('hour', 'day')", name=op.f("ck_station_aqi_period")),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_station_aqi_point_id_monitoring_points"),
        ),
        sa.PrimaryKeyConstraint("point_id", "period", "ts", name=op.f("pk_station_aqi")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("station_aqi", schema=None) as batch_op:
        batch_op.create_index("ix_station_aqi_period_ts", ["period", "ts"], unique=False)

    # A plain ADD COLUMN (SQLite supports it with a constant default): a batch copy of the
    # table would have to drop a table that observations reference.
    op.add_column(
        "monitoring_points",
        sa.Column("minute_interval_seconds", sa.Integer(), server_default="600", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("monitoring_points", "minute_interval_seconds")

    with op.batch_alter_table("station_aqi", schema=None) as batch_op:
        batch_op.drop_index("ix_station_aqi_period_ts")

    op.drop_table("station_aqi")
    with op.batch_alter_table("rollups", schema=None) as batch_op:
        batch_op.drop_index("ix_rollups_period_ts")

    op.drop_table("rollups")
    op.drop_table("api_keys")
