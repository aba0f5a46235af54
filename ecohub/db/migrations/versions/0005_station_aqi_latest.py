"""The newest hourly AQI of each station (the map's feed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = ecohub.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "station_aqi_latest",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("ts", UTC, nullable=False),
        sa.Column("aqi", sa.Integer(), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("primary_pollutants", sa.String(length=64), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_station_aqi_latest_point_id_monitoring_points"),
        ),
        sa.PrimaryKeyConstraint("point_id", name=op.f("pk_station_aqi_latest")),
    )
    # Stores that already hold AQI: fill the table from it.
    op.execute(
        """
        INSERT INTO station_aqi_latest (point_id, ts, aqi, level, primary_pollutants, computed_at)
        SELECT a.point_id, a.ts, a.aqi, a.level, a.primary_pollutants, a.computed_at
        FROM station_aqi a
        JOIN (
            SELECT point_id, max(ts) AS ts FROM station_aqi
            WHERE period = 'hour' AND aqi IS NOT NULL GROUP BY point_id
        ) newest ON newest.point_id = a.point_id AND newest.ts = a.ts
        WHERE a.period = 'hour'
        """
    )


def downgrade() -> None:
    op.drop_table("station_aqi_latest")
