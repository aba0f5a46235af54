"""The lake at national scale (issue 30): generate an archive of ``--stations`` air
stations × ``--years`` years of hourly values of the six pollutants straight into the
lake's Parquet layout (2,000 × 10 is about 1.05 billion hourly values), with the daily
rollups the assessment reads (a day's mean where at least 20 hours are valid; O3 the
daily maximum 8-hour and 1-hour means), then time the annual assessment of one year on
DuckDB and on Spark local and print rows, seconds, medians and their ratio.

Generated month by month and parameter by parameter with NumPy and Polars (memory
bounded by one month of one parameter); free disk is checked first and a run that would
not fit is refused. ``--real-days N`` also imports the first N days of the real 2019
archive (../shared/data/cnemc/year-2019) into a temporary SQLite store, exports it and
checks that the DuckDB and the Spark assessments (Spark unless ``--no-spark``) equal
the in-database one, printing both.

    python -m benchmarks.lake_scale --stations 2000 --years 10
    python -m benchmarks.lake_scale --stations 200 --years 2 --repeat 3 --real-days 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from ecohub.assessment.service import AnnualReport
from ecohub.lake.export import POINTS_SCHEMA, TABLES, month_bounds
from ecohub.lake.manifest import Manifest, file_entry, save

ZONE = "Asia/Shanghai"
HOURLY = {
    "a21026": 12.0,
    "a21004": 35.0,
    "a34002": 80.0,
    "a34004": 45.0,
    "a21005": 0.9,
    "a05024": 60.0,
}
BYTES_A_VALUE = 5.0  # Parquet (zstd) bytes a generated hourly value, measured, with margin
STATIONS_A_CITY = 6
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc"


def _points(stations: int) -> pl.DataFrame:
    rows = []
    for n in range(stations):
        city = f"{100 + n // STATIONS_A_CITY:04d}00"
        code = f"{n + 1:04d}A"
        rows.append(
            (n + 1, code, code, code, f"站{code}", "air", city, city, f"城市{city}", n % 11 == 0)
        )
    return pl.DataFrame(rows, schema=POINTS_SCHEMA, orient="row")


def _month(rng: np.random.Generator, stations: int, hours: int, mean: float) -> np.ndarray:
    """Hourly values (stations, hours): a seasonal level per station, noise, 3 % gaps."""
    level = rng.gamma(4.0, mean / 4.0, size=(stations, 1))
    values = level * rng.lognormal(0.0, 0.4, size=(stations, hours))
    values[rng.random((stations, hours)) < 0.03] = np.nan
    return np.asarray(np.round(values, 1 if mean < 5 else 0))


def _daily(values: np.ndarray, code: str) -> dict[str, np.ndarray]:
    days = values.reshape(values.shape[0], -1, 24)
    valid = np.count_nonzero(~np.isnan(days), axis=-1) >= 20
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        found = {code: np.where(valid, np.nanmean(days, axis=-1), np.nan)}
        if code == "a05024":
            kernel = np.ones(8) / 8
            moving = np.apply_along_axis(lambda r: np.convolve(r, kernel, "valid"), -1, days)
            found["a05024-8hmax"] = np.where(valid, np.nanmax(moving, axis=-1), np.nan)
            found["a05024-1hmax"] = np.where(valid, np.nanmax(days, axis=-1), np.nan)
    return found


def _write(frame: pl.DataFrame, folder: Path, lake: Path, files: list[dict[str, object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "part-00000.parquet"
    frame.write_parquet(path, compression="zstd")
    files.append(file_entry(lake, path, frame.height))


def generate(lake: Path, stations: int, years: int, first_year: int) -> int:
    """Write the archive; returns the hourly values written."""
    from zoneinfo import ZoneInfo

    rng = np.random.default_rng(30)
    zone = ZoneInfo(ZONE)
    manifest = Manifest(ZONE)
    points = lake / "points" / "points.parquet"
    points.parent.mkdir(parents=True, exist_ok=True)
    _points(stations).write_parquet(points)
    manifest.points = {"digest": "generated", "files": [file_entry(lake, points, stations)]}
    ids = np.repeat(np.arange(1, stations + 1, dtype=np.int32), 1)
    written = 0
    for year in range(first_year, first_year + years):
        for month in range(1, 13):
            start, end = month_bounds(year, month, zone)
            hours = int((end - start).total_seconds() // 3600)
            stamps = pl.datetime_range(start, end, "1h", closed="left", time_zone="UTC", eager=True)
            day_stamps = stamps.gather_every(24)
            obs_files: list[dict[str, object]] = []
            roll_files: list[dict[str, object]] = []
            for code, mean in HOURLY.items():
                values = _month(rng, stations, hours, mean * (1.3 if month in (1, 2, 12) else 1.0))
                frame = (
                    pl.DataFrame(
                        {
                            "point_id": np.repeat(ids, hours),
                            "ts": pl.concat([stamps] * stations),
                            "value": values.ravel(),
                        }
                    )
                    .with_columns(
                        interval=pl.lit("hour"),
                        data_flag=pl.lit("N"),
                        quality_flag=pl.lit(0, pl.Int16),
                        source=pl.lit("bench"),
                        ingested_at=pl.lit(end).dt.replace_time_zone("UTC"),
                    )
                    .select(list(TABLES["observations"].schema))
                )
                folder = lake / "observations" / f"year={year}" / f"month={month:02d}"
                _write(frame, folder / f"parameter={code}", lake, obs_files)
                written += values.size
                for series, daily in _daily(values, code).items():
                    days = daily.shape[1]
                    roll = (
                        pl.DataFrame(
                            {
                                "point_id": np.repeat(ids, days),
                                "ts": pl.concat([day_stamps] * stations),
                                "value": daily.ravel(),
                            }
                        )
                        .with_columns(
                            period=pl.lit("day"),
                            statistic=pl.lit("mean"),
                            samples=pl.lit(24, pl.Int32),
                            received=pl.lit(24, pl.Int32),
                            valid=pl.col("value").is_not_nan(),
                            basis=pl.lit("hour"),
                            flags=pl.lit(0, pl.Int16),
                            computed_at=pl.lit(end).dt.replace_time_zone("UTC"),
                        )
                        .with_columns(value=pl.col("value").fill_nan(None))
                    )
                    folder = lake / "rollups" / f"year={year}" / f"month={month:02d}"
                    _write(
                        roll.select(list(TABLES["rollups"].schema)),
                        folder / f"parameter={series}",
                        lake,
                        roll_files,
                    )
            key = f"{year}-{month:02d}"
            manifest.months("observations")[key] = {
                "files": obs_files,
                "digest": "generated",
                "fingerprint": "",
                "source_rows": 0,
                "rows": 0,
            }
            manifest.months("rollups")[key] = {
                "files": roll_files,
                "digest": "generated",
                "fingerprint": "",
                "source_rows": 0,
                "rows": 0,
            }
        print(f"generated {year}: {written:,} hourly values so far", flush=True)
    save(lake, manifest)
    return written


def _time(label: str, run: object, repeat: int) -> float:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        report = run()  # type: ignore[operator]
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds)
    print(
        f"{label}: {len(report.stations):,} stations, {len(report.cities):,} cities; "
        f"runs {', '.join(f'{s:.2f}' for s in seconds)} s; median {median:.2f} s"
    )
    return median


def _same_report(expected: AnnualReport, found: AnnualReport) -> bool:
    """Whether two annual reports hold the same stations, cities and national figures."""
    return (expected.stations, expected.cities, expected.nation) == (
        found.stations,
        found.cities,
        found.nation,
    )


def real_2019(days: int, tmp: Path, master: str | None = "local[2]") -> None:
    """The first ``days`` days of the real 2019 archive: store → lake → DuckDB = store and
    Spark = store (``master`` None: DuckDB only)."""
    from ecohub.assessment import service
    from ecohub.db.engine import make_engine
    from ecohub.db.migrate import upgrade
    from ecohub.ingest.cnemc_bulk import import_station_files
    from ecohub.lake.analyses import assess_duckdb
    from ecohub.lake.export import export
    from ecohub.registry.importer import import_records
    from ecohub.registry.station_lists import read_station_lists
    from ecohub.registry.stations import build_history, registry_records

    archive = SHARED / "year-2019" / "china_sites_2019_hourly.tar.xz"
    if not archive.exists():
        print("real 2019: no archive in ../shared/data/cnemc/year-2019; skipped")
        return
    folder = tmp / "days"
    with tarfile.open(archive) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.name.endswith(".csv")), key=lambda m: m.name
        )
        tar.extractall(folder, members=members[:days], filter="data")
    engine = make_engine(f"sqlite:///{tmp / 'real.sqlite3'}")
    upgrade(engine)
    history = build_history(read_station_lists(SHARED / "stations"))
    import_records(engine, registry_records(history).as_import_rows(), "bench")
    started = time.perf_counter()
    import_station_files(engine, sorted(folder.rglob("*.csv")))
    print(f"real 2019: {days} days imported in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    report = export(
        engine,
        tmp / "real-lake",
        now=dt.datetime.now(dt.UTC),
        delay=dt.timedelta(days=3),
        timezone=ZONE,
    )
    print(f"real 2019: exported {report.rows:,} rows in {time.perf_counter() - started:.0f} s")
    for table in ("observations", "rollups"):
        files = list((tmp / "real-lake" / table).rglob("*.parquet"))
        size = sum(path.stat().st_size for path in files)
        rows = sum(pq_rows(path) for path in files)
        print(
            f"real 2019: {table} {rows:,} rows in {size / 1e6:.1f} MB, "
            f"{size / max(rows, 1):.1f} B a row"
        )
    expected, found = service.compute(engine, 2019), assess_duckdb(tmp / "real-lake", 2019)
    assert expected is not None and found is not None
    print(
        f"real 2019: DuckDB equals the store: {_same_report(expected, found)} "
        f"({len(found.stations)} stations, {len(found.cities)} cities)"
    )
    if master is None:
        print("real 2019: Spark skipped (--no-spark)")
        return
    from ecohub.lake.spark_jobs import assess_spark, session

    spark = session(master, "ecohub-lake-bench-real")
    try:
        on_spark = assess_spark(spark, tmp / "real-lake", 2019)
    finally:
        spark.stop()
    assert on_spark is not None
    print(
        f"real 2019: Spark {master} equals the store: {_same_report(expected, on_spark)} "
        f"({len(on_spark.stations)} stations, {len(on_spark.cities)} cities)"
    )


def pq_rows(path: Path) -> int:
    """Rows of a Parquet file (its footer)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--first-year", type=int, default=2015)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--lake", type=Path, help="keep the archive here (default: a temporary folder)"
    )
    parser.add_argument("--no-spark", action="store_true")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--real-days", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecohub-lake-") as temporary:
        lake = args.lake or Path(temporary) / "lake"
        values = args.stations * args.years * 8766 * len(HOURLY)
        needed = values * BYTES_A_VALUE * 1.1
        lake.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(lake).free
        if needed > free:
            raise SystemExit(
                f"refused: about {needed / 1e9:.0f} GB needed, {free / 1e9:.0f} GB free at {lake}"
            )
        started = time.perf_counter()
        written = generate(lake, args.stations, args.years, args.first_year)
        seconds = time.perf_counter() - started
        size = sum(p.stat().st_size for p in lake.rglob("*.parquet"))
        print(f"archive: {written:,} hourly values in {seconds:.0f} s, {size / 1e9:.2f} GB on disk")
        year = args.first_year + args.years - 1
        from ecohub.lake.analyses import assess_duckdb

        duck = _time(f"DuckDB, {year}", lambda: assess_duckdb(lake, year), args.repeat)
        if not args.no_spark:
            from ecohub.lake.spark_jobs import assess_spark, session

            spark = session(args.master, "ecohub-lake-bench")
            spark_median = _time(
                f"Spark {args.master}, {year}", lambda: assess_spark(spark, lake, year), args.repeat
            )
            print(f"Spark ÷ DuckDB: {spark_median / duck:.1f}")
            spark.stop()
        if args.real_days:
            real_2019(args.real_days, Path(temporary), None if args.no_spark else args.master)


if __name__ == "__main__":
    main()
