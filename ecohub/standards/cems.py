"""Emissions accounting from continuous emission monitoring (CEMS) hourly data.

What it is for: a pollutant's hourly series at an outlet (concentration, flow and the state
of each hour) becomes hourly masses, substituted where the rules found say so, and the
totals a page shows: mass emitted, hours measured, substituted, shut down and left
unresolved, so that the share of measured hours is never hidden behind a total.

Sources, as read (quoted; where a clause was read only in a secondary copy it says so):

1. Mass of an hour of flue gas. A 排污许可证申请与核发技术规范, 附录E（资料性附录）废气、废水
   污染物排放量核算方法, E.1 废气 (1) 采用自动监测数据核算, formula (E1) (the standard's
   number was not read; copy at http://m.cornels-photography.com/paper/239693171.html):
   E_j = Σ_{i=1..T} C_{i,j} × Q_i × 10⁻⁹, "Ej——核算时段内排放口第j项污染物的实际排放量，t；
   Ci,j——第j项污染物在第i小时标准状态下干烟气量对应的实测平均排放浓度，mg/Nm3；Qi——第i
   小时的标准状态下干排气量，Nm3/h；T——核算时段内的污染物排放时间，h". One hour's term in kg
   is C × Q × 10⁻⁶ (:func:`hourly_mass_kg`); a day, month or year is the sum of its hours
   (:func:`totals_by_key`); hours that are not 排放时间 (shutdown) add nothing.
2. Mass of wastewater: "E=Q×C×10-6 … E—某周期内污染物实际排放量，t；Q—某周期内某排放口废水
   排放量，t；C—污染物排放浓度，mg/L" (https://m.3dmxku.com/daquan/zonghe/9813365.html), so
   C × Q × 10⁻³ kg with Q in m³ (:func:`mass_kg`).
3. Which data count. A 排污许可证申请与核发技术规范 (环保部, reproduced 2017-08-29 at
   http://www.clhhj.com/news/263015_11.html), 9.1 一般规定: "排污许可证要求应采用自动监测的
   污染物项目，根据符合监测规范的有效自动监测数据核算实际排放量。对于排污许可证中载明应采用
   自动监测的排放口或污染物而未采用的，按直排核算排放量。" and 9.2.1 a): "对于因自动监控设施
   发生故障以及其他情况导致数据缺失的按照HJ/T75进行补[遗]". Direct-discharge accounting
   (按直排核算) needs production data and is not implemented here.
4. The short-gap substitution of HJ/T 75-2007 (superseded by HJ 75-2017), read only as
   paraphrased by Tang et al. 2020, Sci. Data 7:325, Table 4
   (https://preview-www.nature.com/articles/s41597-020-00665-1/tables/5): "The guideline
   (HJ/T 75-2007) suggests setting missing data lasting for 1–24 hour(s) to the arithmetic
   mean of the two nearest valid points before and after them" and, for longer gaps, "It
   suggests no interpolation for successive missing data of emission concentrations lasting
   for above 24 hours during operation" (:data:`Basis.SHORT_GAP`).
5. Missing periods in the same 附录E E.1 (1) as 1.: "对于因自动监控设施发生故障以及其他情况导致
   数据缺失的按HJ/T75进行补遗。缺失时段超过25%的自动监测数据不能作为实际排放量的依据，实际
   排放量“按照要求采用自动监测的排放口或污染因子而未采用”的相关规定进行计算。排污单位提供充分
   证据证明在线数据缺失、数据非正常等不是排污单位责任的，可按照排污单位提供的手工监测数据等
   核算实际排放量，或者按照上一个半年申报期间的稳定运行期间自动监测数据的小时浓度均值和半年
   平均烟气量，核算数据缺失时段的实际排放量。" (:class:`PriorHalfYear`,
   :attr:`Accounting.usable_as_basis`).
6. Validity of means. HJ 76-2017 附录B, quoted by a CEMS vendor
   (http://www.caria-chile.com/st85257/article_812098.html, traditional characters, quoted
   here in simplified): "小时数据应包含本小时内至少45min的分钟有效数据，数据为该时段的平均值；
   日数据应包含本日至少20h的小时有效数据…；月数据应包含本月至少25天（其中二月份至少23天）的日
   有效数据" and "CEMS日报表、月报表和年报表中的污染物浓度、烟气流量和烟气含氧量均为干基标准
   状态值" (:func:`hour_is_valid`, :func:`day_is_valid`, :func:`month_is_valid`).
7. Hour states from the HJ 212-2017 data flags (数据标记, table 7, as the codec and the
   observation table carry them): N normal, F 停运, M 维护, S 手工输入的设定值, D 故障,
   C 校准, T 超测上限, B 通讯异常 (:func:`state_from_hj212_flag`).

Not found, so not implemented: the text of HJ 75-2017 itself (its tables for 失控 and
缺失 periods, e.g. a longer-gap rule taking a maximum over previous valid hours, keyed on a
quarterly capture rate: one vendor's code applies 180/720/2160 hours, but the standard's
words were not read), any flag list of HJ 75-2017, what HJ 76-2017 adds beyond 附录B, the
补遗 rules of HJ 356-2019 / HJ/T 356 for wastewater (so wastewater hours are never
substituted here), HJ 819 and HJ 944. All thresholds are in ``data/cems_thresholds.csv``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TypeVar

from ecohub.standards.tables import read_table

K = TypeVar("K", bound=Hashable)


@cache
def thresholds() -> dict[str, float]:
    """The rules' numbers from ``data/cems_thresholds.csv`` (key → value)."""
    return {row["key"]: float(row["value"]) for row in read_table("cems_thresholds")}


