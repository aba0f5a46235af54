"""The bulk import of CNEMC files (``ecohub import cnemc``): the same rows as the
ingestion pipeline, files and archives as distributed, bad members, re-imports and late
files.

The comparisons import real days of ``../shared/data/cnemc/china_sites/`` both ways into
one store (the pipeline first, as ``import_file_into_store`` did it for the command, then
the bulk path after emptying the tables) and compare observations, rollups, station AQI
and the latest-AQI table row for row, quality flags included. Means of days may differ
in the last bits of a double on PostgreSQL (its SUM adds in the order it reads rows).
"""

from __future__ import annotations

import io
import math
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine, func, select, text
from typer.testing import CliRunner

from ecohub.db.quarantine import quarantine
from ecohub.ingest.cnemc import (
    ImportResult,
    import_file_into_store,
    observations_frame,
    read_hourly_file,
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
from ecohub.timeseries.aqi import group_aqi
from ecohub.timeseries.bulk_rollups import AqiColumns, RollupColumns, station_aqi
from ecohub.timeseries.tables import observations
from tests.conftest import SHARED_DATA

DAYS = SHARED_DATA / "cnemc" / "china_sites"
pytestmark = pytest.mark.skipif(not DAYS.is_dir(), reason="real CNEMC files not present")

TABLES = {
    "observations": "point_id, parameter_code, interval, ts, value, data_flag, quality_flag, "
    "source",
    "rollups": "point_id, parameter_code, period, ts, value, statistic, samples, received, "
    "valid, basis, flags",
    "station_aqi": "point_id, period, ts, aqi, level, primary_pollutants, iaqi",
    "station_aqi_latest": "point_id, ts, aqi, level, primary_pollutants",
}
DERIVED = ("rollups", "station_aqi", "station_aqi_latest", "rollup_queue", "observations")


def day(date: str) -> Path:
    return DAYS / f"china_sites_{date}.csv"


def dump(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    with engine.connect() as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(
                    text(f"SELECT {columns} FROM {table} ORDER BY {columns}")
                )
            ]
            for table, columns in TABLES.items()
        }


def empty(engine: Engine) -> None:
    with engine.begin() as connection:
        for table in DERIVED:
            connection.execute(text(f"DELETE FROM {table}"))


def assert_same(
    bulk: dict[str, list[tuple[object, ...]]], pipe: dict[str, list[tuple[object, ...]]]
) -> None:
    for table in TABLES:
        assert len(bulk[table]) == len(pipe[table]), table
        for mine, theirs in zip(bulk[table], pipe[table], strict=True):
            if mine != theirs:
                assert all(
                    a == b
                    or (
                        isinstance(a, float)
                        and isinstance(b, float)
                        and math.isclose(a, b, rel_tol=1e-12)
                    )
                    for a, b in zip(mine, theirs, strict=True)
                ), (table, mine, theirs)


def through_pipeline(engine: Engine, runs: Sequence[Sequence[Path]]) -> None:
    """Each run as the command imported files before: one pipeline per run."""
    points = site_points(engine)
    for files in runs:
        pipeline = Pipeline(engine, alarms=False)
        result = ImportResult()
        for path in files:
            import_file_into_store(engine, path, points, result, pipeline)


def both_ways(engine: Engine, runs: Sequence[Sequence[Path]], stations: int | None = None) -> None:
    codes = sorted(header_stations([path for files in runs for path in files]))
    register_stations(engine, codes[:stations] if stations else codes, "test")
    through_pipeline(engine, runs)
    expected = dump(engine)
    empty(engine)
    for files in runs:
        import_station_files(engine, files)
    assert_same(dump(engine), expected)


def test_two_consecutive_days_store_what_the_pipeline_stores(engine: Engine) -> None:
    # 200 of the 1,600 stations keep the pipeline's side of the comparison short; the
    # others are skipped as unknown both ways.
    both_ways(engine, [[day("20190101"), day("20190102")]], stations=200)


def test_days_in_separate_runs_and_a_late_day_between(engine: Engine) -> None:
    # The second run checks its day with the stored values around it (before and after).
    both_ways(engine, [[day("20191208"), day("20191210")], [day("20191209")]], stations=150)


def test_overlapping_file_goes_through_the_pipeline(engine: Engine, tmp_path: Path) -> None:
    changed = tmp_path / "china_sites_20190102.csv"
    lines = day("20190102").read_bytes().split(b"\n")
    # Some published values corrected: the day is stored, but not as these values.
    lines[4] = lines[4].replace(b",1", b",2", 40)
    changed.write_bytes(b"\n".join(lines))
    both_ways(engine, [[day("20190101"), day("20190102")], [changed]], stations=120)


def test_importing_again_changes_nothing(engine: Engine) -> None:
    files = [day("20230120"), day("20230121")]
    register_stations(engine, sorted(header_stations(files))[:300], "test")
    first = import_station_files(engine, files)
    before = dump(engine)
    again = import_station_files(engine, files)
    assert dump(engine) == before
    assert again.written == 0
    assert again.unchanged == first.written
    assert again.days == {"bulk": 0, "already stored": 2, "pipeline": 0}


