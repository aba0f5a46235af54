"""The risk score of an enterprise for risk-targeted inspection (精准监管): a transparent
weighted sum of its evidence (:mod:`ecohub.supervision.evidence`), each component scaled
to 0..1 by a cap and weighted, with the weights and caps a data table
(``data/risk_weights.csv``) that a locality replaces with its own.

    score = 100 × Σ wᵢ · min(1, xᵢ / capᵢ) / Σ wᵢ

``transmission_gap`` is 1 − the transmission rate (0 when no data was expected: an
enterprise with no point under a permit limit; a silent one that is expected is wholly
missing). A component with a ``target`` in the table (the transmission rate's 90 %) counts
only the shortfall below it: ``max(0, target − rate)``, scaled by the cap.
The result lists every component with its value, scaled value, weight and points, so
that the ranking explains itself. Pure: no I/O beyond reading the packaged table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

COMPONENTS = (
    "exceedance_hours",
    "max_multiple",
    "mass_overruns",
    "anomaly_hours",
    "offline_hours",
    "transmission_gap",
    "penalties",
    "overdue_rectifications",
    "complaint_events",
)


@dataclass(frozen=True)
class Weight:
    component: str
    weight: float
    cap: float
    # For a rate's gap (1 − rate): the rate aimed at; only the shortfall below it counts.
    target: float | None = None


def load_weights(path: str | Path | None = None) -> dict[str, Weight]:
    """The weights table (the packaged one by default); every component must appear once,
    with a weight ≥ 0 and a cap > 0."""
    if path is None:
        text = files("ecohub.supervision").joinpath("data/risk_weights.csv").read_text("utf-8")
        name = "risk_weights.csv"
    else:
        text, name = Path(path).read_text("utf-8"), str(path)
    lines = [line for line in io.StringIO(text) if not line.startswith("#")]
    found: dict[str, Weight] = {}
    for number, row in enumerate(csv.DictReader(lines), start=2):
        component = (row.get("component") or "").strip()
        if component not in COMPONENTS:
            raise ValueError(f"{name}: row {number}: unknown component {component!r}")
        try:
            weight, cap = float(row["weight"]), float(row["cap"])
        except (TypeError, ValueError):
            raise ValueError(f"{name}: row {number}: weight and cap must be numbers") from None
        if weight < 0 or cap <= 0:
            raise ValueError(f"{name}: row {number}: weight ≥ 0 and cap > 0 needed")
        if component in found:
            raise ValueError(f"{name}: row {number}: {component} listed twice")
        found[component] = Weight(component, weight, cap, _target(row, name, number))
    missing = set(COMPONENTS) - set(found)
    if missing:
        raise ValueError(f"{name}: missing components {', '.join(sorted(missing))}")
    if not sum(w.weight for w in found.values()):
        raise ValueError(f"{name}: every weight is 0")
    return found


def _target(row: Mapping[str, str | None], name: str, number: int) -> float | None:
    """The optional ``target`` column: a rate in (0, 1], or empty."""
    given = (row.get("target") or "").strip()
    if not given:
        return None
    try:
        target = float(given)
    except ValueError:
        raise ValueError(f"{name}: row {number}: target must be a number") from None
    if not 0 < target <= 1:
        raise ValueError(f"{name}: row {number}: target must be a rate in (0, 1]")
    return target


def risk_score(values: Mapping[str, float], weights: Mapping[str, Weight]) -> dict[str, Any]:
    """The score (0-100) and its components from the evidence ``values`` (by component)."""
    total = sum(w.weight for w in weights.values())
    parts = []
    score = 0.0
    for component in COMPONENTS:
        weight = weights[component]
        value = max(0.0, float(values.get(component, 0.0)))
        counted = value if weight.target is None else max(0.0, value - (1 - weight.target))
        scaled = min(1.0, counted / weight.cap)
        points = 100 * weight.weight * scaled / total
        score += points
        parts.append(
            {
                "component": component,
                "value": value,
                "target": weight.target,
                "counted": round(counted, 6),
                "scaled": round(scaled, 4),
                "weight": weight.weight,
                "cap": weight.cap,
                "points": round(points, 2),
            }
        )
    return {"score": round(score, 2), "components": parts}


def evidence_values(evidence: Mapping[str, Any]) -> dict[str, float]:
    """The components of an evidence document (``Evidence.as_dict()``)."""
    rate = evidence.get("transmission_rate")
    return {
        "exceedance_hours": float(evidence["exceedance_hours"]),
        "max_multiple": float(evidence["max_exceedance_multiple"]),
        "mass_overruns": float(evidence.get("mass_overruns", 0)),
        "anomaly_hours": float(evidence["anomaly_hours"]),
        "offline_hours": float(evidence["offline_hours"]),
        "transmission_gap": 0.0 if rate is None else max(0.0, 1.0 - float(rate)),
        "penalties": float(evidence["penalties"]),
        "overdue_rectifications": float(evidence["overdue_rectifications"]),
        "complaint_events": float(evidence.get("complaint_events", 0)),
    }
