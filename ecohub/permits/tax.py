"""The environmental protection tax of an enterprise's month from its data: each outlet's
pollutants accounted (:mod:`ecohub.permits.accounting`), the quantity of each taxed
pollutant taken from the first source 环境保护税法 第十条 allows
(:func:`ecohub.standards.envtax.choose_data_source`), then taxed by
:func:`ecohub.standards.envtax.outlet_tax` (equivalents, the taxable pollutants, the
reductions, the rate of the enterprise's province in force in the month), every step kept.

Data sources, per outlet, pollutant and month:

- 第十条（一） automatic monitoring: the accounted mass, when it may be the basis (no more
  than 25 % of the operating hours unmeasured, the permit rules' 附录E E.1);
- else 第十条（二） a monitoring agency's data: the supervisory monitoring results
  (监督性监测) imported through the exchange, sampled in the month; their mean
  concentration (air), or the mean weighted by the records' flows (water), as
  财税〔2018〕23号 一 says ("应税大气污染物按照监测数据的平均值…应税水污染物按照监测数据以
  流量为权的加权平均值"), × the month's flow (the mean measured flow of the outlet, else
  the records' mean flow) × the operating hours;
- else 第十条（三） emission factors or material balance: the platform holds neither, so
  the pollutant is listed as without a usable source (``unsourced``) and not taxed here:
  the tax office 核定 it (第十条（四）, 第二十一条).

Reductions (第十三条; 实施条例 第十条): the month's mean and highest hourly concentration,
converted to the limit's reference O2 content where the permit states one, as the limit
alarms convert (:mod:`ecohub.permits.tax_sources`). 财税〔2018〕117号 二: "纳税人任何一个
排放口排放应税大气污染物、水污染物的浓度值…超过国家和地方规定的污染物排放标准的，依法不予
减征环境保护税" — one value above its standard at any outlet, for any taxable pollutant,
ends every reduction of the taxpayer's month (``exceedances``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Connection, Engine

from ecohub.clock import local_zone
from ecohub.permits.accounting import PollutantTotals, enterprise_month, month_hours
from ecohub.permits.tax_sources import (
    Converted,
    Supervisory,
    converted_month,
    month_flow,
    reference_o2_limits,
    supervisory_records,
)
from ecohub.standards import envtax
from ecohub.standards.envtax_zones import check_zone, zone_of, zones

# mg/m³ × m³ → kg (flue gas); mg/L × m³ → kg (waste water).
MASS_FACTOR = {"gas": 1e-6, "water": 1e-3}
NO_FACTORS = (
    "emission factors and material balance (第十条（三）) are not held by the platform: the "
    "tax office determines the quantity (核定, 第十条（四）、第二十一条)"
)


@dataclass(frozen=True)
class OutletInputs:
    """What the tax of one outlet's month reads besides the accounting."""

    supervisory: tuple[Supervisory, ...] = ()
    flow_m3h: float | None = None  # the month's mean measured flow
    converted: Mapping[str, Converted] = field(default_factory=dict)


@cache
def province_names() -> dict[str, str]:
    """GB/T 2260 province code → the short name the provinces' tax decisions use (北京,
    河北…), from the shipped province outlines."""
    text = (files("ecohub.web") / "static" / "geo" / "provinces.geojson").read_text("utf-8")
    return {
        str(feature["properties"]["code"]): str(feature["properties"]["name"])
        for feature in json.loads(text)["features"]
    }


def province_of(region_code: str | None) -> str | None:
    if not region_code or len(region_code) != 6:
        return None
    return province_names().get(region_code[:2] + "0000")


def _medium(kind: str) -> str:
    return envtax.AIR if kind == "gas" else envtax.WATER


def _annex_name(name: str, medium: str) -> str | None:
    try:
        return envtax.pollutant(name, medium).name
    except ValueError:
        return None


def _taxable(item: PollutantTotals, kind: str) -> bool:
    """A pollutant the annex lists for the outlet's medium."""
    return _annex_name(item.parameter_code, _medium(kind)) is not None


def _records_of(item: PollutantTotals, kind: str, inputs: OutletInputs) -> list[Supervisory]:
    wanted = _annex_name(item.parameter_code, _medium(kind))
    return [
        record
        for record in inputs.supervisory
        if record.pollutant in (item.parameter_code, item.name)
        or _annex_name(record.pollutant, _medium(kind)) == wanted
    ]


