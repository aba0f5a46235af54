"""Vendor the portal's pinned front-end assets from the npm registry into the package.

Run once when a pinned version changes (``python scripts/vendor_frontend.py``); its
output under ``ecohub/web/static/`` is committed, so the portal needs no network.

- Leaflet (BSD-2-Clause) draws the one map, Leaflet.markercluster (MIT) groups nearby
  markers; Apache ECharts (Apache-2.0) the charts;
  Swagger UI (Apache-2.0) the API's ``/docs`` page;
- the province and city boundaries are the GeoJSON that ECharts 4.9.0 shipped
  (``map/json/china.json`` and ``map/json/china-cities.json``, Apache-2.0), decoded from
  ECharts' compact encoding, simplified (Ramer–Douglas–Peucker, tolerance 0.01°, about
  1 km) and rounded to 0.001°: ample for a province- or city-scale outline on a web map,
  and small enough to load at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "ecohub" / "web" / "static"

# name → (pinned version, files to take: package path → vendored path); npm checks each
# tarball against the registry's sha512 integrity.
PACKAGES: dict[str, tuple[str, dict[str, str]]] = {
    "leaflet": (
        "1.9.4",
        {
            "dist/leaflet.js": "leaflet.js",
            "dist/leaflet.css": "leaflet.css",
            "dist/images/marker-icon.png": "images/marker-icon.png",
            "dist/images/marker-shadow.png": "images/marker-shadow.png",
            "dist/images/layers.png": "images/layers.png",
            "LICENSE": "LICENSE",
        },
    ),
    # Clusters of nearby markers on the one map (MIT).
    "leaflet.markercluster": (
        "1.5.3",
        {
            "dist/leaflet.markercluster.js": "leaflet.markercluster.js",
            "dist/MarkerCluster.css": "MarkerCluster.css",
            "dist/MarkerCluster.Default.css": "MarkerCluster.Default.css",
            "MIT-LICENCE.txt": "MIT-LICENCE.txt",
        },
    ),
    "echarts": (
        "6.1.0",
        {"dist/echarts.min.js": "echarts.min.js", "LICENSE": "LICENSE", "NOTICE": "NOTICE"},
    ),
    # The API's /docs page, served from here instead of FastAPI's default CDN.
    "swagger-ui-dist": (
        "5.32.0",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui.css": "swagger-ui.css",
            "LICENSE": "LICENSE",
        },
    ),
}
GEO_PACKAGE = ("echarts", "4.9.0")
GEO_FILES = {
    "map/json/china.json": "provinces.geojson",
    "map/json/china-cities.json": "cities.geojson",
}
DECIMALS = 3
TOLERANCE = 0.01  # degrees


def npm_pack(name: str, version: str, workdir: Path) -> tarfile.TarFile:
    """The package tarball from the npm registry (npm verifies its integrity)."""
    output = (
        subprocess.run(
            ["npm", "pack", f"{name}@{version}", "--silent"],
            cwd=workdir,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return tarfile.open(workdir / output)


def read(tar: tarfile.TarFile, member: str) -> bytes:
    extracted = tar.extractfile(f"package/{member}")
    if extracted is None:
        raise SystemExit(f"{member} missing from the package")
    return extracted.read()


def decode_ring(encoded: str, offsets: list[int], scale: float) -> list[list[float]]:
    """One ring of ECharts' compact geometry (zig-zag, delta-coded character pairs);
    the algorithm of ``decodePolygon`` in echarts 4.9.0 ``src/coord/geo/parseGeoJson.js``."""
    ring: list[list[float]] = []
    previous_x, previous_y = offsets
    for index in range(0, len(encoded) - 1, 2):
        x = ord(encoded[index]) - 64
        y = ord(encoded[index + 1]) - 64
        x = (x >> 1) ^ (-(x & 1))
        y = (y >> 1) ^ (-(y & 1))
        previous_x += x
        previous_y += y
        point = [round(previous_x / scale, DECIMALS), round(previous_y / scale, DECIMALS)]
        if not ring or ring[-1] != point:
            ring.append(point)
    if ring and ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    return simplify(ring)


def simplify(ring: list[list[float]], tolerance: float = TOLERANCE) -> list[list[float]]:
    """Ramer–Douglas–Peucker simplification of a closed ring (iterative)."""
    if len(ring) <= 4:
        return ring
    keep = [False] * len(ring)
    keep[0] = keep[-1] = True
    stack = [(0, len(ring) - 1)]
    while stack:
        first, last = stack.pop()
        (x1, y1), (x2, y2) = ring[first], ring[last]
        dx, dy = x2 - x1, y2 - y1
        length = (dx * dx + dy * dy) ** 0.5
        farthest, distance = -1, tolerance
        for index in range(first + 1, last):
            x, y = ring[index]
            if length == 0:
                d = ((x - x1) ** 2 + (y - y1) ** 2) ** 0.5
            else:
                d = abs(dy * x - dx * y + x2 * y1 - y2 * x1) / length
            if d > distance:
                farthest, distance = index, d
        if farthest >= 0:
            keep[farthest] = True
            stack.extend([(first, farthest), (farthest, last)])
    simplified = [point for point, kept in zip(ring, keep, strict=True) if kept]
    if len(simplified) < 4:  # a ring smaller than the tolerance: keep a triangle of it
        step = max(1, len(ring) // 3)
        simplified = [ring[0], ring[step], ring[min(2 * step, len(ring) - 2)], ring[0]]
    return simplified


def decode_geojson(document: dict) -> dict:
    """Plain GeoJSON from ECharts' encoded map JSON, with only code and name kept."""
    scale = document.get("UTF8Scale") or 1024
    features = []
    for feature in document["features"]:
        geometry = feature["geometry"]
        offsets = geometry["encodeOffsets"]
        if geometry["type"] == "Polygon":
            polygons = [
                [
                    decode_ring(ring, offsets[i], scale)
                    for i, ring in enumerate(geometry["coordinates"])
                ]
            ]
        else:
            polygons = [
                [decode_ring(ring, offsets[p][i], scale) for i, ring in enumerate(polygon)]
                for p, polygon in enumerate(geometry["coordinates"])
            ]
        polygons = [[ring for ring in polygon if len(ring) >= 4] for polygon in polygons]
        polygons = [polygon for polygon in polygons if polygon]
        code = str(feature.get("id") or feature["properties"].get("id"))
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": feature["properties"]["name"]},
                "geometry": {"type": "MultiPolygon", "coordinates": polygons},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        workdir = Path(temporary)
        for name, (version, members) in PACKAGES.items():
            target = STATIC / "vendor" / f"{name}-{version}"
            shutil.rmtree(target, ignore_errors=True)
            with npm_pack(name, version, workdir) as tar:
                for source, destination in members.items():
                    path = target / destination
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(read(tar, source))
            print(f"{name}@{version} → {target.relative_to(STATIC.parent.parent.parent)}")
        geo = STATIC / "geo"
        geo.mkdir(parents=True, exist_ok=True)
        with npm_pack(*GEO_PACKAGE, workdir) as tar:
            (geo / "LICENSE").write_bytes(read(tar, "LICENSE"))
            for source, destination in GEO_FILES.items():
                document = decode_geojson(json.load(io.BytesIO(read(tar, source))))
                text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
                (geo / destination).write_text(text, encoding="utf-8")
                digest = hashlib.sha256(text.encode()).hexdigest()[:12]
                print(
                    f"{source} → {destination}: {len(document['features'])} features, "
                    f"{len(text) // 1024} KiB, sha256 {digest}"
                )


if __name__ == "__main__":
    sys.exit(main())
