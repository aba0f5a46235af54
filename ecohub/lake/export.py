"""Export closed months of the store's observations, rollups and station AQI to the lake:
Parquet files partitioned the Hive way by local calendar year, month and parameter
(``<lake>/<table>/year=YYYY/month=MM/parameter=<code>/part-NNNNN.parquet``; station AQI
has no parameter and stops at the month), beside a dimension of the monitoring points
(``<lake>/points/points.parquet``) and the manifest (:mod:`ecohub.lake.manifest`).

A month is *closed* when its last hour ended more than ``delay`` ago and no hour of it
waits in the rollup queue (its rollups and AQI are complete); open months are left for
a later export. Months are local (the installation's time zone, recorded in the
manifest), so a day's rollups, stamped at local midnight, lie in their own month.

The export is incremental and idempotent: a month whose source fingerprint (row count
and newest write time) matches the manifest is not read again; a changed month (late
data, corrections, recomputed rollups) is read in chunks along its key from a streaming
cursor (bounded memory on SQLite and PostgreSQL), written to a staging folder, and swapped
in by renaming its folder, unless its content digest is unchanged, when nothing is
written. Polars writes the Parquet (zstd).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import Column, Engine, Table, func, select

from ecohub.lake.manifest import Manifest, file_entry, load, save
from ecohub.registry.models import MonitoringPoint, Region, Site
from ecohub.registry.regions import city_level_codes, city_of
from ecohub.timeseries.tables import observations, rollup_queue, rollups, station_aqi

CHUNK = 200_000  # rows a part file at most, and rows a fetch from the store
UTC_US = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class TableSpec:
    """How one store table goes to the lake."""

    table: Table
    stamp: str  # the column that moves on every write (the fingerprint's)
    periods: tuple[str | None, ...]  # values of ``period`` (None: no such column)
    partition: str | None  # the column partitioned by below the month
    schema: dict[str, Any]  # the file's columns and their Parquet types

    @property
    def key(self) -> list[Column[Any]]:
        return list(self.table.primary_key.columns)


TABLES = {
    "observations": TableSpec(
        observations,
        "ingested_at",
        (None,),
        "parameter_code",
        {
            "point_id": pl.Int32,
            "interval": pl.String,
            "ts": UTC_US,
            "value": pl.Float64,
            "data_flag": pl.String,
            "quality_flag": pl.Int16,
            "source": pl.String,
            "ingested_at": UTC_US,
        },
    ),
    "rollups": TableSpec(
        rollups,
        "computed_at",
        ("hour", "day"),
        "parameter_code",
        {
            "point_id": pl.Int32,
            "period": pl.String,
            "ts": UTC_US,
            "value": pl.Float64,
            "statistic": pl.String,
            "samples": pl.Int32,
            "received": pl.Int32,
            "valid": pl.Boolean,
            "basis": pl.String,
            "flags": pl.Int16,
            "computed_at": UTC_US,
        },
    ),
    "station_aqi": TableSpec(
        station_aqi,
        "computed_at",
        ("hour", "day"),
        None,
        {
            "point_id": pl.Int32,
            "period": pl.String,
            "ts": UTC_US,
            "aqi": pl.Int32,
            "level": pl.Int16,
            "primary_pollutants": pl.String,
            "iaqi": pl.String,
            "computed_at": UTC_US,
        },
    ),
}
POINTS_SCHEMA = {
    "point_id": pl.Int32,
    "point_code": pl.String,
    "point_name": pl.String,
    "site_code": pl.String,
    "site_name": pl.String,
    "site_kind": pl.String,
    "region_code": pl.String,
    "city": pl.String,
    "city_name": pl.String,
    "control_point": pl.Boolean,
}


@dataclass
class ExportReport:
    """What an export did, in months (and the rows it wrote)."""

    written: list[str] = field(default_factory=list)  # "table YYYY-MM"
    unchanged: int = 0
    open: list[str] = field(default_factory=list)  # not closed yet
    removed: list[str] = field(default_factory=list)  # emptied in the store
    rows: int = 0
    points_written: bool = False


def month_bounds(year: int, month: int, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants starting the local month and the next one."""
    following = (year + month // 12, month % 12 + 1)
    return (
        dt.datetime(year, month, 1, tzinfo=zone).astimezone(dt.UTC),
        dt.datetime(*following, 1, tzinfo=zone).astimezone(dt.UTC),
    )


def stored_months(engine: Engine, spec: TableSpec, zone: ZoneInfo) -> list[tuple[int, int]]:
    """Every local month from the table's oldest row to its newest (each period's range
    read through the (period, ts) index)."""
    ts = spec.table.c.ts
    bounds: list[dt.datetime] = []
    with engine.connect() as connection:
        for period in spec.periods:
            query = select(func.min(ts), func.max(ts))
            if period is not None:
                query = query.where(spec.table.c.period == period)
            bounds += [b for b in connection.execute(query).one() if b is not None]
    if not bounds:
        return []
    first, last = min(bounds).astimezone(zone), max(bounds).astimezone(zone)
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = year + month // 12, month % 12 + 1
    return months


def is_closed(
    engine: Engine, start: dt.datetime, end: dt.datetime, now: dt.datetime, delay: dt.timedelta
) -> bool:
    """Whether the month [start, end) is closed: ended ``delay`` before ``now`` and none
    of its hours waits in the rollup queue."""
    if end + delay > now:
        return False
    with engine.connect() as connection:
        queued = connection.execute(
            select(rollup_queue.c.hour)
            .where(rollup_queue.c.hour >= start, rollup_queue.c.hour < end)
            .limit(1)
        ).first()
    return queued is None


def fingerprint(engine: Engine, spec: TableSpec, start: dt.datetime, end: dt.datetime) -> str:
    """The month's row count and newest write time in the store, as one string."""
    ts = spec.table.c.ts
    with engine.connect() as connection:
        count, newest = connection.execute(
            select(func.count(), func.max(spec.table.c[spec.stamp])).where(ts >= start, ts < end)
        ).one()
    return f"{count}:{newest.isoformat() if newest is not None else ''}"


def _stream(
    engine: Engine, spec: TableSpec, start: dt.datetime, end: dt.datetime
) -> Iterator[tuple[str | None, list[Any]]]:
    """The month's rows in key order as (partition value, rows) runs of at most CHUNK
    rows, from a streaming cursor."""
    part = spec.table.c[spec.partition] if spec.partition else None
    columns = [spec.table.c[name] for name in spec.schema]
    order = [part, *spec.key] if part is not None else spec.key
    query = (
        select(*([part] if part is not None else []), *columns)
        .where(spec.table.c.ts >= start, spec.table.c.ts < end)
        .order_by(*order)
    )
    with engine.connect() as connection:
        result = connection.execution_options(stream_results=True, yield_per=CHUNK).execute(query)
        for rows in result.partitions():
            if part is None:
                yield None, list(rows)
                continue
            for value, run in groupby(rows, key=itemgetter(0)):
                yield value, [row[1:] for row in run]


@dataclass
class Staged:
    """A month written to a staging folder."""

    folder: Path
    files: list[tuple[Path, int]]  # path in staging, rows
    rows: int
    digest: str


def write_month(
    engine: Engine, spec: TableSpec, start: dt.datetime, end: dt.datetime, staging: Path
) -> Staged:
    """Write the month's rows to part files under ``staging`` (one folder per partition
    value) and digest their content: the SHA-256 of the rows as CSV in key order, each
    partition's rows after its name."""
    digest = hashlib.sha256()
    files: list[tuple[Path, int]] = []
    counters: dict[str | None, int] = {}
    current: object = object()
    total = 0
    for value, rows in _stream(engine, spec, start, end):
        frame = pl.DataFrame(rows, schema=spec.schema, orient="row")
        if value != current:
            digest.update(f"\n#{value}\n".encode())
            current = value
        digest.update(frame.write_csv(include_header=False).encode())
        folder = staging / f"parameter={value}" if spec.partition else staging
        folder.mkdir(parents=True, exist_ok=True)
        number = counters.get(value, 0)
        counters[value] = number + 1
        path = folder / f"part-{number:05d}.parquet"
        frame.write_parquet(path, compression="zstd", statistics=True)
        files.append((path, frame.height))
        total += frame.height
    return Staged(staging, files, total, digest.hexdigest())


def _swap(lake: Path, staged: Staged, target: Path) -> None:
    """Put the staged month in place of ``target`` by renaming folders (the old one, if
    any, is moved aside first and removed after)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    trash = lake / ".trash" / uuid.uuid4().hex
    if target.exists():
        trash.parent.mkdir(parents=True, exist_ok=True)
        target.rename(trash)
    staged.folder.rename(target)
    shutil.rmtree(trash, ignore_errors=True)


def _month_dir(lake: Path, table: str, year: int, month: int) -> Path:
    return lake / table / f"year={year:04d}" / f"month={month:02d}"


def export_month(
    engine: Engine,
    lake: Path,
    manifest: Manifest,
    table: str,
    year: int,
    month: int,
    zone: ZoneInfo,
) -> int | None:
    """Export one closed month of ``table`` unless the manifest already holds it as the
    store has it; returns the rows written (None: unchanged, nothing written)."""
    spec = TABLES[table]
    start, end = month_bounds(year, month, zone)
    key = f"{year:04d}-{month:02d}"
    months = manifest.months(table)
    entry = months.get(key)
    target = _month_dir(lake, table, year, month)
    print_ = fingerprint(engine, spec, start, end)
    if entry is not None and entry["fingerprint"] == print_ and target.exists():
        return None
    if print_.startswith("0:"):  # emptied in the store (or never held)
        shutil.rmtree(target, ignore_errors=True)
        months.pop(key, None)
        return 0 if entry is not None else None
    staged = write_month(engine, spec, start, end, lake / ".staging" / uuid.uuid4().hex)
    if entry is not None and entry["digest"] == staged.digest and target.exists():
        shutil.rmtree(staged.folder)
        entry["fingerprint"] = print_
        return None
    _swap(lake, staged, target)
    months[key] = {
        "source_rows": int(print_.split(":", 1)[0]),
        "fingerprint": print_,
        "digest": staged.digest,
        "rows": staged.rows,
        "files": [
            file_entry(lake, target / path.relative_to(staged.folder), rows)
            for path, rows in staged.files
        ],
    }
    return staged.rows


def points_frame(engine: Engine) -> pl.DataFrame:
    """Every monitoring point with its site, region, city (as the assessment assigns
    stations to cities, :func:`~ecohub.registry.regions.city_of`) and city name."""
    with engine.connect() as connection:
        cities_known = city_level_codes(connection)
        names: dict[str, str] = {
            code: name for code, name in connection.execute(select(Region.code, Region.name))
        }
        rows = connection.execute(
            select(
                MonitoringPoint.id,
                MonitoringPoint.code,
                MonitoringPoint.name,
                Site.code,
                Site.name,
                Site.kind,
                Site.region_code,
                Site.control_point,
            )
            .outerjoin(Site, Site.id == MonitoringPoint.site_id)
            .order_by(MonitoringPoint.id)
        ).all()
    records = []
    for point_id, code, name, site, site_name, kind, region, control in rows:
        city = city_of(region, cities_known) if site is not None else None
        records.append(
            (
                point_id,
                code,
                name,
                site,
                site_name,
                kind,
                region,
                city,
                names.get(city or ""),
                bool(control) if site is not None else None,
            )
        )
    return pl.DataFrame(records, schema=POINTS_SCHEMA, orient="row")


def export_points(engine: Engine, lake: Path, manifest: Manifest) -> bool:
    """Write the points dimension when it changed; returns whether it was written."""
    frame = points_frame(engine)
    digest = hashlib.sha256(frame.write_csv().encode()).hexdigest()
    target = lake / "points" / "points.parquet"
    if manifest.points and manifest.points["digest"] == digest and target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    frame.write_parquet(temporary, compression="zstd")
    temporary.replace(target)
    manifest.points = {"digest": digest, "files": [file_entry(lake, target, frame.height)]}
    return True


def export(
    engine: Engine,
    lake: Path,
    *,
    now: dt.datetime,
    delay: dt.timedelta,
    timezone: str,
    tables: tuple[str, ...] = tuple(TABLES),
    on_progress: Callable[[int, int, str], None] | None = None,
) -> ExportReport:
    """Export every closed month of ``tables`` that the lake lacks or holds in an older
    state, and the points dimension; the manifest is saved after each month written.
    ``on_progress(done, total, what)`` follows the months."""
    zone = ZoneInfo(timezone)
    lake.mkdir(parents=True, exist_ok=True)
    for leftover in (".staging", ".trash"):  # an interrupted export's
        shutil.rmtree(lake / leftover, ignore_errors=True)
    manifest = load(lake, timezone)
    report = ExportReport()
    report.points_written = export_points(engine, lake, manifest)
    if report.points_written:
        save(lake, manifest)
    work = [(t, y, m) for t in tables for y, m in stored_months(engine, TABLES[t], zone)]
    for done, (table, year, month) in enumerate(work, start=1):
        what = f"{table} {year:04d}-{month:02d}"
        start, end = month_bounds(year, month, zone)
        if not is_closed(engine, start, end, now, delay):
            report.open.append(what)
        else:
            rows = export_month(engine, lake, manifest, table, year, month, zone)
            if rows is None:
                report.unchanged += 1
            elif rows == 0:
                report.removed.append(what)
            else:
                report.written.append(what)
                report.rows += rows
            if rows is not None:
                save(lake, manifest)
        if on_progress is not None:
            on_progress(done, len(work), what)
    return report
