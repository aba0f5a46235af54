"""The heavy-pollution warning levels on a real episode: Harbin (哈尔滨, 230100) in the
winter haze of 2025-01-19..24, from CNEMC's published hourly concentrations.

The test imports the six days of Harbin's stations (trimmed copies of the real files),
judges the alarm rules over the stored history, and compares the warnings raised with
the levels of 环办大气函〔2019〕648号 applied to the city's daily AQI computed here from
the published concentrations (HJ 633-2012: the city's daily concentration is the mean
of its stations' daily means, each from at least 20 valid hours, GB 3095-2012 Table 4).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import Engine

from ecohub.alarms import rules
from ecohub.alarms.lifecycle import SEVERITY_RANK
from ecohub.alarms.replay import heavy_pollution_warnings, judge_history
from ecohub.ingest.cnemc import ImportResult, import_file_into_store, site_points
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.importer import import_records
from ecohub.registry.station_lists import read_station_lists
from ecohub.standards.air_assessment import o3_daily_max_8h
from ecohub.standards.aqi import daily_aqi

CNEMC = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc"
DAYS = [f"202501{day}" for day in range(19, 25)]
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def harbin(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[Path]]:
    if not CNEMC.exists():
        pytest.skip(f"{CNEMC} is absent: the real-data tests need ../shared/data")
    listing = next(
        lst for lst in read_station_lists(CNEMC / "stations") if "2022.02.13" in lst.source
    )
    codes = sorted(code for code, st in listing.stations.items() if st.city == "哈尔滨")
    folder = tmp_path_factory.mktemp("harbin")
    files = []
    for day in DAYS:
        frame = pl.read_csv(
            CNEMC / "china_sites" / f"china_sites_{day}.csv", infer_schema=False
        ).select(["date", "hour", "type", *codes])
        files.append(folder / f"china_sites_{day}.csv")
        frame.write_csv(files[-1])
    return codes, files


def _expected_daily_aqi(codes: list[str], files: list[Path]) -> list[float]:
    """Harbin's daily AQI per day, from the published hourly concentrations."""
    daily = []
    for path in files:
        frame = pl.read_csv(path, infer_schema=False)
        means: dict[str, list[float]] = {}
        for kind in ("PM2.5", "PM10", "SO2", "NO2", "CO"):
            rows = frame.filter(pl.col("type") == kind)
            stations = []
            for code in codes:
                values = rows[code].cast(pl.Float64, strict=False).to_numpy()
                valid = values[~np.isnan(values)]
                if len(valid) >= 20:  # GB 3095-2012 Table 4: at least 20 hourly values
                    stations.append(float(valid.mean()))
            means[kind] = stations
        o3 = frame.filter(pl.col("type") == "O3")
        peaks = []
        for code in codes:
            hourly = np.full(24, np.nan)
            for hour, value in zip(o3["hour"].to_list(), o3[code].to_list(), strict=True):
                hourly[int(hour)] = float(value) if value else np.nan
            peak = float(o3_daily_max_8h(hourly))
            if not np.isnan(peak):
                peaks.append(peak)
        city = {k: np.array([np.mean(v)]) if v else np.array([np.nan]) for k, v in means.items()}
        result = daily_aqi(
            so2=city["SO2"],
            no2=city["NO2"],
            pm10=city["PM10"],
            pm25=city["PM2.5"],
            co=city["CO"],
            o3_1h_max=np.array([np.nan]),
            o3_8h_max=np.array([np.mean(peaks)]) if peaks else np.array([np.nan]),
        )
        daily.append(float(result.aqi[0]))
    return daily


def test_harbins_january_2025_haze_raises_the_guidance_warning(
    engine: Engine, harbin: tuple[list[str], list[Path]]
) -> None:
    codes, files = harbin
    records = [("regions", "r", {"code": "230000", "name": "黑龙江省", "level": "province"})]
    records.append(
        (
            "regions",
            "r",
            {"code": "230100", "name": "哈尔滨市", "parent_code": "230000", "level": "city"},
        )
    )
    for code in codes:
        records.append(
            ("sites", code, {"code": code, "name": code, "kind": "air", "region_code": "230100"})
        )
        records.append(
            (
                "points",
                code,
                {"code": code, "name": code, "site_code": code, "interval_seconds": 3600},
            )
        )
    assert not import_records(engine, records, "test").rejected
    points = site_points(engine)
    pipeline = Pipeline(engine, alarms=False)  # as a bulk import: no live alarms
    result = ImportResult()
    for path in files:
        import_file_into_store(engine, path, points, result, pipeline)
    assert result.written > 6 * len(codes) * 24 * 4  # most of the six pollutants published

    start = dt.datetime(2025, 1, 19, tzinfo=CST)
    end = dt.datetime(2025, 1, 25, tzinfo=CST)
    judge_history(engine, start, end)
    raised = heavy_pollution_warnings(engine, start, end)

    daily = _expected_daily_aqi(codes, files)
    assert sum(aqi > 200 for aqi in daily) >= 2, daily  # a real episode, by the files
    levels = [rules.heavy_pollution_level(daily[: day + 1]) for day in range(len(daily))]
    expected = max(level for level in levels if level is not None)  # as the episode grew
    harbin_warnings = [w for w in raised if w.city == "230100"]
    assert harbin_warnings, raised
    strongest = max(harbin_warnings, key=lambda w: SEVERITY_RANK[w.level])
    assert strongest.level == expected.name.lower(), (daily, harbin_warnings)
