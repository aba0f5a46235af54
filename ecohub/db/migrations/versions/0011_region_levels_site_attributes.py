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


def upgrade() -> None:
    with op.batch_alter_table("regions") as batch:
        batch.add_column(sa.Column("level", sa.String(16), nullable=True))
        batch.create_check_constraint("level", "level IN ('province', 'city', 'county')")
    with op.batch_alter_table("sites") as batch:
        batch.add_column(
            sa.Column("control_point", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("basin", sa.String(100), nullable=True))
        batch.add_column(sa.Column("water_body", sa.String(16), nullable=True))
        batch.create_check_constraint("water_body", "water_body IN ('river', 'lake', 'reservoir')")


def downgrade() -> None:
    with op.batch_alter_table("sites") as batch:
        batch.drop_constraint("ck_sites_water_body", type_="check")
        batch.drop_column("water_body")
        batch.drop_column("basin")
        batch.drop_column("control_point")
    with op.batch_alter_table("regions") as batch:
        batch.drop_constraint("ck_regions_level", type_="check")
        batch.drop_column("level")
