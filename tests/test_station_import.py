"""``ecohub import stations`` over the official CNEMC station lists, end to end: every
station ever listed is a site with its latest name, city and coordinates, cities are
regions marked as cities, control sites are marked, and a second import changes
nothing. Expected values are typed from the lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ecohub.cli.main import app
from ecohub.config import get_settings
from ecohub.db.engine import make_engine
from ecohub.registry.models import AuditEntry, Region, Site

STATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "cnemc" / "stations"
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if not STATIONS.exists():
        pytest.skip(f"{STATIONS} is absent: the real-data tests need ../shared/data")
    url = f"sqlite:///{tmp_path / 'stations.sqlite3'}"
    monkeypatch.setenv("ECOHUB_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_every_listed_station_becomes_a_site_in_its_city(store: str) -> None:
    result = runner.invoke(app, ["import", "stations", str(STATIONS)])
    assert result.exit_code == 0, result.output
    engine = make_engine(store)
    with Session(engine) as session:
        # 2,030 codes are listed over the 22 lists (2,026 in 2022.02.13起).
        assert session.scalar(select(func.count()).select_from(Site)) == 2030
        # 1001A: 万寿西宫, 北京, 116.366, 39.8673 (站点列表-2022.02.13起).
        site = session.scalars(select(Site).filter_by(code="1001A")).one()
        assert (site.name, site.region_code, site.control_point) == (
            "北京万寿西宫",
            "110000",
            False,
        )
        # 1002A 定陵 is marked 对照点 Y: Beijing's control site.
        assert session.scalars(select(Site).filter_by(code="1002A")).one().control_point
        # 库尔勒 (652801) is a county-level city that CNEMC ranks as a city.
        korla = session.get(Region, "652801")
        assert korla is not None and korla.level == "city" and korla.parent_code == "650000"
        assert session.get(Region, "130000").level == "province"  # type: ignore[union-attr]
        audits = session.scalar(select(func.count()).select_from(AuditEntry))
    again = runner.invoke(app, ["import", "stations", str(STATIONS)])
    assert again.exit_code == 0, again.output
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audits
    engine.dispose()
