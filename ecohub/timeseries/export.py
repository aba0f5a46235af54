"""Export a time range of observations to CSV or Parquet, streaming in chunks."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select

from ecohub.registry.models import MonitoringPoint
from ecohub.textio import csv_cell
from ecohub.timeseries.tables import observations

EXPORT_COLUMNS = [
    "point_code",
    "parameter_code",
    "interval",
    "ts",
    "value",
    "data_flag",
    "quality_flag",
    "source",
]
CHUNK = 50_000


def _query(
    start: dt.datetime, end: dt.datetime, interval: str | None, point_code: str | None
) -> Any:
    query = (
        select(
            MonitoringPoint.code,
            observations.c.parameter_code,
            observations.c.interval,
            observations.c.ts,
            observations.c.value,
            observations.c.data_flag,
            observations.c.quality_flag,
            observations.c.source,
        )
        .join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
        .where(observations.c.ts >= start, observations.c.ts < end)
        .order_by(observations.c.ts, MonitoringPoint.code, observations.c.parameter_code)
    )
    if interval:
        query = query.where(observations.c.interval == interval)
    if point_code:
        query = query.where(MonitoringPoint.code == point_code)
    return query


def count_range(
    engine: Engine,
    start: dt.datetime,
    end: dt.datetime,
    interval: str | None = None,
    point_code: str | None = None,
) -> int:
    """How many rows an export of this range will write."""
    query = select(func.count()).select_from(_query(start, end, interval, point_code).subquery())
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def iter_chunks(
    engine: Engine,
    start: dt.datetime,
    end: dt.datetime,
    interval: str | None = None,
    point_code: str | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of the range in chunks, streamed from a server-side cursor."""
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK).execute(
            _query(start, end, interval, point_code)
        )
        for partition in result.partitions():
            yield [tuple(row) for row in partition]


def export_range(
    engine: Engine,
    path: Path,
    fmt: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    interval: str | None = None,
    point_code: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write observations with ``start <= ts < end`` to ``path``; returns the row count.

    Timestamps are written in UTC ISO 8601.
    """
    if fmt not in {"csv", "parquet"}:
        raise ValueError(f"unknown export format {fmt!r}; use csv or parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    chunks = iter_chunks(engine, start, end, interval, point_code)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_COLUMNS)
            for chunk in chunks:
                writer.writerows(
                    (csv_cell(code), csv_cell(param), kind, ts.isoformat(), *rest)
                    for code, param, kind, ts, *rest in chunk
                )
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        return total
    frames = []
    for chunk in chunks:
        frames.append(pl.DataFrame(chunk, schema=_PARQUET_SCHEMA, orient="row"))
        total += len(chunk)
        if progress:
            progress(len(chunk))
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=_PARQUET_SCHEMA)
    frame.write_parquet(path)
    return total


_PARQUET_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "point_code": pl.Utf8,
    "parameter_code": pl.Utf8,
    "interval": pl.Utf8,
    "ts": pl.Datetime("us", "UTC"),
    "value": pl.Float64,
    "data_flag": pl.Utf8,
    "quality_flag": pl.Int16,
    "source": pl.Utf8,
}
