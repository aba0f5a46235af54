"""The tax's data source order (环境保护税法 第十条), the rate in force in the taxed month,
财税〔2018〕117号 二, the reference-O2 concentration of the reductions, the rate zones and
the month's masses by day, against hand computations.

The stored month is test_permits_tax.py's: 京西 (北京, DA001, limits SO2 10, NOx 30, 烟尘 5
mg/m³), March 2024, even hours SO2 3 / NOx 14 / 烟尘 1 mg/m³ at 9.9 m³/s, odd hours 5 /
16 / 3 at 10.1 m³/s, hours 100-101 shut down, 200-201 missing; SO2 107.1144 kg (by hand
there), 112.752 equivalents (÷ 0.95 kg, 附表二 表五), 北京 12 元.
"""

from __future__ import annotations

import datetime as dt
import warnings
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.accounts.users import create_user
from ecohub.app import create_app
from ecohub.clock import utcnow
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits import bulk
from ecohub.permits.accounting import PollutantTotals, month_hours
from ecohub.permits.tables import exchange_records
from ecohub.permits.tax import OutletInputs, enterprise_tax, month_tax, outlet_entry
from ecohub.permits.tax_sources import Supervisory
from ecohub.registry.models import Enterprise, PermitLimit, Region
from ecohub.standards import cems
from ecohub.standards.envtax_zones import zone_of, zones
from ecohub.timeseries.observations import Observation

warnings.filterwarnings("ignore", category=DeprecationWarning)
JINGXI = "91110106MA00DEM01H"
PASSWORD = "correct horse battery"
SO2_EQUIVALENTS = 107.1144 / 0.95  # 112.752


@pytest.fixture
def march(engine: Engine, points: dict[str, int]) -> Engine:
    return fill_march(engine, points)


def fill_march(engine: Engine, points: dict[str, int]) -> Engine:
    """March 2024 at DA001: SO2 3/5, NOx 14/16, 烟尘 1/3 mg/m³, flow 9.9/10.1, O2 11/13 %
    on even/odd hours; hours 200-201 missing, 100-101 flagged F."""
    rows = []
    for index, at in enumerate(month_hours(2024, 3)):
        if index in (200, 201):
            continue
        flag = "F" if index in (100, 101) else "N"
        odd = index % 2
        for code, even, odd_value in (
            ("a21026", 3.0, 5.0), ("a21002", 14.0, 16.0), ("a34013", 1.0, 3.0),
            ("a00000", 9.9, 10.1), ("a19001", 11.0, 13.0),
        ):  # fmt: skip
            rows.append(
                Observation(
                    points["P0001"], code, "hour", at, odd_value if odd else even, flag, 0, "t"
                )
            )
    Pipeline(engine).process(rows, now=dt.datetime(2024, 4, 2, tzinfo=dt.UTC))
    return engine


def _limit(engine: Engine, code: str, **values: object) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(PermitLimit)
            .where(PermitLimit.outlet_id == 1, PermitLimit.parameter_code == code)
            .values(**values)
        )


def _steps(found: dict) -> dict[str, dict]:
    return {step["parameter_code"]: step for step in found["outlets"][0]["steps"]}


def _totals(
    code: str, name: str, mass: float, *, usable: bool = True, **extra: float | None
) -> PollutantTotals:
    measured = 700 if usable else 100
    values = {"mean_concentration": None, "highest_concentration": None, "limit": None, **extra}
    return PollutantTotals(
        parameter_code=code, name=name, unit="mg/m³", annual_mass_limit_kg=None,
        totals=cems.Totals(mass, measured, 0, 44, 700 - measured), usable_as_basis=usable,
        **values,
    )  # fmt: skip


STACK = SimpleNamespace(id=1, enterprise_id=1, code="DA001", name="stack", kind="gas")


# --- the data source (第十条) -----------------------------------------------------------


def test_automatic_data_not_a_basis_and_nothing_else_is_not_taxed() -> None:
    """100 of 700 operating hours measured: 86 % missing (> 25 %, 附录E E.1). No
    supervisory result, no factors: not taxed, and said so."""
    entry = outlet_entry(
        STACK, [_totals("a21026", "二氧化硫", 95.0, usable=False)], province="北京"
    )
    assert entry["steps"] == [] and entry["tax"] == 0.0
    (missing,) = entry["unsourced"]
    assert missing["parameter_code"] == "a21026"
    assert "25 %" in missing["reason"] and "核定" in missing["reason"]
    assert entry["sources"][0]["source"] == "sampling"


