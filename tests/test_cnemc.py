"""CNEMC hourly station files: import into the store and AQI validation.

The real published files are read from ../shared/data/cnemc/ when present; the
mechanics are also tested on a small file written here (its values are made up and
are never used as reference values for the AQI itself).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from ecohub.db.quarantine import quarantine
from ecohub.ingest.cnemc import (
    ImportResult,
    import_file_into_store,
    read_hourly_file,
    site_points,
    station_hours,
    validate_aqi_files,
    validate_aqi_frame,
)
from ecohub.registry.importer import import_file
from ecohub.timeseries.observations import read_range
from ecohub.timeseries.tables import observations
from tests.conftest import SHARED_DATA

CNEMC_DIR = SHARED_DATA / "cnemc"


def write_file(path: Path) -> Path:
    rows = ["date,hour,type,1001A,1002A,9999X"]
    for hour in range(2):
        rows += [
            f"20240115,{hour},AQI,52,40,30",
            f"20240115,{hour},PM2.5,36,26,",
            f"20240115,{hour},PM10,50,40,",
            f"20240115,{hour},SO2,5,3,",
            f"20240115,{hour},NO2,30,20,",
            f"20240115,{hour},O3,60,50,",
            f"20240115,{hour},CO,0.5,0.4,",
            f"20240115,{hour},O3_8h,55,45,",
        ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_writes_hourly_values_and_quarantines_unknown_stations(
    engine: Engine, demo_registry_path: Path, tmp_path: Path
) -> None:
    import_file(engine, demo_registry_path, "test")
    path = write_file(tmp_path / "china_sites_20240115.csv")
    points = site_points(engine)
    result = ImportResult()
    import_file_into_store(engine, path, points, result)
    assert result.files == 1 and result.written == 24  # 2 stations × 2 hours × 6 types
    assert result.unknown_stations == set()  # 9999X has no concentrations, only an AQI
    stored = read_range(
        engine,
        point_id=points["1001A"],
        parameter_code="a34004",
        interval="hour",
        start=dt.datetime(2024, 1, 15, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        end=dt.datetime(2024, 1, 16, tzinfo=dt.timezone(dt.timedelta(hours=8))),
    )
    assert [row.value for row in stored] == [36.0, 36.0]
    assert stored[0].ts == dt.datetime(2024, 1, 14, 16, tzinfo=dt.UTC)
    so2 = read_range(
        engine,
        point_id=points["1001A"],
        parameter_code="a21026",
        interval="hour",
        start=stored[0].ts,
        end=stored[0].ts + dt.timedelta(hours=1),
    )
    assert so2[0].value == pytest.approx(0.005)  # 5 μg/m³ stored in mg/m³
    again = ImportResult()
    import_file_into_store(engine, path, points, again)
    assert again.written == 0 and again.unchanged == 24


def test_unknown_station_and_bad_file_are_quarantined(engine: Engine, tmp_path: Path) -> None:
    path = write_file(tmp_path / "china_sites_20240115.csv")
    result = ImportResult()
    import_file_into_store(engine, path, {}, result)
    assert result.unknown_stations == {"1001A", "1002A"}
    bad = tmp_path / "china_sites_bad.csv"
    bad.write_text("station,value\nx,1\n", encoding="utf-8")
    import_file_into_store(engine, bad, {}, result)
    assert result.bad_files and "date,hour,type" in result.bad_files[0][1]
    with engine.connect() as connection:
        reasons = dict(
            connection.execute(
                select(quarantine.c.reason_code, func.sum(quarantine.c.times)).group_by(
                    quarantine.c.reason_code
                )
            ).all()
        )
        assert connection.execute(select(func.count()).select_from(observations)).scalar() == 0
    assert reasons == {"unknown_station": 2, "bad_file": 1}


def test_validation_reports_mismatch_causes(tmp_path: Path) -> None:
    path = write_file(tmp_path / "china_sites_20240115.csv")
    report = validate_aqi_frame(station_hours(read_hourly_file(path)))
    # 1001A: PM2.5 36 → 52 but 52 published; 1002A: PM10 40 → 40 but 40 published.
    assert report.compared == 6 and report.exact == 4
    assert report.causes == {"no concentration published": 2}


@pytest.mark.skipif(not CNEMC_DIR.exists(), reason=f"no CNEMC files in {CNEMC_DIR}")
def test_real_published_aqi_is_reproduced() -> None:
    files = sorted(CNEMC_DIR.rglob("china_sites_*.csv"))
    assert files, f"no china_sites_*.csv under {CNEMC_DIR}"
    report = validate_aqi_files(files[:7])
    explained = (
        report.causes["no concentration published"]
        + report.causes["some concentrations not published"]
    )
    assert (report.exact + explained) / report.compared >= 0.999


def test_repeated_and_unnamed_station_columns_are_read_once(tmp_path: Path) -> None:
    # As in the real files: 3207A twice from June 2019, empty trailing names in 2023-01-21.
    path = tmp_path / "china_sites_20240115.csv"
    path.write_text(
        "date,hour,type,1001A,3207A,3207A,,\r\n20240115,0,PM2.5,36,12,12,,\r\n",
        encoding="utf-8",
    )
    long = read_hourly_file(path)
    assert sorted(long["station"].to_list()) == ["1001A", "3207A"]
    assert long.filter(long["station"] == "3207A")["value"].to_list() == [12.0]
