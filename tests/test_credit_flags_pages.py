"""The blacklist flagged wherever the enterprise appears (issue 27, item 6): a published
red grade (环保不良企业, 环发〔2013〕150号) with its consequences on the permit service
hall, a permit's versions page, the API's versions response and the public disclosure
page; and the public list of draws with each draw's number and a voided draw's reason.

The grade: 沪东's SO2 at 80 mg/m³ for one hour against its 50 mg/m³ limit gives 0 %
compliance at DA001 (a weighted 41.29 → red, as in test_supervision_credit_pages); the
agency keeps red after the enterprise's objection and publishes it. The consequences are
the rows of ``supervision/data/credit_consequences.csv`` typed again here.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.accounts.users import create_user
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits import lifecycle
from ecohub.supervision import credit, service
from ecohub.supervision.draw import DrawRules
from ecohub.timeseries.observations import Observation

PASSWORD = "correct horse battery"
CST = dt.timezone(dt.timedelta(hours=8))
HUDONG = "91310115MA1HDEM025"
JINGXI = "91110106MA00DEM01H"
GIVEN = {"general_solid_waste": "1", "hazardous_waste": "1", "noise": "1", "siting_ecology": "1"}
RED_ZH = "环保不良企业（红牌）"
RED_EN = "Environmentally poor enterprise (red)"
# Two of red's four consequences (成都 2017; 广东 2015), in each language.
LOANS = ("不予新增贷款", "No new bank loans")
FUNDS = ("暂停各类环保专项资金补助", "Environmental special-fund subsidies suspended")


@pytest.fixture
def store(engine: Engine, points: dict[str, int]) -> Engine:
    at = dt.datetime(2024, 1, 15, tzinfo=CST)
    rows = [
        Observation(points["P0002"], "a21026", "hour", at, 80.0, "N", 0, "t"),
        Observation(points["P0002"], "a00000", "hour", at, 80.0, "N", 0, "t"),
    ]
    Pipeline(engine).process(rows, now=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    with Session(engine) as session:
        create_user(session, username="officer", password=PASSWORD, role=Role.AGENCY, actor="t")
        session.commit()
    return engine


def _publish_red(engine: Engine) -> None:
    credit.rate(engine, HUDONG, 2024, "agency:t", GIVEN)
    credit.object_to(engine, HUDONG, 2024, "异议", "enterprise:hudong")
    credit.decide(engine, HUDONG, 2024, "red", "维持", "agency:t")
    credit.publish(engine, HUDONG, 2024, "agency:t")


def _client(engine: Engine, username: str | None = None) -> TestClient:
    client = TestClient(create_app(engine), base_url="https://testserver")
    if username is not None:
        signed = client.post(
            "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
        )
        assert signed.status_code == 303
    return client


def _permit_row(page: str, permit_no: str) -> str:
    """The hall's row of one permit."""
    found = re.search(rf'<tr><td><a href="/permits/versions/{permit_no}">.*?</tr>', page, re.S)
    assert found is not None, permit_no
    return found.group(0)


def test_permit_pages_flag_a_red_grade_with_its_consequences(store: Engine) -> None:
    officer = _client(store, "officer")
    before = officer.get(f"/permits/versions/{HUDONG}001P").text
    assert 'id="credit-flag"' not in before  # nothing published yet
    _publish_red(store)
    hall = officer.get("/permits").text
    red_row = _permit_row(hall, f"{HUDONG}001P")
    assert RED_ZH in red_row and "黑名单" in red_row and LOANS[0] in red_row
    assert f'href="/enterprises/{HUDONG}/credit"' in red_row
    assert "credit-flag" not in _permit_row(hall, f"{JINGXI}001P")  # no grade published
    english_hall = officer.get("/permits?lang=en").text
    assert RED_EN in _permit_row(english_hall, f"{HUDONG}001P")
    assert FUNDS[1] in _permit_row(english_hall, f"{HUDONG}001P")
    versions = officer.get(f"/permits/versions/{HUDONG}001P?lang=zh").text
    assert 'id="credit-flag"' in versions and RED_ZH in versions and FUNDS[0] in versions
    english = officer.get(f"/permits/versions/{HUDONG}001P?lang=en").text
    assert RED_EN in english and "Blacklist" in english and LOANS[1] in english
    assert 'id="credit-flag"' not in officer.get(f"/permits/versions/{JINGXI}001P").text


