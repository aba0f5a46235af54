"""Initial schema: registry, observations, revisions, quarantine, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 18:05:31.425320
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_key", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "observation_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=12), nullable=False),
        sa.Column("interval", sa.String(length=4), nullable=False),
        sa.Column("ts", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("old_value", sa.Float(), nullable=True),
        sa.Column("new_value", sa.Float(), nullable=True),
        sa.Column("old_data_flag", sa.String(length=1), nullable=True),
        sa.Column("new_data_flag", sa.String(length=1), nullable=True),
        sa.Column("old_source", sa.String(length=16), nullable=True),
        sa.Column("new_source", sa.String(length=16), nullable=True),
        sa.Column("revised_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observation_revisions")),
    )
    with op.batch_alter_table("observation_revisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_observation_revisions_key", ["point_id", "parameter_code", "ts"], unique=False
        )

    op.create_table(
        "parameters",
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("legacy_code", sa.String(length=12), nullable=True),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("valid_min", sa.Float(), nullable=True),
        sa.Column("valid_max", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_parameters")),
        sa.UniqueConstraint("legacy_code", name=op.f("uq_parameters_legacy_code")),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("peer", sa.String(length=100), nullable=True),
        sa.Column("point_code", sa.String(length=32), nullable=True),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_reason_code"), ["reason_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_quarantine_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "regions",
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_code", sa.String(length=6), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["regions.code"], name=op.f("fk_regions_parent_code_regions")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_regions")),
    )
    with op.batch_alter_table("regions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_regions_parent_code"), ["parent_code"], unique=False)

    op.create_table(
        "enterprises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uscc", sa.String(length=18), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("industry", sa.String(length=100), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_enterprises_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enterprises")),
        sa.UniqueConstraint("uscc", name=op.f("uq_enterprises_uscc")),
    )
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enterprises_region_code"), ["region_code"], unique=False
        )

    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "kind IN ('air', 'surface_water', 'groundwater', 'noise', 'radiation', 'pollution_source')",
            name=op.f("ck_sites_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'decommissioned')", name=op.f("ck_sites_status")
        ),
        sa.ForeignKeyConstraint(
            ["region_code"], ["regions.code"], name=op.f("fk_sites_region_code_regions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("code", name=op.f("uq_sites_code")),
    )
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sites_region_code"), ["region_code"], unique=False)

    op.create_table(
        "outlets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.CheckConstraint("kind IN ('gas', 'water')", name=op.f("ck_outlets_kind")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprises.id"], name=op.f("fk_outlets_enterprise_id_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outlets")),
        sa.UniqueConstraint("enterprise_id", "code", name="uq_outlets_enterprise_code"),
    )
    with op.batch_alter_table("outlets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outlets_enterprise_id"), ["enterprise_id"], unique=False
        )

    op.create_table(
        "permits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permit_no", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.CheckConstraint("valid_to >= valid_from", name=op.f("ck_permits_validity")),
        sa.ForeignKeyConstraint(
            ["enterprise_id"], ["enterprises.id"], name=op.f("fk_permits_enterprise_id_enterprises")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permits")),
        sa.UniqueConstraint("permit_no", name=op.f("uq_permits_permit_no")),
    )
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_permits_enterprise_id"), ["enterprise_id"], unique=False
        )

    op.create_table(
        "monitoring_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("mn", sa.String(length=32), nullable=True),
        sa.Column("password", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("crc_tolerant", sa.Boolean(), nullable=False),
        sa.Column("last_seen_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(outlet_id IS NULL) <> (site_id IS NULL)",
            name=op.f("ck_monitoring_points_measures_one_outlet_or_site"),
        ),
        sa.CheckConstraint(
            "interval_seconds > 0", name=op.f("ck_monitoring_points_positive_interval")
        ),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_monitoring_points_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_monitoring_points_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_points")),
        sa.UniqueConstraint("code", name=op.f("uq_monitoring_points_code")),
        sa.UniqueConstraint("mn", name=op.f("uq_monitoring_points_mn")),
    )
    with op.batch_alter_table("monitoring_points", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitoring_points_outlet_id"), ["outlet_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitoring_points_site_id"), ["site_id"], unique=False)

    op.create_table(
        "permit_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("permit_id", sa.Integer(), nullable=False),
        sa.Column("outlet_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=12), nullable=False),
        sa.Column("concentration_limit", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("annual_mass_limit_kg", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "annual_mass_limit_kg IS NULL OR annual_mass_limit_kg > 0",
            name=op.f("ck_permit_limits_positive_mass"),
        ),
        sa.CheckConstraint("concentration_limit > 0", name=op.f("ck_permit_limits_positive_limit")),
        sa.ForeignKeyConstraint(
            ["outlet_id"], ["outlets.id"], name=op.f("fk_permit_limits_outlet_id_outlets")
        ),
        sa.ForeignKeyConstraint(
            ["parameter_code"],
            ["parameters.code"],
            name=op.f("fk_permit_limits_parameter_code_parameters"),
        ),
        sa.ForeignKeyConstraint(
            ["permit_id"],
            ["permits.id"],
            name=op.f("fk_permit_limits_permit_id_permits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permit_limits")),
        sa.UniqueConstraint(
            "permit_id", "outlet_id", "parameter_code", name="uq_permit_limits_key"
        ),
    )
    with op.batch_alter_table("permit_limits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_permit_limits_outlet_id"), ["outlet_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_permit_limits_permit_id"), ["permit_id"], unique=False)

    op.create_table(
        "observations",
        sa.Column("point_id", sa.Integer(), nullable=False),
        sa.Column("parameter_code", sa.String(length=12), nullable=False),
        sa.Column("interval", sa.String(length=4), nullable=False),
        sa.Column("ts", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("data_flag", sa.String(length=1), server_default="N", nullable=False),
        sa.Column("quality_flag", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("ingested_at", ecohub.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "data_flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T', 'B')",
            name=op.f("ck_observations_data_flag"),
        ),
        sa.CheckConstraint(
            "interval IN ('rt', 'min', 'hour', 'day')", name=op.f("ck_observations_interval")
        ),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["monitoring_points.id"],
            name=op.f("fk_observations_point_id_monitoring_points"),
        ),
        sa.PrimaryKeyConstraint(
            "point_id", "parameter_code", "interval", "ts", name=op.f("pk_observations")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index("ix_observations_ts", ["ts"], unique=False)

    _create_revision_trigger()


# A corrected observation is audited by the database itself, whatever path wrote it:
# an update that changes the value or the flag copies the old and new row.
_SQLITE_TRIGGER = """
CREATE TRIGGER trg_observations_revision AFTER UPDATE ON observations
WHEN OLD.value IS NOT NEW.value OR OLD.data_flag IS NOT NEW.data_flag
BEGIN
  INSERT INTO observation_revisions (point_id, parameter_code, interval, ts, old_value,
    new_value, old_data_flag, new_data_flag, old_source, new_source, revised_at)
  VALUES (OLD.point_id, OLD.parameter_code, OLD.interval, OLD.ts, OLD.value, NEW.value,
    OLD.data_flag, NEW.data_flag, OLD.source, NEW.source, NEW.ingested_at);