def _concentrations(item: PollutantTotals, inputs: OutletInputs) -> dict[str, Any]:
    """The month's mean and highest for the reductions, and how they were obtained."""
    converted = inputs.converted.get(item.parameter_code)
    if converted is None:
        return {
            "concentration": item.mean_concentration,
            "highest": item.highest_concentration,
            "concentration_basis": "measured",
            "reference_o2": None,
        }
    complete = converted.unconverted == 0
    return {
        "concentration": converted.mean if complete else None,
        "highest": converted.highest if complete else None,
        "concentration_basis": "converted" if complete else "unconverted",
        "reference_o2": converted.reference_o2,
        "unconverted_hours": converted.unconverted,
    }


def _supervisory(
    item: PollutantTotals, kind: str, records: list[Supervisory], inputs: OutletInputs
) -> dict[str, Any] | None:
    """The quantity from the supervisory results (财税〔2018〕23号 一); None without a flow."""
    flows = [r.flow for r in records if r.flow is not None]
    flow = inputs.flow_m3h if inputs.flow_m3h is not None else (
        sum(flows) / len(flows) if flows else None
    )  # fmt: skip
    if flow is None:
        return None
    values = [r.concentration for r in records]
    weighted = kind == "water" and len(flows) == len(records) and sum(flows) > 0
    if weighted:
        mean = sum(r.concentration * (r.flow or 0.0) for r in records) / sum(flows)
    else:
        mean = sum(values) / len(values)
    hours = item.totals.hours_operating
    limits = [r.limit for r in records if r.limit is not None]
    return {
        "quantity": mean * flow * hours * MASS_FACTOR[kind],
        "concentration": mean,
        "highest": max(values),
        "limit": item.limit if item.limit is not None else (min(limits) if limits else None),
        "concentration_basis": "flow-weighted mean" if weighted else "mean",
        "records": [r.report_no for r in records],
        "flow_m3h": flow,
        "flow_basis": "automatic" if inputs.flow_m3h is not None else "records",
        "operating_hours": hours,
    }


def choose(item: PollutantTotals, kind: str, inputs: OutletInputs) -> dict[str, Any]:
    """The source of one pollutant's quantity (第十条, in order) with why; ``quantity`` is
    None when none the platform holds is usable (``reason`` says so)."""
    records = _records_of(item, kind, inputs)
    agency = _supervisory(item, kind, records, inputs) if records else None
    available = [envtax.DataSource.AUTOMATIC] if item.usable_as_basis else []
    available += [envtax.DataSource.AGENCY] if agency else []
    choice = envtax.choose_data_source(available)
    share = item.totals.measured_share
    skipped = []
    if not item.usable_as_basis:
        measured = "no" if share is None else f"{share:.0%} of the"
        skipped.append(
            f"automatic monitoring measured {measured} operating hours: more than 25 % "
            "missing, not a basis (附录E E.1)"
        )
    if choice.source != envtax.DataSource.AUTOMATIC and not agency:
        skipped.append(
            "no supervisory monitoring result of the month"
            if not records
            else "supervisory results without a flow (no measured flow, none in the records)"
        )
    found: dict[str, Any] = {
        "source": choice.source.value,
        "article": choice.article,
        "reason": "; ".join([*skipped, choice.reason]),
        "quantity": None,
        "limit": item.limit,
        "concentration": None,
        "highest": None,
        "concentration_basis": None,
        "reference_o2": None,
        "records": [],
    }
    if choice.source == envtax.DataSource.AUTOMATIC:
        found.update(quantity=item.totals.mass_kg, **_concentrations(item, inputs))
    elif choice.source == envtax.DataSource.AGENCY and agency:
        found.update(agency)
    else:
        found["reason"] = "; ".join([*skipped, NO_FACTORS])
    return found


def exceedances(
    outlet: Any, accounted: Sequence[PollutantTotals], inputs: OutletInputs
) -> list[str]:
    """The values above their standard in the month at the outlet (财税〔2018〕117号 二):
    an hourly mean (converted to the reference O2 where the limit states one) or a
    supervisory result, for any pollutant of the annex."""
    found = []
    for item in accounted:
        if not _taxable(item, outlet.kind):
            continue
        converted = inputs.converted.get(item.parameter_code)
        # Where the limit states a reference O2: the hours that could be converted.
        highest = item.highest_concentration if converted is None else converted.highest
        if item.limit is not None and highest is not None and highest > item.limit:
            found.append(f"{outlet.code} {item.name} {highest:g} > {item.limit:g} {item.unit}")
        for record in _records_of(item, outlet.kind, inputs):
            limit = record.limit if record.limit is not None else item.limit
            if limit is not None and record.concentration > limit:
                found.append(
                    f"{outlet.code} {item.name} {record.concentration:g} > {limit:g} "
                    f"({record.report_no})"
                )
    return found


