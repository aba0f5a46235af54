"""The field form and the dashboard over HTTP, on both backends: a refused photo stores
nothing and the form comes back with its own client id and what was posted, so the
record is stored once however often it is sent; bad numbers and times are refused naming
the field, in Chinese and in English; two submissions of one record racing on
PostgreSQL store it once; the dashboard names overdue steps in the page's language and
links each enterprise's credit page."""

from __future__ import annotations

import datetime as dt
import html
import re
import warnings
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.app import create_app
from ecohub.supervision import cases, inspections, service
from ecohub.supervision.tables import inspections as inspection_rows
from tests.test_supervision_inspections import RECORD, png

warnings.filterwarnings("ignore", category=DeprecationWarning)
PASSWORD = "correct horse battery"
HUDONG = "91310115MA1HDEM025"


@pytest.fixture
def officer(engine: Engine, points: dict[str, int]) -> TestClient:
    for code in ("SH-02", "SH-03"):
        service.set_inspector(engine, code, f"检查员{code}", "310000", "t")
    with Session(engine) as session:
        create_user(session, username="officer", password=PASSWORD, role=Role.AGENCY, actor="t")
        session.commit()
    client = TestClient(create_app(engine), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": "officer", "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    return client


def _field(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found.group(1))


def _form(page: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "csrf_token": _field(page, "csrf_token"),
        "client_id": _field(page, "client_id"),
        "inspected_at": "2024-03-05T10:20:00+08:00",
        "longitude": "121.7102",
        "latitude": "31.2705",
        "accuracy_m": "8.5",
        "uscc": HUDONG,
        "inspectors": ["SH-02", "SH-03"],
        "result_0": "problem",
        "note_0": "3月1日至4日无记录",
        "findings": "焚烧炉运行台账缺失4天",
    }
    return {**data, **changes}


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(inspection_rows)).scalar_one()
        )


def test_a_refused_photo_stores_nothing_and_the_form_keeps_its_client_id(
    officer: TestClient, engine: Engine
) -> None:
    page = officer.get("/agency/inspections/new").text
    data = _form(page)
    refused = officer.post(
        "/agency/inspections", data=data, files=[("photo", ("a.png", b"not an image"))]
    )
    assert refused.status_code == 422 and _count(engine) == 0
    assert "附件未通过检查，记录未保存" in refused.text
    # The same client id comes back, with the device's time and position as posted.
    assert _field(refused.text, "client_id") == data["client_id"]
    assert _field(refused.text, "inspected_at") == data["inspected_at"]
    assert _field(refused.text, "latitude") == "31.2705"
    assert 'value="SH-02" checked' in refused.text and "焚烧炉运行台账缺失4天" in refused.text
    # Sent again with a good photo: one record; sent once more: still one.
    again = _form(refused.text)
    for _attempt in range(2):
        stored = officer.post(
            "/agency/inspections",
            data=again,
            files=[("photo", ("a.png", png()))],
            follow_redirects=False,
        )
        assert stored.status_code == 303
    assert _count(engine) == 1
    record = inspections.get_inspection(engine, int(stored.headers["location"].split("/")[-1]))
    assert record is not None and len(record["attachments"]) == 1
    assert record["client_id"] == data["client_id"]


@pytest.mark.parametrize(
    ("lang", "changes", "message"),
    [
        ("zh", {"latitude": "north"}, "纬度：“north”不是数字"),
        ("en", {"latitude": "north"}, "Latitude: “north” is not a number"),
        ("zh", {"longitude": "190"}, "经度：190 不在 -180.0 至 180.0 之间"),
        ("en", {"latitude": "-91"}, "Latitude: -91 is outside -90.0 to 90.0"),
        ("en", {"latitude": "nan"}, "Latitude: nan is outside"),
        ("zh", {"inspected_at": "昨天"}, "检查时间：“昨天”不是时间"),
        ("en", {"inspected_at": "yesterday"}, "Time of inspection: “yesterday” is not a time"),
        ("zh", {"inspectors": []}, "请选择执法人员"),
        ("en", {"uscc": "91000000000000000X"}, "The record was not stored: no enterprise"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(
    officer: TestClient, engine: Engine, lang: str, changes: dict[str, Any], message: str
) -> None:
    page = officer.get(f"/agency/inspections/new?lang={lang}").text
    answer = officer.post(f"/agency/inspections?lang={lang}", data=_form(page, **changes))
    assert answer.status_code == 422 and message in html.unescape(answer.text)
    assert _count(engine) == 0


def test_racing_submissions_of_one_record_store_it_once(
    engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes one writer at a time: the race needs PostgreSQL")
    for code in ("SH-02", "SH-03"):
        service.set_inspector(engine, code, f"检查员{code}", "310000", "t")
    record = inspections.record_from(
        {**RECORD, "inspected_at": dt.datetime.fromisoformat(str(RECORD["inspected_at"]))}, "race-1"
    )
    real = inspections.enterprise_id
    raced: list[Any] = []

    def other_request_first(connection: Any, uscc: str) -> int:
        # After this request found no record under the client id, another stores it.
        if not raced:
            raced.append(None)
            raced[0] = inspections._submit(engine, record, record.digest(), "agency:other")
        return real(connection, uscc)

    monkeypatch.setattr(inspections, "enterprise_id", other_request_first)
    stored, created = inspections.submit(engine, record, "agency:t")
    assert created is False and raced[0][1] is True
    assert stored["id"] == raced[0][0]["id"] and _count(engine) == 1


def test_every_deadline_has_words_and_chinese_is_the_tables_name() -> None:
    from ecohub.supervision import case_words, rules

    terms = case_words.TERMS["case_deadline"]
    table = rules.case_deadlines()
    assert sorted(terms) == sorted(table)
    assert all(terms[key][0] == rule.name_zh and terms[key][1] for key, rule in table.items())


def test_dashboard_lists_open_cases_in_the_page_language_with_credit_links(
    officer: TestClient, engine: Engine
) -> None:
    case_id = cases.open_case(engine, HUDONG, "超标排放", "SO2 超标", dt.date(2024, 1, 2), "t")
    cases.record_step(engine, case_id, "filed", dt.date(2024, 1, 3), "t")  # decide by 04-02
    english = officer.get("/agency/supervision?lang=en")
    assert english.status_code == 200
    assert "Decide the case (2024-04-02)" in english.text
    assert "作出处理决定" not in english.text
    assert f'href="/enterprises/{HUDONG}/credit"' in english.text
    chinese = officer.get("/agency/supervision?lang=zh")
    assert "自立案之日起作出处理决定 (2024-04-02)" in chinese.text
    assert "超期案件 1 件" in chinese.text
