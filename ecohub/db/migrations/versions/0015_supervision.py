"""Supervision (``ecohub/supervision/tables.py``): the double-random directories of
inspection objects and inspectors with declared conflicts, the draws with their seeds,
inputs and picks, penalty cases with their steps and re-inspections, enterprise
credit ratings, and inspection records from the field with their attachments.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("inputs_digest", sa.String(length=64), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("unstaffed", sa.JSON(), nullable=False),
        sa.Column("drawn_by", sa.String(length=100), nullable=False),
        sa.Column("drawn_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("published_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_draws")),
    )
    op.create_table(
        "inspectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("qualifications", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspectors")),
        sa.UniqueConstraint("code", name=op.f("uq_inspectors_code")),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("violation", sa.Text(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("legal_basis", sa.String(length=500), nullable=True),
        sa.Column("penalty_yuan", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("daily_penalty", sa.Boolean(), nullable=False),
        sa.Column("order_served_on", sa.Date(), nullable=True),
        sa.Column("source_alarm_id", sa.Integer(), nullable=True),
        sa.Column("published_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "step IN ('discovered', 'filed', 'investigated', 'notified', 'decided', 'executed', 'closed')",
            name=op.f("ck_cases_step"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprises.id"], name=op.f("fk_cases_enterprise_id_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_enterprise", ["enterprise_id"], unique=False)

    op.create_table(
        "credit_ratings",
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("grade", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("objection", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("computed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "grade IN ('green', 'blue', 'yellow', 'red')", name=op.f("ck_credit_ratings_grade")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'objected', 'decided', 'published')",
            name=op.f("ck_credit_ratings_status"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_credit_ratings_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("enterprise_id", "year", name=op.f("pk_credit_ratings")),
    )
    op.create_table(
        "draw_picks",
        sa.Column("draw_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("inspector_codes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_draw_picks_draw_id_draws"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_draw_picks_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("draw_id", "enterprise_id", name=op.f("pk_draw_picks")),
    )
    with op.batch_alter_table("draw_picks", schema=None) as batch_op:
        batch_op.create_index("ix_draw_picks_enterprise", ["enterprise_id"], unique=False)

    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("draw_id", sa.Integer(), nullable=True),
        sa.Column("inspector_codes", sa.JSON(), nullable=False),
        sa.Column("inspected_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("accuracy_m", sa.Float(), nullable=True),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.Column("submitted_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["draw_id"], ["draws.id"], name=op.f("fk_inspections_draw_id_draws")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_inspections_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("client_id", name=op.f("uq_inspections_client_id")),
    )
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inspections_enterprise", ["enterprise_id", "inspected_at"], unique=False
        )

    op.create_table(
        "inspector_conflicts",
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("declared_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_inspector_conflicts_enterprise_id_enterprises"),
        ),
        sa.ForeignKeyConstraint(
            ["inspector_id"],
            ["inspectors.id"],
            name=op.f("fk_inspector_conflicts_inspector_id_inspectors"),
        ),
        sa.PrimaryKeyConstraint(
            "inspector_id", "enterprise_id", name=op.f("pk_inspector_conflicts")
        ),
    )
    op.create_table(
        "supervision_objects",
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=8), nullable=False),
        sa.Column("region", sa.String(length=6), nullable=False),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('key', 'general', 'special')",
            name=op.f("ck_supervision_objects_category"),
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_supervision_objects_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_supervision_objects")),
    )
    op.create_table(
        "case_reinspections",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("continuing", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_reinspections_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "on_date", name=op.f("pk_case_reinspections")),
    )
    op.create_table(
        "case_steps",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("recorded_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_steps_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("case_id", "step", name=op.f("pk_case_steps")),
    )
    op.create_table(
        "inspection_attachments",
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("added_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('photo', 'document', 'signature')",
            name=op.f("ck_inspection_attachments_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_inspection_attachments_inspection_id_inspections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("inspection_id", "sha256", name=op.f("pk_inspection_attachments")),
    )


def downgrade() -> None:
    op.drop_table("inspection_attachments")
    op.drop_table("case_steps")
    op.drop_table("case_reinspections")
    op.drop_table("supervision_objects")
    op.drop_table("inspector_conflicts")
    with op.batch_alter_table("inspections", schema=None) as batch_op:
        batch_op.drop_index("ix_inspections_enterprise")

    op.drop_table("inspections")
    with op.batch_alter_table("draw_picks", schema=None) as batch_op:
        batch_op.drop_index("ix_draw_picks_enterprise")

    op.drop_table("draw_picks")
    op.drop_table("credit_ratings")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_enterprise")

    op.drop_table("cases")
    op.drop_table("inspectors")
    op.drop_table("draws")
