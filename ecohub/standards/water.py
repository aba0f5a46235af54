"""Surface water quality classes per GB 3838-2002 (地表水环境质量标准) and the routine
assessment of the Surface Water Environmental Quality Assessment Method (地表水环境质量
评价办法（试行）, 环办〔2011〕22号).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from ecohub.standards.tables import read_table

CLASS_NAMES = ("I", "II", "III", "IV", "V", "劣V")
WORSE_THAN_V = 6
# The 2011 method, 3.1: status by class (I-II 优, III 良好, IV 轻度污染, V 中度污染,
# 劣V 重度污染) and the colours it assigns.
STATUS = {1: "优", 2: "优", 3: "良好", 4: "轻度污染", 5: "中度污染", 6: "重度污染"}
STATUS_EN = {
    1: "excellent",
    2: "excellent",
    3: "good",
    4: "lightly polluted",
    5: "moderately polluted",
    6: "heavily polluted",
}
STATUS_COLOUR = {1: "#00B4FF", 2: "#00B4FF", 3: "#00FF00", 4: "#FFFF00", 5: "#FF7E00", 6: "#FF0000"}


@dataclass(frozen=True)
class WaterParameter:
    """One row of GB 3838-2002 Table 1."""

    key: str
    hj212: str | None
    name_zh: str
    name_en: str
    unit: str
    direction: str  # max, min or range
    limits: tuple[float, ...]  # classes I-V ("range": the lower bound of 6-9)
    lake_limits: tuple[float, ...] | None
    assessed: bool
    multiple: bool
    range_high: float | None = None


@cache
def water_parameters() -> dict[str, WaterParameter]:
    """GB 3838-2002 Table 1 by EcoHub key (also reachable by HJ 212 code)."""
    parameters: dict[str, WaterParameter] = {}
    for row in read_table("gb3838_limits"):
        classes = [row[f"class_{i}"] for i in range(1, 6)]
        high = None
        if row["direction"] == "range":
            low_text, high_text = classes[0].split("-")
            limits = tuple(float(low_text) for _ in classes)
            high = float(high_text)
        else:
            limits = tuple(float(value) for value in classes)
        lake = [row[f"lake_{i}"] for i in range(1, 6)]
        parameter = WaterParameter(
            key=row["key"],
            hj212=row["hj212"] or None,
            name_zh=row["name_zh"],
            name_en=row["name_en"],
            unit=row["unit"],
            direction=row["direction"],
            limits=limits,
            lake_limits=tuple(float(v) for v in lake) if all(lake) else None,
            assessed=row["assessed"] == "1",
            multiple=row["multiple"] == "1",
            range_high=high,
        )
        parameters[parameter.key] = parameter
        if parameter.hj212:
            parameters[parameter.hj212] = parameter
    return parameters


def parameter_class(key: str, value: float, *, lake: bool = False) -> int:
    """The class (1-5, or 6 for 劣V) of one measured value: the best class whose limit
    it meets (GB 3838-2002 Table 1; lakes and reservoirs use their own TP limits)."""
    parameter = water_parameters()[key]
    if math.isnan(value):
        raise ValueError(f"{key}: no value")
    if parameter.direction == "range":
        assert parameter.range_high is not None
        return 1 if parameter.limits[0] <= value <= parameter.range_high else WORSE_THAN_V
    limits = parameter.lake_limits if lake and parameter.lake_limits else parameter.limits
    for index, bound in enumerate(limits, start=1):
        if (value <= bound) if parameter.direction == "max" else (value >= bound):
            return index
    return WORSE_THAN_V


@dataclass
class WaterAssessment:
    """Single-factor assessment of one sample or period mean (单因子评价法)."""

    water_class: int  # 1-6 (6 = 劣V)
    classes: dict[str, int]  # each assessed parameter's class
    exceeding: dict[str, float] = field(default_factory=dict)  # key → exceedance multiple
    worst: list[str] = field(default_factory=list)  # parameters setting the class

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.water_class - 1]

    @property
    def status(self) -> str:
        return STATUS[self.water_class]

    @property
    def status_en(self) -> str:
        return STATUS_EN[self.water_class]


def assess(
    values: Mapping[str, float],
    *,
    lake: bool = False,
    routine: bool = True,
    target_class: int = 3,
) -> WaterAssessment:
    """Overall class of a section: the worst class among its parameters (2011 method,
    3.1, 单因子评价). With ``routine`` only the method's 21 parameters count (not water
    temperature, total nitrogen or faecal coliforms). Parameters worse than
    ``target_class`` (class III, the method's reference) are the exceeding parameters,
    with exceedance multiple (C − S_III)/S_III; pH and DO get no multiple (3.3).
    """
    table = water_parameters()
    classes: dict[str, int] = {}
    exceeding: dict[str, float] = {}
    for key, value in values.items():
        if key not in table:
            raise KeyError(f"{key!r} is not a GB 3838-2002 Table 1 parameter")
        parameter = table[key]
        if routine and not parameter.assessed:
            continue
        if value is None or math.isnan(value):
            continue
        found = parameter_class(key, value, lake=lake)
        classes[parameter.key] = found
        if found > target_class and parameter.multiple:
            limits = parameter.lake_limits if lake and parameter.lake_limits else parameter.limits
            standard = limits[target_class - 1]
            exceeding[parameter.key] = round((value - standard) / standard, 2)
    if not classes:
        raise ValueError("no assessable parameter values")
    worst_class = max(classes.values())
    return WaterAssessment(
        water_class=worst_class,
        classes=classes,
        exceeding=exceeding,
        worst=[key for key, found in classes.items() if found == worst_class],
    )


# The parameters the national surface-water automatic stations' real-time release
# (国家地表水水质自动监测实时数据发布系统, CNEMC) grades on: the five of GB 3838-2002
# Table 1 that the stations measure and that the 2011 method assesses. Total nitrogen is
# published but counts for neither rivers nor lakes and reservoirs; water temperature,
# conductivity, turbidity, chlorophyll-a and algal density have no class. Established on
# the release of 2026-08-21 (docs/standards.md, "validation on the national automatic
# stations' release").
AUTOMATIC_STATION_PARAMETERS = ("pH", "DO", "CODMn", "NH3-N", "TP")


def automatic_station_class(
    values: Mapping[str, float | None], *, lake: bool = False
) -> WaterAssessment | None:
    """The class of one automatic-station reading as the real-time release grades it:
    single-factor (worst of) pH, DO, CODMn, NH3-N and TP on GB 3838-2002 Table 1, TP on
    the lake and reservoir limits where ``lake``; a missing parameter (not measured, or
    failed quality control) is left out, and other keys (TN, temperature, …) are
    ignored. ``None`` when none of the five has a value (the release's class -1).
    """
    graded = {
        key: value
        for key in AUTOMATIC_STATION_PARAMETERS
        if (value := values.get(key)) is not None and not math.isnan(value)
    }
    return assess(graded, lake=lake) if graded else None
