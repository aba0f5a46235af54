"""GB 3838-2002 classes, typed from Table 1, and the 2011 assessment method."""

from __future__ import annotations

import pytest

from ecohub.standards.water import (
    AUTOMATIC_STATION_PARAMETERS,
    assess,
    automatic_station_class,
    parameter_class,
)

# GB 3838-2002 Table 1, typed from the standard: key → limits of classes I-V.
NOT_ABOVE: dict[str, list[float]] = {
    "CODMn": [2, 4, 6, 10, 15],
    "COD": [15, 15, 20, 30, 40],
    "BOD5": [3, 3, 4, 6, 10],
    "NH3-N": [0.15, 0.5, 1.0, 1.5, 2.0],
    "TP": [0.02, 0.1, 0.2, 0.3, 0.4],
    "TN": [0.2, 0.5, 1.0, 1.5, 2.0],
    "Cu": [0.01, 1.0, 1.0, 1.0, 1.0],
    "Zn": [0.05, 1.0, 1.0, 2.0, 2.0],
    "F": [1.0, 1.0, 1.0, 1.5, 1.5],
    "Se": [0.01, 0.01, 0.01, 0.02, 0.02],
    "As": [0.05, 0.05, 0.05, 0.1, 0.1],
    "Hg": [0.00005, 0.00005, 0.0001, 0.001, 0.001],
    "Cd": [0.001, 0.005, 0.005, 0.005, 0.01],
    "Cr6": [0.01, 0.05, 0.05, 0.05, 0.1],
    "Pb": [0.01, 0.01, 0.05, 0.05, 0.1],
    "CN": [0.005, 0.05, 0.2, 0.2, 0.2],
    "phenol": [0.002, 0.002, 0.005, 0.01, 0.1],
    "oil": [0.05, 0.05, 0.05, 0.5, 1.0],
    "LAS": [0.2, 0.2, 0.2, 0.3, 0.3],
    "S2-": [0.05, 0.1, 0.2, 0.5, 1.0],
    "fecal_coliform": [200, 2000, 10000, 20000, 40000],
}
LAKE_TP = [0.01, 0.025, 0.05, 0.1, 0.2]
DO = [7.5, 6, 5, 3, 2]


def _expected_class(limits: list[float], value: float) -> int:
    for index, bound in enumerate(limits, start=1):
        if value <= bound:
            return index
    return 6


@pytest.mark.parametrize("key", NOT_ABOVE)
def test_every_boundary_of_every_parameter(key: str) -> None:
    limits = NOT_ABOVE[key]
    for bound in limits:
        step = bound * 1e-3
        for value in (bound - step, bound, bound + step):
            assert parameter_class(key, value) == _expected_class(limits, value), (key, value)
    assert parameter_class(key, limits[-1] * 1.001) == 6  # 劣V


def test_lake_total_phosphorus() -> None:
    for index, bound in enumerate(LAKE_TP, start=1):
        assert parameter_class("TP", bound, lake=True) == index
        assert parameter_class("TP", bound * 1.001, lake=True) == index + 1
    assert parameter_class("TP", 0.05, lake=False) == 2  # a river's limits differ


def test_dissolved_oxygen_is_a_minimum() -> None:
    for index, bound in enumerate(DO, start=1):
        assert parameter_class("DO", bound) == index
        assert parameter_class("DO", bound - 0.001) == index + 1
    assert parameter_class("DO", 1.9) == 6


@pytest.mark.parametrize(
    ("value", "expected"), [(6.0, 1), (9.0, 1), (5.99, 6), (9.01, 6), (7.4, 1)]
)
def test_ph_must_lie_within_6_to_9(value: float, expected: int) -> None:
    assert parameter_class("pH", value) == expected


def test_hj212_codes_reach_the_same_parameters() -> None:
    assert parameter_class("w01018", 20) == parameter_class("COD", 20) == 3


def test_routine_assessment_is_single_factor_and_leaves_out_tn_and_coliforms() -> None:
    sample = {
        "pH": 7.6,
        "DO": 6.5,
        "CODMn": 3.8,
        "COD": 18,
        "NH3-N": 0.4,
        "TP": 0.12,
        "TN": 3.0,
        "fecal_coliform": 50000,
    }
    result = assess(sample)
    assert result.water_class == 3 and result.class_name == "III" and result.status == "良好"
    assert "TN" not in result.classes and "fecal_coliform" not in result.classes
    assert set(result.worst) == {"COD", "TP"}
    assert result.exceeding == {}
    full = assess(sample, routine=False)
    assert full.water_class == 6  # TN 3.0 and coliforms are worse than V


