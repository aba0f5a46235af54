"""Old months out of the live store and into the lake: a month's partitions of the
observations and rollups (PostgreSQL, :mod:`ecohub.timeseries.partitions`) are detached
only once the lake holds that month exactly as the store has it (the manifest's
fingerprint — row count and newest write — equals the store's), so that nothing leaves
the store that the lake lacks. Detached tables are kept (``partitions.<table>_YYYY_MM``)
unless ``drop``; ``ecohub partitions attach`` brings a kept month back.

The store's partitions hold Beijing months (Asia/Shanghai), so only a lake partitioned
by Asia/Shanghai months (``ECOHUB_TIMEZONE``) can detach: in another time zone a lake
month and a partition cover different hours, and the check would not cover the rows
detached. The month is marked detached in the manifest, so that later exports keep the
lake's copy (:mod:`ecohub.lake.export`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, column, func, select
from sqlalchemy import table as sql_table

from ecohub.clock import utcnow
from ecohub.lake.export import (
    DETACHABLE,
    PARTITION_ZONE,
    TABLES,
    detached_mark,
    fingerprint,
    month_bounds,
)
from ecohub.lake.manifest import load, save
from ecohub.timeseries import partitions

DETACHED = DETACHABLE


class NotInLake(ValueError):
    """The lake does not hold the month as the store has it (the message says which)."""


def _detached_fingerprint(engine: Engine, table: str, month: dt.date) -> str:
    """The fingerprint (as :func:`~ecohub.lake.export.fingerprint`) of the month's
    detached table: what it held when it left the live tables."""
    stamp = TABLES[table].stamp
    name = partitions.partition_name(table, month).split(".", 1)[1]
    detached = sql_table(name, column(stamp), schema=partitions.SCHEMA)
    with engine.connect() as connection:
        count, newest = connection.execute(select(func.count(), func.max(detached.c[stamp]))).one()
    return f"{count}:{newest.isoformat() if newest is not None else ''}"


def _check_held(
    engine: Engine, lake: Path, month: dt.date, entries: dict[str, dict[str, Any] | None]
) -> None:
    """Raise NotInLake unless the lake holds each table's month as the store has it (a
    month detached already: as its detached table has it); LookupError when the month
    was detached and dropped already."""
    key = f"{month:%Y-%m}"
    start, end = month_bounds(month.year, month.month, ZoneInfo(PARTITION_ZONE))
    for table, entry in entries.items():
        if entry is not None and (entry.get("detached") or {}).get("dropped"):
            raise LookupError(f"{table} {key}: detached and dropped already; the lake holds it")
        if partitions.month_attached(engine, table, month) is False:
            held = _detached_fingerprint(engine, table, month)
        else:
            held = fingerprint(engine, TABLES[table], start, end)
        if entry is None and not held.startswith("0:"):
            raise NotInLake(f"{table} {key}: not in the lake {lake}; run `ecohub lake export`")
        if entry is not None and entry["fingerprint"] != held:
            raise NotInLake(
                f"{table} {key}: the store changed since the lake's copy ({held} against "
                f"{entry['fingerprint']}); run `ecohub lake export` again"
            )


def detach_exported(
    engine: Engine,
    lake: Path,
    month: dt.date,
    *,
    timezone: str,
    drop: bool = False,
    now: dt.datetime | None = None,
) -> list[str]:
    """Detach ``month`` (a Beijing month) from the store once the lake holds it, and mark
    it detached in the manifest; the tables' names. A month detached already is checked
    against its detached tables (and they are dropped with ``drop``). Raises ValueError
    when the lake's months are not Asia/Shanghai's."""
    if ZoneInfo(timezone).key != PARTITION_ZONE:
        raise ValueError(
            f"the lake is partitioned by months of {timezone} (ECOHUB_TIMEZONE), but the "
            f"store's partitions hold months of {PARTITION_ZONE}: a lake month would not "
            "cover the partition's hours, so no month is detached for this lake"
        )
    month = month.replace(day=1)
    manifest = load(lake, timezone)
    partitioned = partitions.is_partitioned(engine)
    for table in DETACHED:  # marks brought up to date (a month attached again: cleared)
        detached_mark(engine, manifest, table, month.year, month.month, partitioned)
    entries = {table: manifest.months(table).get(f"{month:%Y-%m}") for table in DETACHED}
    _check_held(engine, lake, month, entries)
    partitions.ensure_months(engine, [month], DETACHED)  # moved out of DEFAULT if there
    names = partitions.detach(engine, month, keep_table=not drop, tables=DETACHED, now=now)
    if names:
        at = (now or utcnow()).isoformat()
        for entry in entries.values():
            if entry is not None:
                previous = entry.get("detached") or {}
                entry["detached"] = {"at": previous.get("at") or at, "dropped": drop}
        save(lake, manifest)
    return names
