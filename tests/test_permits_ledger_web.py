"""The ledger's API and pages: an enterprise writes its own permit's ledger (the agency only
reads, another enterprise sees nothing), errors name the field, the page's form appends
an entry and the report page shows the ledger's completeness and English pollutant names."""

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
from ecohub.permits import reports

PERMIT = "91110106MA00DEM01H001P"
BASE = f"/api/v1/permits/ledgers/{PERMIT}"
PASSWORD = "correct horse battery"


@pytest.fixture
def http(engine: Engine, points: dict[str, int]) -> tuple[TestClient, dict[str, dict[str, str]]]:
    with Session(engine) as session:
        keys = {
            "agency": issue_key(session, name="agency", role=Role.AGENCY, created_by="t"),
            "jx": issue_key(
                session, name="jx", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
            ),
            "hd": issue_key(
                session, name="hd", role=Role.ENTERPRISE, created_by="t", enterprise_id=2
            ),
        }
        for name, role, enterprise in (("officer", Role.AGENCY, None), ("jxu", Role.ENTERPRISE, 1)):
            create_user(
                session,
                username=name,
                password=PASSWORD,
                role=role,
                actor="t",
                enterprise_id=enterprise,
            )
        session.commit()
    return TestClient(create_app(engine), base_url="https://testserver"), {
        name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()
    }


def test_the_api_writes_own_and_reads_all(
    http: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, as_ = http
    facility = {"code": "MF0001", "name": "燃气锅炉", "kind": "production"}
    assert (
        client.post(f"{BASE}/facilities", json=facility, headers=as_["agency"]).status_code == 403
    )
    assert client.post(f"{BASE}/facilities", json=facility, headers=as_["hd"]).status_code == 404
    assert client.post(f"{BASE}/facilities", json=facility, headers=as_["jx"]).status_code == 201
    entry = {
        "kind": "production",
        "at": "2024-03-01 08:00",
        "values": {"running": True, "load_percent": 90},
        "operator": "张工",
        "facility": "MF0001",
    }
    made = client.post(f"{BASE}/entries", json=entry, headers=as_["jx"])
    assert made.status_code == 201, made.text
    assert made.json()["at"] == "2024-03-01 08:00" and made.json()["values"]["load_percent"] == 90
    bad = client.post(
        f"{BASE}/entries", json={**entry, "values": {"load_percent": 90}}, headers=as_["jx"]
    )
    assert bad.status_code == 422 and bad.json()["detail"] == "values.running: required"
    assert client.post(f"{BASE}/entries", json=entry, headers=as_["agency"]).status_code == 403
    fixed = client.post(
        f"{BASE}/entries", json={**entry, "corrects": made.json()["id"]}, headers=as_["jx"]
    )
    assert fixed.status_code == 201 and fixed.json()["corrects_id"] == made.json()["id"]
    listed = client.get(f"{BASE}/entries", headers=as_["agency"])
    assert [e["id"] for e in listed.json()] == [fixed.json()["id"], made.json()["id"]]
    assert listed.json()[1]["corrected_by"] == fixed.json()["id"]
    assert client.get(f"{BASE}/entries", headers=as_["hd"]).status_code == 404
    assert client.get(f"{BASE}/entries?first=2024-03-01", headers=as_["jx"]).status_code == 422
    assert client.get(f"{BASE}/facilities", headers=as_["agency"]).json()[0]["code"] == "MF0001"
    assert client.get(f"{BASE}/entries").status_code == 401
    assert (
        client.get("/api/v1/permits/ledgers/NOPE/entries", headers=as_["agency"]).status_code == 404
    )


def _signed(client: TestClient, username: str) -> TestClient:
    done = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert done.status_code == 303
    return client


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_the_page_appends_entries_and_the_report_shows_the_ledger(
    engine: Engine, http: tuple[TestClient, dict[str, dict[str, str]]]
) -> None:
    jx = _signed(TestClient(create_app(engine), base_url="https://testserver"), "jxu")
    officer = _signed(TestClient(create_app(engine), base_url="https://testserver"), "officer")
    page = jx.get(f"/permits/ledgers/{PERMIT}")
    assert (
        page.status_code == 200 and "环境管理台账" in page.text and 'id="ledger-entry"' in page.text
    )
    token = _token(page.text)
    jx.post(
        f"/permits/ledgers/{PERMIT}/facilities",
        data={"csrf_token": token, "code": "TA001", "name": "低氮燃烧", "kind": "treatment"},
    )
    form = {
        "csrf_token": token,
        "form": "treatment:normal",
        "facility": "TA001",
        "at": "2024-03-05T09:00",
        "operator": "王工",
        "v:running": "yes",
        "v:reagent_kg": "12",
    }
    missing = jx.post(
        f"/permits/ledgers/{PERMIT}/entries", data={**form, "v:running": ""}, follow_redirects=False
    )
    assert "values.running%3A%20required" in missing.headers["location"]
    saved = jx.post(f"/permits/ledgers/{PERMIT}/entries", data=form)
    assert "2024-03-05 09:00" in saved.text and "王工" in saved.text
    english = officer.get(f"/permits/ledgers/{PERMIT}?lang=en").text
    assert "Environmental management ledger" in english and 'id="ledger-entry"' not in english
    assert "Reagent added (kg): 12.0" in english
    assert officer.post(f"/permits/ledgers/{PERMIT}/entries", data=form).status_code == 403
    report = reports.generate(engine, PERMIT, "monthly", dt.date(2024, 3, 1), actor="t")
    shown = officer.get(f"/permits/reports/{report['id']}?lang=en").text
    assert "Nitrogen oxides (NOx)" in shown and 'id="ledger-completeness"' in shown
    # treatment: one facility, 31 days, 5 March held
    assert re.search(
        r"Pollution control facilities: normal operation</td><td>Daily</td>"
        r"<td>1/31</td><td[^>]*>30<",
        shown,
    )
