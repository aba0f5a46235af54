"""The annual assessment (ecohub/assessment) against figures worked by hand from HJ 663-2013,
GB 3095-2012 and the 2018 city ranking rules, and its API, pages and command on a small
store of hand-made daily rollups (both backends).

The store: city 石家庄 130100 with stations A and B and the control site C, and city 唐山
130200 with station D, each with a daily value of every pollutant on every day of 2019.
A: PM2.5 30, B: PM2.5 50 (none in February), C: 100 (control: not in the city); on
10 December days A and B both have 100. The city's daily PM2.5 is the mean of A and B,
so 40 on 327 days, 30 (A alone) on the 28 February days and 100 on 10 days.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ecohub.app import create_app
from ecohub.assessment import rules, service
from ecohub.cli.main import app as cli
from ecohub.clock import local_year_bounds
from ecohub.config import get_settings
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade
from ecohub.registry.models import MonitoringPoint, Region, Site
from ecohub.standards.air_assessment import percentile
from ecohub.timeseries.tables import rollups

YEAR = 2019
MONTHS = rules.months_of_year(YEAR)

# --- pure rules: HJ 663-2013 by hand ------------------------------------------------

# Ten daily values, sorted: 12 18 20 28 33 35 41 45 50 60.
DAILY = [20.0, 35.0, 12.0, 50.0, 41.0, 28.0, 60.0, 33.0, 18.0, 45.0]


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # HJ 663-2013 (A.2): k = 1 + (n − 1)·p%, s = ⌊k⌋, m_p = X_s + (X_{s+1} − X_s)(k − s).
        (95, 55.5),  # k = 1 + 9 × 0.95 = 9.55: 50 + (60 − 50) × 0.55
        (90, 51.0),  # k = 9.1: 50 + 10 × 0.1
        (98, 58.2),  # k = 9.82: 50 + 10 × 0.82
        (50, 34.0),  # k = 5.5: 33 + (35 − 33) × 0.5
    ],
)
def test_percentile_is_hj663s_interpolation_between_ranks(p: int, expected: float) -> None:
    assert float(percentile(DAILY, p)) == pytest.approx(expected)
    # Not the nearest rank (⌈0.95 × 10⌉ = 10th value, 60) nor the (n + 1)p rule
    # (k = 10.45 → 60): the standard interpolates from rank 1 + (n − 1)p.
    assert float(percentile(DAILY, 95)) != 60.0


def _year_with(days_per_month: list[int], value: float = 10.0) -> np.ndarray:
    """A 2019 series with the first ``days_per_month[m]`` days of each month valid."""
    series = np.full(MONTHS.size, np.nan)
    for month, count in enumerate(days_per_month, start=1):
        days = np.flatnonzero(month == MONTHS)[:count]
        series[days] = value
    return series


def test_324_valid_days_make_a_valid_year_and_323_do_not() -> None:
    # GB 3095-2012 Table 4: ≥ 324 daily values a year, ≥ 27 a month, ≥ 25 in February.
    enough = [29, 25, *[27] * 10]  # 29 + 25 + 270 = 324
    short = [28, 25, *[27] * 10]  # 323
    february_short = [31, 24, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]  # 361, Feb 24
    year = rules.pollutant_year(
        "PM2.5", np.stack([_year_with(m) for m in (enough, short, february_short)]), MONTHS
    )
    assert year.valid_days.tolist() == [324, 323, 361]
    assert year.valid.tolist() == [True, False, False]
    assert year.month_days[0].tolist() == enough
    assert year.month_days[2][1] == 24
    # Figures are still computed for an invalid year, but compliance is not judged.
    assert year.mean is not None and year.mean.tolist() == [10.0, 10.0, 10.0]
    assert year.compliant[2].tolist() == [True, False, False]


def test_annual_compliance_and_exceedance_multiples() -> None:
    # PM2.5 52.5 every day: annual mean 52.5 against 35 (grade II) → (52.5 − 35)/35 = 0.5;
    # the 95th percentile 52.5 is within the 24-hour 75. Grade I: (52.5 − 15)/15 = 2.5.
    year = rules.pollutant_year("PM2.5", [np.full(MONTHS.size, 52.5)], MONTHS)
    assert year.multiple[2][0] == pytest.approx(0.5)
    assert year.multiple[1][0] == pytest.approx(2.5)
    assert not year.compliant[2][0] and year.valid[0]
    # O3: no annual mean; the 90th percentile of daily maximum 8-h means against 160.
    ozone = rules.pollutant_year("O3", [np.full(MONTHS.size, 176.0)], MONTHS)
    assert ozone.mean is None and ozone.figure[0] == pytest.approx(176.0)
    assert ozone.multiple[2][0] == pytest.approx(0.1)


def test_comprehensive_index_by_hand() -> None:
    # 城市环境空气质量排名技术规定 (2018): I_sum = Σ C_i / S_i, grade II limits:
    # SO2 9/60 = 0.15, NO2 30/40 = 0.75, PM10 63/70 = 0.9, PM2.5 42/35 = 1.2,
    # CO 1.2/4 = 0.3, O3 176/160 = 1.1 → 4.40; the largest single index is PM2.5's.
    constant = {"SO2": 9.0, "NO2": 30.0, "PM10": 63.0, "PM2.5": 42.0, "CO": 1.2, "O3": 176.0}
    daily = {name: [np.full(MONTHS.size, value)] for name, value in constant.items()}
    result = rules.assess_year(daily, MONTHS, [np.full(MONTHS.size, 60.0)])
    assert result.index.total[0] == pytest.approx(4.40)
    assert result.index.primary == ["PM2.5"]
    assert result.index.largest[0] == pytest.approx(1.2)
    assert result.good_days.tolist() == [365] and result.good_ratio[0] == 1.0


def test_city_daily_value_is_the_mean_of_its_stations() -> None:
    values = np.array([[30.0, 30.0], [50.0, np.nan], [100.0, 100.0]])
    means = rules.group_means(values, np.array([0, 0, -1]), 1)  # the third is a control site
    assert means.tolist() == [[40.0, 30.0]]


def test_competition_ranks_and_invalid_years_last() -> None:
    keys = sorted(
        [
            rules.ranking_key(4.123, True),
            rules.ranking_key(4.119, True),
            rules.ranking_key(3.0, False),
        ]
    )
    assert rules.competition_ranks(keys) == [1, 1, 3]  # 4.12 and 4.12 tie; the invalid one last
    assert keys[-1][1] is True


# --- the store: hand-made daily rollups ----------------------------------------------

# Store units: SO2 and NO2 in mg/m³ (HJ 212-2017), the rest μg/m³, CO mg/m³.
BASE = {
    "a21026": 0.009,
    "a21004": 0.030,
    "a34002": 70.0,
    "a21005": 1.0,
    "a05024-8hmax": 120.0,
    "a05024-1hmax": 150.0,
}
CLEAN = {
    "a21026": 0.005,
    "a21004": 0.020,
    "a34002": 40.0,
    "a34004": 20.0,
    "a21005": 0.5,
    "a05024-8hmax": 100.0,
    "a05024-1hmax": 120.0,
}


def _build(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all(
            [
                Region(code="130000", name="河北省", level="province"),
                Region(code="130100", name="石家庄市", parent_code="130000", level="city"),
                Region(code="130200", name="唐山市", parent_code="130000", level="city"),
            ]
        )
        session.flush()
        session.add_all(
            [
                Region(code=code, name=code, parent_code=code[:4] + "00", level="county")
                for code in ("130102", "130104", "130105", "130202")
            ]
        )
        session.flush()
        sites = {
            "A": ("1001A", "职工医院", "130102", False),
            "B": ("1002A", "高新区", "130104", False),
            "C": ("1003A", "西北水源", "130105", True),
            "D": ("1004A", '=HYPERLINK("http://x")', "130202", False),
        }
        for code, name, region, control in sites.values():
            site = Site(code=code, name=name, kind="air", region_code=region, control_point=control)
            session.add(site)
            session.flush()
            session.add(
                MonitoringPoint(code=code, name=name, site_id=site.id, interval_seconds=3600)
            )
        session.commit()
        points = {p.code: p.id for p in session.query(MonitoringPoint)}
    start, _end = local_year_bounds(YEAR)
    now = dt.datetime.now(dt.UTC)
    rows = []
    for day in range(365):
        ts = start + dt.timedelta(days=day)
        month = MONTHS[day]
        haze = month == 12 and day >= 355  # the last ten days of the year
        values = {
            "1001A": {
                **BASE,
                "a34004": 100.0 if haze else 30.0,
                "a34002": 60.0,
                "a05024-8hmax": 100.0,
                "a21005": 0.8,
            },
            "1002A": {
                **BASE,
                "a34004": 100.0 if haze else 50.0,
                "a34002": 80.0,
                "a05024-8hmax": 140.0,
                "a21005": 1.2,
            },
            "1003A": {**BASE, "a34004": 100.0},
            "1004A": CLEAN,
        }
        for station, series in values.items():
            for code, value in series.items():
                if station == "1002A" and code == "a34004" and month == 2:
                    continue
                rows.append(
                    {
                        "point_id": points[station],
                        "parameter_code": code,
                        "period": "day",
                        "ts": ts,
                        "value": value,
                        "statistic": "mean",
                        "samples": 24,
                        "received": 24,
                        "valid": True,
                        "basis": "hour",
                        "flags": 0,
                        "computed_at": now,
                    }
                )
    with engine.begin() as connection:
        connection.execute(insert(rollups), rows)


@pytest.fixture
def store(engine: Engine) -> Engine:
    _build(engine)
    return engine


def test_assessment_of_stations_and_cities(store: Engine) -> None:
    report = service.compute(store, YEAR)
    assert report is not None
    cities = {city["code"]: city for city in report.cities}
    assert list(cities) == ["130200", "130100"]  # 唐山 (clean) ranks first
    shijiazhuang = cities["130100"]
    assert shijiazhuang["stations"] == 2  # the control site is left out
    pm25 = shijiazhuang["pollutants"]["PM2.5"]
    assert pm25["mean"] == pytest.approx((327 * 40 + 28 * 30 + 10 * 100) / 365, abs=1e-3)
    assert pm25["valid"] and pm25["valid_days"] == 365 and pm25["month_days"][1] == 28
    # SO2 and NO2 come from mg/m³: 0.009 → 9 μg/m³, 0.030 → 30 μg/m³.
    assert shijiazhuang["pollutants"]["SO2"]["mean"] == pytest.approx(9.0)
    assert shijiazhuang["pollutants"]["NO2"]["mean"] == pytest.approx(30.0)
    assert shijiazhuang["pollutants"]["CO"]["percentile"] == pytest.approx(1.0)  # (0.8 + 1.2)/2
    assert shijiazhuang["pollutants"]["O3"]["percentile"] == pytest.approx(120.0)
    # Index: 9/60 + 30/40 + 70/70 + 40.877/35 + 1.0/4 + 120/160.
    expected = 0.15 + 0.75 + 1.0 + (14920 / 365) / 35 + 0.25 + 0.75
    assert shijiazhuang["index"] == pytest.approx(expected, abs=1e-3)
    assert shijiazhuang["compliant_grade_2"] is False and shijiazhuang["primary"] == "PM2.5"
    # Daily AQI from the city's means (HJ 633-2012): PM2.5 40 → IAQI 57, February's 30
    # with PM10 70 → 60 (good); the ten haze days' 100 → 132 (light pollution).
    assert shijiazhuang["level_days"] == [0, 355, 10, 0, 0, 0]
    assert shijiazhuang["good_ratio"] == pytest.approx(355 / 365, abs=1e-4)
    assert cities["130200"]["compliant_grade_2"] is True and cities["130200"]["rank"] == 1
    stations = {station["code"]: station for station in report.stations}
    assert stations["1002A"]["valid"] is False  # no PM2.5 in February
    assert stations["1002A"]["pollutants"]["PM2.5"]["compliant_grade_2"] is None
    assert stations["1003A"]["control_point"] and stations["1003A"]["city"] == "130100"
    nation = report.nation
    assert nation["cities_assessed"] == 2 and nation["cities_meeting_grade_2"] == 1
    assert nation["share_meeting_grade_2"] == 0.5
    assert nation["means"]["PM2.5"] == pytest.approx((14920 / 365 + 20) / 2, abs=1e-3)


def test_a_year_without_data_has_no_assessment(store: Engine) -> None:
    assert service.compute(store, 2018) is None
    with pytest.raises(service.NoAssessment):
        service.ensure(store, 2018)


def test_a_stored_assessment_is_read_back_not_recomputed(store: Engine) -> None:
    first = service.ensure(store, YEAR)
    assert service.ensure(store, YEAR) == first
    assert service.newest_year(store) == YEAR


# --- API, pages, command -------------------------------------------------------------


@pytest.fixture
def client(store: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as test_client:
        yield test_client


def test_api_cities_stations_and_card(client: TestClient) -> None:
    answer = client.get("/api/v1/assessment/annual/cities", params={"year": YEAR})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [c["code"] for c in body["cities"]] == ["130200", "130100"]
    assert body["national"]["share_meeting_grade_2"] == 0.5
    assert body["limits"]["PM2.5"]["annual_grade_2"] == 35.0
    stations = client.get(
        "/api/v1/assessment/annual/stations", params={"year": YEAR, "city": "130100"}
    ).json()["stations"]
    assert [s["code"] for s in stations] == ["1001A", "1002A", "1003A"]
    card = client.get("/api/v1/assessment/annual/cities/130100", params={"year": YEAR}).json()
    assert card["city"]["rank"] == 2 and card["cities_ranked"] == 2
    assert len(card["stations"]) == 3
    # The default year is the newest with data.
    assert client.get("/api/v1/assessment/annual/cities").json()["year"] == YEAR


def test_api_csv_escapes_formulas(client: TestClient) -> None:
    answer = client.get(
        "/api/v1/assessment/annual/stations", params={"year": YEAR, "format": "csv"}
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    names = {row["code"]: row["name"] for row in rows}
    assert names["1004A"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["PM2.5_mean"] and "O3_percentile" in rows[0]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/assessment/annual/cities", {"year": 2018}, 404),  # no data that year
        ("/api/v1/assessment/annual/cities", {"year": 1999}, 400),
        ("/api/v1/assessment/annual/cities", {"year": 3000}, 400),
        ("/api/v1/assessment/annual/cities/999900", {"year": YEAR}, 404),  # unknown city
        ("/api/v1/assessment/annual/cities/13010x", {"year": YEAR}, 400),
        ("/api/v1/assessment/annual/cities/130000", {"year": YEAR}, 404),  # no stations
        ("/api/v1/assessment/annual/stations", {"year": YEAR, "city": "999900"}, 404),
        ("/api/v1/assessment/annual/stations", {"year": YEAR, "city": "abc"}, 400),
        ("/api/v1/assessment/annual/cities", {"year": YEAR, "period": "day"}, 400),
    ],
)
def test_api_errors(client: TestClient, path: str, params: dict[str, object], status: int) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_ranking_and_card_pages_in_both_languages(client: TestClient) -> None:
    page = client.get("/assessment/annual", params={"year": YEAR})
    assert page.status_code == 200
    assert "年度空气质量评价" in page.text and "唐山市" in page.text and "50.0%" in page.text
    card = client.get("/assessment/annual/cities/130100", params={"year": YEAR})
    assert card.status_code == 200
    assert "年度空气质量报告卡" in card.text and "μg/m³" in card.text and "mg/m³" in card.text
    assert "/static/assessment.js" in card.text and "对照点" in card.text
    chart = json.loads(
        card.text.split("data-chart='")[1].split("'")[0].replace("&#34;", '"').replace("&amp;", "&")
    )
    assert [level["value"] for level in chart["levels"]] == [0, 355, 10, 0, 0, 0]
    english = client.get("/assessment/annual/cities/130100", params={"year": YEAR, "lang": "en"})
    assert "annual air quality report card" in english.text and "Good-day ratio" in english.text
    assert client.get("/assessment/annual/cities/999900").status_code == 404
    assert client.get("/static/assessment.js").status_code == 200


def test_command_prints_the_national_figures(
    store: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(cli, ["assess", "annual", "--year", str(YEAR)])
        assert result.exit_code == 0, result.output
        assert "cities meeting grade II in all six: 1 of 2 (50.0%)" in result.output
        assert "唐山市" in result.output
        card = runner.invoke(
            cli, ["assess", "annual", "--year", str(YEAR), "--city", "130100", "--json"]
        )
        assert card.exit_code == 0, card.output
        assert json.loads(card.stdout)["city"]["rank"] == 2
        missing = runner.invoke(cli, ["assess", "annual", "--year", "2018"])
        assert missing.exit_code == 2
    finally:
        get_settings.cache_clear()


# --- the report card in a real browser (Debian's Chromium, no network) ---------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('card') / 'card.sqlite3'}")
    upgrade(engine)
    _build(engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_card_draws_the_category_chart_in_a_browser(portal: str) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

        def local_only(route: Any) -> None:  # no network beyond the portal
            if route.request.url.startswith(portal):
                route.continue_()
            else:
                errors.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        page.goto(f"{portal}/assessment/annual/cities/130100?year={YEAR}&lang=en")
        chart = page.locator("#chart-categories[data-ready='yes']")
        chart.wait_for(timeout=10_000)
        assert chart.get_attribute("data-days") == "365"
        assert page.locator("#chart-categories canvas").count() == 1
        assert page.locator("#city-rank").inner_text() == "2"
        page.goto(f"{portal}/assessment/annual?year={YEAR}")
        assert page.locator("#assessment-ranking tbody tr").count() == 2
        browser.close()
    assert not errors, errors
