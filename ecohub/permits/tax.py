"""The environmental protection tax of an enterprise's month from its monitoring data:
each outlet's pollutants accounted (:mod:`ecohub.permits.accounting`: automatic
monitoring, 环境保护税法 第十条（一）), then taxed by :func:`ecohub.standards.envtax.outlet_tax`
(equivalents, the taxable pollutants, the reductions with the permit's concentration
limits, the rate of the enterprise's province), every step kept for the page.

When more than 25 % of an outlet's operating hours were not measured the automatic data
cannot be the basis (the permit rules' 附录E E.1); the result says so beside the figure,
which then only counts what was measured and substituted — the other sources of 第十条
(supervisory monitoring, factors) are not in the platform.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Any

from sqlalchemy import Engine

from ecohub.permits.accounting import PollutantTotals, enterprise_month
from ecohub.standards import envtax


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


def _emission(item: PollutantTotals) -> envtax.Emission:
    return envtax.Emission(
        pollutant=item.parameter_code,
        quantity=item.totals.mass_kg,
        concentration=item.mean_concentration,
        highest=item.highest_concentration,
        limit=item.limit,
    )


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
) -> dict[str, Any]:
    """One outlet's month (``outlet``: its ``code``, ``name`` and ``kind``): the
    accounting of its pollutants and the tax of the taxable ones, every step kept; a
    pollutant the tax cannot be computed for puts its reason in ``error`` (tax 0)."""
    items = [item for item in accounted if _taxable(item, outlet.kind)]
    entry: dict[str, Any] = {
        "code": outlet.code,
        "name": outlet.name,
        "kind": outlet.kind,
        "accounting": [_accounting_row(item) for item in accounted],
        "usable_as_basis": all(item.usable_as_basis for item in items),
        "steps": [],
        "tax": 0.0,
        "error": None,
    }
    medium = envtax.AIR if outlet.kind == "gas" else envtax.WATER
    if items:
        try:
            computed = envtax.outlet_tax(
                medium,
                [_emission(item) for item in items],
                rate=(rate or {}).get(medium),
                province=None if (rate or {}).get(medium) else province,
                zone=zone,
                tax_decimals=2,
            )
        except ValueError as error:
            entry["error"] = str(error)
        else:
            entry["steps"] = [step.__dict__ for step in computed.steps]
            entry["tax"] = computed.tax
    return entry


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
    """The month's tax of every outlet, with the accounting and every step. ``rate``
    overrides the province's rate per medium (``{"air": 1.2}``); ``zone`` where the
    province sets rates by area (河北's 一档/二档/三档)."""
    found = enterprise_month(engine, uscc, year, month)
    enterprise = found["enterprise"]
    province = province_of(enterprise.region_code)
    outlets = [
        outlet_entry(
            outlet,
            [item.summary() for item in found["accounted"][outlet.id]],
            province=province,
            rate=rate,
            zone=zone,
        )
        for outlet in found["outlets"]
    ]
    return enterprise_entry(enterprise, year, month, outlets)


def _taxable(item: PollutantTotals, kind: str) -> bool:
    """A pollutant the annex lists for the outlet's medium."""
    try:
        envtax.pollutant(item.parameter_code, envtax.AIR if kind == "gas" else envtax.WATER)
    except ValueError:
        return False
    return True
