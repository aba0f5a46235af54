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

Detached months (``ecohub lake detach``): once a month of the observations or rollups
has left the store for the lake, the lake's copy is the month's only complete one, so
the export never removes or replaces it. The manifest marks such a month (``detached``
in its entry); the mark is checked against the store's partition at every export: it is
set when the month was detached without the lake (``ecohub partitions detach``), noted
as dropped when the month's table is gone, and cleared when the month was attached
again (``ecohub partitions attach``), after which the month is exported from the store
as usual. While a month is detached, a value of it written later waits in the store's
DEFAULT partition; the export then leaves the lake's copy as it is, exports every other
month and refuses (:class:`DetachedMonthChanged`), naming the month and telling the
operator to attach it first (attaching merges the late rows into the month, and the
next export rewrites the whole month from the store).
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
from ecohub.timeseries import partitions
from ecohub.timeseries.tables import observations, rollup_queue, rollups, station_aqi

CHUNK = 200_000  # rows a part file at most, and rows a fetch from the store
DETACHABLE = partitions.PARTITIONED  # the tables whose months can leave the store
PARTITION_ZONE = "Asia/Shanghai"  # the store's partitions hold Beijing months
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
    detached: list[str] = field(default_factory=list)  # left the store: the lake's kept
    refused: list[str] = field(default_factory=list)  # detached, with late rows (why)
    rows: int = 0
    points_written: bool = False


class DetachedMonthChanged(RuntimeError):
    """Rows arrived in the store for months detached from it after the lake took them;
    the message names each month and what to do. Every other month was exported
    (``report``)."""

    def __init__(self, report: ExportReport) -> None:
        super().__init__("; ".join(report.refused))
        self.report = report


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


def detached_mark(
    engine: Engine, manifest: Manifest, table: str, year: int, month: int, partitioned: bool
) -> tuple[dict[str, Any] | None, bool]:
    """The lake's mark of ``table``'s month as detached from the store (None: it is not,
    or the lake does not hold the month) and whether the mark changed, brought up to
    date with the month's partition when the store is ``partitioned`` by the lake's
    months: set when the partition is detached, noted as dropped when its table is gone,
    cleared when it is attached again (unless it was dropped: a table created since
    holds only rows that came after)."""
    entry = manifest.months(table).get(f"{year:04d}-{month:02d}")
    if entry is None:
        return None, False
    mark: dict[str, Any] | None = entry.get("detached")
    if not partitioned or table not in DETACHABLE:
        return mark, False
    state = partitions.month_attached(engine, table, dt.date(year, month, 1))
    if mark is None:
        if state is not False:
            return None, False
        entry["detached"] = {"at": None, "dropped": False}  # by `ecohub partitions detach`
        return entry["detached"], True
    if state is True and not mark["dropped"]:
        del entry["detached"]
        return None, True
    if state is None and not mark["dropped"]:
        mark["dropped"] = True
        return mark, True
    return mark, False


def late_rows(
    engine: Engine, table: str, year: int, month: int, zone: ZoneInfo, mark: dict[str, Any]
) -> str | None:
    """Why the export refuses a detached month of ``table`` that holds rows in the store
    again (written after it was detached), or None when it holds none."""
    start, end = month_bounds(year, month, zone)
    held = fingerprint(engine, TABLES[table], start, end)
    if held.startswith("0:"):
        return None
    key = f"{year:04d}-{month:02d}"
    where = (
        f"{table} {key}: detached from the store, and {held.split(':', 1)[0]} row(s) of it "
        f"arrived since (kept in {partitions.partition_name(table, None)}); the lake keeps "
        "its copy of the month unchanged"
    )
    if mark["dropped"]:
        return (
            f"{where}. The month's table was dropped, so it cannot be attached again: "
            "remove those rows from the store, or restore the month's table from the lake "
            f"and run `ecohub partitions attach {key}`, then `ecohub lake export` again"
        )
    return (
        f"{where}. Run `ecohub partitions attach {key}` (it merges them into the month), "
        "then `ecohub lake export` again"
    )


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
    ``on_progress(done, total, what)`` follows the months. A month detached from the
    store is kept as the lake has it; one that holds rows in the store again raises
    :class:`DetachedMonthChanged` once every other month is exported."""
    zone = ZoneInfo(timezone)
    lake.mkdir(parents=True, exist_ok=True)
    for leftover in (".staging", ".trash"):  # an interrupted export's
        shutil.rmtree(lake / leftover, ignore_errors=True)
    manifest = load(lake, timezone)
    report = ExportReport()
    report.points_written = export_points(engine, lake, manifest)
    if report.points_written:
        save(lake, manifest)
    partitioned = zone.key == PARTITION_ZONE and partitions.is_partitioned(engine)
    work = [(t, y, m) for t in tables for y, m in stored_months(engine, TABLES[t], zone)]
    for done, (table, year, month) in enumerate(work, start=1):
        what = f"{table} {year:04d}-{month:02d}"
        start, end = month_bounds(year, month, zone)
        mark, changed = detached_mark(engine, manifest, table, year, month, partitioned)
        if changed:
            save(lake, manifest)
        if not is_closed(engine, start, end, now, delay):
            report.open.append(what)
        elif mark is not None:
            refused = late_rows(engine, table, year, month, zone, mark)
            report.detached.append(what)
            if refused is not None:
                report.refused.append(refused)
        else:
            _export_closed(engine, lake, manifest, table, year, month, zone, report)
        if on_progress is not None:
            on_progress(done, len(work), what)
    if report.refused:
        raise DetachedMonthChanged(report)
    return report


def _export_closed(
    engine: Engine,
    lake: Path,
    manifest: Manifest,
    table: str,
    year: int,
    month: int,
    zone: ZoneInfo,
    report: ExportReport,
) -> None:
    """Export a closed month that is not detached, noting the outcome in ``report``."""
    what = f"{table} {year:04d}-{month:02d}"
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
