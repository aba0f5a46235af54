"""The rate zone of an enterprise where a province sets its environmental protection tax rates
by area (环境保护税法 第六条第二款; the rates in ``data/envtax_rates.csv``, column ``zone``), from
the division's GB/T 2260 code (``data/envtax_rate_zones.csv``, each province's source in its
header). Where a province's zones are not tabled by division (河北's 一档/二档/三档), the zone must
be given.
"""

from __future__ import annotations

from ecohub.standards.envtax import rates
from ecohub.standards.tables import read_table


def zones(province: str | None) -> list[str]:
    """The zones a province's rates depend on, in the rates table's order (empty: none)."""
    return list(dict.fromkeys(r.zone for r in rates() if r.province == province and r.zone))


def zone_of(province: str | None, region_code: str | None) -> str | None:
    """The zone of a division (its six-digit GB/T 2260 code) where it is tabled; None where
    the province has no zones or its zones are not tabled by division."""
    if not province or not region_code:
        return None
    for row in read_table("envtax_rate_zones"):
        if row["province"] == province and region_code.startswith(row["region"]):
            return row["zone"]
    return None


def check_zone(province: str | None, zone: str | None) -> None:
    """A clear error for a zone the province's rates do not have (a zone given for a province
    without zones is not used)."""
    known = zones(province)
    if zone is not None and known and zone not in known:
        raise ValueError(
            f"zone: {zone!r} is not one of {province}'s rate zones ({'、'.join(known)})"
        )
