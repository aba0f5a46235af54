"""The enterprise credit page, the risk explanation page and the shared credit flag
(issue 27: "an enterprise credit page", "an explanation page per enterprise", the
blacklist flagged wherever the enterprise appears).

Who sees what: the agency every rating, an enterprise its own drafts, everyone else only
published grades; the risk page only the agency and the enterprise itself. The figures
are those of the store: 沪东's SO2 at 80 mg/m³ for one hour against its 50 mg/m³ limit
(0 % compliance at outlet DA001: 0 分, a weighted 80 × 16 / 31 = 41.29 → red).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.alarms.tables import alarms
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.supervision import credit, flags
from ecohub.timeseries.observations import Observation

PASSWORD = "correct horse battery"
CST = dt.timezone(dt.timedelta(hours=8))
HUDONG = "91310115MA1HDEM025"
GIVEN = {"general_solid_waste": "1", "hazardous_waste": "1", "noise": "1", "siting_ecology": "1"}


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
        for name, ident in (("jx", 1), ("hd", 2)):
            create_user(
                session,
                username=name,
                password=PASSWORD,
                role=Role.ENTERPRISE,
                actor="t",
                enterprise_id=ident,
            )
        session.commit()
    credit.rate(engine, HUDONG, 2024, "agency:t", GIVEN)
    return engine


def _client(engine: Engine, username: str | None = None) -> TestClient:
    client = TestClient(create_app(engine), base_url="https://testserver")
    if username is not None:
        signed = client.post(
            "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
        )
        assert signed.status_code == 303
    return client


def test_a_draft_is_seen_by_the_agency_and_its_enterprise_only(store: Engine) -> None:
    url = f"/enterprises/{HUDONG}/credit"
    with store.connect() as connection:
        alarm_id = connection.execute(
            select(alarms.c.id).where(alarms.c.kind == "source_exceedance")
        ).scalar_one()
    officer = _client(store, "officer").get(url)
    assert officer.status_code == 200
    page = officer.text
    assert "环保不良企业（红牌）" in page and "初评（异议期）" in page
    assert 'id="indicator-air_water_compliance"' in page and "41.29" in page
    assert f'href="/api/v1/alarms/{alarm_id}"' in page  # indicator 1's evidence row
    assert page.count("未认定") == 8  # every 一票否决 condition checked, none found
    assert "异议期截止（北京时间）" in page and 'id="risk-link"' in page
    own = _client(store, "hd").get(url)
    assert own.status_code == 200 and "初评（异议期）" in own.text
    for viewer in (_client(store), _client(store, "jx")):
        shown = viewer.get(url)
        assert shown.status_code == 200 and "暂无可查看的信用评价" in shown.text
        assert "41.29" not in shown.text
        assert viewer.get(f"{url}?year=2024", headers={"accept": "text/html"}).status_code == 404


def test_a_published_red_grade_with_its_blacklist_flag(store: Engine) -> None:
    with store.connect() as connection:
        assert flags.credit_flag(connection, 2) is None  # nothing published yet
    credit.object_to(store, HUDONG, 2024, "异议", "enterprise:hudong")
    credit.decide(store, HUDONG, 2024, "red", "维持", "agency:t")
    credit.publish(store, HUDONG, 2024, "agency:t")
    public = _client(store)
    page = public.get(f"/enterprises/{HUDONG}/credit").text
    assert "环保不良企业（红牌）" in page and "黑名单" in page
    assert "暂停各类环保专项资金补助" in page  # consequences (广东 2015, data table)
    assert "异议期截止" not in page  # the review details are the agency's and the enterprise's
    english = public.get(f"/enterprises/{HUDONG}/credit?lang=en").text
    assert "Environmentally poor enterprise (red)" in english and "Blacklist" in english
    assert "Air and water pollutants discharged within limits" in english
    with store.connect() as connection:
        flag = flags.credit_flag(connection, 2)
    assert flag is not None
    assert (flag["year"], flag["grade"], flag["blacklisted"]) == (2024, "red", True)
    assert {c["key"] for c in flag["consequences"]} == {
        "more_inspections",
        "no_new_loans",
        "higher_insurance_rate",
        "no_special_funds",
    }


def test_the_risk_page_explains_each_component(store: Engine) -> None:
    url = f"/agency/supervision/risk/{HUDONG}?days=1096"
    anonymous = _client(store).get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]
    shown = _client(store, "officer").get(url)
    assert shown.status_code == 200
    page = shown.text
    for component in ("exceedance_hours", "mass_overruns", "transmission_gap"):
        assert f'id="component-{component}"' in page
    assert "超标时长（小时）" in page and "未上传数据的许可限值序列: 6" in page
    assert _client(store, "hd").get(url).status_code == 200
    other = _client(store, "jx").get(url, headers={"accept": "text/html"})
    assert other.status_code == 404
    english = _client(store, "officer").get(f"{url}&lang=en").text
    assert "Risk score explained" in english and "Transmission gap" in english
