"""The permits area's pages: the service hall's form files an application, the agency
accepts and issues it through the application page's form, the versions page shows it,
a report is generated from a form, its exceedances must be explained before it can be
signed, and an enterprise user sees only its own records; Chinese and English words."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits.accounting import month_hours
from ecohub.timeseries.observations import Observation

PASSWORD = "correct horse battery"
JINGXI = "91110106MA00DEM01H"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _client(engine: Engine, username: str) -> TestClient:
    client = TestClient(create_app(engine), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    return client


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


@pytest.fixture
def users(engine: Engine, points: dict[str, int]) -> dict[str, TestClient]:
    rows = []  # NOx 16 mg/m³ on odd hours of the first day of March 2024 at DA001
    for index, at in enumerate(month_hours(2024, 3)[:24]):
        for code, value in (("a21002", 16.0 if index % 2 else 10.0), ("a00000", 10.0)):
            rows.append(Observation(points["P0001"], code, "hour", at, value, "N", 0, "t"))
    Pipeline(engine).process(rows, now=dt.datetime(2024, 4, 2, tzinfo=dt.UTC))
    with Session(engine) as session:
        create_user(session, username="officer", password=PASSWORD, role=Role.AGENCY, actor="t")
        create_user(
            session,
            username="jx",
            password=PASSWORD,
            role=Role.ENTERPRISE,
            actor="t",
            enterprise_id=1,
        )
        create_user(
            session,
            username="hd",
            password=PASSWORD,
            role=Role.ENTERPRISE,
            actor="t",
            enterprise_id=2,
        )
        session.commit()
    return {name: _client(engine, name) for name in ("officer", "jx", "hd")}


def test_the_hall_files_decides_and_reports(users: dict[str, TestClient]) -> None:
    jx, officer, hd = users["jx"], users["officer"], users["hd"]
    hall = jx.get("/permits")
    assert hall.status_code == 200 and "排污许可网上办事大厅" in hall.text
    form = {
        "csrf_token": _token(hall.text),
        "uscc": JINGXI,
        "kind": "change",
        "management_class": "key",
        "permit_no": f"{JINGXI}001P",
        "effective_on": "2024-03-01",
        "limits": "DA001,a21002,15,mg/m³\nDA001,a21026,10,mg/m³,800",
        "monitoring": "DA001,a21002,自动监测",
        "reason": "执行新标准",
    }
    bad = jx.post("/permits/apply", data={**form, "limits": "DA001,a21002"}, follow_redirects=False)
    assert (
        unquote(bad.headers["location"])
        == "/permits?error=许可排放限值 第1行：应有4个以逗号分隔的值"
    )
    made = jx.post("/permits/apply", data=form, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].startswith("/permits/applications/")
    url = made.headers["location"]
    assert hd.get(url).status_code == 404  # another enterprise's
    page = officer.get(url)
    assert "执行新标准" not in page.text and "a21002" in page.text  # the limits are listed
    token = _token(page.text)
    officer.post(
        f"{url}/decision", data={"csrf_token": token, "status": "accepted", "on": "2024-02-20"}
    )
    issued = officer.post(
        f"{url}/decision", data={"csrf_token": token, "status": "issued", "on": "2024-02-25"}
    )
    assert "已核发" in issued.text
    versions = jx.get(f"/permits/versions/{JINGXI}001P")
    assert "版本 2" in versions.text and "2024-03-01 – 2027-12-31" in versions.text
    english = jx.get(f"/permits/versions/{JINGXI}001P?lang=en").text
    assert "Version 2" in english
    # A monthly report: odd hours of 1 March above the new NOx limit 15 (12 hours).
    hall = jx.get("/permits?lang=zh")
    generated = jx.post(
        "/permits/reports",
        data={
            "csrf_token": _token(hall.text),
            "permit_no": f"{JINGXI}001P",
            "kind": "monthly",
            "day": "2024-03-31",
        },
        follow_redirects=False,
    )
    report_url = generated.headers["location"]
    report = jx.get(report_url)
    assert (
        "超标原因说明" in report.text and "2024-03-01 01:00 – 2024-03-01 01:00 (1)" in report.text
    )
    token = _token(report.text)
    refused = jx.post(
        f"{report_url}/submit", data={"csrf_token": token}, files={"file": ("s.png", PNG)}
    )
    assert "a21002" in refused.text and "未能办理" in refused.text
    jx.post(
        f"{report_url}/complete",
        data={
            "csrf_token": token,
            "explain:DA001/a21002": "脱硝设备检修",
            "text:abnormal": "3月1日脱硝检修",
        },
    )
    done = jx.post(
        f"{report_url}/submit", data={"csrf_token": token}, files={"file": ("s.png", PNG)}
    )
    assert "已提交" in done.text
    assert hd.get(report_url).status_code == 404
    reviewed = officer.post(
        f"{report_url}/review",
        data={
            "csrf_token": _token(officer.get(report_url).text),
            "accept": "no",
            "note": "补充检修记录",
        },
    )
    assert "已退回" in reviewed.text and "补充检修记录" in reviewed.text