def test_exceeding_parameters_and_multiples_against_class_iii() -> None:
    result = assess({"COD": 30, "NH3-N": 2.5, "DO": 2.5, "pH": 7.0, "TP": 0.2})
    assert result.class_name == "劣V" and result.status == "重度污染"
    # (30-20)/20 = 0.5; (2.5-1.0)/1.0 = 1.5; DO gets no multiple
    assert result.exceeding == {"COD": 0.5, "NH3-N": 1.5}
    assert result.worst == ["NH3-N"]


@pytest.mark.parametrize(
    ("cod", "label"),
    [(15, "优"), (20, "良好"), (30, "轻度污染"), (40, "中度污染"), (41, "重度污染")],
)
def test_status_labels(cod: float, label: str) -> None:
    assert assess({"COD": cod}).status == label


def test_unknown_parameter_and_empty_sample_are_errors() -> None:
    with pytest.raises(KeyError, match="not a GB 3838-2002"):
        assess({"XYZ": 1.0})
    with pytest.raises(ValueError, match="no assessable"):
        assess({"TN": 1.0})


# The automatic stations' real-time release grades on pH, DO, CODMn, NH3-N and TP only.
def test_automatic_station_parameters() -> None:
    assert AUTOMATIC_STATION_PARAMETERS == ("pH", "DO", "CODMn", "NH3-N", "TP")


@pytest.mark.parametrize(
    ("values", "lake", "expected"),
    [
        # Table 1, typed: each parameter at its class II limit → II.
        ({"pH": 7.0, "DO": 6, "CODMn": 4, "NH3-N": 0.5, "TP": 0.1}, False, 2),
        # TP 0.1 is II in rivers, IV in lakes and reservoirs (0.01/0.025/0.05/0.1/0.2).
        ({"pH": 7.0, "DO": 6, "CODMn": 4, "NH3-N": 0.5, "TP": 0.1}, True, 4),
        ({"TP": 0.025}, True, 2),
        ({"TP": 0.026}, True, 3),
        ({"TP": 0.2}, True, 5),
        ({"TP": 0.201}, True, 6),
        ({"TP": 0.4}, False, 5),
        ({"TP": 0.401}, False, 6),
        # DO is a minimum: 7.5 I, 6 II, 5 III, 3 IV, 2 V, below 2 劣V.
        ({"DO": 7.5}, False, 1),
        ({"DO": 7.49}, False, 2),
        ({"DO": 2.0}, False, 5),
        ({"DO": 1.99}, False, 6),
        # pH outside 6-9 is 劣V whatever else.
        ({"pH": 9.01, "DO": 8, "CODMn": 1, "NH3-N": 0.1, "TP": 0.01}, False, 6),
        ({"pH": 5.99}, False, 6),
        ({"pH": 9.0, "DO": 8}, False, 1),
        # CODMn 2/4/6/10/15, NH3-N 0.15/0.5/1.0/1.5/2.0.
        ({"CODMn": 6.02}, False, 4),
        ({"CODMn": 15.01}, False, 6),
        ({"NH3-N": 0.15}, False, 1),
        ({"NH3-N": 2.01}, False, 6),
    ],
)
def test_automatic_station_class(values: dict[str, float], lake: bool, expected: int) -> None:
    found = automatic_station_class(values, lake=lake)
    assert found is not None and found.water_class == expected


def test_automatic_station_class_leaves_out_tn_and_missing_values() -> None:
    # TN 3.0 is worse than V (Table 1: 0.2/0.5/1.0/1.5/2.0) but is not graded, for rivers
    # or lakes; temperature and a missing or NaN value are left out.
    sample = {"DO": 8.0, "TP": 0.02, "TN": 3.0, "WT": 30.0, "CODMn": None, "NH3-N": float("nan")}
    river = automatic_station_class(sample)
    lake = automatic_station_class(sample, lake=True)
    assert river is not None and lake is not None
    assert (river.water_class, lake.water_class) == (1, 2)
    assert set(river.classes) == {"DO", "TP"}
    assert automatic_station_class({"TN": 3.0, "WT": 25.0}) is None
    assert automatic_station_class({}) is None
