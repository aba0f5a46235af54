"""Monthly partitions of the observation and rollup tables on PostgreSQL (migration 0020):
list them, create the coming months' ahead, detach an old month for the lake and attach
it again. SQLite stores are not partitioned and every function here is a no-op there.

A partition holds one calendar month in Beijing time (``partitions.observations_2024_01``
holds ``[2024-01-01 00:00+08, 2024-02-01 00:00+08)``), so a local day, its hours and its
daily rollup are always in the same partition. Every partitioned table also has a DEFAULT
partition (``partitions.observations_default``): a value of a month without a partition
(a logger's clock years off, an import of old files, a month detached earlier) is kept
there instead of being refused, and :func:`split_default` moves such months into their own
partitions. Partitions and detached months live in the schema ``partitions``.

Locks: a month is created as a plain table and attached (``ATTACH PARTITION`` takes only
a SHARE UPDATE EXCLUSIVE lock on the parent, so writers carry on), never with ``CREATE
TABLE … PARTITION OF`` (ACCESS EXCLUSIVE). Detaching takes the parent's ACCESS EXCLUSIVE
lock for a moment: ``DETACH PARTITION … CONCURRENTLY`` is refused by PostgreSQL on a table
with a DEFAULT partition, and the DEFAULT partition matters more. Each change waits at
most ``LOCK_TIMEOUT`` for its lock and then fails rather than queueing writers behind it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table

from ecohub.clock import BEIJING, utcnow
from ecohub.timeseries.tables import observations, rollups

log = logging.getLogger(__name__)

SCHEMA = "partitions"
PARTITIONED: tuple[str, ...] = ("observations", "rollups")
LOCK_TIMEOUT = "10s"
NOT_PARTITIONED = "this store is not partitioned (SQLite): nothing to do"

_TABLES: dict[str, Table] = {"observations": observations, "rollups": rollups}
_NAME = re.compile(r"^(?P<table>[a-z_]+?)_(?:(?P<year>\d{4})_(?P<month>\d{2})|default)$")


@dataclass(frozen=True)
class Partition:
    """One table of the schema ``partitions``: a month (``month``) or the DEFAULT
    partition (``month`` None) of ``table``, attached or detached."""

    table: str
    name: str  # qualified: partitions.observations_2024_01
    month: dt.date | None
    attached: bool
    bounds: str  # as PostgreSQL states them; empty when detached
    rows: int | None  # exact, or PostgreSQL's estimate (None: never analysed)


# --- months --------------------------------------------------------------------------


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of the Beijing calendar month holding ``moment``."""
    local = moment.astimezone(BEIJING)
    return dt.date(local.year, local.month, 1)


def next_month(month: dt.date) -> dt.date:
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: dt.date) -> dt.date:
    return dt.date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def month_start(month: dt.date) -> dt.datetime:
    """The UTC instant starting the Beijing calendar month ``month``."""
    return dt.datetime(month.year, month.month, 1, tzinfo=BEIJING).astimezone(dt.UTC)


def parse_month(text: str) -> dt.date:
    """``2024-01`` (or ``2024-01-15``) → 2024-01-01."""
    try:
        day = dt.date.fromisoformat(text if len(text) > 7 else f"{text}-01")
    except ValueError as error:
        raise ValueError(f"{text!r} is not a month (YYYY-MM)") from error
    return day.replace(day=1)


def partition_name(table: str, month: dt.date | None) -> str:
    """The qualified name of ``table``'s partition of ``month`` (None: DEFAULT)."""
    suffix = "default" if month is None else f"{month:%Y_%m}"
    return f"{SCHEMA}.{table}_{suffix}"


# --- the catalogue ---------------------------------------------------------------------


def is_partitioned(engine: Engine | Connection) -> bool:
    """Whether the store's observations are partitioned (PostgreSQL after migration 0020)."""
    if engine.dialect.name != "postgresql":
        return False
    query = "SELECT relkind FROM pg_class WHERE oid = to_regclass('public.observations')"
    if isinstance(engine, Connection):
        return bool(engine.exec_driver_sql(query).scalar() == "p")
    with engine.connect() as connection:
        return bool(connection.exec_driver_sql(query).scalar() == "p")


def _state(connection: Connection, name: str) -> bool | None:
    """None when the table ``name`` does not exist, else whether it is attached."""
    found = connection.exec_driver_sql(
        "SELECT relispartition FROM pg_class WHERE oid = to_regclass(%(name)s)", {"name": name}
    ).scalar()
    return None if found is None else bool(found)