def hourly_mass_kg(concentration_mg_m3: float, flow_m3_h: float) -> float:
    """Mass emitted in one hour, kg: C × Q × 10⁻⁶.

    附录E formula (E1), one hour's term (E1 gives tonnes, C × Q × 10⁻⁹): C is the hour's
    mean concentration at standard conditions, dry (mg/Nm³), Q the hour's dry flue-gas flow
    at standard conditions (Nm³/h).
    """
    return concentration_mg_m3 * flow_m3_h * 1e-6


def mass_kg(concentration_mg_l: float, flow_m3_h: float) -> float:
    """Mass of a pollutant in one hour of wastewater, kg: C × Q × 10⁻³.

    "E=Q×C×10-6" with E in t, Q in t of water and C in mg/L (source 2 of the module), so one
    hour's flow of Q m³ carries C × Q × 10⁻³ kg (1 mg/L = 1 g/m³).
    """
    return concentration_mg_l * flow_m3_h * 1e-3


def hour_is_valid(valid_minutes: int) -> bool:
    """HJ 76-2017 附录B: an hourly value needs at least 45 valid minute values."""
    return valid_minutes >= thresholds()["hour_valid_minutes"]


def day_is_valid(valid_hours: int) -> bool:
    """HJ 76-2017 附录B: a daily value needs at least 20 valid hourly values."""
    return valid_hours >= thresholds()["day_valid_hours"]


def month_is_valid(valid_days: int, month: int) -> bool:
    """HJ 76-2017 附录B: a monthly value needs at least 25 valid days (23 in February)."""
    key = "february_valid_days" if month == 2 else "month_valid_days"
    return valid_days >= thresholds()[key]


class HourState(enum.StrEnum):
    """What the monitoring system says about an hour of a pollutant."""

    VALID = "valid"  # a valid hourly mean was measured
    MISSING = "missing"  # no value arrived
    INVALID = "invalid"  # a value arrived but is not a measurement (fault, calibration…)
    SHUTDOWN = "shutdown"  # 停运: the source was not emitting (not 排放时间)


# HJ 212-2017 数据标记 → state. N and T are measurements (T: over the upper limit of the
# range, still a reading); F is 停运; M, S, D, C and B are not measurements of the sample.
HJ212_FLAG_STATES = {
    "N": HourState.VALID,
    "T": HourState.VALID,
    "F": HourState.SHUTDOWN,
    "M": HourState.INVALID,
    "S": HourState.INVALID,
    "D": HourState.INVALID,
    "C": HourState.INVALID,
    "B": HourState.INVALID,
}


