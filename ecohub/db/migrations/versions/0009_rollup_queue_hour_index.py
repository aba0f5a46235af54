"""An index on the rollup queue's hours, oldest first.

A writer recomputes the queue in chunks of its oldest hours. Without an index each
chunk sorted the whole queue: on PostgreSQL, with about 20,000 hours queued under the
gateway benchmark, taking a chunk cost 8.5 ms (``pg_stat_statements``: 207 chunks,
1.76 s). The token stays unindexed, so re-queueing an hour remains an in-page update.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_rollup_queue_hour", "rollup_queue", ["hour", "point_id"])


def downgrade() -> None:
    op.drop_index("ix_rollup_queue_hour", table_name="rollup_queue")
