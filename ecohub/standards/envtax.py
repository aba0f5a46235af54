"""China's environmental protection tax on air and water pollutants, as pure rules.

What: pollution equivalents, the taxed pollutants of an outlet, the provinces' rates, the reductions
for low concentrations, the order of data sources, and a computation that keeps every step. Why:
EcoHub holds the monitoring data the tax is computed from, and a page can show an outlet's tax the
way the tax office computes it, reductions for low concentrations included.

Sources:
- 中华人民共和国环境保护税法 (2016-12-25, amended 2018-10-26): 第六条 (provinces set the rates
  within 附表一), 第八条 (equivalents), 第九条 (taxable pollutants per outlet), 第十条 (data
  sources), 第十一条 (tax), 第十三条 (reductions); 附表一 and 附表二 as ``data/envtax_*.csv``,
  each file naming where it was read.
- 中华人民共和国环境保护税法实施条例 (国务院令第693号): 第七条 (产生量 as the basis after a
  violation), 第八条 (each outlet apart), 第九条 (self-monitoring counts as 第十条（二）),
  第十条 (which concentration 第十三条 means), 第十一条 (reductions per outlet and pollutant).
- 财税〔2018〕117号, 二: no reduction when any outlet of the taxpayer exceeds its standard.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from functools import cache
from typing import Any

from ecohub.standards.tables import read_table

AIR = "air"
WATER = "water"
MEDIA = (AIR, WATER)
FIRST_CLASS = "first"  # 第一类水污染物 (附表二 表一)
OTHER_CLASS = "other"  # 其他类水污染物 (表二, 表三, 表四)
# 第九条: the pollutants taxed per outlet, by equivalents (a province may add more, 第九条第三款).
AIR_ITEMS = 3
FIRST_CLASS_ITEMS = 5
OTHER_CLASS_ITEMS = 3
PH = "pH值"
PH_HJ212 = "w01001"  # EcoHub's registry/data/hj212_parameters.csv
_TABLES = "一二三四五"  # the tables of 附表二, in order
_GROUPS = {AIR: "air", FIRST_CLASS: "first-class water", OTHER_CLASS: "other-class water"}
_ONE_OF = {
    "cod": "化学需氧量, 生化需氧量 and 总有机碳 (附表二 表二 note 2)",
    "coliform": "大肠菌群数 and 余氯量 (附表二 表三 note 1)",
}


def _check_medium(medium: str) -> None:
    if medium not in MEDIA:
        raise ValueError(f"medium must be one of {', '.join(MEDIA)}; got {medium!r}")


def _check_amount(value: float, what: str) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0; got {value!r}")


def _round(value: float, decimals: int | None) -> float:
    """Rounded half up (四舍五入) to ``decimals`` places; unchanged when None."""
    if decimals is None:
        return value
    step = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(value)).quantize(step, rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Pollutant:
    """One row of 附表二 《应税污染物和当量值表》."""

    medium: str
    table: str  # the annex's table: 一, 二, 三, 四 (water) or 五 (air)
    no: int  # the row number in that table
    name: str  # the annex's wording
    equivalent_value: float | None  # 污染当量值; None for pH (by band, envtax_water_ph.csv)
    unit: str  # of the quantity and the equivalent value: kg, 吨污水 or 吨水·倍
    water_class: str | None  # first or other; None for air
    one_of: str | None  # only one of the group is levied per outlet
    hj212: str | None


@cache
def pollutants(medium: str) -> tuple[Pollutant, ...]:
    """The taxable pollutants of one medium in the annex's order (附表二 表一 to 表五)."""
    _check_medium(medium)
    if medium == AIR:
        return tuple(
            Pollutant(AIR, "五", int(r["no"]), r["name"], float(r["equivalent_value"]), "kg",
                      None, None, r["hj212"] or None)
            for r in read_table("envtax_air_equivalents")
        )  # fmt: skip
    water = [
        Pollutant(WATER, "一" if r["class"] == FIRST_CLASS else "二", int(r["no"]), r["name"],
                  float(r["equivalent_value"]), "kg", r["class"], r["one_of"] or None,
                  r["hj212"] or None)
        for r in read_table("envtax_water_equivalents")
    ]  # fmt: skip
    water.append(Pollutant(WATER, "三", 1, PH, None, "吨污水", OTHER_CLASS, None, PH_HJ212))
    water.extend(
        Pollutant(WATER, r["table"], int(r["no"]), r["name"], float(r["equivalent_value"]),
                  r["unit"], OTHER_CLASS, r["one_of"] or None, r["hj212"] or None)
        for r in read_table("envtax_water_other")
    )  # fmt: skip
    return tuple(water)


