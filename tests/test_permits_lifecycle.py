"""The discharge-permit procedure: its periods typed from 《排污许可管理条例》(2021) and
《行政许可法》, and on both backends an application through the API → acceptance →
issue → the version in force read by the limit alarms, a change and a renewal as new
versions, revocation, documents, roles and the audit trail.

Periods by hand (Monday to Friday working days, no holidays passed to the rules; the
procedure itself counts the public holidays, see the issue test):
- accepted Monday 2026-03-02, simplified management, 20 working days (第十二条): 3-6 March
  are 4, 9-13 → 9, 16-20 → 14, 23-27 → 19, Monday 30 March the 20th → 2026-03-30;
- key management, 30 working days: 31 March-3 April → 24, 6-10 April → 29, Monday
  13 April → 2026-04-13; with a site check, 45: 14-17 April → 34, 20-24 → 39, 27 April-
  1 May → 44, Monday 4 May → 2026-05-04;
- a permit whose last valid day is 2029-05-31 expires at the end of it: a renewal is due
  60 days before 1 June (第十四条), 2 April 2029 (April 30 + May 31 = 61 days to 1 June
  from 1 April, 60 from 2 April);
- a first version issued 2026-03-30 runs 5 years (第十四条) to 2031-03-29.
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.alarms.context import load_registry
from ecohub.app import create_app
from ecohub.permits import rules
from ecohub.registry.models import AuditEntry, Permit

JINGXI = "91110106MA00DEM01H"
HUDONG = "91310115MA1HDEM025"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_periods_typed_from_the_regulations() -> None:
    monday = dt.date(2026, 3, 2)
    assert rules.decision_due(monday, "new", "simplified", False) == dt.date(2026, 3, 30)
    assert rules.decision_due(monday, "new", "key", False) == dt.date(2026, 4, 13)
    assert rules.decision_due(monday, "new", "key", True) == dt.date(2026, 5, 4)
    assert rules.decision_due(monday, "renewal", "key", True) == dt.date(2026, 3, 30)
    assert rules.acceptance_due(dt.date(2026, 3, 6)) == dt.date(2026, 3, 13)  # Fri + 5
    assert rules.renewal_apply_by(dt.date(2029, 5, 31)) == dt.date(2029, 4, 2)
    assert rules.change_apply_by(dt.date(2026, 3, 2)) == dt.date(2026, 4, 1)
    assert rules.new_validity(dt.date(2026, 3, 30)) == (dt.date(2026, 3, 30), dt.date(2031, 3, 29))
    assert rules.new_validity(dt.date(2028, 2, 29))[1] == dt.date(2033, 2, 27)
    assert rules.renewed_validity(dt.date(2027, 12, 31)) == (
        dt.date(2028, 1, 1),
        dt.date(2032, 12, 31),
    )
    with pytest.raises(rules.ProcedureError):
        rules.changed_validity(dt.date(2023, 1, 1), (dt.date(2023, 1, 1), dt.date(2027, 12, 31)))
    with pytest.raises(rules.ProcedureError, match="written reason"):
        rules.check_step("accepted", "refused", "agency", " ")
    with pytest.raises(rules.ProcedureError, match="only the agency"):
        rules.check_step("submitted", "accepted", "enterprise", None)
    with pytest.raises(rules.ProcedureError, match="cannot become"):
        rules.check_step("issued", "refused", "agency", "x")


def _keys(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        keys = {
            "agency": issue_key(session, name="agency", role=Role.AGENCY, created_by="t"),
            "public": issue_key(session, name="public", role=Role.PUBLIC, created_by="t"),
            "jingxi": issue_key(
                session, name="jingxi", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
            ),
        }
        session.commit()
    return keys


def _new_content() -> dict:
    return {
        "outlets": [{"code": "DA002", "name": "2号锅炉排气筒", "kind": "gas"}],
        "limits": [
            {
                "outlet_code": "DA002",
                "parameter_code": "a21026",
                "concentration_limit": 35,
                "unit": "mg/m³",
                "annual_mass_limit_kg": 1200,
            },
            {
                "outlet_code": "DA002",
                "parameter_code": "a21002",
                "concentration_limit": 50,
                "unit": "mg/m³",
            },
        ],
        "monitoring": [
            {"outlet_code": "DA002", "parameter_code": "a21026", "frequency": "automatic"},
            {"outlet_code": "DA002", "parameter_code": "a21002", "frequency": "automatic"},
        ],
    }


@pytest.fixture
def client(points: dict[str, int], engine: Engine) -> tuple[TestClient, dict[str, dict]]:
    keys = _keys(engine)
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    return TestClient(create_app(engine)), headers


def test_apply_accept_issue_and_the_version_drives_the_alarms(
    client: tuple[TestClient, dict], engine: Engine
) -> None:
    http, as_ = client
    body = {"uscc": JINGXI, "kind": "new", "management_class": "key", "content": _new_content()}
    assert http.post("/api/v1/permits/applications", json=body).status_code == 401
    assert (
        http.post("/api/v1/permits/applications", json=body, headers=as_["public"]).status_code
        == 403
    )
    other = {**body, "uscc": HUDONG}
    assert (
        http.post("/api/v1/permits/applications", json=other, headers=as_["jingxi"]).status_code
        == 404
    )
    bad = {
        **body,
        "content": {**_new_content(), "outlets": [{"code": "XX1", "name": "x", "kind": "gas"}]},
    }
    refused = http.post("/api/v1/permits/applications", json=bad, headers=as_["jingxi"])
    assert (
        refused.status_code == 409 and "content.outlets, item 1, code" in refused.json()["detail"]
    )

    made = http.post("/api/v1/permits/applications", json=body, headers=as_["jingxi"])
    assert made.status_code == 201, made.text
    application = made.json()
    assert application["status"] == "submitted" and application["reference"].startswith("SQ")
    url = f"/api/v1/permits/applications/{application['id']}"
    uploaded = http.post(
        f"{url}/documents", files={"file": ("申请表.pdf", PDF)}, headers=as_["jingxi"]
    )
    assert uploaded.status_code == 201 and uploaded.json()["media_type"] == "application/pdf"
    fake = http.post(
        f"{url}/documents", files={"file": ("x.pdf", b"MZ\x90\x00")}, headers=as_["jingxi"]
    )
    assert fake.status_code == 422
    # The enterprise may not accept its own application; the agency may.
    step = {"status": "accepted", "site_check": True, "on": "2026-03-02"}
    assert http.post(f"{url}/decision", json=step, headers=as_["jingxi"]).status_code == 409
    accepted = http.post(f"{url}/decision", json=step, headers=as_["agency"]).json()
    # Key management with a site check, 45 working days counted on the State Council's
    # 2026 calendar (清明 6 April and 劳动节 1-5 May are holidays): 3-31 March are 21,
    # 1-3 April → 24, 7-10 → 28, 13-17 → 33, 20-24 → 38, 27-30 → 42, 6-8 May → 45.
    assert accepted["decision_due"] == "2026-05-08"
    issued = http.post(
        f"{url}/decision", json={"status": "issued", "on": "2026-04-20"}, headers=as_["agency"]
    ).json()
    assert issued["status"] == "issued" and issued["permit_no"] == f"{JINGXI}002P"
    assert [s["step"] for s in issued["steps"]] == ["submitted", "accepted", "issued"]

    versions = http.get(f"/api/v1/permits/versions/{JINGXI}002P", headers=as_["jingxi"]).json()
    (first,) = versions["versions"]
    assert (first["valid_from"], first["valid_to"]) == ("2026-04-20", "2031-04-19")
    assert {row["parameter_code"] for row in first["limits"]} == {"a21026", "a21002"}
    assert first["monitoring"][0]["frequency"] == "自动监测"
    # The alarms read the new outlet's limits with the version's validity.
    with engine.connect() as connection:
        registry = load_registry(connection, dt.datetime(2026, 5, 1, tzinfo=dt.UTC))
    limits = [
        info
        for (_, code), infos in registry.limits.items()
        for info in infos
        if info.permit_no == f"{JINGXI}002P" and code == "a21026"
    ]
    assert [(x.valid_from, x.concentration_limit) for x in limits] == [(dt.date(2026, 4, 20), 35.0)]
    with Session(engine) as session:
        actions = session.scalars(
            select(AuditEntry.entity).where(
                AuditEntry.entity.in_(
                    ["permits", "outlets", "permit_applications", "permit_documents"]
                )
            )
        ).all()
    assert {"permits", "outlets", "permit_applications", "permit_documents"} <= set(actions)


def _issue(http: TestClient, as_: dict, body: dict, on: str) -> dict:
    made = http.post("/api/v1/permits/applications", json=body, headers=as_["jingxi"])
    assert made.status_code == 201, made.text
    url = f"/api/v1/permits/applications/{made.json()['id']}"
    http.post(f"{url}/decision", json={"status": "accepted", "on": on}, headers=as_["agency"])
    issued = http.post(
        f"{url}/decision", json={"status": "issued", "on": on}, headers=as_["agency"]
    )
    assert issued.status_code == 200, issued.text
    return issued.json()


def test_a_change_and_a_renewal_are_versions_and_revocation_ends_one(
    client: tuple[TestClient, dict], engine: Engine
) -> None:
    http, as_ = client
    number = f"{JINGXI}001P"  # the demo's permit, 2023-01-01 to 2027-12-31
    limits = [
        {
            "outlet_code": "DA001",
            "parameter_code": "a21026",
            "concentration_limit": 8,
            "unit": "mg/m³",
        }
    ]
    change = {
        "uscc": JINGXI,
        "kind": "change",
        "management_class": "key",
        "permit_no": number,
        "content": {"limits": limits, "effective_on": "2025-07-01", "reason": "新标准"},
    }
    _issue(http, as_, change, "2025-06-20")
    renewal = {**change, "kind": "renewal", "content": {"limits": limits}}
    _issue(http, as_, renewal, "2027-10-01")
    found = http.get(f"/api/v1/permits/versions/{number}", headers=as_["agency"]).json()
    spans = [(v["version"], v["valid_from"], v["valid_to"]) for v in found["versions"]]
    assert spans == [
        (1, "2023-01-01", "2025-06-30"),
        (2, "2025-07-01", "2027-12-31"),
        (3, "2028-01-01", "2032-12-31"),
    ]
    assert [v["limits"][0]["concentration_limit"] for v in found["versions"]][1:] == [8.0, 8.0]
    # The disclosure shows the version in force today (2026-12: version 2).
    shown = http.get(f"/api/v1/enterprises/{JINGXI}").json()["permits"]
    assert [(p["permit_no"], p["version"]) for p in shown] == [(number, 2)]
    # Revocation: by the agency, from a day after the permit's first day, with a reason
    # (revoking with a renewal pending: tests/test_permits_lifecycle_revocation.py).
    url = f"/api/v1/permits/versions/{number}/revocation"
    assert (
        http.post(url, json={"on": "2026-01-01", "reason": "x"}, headers=as_["jingxi"]).status_code
        == 403
    )
    assert (
        http.post(
            url, json={"on": "2023-01-01", "reason": "违法"}, headers=as_["agency"]
        ).status_code
        == 409
    )
    done = http.post(url, json={"on": "2029-03-01", "reason": "依法撤销"}, headers=as_["agency"])
    assert done.status_code == 200, done.text
    last = done.json()["versions"][-1]
    assert (last["status"], last["valid_to"]) == ("revoked", "2029-02-28")
    again = {**renewal}
    refused = http.post("/api/v1/permits/applications", json=again, headers=as_["jingxi"])
    assert refused.status_code == 409 and "revoked" in refused.json()["detail"]
    with Session(engine) as session:
        assert session.scalar(select(Permit.status).where(Permit.version == 3)) == "revoked"


def test_withdrawal_and_refusal(client: tuple[TestClient, dict]) -> None:
    http, as_ = client
    body = {
        "uscc": JINGXI,
        "kind": "new",
        "management_class": "simplified",
        "content": _new_content(),
    }
    first = http.post("/api/v1/permits/applications", json=body, headers=as_["jingxi"]).json()
    url = f"/api/v1/permits/applications/{first['id']}/decision"
    assert (
        http.post(url, json={"status": "withdrawn"}, headers=as_["jingxi"]).json()["status"]
        == "withdrawn"
    )
    second = http.post("/api/v1/permits/applications", json=body, headers=as_["jingxi"]).json()
    url = f"/api/v1/permits/applications/{second['id']}/decision"
    assert http.post(url, json={"status": "not_accepted"}, headers=as_["agency"]).status_code == 409
    done = http.post(
        url, json={"status": "not_accepted", "reason": "缺少环评批复"}, headers=as_["agency"]
    )
    assert done.json()["decision_note"] == "缺少环评批复"
    mine = http.get("/api/v1/permits/applications", headers=as_["jingxi"]).json()
    assert [a["status"] for a in mine] == ["not_accepted", "withdrawn"]


def test_the_registry_checks_a_national_permit_number_like_the_credit_code() -> None:
    from pydantic import ValidationError

    from ecohub.registry.schemas import PermitIn

    def permit(number: str, uscc: str = JINGXI) -> PermitIn:
        return PermitIn(
            permit_no=number,
            enterprise_uscc=uscc,
            valid_from=dt.date(2024, 1, 1),
            valid_to=dt.date(2028, 12, 31),
        )

    assert permit(f"{JINGXI}001P").permit_no == f"{JINGXI}001P"
    assert permit("P-1").permit_no == "P-1"  # an older local number, kept as written
    with pytest.raises(ValidationError, match="not the enterprise's credit code"):
        permit(f"{HUDONG}001P")
    with pytest.raises(ValidationError):
        permit(f"{JINGXI[:-1]}X001P")  # the credit code's check character corrupted
