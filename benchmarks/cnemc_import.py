"""The CNEMC bulk import against the store's raw bulk insert, in the same run.

For the daily files of ``../shared/data/cnemc/china_sites/`` (40 days, 8.2 million
values of 1,600-2,000 stations, every station registered first) it prints values/s of:

- ``raw``: the same observation rows (already built, not timed) written by the store's
  fastest plain path, one transaction per day (``--raw-days``): PostgreSQL ``COPY``
  (binary, as ``insert_new_rows`` writes new rows), SQLite ``executemany`` of the upsert
  (``upsert_rows``) on the store's connection; no quality control, no rollups;
- ``import``: ``import_station_files`` (``ecohub import cnemc``) from the files: parse,
  quality flags, observations, hourly and daily rollups, hourly and daily station AQI;
- ``import again``: the same files a second time (every value already stored).

The target (issue 23) is import ≥ 50 % of raw. Each repeat uses fresh stores; medians.
``--pipeline-days N`` also times the pipeline path (``import_file_into_store``, as the
command worked before) on the first N days, for comparison.

    python -m benchmarks.cnemc_import [--days 40] [--repeats 1] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

from sqlalchemy import Engine

from benchmarks._common import scratch_store
from ecohub.db.engine import write_transaction
from ecohub.ingest.cnemc import (
    ImportResult,
    import_file_into_store,
    register_stations,
    site_points,
)
from ecohub.ingest.cnemc_bulk import (
    STORED_CODES,
    header_stations,
    import_station_files,
    parse_station_file,
)
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation, insert_new_rows, upsert_rows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc" / "china_sites"


def observation_rows(path: Path, points: dict[str, int]) -> list[Observation]:
    """One file's values as the raw path writes them (sorted by the store's key)."""
    rows, _conflicts, _unknown = parse_station_file(path.read_bytes(), path.name).series_rows(
        points
    )
    stamps: dict[int, dt.datetime] = {}
    out = []
    for point, code, ts, value in zip(
        rows.point.tolist(), rows.code.tolist(), rows.ts.tolist(), rows.value.tolist(), strict=True
    ):
        stamp = stamps.get(ts)
        if stamp is None:
            stamp = stamps[ts] = dt.datetime.fromtimestamp(ts, dt.UTC)
        out.append(Observation(point, STORED_CODES[code], "hour", stamp, value, "N", 0, "cnemc"))
    return out


def register(engine: Engine, files: list[Path]) -> dict[str, int]:
    register_stations(engine, header_stations(files), "bench")
    return site_points(engine)


def raw_seconds(engine: Engine, files: list[Path], days: int = 1) -> tuple[float, int]:
    """Seconds spent writing (rows built beforehand, ``days`` files to a transaction, in
    key order) and rows written."""
    points = register(engine, files)
    now = dt.datetime.now(dt.UTC)
    seconds, count = 0.0, 0
    for first in range(0, len(files), days):
        rows = [
            row for path in files[first : first + days] for row in observation_rows(path, points)
        ]
        rows.sort(key=lambda row: (row.point_id, row.parameter_code, row.ts))
        start = time.perf_counter()
        with write_transaction(engine) as connection:
            if engine.dialect.name == "postgresql":
                insert_new_rows(connection, rows, [], now)
            else:
                upsert_rows(connection, rows, now)
        seconds += time.perf_counter() - start
        count += len(rows)
    return seconds, count


def import_seconds(engine: Engine, files: list[Path]) -> tuple[float, float, ImportResult]:
    """Seconds of the import, of importing the same files again, and its result."""
    register(engine, files)
    start = time.perf_counter()
    result = import_station_files(engine, files)
    first = time.perf_counter() - start
    start = time.perf_counter()
    import_station_files(engine, files)
    return first, time.perf_counter() - start, result


def pipeline_seconds(engine: Engine, files: list[Path]) -> tuple[float, int]:
    points = register(engine, files)
    result = ImportResult()
    pipeline = Pipeline(engine, alarms=False)
    start = time.perf_counter()
    for path in files:
        import_file_into_store(engine, path, points, result, pipeline)
    return time.perf_counter() - start, result.values_read


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pipeline-days", type=int, default=0)
    parser.add_argument(
        "--raw-days", type=int, default=1, help="files to a raw transaction (default 1)"
    )
    args = parser.parse_args()
    files = sorted(DATA.glob("china_sites_*.csv"))[: args.days]
    print(f"cnemc_import: {len(files)} daily files, median of {args.repeats} run(s)")
    print(f"{'backend':<12}{'path':<16}{'seconds':>10}{'values/s':>14}")
    for backend in args.backends.split(","):
        raw, imported, again = [], [], []
        values = 0
        result = ImportResult()
        for run in range(args.repeats):
            with scratch_store(backend) as engine:
                seconds, values = raw_seconds(engine, files, args.raw_days)
                raw.append(seconds)
            with scratch_store(backend) as engine:
                first, second, result = import_seconds(engine, files)
                imported.append(first)
                again.append(second)
            print(
                f"{backend:<12}run {run + 1}: raw {values / raw[-1]:,.0f}/s, import "
                f"{result.written / first:,.0f}/s ({raw[-1] / first * result.written / values:.0%})"
            )
        rows = [
            ("raw (limit)", statistics.median(raw), values),
            ("import", statistics.median(imported), result.written),
            ("import again", statistics.median(again), result.written),
        ]
        if args.pipeline_days:
            with scratch_store(backend) as engine:
                seconds, count = pipeline_seconds(engine, files[: args.pipeline_days])
            rows.append((f"pipeline ({args.pipeline_days} d)", seconds, count))
        for path, seconds, count in rows:
            print(f"{backend:<12}{path:<16}{seconds:>10.1f}{count / seconds:>14,.0f}")
        ratio = (result.written / statistics.median(imported)) / (values / statistics.median(raw))
        print(f"{backend:<12}{'import / raw':<16}{ratio:>24.0%}")
        print(
            f"{backend:<12}{result.written:,} values, {result.flagged:,} flagged; "
            f"days: {result.days}"
        )


if __name__ == "__main__":
    main()
