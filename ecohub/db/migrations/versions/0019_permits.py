"""The permits area: applications for a discharge permit with their steps and documents,
each version's self-monitoring plan, execution reports and the records exchanged with the
tax authority (``ecohub/permits/tables.py``); and versions of a permit in the registry
(``permits.version``, ``status``, ``management_class``; the number is unique with its
version, no longer alone).

SQLite cannot drop a UNIQUE constraint in place: the table is copied (Alembic's batch
mode), and since dropping the old copy with foreign keys on would delete the limits
hanging on it (ON DELETE CASCADE), the limits are set aside in a temporary table first
and put back after.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = "status IN ('in_force', 'revoked')"


def _permit_versions() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE saved_permit_limits AS SELECT * FROM permit_limits")
        op.execute("DELETE FROM permit_limits")
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("status", sa.String(length=12), server_default="in_force", nullable=False)
        )
        batch_op.add_column(sa.Column("management_class", sa.String(length=12), nullable=True))
        batch_op.drop_constraint("uq_permits_permit_no", type_="unique")
        batch_op.create_unique_constraint("uq_permits_number_version", ["permit_no", "version"])
        batch_op.create_check_constraint("ck_permits_version", "version >= 1")
        batch_op.create_check_constraint("ck_permits_status", _STATUS)
    if sqlite:
        op.execute("INSERT INTO permit_limits SELECT * FROM saved_permit_limits")
        op.execute("DROP TABLE saved_permit_limits")


def upgrade() -> None:
    _permit_versions()
    op.create_table(
        "exchange_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("record_key", sa.String(length=300), nullable=False),
        sa.Column("direction", sa.String(length=6), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("format_version", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('in', 'out')", name=op.f("ck_exchange_records_direction")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_records")),
        sa.UniqueConstraint("kind", "record_key", name="uq_exchange_records_key"),
    )
    with op.batch_alter_table("exchange_records", schema=None) as batch_op:
        batch_op.create_index("ix_exchange_records_kind", ["kind"], unique=False)

    op.create_table(
        "execution_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permit_no", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("period_kind", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("generated", sa.JSON(), nullable=False),
        sa.Column("completed", sa.JSON(), nullable=False),
        sa.Column("signature_sha256", sa.String(length=64), nullable=True),
        sa.Column("generated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'accepted', 'returned')",
            name=op.f("ck_execution_reports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_execution_reports_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_reports")),
        sa.UniqueConstraint(
            "permit_no", "period_kind", "period_start", name="uq_execution_reports_key"
        ),
    )
    with op.batch_alter_table("execution_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_execution_reports_enterprise_id"), ["enterprise_id"], unique=False
        )

    op.create_table(
        "permit_applications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("permit_no", sa.String(length=64), nullable=True),
        sa.Column("management_class", sa.String(length=12), nullable=False),
        sa.Column("site_check", sa.String(length=5), server_default="no", nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_on", sa.Date(), nullable=True),
        sa.Column("decision_due", sa.Date(), nullable=True),
        sa.Column("decided_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("permit_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('new', 'change', 'renewal')", name=op.f("ck_permit_applications_kind")
        ),
        sa.CheckConstraint(
            "site_check IN ('yes', 'no')", name=op.f("ck_permit_applications_site_check")
        ),
        sa.CheckConstraint(
            "status IN ('submitted', 'accepted', 'not_accepted', 'issued', 'refused', 'withdrawn')",
            name=op.f("ck_permit_applications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_permit_applications_enterprise_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["permit_id"], ["permits.id"], name=op.f("fk_permit_applications_permit_id_permits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permit_applications")),
        sa.UniqueConstraint("reference", name=op.f("uq_permit_applications_reference")),
    )
    with op.batch_alter_table("permit_applications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_permit_applications_enterprise_id"), ["enterprise_id"], unique=False
        )

    op.create_table(
        "permit_monitoring",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=16), nullable=False),
        sa.Column("frequency", sa.String(length=12), nullable=False),
        sa.CheckConstraint(
            "frequency IN ('自动监测', '1次/日', '1次/周', '1次/月', '1次/季度', '1次/半年', '1次/年')",
            name=op.f("ck_permit_monitoring_frequency"),
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_permit_monitoring_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["permit_id"],
            ["permits.id"],
            name=op.f("fk_permit_monitoring_permit_id_permits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permit_monitoring")),
        sa.UniqueConstraint(
            "permit_id", "outlet_id", "parameter_code", name="uq_permit_monitoring_key"
        ),
    )
    op.create_table(
        "permit_application_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=12), nullable=False),
        sa.Column("at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["permit_applications.id"],
            name=op.f("fk_permit_application_steps_application_id_permit_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permit_application_steps")),
    )
    with op.batch_alter_table("permit_application_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_permit_application_steps_application_id"),
            ["application_id"],
            unique=False,
        )

    op.create_table(
        "permit_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=12), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=100), nullable=False),
        sa.Column("uploaded_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["permit_applications.id"],
            name=op.f("fk_permit_documents_application_id_permit_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permit_documents")),
    )
    with op.batch_alter_table("permit_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_permit_documents_application_id"), ["application_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("permit_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permit_documents_application_id"))

    op.drop_table("permit_documents")
    with op.batch_alter_table("permit_application_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permit_application_steps_application_id"))

    op.drop_table("permit_application_steps")
    op.drop_table("permit_monitoring")
    with op.batch_alter_table("permit_applications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permit_applications_enterprise_id"))

    op.drop_table("permit_applications")
    with op.batch_alter_table("execution_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_execution_reports_enterprise_id"))

    op.drop_table("execution_reports")
    with op.batch_alter_table("exchange_records", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_records_kind")

    op.drop_table("exchange_records")
    _single_versions()


def _single_versions() -> None:
    """Back to one row per number: the versions after the first are deleted."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DELETE FROM permits WHERE version > 1")
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE saved_permit_limits AS SELECT * FROM permit_limits")
        op.execute("DELETE FROM permit_limits")
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_constraint("ck_permits_status", type_="check")
        batch_op.drop_constraint("ck_permits_version", type_="check")
        batch_op.drop_constraint("uq_permits_number_version", type_="unique")
        batch_op.create_unique_constraint("uq_permits_permit_no", ["permit_no"])
        batch_op.drop_column("management_class")
        batch_op.drop_column("status")
        batch_op.drop_column("version")
    if sqlite:
        op.execute("INSERT INTO permit_limits SELECT * FROM saved_permit_limits")
        op.execute("DROP TABLE saved_permit_limits")
