"""Public open-data routes: sites with filters and exports, the latest station AQI with
its HJ 633 colour, and a site's series with keyset pages, on both backends."""

from __future__ import annotations

import csv
import datetime as dt
import io

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation

T0 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)


@pytest.fixture
def client(engine: Engine, points: dict[str, int]) -> TestClient:
    # 1001A: PM2.5 hourly means for 30 hours, the last one 120 μg/m³; HJ 633 Table 1
    # (24-hour breakpoints, used for hourly PM2.5 too): 115→150, 150→200, so 120 → IAQI
    # 150 + (200−150)(120−115)/(150−115) = 157.14 → AQI 158, level 4 (中度污染, red).
    # 1002A: 30 μg/m³ → IAQI 42.86 → AQI 43, level 1 (优, green).
    rows = []
    for h in range(30):
        wobble = (h % 4 - 1.5) * 0.4
        at = T0 + dt.timedelta(hours=h)
        rows.append(Observation(points["1001A"], "a34004", "hour", at, 60 + wobble, "N", 0, "t"))
    rows.append(
        Observation(
            points["1001A"], "a34004", "hour", T0 + dt.timedelta(hours=30), 120.0, "N", 0, "t"
        )
    )
    rows.append(Observation(points["1002A"], "a34004", "hour", T0, 30.0, "N", 0, "t"))
    rows.append(Observation(points["1141A"], "a34004", "hour", T0, 100.0, "N", 0, "t"))
    Pipeline(engine).process(rows, now=T0 + dt.timedelta(days=3))
    return TestClient(create_app(engine))


def test_sites_filters_and_formats(client: TestClient) -> None:
    everything = client.get("/api/v1/sites").json()
    assert {"1001A", "1002A"} <= {site["code"] for site in everything}
    beijing = client.get("/api/v1/sites", params={"region": "110000", "kind": "air"}).json()
    assert beijing and all(site["region_code"].startswith("11") for site in beijing)
    # 定陵 (1002A, 116.17 E 40.29 N) lies in this box; 万寿西宫 (1001A, 39.87 N) does not.
    boxed = client.get("/api/v1/sites", params={"bbox": "116.0,40.2,116.3,40.4"}).json()
    assert [site["code"] for site in boxed] == ["1002A"]
    paged = client.get("/api/v1/sites", params={"limit": 2, "offset": 1}).json()
    assert [s["code"] for s in paged] == [s["code"] for s in everything[1:3]]
    geo = client.get("/api/v1/sites", params={"format": "geojson", "region": "110000"})
    assert geo.headers["content-type"].startswith("application/geo+json")
    feature = geo.json()["features"][0]
    assert feature["geometry"]["type"] == "Point" and len(feature["geometry"]["coordinates"]) == 2
    table = client.get("/api/v1/sites", params={"format": "csv", "kind": "air"})
    parsed = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert parsed[0].keys() >= {"code", "name", "longitude"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bbox": "1,2,3"}, "bbox must be four numbers"),
        ({"bbox": "120,40,110,41"}, "west < east"),
        ({"region": "11"}, None),
        ({"kind": "volcano"}, None),
        ({"limit": 0}, None),
    ],
)
def test_sites_bad_parameters(client: TestClient, params: dict, message: str | None) -> None:
    response = client.get("/api/v1/sites", params=params)
    assert response.status_code in (400, 422)
    if message:
        assert message in response.json()["detail"]


def test_latest_aqi_has_the_hj633_colour(
    client: TestClient, engine: Engine, points: dict[str, int]
) -> None:
    # Late data for an older hour does not move the newest AQI back.
    late = Observation(
        points["1001A"], "a34004", "hour", T0 - dt.timedelta(hours=5), 300.0, "N", 0, "t"
    )
    Pipeline(engine).process([late], now=T0 + dt.timedelta(days=3))
    latest = {row["site"]: row for row in client.get("/api/v1/aqi/latest").json()}
    assert latest["1001A"]["aqi"] == 158 and latest["1001A"]["level"] == 4
    assert latest["1001A"]["colour"] == "#FF0000" and latest["1001A"]["category"] == "中度污染"
    assert latest["1001A"]["ts"] == "2024-01-16T06:00:00Z"
    assert latest["1002A"]["aqi"] == 43 and latest["1002A"]["colour"] == "#00E400"


