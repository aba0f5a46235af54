"""The environmental management ledger (环境管理台账, HJ 944-2018) of the permits area: a
permit's facilities and the ledger's append-only entries
(``ecohub/permits/ledger_tables.py``). The same on SQLite and PostgreSQL.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "kind IN ('basic', 'production', 'treatment', 'monitoring', 'other')"


def upgrade() -> None:
    op.create_table(
        "ledger_facilities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("permit_no", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("created_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('production', 'treatment')", name=op.f("ck_ledger_facilities_kind")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_ledger_facilities_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_facilities")),
        sa.UniqueConstraint("permit_no", "code", name="uq_ledger_facilities_key"),
    )
    with op.batch_alter_table("ledger_facilities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_facilities_enterprise_id"), ["enterprise_id"], unique=False
        )

    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("permit_no", sa.String(length=64), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("condition", sa.String(length=10), nullable=False),
        sa.Column("recorded_for", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("operator", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("entered_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(_KINDS, name=op.f("ck_ledger_entries_kind")),
        sa.CheckConstraint(
            "condition IN ('normal', 'abnormal')", name=op.f("ck_ledger_entries_condition")
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_entries_corrects_id_ledger_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_ledger_entries_enterprise_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["ledger_facilities.id"],
            name=op.f("fk_ledger_entries_facility_id_ledger_facilities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
        sa.UniqueConstraint("corrects_id", name=op.f("uq_ledger_entries_corrects_id")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_entries_enterprise_id"), ["enterprise_id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_entries_permit_time", ["permit_no", "recorded_for"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_permit_time")
        batch_op.drop_index(batch_op.f("ix_ledger_entries_enterprise_id"))

    op.drop_table("ledger_entries")
    with op.batch_alter_table("ledger_facilities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_facilities_enterprise_id"))

    op.drop_table("ledger_facilities")
