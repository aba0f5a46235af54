"""Supervision (issue 27 review): a case's violation kind (按日连续处罚办法 第五条) and the
day its penalty decision was served, approved extensions and suspensions of a case's
periods (``case_time_changes``), and numbered draws with their voiding and the source
of their seed (``ecohub/supervision/tables.py``). The same on SQLite and PostgreSQL.

Existing draws are numbered by their id, in order.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("violation_kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("decision_served_on", sa.Date(), nullable=True))
    with op.batch_alter_table("draws", schema=None) as batch_op:
        batch_op.add_column(sa.Column("number", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("voided_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("void_reason", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("seed_source", sa.JSON(), nullable=True))
    op.execute("UPDATE draws SET number = id")
    with op.batch_alter_table("draws", schema=None) as batch_op:
        batch_op.create_index("ux_draws_number", ["number"], unique=True)
    op.create_table(
        "case_time_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('extension', 'suspension')", name=op.f("ck_case_time_changes_kind")
        ),
        sa.CheckConstraint("days > 0", name=op.f("ck_case_time_changes_days")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_time_changes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_time_changes")),
    )
    with op.batch_alter_table("case_time_changes", schema=None) as batch_op:
        batch_op.create_index("ix_case_time_changes_case", ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case_time_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_case_time_changes_case")
    op.drop_table("case_time_changes")
    with op.batch_alter_table("draws", schema=None) as batch_op:
        batch_op.drop_index("ux_draws_number")
        batch_op.drop_column("seed_source")
        batch_op.drop_column("void_reason")
        batch_op.drop_column("voided_at")
        batch_op.drop_column("number")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("decision_served_on")
        batch_op.drop_column("violation_kind")
