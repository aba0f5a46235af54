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

from ecohub.db.migrate import replace_check

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
    replace_check("alarms", "ck_alarms_kind", f"kind IN ({old})", f"kind IN ({new})")