def _reduction_case(step: envtax.Step, found: Mapping[str, Any], exceeded: bool) -> str:
    """Which case of :func:`ecohub.standards.envtax.reduction` decided the factor, in its
    order, for the page's words."""
    if step.reduction_factor < 1:
        return "below_50" if step.reduction_factor == 0.5 else "below_30"
    if found.get("concentration_basis") == "unconverted":
        return "unconverted"
    if step.concentration is None or step.limit is None:
        return "no_concentration"
    if exceeded:
        return "taxpayer_exceeded"
    highest = found.get("highest")
    if highest is None:
        return "no_highest"
    return "value_exceeded" if highest > step.limit else "not_below_30"


def _accounting_row(item: PollutantTotals) -> dict[str, Any]:
    totals = item.totals
    return {
        "parameter_code": item.parameter_code,
        "name": item.name,
        "unit": item.unit,
        "limit": item.limit,
        "mass_kg": round(totals.mass_kg, 4),
        "hours_measured": totals.hours_measured,
        "hours_substituted": totals.hours_substituted,
        "hours_shutdown": totals.hours_shutdown,
        "hours_unresolved": totals.hours_unresolved,
        "measured_share": totals.measured_share,
        "usable_as_basis": item.usable_as_basis,
        "mean_concentration": item.mean_concentration,
        "highest_concentration": item.highest_concentration,
    }


def outlet_entry(
    outlet: Any,
    accounted: Sequence[PollutantTotals],
    *,
    province: str | None,
    rate: dict[str, float] | None = None,
    zone: str | None = None,
    on: dt.date | None = None,
    inputs: OutletInputs | None = None,
    exceeded: Sequence[str] = (),
) -> dict[str, Any]:
    """One outlet's month (``outlet``: its ``code``, ``name`` and ``kind``): the
    accounting of its pollutants, the source of each taxed one, and the tax with every
    step; a pollutant without a usable source is in ``unsourced`` (not taxed, not
    ranked), an outlet the tax cannot be computed for puts its reason in ``error``.
    ``on``: a day of the taxed month (the rate in force); ``exceeded``: the taxpayer's
    values above their standard that month (no reduction, 财税〔2018〕117号 二)."""
    inputs = inputs or OutletInputs()
    items = [item for item in accounted if _taxable(item, outlet.kind)]
    chosen = [(item, choose(item, outlet.kind, inputs)) for item in items]
    sourced = [(item, found) for item, found in chosen if found["quantity"] is not None]
    entry: dict[str, Any] = {
        "code": outlet.code,
        "name": outlet.name,
        "kind": outlet.kind,
        "accounting": [_accounting_row(item) for item in accounted],
        "usable_as_basis": all(item.usable_as_basis for item in items),
        "sources": [
            {"parameter_code": item.parameter_code, "name": item.name, **found}
            for item, found in chosen
        ],
        "unsourced": [
            {"parameter_code": item.parameter_code, "name": item.name, "reason": found["reason"]}
            for item, found in chosen
            if found["quantity"] is None
        ],
        "steps": [],
        "tax": 0.0,
        "error": None,
    }
    medium = _medium(outlet.kind)
    given = (rate or {}).get(medium)
    if sourced:
        emissions = [
            envtax.Emission(
                pollutant=item.parameter_code,
                quantity=found["quantity"],
                concentration=found.get("concentration"),
                highest=found.get("highest"),
                limit=found.get("limit"),
            )
            for item, found in sourced
        ]
        try:
            computed = envtax.outlet_tax(
                medium, emissions, rate=given, province=None if given else province,
                zone=zone, on=on, exceeded_elsewhere=bool(exceeded), tax_decimals=2,
            )  # fmt: skip
        except ValueError as error:
            entry["error"] = str(error)
        else:
            entry["steps"] = [
                {**step.__dict__, "parameter_code": item.parameter_code,
                 "source": found["source"], "source_article": found["article"],
                 "concentration_basis": found.get("concentration_basis"),
                 "highest": found.get("highest"),
                 "reduction_case": _reduction_case(step, found, bool(exceeded))}
                for step, (item, found) in zip(computed.steps, sourced, strict=True)
            ]  # fmt: skip
            entry["tax"] = computed.tax
    return entry