def state_from_hj212_flag(flag: str | None) -> HourState:
    """The state of an hour from its HJ 212-2017 data flag (``None``: nothing arrived)."""
    if flag is None:
        return HourState.MISSING
    try:
        return HJ212_FLAG_STATES[flag.strip().upper()]
    except KeyError:
        raise ValueError(f"not an HJ 212-2017 data flag: {flag!r}") from None


class Basis(enum.StrEnum):
    """How the value used for an hour was obtained."""

    MEASURED = "measured"
    SHORT_GAP = "short_gap_mean"  # source 4: mean of the valid values before and after
    PRIOR_HALF_YEAR = "prior_half_year_mean"  # source 5: previous half-year's means
    SHUTDOWN = "shutdown"  # source 1: not 排放时间, nothing emitted
    UNRESOLVED = "unresolved"  # no rule found applies: the hour's mass is unknown


# The clause behind each basis, for pages that show how an hour was obtained.
BASIS_SOURCES = {
    Basis.MEASURED: "有效自动监测数据 (排污许可证申请与核发技术规范 9.1)",
    Basis.SHORT_GAP: "HJ/T 75-2007, as paraphrased by Tang et al. 2020 (Sci. Data 7:325, "
    "Table 4): missing data lasting 1–24 h set to the arithmetic mean of the two nearest "
    "valid points before and after them",
    Basis.PRIOR_HALF_YEAR: "排污许可证申请与核发技术规范 附录E E.1 (1): 上一个半年申报期间的稳定"
    "运行期间自动监测数据的小时浓度均值和半年平均烟气量",
    Basis.SHUTDOWN: "附录E formula (E1): only 排放时间 T counts",
    Basis.UNRESOLVED: "no rule found: the hour's mass is not known",
}


@dataclass(frozen=True)
class Hour:
    """One hour of one pollutant at one outlet.

    ``state`` is the state of the concentration (and of the hour: ``SHUTDOWN`` covers
    both quantities); ``flow_state`` that of the flow when it differs (``None``: the same
    as ``state``). A quantity counts as measured only when its state is ``VALID`` and its
    value is a finite number.
    """

    concentration: float | None
    flow: float | None
    state: HourState = HourState.VALID
    flow_state: HourState | None = None

    def __post_init__(self) -> None:
        if self.flow_state is HourState.SHUTDOWN and self.state is not HourState.SHUTDOWN:
            raise ValueError("a shutdown covers the whole hour: set state, not flow_state")


@dataclass(frozen=True)
class PriorHalfYear:
    """附录E E.1 (1): the mean hourly concentration of the stable-operation hours of the
    previous half-year's report and that half-year's mean flue-gas flow. The clause allows
    them only where the unit has shown that the data loss is not its fault: the caller
    decides that by passing them."""

    concentration: float
    flow: float


@dataclass(frozen=True)
class AccountedHour:
    """The values used for one hour, how each was obtained, and the mass (None when
    unresolved)."""

    state: HourState
    concentration: float | None
    flow: float | None
    concentration_basis: Basis
    flow_basis: Basis
    mass_kg: float | None

    @property
    def basis(self) -> Basis:
        """The hour's basis: shutdown, measured (both quantities), unresolved (either), or
        the substitution used (the concentration's when both were substituted)."""
        bases = (self.concentration_basis, self.flow_basis)
        if Basis.SHUTDOWN in bases:
            return Basis.SHUTDOWN
        if Basis.UNRESOLVED in bases:
            return Basis.UNRESOLVED
        if bases == (Basis.MEASURED, Basis.MEASURED):
            return Basis.MEASURED
        return next(b for b in bases if b is not Basis.MEASURED)


