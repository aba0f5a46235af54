"""SQL over the lake with DuckDB on one machine: a connection with one view per exported
table (``observations``, ``rollups``, ``station_aqi``, with their Hive partition columns
``year``, ``month`` and ``parameter``) and ``points``, read from the Parquet files with
``read_parquet(…, hive_partitioning = true)`` so that filters on the partition columns
skip whole folders.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

# Folder levels below each table (year, month, parameter).
LEVELS = {"observations": 3, "rollups": 3, "station_aqi": 2}
HIVE_TYPES = {
    2: "{'year': INTEGER, 'month': INTEGER}",
    3: "{'year': INTEGER, 'month': INTEGER, 'parameter': VARCHAR}",
}


def _quoted(path: Path) -> str:
    return "'" + path.as_posix().replace("'", "''") + "'"


def table_source(lake: Path, table: str) -> str:
    """The ``read_parquet`` expression of a table of the lake."""
    glob = lake / table / "/".join(["*"] * LEVELS[table]) / "*.parquet"
    types = HIVE_TYPES[LEVELS[table]]
    return f"read_parquet({_quoted(glob)}, hive_partitioning = true, hive_types = {types})"


def connect(lake: Path, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table the lake holds."""
    connection = duckdb.connect(":memory:")
    if threads:
        connection.execute(f"SET threads = {int(threads)}")
    for table in LEVELS:
        if any((lake / table).glob("year=*")):
            connection.execute(f"CREATE VIEW {table} AS SELECT * FROM {table_source(lake, table)}")
    points = lake / "points" / "points.parquet"
    if points.exists():
        connection.execute(f"CREATE VIEW points AS SELECT * FROM read_parquet({_quoted(points)})")
    return connection


def run(lake: Path, sql: str) -> pl.DataFrame:
    """The answer of ``sql`` over the lake (through Arrow: times stay aware, in UTC)."""
    with connect(lake) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        return connection.execute(sql).pl()
