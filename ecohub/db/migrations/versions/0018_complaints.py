"""Public participation (12369): handling agencies and their staff, events, complaints
with their photos and handling steps (``ecohub/complaints/tables.py``), and the alarm
kind ``complaint_overdue`` (the alarms table's kind CHECK widened as in 0016).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types
from ecohub.db.migrate import replace_check

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "complaint_agencies",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("parent_code", sa.String(length=32), nullable=True),
        sa.Column("media", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_code"],
            ["complaint_agencies.code"],
            name=op.f("fk_complaint_agencies_parent_code_complaint_agencies"),
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_complaint_agencies")),
    )
    op.create_table(
        "complaint_handlers",
        sa.Column("account", sa.String(length=100), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=False),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["complaint_agencies.code"],
            name=op.f("fk_complaint_handlers_agency_code_complaint_agencies"),
        ),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_complaint_handlers")),
    )
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("medium", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("first_observed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replied_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_requested_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("extension_days", sa.Integer(), nullable=False),
        sa.Column("complaint_count", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("enterprise_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "medium IN ('air', 'water', 'noise', 'waste', 'radiation', 'ecology', 'other')",
            name=op.f("ck_complaint_events_medium"),
        ),
        sa.CheckConstraint(
            "status IN ('received', 'accepted', 'not_accepted', 'replied', 'reviewing', 'closed')",
            name=op.f("ck_complaint_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_code"],
            ["complaint_agencies.code"],
            name=op.f("fk_complaint_events_agency_code_complaint_agencies"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_complaint_events_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["enterprise_id"],
            ["enterprises.id"],
            name=op.f("fk_complaint_events_enterprise_id_enterprises"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_events")),
    )
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_complaint_events_agency_status", ["agency_code", "status"], unique=False
        )
        batch_op.create_index("ix_complaint_events_enterprise", ["enterprise_id"], unique=False)

    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=20), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("medium", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("observed_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("linked_to", sa.Integer(), nullable=True),
        sa.Column("link_score", sa.Float(), nullable=True),
        sa.Column("link_distance_m", sa.Float(), nullable=True),
        sa.Column("link_hours", sa.Float(), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("contact_cipher", sa.Text(), nullable=True),
        sa.Column("satisfaction", sa.String(length=12), nullable=True),
        sa.Column("rated_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("objection", sa.Text(), nullable=True),
        sa.Column("objected_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "channel IN ('portal', 'hotline', 'wechat', 'api', 'letter')",
            name=op.f("ck_complaints_channel"),
        ),
        sa.CheckConstraint(
            "medium IN ('air', 'water', 'noise', 'waste', 'radiation', 'ecology', 'other')",
            name=op.f("ck_complaints_medium"),
        ),
        sa.CheckConstraint(
            "satisfaction IN ('satisfied', 'basically', 'unsatisfied')",
            name=op.f("ck_complaints_satisfaction"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["complaint_events.id"],
            name=op.f("fk_complaints_event_id_complaint_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaints")),
        sa.UniqueConstraint("channel", "external_ref", name="uq_complaints_channel_external_ref"),
        sa.UniqueConstraint("ticket", name=op.f("uq_complaints_ticket")),
    )
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.create_index("ix_complaints_event", ["event_id"], unique=False)
        batch_op.create_index(
            "ix_complaints_medium_observed", ["medium", "observed_at"], unique=False
        )
        batch_op.create_index(
            "ix_complaints_region_received", ["region_code", "received_at"], unique=False
        )

    op.create_table(
        "complaint_photos",
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("added_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_photos_complaint_id_complaints"),
        ),
        sa.PrimaryKeyConstraint("complaint_id", "sha256", name=op.f("pk_complaint_photos")),
    )
    op.create_table(
        "complaint_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("agency_code", sa.String(length=32), nullable=True),
        sa.Column("to_agency_code", sa.String(length=32), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "step IN ('received', 'accepted', 'not_accepted', 'transferred', 'extended', 'replied', 'rated', 'objected', 'reopened', 'dismissed', 'case', 'closed')",
            name=op.f("ck_complaint_steps_step"),
        ),
        sa.ForeignKeyConstraint(
            ["complaint_id"],
            ["complaints.id"],
            name=op.f("fk_complaint_steps_complaint_id_complaints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["complaint_events.id"],
            name=op.f("fk_complaint_steps_event_id_complaint_events"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_complaint_steps")),
    )
    with op.batch_alter_table("complaint_steps", schema=None) as batch_op:
        batch_op.create_index("ix_complaint_steps_event", ["event_id"], unique=False)

    _kinds(OLD_KINDS, NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM alarms WHERE kind = 'complaint_overdue'")
    _kinds(NEW_KINDS, OLD_KINDS)
    with op.batch_alter_table("complaint_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_steps_event")

    op.drop_table("complaint_steps")
    op.drop_table("complaint_photos")
    with op.batch_alter_table("complaints", schema=None) as batch_op:
        batch_op.drop_index("ix_complaints_region_received")
        batch_op.drop_index("ix_complaints_medium_observed")
        batch_op.drop_index("ix_complaints_event")

    op.drop_table("complaints")
    with op.batch_alter_table("complaint_events", schema=None) as batch_op:
        batch_op.drop_index("ix_complaint_events_enterprise")
        batch_op.drop_index("ix_complaint_events_agency_status")

    op.drop_table("complaint_events")
    op.drop_table("complaint_handlers")
    op.drop_table("complaint_agencies")


OLD_KINDS = (
    "'source_exceedance', 'mass_overrun', 'ambient_exceedance', 'aqi', 'data_anomaly', "
    "'offline', 'heavy_pollution', 'password_guessing', 'case_overdue'"
)
NEW_KINDS = OLD_KINDS + ", 'complaint_overdue'"


def _kinds(old: str, new: str) -> None:
    replace_check("alarms", "ck_alarms_kind", f"kind IN ({old})", f"kind IN ({new})")