def _normal(name: str) -> str:
    return name.replace("（", "(").replace("）", ")").replace(" ", "").strip()


@cache
def _index(medium: str) -> dict[str, Pollutant]:
    index: dict[str, Pollutant] = {}
    stems: dict[str, list[Pollutant]] = {}
    for item in pollutants(medium):
        index[_normal(item.name)] = item
        if item.hj212:
            index[item.hj212] = item
        stems.setdefault(_normal(item.name).split("(")[0], []).append(item)
    for stem, found in stems.items():
        if len(found) == 1:  # 化学需氧量 for 化学需氧量(CODcr), as the provinces' decisions say
            index.setdefault(stem, found[0])
    return index


def pollutant(name: str, medium: str) -> Pollutant:
    """The annex row of a pollutant, by its annex name (with or without the parenthesis, full- or
    half-width brackets) or its HJ 212-2017 code."""
    found = _index(medium).get(_normal(name)) if medium in MEDIA else None
    if found is None:
        _check_medium(medium)
        raise ValueError(
            f"{name!r} is not a taxable {medium} pollutant of 附表二 of the 环境保护税法; give the "
            "annex's name (e.g. 二氧化硫, 化学需氧量) or an HJ 212 code (e.g. a21026)"
        )
    return found


def pollution_equivalents(quantity: float, equivalent_value: float) -> float:
    """污染当量数 = 排放量 ÷ 污染当量值 (环境保护税法 第八条), both in the annex's unit."""
    _check_amount(quantity, "the quantity emitted")
    if not (math.isfinite(equivalent_value) and equivalent_value > 0):
        raise ValueError(f"an equivalent value must be positive; got {equivalent_value!r}")
    return quantity / equivalent_value


@cache
def _ph_bands() -> tuple[tuple[float, float, float | None, float | None, float], ...]:
    def number(cell: str) -> float | None:
        return float(cell) if cell else None

    return tuple(
        (float(r["acid_low"]), float(r["acid_high"]), number(r["alkali_low"]),
         number(r["alkali_high"]), float(r["equivalent_value"]))
        for r in read_table("envtax_water_ph")
    )  # fmt: skip


def ph_equivalent_value(ph: float) -> float | None:
    """The equivalent value (吨污水) of wastewater of a pH (附表二 表三 row 1); None for pH 6-9.

    Table note 2: "PH5-6指大于等于5，小于6；PH9-10指大于9，小于等于10，其余类推" — an acid band
    includes its lower end, an alkaline band its upper end.
    """
    if not (math.isfinite(ph) and 0 <= ph <= 14):
        raise ValueError(f"a pH must lie in 0-14; got {ph!r}")
    for acid_low, acid_high, alkali_low, alkali_high, value in _ph_bands():
        if acid_low <= ph < acid_high:
            return value
        if alkali_low is not None and alkali_high is not None and alkali_low < ph <= alkali_high:
            return value
    return None


def colour_quantity(wastewater_t: float, colour: float, limit: float) -> float:
    """The quantity of 色度 in 吨水·倍: tonnes of wastewater × the exceedance multiple
    (colour − limit) ÷ limit; 0 when the colour is within the limit.

    The annex gives only the unit (附表二 表三 row 2, 5 吨水·倍); the multiple is as in the
    published Q&A "pH值、色度的环境保护税是如何计算的" (https://www.beiyun.cn/article/78380:
    色度的超标倍数=(320-80)/80=3, 色度超标排放量=24000×3=72000 吨水·倍).
    """
    _check_amount(wastewater_t, "the wastewater (t)")
    _check_amount(colour, "the colour")
    if not limit > 0:
        raise ValueError(f"a colour limit must be positive; got {limit!r}")
    return wastewater_t * max(colour - limit, 0.0) / limit


def equivalents(name: str, quantity: float, medium: str, *, ph: float | None = None) -> float:
    """The pollution equivalents of one pollutant (第八条), its equivalent value from 附表二;
    for pH, ``quantity`` is tonnes of wastewater and ``ph`` chooses the band (0 for pH 6-9)."""
    return _measure(medium, Emission(name, quantity, ph=ph), None)[2]