def month_attached(engine: Engine, table: str, month: dt.date) -> bool | None:
    """Whether ``table``'s partition of ``month`` is attached (True) or detached (False);
    None when it does not exist (never created, or dropped) or the store is not
    partitioned. The lake export asks this before it touches a month it holds
    (:mod:`ecohub.lake.export`): a detached month is never removed or replaced there,
    and one attached again (:func:`attach`) is exported from the store as usual."""
    if not is_partitioned(engine):
        return None
    with engine.connect() as connection:
        return _state(connection, partition_name(table, month.replace(day=1)))


_LIST = """
SELECT c.relname, c.relispartition, coalesce(pg_get_expr(c.relpartbound, c.oid), ''),
       c.reltuples
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind = 'r'
ORDER BY c.relname
"""


def list_partitions(engine: Engine, *, exact: bool = False) -> list[Partition]:
    """Every table of the schema ``partitions`` (attached or not) with its bounds and row
    count: ``exact`` counts the rows (a scan of each), else PostgreSQL's estimate."""
    if not is_partitioned(engine):
        log.info(NOT_PARTITIONED)
        return []
    found = []
    with engine.connect() as connection:
        for relname, attached, bounds, estimate in connection.exec_driver_sql(
            _LIST, {"schema": SCHEMA}
        ):
            match = _NAME.match(relname)
            if match is None or match["table"] not in _TABLES:
                continue
            month = dt.date(int(match["year"]), int(match["month"]), 1) if match["year"] else None
            name = f"{SCHEMA}.{relname}"
            rows: int | None = None if estimate < 0 else int(estimate)
            if exact:
                rows = int(connection.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())
            found.append(Partition(match["table"], name, month, bool(attached), bounds, rows))
    return found


# --- creating months -----------------------------------------------------------------


def _take_turn(connection: Connection) -> None:
    """Wait at most ``LOCK_TIMEOUT`` for each lock of this transaction, and let one
    process at a time change the partitions (``ecohub serve`` and a command may both
    create the coming month)."""
    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('ecohub.partitions'))")


def _range(month: dt.date) -> str:
    lower, upper = month_start(month), month_start(next_month(month))
    return f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"


def _where(month: dt.date) -> str:
    return (
        f"ts >= '{month_start(month).isoformat()}' "
        f"AND ts < '{month_start(next_month(month)).isoformat()}'"
    )


def _create_month(connection: Connection, table: str, month: dt.date) -> bool:
    """Create and attach ``table``'s partition of ``month``, moving the month's rows out
    of the DEFAULT partition; False when the month's table exists (attached, or detached:
    a detached month is brought back only by :func:`attach`)."""
    name = partition_name(table, month)
    _take_turn(connection)
    if _state(connection, name) is not None:
        return False
    connection.exec_driver_sql(
        f"CREATE TABLE {name} (LIKE public.{table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    moved = connection.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {partition_name(table, None)} WHERE {_where(month)} "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
    ).rowcount
    connection.exec_driver_sql(
        f"ALTER TABLE public.{table} ATTACH PARTITION {name} {_range(month)}"
    )
    log.info("created %s (%d rows moved from the DEFAULT partition)", name, max(moved, 0))
    return True


def _ensure_default(connection: Connection, table: str) -> None:
    name = partition_name(table, None)
    _take_turn(connection)
    if _state(connection, name) is None:
        connection.exec_driver_sql(f"CREATE TABLE {name} PARTITION OF public.{table} DEFAULT")


def ensure_months(
    engine: Engine, months: Iterable[dt.date], tables: Sequence[str] = PARTITIONED
) -> list[str]:
    """Create the partitions of ``months`` that do not exist yet (idempotent), one
    transaction each; returns the names created."""
    if not is_partitioned(engine):
        log.info(NOT_PARTITIONED)
        return []
    wanted, created = sorted(set(months)), []
    for table in tables:
        with engine.begin() as connection:
            _ensure_default(connection, table)
        for month in wanted:
            with engine.begin() as connection:
                if _create_month(connection, table, month):
                    created.append(partition_name(table, month))
    return created


