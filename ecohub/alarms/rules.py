"""Alarm rules as plain functions over plain data: is a condition active, how severe,
with what evidence.

Each rule judges one period (an hour or a day) of one subject and returns a
:class:`Judgement`; :mod:`ecohub.alarms.lifecycle` turns a sequence of judgements into
alarms that open once, carry their evidence and close when the condition clears.

References
----------
- Pollution-source exceedance: 排污许可管理条例 (2021) and the permit's limits; reference
  O2 conversion per GB 13271-2014 formula (1), see :mod:`ecohub.standards.emission`.
  Exceedance multiple (超标倍数) = (C − L) / L.
- Ambient exceedance: GB 3095-2012 Tables 1 and 2 (grade II), via
  :func:`ecohub.standards.air_assessment.limit`.
- AQI category: HJ 633-2012 Table 2.
- Heavy-pollution warning: 生态环境部《关于加强重污染天气应对夯实应急减排措施的指导意见》
  (环办大气函〔2019〕648号), 预警分级标准:
  yellow — daily AQI > 200 for 2 days (48 h) or more;
  orange — daily AQI > 200 for 3 days (72 h) or more;
  red — daily AQI > 200 for 4 days (96 h) or more and > 300 for 2 days (48 h) or more,
  or a daily AQI reaching 500.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ecohub.quality.flags import QualityFlag
from ecohub.standards.air_assessment import limit as gb3095_limit
from ecohub.standards.emission import reference_oxygen_concentration
from ecohub.timeseries.rules import AQI_PARAMETERS, O3_MAX_8H

O2_CODE = "a19001"  # 氧气含量 (%), HJ 212-2017


@dataclass(frozen=True)
class Judgement:
    """One rule's verdict on one period of one subject."""

    active: bool
    severity: str = "warning"
    evidence: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


# --- pollution sources -------------------------------------------------------------


def exceedance_multiple(concentration: float, limit: float) -> float:
    """超标倍数: (C − L) / L."""
    return (concentration - limit) / limit


def source_exceedance(
    hourly_mean: float,
    limit: float,
    unit: str,
    *,
    reference_o2: float | None = None,
    measured_o2: float | None = None,
    converted_mean: float | None = None,
) -> Judgement | None:
    """An outlet's hourly mean against its permitted concentration limit.

    Where the limit is stated at a reference O2 content the converted value is compared:
    the logger's own converted mean (``-ZsAvg``) when it sent one, else the mean
    converted with the hour's measured O2. Returns None when a reference O2 is required
    and neither is available (the hour cannot be judged).
    """
    compared = hourly_mean
    basis = "measured"
    if reference_o2 is not None:
        if converted_mean is not None:
            compared, basis = converted_mean, "converted by the logger"
        elif measured_o2 is not None and 0 <= measured_o2 < 21:
            compared = reference_oxygen_concentration(hourly_mean, measured_o2, reference_o2)
            basis = f"converted to {reference_o2:g}% O2"
        else:
            return None
    multiple = exceedance_multiple(compared, limit)
    severity = "serious" if multiple >= 1.0 else "warning"
    return Judgement(
        active=compared > limit,
        severity=severity,
        evidence={
            "value": round(compared, 4),
            "measured": round(hourly_mean, 4),
            "limit": limit,
            "unit": unit,
            "multiple": round(multiple, 4),
            "basis": basis,
        },
        summary=f"{compared:.4g} {unit} vs permitted {limit:g} {unit} (×{multiple:+.2f})",
    )


def mass_overrun(emitted_kg: float, permitted_kg: float, period: str) -> Judgement:
    """Emitted mass (the sum of ``-Cou`` values) against a permitted mass."""
    multiple = exceedance_multiple(emitted_kg, permitted_kg)
    return Judgement(
        active=emitted_kg > permitted_kg,
        severity="serious" if multiple >= 0.5 else "warning",
        evidence={
            "value": round(emitted_kg, 3),
            "limit": permitted_kg,
            "unit": "kg",
            "multiple": round(multiple, 4),
            "period": period,
        },
        summary=f"{period} emitted {emitted_kg:.4g} kg vs permitted {permitted_kg:g} kg",
    )


# --- ambient air -------------------------------------------------------------------

# Rollup series → (GB 3095 pollutant, period in the standard, factor to its unit).
AMBIENT_HOURLY: dict[str, tuple[str, str, float]] = {
    "a21026": ("SO2", "1h", AQI_PARAMETERS["a21026"][1]),
    "a21004": ("NO2", "1h", AQI_PARAMETERS["a21004"][1]),
    "a21005": ("CO", "1h", 1.0),
    "a05024": ("O3", "1h", 1.0),
}
AMBIENT_DAILY: dict[str, tuple[str, str, float]] = {
    "a21026": ("SO2", "24h", AQI_PARAMETERS["a21026"][1]),
    "a21004": ("NO2", "24h", AQI_PARAMETERS["a21004"][1]),
    "a21005": ("CO", "24h", 1.0),
    "a34002": ("PM10", "24h", 1.0),
    "a34004": ("PM2.5", "24h", 1.0),
    O3_MAX_8H: ("O3", "8h", 1.0),
}


