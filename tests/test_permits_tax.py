"""A month's emissions and environmental protection tax from stored monitoring data, on
both backends, against hand-computed hours.

京西 (the demo registry: Beijing, outlet DA001, permit limits SO2 10, NOx 30, 烟尘 5
mg/m³) sends hourly means for March 2024 (744 hours, Beijing calendar): even hours SO2 3,
NOx 14, 烟尘 1 mg/m³ at 9.9 m³/s; odd hours 5, 16, 3 mg/m³ at 10.1 m³/s. Hours 100-101
carry the flag F (停运): no mass. Hours 200-201 are missing: each is the mean of the
valid hours either side (hour 199 odd, 202 even): SO2 (5 + 3) / 2 = 4 mg/m³ at 10 m³/s.

SO2 by hand: 370 × 3 × 9.9 × 3600 × 10⁻⁶ + 370 × 5 × 10.1 × 3600 × 10⁻⁶ + 2 × 4 × 10 × 3600
× 10⁻⁶ = 39.5604 + 67.266 + 0.288 = 107.1144 kg; ÷ 0.95 kg (附表二 表五) = 112.752
equivalents; month mean 4 of 10 (< 50 %, and no hour above): 50 % (第十三条); × 12 元
(北京) × 0.5 = 676.51 元.
"""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits.accounting import enterprise_year, month_hours
from ecohub.permits.tax import month_tax
from ecohub.registry.models import PermitLimit
from ecohub.timeseries.observations import Observation

warnings.filterwarnings("ignore", category=DeprecationWarning)
JINGXI = "91110106MA00DEM01H"
HUDONG = "91310115MA1HDEM025"
SERIES = (("a21026", 3.0, 5.0), ("a21002", 14.0, 16.0), ("a34013", 1.0, 3.0))
FLOW = (9.9, 10.1)  # m³/s
H = 3600e-6  # m³/s → m³/h, mg → kg


def _mass(even: float, odd: float) -> float:
    """370 measured even and odd hours each, two substituted hours at the mean of the
    neighbours (an odd and an even hour) and the mean flow 10 m³/s."""
    return 370 * even * FLOW[0] * H + 370 * odd * FLOW[1] * H + 2 * (even + odd) / 2 * 10 * H


@pytest.fixture
def march(engine: Engine, points: dict[str, int]) -> Engine:
    rows = []
    for index, at in enumerate(month_hours(2024, 3)):
        if index in (200, 201):
            continue
        flag = "F" if index in (100, 101) else "N"
        odd = index % 2
        for code, even_value, odd_value in (*SERIES, ("a00000", *FLOW)):
            value = odd_value if odd else even_value
            rows.append(Observation(points["P0001"], code, "hour", at, value, flag, 0, "t"))
    Pipeline(engine).process(rows, now=dt.datetime(2024, 4, 2, tzinfo=dt.UTC))
    return engine


def test_month_tax_from_the_hours(march: Engine) -> None:
    assert len(month_hours(2024, 3)) == 744
    found = month_tax(march, JINGXI, 2024, 3)
    assert found["province"] == "北京"
    (outlet,) = found["outlets"]
    accounting = {row["parameter_code"]: row for row in outlet["accounting"]}
    so2 = accounting["a21026"]
    assert so2["mass_kg"] == pytest.approx(107.1144, abs=1e-4)
    assert (so2["hours_measured"], so2["hours_substituted"], so2["hours_shutdown"]) == (740, 2, 2)
    assert so2["hours_unresolved"] == 0 and so2["usable_as_basis"]
    assert so2["mean_concentration"] == 4.0 and so2["highest_concentration"] == 5.0
    steps = {step["pollutant"]: step for step in outlet["steps"]}
    sulphur = steps["二氧化硫"]
    assert sulphur["equivalents"] == pytest.approx(107.1144 / 0.95)
    assert sulphur["reduction_factor"] == 0.5 and sulphur["tax"] == 676.51
    # NOx: month mean 15 of 30 is not below 50 % but below 70 %: 75 %.
    nitrogen = steps["氮氧化物"]
    assert nitrogen["reduction_factor"] == 0.75
    assert nitrogen["quantity"] == pytest.approx(_mass(14, 16))
    assert nitrogen["tax"] == round(_mass(14, 16) / 0.95 * 12 * 0.75, 2)
    dust = steps["烟尘"]  # 2.18 kg (附表二 表五), mean 2 of 5: 50 %
    assert dust["tax"] == round(_mass(1, 3) / 2.18 * 12 * 0.5, 2)
    assert [step["rank"] for step in outlet["steps"]] == [1, 2, 3]  # NOx, SO2, 烟尘
    assert found["tax"] == pytest.approx(sum(step["tax"] for step in outlet["steps"]))


def test_who_may_read_a_month(march: Engine) -> None:
    with Session(march) as session:
        keys = {
            "agency": issue_key(session, name="agency", role=Role.AGENCY, created_by="t"),
            "public": issue_key(session, name="public", role=Role.PUBLIC, created_by="t"),
            "jingxi": issue_key(
                session, name="jingxi", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
            ),
        }
        session.commit()
    client = TestClient(create_app(march))
    url = f"/api/v1/permits/{JINGXI}/tax?month=2024-03"

    def get(path: str, key: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {keys[key]}"} if key else {}
        return client.get(path, headers=headers).status_code

    assert get(url, "agency") == 200 and get(url, "jingxi") == 200
    assert get(url) == 401 and get(url, "public") == 403
    assert get(f"/api/v1/permits/{HUDONG}/tax?month=2024-03", "jingxi") == 404
    assert get(f"/api/v1/permits/{JINGXI}/tax?month=2024-13", "agency") == 422
    assert client.get(url, headers={"Authorization": f"Bearer {keys['agency']}"}).json()[
        "tax"
    ] == pytest.approx(month_tax(march, JINGXI, 2024, 3)["tax"])


def test_a_year_against_the_permits_annual_mass(march: Engine) -> None:
    """The year 2024 holds only March's hours: its SO2 mass is March's (107.1144 kg, by
    hand above), against an annual limit of 100 kg set on the permit: over it, 1.0711 of
    the limit; the other months' hours are unresolved (no data, no neighbours)."""
    with march.begin() as connection:
        connection.execute(
            update(PermitLimit)
            .where(PermitLimit.parameter_code == "a21026", PermitLimit.outlet_id == 1)
            .values(annual_mass_limit_kg=100.0)
        )
    found = enterprise_year(march, JINGXI, 2024)
    so2 = next(row for row in found["pollutants"] if row["parameter_code"] == "a21026")
    assert so2["mass_kg"] == pytest.approx(107.1144, abs=1e-4)
    assert so2["annual_mass_limit_kg"] == 100.0 and so2["over_limit"]
    assert so2["share_of_limit"] == pytest.approx(1.0711, abs=1e-4)
    assert so2["months"]["2024-03"] == pytest.approx(107.1144, abs=1e-4)
    assert so2["months"]["2024-02"] == 0.0 and len(so2["months"]) == 12
    assert so2["hours_measured"] == 740 and not so2["usable_as_basis"]
    nox = next(row for row in found["pollutants"] if row["parameter_code"] == "a21002")
    assert nox["annual_mass_limit_kg"] is None and nox["over_limit"] is False