def tax_amount(equivalents: float, rate: float, reduction_factor: float = 1.0) -> float:
    """应纳税额 = 污染当量数 × 具体适用税额 (第十一条（一）（二）), times the 第十三条 factor."""
    _check_amount(equivalents, "the equivalents")
    _check_amount(rate, "the rate")
    if reduction_factor not in (1.0, 0.75, 0.5):
        raise ValueError(f"第十三条 allows factors 1, 0.75 and 0.5; got {reduction_factor!r}")
    return equivalents * rate * reduction_factor


@dataclass(frozen=True)
class Rate:
    """A province's rate (元 per pollution equivalent) under 第六条第二款 (envtax_rates.csv)."""

    province: str
    zone: str | None
    medium: str
    pollutant: str | None  # None: every other pollutant of the medium
    applies_to: str | None  # None: every taxpayer
    rate: float
    valid_from: date
    valid_to: date | None
    decision: str
    adopted: date | None
    source: str


@cache
def rates() -> tuple[Rate, ...]:
    """Every provincial rate typed into ``data/envtax_rates.csv``."""
    return tuple(
        Rate(r["province"], r["zone"] or None, r["medium"], r["pollutant"] or None,
             r["applies_to"] or None, float(r["rate"]), date.fromisoformat(r["valid_from"]),
             date.fromisoformat(r["valid_to"]) if r["valid_to"] else None, r["decision"],
             date.fromisoformat(r["adopted"]) if r["adopted"] else None, r["source"])
        for r in read_table("envtax_rates")
    )  # fmt: skip


@cache
def rate_range(medium: str) -> tuple[float, float]:
    """The range of 附表一 within which provinces set the rate of a medium (元/污染当量)."""
    _check_medium(medium)
    row = next(r for r in read_table("envtax_rate_ranges") if r["medium"] == medium)
    return float(row["minimum"]), float(row["maximum"])


def rate_for(
    province: str,
    medium: str,
    name: str | None = None,
    *,
    on: date | None = None,
    zone: str | None = None,
    applies_to: str | None = None,
) -> Rate:
    """The rate of a province for a pollutant (its own row, else the medium's other pollutants),
    in force ``on`` a day (default: the rows still in force); ``zone`` where the province sets
    rates by area (河北 一档/二档/三档, 江苏 by city), ``applies_to`` for rates of one kind of
    taxpayer (山东's 城乡污水集中处理场所)."""
    rows = [r for r in rates() if r.province == province and r.medium == medium]
    if not rows:
        _check_medium(medium)
        known = "、".join(dict.fromkeys(r.province for r in rates()))
        raise ValueError(f"no {medium} rate of {province!r} in envtax_rates.csv; typed: {known}")
    zones = list(dict.fromkeys(r.zone for r in rows if r.zone))
    if zones and zone not in zones:
        raise ValueError(f"{province}'s rates depend on the zone: give zone= one of {zones}")
    rows = [r for r in rows if r.zone == (zone if zones else None)]
    special = [r for r in rows if applies_to and r.applies_to == applies_to]
    rows = special or [r for r in rows if r.applies_to is None]
    if on is None:
        rows = [r for r in rows if r.valid_to is None]
    else:
        rows = [r for r in rows if r.valid_from <= on and (r.valid_to is None or on <= r.valid_to)]
    wanted = pollutant(name, medium).name if name else None
    for key in (wanted, None):
        for row in rows:
            if row.pollutant == key:
                return row
    raise ValueError(f"no {medium} rate of {province} in force on {on or 'the latest day'}")


@dataclass(frozen=True)
class Reduction:
    """The factor of 第十三条 for one pollutant of one outlet, and why."""

    factor: float  # 1, 0.75 or 0.5
    ratio: float | None  # concentration ÷ standard
    reason: str