def ambient_exceedance(code: str, value: float, period: str, grade: int = 2) -> Judgement | None:
    """A station's hourly or daily value against the GB 3095-2012 limit of its grade
    (None when the standard has no limit for that series and period)."""
    table = AMBIENT_HOURLY if period == "hour" else AMBIENT_DAILY
    if code not in table:
        return None
    pollutant, standard_period, factor = table[code]
    limit = gb3095_limit(pollutant, standard_period, grade)
    concentration = value * factor
    unit = "mg/m³" if pollutant == "CO" else "μg/m³"
    multiple = exceedance_multiple(concentration, limit)
    return Judgement(
        active=concentration > limit,
        severity="serious" if multiple >= 1.0 else "warning",
        evidence={
            "value": round(concentration, 3),
            "limit": limit,
            "unit": unit,
            "multiple": round(multiple, 4),
            "pollutant": pollutant,
            "standard_period": standard_period,
        },
        summary=(
            f"{pollutant} {standard_period} {concentration:.4g} {unit} "
            f"vs GB 3095 limit {limit:g} (×{multiple:+.2f})"
        ),
    )


def aqi_category(aqi: float | None, threshold: int, primary: str = "") -> Judgement | None:
    """A station's hourly AQI above ``threshold`` (HJ 633-2012 Table 2 category edges:
    100 light, 150 moderate, 200 heavy, 300 severe pollution)."""
    if aqi is None or math.isnan(aqi):
        return None
    severity = "serious" if aqi > 300 else "warning"
    return Judgement(
        active=aqi > threshold,
        severity=severity,
        evidence={"aqi": int(aqi), "threshold": threshold, "primary_pollutants": primary},
        summary=f"AQI {int(aqi)} above {threshold} (primary: {primary or '-'})",
    )


# --- data anomalies ----------------------------------------------------------------


class Anomaly(enum.StrEnum):
    """Quality-control findings that raise an alarm when they persist."""

    DEVICE_FLAG = "device_flag"
    FLAT_LINE = "flat_line"
    ZERO_FLOW = "zero_flow"
    SPIKE = "spike"


ANOMALY_BITS: dict[Anomaly, int] = {
    Anomaly.DEVICE_FLAG: int(QualityFlag.DEVICE_FLAG),
    Anomaly.FLAT_LINE: int(QualityFlag.FLAT_LINE),
    Anomaly.ZERO_FLOW: int(QualityFlag.ZERO_FLOW),
    Anomaly.SPIKE: int(QualityFlag.SPIKE),
}


def parse_anomaly_hours(spec: str) -> dict[Anomaly, int]:
    """``"device_flag=2,flat_line=1"`` → hours each anomaly must last to raise an alarm."""
    hours: dict[Anomaly, int] = {}
    for part in filter(None, (item.strip() for item in spec.split(","))):
        name, _, count = part.partition("=")
        try:
            anomaly = Anomaly(name.strip())
        except ValueError:
            known = ", ".join(member.value for member in Anomaly)
            raise ValueError(f"unknown anomaly {name.strip()!r} (known: {known})") from None
        if not count.strip().isdigit() or int(count) < 1:
            raise ValueError(f"anomaly {name.strip()}: hours must be a positive integer")
        hours[anomaly] = int(count)
    return hours


def anomaly_persists(hourly_flags: Sequence[int], bit: int, hours: int) -> bool:
    """Whether the last ``hours`` hours (oldest first, the judged hour last) all have a
    value flagged with ``bit``."""
    if len(hourly_flags) < hours:
        return False
    return all(flags & bit for flags in hourly_flags[-hours:])


# --- offline -----------------------------------------------------------------------


def is_offline(silent_seconds: float, interval_seconds: int, multiple: float) -> bool:
    """A point is offline when silent longer than ``multiple`` of its reporting interval."""
    return silent_seconds > multiple * interval_seconds


# --- heavy-pollution warning -------------------------------------------------------


class WarningLevel(enum.IntEnum):
    """重污染天气预警级别 (环办大气函〔2019〕648号), lowest to highest."""

    YELLOW = 1
    ORANGE = 2
    RED = 3

    @property
    def label_zh(self) -> str:
        return {1: "黄色预警", 2: "橙色预警", 3: "红色预警"}[self.value]