def test_an_application_page_flags_the_applicant(store: Engine) -> None:
    content = {
        "outlets": [{"code": "DA009", "name": "9号排气筒", "kind": "gas"}],
        "limits": [
            {
                "outlet_code": "DA009",
                "parameter_code": "a21026",
                "concentration_limit": 35,
                "unit": "mg/m³",
            }
        ],
    }
    made = lifecycle.apply(
        store, uscc=HUDONG, kind="new", management_class="key", content=content, actor="t"
    )
    officer = _client(store, "officer")
    url = f"/permits/applications/{made['id']}"
    assert 'id="credit-flag"' not in officer.get(url).text
    _publish_red(store)
    page = officer.get(f"{url}?lang=zh").text
    flag = re.search(r'<div id="credit-flag">.*?</div></div>', page, re.S)
    assert flag is not None and RED_ZH in flag.group(0) and LOANS[0] in flag.group(0)
    assert RED_EN in officer.get(f"{url}?lang=en").text


def test_the_versions_api_carries_the_credit_flag(store: Engine) -> None:
    with Session(store) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    http, auth = TestClient(create_app(store)), {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/permits/versions/{HUDONG}001P"
    assert http.get(url, headers=auth).json()["credit"] is None
    _publish_red(store)
    found = http.get(url, headers=auth).json()["credit"]
    assert found["red"] is True and found["grade"] == "red" and found["year"] == 2024
    assert {c["key"] for c in found["consequences"]} == {
        "more_inspections",
        "no_new_loans",
        "higher_insurance_rate",
        "no_special_funds",
    }
    other = http.get(f"/api/v1/permits/versions/{JINGXI}001P", headers=auth)
    assert other.json()["credit"] is None


def test_the_disclosure_page_shows_the_consequences_and_links_the_credit_page(
    store: Engine,
) -> None:
    public = _client(store)
    assert 'id="credit-consequences"' not in public.get(f"/enterprises/{HUDONG}").text
    _publish_red(store)
    page = public.get(f"/enterprises/{HUDONG}").text
    grade = re.search(r'<p id="credit-grade".*?</p>', page, re.S)
    assert grade is not None and "环保不良（红牌）" in grade.group(0)
    assert f'href="/enterprises/{HUDONG}/credit"' in grade.group(0)
    listed = re.search(r'id="credit-consequences".*?</div>', page, re.S)
    assert listed is not None and LOANS[0] in listed.group(0) and FUNDS[0] in listed.group(0)
    english = public.get(f"/enterprises/{HUDONG}?lang=en").text
    assert LOANS[1] in english and FUNDS[1] in english and "Credit rating" in english
    assert 'id="credit-consequences"' not in public.get(f"/enterprises/{JINGXI}").text


def test_a_voided_draw_is_listed_with_its_number_and_reason(store: Engine) -> None:
    service.set_object(store, HUDONG, "key", "t")
    for code in ("SH-01", "SH-02"):
        service.set_inspector(store, code, f"检查员{code}", "310000", "t", ["大气"])
    rules = DrawRules(rates={"key": 1.0, "general": 1.0}, team_size=2)
    first = service.run_draw(store, "2024年第一季度", rules, "agency:t")
    service.publish_draw(store, first["id"], "agency:t")
    second = service.run_draw(store, "2024年第一季度（重抽）", rules, "agency:t")
    service.void_draw(store, second["id"], "对象名录未更新", "agency:t")
    public = _client(store)
    page = public.get("/supervision").text
    voided = re.search(r'<tr id="draw-2" class="voided">.*?</tr>', page, re.S)
    assert voided is not None
    assert "<td>2</td>" in voided.group(0) and "已作废" in voided.group(0)
    assert "作废理由：对象名录未更新" in voided.group(0)
    kept = re.search(r'<tr id="draw-1">.*?</tr>', page, re.S)
    assert kept is not None and "<td>1</td>" in kept.group(0) and "已作废" not in kept.group(0)
    english = public.get("/supervision?lang=en").text
    assert "Voided" in english and "Reason voided: 对象名录未更新" in english