def reduction(
    concentration: float | None,
    limit: float | None,
    *,
    highest: float | None = None,
    exceeded_elsewhere: bool = False,
) -> Reduction:
    """环境保护税法 第十三条: tax at 75 % when the concentration is below the standard by 30 %
    (below 70 % of the limit), at 50 % when below it by 50 % (below 50 % of the limit).

    实施条例 第十条: ``concentration`` is the month's mean of the hourly means (air, automatic
    monitoring), of the daily means (water, automatic monitoring), or of the monitoring agency's
    values; and no hourly mean, daily mean or single monitored value of the month may exceed the
    standard: ``highest`` is the largest of them (without it there is no reduction).
    财税〔2018〕117号 二: no reduction when any outlet of the taxpayer exceeds its standard
    (``exceeded_elsewhere``). Limits are strict (EcoHub reads "低于…百分之三十" as below 0.7 × the
    limit, as in the published examples: 120 < 140 = 200 × (1 − 30 %)).
    """
    if concentration is None or limit is None:
        return Reduction(1.0, None, "no concentration or standard given: no reduction (第十三条)")
    _check_amount(concentration, "the concentration")
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"a standard's limit must be positive; got {limit!r}")
    ratio = concentration / limit
    if exceeded_elsewhere:
        reason = "an outlet of the taxpayer exceeds its standard: no reduction (财税〔2018〕117号)"
        return Reduction(1.0, ratio, reason)
    if highest is None:
        reason = "the month's highest value was not given (实施条例第十条第二款): no reduction"
        return Reduction(1.0, ratio, reason)
    _check_amount(highest, "the highest value")
    if highest < concentration:
        raise ValueError(f"the highest value {highest} cannot be below the mean {concentration}")
    if highest > limit:
        reason = f"a value of the month ({highest:g}) exceeds the standard {limit:g} (条例第十条)"
        return Reduction(1.0, ratio, reason)
    c, lim = Decimal(repr(concentration)), Decimal(repr(limit))
    if c < lim * Decimal("0.5"):
        return Reduction(0.5, ratio, "below the standard by more than 50 %: tax at 50 % (第十三条)")
    if c < lim * Decimal("0.7"):
        return Reduction(
            0.75, ratio, "below the standard by more than 30 %: tax at 75 % (第十三条)"
        )
    return Reduction(1.0, ratio, "not below the standard by 30 %: no reduction (第十三条)")


class DataSource(StrEnum):
    """The ways 第十条 of the law lets the quantity emitted be computed."""

    AUTOMATIC = "automatic"  # （一）自动监测设备, installed and used as the national rules say
    AGENCY = "agency"  # （二）监测机构出具的监测数据
    SELF = "self"  # 实施条例第九条: 自行监测 conforming data, as （二）
    FACTOR = "factor"  # （三）排污系数
    BALANCE = "balance"  # （三）物料衡算
    SAMPLING = "sampling"  # （四）省级生态环境主管部门规定的抽样测算


class Violation(StrEnum):
    """实施条例 第七条第二款: the cases where 产生量 is taken as 排放量."""

    NO_AUTOMATIC_MONITORING = "（一）未依法安装使用自动监测设备或者未联网"
    EQUIPMENT_TAMPERED = "（二）损毁或者擅自移动、改变自动监测设备"
    DATA_FALSIFIED = "（三）篡改、伪造污染物监测数据"
    UNLAWFUL_DISCHARGE = "（四）暗管、渗井、渗坑、灌注或者稀释排放以及不正常运行防治污染设施"
    FALSE_DECLARATION = "（五）进行虚假纳税申报"


@dataclass(frozen=True)
class SourceChoice:
    source: DataSource
    equal_rank: tuple[DataSource, ...]  # the other available sources of the same item
    basis: str  # 排放量, or 产生量 after a violation (实施条例第七条)
    article: str
    reason: str


_ORDER = (
    ((DataSource.AUTOMATIC,), "第十条（一）", "automatic monitoring equipment installed and used"),
    ((DataSource.AGENCY, DataSource.SELF), "第十条（二）、实施条例第九条",
     "no automatic monitoring: a monitoring agency's data (self-monitoring data that meet the "
     "rules count the same)"),
    ((DataSource.FACTOR, DataSource.BALANCE), "第十条（三）",
     "no monitoring data (不具备监测条件): the ministry's emission factors or material balance"),
)  # fmt: skip


def choose_data_source(
    available: Iterable[DataSource | str], *, violation: Violation | None = None
) -> SourceChoice:
    """The source the quantity of a pollutant-month must be computed from (第十条: the first
    item that applies, in order); with none of （一）-（三）, the province's sampling method
    (第十条（四）, 核定 by the tax office with the ecological environment department,
    第二十一条). After a violation the quantity generated is the basis (实施条例第七条)."""
    given = {DataSource(item) for item in available}
    choice = None
    for sources, article, reason in _ORDER:
        found = [s for s in sources if s in given]
        if found:
            choice = SourceChoice(found[0], tuple(found[1:]), "排放量", article, reason)
            break
    if choice is None:
        reason = "none of 第十条（一）-（三）: the province's sampling method (核定, 第二十一条)"
        choice = SourceChoice(DataSource.SAMPLING, (), "排放量", "第十条（四）", reason)
    if violation is None:
        return choice
    reason = f"{choice.reason}; 产生量 is taken as 排放量 after {violation.value}"
    article = f"{choice.article}; 实施条例第七条第二款"
    return SourceChoice(choice.source, choice.equal_rank, "产生量", article, reason)


