"""Region levels and site attributes for the national networks.

- ``regions.level``: province, city or county. CNEMC ranks cities, and some of its
  "cities" are county-level (库尔勒 652801, 石河子 659001): a city is the region the
  registry marks as one, not only what the code's digits suggest.
- ``sites.control_point``: the station list's 对照点 (control site), left out of a
  city's AQI (HJ 663-2013 4.1; the lists mark it from 2020-04-05).
- ``sites.basin`` and ``sites.water_body`` (river, lake, reservoir): the national
  surface-water sections' basin and kind; GB 3838-2002 grades total phosphorus of lakes
  and reservoirs by its own limits.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Added in place on both backends: SQLite's batch mode would copy ``regions`` and
# ``sites`` into new tables, which their foreign keys (sites, points) forbid once the
# registry holds rows. SQLite takes a column's named CHECK in ALTER TABLE ADD COLUMN.
_LEVEL = "level IN ('province', 'city', 'county')"
_WATER_BODY = "water_body IN ('river', 'lake', 'reservoir')"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE regions ADD COLUMN level VARCHAR(16) "
            f"CONSTRAINT ck_regions_level CHECK ({_LEVEL})"
        )
        op.execute("ALTER TABLE sites ADD COLUMN control_point BOOLEAN NOT NULL DEFAULT 0")
        op.execute("ALTER TABLE sites ADD COLUMN basin VARCHAR(100)")
        op.execute(
            f"ALTER TABLE sites ADD COLUMN water_body VARCHAR(16) "
            f"CONSTRAINT ck_sites_water_body CHECK ({_WATER_BODY})"
        )
        return
    op.add_column("regions", sa.Column("level", sa.String(16), nullable=True))
    op.create_check_constraint("level", "regions", _LEVEL)
    op.add_column(
        "sites", sa.Column("control_point", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column("sites", sa.Column("basin", sa.String(100), nullable=True))
    op.add_column("sites", sa.Column("water_body", sa.String(16), nullable=True))
    op.create_check_constraint("water_body", "sites", _WATER_BODY)


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("water_body")
        batch.drop_column("basin")
        batch.drop_column("control_point")
    with op.batch_alter_table("regions") as batch:
        batch.drop_column("level")
