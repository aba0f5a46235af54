"""The lake (issue 30): real CNEMC days (../shared/data/cnemc/) of the stations of
Beijing, Tianjin and Hebei imported through the bulk path on SQLite and PostgreSQL,
exported to Parquet, and assessed on DuckDB and on Spark (local[2], one session for the
module): the annual assessment of every station and city, the ranking, the good-day
ratios and the trends (of cities and stations, on Spark too) equal the in-database
results exactly (the Spark tests skip when pyspark or Java is missing); a re-export writes
nothing; late data rewrites its month only; a damaged file is caught by the manifest.
The Mann-Kendall test is checked against a worked count and SciPy.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from ecohub.assessment import service
from ecohub.ingest.cnemc_bulk import import_station_files
from ecohub.lake import analyses, manifest
from ecohub.lake.export import ExportReport, export
from ecohub.lake.query import run
from ecohub.registry.importer import import_records
from ecohub.registry.station_lists import read_station_lists
from ecohub.registry.stations import build_history, registry_records
from ecohub.standards.trend import mann_kendall, sen_slope

CNEMC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc"
DAYS = CNEMC / "china_sites"
FIRST = [DAYS / "china_sites_20190101.csv", DAYS / "china_sites_20190401.csv"]
LATE = DAYS / "china_sites_20190102.csv"
OTHER_YEARS = [DAYS / "china_sites_20230120.csv", DAYS / "china_sites_20250119.csv"]
PROVINCES = ("11", "12", "13")  # Beijing, Tianjin, Hebei: 100-odd stations, 13 cities
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ZONE = "Asia/Shanghai"
needs_data = pytest.mark.skipif(
    not all(p.exists() for p in [*FIRST, LATE, *OTHER_YEARS]),
    reason="no CNEMC station files in ../shared/data/cnemc/china_sites",
)


def _java() -> str | None:
    """The ``java`` Spark would start: on the PATH, or JAVA_HOME's."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (the spark extra)")
    if _java() is None:
        pytest.skip("Spark needs Java: no `java` on the PATH and no JAVA_HOME/bin/java")
    from ecohub.lake.spark_jobs import session

    started = session("local[2]", "ecohub-lake-tests")
    yield started
    started.stop()


def _load_registry(engine: Engine) -> None:
    history = build_history(read_station_lists(CNEMC / "stations"))
    rows = registry_records(history).as_import_rows()
    sites = {
        r["code"] for k, _, r in rows if k == "sites" and str(r["region_code"])[:2] in PROVINCES
    }
    kept = [
        (kind, where, record)
        for kind, where, record in rows
        if kind == "regions"
        or (kind == "sites" and record["code"] in sites)
        or (kind == "points" and record["site_code"] in sites)
    ]
    assert not import_records(engine, kept, "test").rejected


def _export(engine: Engine, lake: Path) -> ExportReport:
    return export(engine, lake, now=NOW, delay=dt.timedelta(days=3), timezone=ZONE)


def _same(left: service.AnnualReport | None, right: service.AnnualReport | None) -> None:
    assert left is not None and right is not None
    assert left.stations == right.stations
    assert left.cities == right.cities
    assert left.nation == right.nation


def _shas(lake: Path, table: str, month: str) -> dict[str, str]:
    entry = manifest.load(lake, ZONE).tables[table][month]
    return {f["path"]: f["sha256"] for f in entry["files"]}


@needs_data
def test_the_lake_on_real_days(engine: Engine, tmp_path: Path, spark: object) -> None:
    _load_registry(engine)
    import_station_files(engine, FIRST)
    lake = tmp_path / "lake"
    first = _export(engine, lake)
    assert sorted(first.written) == [
        f"{table} 2019-{month}"
        for table in ("observations", "rollups", "station_aqi")
        for month in ("01", "04")
    ]
    assert manifest.check(lake).ok
    # The lake's copy is the store's: rows per table and the partitions.
    daily = run(lake, "SELECT count(*) AS n FROM rollups WHERE period = 'day' AND year = 2019")
    assert (
        daily["n"][0]
        == first.rows
        - run(lake, "SELECT count(*) AS n FROM observations")["n"][0]
        - run(lake, "SELECT count(*) AS n FROM station_aqi")["n"][0]
        - run(lake, "SELECT count(*) AS n FROM rollups WHERE period = 'hour'")["n"][0]
    )
    months = run(lake, "SELECT DISTINCT month FROM station_aqi ORDER BY month")["month"]
    assert months.to_list() == [1, 4]

    # The assessment, ranking and good-day ratios: equal on DuckDB, Spark and the store.
    in_database = service.compute(engine, 2019)
    on_duckdb = analyses.assess_duckdb(lake, 2019)
    _same(in_database, on_duckdb)
    from ecohub.lake.spark_jobs import assess_spark

    _same(in_database, assess_spark(spark, lake, 2019))  # type: ignore[arg-type]
    assert in_database is not None and len(in_database.cities) == 13
    beijing = next(c for c in in_database.cities if c["code"] == "110000")
    assert beijing["aqi_days"] == 2 and beijing["pollutants"]["PM2.5"]["valid_days"] == 2
    assert analyses.good_days(on_duckdb)[0]["code"] == in_database.cities[0]["code"]  # type: ignore[arg-type]

    # Exported again unchanged: nothing is written, not even the manifest.
    stamp = (lake / "manifest.json").stat().st_mtime_ns
    again = _export(engine, lake)
    assert (
        again.written == [] and again.unchanged == 12
    )  # 2019-01 to 04, three tables and not again.points_written
    assert (lake / "manifest.json").stat().st_mtime_ns == stamp

    # Late data for January: January is rewritten, April is not.
    april = {t: _shas(lake, t, "2019-04") for t in ("observations", "rollups", "station_aqi")}
    january = _shas(lake, "rollups", "2019-01")
    import_station_files(engine, [LATE])
    late = _export(engine, lake)
    assert sorted(late.written) == [
        "observations 2019-01",
        "rollups 2019-01",
        "station_aqi 2019-01",
    ]
    assert april == {t: _shas(lake, t, "2019-04") for t in april}
    assert _shas(lake, "rollups", "2019-01") != january
    _same(service.compute(engine, 2019), analyses.assess_duckdb(lake, 2019))

    # A damaged file is caught by its size or checksum; an unknown file is listed.
    victim = lake / next(iter(april["rollups"]))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    (lake / "rollups" / "year=2019" / "month=04" / "stray.parquet").write_bytes(b"x")
    checked = manifest.check(lake)
    assert not checked.ok
    assert checked.corrupted == [victim.relative_to(lake).as_posix()]
    assert checked.unlisted == ["rollups/year=2019/month=04/stray.parquet"]