END
"""

_POSTGRES_FUNCTION = """
CREATE FUNCTION observations_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO observation_revisions (point_id, parameter_code, interval, ts, old_value,
    new_value, old_data_flag, new_data_flag, old_source, new_source, revised_at)
  VALUES (OLD.point_id, OLD.parameter_code, OLD.interval, OLD.ts, OLD.value, NEW.value,
    OLD.data_flag, NEW.data_flag, OLD.source, NEW.source, NEW.ingested_at);
  RETURN NEW;
END $$
"""

_POSTGRES_TRIGGER = """
CREATE TRIGGER trg_observations_revision AFTER UPDATE ON observations
FOR EACH ROW
WHEN (OLD.value IS DISTINCT FROM NEW.value OR OLD.data_flag IS DISTINCT FROM NEW.data_flag)
EXECUTE FUNCTION observations_revision()
"""


def _create_revision_trigger() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_FUNCTION)
        op.execute(_POSTGRES_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS trg_observations_revision"
        + (" ON observations" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS observations_revision()")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index("ix_observations_ts")

    op.drop_table("observations")
    with op.batch_alter_table("permit_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permit_limits_permit_id"))
        batch_op.drop_index(batch_op.f("ix_permit_limits_outlet_id"))

    op.drop_table("permit_limits")
    with op.batch_alter_table("monitoring_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitoring_points_site_id"))
        batch_op.drop_index(batch_op.f("ix_monitoring_points_outlet_id"))

    op.drop_table("monitoring_points")
    with op.batch_alter_table("permits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_permits_enterprise_id"))

    op.drop_table("permits")
    with op.batch_alter_table("outlets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outlets_enterprise_id"))

    op.drop_table("outlets")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sites_region_code"))

    op.drop_table("sites")
    with op.batch_alter_table("enterprises", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enterprises_region_code"))

    op.drop_table("enterprises")
    with op.batch_alter_table("regions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_regions_parent_code"))

    op.drop_table("regions")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_received_at"))
        batch_op.drop_index(batch_op.f("ix_quarantine_reason_code"))

    op.drop_table("quarantine")
    op.drop_table("parameters")
    with op.batch_alter_table("observation_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_observation_revisions_key")

    op.drop_table("observation_revisions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