def gather(
    connection: Connection,
    usccs: dict[int, str],
    outlets: Sequence[Any],
    accounted: Mapping[int, Sequence[PollutantTotals]],
    year: int,
    month: int,
) -> dict[int, OutletInputs]:
    """The inputs of every outlet (``usccs``: enterprise id → credit code; ``outlets``
    rows with ``id``, ``enterprise_id``, ``code``, ``kind``): the month's supervisory
    results, the reference-O2 concentrations, and the month's flow where the automatic
    data are not a basis."""
    hours = month_hours(year, month)
    zone = local_zone()
    first, last = hours[0].astimezone(zone).date(), hours[-1].astimezone(zone).date()
    records = supervisory_records(connection, usccs.values(), year, month)
    wanted = [o for o in outlets if accounted.get(o.id)]
    references = reference_o2_limits(connection, [o.id for o in wanted], first, last)
    out = {}
    for outlet in wanted:
        found = tuple(records.get((usccs.get(outlet.enterprise_id, ""), outlet.code), ()))
        items = [i for i in accounted[outlet.id] if _taxable(i, outlet.kind)]
        needs_flow = bool(found) and not all(i.usable_as_basis for i in items)
        out[outlet.id] = OutletInputs(
            supervisory=found,
            flow_m3h=month_flow(connection, outlet.id, outlet.kind, hours) if needs_flow else None,
            converted=converted_month(connection, outlet.id, references.get(outlet.id, {}), hours),
        )
    return out


def enterprise_tax(
    enterprise: Any,
    year: int,
    month: int,
    outlets: Sequence[Any],
    accounted: Mapping[int, Sequence[PollutantTotals]],
    inputs: Mapping[int, OutletInputs],
    *,
    rate: dict[str, float] | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    """An enterprise's month (``enterprise``: its ``uscc``, ``name`` and
    ``region_code``) from its outlets' accounting and inputs (:func:`gather`): the zone
    given or derived from the division, the taxpayer's exceedances, each outlet's entry."""
    province = province_of(enterprise.region_code)
    check_zone(province, zone)
    used_zone = zone or zone_of(province, enterprise.region_code)
    exceeded = [
        text
        for outlet in outlets
        for text in exceedances(
            outlet, accounted.get(outlet.id, ()), inputs.get(outlet.id, OutletInputs())
        )
    ]
    entries = [
        outlet_entry(
            outlet,
            accounted.get(outlet.id, ()),
            province=province,
            rate=rate,
            zone=used_zone,
            on=dt.date(year, month, 1),
            inputs=inputs.get(outlet.id),
            exceeded=exceeded,
        )
        for outlet in outlets
    ]
    found = enterprise_entry(enterprise, year, month, entries)
    known = zones(province)
    found.update(
        zone=used_zone if known else None,
        zones=known,
        zone_needed=bool(known) and used_zone is None,
        exceedances=exceeded,
        complete=not any(e["error"] or e["unsourced"] for e in entries),
    )
    return found


def enterprise_entry(
    enterprise: Any, year: int, month: int, outlets: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """An enterprise's month (``enterprise``: its ``uscc``, ``name`` and
    ``region_code``) from its outlets' entries (:func:`outlet_entry`)."""
    total = 0.0
    for entry in outlets:
        total += entry["tax"]
    return {
        "uscc": enterprise.uscc,
        "name": enterprise.name,
        "province": province_of(enterprise.region_code),
        "month": f"{year}-{month:02d}",
        "outlets": list(outlets),
        "tax": round(total, 2),
    }


def month_tax(
    engine: Engine,
    uscc: str,
    year: int,
    month: int,
    *,
    rate: dict[str, float] | None = None,
    zone: str | None = None,
) -> dict[str, Any]:
    """The month's tax of every outlet, with the accounting, the sources and every step.
    ``rate`` overrides the province's rate per medium (``{"air": 1.2}``); ``zone`` where
    the province sets rates by area (河北's 一档/二档/三档; 江苏's cities are derived from
    the enterprise's division)."""
    found = enterprise_month(engine, uscc, year, month)
    enterprise = found["enterprise"]
    accounted = {
        outlet.id: [item.summary() for item in found["accounted"][outlet.id]]
        for outlet in found["outlets"]
    }
    with engine.connect() as connection:
        inputs = gather(
            connection, {enterprise.id: enterprise.uscc}, found["outlets"], accounted, year, month
        )
    return enterprise_tax(
        enterprise, year, month, found["outlets"], accounted, inputs, rate=rate, zone=zone
    )
