"""The national releases into the registry and the store, on both backends: the CNEMC
live feed (stations registered, one hour stored, the published AQI reproduced in the
store) and the surface-water release (sections registered with province, basin and
kind, readings stored). Expected values are typed from the files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.ingest.cnemc_live import parse_live_feed
from ecohub.ingest.cnemc_water import read_release, section_code
from ecohub.ingest.national import import_live_feed, import_water_release
from ecohub.registry.models import MonitoringPoint, Region, Site
from ecohub.timeseries.tables import observations, station_aqi

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LIVE = DATA / "cnemc" / "live_publish" / "airnow.json"
WATER = DATA / "water" / "cnemc_realtime_20260821_p1_shared.csv"


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent: the real-data tests need ../shared/data beside the clone")


def _station_aqi(engine: Engine, code: str) -> list[tuple[int | None, str]]:
    with engine.connect() as connection:
        return [
            (aqi, primary)
            for aqi, primary in connection.execute(
                select(station_aqi.c.aqi, station_aqi.c.primary_pollutants)
                .join(MonitoringPoint, MonitoringPoint.id == station_aqi.c.point_id)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(Site.code == code, station_aqi.c.period == "hour")
            )
        ]


def test_the_live_feed_registers_its_stations_and_reproduces_the_published_aqi(
    engine: Engine,
) -> None:
    _need(LIVE)
    records = parse_live_feed(LIVE.read_bytes())
    first = import_live_feed(engine, records, "test")
    assert first.records == 1495 and first.sites_registered == 1495
    with Session(engine) as session:
        site = session.scalars(select(Site).filter_by(code="1001A")).one()
        assert (site.name, site.longitude, site.latitude) == ("北京市万寿西宫", 116.366, 39.8673)
        assert site.region_code == "110000"
        assert session.get(Region, "110000") is not None
    # As published at 2018-02-20 07:00: 1001A 万寿西宫 AQI 54, primary PM2.5; 1003A 东四
    # AQI 63, PM2.5.
    assert _station_aqi(engine, "1001A") == [(54, "PM2.5")]
    assert _station_aqi(engine, "1003A") == [(63, "PM2.5")]
    with engine.connect() as connection:
        stored = connection.execute(
            select(observations.c.ts, observations.c.value)
            .join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
            .where(MonitoringPoint.code == "1001A", observations.c.parameter_code == "a05024")
        ).one()
    # The 1-hour O3 is the property labelled o3_24h (62 μg/m³), not the one labelled o3.
    assert stored == (dt.datetime(2018, 2, 19, 23, tzinfo=dt.UTC), 62.0)
    again = import_live_feed(engine, records, "test")
    assert (again.sites_registered, again.written) == (0, 0)
    assert again.unchanged == first.written


def test_the_water_release_registers_sections_with_province_basin_and_kind(
    engine: Engine,
) -> None:
    _need(WATER)
    records = read_release(WATER, year=2026)
    result = import_water_release(engine, records, "test")
    assert result.records == 388 and result.sites_registered == 388
    code = section_code("北京市", "海河流域", "鼓楼外大街")
    with Session(engine) as session:
        site = session.scalars(select(Site).filter_by(code=code)).one()
        assert (site.name, site.kind, site.region_code, site.basin, site.water_body) == (
            "鼓楼外大街",
            "surface_water",
            "110000",
            "海河流域",
            "river",
        )
    with engine.connect() as connection:
        values = dict(
            connection.execute(
                select(observations.c.parameter_code, observations.c.value)
                .join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
                .where(MonitoringPoint.code == code)
            ).all()
        )
    # 鼓楼外大街, 08-21 20:00: pH 7.6, DO 6.76, CODMn 2.61, NH3-N 0.077, TP 0.035 (原始值).
    assert {k: values[k] for k in ("w01001", "w01009", "w01019", "w21003", "w21011")} == {
        "w01001": 7.6,
        "w01009": 6.76,
        "w01019": 2.61,
        "w21003": 0.077,
        "w21011": 0.035,
    }
    assert import_water_release(engine, records, "test").written == 0
