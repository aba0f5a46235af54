"""Load the HJ 212-2017 parameter code table shipped in ``ecohub/registry/data``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ecohub.registry.parameters import load_parameter_rows

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

parameters = sa.table(
    "parameters",
    sa.column("code", sa.String),
    sa.column("legacy_code", sa.String),
    sa.column("medium", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("unit", sa.String),
    sa.column("valid_min", sa.Float),
    sa.column("valid_max", sa.Float),
)


def upgrade() -> None:
    op.bulk_insert(parameters, load_parameter_rows())


def downgrade() -> None:
    op.execute(parameters.delete())
