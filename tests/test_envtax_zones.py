"""The rate zones by division (``ecohub/standards/data/envtax_rate_zones.csv``): every
division code is a city the shipped outlines know (GB/T 2260), under the zone's name."""

from __future__ import annotations

import csv
import json
from importlib.resources import files


def test_zone_codes_are_the_shipped_cities() -> None:
    outlines = json.loads(
        (files("ecohub.web") / "static" / "geo" / "cities.geojson").read_text("utf-8")
    )
    cities = {f["properties"]["code"]: f["properties"]["name"] for f in outlines["features"]}
    text = (files("ecohub.standards") / "data" / "envtax_rate_zones.csv").read_text("utf-8")
    rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
    assert len(rows) == 13
    for row in rows:
        code = row["region"].ljust(6, "0")
        assert cities.get(code) == row["zone"].removesuffix("市"), row
