"""Emission limit checks with reference-oxygen correction."""

from __future__ import annotations

import pytest

from ecohub.standards.emission import REFERENCE_O2, check_limit, reference_oxygen_concentration


def test_reference_oxygen_conversion_by_hand() -> None:
    # Coal boiler (9 % O2 reference), 30 mg/m³ measured at 12 % O2: 30 × 12/9 = 40
    assert reference_oxygen_concentration(30, 12, REFERENCE_O2["coal_boiler"]) == pytest.approx(40)
    # Gas boiler (3.5 %), 20 mg/m³ at 7.5 % O2: 20 × 17.5/13.5
    assert reference_oxygen_concentration(20, 7.5, 3.5) == pytest.approx(25.925925925)
    with pytest.raises(ValueError):
        reference_oxygen_concentration(20, 21, 3.5)


def test_limit_check_with_and_without_correction() -> None:
    plain = check_limit(40, 35)
    assert plain.exceeded and plain.multiple == pytest.approx(5 / 35)
    corrected = check_limit(30, 35, measured_o2=12, reference_o2=9)
    assert corrected.concentration == pytest.approx(40) and corrected.exceeded
    assert not check_limit(30, 35).exceeded
    with pytest.raises(ValueError, match="measured O2"):
        check_limit(30, 35, reference_o2=9)
