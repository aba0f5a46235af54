"""The alarm kind ``case_overdue``: a penalty case's step past its legal deadline
(``ecohub/supervision/overdue.py``), raised and closed by the supervision sweep.

Only the alarms table's kind CHECK changes, as in 0014 (SQLite: the stored schema is
widened in place, every stored row staying valid; PostgreSQL drops and adds the
constraint).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
    "'source_exceedance', 'mass_overrun', 'ambient_exceedance', 'aqi', 'data_anomaly', "
    "'offline', 'heavy_pollution', 'password_guessing'"
)
NEW_KINDS = OLD_KINDS + ", 'case_overdue'"


def upgrade() -> None:
    _replace(OLD_KINDS, NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM alarms WHERE kind = 'case_overdue'")
    _replace(NEW_KINDS, OLD_KINDS)


def _replace(old: str, new: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint("ck_alarms_kind", "alarms", type_="check")
        op.create_check_constraint("ck_alarms_kind", "alarms", f"kind IN ({new})")
        return
    sql = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'alarms'"
    ).scalar_one()
    if f"kind IN ({old})" not in sql:
        raise RuntimeError(f"alarms: the kind CHECK is not the expected one: {sql}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'alarms'",
        (sql.replace(f"kind IN ({old})", f"kind IN ({new})"),),
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
