"""Indicator 1 of the credit rating per outlet, silent monitors and mass overruns as
evidence (issue 27, review findings 7 and 1).

附件1 指标1 (大气及水污染物达标排放) rates "每个排污口监督性监测达标率": per outlet (排污口), over
the pollutants its permit limits; flow, O2, temperature and the other auxiliary series
are not pollutants and do not count. The worst outlet decides the band (≥ 90 % 第1档,
75-90 % 第2档, below 第3档, below 50 % scores 0). The demo permit of 沪东 (enterprise 2)
limits at DA001 (point P0002) SO2 a21026 50 mg/m³ and NOx a21002 150 mg/m³, at DW001
(P0003) COD w01018 500 mg/L. Every expected figure below is worked by hand from the
hourly values the test stores.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, insert, select

from ecohub.alarms.tables import alarms
from ecohub.clock import utcnow
from ecohub.ingest.pipeline import Pipeline
from ecohub.supervision import credit, evidence
from ecohub.supervision.risk import evidence_values, load_weights, risk_score
from ecohub.timeseries.observations import Observation

CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.datetime(2024, 1, 15, tzinfo=CST)
HUDONG = "91310115MA1HDEM025"
GIVEN = {"general_solid_waste": "1", "hazardous_waste": "1", "noise": "1", "siting_ecology": "1"}
# Auxiliary series of a stack (not limited by the permit): flow, O2, temperature, pressure,
# humidity, velocity, and one more.
AUXILIARY = ("a00000", "a19001", "a01012", "a01013", "a01014", "a01011", "a01002")


def _hour(point: int, code: str, hour: int, value: float) -> Observation:
    return Observation(point, code, "hour", DAY + dt.timedelta(hours=hour), value, "N", 0, "t")


def _store(engine: Engine, rows: list[Observation]) -> None:
    Pipeline(engine).process(rows, now=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))


def _outlets(engine: Engine) -> dict[str, dict]:
    start, end = DAY.astimezone(dt.UTC), (DAY + dt.timedelta(days=1)).astimezone(dt.UTC)
    found = evidence.outlet_compliance(engine, 2, start, end)
    return {item["outlet"]: item for item in found}


def test_so2_exceeding_every_hour_is_not_diluted_by_auxiliary_series(
    engine: Engine, points: dict[str, int]
) -> None:
    # 24 hours at DA001: SO2 80-91.5 mg/m³ (limit 50: every hour exceeds) and 7 auxiliary
    # series. The old rate, 1 − 24 / (8 × 24) = 87.5 %, was band 2; per outlet over the
    # limited pollutants it is 1 − 24 / 24 = 0 % → below 50 % → 0 分.
    rows = [_hour(points["P0002"], "a21026", h, 80 + h / 2) for h in range(24)]
    for number, code in enumerate(AUXILIARY):
        rows += [_hour(points["P0002"], code, h, 10 + number + h / 10) for h in range(24)]
    _store(engine, rows)
    outlet = _outlets(engine)["DA001"]
    assert (outlet["valid_hours"], outlet["exceedance_hours"]) == (24, 24)
    assert outlet["compliance"] == 0
    assert [p["parameter"] for p in outlet["pollutants"]] == ["a21026"]
    assert _outlets(engine)["DW001"]["compliance"] is None  # no data: not rated
    rated = credit.rate(engine, HUDONG, 2024, "agency:t", GIVEN)
    row = next(i for i in rated["explanation"]["indicators"] if i["key"] == "air_water_compliance")
    assert row["result"] == 0 and row["score"] == 0
    assert row["evidence"]["worst_outlet"] == "DA001"
    with engine.connect() as connection:
        exceedances = connection.execute(
            select(alarms.c.id).where(alarms.c.kind == "source_exceedance")
        ).scalars()
        assert row["evidence"]["alarms"] == sorted(exceedances)
    # 80 × 16 / 31 = 41.29 (band 1 floors of the other four indicators, weight 16 of 31).
    assert rated["explanation"]["score"] == "41.29" and rated["grade"] == "red"


def test_the_worst_outlet_decides(engine: Engine, points: dict[str, int]) -> None:
    # DA001: SO2 exceeds in hours 0 and 1 (2 of 24), NOx within its limit all day:
    # 1 − 2 / 48 = 95.83 % (band 1). DW001: COD above 500 mg/L in hours 0-2 (3 of 24):
    # 1 − 3 / 24 = 87.5 % (band 2); flows (a00000, w00000) do not count. The worst
    # outlet, DW001, decides: band 2 (50 分).
    rows = [_hour(points["P0002"], "a21026", h, 60 + h if h < 2 else 20 + h / 4) for h in range(24)]
    rows += [_hour(points["P0002"], "a21002", h, 100 + h) for h in range(24)]
    rows += [_hour(points["P0002"], "a00000", h, 1000 + h) for h in range(24)]
    rows += [_hour(points["P0003"], "w01018", h, 600 + h if h < 3 else 200 + h) for h in range(24)]
    rows += [_hour(points["P0003"], "w00000", h, 50 + h) for h in range(24)]  # flow
    _store(engine, rows)
    found = _outlets(engine)
    assert (found["DA001"]["valid_hours"], found["DA001"]["exceedance_hours"]) == (48, 2)
    assert found["DA001"]["compliance"] == pytest.approx(46 / 48, abs=1e-4)
    assert (found["DW001"]["valid_hours"], found["DW001"]["exceedance_hours"]) == (24, 3)
    assert found["DW001"]["compliance"] == 0.875
    measured = credit.measured_indicator(engine, 2, 2024)
    assert (measured["result"], measured["worst_outlet"]) == ("2", "DW001")


def test_silent_monitors_are_wholly_missing(engine: Engine, points: dict[str, int]) -> None:
    # Nothing stored. 京西 (enterprise 1): P0001 at DA001 under 3 permit limits (a34013,
    # a21026, a21002), every 60 s: 3 × 1,440 values expected a day, none received.
    start, end = DAY.astimezone(dt.UTC), (DAY + dt.timedelta(days=1)).astimezone(dt.UTC)
    found = evidence.gather(engine, start, end, [1])[1].as_dict()
    assert found["silent_series"] == 3
    assert (found["transmission_rate"], found["effective_rate"]) == (0, 0)
    parts = {
        p["component"]: p for p in risk_score(evidence_values(found), load_weights())["components"]
    }
    # 90 % target: shortfall 0.9 − 0 = 0.9 ≥ cap 0.5 → scaled 1; weight 10 of 110.
    assert parts["transmission_gap"]["counted"] == pytest.approx(0.9)
    assert parts["transmission_gap"]["points"] == pytest.approx(100 * 10 / 110, abs=0.01)


def test_the_transmission_target_counts_only_the_shortfall() -> None:
    weights = load_weights()
    base = {
        "exceedance_hours": 0,
        "max_exceedance_multiple": 0,
        "anomaly_hours": 0,
        "offline_hours": 0,
        "penalties": 0,
        "overdue_rectifications": 0,
    }

    def gap_points(rate: float) -> float:
        values = evidence_values({**base, "transmission_rate": rate})
        parts = risk_score(values, weights)["components"]
        return next(p["points"] for p in parts if p["component"] == "transmission_gap")

    assert gap_points(0.95) == 0  # above the 90 % target
    assert gap_points(0.90) == 0
    # 0.9 − 0.7 = 0.2 of cap 0.5 → 0.4; × 10 × 100 / 110 = 3.64.
    assert gap_points(0.70) == pytest.approx(3.64)


def test_mass_overruns_count_as_evidence(engine: Engine, points: dict[str, int]) -> None:
    now = utcnow()
    with engine.begin() as connection:
        alarm_id = connection.execute(
            insert(alarms)
            .values(
                kind="mass_overrun",
                condition_key="mass/test",
                status="open",
                severity="warning",
                point_id=points["P0002"],
                enterprise_id=2,
                parameter_code="a21026",
                summary="日排放量超许可",
                evidence={"emitted_kg": 12.0, "permitted_kg": 10.0},
                started_at=now - dt.timedelta(hours=3),
                last_active_at=now - dt.timedelta(hours=2),
                opened_at=now - dt.timedelta(hours=3),
            )
            .returning(alarms.c.id)
        ).scalar_one()
    found = evidence.gather(engine, now - dt.timedelta(days=1), now, [2])[2].as_dict()
    assert found["mass_overruns"] == 1
    assert found["sources"]["alarms"]["mass_overrun"] == [alarm_id]
    parts = {
        p["component"]: p for p in risk_score(evidence_values(found), load_weights())["components"]
    }
    # One of cap 2, weight 10 of 110: 100 × 10 × 0.5 / 110 = 4.55 points.
    assert parts["mass_overruns"]["points"] == pytest.approx(4.55)
