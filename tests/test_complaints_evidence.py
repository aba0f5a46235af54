"""The evidence beside an air complaint, on both backends, on a layout whose answers can
be worked out by hand: the wind blows from the north (hourly directions 350° and 10°,
whose vector mean is 0°), so the enterprise 800 m north of the complainant is upwind and
listed before the one 500 m south; the one 5 km east is beyond the 3 km radius. The
upwind source's SO2 outlet values in the hours around the complaint (40, 60, 50 mg/m³:
mean 50, peak 60) and its exceedance alarm are beside it; the air station 2 km west gives
PM2.5 75, 85, 95 μg/m³ (mean 85); an earlier complaint 200 m away is listed."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from ecohub.alarms.tables import alarms
from ecohub.complaints.evidence import evidence_for
from ecohub.complaints.geo import bearing_deg, distance_m
from ecohub.complaints.intake import Submission, check, file_complaints
from ecohub.complaints.linking import LinkSettings
from ecohub.complaints.secrets import Keyring
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, Site
from ecohub.timeseries.observations import Observation

HOME = (114.5390, 38.0420)
AT = dt.datetime(2026, 11, 20, 14, 0, tzinfo=dt.UTC)  # 22:00 Beijing time
METRE_LAT = 1 / 111_195.0  # degrees of latitude per metre on the mean Earth radius


def _north(metres: float) -> tuple[float, float]:
    return HOME[0], HOME[1] + metres * METRE_LAT


def _east(metres: float) -> tuple[float, float]:
    return HOME[0] + metres * METRE_LAT / math.cos(math.radians(HOME[1])), HOME[1]


def _layout(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        made = {}
        for name, (lon, lat) in {
            "upwind": _north(800),
            "downwind": _north(-500),
            "far": _east(5000),
        }.items():
            enterprise = Enterprise(
                uscc=f"91130100MA0000{len(made):04d}", name=name, longitude=lon, latitude=lat
            )
            session.add(enterprise)
            session.flush()
            outlet = Outlet(enterprise_id=enterprise.id, code="DA001", name="1#", kind="gas")
            session.add(outlet)
            session.flush()
            point = MonitoringPoint(code=f"P-{name}", name=name, outlet_id=outlet.id)
            session.add(point)
            session.flush()
            made[name] = enterprise.id
            made[f"P-{name}"] = point.id
        station = Site(
            code="1234A", name="西北水源", kind="air", longitude=_east(-2000)[0], latitude=HOME[1]
        )
        session.add(station)
        session.flush()
        air = MonitoringPoint(code="AIR-1", name="西北水源", site_id=station.id)
        session.add(air)
        session.flush()
        made["AIR-1"] = air.id
        session.commit()
    return made


def _data(engine: Engine, made: dict[str, int]) -> None:
    rows = []
    hours = [AT - dt.timedelta(hours=1), AT, AT + dt.timedelta(hours=1)]
    for ts, so2, pm25, wind in zip(
        hours, (40.0, 60.0, 50.0), (75.0, 85.0, 95.0), (350.0, 10.0, 0.0), strict=True
    ):
        rows.append(Observation(made["P-upwind"], "a21026", "hour", ts, so2, "N", 0, "t"))
        # The flue gas flow that a source's concentration needs to count as valid.
        rows.append(Observation(made["P-upwind"], "a00000", "hour", ts, so2 + 10, "N", 0, "t"))
        rows.append(Observation(made["AIR-1"], "a34004", "hour", ts, pm25, "N", 0, "t"))
        if wind != 0.0:  # two hours of wind: 350° and 10°
            rows.append(Observation(made["AIR-1"], "a01008", "hour", ts, wind, "N", 0, "t"))
            rows.append(Observation(made["AIR-1"], "a01007", "hour", ts, 2.0, "N", 0, "t"))
    # Hours outside the ±6 h window are left out of the evidence.
    far = AT - dt.timedelta(hours=9)
    rows.append(Observation(made["P-upwind"], "a21026", "hour", far, 500.0, "N", 0, "t"))
    rows.append(Observation(made["P-upwind"], "a00000", "hour", far, 50.0, "N", 0, "t"))
    Pipeline(engine).process(rows, now=AT + dt.timedelta(hours=2))
    with engine.begin() as connection:
        connection.execute(
            insert(alarms).values(
                kind="source_exceedance",
                condition_key="test:so2",
                status="open",
                severity="warning",
                enterprise_id=made["upwind"],
                parameter_code="a21026",
                summary="SO2 above the permit",
                evidence={},
                started_at=AT - dt.timedelta(hours=2),
                last_active_at=AT,
                opened_at=AT - dt.timedelta(hours=2),
            )
        )


def test_evidence_beside_an_air_complaint(engine: Engine) -> None:
    made = _layout(engine)
    _data(engine, made)
    keys = Keyring.from_key("q" * 43 + "=")
    earlier, complaint = file_complaints(
        engine,
        keys,
        [
            check(
                Submission("noise", "工地夜间施工很吵", *_east(200), AT - dt.timedelta(days=10)),
                AT,
            ),
            check(Submission("air", "晚上一股刺鼻的化工味", *HOME, AT), AT),
        ],
        "t",
        LinkSettings(),
        now=AT,
    )
    found = evidence_for(engine, complaint.complaint_id, radius_m=3000, hours=6)
    assert found is not None
    wind = found["wind"]
    assert wind["from_deg"] in (0.0, 360.0) and wind["speed_m_s"] == 2.0 and wind["hours"] == 2
    assert wind["site"] == "西北水源" and abs(wind["distance_m"] - 2000) < 5
    names = [source["name"] for source in found["sources"]]
    assert names == ["upwind", "downwind"]  # upwind first although farther; far left out
    upwind, downwind = found["sources"]
    assert upwind["upwind"] and not downwind["upwind"]
    assert abs(upwind["distance_m"] - 800) <= 1 and abs(downwind["distance_m"] - 500) <= 1
    assert upwind["bearing_deg"] in (0, 360) and downwind["bearing_deg"] == 180
    (outlet,) = upwind["outlets"]
    so2 = next(value for value in outlet["values"] if value["parameter_code"] == "a21026")
    assert so2["unit"] == "mg/m³"
    assert (so2["hours"], so2["mean"], so2["max"]) == (3, 50.0, 60.0)
    assert [alarm["kind"] for alarm in upwind["alarms"]] == ["source_exceedance"]
    assert downwind["outlets"][0]["values"] == [] and downwind["alarms"] == []
    station = found["station"]
    pm25 = next(value for value in station["values"] if value["parameter_code"] == "a34004")
    assert station["code"] == "1234A" and pm25["mean"] == 85.0 and pm25["unit"] == "μg/m³"
    assert [item["id"] for item in found["earlier"]] == [earlier.complaint_id]
    assert found["earlier"][0]["distance_m"] == 200


def test_geometry_against_hand_values() -> None:
    # One degree of latitude on the mean Earth radius (6,371,008.8 m): 111,195 m.
    assert abs(distance_m(114.0, 38.0, 114.0, 39.0) - 111_195) < 1
    assert bearing_deg(114.0, 38.0, 114.0, 38.1) == 0.0
    assert abs(bearing_deg(114.0, 38.0, 114.1, 38.0) - 90.0) < 0.05
