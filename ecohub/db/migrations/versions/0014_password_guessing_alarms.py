"""The alarm kind ``password_guessing``: the HJ 212 gateway blocks an MN or a sender
address after repeated wrong passwords and raises an alarm for the agency.

Only the alarms table's kind CHECK changes. SQLite cannot alter a CHECK, and copying
the table (Alembic's batch mode) would drop the old one with foreign keys on, which
deletes its alarm history and notifications through their ON DELETE CASCADE. The
constraint is widened in the stored schema instead, as SQLite's documentation describes
for changes that leave every stored row valid ("Making Other Kinds Of Table Schema
Changes", https://www.sqlite.org/lang_altertable.html#otheralter). PostgreSQL drops and
adds the constraint (both in ``ecohub.db.migrate.replace_check``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

from ecohub.db.migrate import replace_check

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = (
    "'source_exceedance', 'mass_overrun', 'ambient_exceedance', 'aqi', 'data_anomaly', "
    "'offline', 'heavy_pollution'"
)
NEW_KINDS = OLD_KINDS + ", 'password_guessing'"


def upgrade() -> None:
    _replace(OLD_KINDS, NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM alarms WHERE kind = 'password_guessing'")
    _replace(NEW_KINDS, OLD_KINDS)


def _replace(old: str, new: str) -> None:
    replace_check("alarms", "ck_alarms_kind", f"kind IN ({old})", f"kind IN ({new})")
