"""Credit repair (信用修复): the requests of enterprises rated yellow or red to have their
published grade repaired after rectification, with the agency's decision
(``credit_repairs``), and the time a rating was first published
(``credit_ratings.published_at``), from which the repair window runs; and the field
inspection a case grew from (``cases.source_inspection_id``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credit_repairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("from_grade", sa.String(length=8), nullable=False),
        sa.Column("to_grade", sa.String(length=8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('requested', 'granted', 'refused')", name=op.f("ck_credit_repairs_status")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_credit_repairs_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_repairs")),
    )
    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.create_index("ix_credit_repairs_rating", ["enterprise_id", "year"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_inspection_id", sa.Integer(), nullable=True))

    with op.batch_alter_table("credit_ratings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("published_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("source_inspection_id")

    with op.batch_alter_table("credit_ratings", schema=None) as batch_op:
        batch_op.drop_column("published_at")

    with op.batch_alter_table("credit_repairs", schema=None) as batch_op:
        batch_op.drop_index("ix_credit_repairs_rating")

    op.drop_table("credit_repairs")