@dataclass(frozen=True)
class Ranking:
    group: str  # air, first or other
    rank: int | None  # None: not ranked (another of its one-of group is levied)
    taxable: bool
    reason: str


def rank_taxable(
    medium: str,
    equivalents_by_pollutant: Mapping[str, float],
    *,
    air_items: int = AIR_ITEMS,
    first_class_items: int = FIRST_CLASS_ITEMS,
    other_class_items: int = OTHER_CLASS_ITEMS,
) -> dict[str, Ranking]:
    """The taxable pollutants of one outlet (第九条): air pollutants ranked by equivalents, the
    first ``air_items`` taxed; water pollutants ranked within the first class and within the
    other classes, the first ``first_class_items`` and ``other_class_items`` taxed. Of each
    one-of group of 附表二 only the one with most equivalents is ranked (the annex does not say
    which one: pass only the one your tax office levies to choose). Ties: the annex's order."""
    _check_medium(medium)
    counts = {FIRST_CLASS: first_class_items, OTHER_CLASS: other_class_items}
    if medium == AIR:
        counts = {AIR: air_items}
    law = {AIR: AIR_ITEMS, FIRST_CLASS: FIRST_CLASS_ITEMS, OTHER_CLASS: OTHER_CLASS_ITEMS}
    for group, count in counts.items():
        if not (isinstance(count, int) and count >= law[group]):
            raise ValueError(
                f"第九条第三款 lets a province add taxable items, not remove them: the {group} "
                f"count must be an integer >= {law[group]}; got {count!r}"
            )
    items: dict[str, tuple[Pollutant, float]] = {}
    for name, value in equivalents_by_pollutant.items():
        item = pollutant(name, medium)
        _check_amount(value, f"the equivalents of {item.name}")
        if item.name in {found.name for found, _ in items.values()}:
            raise ValueError(f"{item.name} is given twice for one outlet")
        items[name] = (item, value)
    order = sorted(
        items, key=lambda n: (-items[n][1], _TABLES.index(items[n][0].table), items[n][0].no)
    )
    result: dict[str, Ranking] = {}
    kept: dict[str, str] = {}
    for name in order:
        item = items[name][0]
        if item.one_of and item.one_of in kept:
            reason = f"only one of {_ONE_OF[item.one_of]} is levied: {kept[item.one_of]} is"
            result[name] = Ranking(item.water_class or AIR, None, False, reason)
        elif item.one_of:
            kept[item.one_of] = item.name
    for group, count in counts.items():
        ranked = [n for n in order if n not in result and (items[n][0].water_class or AIR) == group]
        for rank, name in enumerate(ranked, start=1):
            taxed = rank <= count
            where = "第九条第一款" if group == AIR else "第九条第二款"
            reason = f"rank {rank} of {len(ranked)} {_GROUPS[group]}, {count} taxed ({where})"
            result[name] = Ranking(group, rank, taxed, reason)
    return {name: result[name] for name in equivalents_by_pollutant}


@dataclass(frozen=True)
class Emission:
    """One pollutant of one outlet in one month.

    ``quantity`` in kg, or in the annex's own unit for 附表二 表三/表四 (吨污水; 吨水·倍 for 色度,
    see :func:`colour_quantity`); ``ph`` for pH值. ``concentration``, ``highest`` and ``limit`` as
    :func:`reduction` takes them; ``rate`` overrides the outlet's rate for this pollutant.
    """

    pollutant: str
    quantity: float
    concentration: float | None = None
    highest: float | None = None
    limit: float | None = None
    ph: float | None = None
    rate: float | None = None


@dataclass(frozen=True)
class Step:
    """The computation of one pollutant of an outlet, every figure a page shows."""

    pollutant: str
    table: str
    no: int
    water_class: str | None
    quantity: float
    unit: str
    equivalent_value: float | None
    equivalents: float
    rank: int | None
    taxable: bool
    reason: str
    concentration: float | None
    limit: float | None
    ratio: float | None
    reduction_factor: float
    reduction_reason: str
    rate: float | None
    rate_source: str | None
    tax: float


