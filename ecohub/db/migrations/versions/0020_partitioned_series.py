"""Observations and rollups range-partitioned by month on PostgreSQL; SQLite unchanged.

On PostgreSQL each table becomes ``PARTITION BY RANGE (ts)`` with one partition per
calendar month in Beijing time (``partitions.observations_2024_01`` holds
``[2024-01-01 00:00+08, 2024-02-01 00:00+08)``) and a DEFAULT partition
(``partitions.observations_default``) that takes a value of any month without its own
partition, so nothing is ever refused. The partitions live in the schema ``partitions``
so that the public schema still holds exactly the tables the models describe
(``tests/test_migrations.py``). Both primary keys already end in ``ts``, the partition
key, so the ``ON CONFLICT`` upserts and the keys keep their meaning.

A store that already holds rows is converted in the migration's one transaction: the
table is renamed aside, the partitioned table created like it (defaults, NOT NULL and
CHECK constraints with their names), a partition made for every month that holds data
(found by walking the ``ts`` index month by month, not by scanning the table) and for
the current month and the three after it, the rows copied with ``INSERT … SELECT``, the
old table dropped, and the primary key, the index and (observations) the revision
trigger created again on the partitioned table. Later months are created ahead by
``ecohub.timeseries.partitions.ensure_ahead``.

SQLite is left as it is: it has no partitions, and the same migration does nothing there.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05
"""

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from alembic import op
from sqlalchemy.engine import Connection

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "partitions"
_ZONE = ZoneInfo("Asia/Shanghai")
_AHEAD = 3

# table → (primary key columns, {index name: columns}, index prefixes for the month walk)
_TABLES: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    "observations": (
        "point_id, parameter_code, interval, ts",
        {"ix_observations_ts": "ts"},
        ("",),
    ),
    "rollups": (
        "point_id, parameter_code, period, ts",
        {"ix_rollups_period_ts": "period, ts"},
        ("period = 'hour' AND ", "period = 'day' AND "),
    ),
}

# As created in 0001: dropping the old table dropped its trigger.
_TRIGGER = """
CREATE TRIGGER trg_observations_revision AFTER UPDATE ON observations
FOR EACH ROW
WHEN (OLD.value IS DISTINCT FROM NEW.value OR OLD.data_flag IS DISTINCT FROM NEW.data_flag)
EXECUTE FUNCTION observations_revision()
"""


def _month(moment: dt.datetime) -> dt.date:
    local = moment.astimezone(_ZONE)
    return dt.date(local.year, local.month, 1)


def _next(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _start(month: dt.date) -> dt.datetime:
    return dt.datetime(month.year, month.month, 1, tzinfo=_ZONE).astimezone(dt.UTC)


def _data_months(bind: Connection, table: str, prefixes: tuple[str, ...]) -> set[dt.date]:
    """Months holding rows of ``table``: one index probe per month (a loose index scan)."""
    months: set[dt.date] = set()
    for prefix in prefixes:
        query = f"SELECT min(ts) FROM {table} WHERE {prefix}ts >= %(after)s"
        after = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
        while (first := bind.exec_driver_sql(query, {"after": after}).scalar()) is not None:
            months.add(_month(first))
            after = _start(_next(_month(first)))
    return months


def _partition(bind: Connection, table: str, now: dt.datetime) -> None:
    key, indexes, prefixes = _TABLES[table]
    old = f"{table}_unpartitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER INDEX pk_{table} RENAME TO pk_{old}")
    for index in indexes:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_unpartitioned")
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        "PARTITION BY RANGE (ts)"
    )
    months = _data_months(bind, old, prefixes)
    month = _month(now)
    for _ in range(_AHEAD + 1):
        months.add(month)
        month = _next(month)
    for month in sorted(months):
        op.execute(
            f"CREATE TABLE {SCHEMA}.{table}_{month:%Y_%m} PARTITION OF {table} "
            f"FOR VALUES FROM ('{_start(month).isoformat()}') "
            f"TO ('{_start(_next(month)).isoformat()}')"
        )
    op.execute(f"CREATE TABLE {SCHEMA}.{table}_default PARTITION OF {table} DEFAULT")
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    # Built after the rows are in: one sort per partition, not one insert per row.
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
    for index, columns in indexes.items():
        op.execute(f"CREATE INDEX {index} ON {table} ({columns})")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    now = dt.datetime.now(dt.UTC)
    for table in _TABLES:
        _partition(bind, table, now)
    op.execute(_TRIGGER)


def downgrade() -> None:
    """One plain table again, holding the rows of the attached partitions (detached
    months stay where they are, in the schema ``partitions``)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, (key, indexes, _prefixes) in _TABLES.items():
        parted = f"{table}_partitioned"
        op.execute(f"ALTER TABLE {table} RENAME TO {parted}")
        op.execute(f"ALTER INDEX pk_{table} RENAME TO pk_{parted}")
        for index in indexes:
            op.execute(f"ALTER INDEX {index} RENAME TO {index}_partitioned")
        op.execute(f"CREATE TABLE {table} (LIKE {parted} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        op.execute(f"INSERT INTO {table} SELECT * FROM {parted}")
        op.execute(f"DROP TABLE {parted}")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({key})")
        for index, columns in indexes.items():
            op.execute(f"CREATE INDEX {index} ON {table} ({columns})")
    op.execute(_TRIGGER)
    left = bind.exec_driver_sql(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %(schema)s", {"schema": SCHEMA}
    ).scalar_one()
    if not left:
        op.execute(f"DROP SCHEMA {SCHEMA}")
