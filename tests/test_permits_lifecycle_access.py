"""Issue 29, the stored files of the procedure can be opened: an application's documents
and a report's signed page, through the API and the portal, by the agency and by the
enterprise's own users for their own (another enterprise's: 404, as if it did not
exist), with the content type read from the bytes, as an attachment, never sniffed; the
application and versions pages and the report page link them."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.accounts.users import create_user
from ecohub.app import create_app

JINGXI = "91110106MA00DEM01H"
NUMBER = f"{JINGXI}001P"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PASSWORD = "correct horse battery"
LIMITS = [
    {"outlet_code": "DA001", "parameter_code": "a21026", "concentration_limit": 8, "unit": "mg/m³"}
]


def _keys(engine: Engine) -> dict[str, dict[str, str]]:
    with Session(engine) as session:
        keys = {
            "agency": issue_key(session, name="agency", role=Role.AGENCY, created_by="t"),
            "public": issue_key(session, name="public", role=Role.PUBLIC, created_by="t"),
            "jingxi": issue_key(
                session, name="jingxi", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
            ),
            "hudong": issue_key(
                session, name="hudong", role=Role.ENTERPRISE, created_by="t", enterprise_id=2
            ),
        }
        for name, role, enterprise in (
            ("officer", Role.AGENCY, None),
            ("jx", Role.ENTERPRISE, 1),
            ("hd", Role.ENTERPRISE, 2),
        ):
            create_user(
                session, username=name, password=PASSWORD, role=role, actor="t",
                enterprise_id=enterprise,
            )  # fmt: skip
        session.commit()
    return {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}


def _signed_in(engine: Engine, username: str) -> TestClient:
    client = TestClient(create_app(engine), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    return client


def _is_the_file(answer: Response, media_type: str, name: str, data: bytes) -> None:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].split(";")[0] == media_type
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert name in answer.headers["content-disposition"]
    assert answer.content == data


def test_documents_and_signed_pages_open_for_their_parties_only(
    points: dict, engine: Engine
) -> None:
    as_ = _keys(engine)
    http = TestClient(create_app(engine))
    body = {
        "uscc": JINGXI,
        "kind": "change",
        "management_class": "key",
        "permit_no": NUMBER,
        "content": {"limits": LIMITS, "effective_on": "2025-07-01", "reason": "新标准"},
    }
    made = http.post("/api/v1/permits/applications", json=body, headers=as_["jingxi"]).json()
    url = f"/api/v1/permits/applications/{made['id']}"
    document = http.post(
        f"{url}/documents", files={"file": ("form.pdf", PDF)}, headers=as_["jingxi"]
    ).json()
    address = f"{url}/documents/{document['id']}"
    _is_the_file(http.get(address, headers=as_["jingxi"]), "application/pdf", "form.pdf", PDF)
    _is_the_file(http.get(address, headers=as_["agency"]), "application/pdf", "form.pdf", PDF)
    assert http.get(address, headers=as_["hudong"]).status_code == 404
    assert http.get(address, headers=as_["public"]).status_code == 403
    assert http.get(address).status_code == 401
    assert (
        http.get(f"{url}/documents/{document['id'] + 1}", headers=as_["agency"]).status_code == 404
    )
    decision = f"{url}/decision"
    http.post(decision, json={"status": "accepted", "on": "2025-06-02"}, headers=as_["agency"])
    http.post(decision, json={"status": "issued", "on": "2025-06-20"}, headers=as_["agency"])

    # A report, signed by the enterprise.
    report = http.post(
        "/api/v1/permits/reports",
        json={"permit_no": NUMBER, "kind": "monthly", "day": "2024-03-15"},
        headers=as_["jingxi"],
    ).json()
    signature = f"/api/v1/permits/reports/{report['id']}/signature"
    assert http.get(signature, headers=as_["agency"]).status_code == 404  # not signed yet
    submitted = http.post(
        f"/api/v1/permits/reports/{report['id']}/submission",
        files={"file": ("s.png", PNG)},
        headers=as_["jingxi"],
    )
    assert submitted.status_code == 200, submitted.text
    name = f"signature-{report['id']}.png"
    _is_the_file(http.get(signature, headers=as_["agency"]), "image/png", name, PNG)
    _is_the_file(http.get(signature, headers=as_["jingxi"]), "image/png", name, PNG)
    assert http.get(signature, headers=as_["hudong"]).status_code == 404

    # The portal: the same files, linked from the pages.
    officer, jx, hd = (_signed_in(engine, n) for n in ("officer", "jx", "hd"))
    page_url = f"/permits/applications/{made['id']}"
    link = f"{page_url}/documents/{document['id']}"
    assert f'href="{link}"' in officer.get(page_url).text
    _is_the_file(officer.get(link), "application/pdf", "form.pdf", PDF)
    _is_the_file(jx.get(link), "application/pdf", "form.pdf", PDF)
    assert hd.get(link).status_code == 404
    versions_page = jx.get(f"/permits/versions/{NUMBER}").text
    assert f'href="{page_url}"' in versions_page and f'href="{link}"' in versions_page
    report_page = f"/permits/reports/{report['id']}"
    assert f'href="{report_page}/signature"' in officer.get(report_page).text
    _is_the_file(officer.get(f"{report_page}/signature"), "image/png", name, PNG)
    _is_the_file(jx.get(f"{report_page}/signature"), "image/png", name, PNG)
    assert hd.get(f"{report_page}/signature").status_code == 404
    assert re.search(r"/permits/applications/\d+/documents/\d+", versions_page)
