"""Where a complaint is: the prefecture-level division (GB/T 2260 city code) a point lies
in, found in the boundaries the portal's map ships (``ecohub/web/static/geo``,
simplified to about 1 km: a point within a kilometre of a boundary may fall on the
wrong side, which the receiving agency corrects by a transfer), and the compass
bearing from one point to another (for upwind sources).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib.resources import files

import shapely
from shapely import STRtree
from shapely.geometry import shape

from ecohub.complaints.linking import EARTH_RADIUS_M
from ecohub.complaints.linking import haversine_m as distance_m  # noqa: F401 (the area's one)

# Mainland China, Hong Kong, Macao and Taiwan with a margin: a point outside is refused.
LONGITUDE_RANGE = (73.0, 136.0)
LATITUDE_RANGE = (3.0, 54.0)
# A point outside every outline but this near one (degrees, about 5 km) is in it: the
# outlines are simplified to about 1 km and coasts move.
NEAREST_DEG = 0.05


@cache
def _layer(name: str) -> tuple[STRtree, tuple[str, ...], tuple[str, ...]]:
    """The outlines of ``cities`` or ``provinces``, made valid (the simplified outlines
    of 147 of the 367 cities cross themselves, and a ring may turn inside out)."""
    text = (files("ecohub.web") / "static" / "geo" / f"{name}.geojson").read_text("utf-8")
    features = json.loads(text)["features"]
    geometries = [shapely.make_valid(shape(feature["geometry"])) for feature in features]
    for geometry in geometries:
        shapely.prepare(geometry)
    codes = tuple(str(feature["properties"]["code"]) for feature in features)
    names = tuple(str(feature["properties"]["name"]) for feature in features)
    return STRtree(geometries), codes, names


def in_china(longitude: float, latitude: float) -> bool:
    return (
        LONGITUDE_RANGE[0] <= longitude <= LONGITUDE_RANGE[1]
        and LATITUDE_RANGE[0] <= latitude <= LATITUDE_RANGE[1]
    )


def city_of(longitude: float, latitude: float) -> tuple[str, str] | None:
    """(code, name) of the division :func:`cities_of` finds for the point, or None."""
    found = cities_of([(longitude, latitude)])[0]
    if found is None:
        return None
    for layer in ("cities", "provinces"):
        _, codes, names = _layer(layer)
        if found in codes:
            return found, names[codes.index(found)]
    return None


def cities_of(points: list[tuple[float, float]]) -> list[str | None]:
    """The division code of each (longitude, latitude), in vectorised queries: the city
    whose outline holds it; else the province's (the municipalities' city outlines are
    partial); else the nearest city within :data:`NEAREST_DEG` (coasts)."""
    found: list[str | None] = [None] * len(points)
    if not points:
        return found
    geometries = shapely.points(points)
    for layer in ("cities", "provinces"):
        missing = [index for index, code in enumerate(found) if code is None]
        if not missing:
            break
        tree, codes, _ = _layer(layer)
        inputs, hits = tree.query(geometries[missing], predicate="intersects")
        for point, hit in zip(inputs.tolist(), hits.tolist(), strict=True):
            if found[missing[point]] is None:
                found[missing[point]] = codes[hit]
    missing = [index for index, code in enumerate(found) if code is None]
    if missing:
        tree, codes, _ = _layer("cities")
        inputs, hits = tree.query_nearest(geometries[missing], max_distance=NEAREST_DEG)
        for point, hit in zip(inputs.tolist(), hits.tolist(), strict=True):
            if found[missing[point]] is None:
                found[missing[point]] = codes[hit]
    return found


def bearing_deg(from_lon: float, from_lat: float, to_lon: float, to_lat: float) -> float:
    """Initial compass bearing (degrees clockwise from north) from one point to another."""
    phi1, phi2 = math.radians(from_lat), math.radians(to_lat)
    delta = math.radians(to_lon - from_lon)
    y = math.sin(delta) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(delta)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def angle_between(a: float, b: float) -> float:
    """The smaller angle (0..180) between two compass directions."""
    difference = abs(a - b) % 360.0
    return min(difference, 360.0 - difference)


def box(longitude: float, latitude: float, radius_m: float) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a box holding the circle of ``radius_m`` (the
    distance itself: :func:`distance_m`, the linking's haversine)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians(min(abs(latitude) + dlat, 89.0))), 0.01)
    return longitude - dlon, latitude - dlat, longitude + dlon, latitude + dlat