def test_supervisory_results_times_the_months_flow() -> None:
    """财税〔2018〕23号 一, air: the mean of the results, (20 + 30) / 2 = 25 mg/m³, × the
    month's mean measured flow 36,000 m³/h × 700 operating hours = 630 kg; ÷ 0.95 =
    663.1579 equivalents; 25 of 50 is not below 50 % but below 70 %, highest 30 ≤ 50:
    75 %; × 12 元 (北京) × 0.75 = 5968.42 元."""
    records = tuple(
        Supervisory(f"R{n}", "二氧化硫", dt.date(2024, 3, n), value, 50.0, None, "站")
        for n, value in ((3, 20.0), (17, 30.0))
    )
    entry = outlet_entry(
        STACK, [_totals("a21026", "二氧化硫", 95.0, usable=False, limit=50.0)], province="北京",
        inputs=OutletInputs(supervisory=records, flow_m3h=36000.0),
    )  # fmt: skip
    (step,) = entry["steps"]
    assert entry["unsourced"] == [] and step["source"] == "agency"
    assert step["quantity"] == pytest.approx(630.0)
    assert step["reduction_factor"] == 0.75 and step["tax"] == 5968.42
    assert entry["sources"][0]["records"] == ["R3", "R17"]


def test_water_results_are_weighted_by_flow() -> None:
    """Water: 40 mg/L at 100 m³/h and 60 mg/L at 300 m³/h → (4,000 + 18,000) / 400 = 55
    mg/L; no measured flow: the records' mean flow 200 m³/h × 700 h × 55 mg/L × 10⁻³ =
    7,700 kg of 化学需氧量."""
    drain = SimpleNamespace(id=2, enterprise_id=1, code="DW001", name="drain", kind="water")
    records = tuple(
        Supervisory(f"W{n}", "化学需氧量", dt.date(2024, 3, n), value, None, flow, "站")
        for n, value, flow in ((5, 40.0, 100.0), (20, 60.0, 300.0))
    )
    cod = _totals("w01018", "化学需氧量", 1.0, usable=False)
    entry = outlet_entry(drain, [cod], province="北京", inputs=OutletInputs(supervisory=records))
    source = entry["sources"][0]
    assert source["concentration"] == pytest.approx(55.0)
    assert source["flow_m3h"] == 200.0 and source["flow_basis"] == "records"
    assert entry["steps"][0]["quantity"] == pytest.approx(7700.0)


def test_a_supervisory_record_through_the_store(march: Engine) -> None:
    """CO limited on the permit but never measured: first unsourced; a supervisory result
    of 2 mg/m³ then gives 2 × 36,000 m³/h (the month's mean measured flow, as many 9.9
    as 10.1 m³/s hours) × 742 operating hours × 10⁻⁶ = 53.424 kg (rank 4: not taxed)."""
    with march.begin() as connection:
        permit = connection.execute(
            select(PermitLimit.permit_id).where(PermitLimit.outlet_id == 1)
        ).scalar()
        connection.execute(
            insert(PermitLimit).values(
                permit_id=permit, outlet_id=1, parameter_code="a21005",
                concentration_limit=100.0, unit="mg/m³",
            )
        )  # fmt: skip
    found = month_tax(march, JINGXI, 2024, 3)
    assert [row["parameter_code"] for row in found["outlets"][0]["unsourced"]] == ["a21005"]
    assert not found["complete"]
    with march.begin() as connection:
        connection.execute(
            insert(exchange_records).values(
                kind="supervisory_monitoring", record_key="S1|DA001|一氧化碳", direction="out",
                payload={"report_no": "S1", "uscc": JINGXI, "unit_name": "京西",
                         "outlet_code": "DA001", "pollutant": "一氧化碳",
                         "sampled_on": "2024-03-12", "concentration": "2", "agency": "站"},
                sha256="0" * 64, format_version="ecohub-envtax-exchange/1", source="t",
                updated_at=utcnow(),
            )
        )  # fmt: skip
    found = month_tax(march, JINGXI, 2024, 3)
    step = _steps(found)["a21005"]
    assert step["source"] == "agency" and not step["taxable"]
    assert step["quantity"] == pytest.approx(53.424)
    assert found["complete"] and found == next(
        e for e in bulk.month_all(march, 2024, 3) if e["uscc"] == JINGXI
    )


