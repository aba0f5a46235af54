"""Administrative division codes (GB/T 2260): which city a region belongs to, and which
codes a region covers."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Connection, select

from ecohub.registry.models import Region, RegionLevel


def city_code(region_code: str | None) -> str | None:
    """The city (地级) a GB/T 2260 region code belongs to: 130102 → 130100; province-level
    municipalities (北京 11, 天津 12, 上海 31, 重庆 50) count as one city."""
    if not region_code or len(region_code) != 6:
        return None
    if region_code[:2] in ("11", "12", "31", "50") or region_code[2:] == "0000":
        return region_code[:2] + "0000"
    return region_code[:4] + "00"


def region_prefix(code: str) -> str:
    """The GB/T 2260 prefix a region code covers: 110000 → 11 (the province and all of
    its cities and districts), 130100 → 1301, 130102 → 130102."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def city_of(region_code: str | None, cities: Collection[str] = ()) -> str | None:
    """The city a region belongs to, for city AQI and rankings: the region itself when
    the registry marks it a city (``cities``: a county-level city such as 库尔勒 652801
    is one of CNEMC's cities), else the city its code folds to (:func:`city_code`)."""
    if region_code in cities:
        return region_code
    return city_code(region_code)


def city_level_codes(connection: Connection) -> frozenset[str]:
    """The codes of the regions the registry marks as cities."""
    return frozenset(
        connection.execute(
            select(Region.code).where(Region.level == RegionLevel.CITY.value)
        ).scalars()
    )