def test_series_pages_and_exports(client: TestClient) -> None:
    params = {
        "parameter": "a34004",
        "start": "2024-01-15T08:00:00+08:00",
        "end": "2024-01-17T08:00:00+08:00",
        "limit": 20,
    }
    first = client.get("/api/v1/sites/1001A/series", params=params).json()
    assert len(first["rows"]) == 20 and first["next_cursor"] == "2024-01-15T19:00:00Z"
    second = client.get(
        "/api/v1/sites/1001A/series", params={**params, "cursor": first["next_cursor"]}
    ).json()
    assert len(second["rows"]) == 11 and second["next_cursor"] is None
    assert second["rows"][-1] == {
        "ts": "2024-01-16T06:00:00Z",
        "value": 120.0,
        "valid": True,
        "samples": 1,
        "statistic": "mean",
    }
    daily = client.get(
        "/api/v1/sites/1001A/series", params={**params, "period": "day", "limit": 10}
    ).json()["rows"]
    # The local day starting 2024-01-16 00:00 CST (15th 16:00 UTC) holds hours 16-30 from
    # T0: 15 hourly values, fewer than the 20 GB 3095-2012 Table 4 asks, so invalid. (The
    # day before starts before ``start`` and is not in the range.)
    assert [(d["ts"], d["valid"], d["samples"]) for d in daily] == [
        ("2024-01-15T16:00:00Z", False, 15)
    ]
    table = client.get("/api/v1/sites/1001A/series", params={**params, "format": "csv"})
    assert table.headers["x-next-cursor"] == "2024-01-15T19:00:00Z"
    lines = table.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "ts,value,unit,valid,samples,statistic"
    assert lines[1].split(",")[2] == "μg/m³"
    parquet = client.get("/api/v1/sites/1001A/series", params={**params, "format": "parquet"})
    frame = pl.read_parquet(io.BytesIO(parquet.content))
    assert frame.height == 20 and frame.schema["ts"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize(
    ("path", "params", "code", "message"),
    [
        (
            "1001A",
            {"start": "2024-01-16T00:00:00", "end": "2024-01-16T00:00:00+08:00"},
            400,
            "after start",  # without an offset: Beijing time, the same instant as the end
        ),
        (
            "1001A",
            {"start": "2024-01-16T00:00:00Z", "end": "2024-01-15T00:00:00Z"},
            400,
            "after start",
        ),
        (
            "1001A",
            {"start": "2022-01-01T00:00:00Z", "end": "2024-01-15T00:00:00Z"},
            400,
            "at most 400 days",
        ),
        ("NOPE", {"start": "2024-01-15T00:00:00Z", "end": "2024-01-16T00:00:00Z"}, 404, "no site"),
        ("1001A", {"start": "not a time", "end": "2024-01-16T00:00:00Z"}, 400, "start:"),
    ],
)
def test_series_bad_parameters(
    client: TestClient, path: str, params: dict, code: int, message: str | None
) -> None:
    response = client.get(f"/api/v1/sites/{path}/series", params={"parameter": "a34004", **params})
    assert response.status_code == code
    if message:
        assert message in response.json()["detail"]
    unknown = client.get(
        "/api/v1/sites/1001A/series",
        params={
            "parameter": "zz999",
            "start": "2024-01-15T00:00:00Z",
            "end": "2024-01-16T00:00:00Z",
        },
    )
    assert unknown.status_code == 404 and "no parameter" in unknown.json()["detail"]


def test_city_ranking_uses_the_mean_of_the_stations(client: TestClient) -> None:
    ranking = client.get(
        "/api/v1/ranking/cities", params={"period": "hour", "at": "2024-01-15T08:30:00+08:00"}
    ).json()
    assert ranking["ts"] == "2024-01-15T00:00:00Z"
    # 北京: mean of 59.4 (1001A) and 30 (1002A) = 44.7 → IAQI 50 + 50 × 9.7/40 = 62.1 → 63.
    # 上海: 100 (1141A) → IAQI 100 + 50 × 25/40 = 131.25 → 132.
    assert [(c["rank"], c["name"], c["aqi"], c["stations"]) for c in ranking["cities"]] == [
        (1, "北京市", 63, 2),
        (2, "上海市", 132, 1),
    ]
    assert ranking["cities"][1]["primary_pollutants"] == ["PM2.5"]
    newest = client.get("/api/v1/ranking/cities").json()
    assert newest["ts"] == "2024-01-16T06:00:00Z" and newest["cities"][0]["aqi"] == 158
    empty = client.get(
        "/api/v1/ranking/cities", params={"period": "day", "at": "2030-01-01T00:00:00Z"}
    ).json()
    assert empty["cities"] == []
    bad = client.get("/api/v1/ranking/cities", params={"period": "week"})
    assert bad.status_code == 422
    # A time without an offset is Beijing time: the same hour as 2024-01-15T08:30+08:00.
    naive = client.get("/api/v1/ranking/cities", params={"at": "2024-01-15T08:00"})
    assert naive.status_code == 200 and naive.json()["ts"] == "2024-01-15T00:00:00Z"


def test_enterprise_disclosure_and_outlet_series(
    client: TestClient, engine: Engine, points: dict[str, int]
) -> None:
    # The demo permit of 京西燃气热电 (P0001 on outlet DA001): SO2 10, NOx 30,
    # particulates 5 mg/m³ (demo/registry.json).
    listed = client.get("/api/v1/enterprises", params={"region": "110000"}).json()
    assert [e["uscc"] for e in listed] == ["91110106MA00DEM01H"]
    detail = client.get("/api/v1/enterprises/91110106MA00DEM01H").json()
    assert detail["outlets"][0]["code"] == "DA001" and detail["outlets"][0]["points"] == ["P0001"]
    (permit,) = detail["permits"]
    limits = {x["parameter_code"]: x["concentration_limit"] for x in permit["limits"]}
    assert limits == {"a21026": 10, "a21002": 30, "a34013": 5}
    assert {x["outlet"] for x in permit["limits"]} == {"DA001"}
    bad = client.get("/api/v1/enterprises/91110106MA00DEM01X")
    assert bad.status_code == 400 and "check character" in bad.json()["detail"]
    unknown = client.get("/api/v1/enterprises/91350100M000100Y43")
    assert unknown.status_code == 404

    p1 = points["P0001"]
    rows = [
        Observation(p1, "a21026", "hour", T0, 12.5, "N", 0, "t"),
        Observation(p1, "a00000", "hour", T0, 80.0, "N", 0, "t"),
    ]
    Pipeline(engine).process(rows, now=T0 + dt.timedelta(days=3))
    window = {"start": "2024-01-15T00:00:00Z", "end": "2024-01-16T00:00:00Z"}
    series = client.get("/api/v1/points/P0001/series", params={"parameter": "a21026", **window})
    assert series.json()["point"] == "P0001"
    assert series.json()["rows"][0]["value"] == 12.5
    # A station is not an outlet point: its data is under /sites.
    station = client.get("/api/v1/points/1001A/series", params={"parameter": "a34004", **window})
    assert station.status_code == 404 and "outlet monitoring point" in station.json()["detail"]


def test_latest_aqi_is_rebuilt_when_its_inputs_change(
    client: TestClient, engine: Engine, points: dict[str, int]
) -> None:
    first = client.get("/api/v1/aqi/latest")
    etag = first.headers["etag"]
    assert client.get("/api/v1/aqi/latest", headers={"If-None-Match": etag}).status_code == 304
    # A newer hour for 1002A: 40 μg/m³ → IAQI 50 + 50 × (40 − 35)/(75 − 35) = 56.25 → 57.
    newer = Observation(
        points["1002A"], "a34004", "hour", T0 + dt.timedelta(hours=1), 40.0, "N", 0, "t"
    )
    Pipeline(engine).process([newer], now=T0 + dt.timedelta(days=3))
    changed = client.get("/api/v1/aqi/latest", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert {row["site"]: row["aqi"] for row in changed.json()}["1002A"] == 57
    # A renamed site (an audited registry change) shows at once too.
    from ecohub.registry.schemas import SiteIn
    from ecohub.registry.service import upsert_site

    with Session(engine) as session:
        upsert_site(
            session,
            SiteIn(
                code="1002A",
                name="定陵（新）",
                kind="air",
                region_code="110000",
                longitude=116.17,
                latitude=40.2865,
            ),
            "test",
        )
        session.commit()
    renamed = {row["site"]: row["name"] for row in client.get("/api/v1/aqi/latest").json()}
    assert renamed["1002A"] == "定陵（新）"


def test_station_aqi_series(client: TestClient) -> None:
    params = {"start": "2024-01-16T00:00:00Z", "end": "2024-01-16T07:00:00Z"}
    rows = client.get("/api/v1/sites/1001A/aqi", params=params).json()["rows"]
    # Hours 24-30 from T0; the last is the 120 μg/m³ hour: AQI 158, level 4, red.
    assert [row["ts"][11:13] for row in rows] == ["00", "01", "02", "03", "04", "05", "06"]
    assert rows[-1]["aqi"] == 158 and rows[-1]["colour"] == "#FF0000"
    assert rows[-1]["iaqi"] == {"PM2.5": 158} and rows[-1]["primary_pollutants"] == ["PM2.5"]
    water = client.get("/api/v1/sites/WQ-GZ-01/aqi", params=params)
    assert water.status_code == 404 and "no air station" in water.json()["detail"]
    backwards = client.get(
        "/api/v1/sites/1001A/aqi", params={"start": params["end"], "end": params["start"]}
    )
    assert backwards.status_code == 400 and "after start" in backwards.json()["detail"]
    ancient = client.get(
        "/api/v1/sites/1001A/aqi", params={"start": "0001-01-01T00:00:00Z", "end": params["end"]}
    )
    assert ancient.status_code == 400 and "between 1970 and 2199" in ancient.json()["detail"]
    assert (
        client.get("/api/v1/sites/1001A/aqi", params={**params, "period": "week"}).status_code
        == 422
    )


def test_city_aqi_is_the_aqi_of_the_mean_of_its_stations(
    client: TestClient, engine: Engine
) -> None:
    from ecohub.registry import service
    from ecohub.registry.models import Site
    from ecohub.registry.schemas import SiteIn

    params = {"start": "2024-01-15T08:00:00+08:00", "end": "2024-01-15T09:00:00+08:00"}
    beijing = client.get("/api/v1/cities/110000/aqi", params=params).json()
    # 北京 at 2024-01-15 00:00 UTC: mean PM2.5 of 59.4 (1001A) and 30 (1002A) = 44.7 μg/m³
    # → IAQI 50 + 50 × 9.7/40 = 62.1 → 63 (HJ 633-2012 Table 1, 24-hour breakpoints).
    assert [(row["ts"], row["aqi"], row["stations"]) for row in beijing["rows"]] == [
        ("2024-01-15T00:00:00Z", 63, 2)
    ]
    # A control site (对照点) is left out of its city's AQI: 59.4 alone → 50 + 50 × 24.4/40
    # = 80.5 → 81.
    with Session(engine) as session:
        site = session.query(Site).filter_by(code="1002A").one()
        record = SiteIn(
            code=site.code,
            name=site.name,
            kind=site.kind,
            region_code=site.region_code,
            longitude=site.longitude,
            latitude=site.latitude,
            control_point=True,
        )
        service.upsert_site(session, record, "test")
        session.commit()
    alone = client.get("/api/v1/cities/110000/aqi", params=params).json()
    assert [(row["aqi"], row["stations"]) for row in alone["rows"]] == [(81, 1)]
    ranked = client.get("/api/v1/ranking/cities", params={"at": "2024-01-15T08:00+08:00"}).json()
    assert ranked["cities"][0]["aqi"] == 81 and ranked["cities"][0]["stations"] == 1
    assert client.get("/api/v1/cities/990000/aqi", params=params).status_code == 404
    assert client.get("/api/v1/cities/11/aqi", params=params).status_code == 422
    listed = {city["city"]: city for city in client.get("/api/v1/cities").json()}
    assert listed["110000"]["control_sites"] == 1


def test_series_take_common_names_beijing_times_and_default_ranges(client: TestClient) -> None:
    by_name = client.get(
        "/api/v1/sites/1001A/series",
        params={"parameter": "PM2.5", "start": "2024-01-15", "end": "2024-01-16"},
    ).json()
    # 2024-01-15 and 2024-01-16 are Beijing midnights: 2024-01-14T16:00Z to 2024-01-15T16:00Z.
    assert by_name["parameter"] == "a34004" and by_name["unit"] == "μg/m³"
    assert (by_name["start"], by_name["end"]) == ("2024-01-14T16:00:00Z", "2024-01-15T16:00:00Z")
    assert by_name["rows"][0]["ts"] == "2024-01-15T00:00:00Z"
    # "+08:00" sent unencoded arrives as " 08:00": read as the offset it was.
    unencoded = client.get(
        "/api/v1/sites/1001A/series?parameter=PM2.5&start=2024-01-15T08:00+08:00"
        "&end=2024-01-16T08:00+08:00"
    )
    assert unencoded.status_code == 200 and unencoded.json()["start"] == "2024-01-15T00:00:00Z"
    # Without a range: the 48 hours up to the newest value (2024-01-16T06:00Z).
    latest = client.get("/api/v1/sites/1001A/series", params={"parameter": "pm2.5"}).json()
    assert latest["end"] == "2024-01-16T07:00:00Z" and latest["rows"][-1]["value"] == 120.0
    missing = client.get("/api/v1/sites/1001A/series", params={"parameter": "PM1"})
    assert missing.status_code == 404 and "a34004" in missing.json()["detail"]
    listed = {row["code"]: row for row in client.get("/api/v1/parameters").json()}
    assert listed["a21026"]["unit"] == "mg/m³" and listed["a21026"]["unit_ambient"] == "μg/m³"
    assert "pm2.5" in listed["a34004"]["also_known_as"]
