"""GB 3838-2002 classes, typed from Table 1, and the 2011 assessment method."""

from __future__ import annotations

import pytest

from ecohub.standards.water import assess, parameter_class

# GB 3838-2002 Table 1, typed from the standard: key → limits of classes I-V.
NOT_ABOVE = {
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
