"""The queue of hours whose rollups a long-running writer recomputes a little later.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = ecohub.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rollup_queue",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=16), nullable=False),
        sa.Column("hour", UTC, nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("point_id", "parameter_code", "hour", name=op.f("pk_rollup_queue")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("rollup_queue")