def heavy_pollution_level(daily_aqi: Sequence[float]) -> WarningLevel | None:
    """The warning level of the heavy-pollution episode that ends with the last day of
    ``daily_aqi`` (consecutive daily AQIs, oldest first; NaN for a day without one).

    The episode is the run of consecutive days with AQI > 200 ending on the last day.
    Pass observed days followed by forecast days to judge a forecast (the guidance
    judges predicted AQI; from observed data the level says what the episode has been).
    """
    run: list[float] = []
    for value in reversed(daily_aqi):
        if value is None or math.isnan(value) or value <= 200:
            break
        run.append(value)
    if not run:
        return None
    over_300 = sum(1 for value in run if value > 300)
    if max(run) >= 500 or (len(run) >= 4 and over_300 >= 2):
        return WarningLevel.RED
    if len(run) >= 3:
        return WarningLevel.ORANGE
    if len(run) >= 2:
        return WarningLevel.YELLOW
    return None


def anomaly_summary(anomaly: Anomaly, hours: int, series: list[str]) -> str:
    """The one-line summary of an anomaly alarm."""
    what = {
        Anomaly.DEVICE_FLAG: "device not measuring (HJ 212 flag F/M/S/D/C/B)",
        Anomaly.FLAT_LINE: "flat line",
        Anomaly.ZERO_FLOW: "concentrations with zero flow",
        Anomaly.SPIKE: "spikes",
    }[anomaly]
    return f"{what} for {hours} h: {', '.join(series) or '-'}"


# --- password guessing on the HJ 212 gateway ------------------------------------------


def password_guessing(
    target: str, failures: int, window_seconds: float, blocked_seconds: float, peers: list[str]
) -> Judgement:
    """Wrong HJ 212 passwords (or unknown MNs) enough to block ``target`` (an MN or a
    sender address): GB/T 22239-2019 (网络安全等级保护基本要求) 8.1.4.1 b) asks for
    登录失败处理 — limiting failed log-ins and ending the session — and the agency wants to
    know that someone is guessing. Serious from 100 failures in the window."""
    return Judgement(
        active=True,
        severity="serious" if failures >= 100 else "warning",
        evidence={
            "target": target,
            "failures": failures,
            "window_seconds": window_seconds,
            "blocked_seconds": blocked_seconds,
            "peers": peers[:20],
        },
        summary=f"{failures} wrong passwords for {target} in {window_seconds / 60:.0f} min: "
        f"blocked for {blocked_seconds / 60:.0f} min",
    )


def describe(kind: str, evidence: dict[str, Any], lang: str = "zh") -> str | None:
    """An alarm's evidence in words of ``lang`` (zh or en), from its peak period: the
    value with its unit, the limit and the exceedance multiple ((C − S)/S, HJ 663-2013
    / GB 3095-2012 usage), the AQI and its threshold, the silence of an offline point.
    None when the evidence has nothing this knows how to say."""
    peak = evidence.get("peak") or evidence
    zh = lang != "en"
    if "multiple" in peak and "limit" in peak:
        unit = peak.get("unit", "")
        if zh:
            return (
                f"峰值 {peak.get('value'):g} {unit}，限值 {peak['limit']:g} {unit}，"
                f"超标倍数 {peak['multiple']:.2f}"
            )
        return (
            f"peak {peak.get('value'):g} {unit}, limit {peak['limit']:g} {unit}, "
            f"exceedance multiple {peak['multiple']:.2f}"
        )
    if "aqi" in peak and "threshold" in peak:
        primary = (
            ", ".join(peak.get("primary_pollutants") or [])
            if isinstance(peak.get("primary_pollutants"), list)
            else peak.get("primary_pollutants") or "-"
        )
        if zh:
            return f"AQI {peak['aqi']}（阈值 {peak['threshold']}），首要污染物 {primary}"
        return f"AQI {peak['aqi']} (threshold {peak['threshold']}), primary pollutant {primary}"
    if "failures" in peak and "target" in peak:
        minutes = round(peak.get("blocked_seconds", 0) / 60)
        if zh:
            return f"{peak['target']} 口令错误 {peak['failures']} 次，已封禁 {minutes} 分钟"
        return f"{peak['failures']} wrong passwords for {peak['target']}, blocked for {minutes} min"
    if "case_id" in peak and "due" in peak:
        if zh:
            return (
                f"案件 #{peak['case_id']}「{peak.get('title', '')}」{peak.get('name_zh', '')}"
                f"期限 {peak['due']}，已超期 {peak.get('days_over')} 天"
                f"（{peak.get('citation', '')}）"
            )
        return (
            f'case #{peak["case_id"]} "{peak.get("title", "")}": {peak.get("step")} was due '
            f"{peak['due']}, {peak.get('days_over')} days over ({peak.get('citation', '')})"
        )
    if "silent_seconds" in peak:
        minutes = round(peak["silent_seconds"] / 60)
        if zh:
            return f"已离线 {minutes} 分钟（上报间隔 {peak.get('interval_seconds')} 秒）"
        return f"silent for {minutes} min (reporting interval {peak.get('interval_seconds')} s)"
    return None