@dataclass(frozen=True)
class OutletTax:
    medium: str
    steps: tuple[Step, ...]  # in the order of the emissions given
    taxable_equivalents: float
    tax: float


def _resolve_rate(
    emission: Emission, item: Pollutant, rate: float | None, lookup: dict[str, Any]
) -> tuple[float, str]:
    given = emission.rate if emission.rate is not None else rate
    if given is not None:
        low, high = rate_range(item.medium)
        if not low <= given <= high:
            raise ValueError(f"{item.medium} rates lie in {low:g}-{high:g} (附表一); got {given}")
        return given, "given"
    if lookup["province"] is None:
        raise ValueError("give the rate (元/污染当量) or the province to look it up")
    found = rate_for(name=item.name, medium=item.medium, **lookup)
    return found.rate, " ".join(filter(None, (found.province, found.zone, found.decision)))


def _measure(
    medium: str, emission: Emission, decimals: int | None
) -> tuple[Pollutant, float | None, float]:
    """The annex row, the equivalent value (None for pH 6-9) and the equivalents."""
    item = pollutant(emission.pollutant, medium)
    value = item.equivalent_value
    if value is None:
        if emission.ph is None:
            raise ValueError("the equivalents of pH值 depend on the pH: give ph=")
        value = ph_equivalent_value(emission.ph)
    _check_amount(emission.quantity, f"the quantity of {item.name}")
    count = 0.0 if value is None else pollution_equivalents(emission.quantity, value)
    return item, value, _round(count, decimals)


def outlet_tax(
    medium: str,
    emissions: Sequence[Emission],
    *,
    rate: float | None = None,
    province: str | None = None,
    zone: str | None = None,
    applies_to: str | None = None,
    on: date | None = None,
    air_items: int = AIR_ITEMS,
    first_class_items: int = FIRST_CLASS_ITEMS,
    other_class_items: int = OTHER_CLASS_ITEMS,
    exceeded_elsewhere: bool = False,
    equivalent_decimals: int | None = None,
    tax_decimals: int | None = None,
) -> OutletTax:
    """The tax of one outlet's month for one medium, every step kept (实施条例第八条: each
    outlet apart). Equivalents (第八条), taxable pollutants (第九条, :func:`rank_taxable`),
    reductions per pollutant (第十三条, 实施条例第十条、第十一条, :func:`reduction`), rate (given,
    or the province's, :func:`rate_for`) and tax (第十一条).

    Exact by default. Published examples round the equivalents to 2 places first
    (``equivalent_decimals=2``) and each pollutant's tax to the fen (``tax_decimals=2``);
    rounding is half up.
    """
    measured = [_measure(medium, emission, equivalent_decimals) for emission in emissions]
    by_name = {item.name: count for item, _, count in measured}
    if len(by_name) < len(measured):
        raise ValueError("a pollutant is given twice for one outlet")
    ranking = rank_taxable(
        medium, by_name, air_items=air_items, first_class_items=first_class_items,
        other_class_items=other_class_items,
    )  # fmt: skip
    lookup = {"province": province, "zone": zone, "applies_to": applies_to, "on": on}
    steps = []
    for emission, (item, equivalent_value, value) in zip(emissions, measured, strict=True):
        ranked = ranking[item.name]
        cut = reduction(
            emission.concentration, emission.limit, highest=emission.highest,
            exceeded_elsewhere=exceeded_elsewhere,
        )  # fmt: skip
        unit_rate, rate_source, tax = None, None, 0.0
        if ranked.taxable:
            unit_rate, rate_source = _resolve_rate(emission, item, rate, lookup)
            tax = _round(tax_amount(value, unit_rate, cut.factor), tax_decimals)
        steps.append(
            Step(item.name, item.table, item.no, item.water_class, emission.quantity, item.unit,
                 equivalent_value, value, ranked.rank, ranked.taxable, ranked.reason,
                 emission.concentration, emission.limit, cut.ratio, cut.factor, cut.reason,
                 unit_rate, rate_source, tax)
        )  # fmt: skip
    taxed = sum(step.equivalents for step in steps if step.taxable)
    total = sum(step.tax for step in steps)
    return OutletTax(medium, tuple(steps), taxed, _round(total, tax_decimals))
