"""``ecohub demo load`` with the shared real data: the portal's first view is real. The
official station lists become the registry (every station, cities as regions), the
newest real CNEMC day is loaded, the national surface-water release too, and the map's
feed and the ranking open on that day. SQLite only (what ``make run`` uses)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecohub.app import create_app
from ecohub.cli.main import app
from ecohub.config import get_settings
from ecohub.db.engine import make_engine

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if not (SHARED / "cnemc" / "china_sites").exists():
        pytest.skip(f"{SHARED} is absent: the real-data tests need ../shared/data")
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    monkeypatch.setenv("ECOHUB_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_the_first_view_is_the_latest_real_day(store: str) -> None:
    result = CliRunner().invoke(
        app, ["demo", "load", "--days", "1", "--cnemc-dir", str(SHARED / "cnemc")]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # as printed, without the console's line breaks
    # The newest file of the shared data is china_sites_20250124.csv.
    assert "the portal opens on 2025-01-24" in said
    assert "SIMULATED" not in said
    engine = make_engine(store)
    client = TestClient(create_app(engine))
    latest = client.get("/api/v1/aqi/latest").json()
    # The national network, not the demo's two dozen stations: 1,612 stations publish an
    # AQI in china_sites_20250124.csv (of its 2,026 columns).
    assert len(latest) >= 1612
    # 1001A 万寿西宫's newest AQI is of 2025-01-24 (its last hour, 23:00 Beijing time).
    wanshou = next(row for row in latest if row["site"] == "1001A")
    assert wanshou["ts"] == "2025-01-24T15:00:00Z"
    ranking = client.get("/api/v1/ranking/cities").json()
    assert ranking["ts"] == "2025-01-24T15:00:00Z" and len(ranking["cities"]) > 300
    water = client.get("/api/v1/sites", params={"kind": "surface_water", "limit": 5000}).json()
    assert len(water) >= 388
    engine.dispose()
