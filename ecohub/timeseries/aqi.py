"""AQI of a group of stations (HJ 633-2012 §5): a city's AQI comes from the mean of its
stations' concentrations of each pollutant, hourly or daily; a single station is a group
of one. Pure functions over plain data.

Input per group: rollup series code → the stations' valid values, in the store's units;
output: the groups' AQI, levels and primary pollutants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ecohub.standards.aqi import AQIResult, daily_aqi, hourly_aqi
from ecohub.timeseries.rules import AQI_PARAMETERS, O3, O3_MAX_1H, O3_MAX_8H

HOURLY_CODES = tuple(AQI_PARAMETERS)
DAILY_CODES = (*AQI_PARAMETERS, O3_MAX_8H, O3_MAX_1H)


def group_aqi(groups: Sequence[Mapping[str, Sequence[float]]], period: str) -> AQIResult:
    """The AQI of each group from the mean of its stations' values per series code."""

    def column(code: str) -> np.ndarray:
        factor = AQI_PARAMETERS[code][1] if code in AQI_PARAMETERS else 1.0
        return np.array(
            [
                float(np.mean(values)) * factor if (values := group.get(code)) else math.nan
                for group in groups
            ],
            dtype=float,
        )

    if period == "hour":
        return hourly_aqi(
            so2=column("a21026"),
            no2=column("a21004"),
            pm10=column("a34002"),
            pm25=column("a34004"),
            co=column("a21005"),
            o3=column(O3),
        )
    return daily_aqi(
        so2=column("a21026"),
        no2=column("a21004"),
        pm10=column("a34002"),
        pm25=column("a34004"),
        co=column("a21005"),
        o3_1h_max=column(O3_MAX_1H),
        o3_8h_max=column(O3_MAX_8H),
    )