@dataclass(frozen=True)
class Totals:
    """Mass and hour counts of a period (a day, a month, the whole series)."""

    mass_kg: float = 0.0  # measured and substituted hours; unresolved hours add nothing
    hours_measured: int = 0
    hours_substituted: int = 0
    hours_shutdown: int = 0
    hours_unresolved: int = 0

    @property
    def hours_operating(self) -> int:
        """Hours of 排放时间: every hour but the shutdown ones."""
        return self.hours_measured + self.hours_substituted + self.hours_unresolved

    @property
    def measured_share(self) -> float | None:
        """Measured hours over operating hours (None without operating hours)."""
        operating = self.hours_operating
        return self.hours_measured / operating if operating else None

    @property
    def missing_share(self) -> float | None:
        """Operating hours not measured (substituted or unresolved) over operating hours."""
        operating = self.hours_operating
        return (operating - self.hours_measured) / operating if operating else None

    def add(self, hour: AccountedHour) -> Totals:
        """These totals with one more hour."""
        basis = hour.basis
        return Totals(
            mass_kg=self.mass_kg + (hour.mass_kg or 0.0),
            hours_measured=self.hours_measured + (basis is Basis.MEASURED),
            hours_substituted=self.hours_substituted
            + (basis in (Basis.SHORT_GAP, Basis.PRIOR_HALF_YEAR)),
            hours_shutdown=self.hours_shutdown + (basis is Basis.SHUTDOWN),
            hours_unresolved=self.hours_unresolved + (basis is Basis.UNRESOLVED),
        )


@dataclass(frozen=True)
class Accounting:
    """The hours as accounted, and their totals."""

    hours: tuple[AccountedHour, ...]
    totals: Totals
    max_missing_share: float

    @property
    def usable_as_basis(self) -> bool:
        """附录E E.1 (1): "缺失时段超过25%的自动监测数据不能作为实际排放量的依据". The clause
        does not name the denominator; EcoHub takes the operating hours (排放时间 T of
        formula (E1)) and counts every operating hour not measured as missing, substituted
        or not. A series without operating hours is usable (nothing was emitted)."""
        share = self.totals.missing_share
        return share is None or share <= self.max_missing_share


def short_gap_value(before: float, after: float) -> float:
    """Source 4: the arithmetic mean of the valid values before and after the gap."""
    return (before + after) / 2


def _is_measured(value: float | None, state: HourState) -> bool:
    return state is HourState.VALID and value is not None and math.isfinite(value)


def _fill(
    values: Sequence[float | None],
    states: Sequence[HourState],
    short_gap_max_hours: int | None,
    fallback: float | None,
) -> list[tuple[float | None, Basis]]:
    """The value used and its basis for each hour of one quantity.

    A gap is a run of operating hours without a measurement. It takes the short-gap mean
    when it lasts at most ``short_gap_max_hours`` and a measured hour lies directly on each
    side (the period's edge or a shutdown hour gives no "valid point" on that side), else
    ``fallback`` when given, else stays unresolved.
    """
    n = len(values)
    measured = [_is_measured(v, s) for v, s in zip(values, states, strict=True)]
    out: list[tuple[float | None, Basis]] = []
    i = 0
    while i < n:
        if states[i] is HourState.SHUTDOWN:
            out.append((None, Basis.SHUTDOWN))
            i += 1
            continue
        if measured[i]:
            out.append((values[i], Basis.MEASURED))
            i += 1
            continue
        end = i
        while end < n and states[end] is not HourState.SHUTDOWN and not measured[end]:
            end += 1
        before = values[i - 1] if i > 0 and measured[i - 1] else None
        after = values[end] if end < n and measured[end] else None
        fill: tuple[float | None, Basis] = (None, Basis.UNRESOLVED)
        short = short_gap_max_hours is not None and end - i <= short_gap_max_hours
        if short and before is not None and after is not None:
            fill = (short_gap_value(before, after), Basis.SHORT_GAP)
        elif fallback is not None:
            fill = (fallback, Basis.PRIOR_HALF_YEAR)
        out.extend([fill] * (end - i))
        i = end
    return out


def _account(
    hours: Sequence[Hour],
    mass: Callable[[float, float], float],
    short_gap_max_hours: int | None,
    prior: PriorHalfYear | None,
    max_missing_share: float,
) -> Accounting:
    states = [h.state for h in hours]
    flow_states = [
        h.state if h.state is HourState.SHUTDOWN or h.flow_state is None else h.flow_state
        for h in hours
    ]
    concentrations = _fill(
        [h.concentration for h in hours],
        states,
        short_gap_max_hours,
        prior.concentration if prior else None,
    )
    flows = _fill(
        [h.flow for h in hours], flow_states, short_gap_max_hours, prior.flow if prior else None
    )
    accounted = []
    totals = Totals()
    for hour, (c, c_basis), (q, q_basis) in zip(hours, concentrations, flows, strict=True):
        if hour.state is HourState.SHUTDOWN:
            kg: float | None = 0.0
        elif c is None or q is None:
            kg = None
        else:
            kg = mass(c, q)
        item = AccountedHour(hour.state, c, q, c_basis, q_basis, kg)
        accounted.append(item)
        totals = totals.add(item)
    return Accounting(tuple(accounted), totals, max_missing_share)


