"""Alarm rules against the published criteria: GB 3095-2012 limits, the GB 13271-2014
reference-O2 formula, HJ 633-2012 category edges and the heavy-pollution warning levels
of 环办大气函〔2019〕648号."""

from __future__ import annotations

import math

import pytest

from ecohub.alarms.rules import (
    Anomaly,
    WarningLevel,
    ambient_exceedance,
    anomaly_persists,
    aqi_category,
    heavy_pollution_level,
    is_offline,
    mass_overrun,
    parse_anomaly_hours,
    source_exceedance,
)
from ecohub.registry.regions import city_code, region_prefix

NAN = math.nan


@pytest.mark.parametrize(
    ("daily_aqi", "level"),
    [
        ([250], None),  # one day over 200 is not yet a warning in the 2019 guidance
        ([150, 250, 260], WarningLevel.YELLOW),  # > 200 for 2 days (48 h)
        ([250, 260, 270], WarningLevel.ORANGE),  # > 200 for 3 days (72 h)
        ([250, 310, 260, 270], WarningLevel.ORANGE),  # 4 days but only one > 300
        ([250, 310, 320, 260], WarningLevel.RED),  # 4 days > 200 with 2 > 300
        ([500], WarningLevel.RED),  # a daily AQI reaching 500
        ([210, 220, NAN, 230], None),  # a day without AQI breaks the episode
        ([210, 220, 200], None),  # 200 is not "> 200": the episode ended
        ([], None),
    ],
)
def test_heavy_pollution_levels_follow_the_2019_guidance(daily_aqi, level) -> None:
    assert heavy_pollution_level(daily_aqi) == level


def test_forecast_days_extend_the_episode() -> None:
    observed = [180, 240]
    assert heavy_pollution_level(observed) is None
    assert heavy_pollution_level([*observed, 260, 280]) == WarningLevel.ORANGE


def test_source_exceedance_converts_to_the_reference_o2_content() -> None:
    # GB 13271-2014 (1): 100 mg/m³ measured at 12 % O2, reference 9 % → 100 × 12/9.
    judged = source_exceedance(100.0, 120.0, "mg/m³", reference_o2=9.0, measured_o2=12.0)
    assert judged is not None
    assert judged.evidence["value"] == pytest.approx(133.3333, abs=1e-4)
    assert judged.active
    assert judged.evidence["multiple"] == pytest.approx((400 / 3 - 120) / 120, abs=1e-4)
    # The logger's own converted mean wins over the conversion.
    judged = source_exceedance(100.0, 120.0, "mg/m³", reference_o2=9.0, converted_mean=110.0)
    assert judged is not None and not judged.active
    # Without any O2 a reference-O2 limit cannot be judged.
    assert source_exceedance(100.0, 120.0, "mg/m³", reference_o2=9.0) is None


def test_source_exceedance_multiple_and_severity() -> None:
    at_limit = source_exceedance(50.0, 50.0, "mg/m³")
    assert at_limit is not None and not at_limit.active  # equal to the limit complies
    double = source_exceedance(100.0, 50.0, "mg/m³")
    assert double is not None and double.active
    assert double.evidence["multiple"] == 1.0 and double.severity == "serious"


@pytest.mark.parametrize(
    ("code", "value", "period", "active", "limit"),
    [
        ("a21026", 0.500, "hour", False, 500),  # SO2 1-h 500 μg/m³ (stored in mg/m³)
        ("a21026", 0.501, "hour", True, 500),
        ("a21004", 0.201, "hour", True, 200),  # NO2 1-h 200
        ("a05024", 200.0, "hour", False, 200),  # O3 1-h 200
        ("a21005", 10.5, "hour", True, 10),  # CO 1-h 10 mg/m³
        ("a34004", 75.0, "day", False, 75),  # PM2.5 24-h 75
        ("a34004", 76.0, "day", True, 75),
        ("a34002", 151.0, "day", True, 150),  # PM10 24-h 150
        ("a05024-8hmax", 161.0, "day", True, 160),  # O3 8-h 160
    ],
)
def test_ambient_exceedance_uses_the_gb3095_grade_ii_limits(
    code: str, value: float, period: str, active: bool, limit: float
) -> None:
    judged = ambient_exceedance(code, value, period)
    assert judged is not None
    assert judged.active is active
    assert judged.evidence["limit"] == limit


def test_ambient_exceedance_grade_i_and_series_without_limits() -> None:
    judged = ambient_exceedance("a34004", 36.0, "day", grade=1)  # PM2.5 grade I 35
    assert judged is not None and judged.active
    assert ambient_exceedance("a34004", 500.0, "hour") is None  # no 1-h PM2.5 limit
    assert ambient_exceedance("a01001", 30.0, "day") is None


def test_aqi_category_threshold() -> None:
    assert aqi_category(201, 200, "PM2.5").active  # type: ignore[union-attr]
    assert not aqi_category(200, 200).active  # type: ignore[union-attr]
    assert aqi_category(None, 200) is None
    assert aqi_category(NAN, 200) is None


def test_mass_overrun() -> None:
    judged = mass_overrun(120.0, 100.0, "daily")
    assert judged.active and judged.evidence["multiple"] == pytest.approx(0.2)
    assert not mass_overrun(100.0, 100.0, "daily").active


def test_anomaly_settings_and_persistence() -> None:
    assert parse_anomaly_hours("device_flag=2, spike=3") == {
        Anomaly.DEVICE_FLAG: 2,
        Anomaly.SPIKE: 3,
    }
    with pytest.raises(ValueError, match="unknown anomaly 'smoke'"):
        parse_anomaly_hours("smoke=1")
    with pytest.raises(ValueError, match="positive integer"):
        parse_anomaly_hours("spike=0")
    assert anomaly_persists([1, 1], 1, 2)
    assert not anomaly_persists([0, 1], 1, 2)
    assert not anomaly_persists([1], 1, 2)


def test_offline_and_region_codes() -> None:
    assert is_offline(181, 60, 3.0) and not is_offline(180, 60, 3.0)
    assert city_code("130102") == "130100"
    assert city_code("110105") == "110000"  # a municipality is one city
    assert city_code("440000") == "440000"
    assert city_code(None) is None
    assert region_prefix("110000") == "11"
    assert region_prefix("130100") == "1301"
    assert region_prefix("130102") == "130102"