# --- the rate, 117号, reference O2 -----------------------------------------------------


def test_the_rate_in_force_in_the_taxed_month() -> None:
    """上海 SO2: 6.65 元 in 2018, 7.6 元 from 2019 (沪财发〔2017〕8号). 95 kg = 100
    equivalents, no concentration: no reduction: 665.00 and 760.00 元."""
    items = [_totals("a21026", "二氧化硫", 95.0)]
    for on, tax in ((dt.date(2018, 6, 1), 665.0), (dt.date(2019, 6, 1), 760.0)):
        entry = outlet_entry(STACK, items, province="上海", on=on)
        assert entry["tax"] == tax


def test_one_exceedance_anywhere_ends_every_reduction() -> None:
    """财税〔2018〕117号 二: DA002's NOx hour of 40 > 30 mg/m³ takes DA001's 50 % away:
    100 equivalents × 12 元 = 1200 元 instead of 600."""
    clean = [_totals("a21026", "二氧化硫", 95.0, mean_concentration=2.0,
                     highest_concentration=3.0, limit=10.0)]  # fmt: skip
    dirty = [_totals("a21002", "氮氧化物", 0.95, mean_concentration=20.0,
                     highest_concentration=40.0, limit=30.0)]  # fmt: skip
    other = SimpleNamespace(id=2, enterprise_id=1, code="DA002", name="kiln", kind="gas")
    firm = SimpleNamespace(id=1, uscc=JINGXI, name="京西", region_code="110106")
    alone = enterprise_tax(firm, 2024, 3, [STACK], {1: clean}, {})
    assert alone["outlets"][0]["tax"] == 600.0 and alone["exceedances"] == []
    both = enterprise_tax(firm, 2024, 3, [STACK, other], {1: clean, 2: dirty}, {})
    (step,) = both["outlets"][0]["steps"]
    assert step["reduction_factor"] == 1.0 and step["tax"] == 1200.0
    assert step["reduction_case"] == "taxpayer_exceeded"
    assert both["exceedances"] == ["DA002 氮氧化物 40 > 30 mg/m³"]


def test_the_reduction_compares_at_the_reference_oxygen(march: Engine) -> None:
    """SO2 stated at 9 % O2 (GB 13271-2014 formula (1): × (21 − 9) / (21 − O2)); even
    hours 3 mg/m³ at 11 % O2 → 3 × 12/10 = 3.6, odd hours 5 at 13 % → 5 × 12/8 = 7.5; 370
    measured hours of each: mean 5.55, highest 7.5 of 10: not below 50 %, below 70 %: 75 %:
    112.752 × 12 × 0.75 = 1014.768 → 1014.77 元 (50 % and 676.51 元 as measured)."""
    assert _steps(month_tax(march, JINGXI, 2024, 3))["a21026"]["tax"] == 676.51
    _limit(march, "a21026", reference_o2=9.0)
    found = month_tax(march, JINGXI, 2024, 3)
    step = _steps(found)["a21026"]
    assert step["concentration"] == pytest.approx(5.55)
    assert step["highest"] == pytest.approx(7.5)
    assert step["reduction_factor"] == 0.75 and step["tax"] == 1014.77
    assert step["concentration_basis"] == "converted"
    assert found == next(e for e in bulk.month_all(march, 2024, 3) if e["uscc"] == JINGXI)


def test_an_exceeding_hour_in_the_store_ends_the_reductions(march: Engine) -> None:
    """NOx limit 15: the odd hours' 16 exceed it: no reduction for SO2 either (117号):
    112.752 × 12 = 1353.024 → 1353.02 元."""
    _limit(march, "a21002", concentration_limit=15.0)
    found = month_tax(march, JINGXI, 2024, 3)
    assert _steps(found)["a21026"]["tax"] == 1353.02
    assert found["exceedances"] == ["DA001 氮氧化物 16 > 15 mg/m³"]


# --- zones -----------------------------------------------------------------------------


def test_zones_by_division() -> None:
    assert zone_of("江苏", "320106") == "南京市" and zone_of("江苏", "321302") == "宿迁市"
    assert zone_of("河北", "130102") is None and zones("河北") == ["一档", "二档", "三档"]
    assert zone_of("北京", "110106") is None and zones("北京") == []


