"""Identical rejected input counted, not stored again.

A registry file imported twice, or a sender repeating the same bad packet, used to add a
quarantine row each time. ``fingerprint`` (SHA-256 of source, reason code and raw text)
identifies the input; a rejection matching an unreviewed row adds to its ``times`` and
``last_received_at`` instead.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import ecohub.db.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("times", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(
            sa.Column("last_received_at", ecohub.db.types.UTCDateTime(), nullable=True)
        )
        batch.create_index("ix_quarantine_fingerprint", ["fingerprint"])


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_index("ix_quarantine_fingerprint")
        batch.drop_column("last_received_at")
        batch.drop_column("times")
        batch.drop_column("fingerprint")
