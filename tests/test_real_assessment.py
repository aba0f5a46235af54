"""The annual assessment on real CNEMC data (../shared/data/cnemc/): the official station
lists and one published day (2019-01-01, a winter haze day) imported through the
pipeline, then assessed as a year. One day is far from a valid year, so every city is
reported with its figures and as invalid; a city's daily value must be the mean of its
non-control stations' daily rollups, read here with a plain query.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.assessment import service
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade
from ecohub.ingest.cnemc_bulk import import_station_files
from ecohub.registry.importer import import_records
from ecohub.registry.models import MonitoringPoint, Site
from ecohub.registry.station_lists import read_station_lists
from ecohub.registry.stations import build_history, registry_records
from ecohub.timeseries.tables import rollups

CNEMC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc"
DAY_FILE = CNEMC / "china_sites" / "china_sites_20190101.csv"
pytestmark = pytest.mark.skipif(not DAY_FILE.exists(), reason="no CNEMC data in ../shared")


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('real') / 'real.sqlite3'}")
    upgrade(engine)
    history = build_history(read_station_lists(CNEMC / "stations"))
    report = import_records(engine, registry_records(history).as_import_rows(), "test")
    assert not report.rejected
    import_station_files(engine, [DAY_FILE])
    yield engine
    engine.dispose()


def test_one_real_day_assessed_as_an_invalid_year(real_store: Engine) -> None:
    report = service.compute(real_store, 2019)
    assert report is not None
    assert len(report.stations) > 1200 and len(report.cities) > 300
    assert not any(city["valid"] for city in report.cities)
    assert report.nation["cities_assessed"] == 0 and report.nation["means"]["PM2.5"] is None
    beijing = next(city for city in report.cities if city["code"] == "110000")
    pm25 = beijing["pollutants"]["PM2.5"]
    assert pm25["valid_days"] == 1 and pm25["month_days"] == [1] + [0] * 11
    assert pm25["valid"] is False and pm25["compliant_grade_2"] is None
    # The city's daily PM2.5: the mean of its non-control stations' valid daily means.
    with Session(real_store) as session:
        values = (
            session.execute(
                select(rollups.c.value)
                .join(MonitoringPoint, MonitoringPoint.id == rollups.c.point_id)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(
                    Site.region_code.like("11%"),
                    Site.control_point.is_(False),
                    rollups.c.period == "day",
                    rollups.c.parameter_code == "a34004",
                    rollups.c.valid,
                )
            )
            .scalars()
            .all()
        )
    # The file publishes PM2.5 for ≥ 20 of the day's hours at five of Beijing's twelve
    # stations only (1001A 20, 1003A 24, 1005A 24, 1006A 24, 1012A 21; 1002A has 1,
    # 1008A 9, 1010A 6…): the haze day's gaps are the source's.
    assert len(values) == 5
    assert pm25["mean"] == pytest.approx(sum(values) / len(values), abs=1e-3)
    assert beijing["stations"] >= len(values)
    # SO2 is stored in mg/m³ and assessed in μg/m³: a real winter day is 2-30 μg/m³.
    assert 1 < beijing["pollutants"]["SO2"]["mean"] < 40
    # A daily AQI for the day, in one of the six categories.
    assert beijing["aqi_days"] == 1 and sum(beijing["level_days"]) == 1
    control = [s for s in report.stations if s["control_point"]]
    assert control and all(s["city"] for s in control)
    assert all(not math.isnan(city["index"]) for city in report.cities if city["index"])