def test_zone_derived_asked_for_or_given(march: Engine) -> None:
    """江苏 南京: 8.4 元 for every air pollutant; 河北 一档: SO2 9.6 元 (envtax_rates.csv).
    SO2 keeps its 50 %: 112.752 × 8.4 × 0.5 = 473.5584 → 473.56; × 9.6 × 0.5 = 541.2096 →
    541.21 元."""

    def region(code: str) -> None:
        with march.begin() as connection:
            if connection.execute(select(Region.code).where(Region.code == code)).first() is None:
                connection.execute(insert(Region).values(code=code, name=code, level="county"))
            connection.execute(
                update(Enterprise).where(Enterprise.uscc == JINGXI).values(region_code=code)
            )

    region("320106")
    found = month_tax(march, JINGXI, 2024, 3)
    assert found["zone"] == "南京市" and _steps(found)["a21026"]["tax"] == 473.56
    region("130102")
    found = month_tax(march, JINGXI, 2024, 3)
    assert found["zone_needed"] and found["outlets"][0]["error"]
    with Session(march) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    client = TestClient(create_app(march))
    headers = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/permits/{JINGXI}/tax?month=2024-03"
    answer = client.get(url + "&zone=一档", headers=headers)
    assert answer.status_code == 200 and answer.json()["zone"] == "一档"
    assert _steps(answer.json())["a21026"]["tax"] == 541.21
    bad = client.get(url + "&zone=四档", headers=headers)
    assert bad.status_code == 422 and "一档" in bad.json()["detail"]


# --- masses by day ---------------------------------------------------------------------


def test_a_months_masses_by_day(march: Engine) -> None:
    """1 March: 12 even hours of SO2 3 mg/m³ at 9.9 m³/s and 12 odd at 5 mg/m³ at 10.1:
    12 × 3 × 9.9 × 3.6 × 10⁻³ + 12 × 5 × 10.1 × 3.6 × 10⁻³ = 1.28304 + 2.1816 = 3.46464 kg;
    the days add up to the month's 107.1144 kg (test_permits_tax.py)."""
    with Session(march) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    client = TestClient(create_app(march))
    headers = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/permits/{JINGXI}/emissions"
    answer = client.get(url + "?by=day&month=2024-03", headers=headers)
    assert answer.status_code == 200
    so2 = next(row for row in answer.json()["pollutants"] if row["parameter_code"] == "a21026")
    assert len(so2["days"]) == 31 and so2["days"][0]["day"] == "2024-03-01"
    assert so2["days"][0]["mass_kg"] == pytest.approx(3.46464, abs=1e-4)
    # each day rounded to 0.1 g: the 31 days within 31 × 0.05 g of the month
    assert sum(day["mass_kg"] for day in so2["days"]) == pytest.approx(107.1144, abs=31 * 5e-5)
    assert client.get(url + "?by=day", headers=headers).status_code == 422
    assert client.get(url + "?year=2024", headers=headers).status_code == 200


# --- the page --------------------------------------------------------------------------


def test_the_page_shows_each_step_in_english(march: Engine) -> None:
    """The tax page in English: the HJ 212 table's English names, the source and its
    article, the ranking (rank 2 of 3 air pollutants, 3 taxed: SO2 after NOx), the
    reduction reason, the rate's source, the annex's units; no "None" beside a unit; a
    pollutant without a source is named in the steps."""
    with Session(march) as session:
        create_user(session, username="officer", password=PASSWORD, role=Role.AGENCY, actor="t")
        session.commit()
    client = TestClient(create_app(march), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": "officer", "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    page = client.get(f"/enterprises/{JINGXI}/tax?month=2024-03&lang=en")
    assert page.status_code == 200, page.text
    text = page.text
    assert "Sulphur dioxide" in text or "Sulfur dioxide" in text
    assert "二氧化硫" not in text.split('id="tax-total"')[1].split("<h3>")[1]
    assert "Automatic monitoring" in text and "第十条（一）" in text
    assert "rank 2 of 3, the first 3 taxed" in text
    assert "below the standard by 50 %: 50 % (art. 13)" in text
    assert "北京" in text and "t of wastewater" not in text and " kg" in text
    assert "None" not in text and "— mg" not in text
    chinese = client.get(f"/enterprises/{JINGXI}/tax?month=2024-02&lang=zh")
    assert chinese.status_code == 200
    assert "无可用数据来源" in chinese.text  # February holds no data: nothing to tax