def ensure_ahead(engine: Engine, months: int = 3, *, now: dt.datetime | None = None) -> list[str]:
    """Make sure the current month and the ``months`` after it have their partitions
    (and every table its DEFAULT partition); idempotent, cheap when nothing is missing.
    ``ecohub serve`` and each ``ecohub bus writer`` call it at start and every hour;
    returns the names created."""
    month = month_of(now or utcnow())
    wanted = []
    for _ in range(months + 1):
        wanted.append(month)
        month = next_month(month)
    return ensure_months(engine, wanted)


def split_default(engine: Engine, tables: Sequence[str] = PARTITIONED) -> list[str]:
    """Give every month found in the DEFAULT partitions its own partition, moving its
    rows there; a month whose table is detached stays in DEFAULT until :func:`attach`
    merges it. Returns the names created."""
    if not is_partitioned(engine):
        log.info(NOT_PARTITIONED)
        return []
    created = []
    for table in tables:
        with engine.connect() as connection:
            found = connection.exec_driver_sql(
                "SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'Asia/Shanghai')::date "
                f"FROM {partition_name(table, None)}"
            )
            months = sorted(found.scalars())
        for month in months:
            with engine.begin() as connection:
                if _create_month(connection, table, month):
                    created.append(partition_name(table, month))
                else:
                    log.warning("%s is detached: its late rows stay in DEFAULT", month)
    return created


# --- detaching and attaching -----------------------------------------------------------


def detach(
    engine: Engine,
    month: dt.date,
    *,
    keep_table: bool = True,
    tables: Sequence[str] = PARTITIONED,
    now: dt.datetime | None = None,
) -> list[str]:
    """Detach ``month``'s partitions; returns the standalone tables' names
    (``partitions.observations_2024_01``), which the lake export reads. With
    ``keep_table`` False they are dropped (the month's rows are gone from the store).

    The current and the previous month are refused: values still arrive for them. A
    value of a detached month written later lands in the DEFAULT partition, and
    :func:`attach` merges it back. Detaching an already detached month returns its name.
    The lake is not asked here: :func:`ecohub.lake.detach.detach_exported` (``ecohub lake
    detach``) detaches a month only once the lake holds it."""
    month = month.replace(day=1)
    if month >= previous_month(month_of(now or utcnow())):
        raise ValueError(f"{month:%Y-%m}: the current and the previous month stay attached")
    if not is_partitioned(engine):
        log.info(NOT_PARTITIONED)
        return []
    names = []
    with engine.begin() as connection:
        _take_turn(connection)
        for table in tables:
            name = partition_name(table, month)
            state = _state(connection, name)
            if state is None:
                raise LookupError(f"{name} does not exist")
            if state:
                connection.exec_driver_sql(f"ALTER TABLE public.{table} DETACH PARTITION {name}")
            if not keep_table:
                connection.exec_driver_sql(f"DROP TABLE {name}")
            names.append(name)
    return names


def _merge_late_rows(connection: Connection, table: str, month: dt.date, name: str) -> int:
    """Move the rows of ``month`` that arrived in DEFAULT while it was detached into its
    table, the late row winning over a stored one."""
    key = [column.name for column in _TABLES[table].primary_key.columns]
    others = [column.name for column in _TABLES[table].columns if column.name not in key]
    result = connection.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {partition_name(table, None)} WHERE {_where(month)} "
        f"RETURNING *) INSERT INTO {name} SELECT * FROM moved "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in others)
    )
    return max(result.rowcount, 0)


def attach(engine: Engine, month: dt.date, tables: Sequence[str] = PARTITIONED) -> list[str]:
    """Attach ``month``'s detached tables again (undoing :func:`detach`), first merging
    the month's rows that arrived in the DEFAULT partition meanwhile; an attached month
    is left as it is. Returns the names attached."""
    if not is_partitioned(engine):
        log.info(NOT_PARTITIONED)
        return []
    month = month.replace(day=1)
    names = []
    with engine.begin() as connection:
        _take_turn(connection)
        for table in tables:
            name = partition_name(table, month)
            state = _state(connection, name)
            if state is None:
                raise LookupError(f"{name} does not exist")
            if state:
                continue
            late = _merge_late_rows(connection, table, month, name)
            connection.exec_driver_sql(
                f"ALTER TABLE public.{table} ATTACH PARTITION {name} {_range(month)}"
            )
            log.info("attached %s (%d late rows merged from DEFAULT)", name, late)
            names.append(name)
    return names
