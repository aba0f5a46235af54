"""Pollution-source emission checks: reference-oxygen correction and permit limits.

Boiler and power-plant standards state limits at a reference O2 content; a measured
concentration is converted before comparison (GB 13271-2014 formula (1); GB 13223-2011):

    ρ = ρ′ × (21 − φ(O2)_ref) / (21 − φ′(O2))

with ρ′ the measured concentration and φ′(O2) the measured oxygen content (%).
"""

from __future__ import annotations

from dataclasses import dataclass

# Reference O2 contents (%) of common source standards.
REFERENCE_O2 = {
    "coal_boiler": 9.0,  # GB 13271-2014 燃煤锅炉
    "oil_gas_boiler": 3.5,  # GB 13271-2014 燃油、燃气锅炉
    "coal_power": 6.0,  # GB 13223-2011 燃煤锅炉 (火电厂)
    "gas_turbine": 15.0,  # GB 13223-2011 燃气轮机组
}


def reference_oxygen_concentration(
    measured: float, measured_o2: float, reference_o2: float
) -> float:
    """Concentration converted to the reference O2 content (基准氧含量折算)."""
    if not 0 <= measured_o2 < 21:
        raise ValueError(f"measured O2 {measured_o2}% must be in [0, 21)")
    return measured * (21 - reference_o2) / (21 - measured_o2)


@dataclass(frozen=True)
class LimitCheck:
    concentration: float  # as compared (converted where a reference O2 was given)
    limit: float
    exceeded: bool
    multiple: float  # (C − L)/L


def check_limit(
    hourly_mean: float,
    limit: float,
    *,
    measured_o2: float | None = None,
    reference_o2: float | None = None,
) -> LimitCheck:
    """Compare an hourly mean with a permitted concentration limit, converting to the
    reference O2 content first when one is given."""
    if limit <= 0:
        raise ValueError("a limit must be positive")
    concentration = hourly_mean
    if reference_o2 is not None:
        if measured_o2 is None:
            raise ValueError("a reference O2 content needs the measured O2 content")
        concentration = reference_oxygen_concentration(hourly_mean, measured_o2, reference_o2)
    multiple = (concentration - limit) / limit
    return LimitCheck(concentration, limit, concentration > limit, multiple)
