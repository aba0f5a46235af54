"""Old months out of the live store and into the lake: a month's partitions of the
observations and rollups (PostgreSQL, :mod:`ecohub.timeseries.partitions`) are detached
only once the lake holds that month exactly as the store has it (the manifest's
fingerprint — row count and newest write — equals the store's), so that nothing leaves
the store that the lake lacks. Detached tables are kept (``partitions.<table>_YYYY_MM``)
unless ``drop``; ``ecohub partitions attach`` brings a kept month back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from ecohub.lake.export import TABLES, fingerprint, month_bounds
from ecohub.lake.manifest import load
from ecohub.timeseries import partitions

DETACHED = ("observations", "rollups")


class NotInLake(ValueError):
    """The lake does not hold the month as the store has it (the message says which)."""


def detach_exported(
    engine: Engine,
    lake: Path,
    month: dt.date,
    *,
    timezone: str,
    drop: bool = False,
    now: dt.datetime | None = None,
) -> list[str]:
    """Detach ``month`` from the store once the lake holds it; the tables' names."""
    month = month.replace(day=1)
    key = f"{month:%Y-%m}"
    manifest = load(lake, timezone)
    start, end = month_bounds(month.year, month.month, ZoneInfo(timezone))
    for table in DETACHED:
        entry = manifest.months(table).get(key)
        held = fingerprint(engine, TABLES[table], start, end)
        if entry is None and not held.startswith("0:"):
            raise NotInLake(f"{table} {key}: not in the lake {lake}; run `ecohub lake export`")
        if entry is not None and entry["fingerprint"] != held:
            raise NotInLake(
                f"{table} {key}: the store changed since the lake's copy ({held} against "
                f"{entry['fingerprint']}); run `ecohub lake export` again"
            )
    partitions.ensure_months(engine, [month], DETACHED)  # moved out of DEFAULT if there
    return partitions.detach(engine, month, keep_table=not drop, tables=DETACHED, now=now)