@pytest.mark.parametrize("date", ["20190101", "20190601", "20191209", "20230120", "20230121"])
def test_files_read_as_the_pipeline_path_reads_them(date: str) -> None:
    # 20190601: 3207A twice; 20191209: an hour missing; 20230120: last row cut short;
    # 20230121: six unnamed trailing columns.
    path = day(date)
    parsed = parse_station_file(path.read_bytes(), path.name)
    assert len(parsed.stations) == len(set(parsed.stations))
    assert all(parsed.stations)
    points = {code: index + 1 for index, code in enumerate(sorted(parsed.stations))}
    rows, conflicts, unknown = parsed.series_rows(points)
    assert not unknown and not conflicts.any()
    frame = observations_frame(read_hourly_file(path))
    expected = frame.select(
        pl.col("station").replace_strict(points, return_dtype=pl.Int64).alias("point"),
        pl.col("parameter_code")
        .replace_strict({code: i for i, code in enumerate(STORED_CODES)}, return_dtype=pl.Int64)
        .alias("code"),
        pl.col("ts").dt.epoch("s").alias("ts"),
        "value",
    ).sort("point", "code", "ts")
    assert np.array_equal(expected["point"].to_numpy(), rows.point)
    assert np.array_equal(expected["code"].to_numpy(), rows.code)
    assert np.array_equal(expected["ts"].to_numpy(), rows.ts)
    assert np.array_equal(expected["value"].to_numpy(), rows.value)


def test_archives_are_read_member_by_member_and_bad_members_quarantined(
    engine: Engine, tmp_path: Path
) -> None:
    archive = tmp_path / "days.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(day("20190101"), arcname="days/china_sites_20190101.csv")
        bad = b"station,value\n1001A,3\n"
        info = tarfile.TarInfo("days/china_sites_20190102.csv")
        info.size = len(bad)
        tar.addfile(info, io.BytesIO(bad))
        readme = b"not data"
        info = tarfile.TarInfo("days/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
    packed = tmp_path / "more.zip"
    with zipfile.ZipFile(packed, "w") as zipped:
        zipped.write(day("20190103"), "china_sites_20190103.csv")
    stations = sorted(header_stations([day("20190101"), day("20190103")]))[:300]
    register_stations(engine, stations, "test")
    seen: list[str] = []
    result = import_station_files(engine, [archive, packed], on_file=lambda n, v: seen.append(n))
    assert seen == [
        "days.tar.xz:days/china_sites_20190101.csv",
        "days.tar.xz:days/china_sites_20190102.csv",
        "more.zip:china_sites_20190103.csv",
    ]
    assert [name for name, _ in result.bad_files] == ["days.tar.xz:days/china_sites_20190102.csv"]
    assert result.files == 2
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(observations)).scalar_one()
        rejected = (
            connection.execute(
                select(quarantine.c.reason).where(quarantine.c.reason_code == "bad_file")
            )
            .scalars()
            .all()
        )
    assert stored == result.written > 0
    assert rejected and "china_sites_20190102.csv" in rejected[0]


def test_station_aqi_of_columns_is_group_aqi_of_one_station() -> None:
    rng = np.random.default_rng(7)
    codes = ("a05024", "a21004", "a21005", "a21026", "a34002", "a34004")
    scale = np.array([80.0, 0.04, 1.0, 0.01, 90.0, 60.0])  # table units (SO2, NO2 mg/m³)
    point, code, ts = (g.reshape(-1) for g in np.meshgrid(
        np.arange(1, 6), np.arange(len(codes)), np.arange(100) * 3600, indexing="ij"
    ))  # fmt: skip
    value = rng.gamma(2.0, 1.0, len(point)) * scale[code]
    valid = rng.random(len(point)) > 0.1
    kept = rng.random(len(point)) > 0.05
    columns = RollupColumns(
        "hour", codes, point[kept], code[kept], ts[kept],
        np.where(valid, value, np.nan)[kept], valid.astype(np.int64)[kept],
        np.ones(int(kept.sum()), dtype=np.int64), valid[kept],
        np.zeros(int(kept.sum()), dtype=np.int64),
    )  # fmt: skip
    found: AqiColumns = station_aqi(columns, lambda p: True)
    groups = []
    for p, t in zip(found.point.tolist(), found.ts.tolist(), strict=True):
        mine = (columns.point == p) & (columns.ts == t) & columns.valid
        groups.append(
            {codes[c]: [v] for c, v in zip(columns.code[mine], columns.value[mine], strict=True)}
        )
    expected = group_aqi(groups, "hour")
    assert np.array_equal(found.aqi, expected.aqi, equal_nan=True)
    assert found.primary_pollutants == [",".join(p) for p in expected.primary_pollutants()]


def test_command_reports_a_bad_file_and_imports_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecohub.cli.main import app

    monkeypatch.setenv("ECOHUB_DATABASE_URL", f"sqlite:///{tmp_path / 'store.sqlite3'}")
    from ecohub.config import get_settings

    get_settings.cache_clear()
    folder = tmp_path / "files"
    folder.mkdir()
    # The day's first 100 stations: the command's work, not the registry's, is tested.
    narrow = [
        b",".join(line.split(b",")[:103]) for line in day("20190101").read_bytes().split(b"\n")
    ]
    (folder / "china_sites_20190101.csv").write_bytes(b"\n".join(narrow))
    (folder / "china_sites_20190102.csv").write_text("no,such,layout\n")
    runner = CliRunner()
    result = runner.invoke(app, ["import", "cnemc", str(folder), "--register-unknown"])
    assert result.exit_code == 1, result.output
    assert "china_sites_20190102.csv" in result.output
    again = runner.invoke(app, ["import", "cnemc", str(folder / "china_sites_20190101.csv")])
    assert again.exit_code == 0, again.output
    assert "already stored" in again.output
