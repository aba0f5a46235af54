"""An enterprise's month of emissions day by day (Beijing calendar): each outlet's
pollutants as :mod:`ecohub.permits.accounting` accounts them hour by hour, summed per
local day by :func:`ecohub.standards.cems.daily_totals`, with the hours measured,
substituted, shut down and unresolved of each day."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from ecohub.clock import local_zone
from ecohub.permits.accounting import enterprise_month, month_hours
from ecohub.standards import cems


def month_days(engine: Engine, uscc: str, year: int, month: int) -> dict[str, Any]:
    """The month's mass (kg) of every pollutant of every outlet, by local day."""
    found = enterprise_month(engine, uscc, year, month)
    zone = local_zone()
    days = [at.astimezone(zone).date() for at in month_hours(year, month)]
    rows = []
    for outlet in found["outlets"]:
        for item in found["accounted"][outlet.id]:
            by_day = cems.daily_totals(days, item.accounting)
            rows.append(
                {
                    "outlet": outlet.code,
                    "parameter_code": item.parameter_code,
                    "name": item.name,
                    "mass_kg": round(item.accounting.totals.mass_kg, 4),
                    "days": [
                        {
                            "day": day.isoformat(),
                            "mass_kg": round(totals.mass_kg, 4),
                            "hours_measured": totals.hours_measured,
                            "hours_substituted": totals.hours_substituted,
                            "hours_shutdown": totals.hours_shutdown,
                            "hours_unresolved": totals.hours_unresolved,
                        }
                        for day, totals in sorted(by_day.items())
                    ],
                }
            )
    enterprise = found["enterprise"]
    return {
        "uscc": enterprise.uscc,
        "name": enterprise.name,
        "month": f"{year}-{month:02d}",
        "pollutants": rows,
    }