@needs_data
def test_trends_over_years_equal_in_database(engine: Engine, tmp_path: Path, spark: object) -> None:
    _load_registry(engine)
    import_station_files(engine, [FIRST[0], *OTHER_YEARS])
    lake = tmp_path / "lake"
    _export(engine, lake)
    years = [2019, 2023, 2025]
    in_database = [r for y in years if (r := service.compute(engine, y)) is not None]
    on_lake = [r for y in years if (r := analyses.assess_duckdb(lake, y)) is not None]
    assert len(in_database) == 3
    from ecohub.lake.spark_jobs import trends_spark

    for pollutant in ("PM2.5", "O3"):
        expected = analyses.trends(in_database, pollutant)
        assert expected == analyses.trends(on_lake, pollutant)
        assert expected == trends_spark(spark, lake, years, pollutant)  # type: ignore[arg-type]
    on_spark = trends_spark(spark, lake, years, "PM2.5", "station")  # type: ignore[arg-type]
    assert on_spark == analyses.trends(in_database, "PM2.5", "station")
    beijing = next(t for t in analyses.trends(on_lake, "PM2.5") if t["code"] == "110000")
    assert beijing["years"] == years and beijing["valid_years"] == 0
    assert beijing["s"] == mann_kendall(years, beijing["values"]).s


def test_mann_kendall_by_hand() -> None:
    # x = 1, 3, 2, 5, 5: pairs (k<j) signs: +1 +1 +1 +1 | -1 +1 +1 | +1 +1 | 0 → S = 7;
    # one tie of two: VAR(S) = (5·4·15 − 2·1·9)/18 = 282/18; Z = 6/√(282/18).
    result = mann_kendall([2001, 2002, 2003, 2004, 2005], [1, 3, 2, 5, 5])
    assert result.s == 7 and result.var_s == pytest.approx(282 / 18)
    assert result.z == pytest.approx(6 / math.sqrt(282 / 18))
    assert result.p == pytest.approx(math.erfc(result.z / math.sqrt(2)))  # type: ignore[operator]
    assert result.tau == pytest.approx(0.7) and result.trend == "no trend"  # p ≈ 0.13
    # Slopes: 2, .5, 4/3, 1, -1, 1, 2/3, 3, 1.5, 0 → median 1.
    assert result.slope == pytest.approx(1.0)
    rising = mann_kendall(range(10), [v + 0.1 * (v % 2) for v in range(10)])
    assert rising.trend == "increasing" and rising.p < 0.001  # type: ignore[operator]
    assert mann_kendall([1, 2], [3, 4]).z is None
    assert mann_kendall([1, 2, 3, 4], [1, np.nan, 2, 0]).n == 3


def test_mann_kendall_agrees_with_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(30)
    for _ in range(20):
        n = int(rng.integers(4, 30))
        values = np.round(rng.normal(size=n) + 0.05 * np.arange(n), 1)  # ties included
        result = mann_kendall(np.arange(n), values)
        tau = stats.kendalltau(np.arange(n), values, method="asymptotic")
        # SciPy's Z has no continuity correction: its p is that of S/√VAR(S).
        assert tau.pvalue == pytest.approx(math.erfc(abs(result.s) / math.sqrt(2 * result.var_s)))
        assert sen_slope(np.arange(n), values) == pytest.approx(
            stats.theilslopes(values, np.arange(n)).slope
        )


def test_mann_kendall_agrees_with_pymannkendall() -> None:
    """pymannkendall's ``original_test`` (Hussain & Mahmud 2019, the same Gilbert form
    with the tie correction and the continuity correction) on equally spaced series."""
    mk = pytest.importorskip("pymannkendall")
    rng = np.random.default_rng(27)
    for _ in range(30):
        n = int(rng.integers(4, 40))
        values = np.round(rng.normal(size=n) + rng.choice([-0.1, 0, 0.1]) * np.arange(n), 1)
        ours, theirs = mann_kendall(np.arange(n), values), mk.original_test(values)
        assert (ours.s, ours.var_s) == (theirs.s, pytest.approx(theirs.var_s))
        assert ours.z == pytest.approx(theirs.z) and ours.p == pytest.approx(theirs.p)
        assert ours.tau == pytest.approx(theirs.Tau) and ours.slope == pytest.approx(theirs.slope)
        assert ours.trend == theirs.trend