def account_flue_gas(
    hours: Sequence[Hour],
    *,
    short_gap_max_hours: int | None = None,
    prior_half_year: PriorHalfYear | None = None,
    max_missing_share: float | None = None,
) -> Accounting:
    """Account one pollutant's hourly flue-gas series (hours in order, one per clock hour).

    Concentrations in mg/Nm³ and flows in Nm³/h, both dry at standard conditions (HJ 76-2017
    附录B); each hour's mass is :func:`hourly_mass_kg`. Shutdown hours emit nothing and are
    not substituted. Missing and invalid hours of each quantity (concentration and flow
    separately) are substituted by:

    1. the short-gap mean of HJ/T 75-2007 (source 4) when the gap lasts at most
       ``short_gap_max_hours`` (default 24, ``data/cems_thresholds.csv``), with a measured
       hour directly before and after it;
    2. otherwise, when ``prior_half_year`` is given, its mean concentration or flow for the
       missing quantity (source 5; the clause names both means for a missing period,
       EcoHub applies each to the quantity that is missing and keeps a measured one);
    3. otherwise the hour stays unresolved: its mass is unknown and left out of the sum.

    ``usable_as_basis`` of the result applies the 25 % limit of source 5
    (``max_missing_share``, default 0.25).
    """
    limits = thresholds()
    gap = int(limits["short_gap_max_hours"]) if short_gap_max_hours is None else short_gap_max_hours
    share = limits["max_missing_share"] if max_missing_share is None else max_missing_share
    return _account(hours, hourly_mass_kg, gap, prior_half_year, share)


def account_wastewater(
    hours: Sequence[Hour], *, max_missing_share: float | None = None
) -> Accounting:
    """Account one pollutant's hourly wastewater series: concentrations in mg/L, flows in
    m³/h, masses by :func:`mass_kg`.

    No hour is substituted: the 补遗 rules the permit specifications point to for
    wastewater (HJ/T 356, "应按照HJ/T 356补遗" in the flat-glass specification as
    reproduced at https://www.huanwenwen.com/article-55610.html) were not read, so missing
    and invalid hours stay unresolved. The 25 % share is reported with the flue-gas
    clause's number (source 5 is written for 废气; the 废水 part E.2 was not read).
    """
    share = thresholds()["max_missing_share"] if max_missing_share is None else max_missing_share
    return _account(hours, mass_kg, None, None, share)


def totals_by_key(keys: Sequence[K], accounting: Accounting) -> dict[K, Totals]:
    """Totals per key (a local date, a ``(year, month)``, a year), one key per hour in the
    order of the hours; keys keep their first-seen order. Masses of a period are sums of
    the hourly masses (formula (E1) sums the hours of the 核算时段)."""
    if len(keys) != len(accounting.hours):
        raise ValueError(f"{len(keys)} keys for {len(accounting.hours)} hours")
    out: dict[K, Totals] = {}
    for key, hour in zip(keys, accounting.hours, strict=True):
        out[key] = out.get(key, Totals()).add(hour)
    return out


def daily_totals(days: Sequence[date], accounting: Accounting) -> dict[date, Totals]:
    """Totals per local day; ``days[i]`` is the local date of hour ``i``."""
    return totals_by_key(days, accounting)


def monthly_totals(days: Sequence[date], accounting: Accounting) -> dict[tuple[int, int], Totals]:
    """Totals per local ``(year, month)``."""
    return totals_by_key([(d.year, d.month) for d in days], accounting)


def annual_totals(days: Sequence[date], accounting: Accounting) -> dict[int, Totals]:
    """Totals per local year."""
    return totals_by_key([d.year for d in days], accounting)
