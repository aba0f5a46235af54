"""The stored annual air-quality assessments (HJ 663-2013) of stations, cities and the
nation: one JSON report per row (``ecohub/assessment/tables.py``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = ecohub.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "annual_assessments",
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("city", sa.String(length=6), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("computed_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("year", "scope", "code", name=op.f("pk_annual_assessments")),
    )
    op.create_index(
        "ix_annual_assessments_city", "annual_assessments", ["year", "city"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_annual_assessments_city", table_name="annual_assessments")
    op.drop_table("annual_assessments")
