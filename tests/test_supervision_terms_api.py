"""The API of a case's terms and a draw's voiding (``ecohub/supervision/terms_api.py``), on
both backends: an extension through the API moves the deadline as the articles count it
(filed 2025-07-03: the 90th day 10-01 rolls past the National Day holiday to 10-09; 30 days
more: Fri 10-31), the decision's service starts the 15 days to pay, a voided draw stays
listed with its reason, a caller's seed is refused, and an enterprise's key is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.supervision import cases, service

HUDONG = "91310115MA1HDEM025"
D = dt.date.fromisoformat


def _keys(engine: Engine) -> tuple[dict[str, str], dict[str, str]]:
    with Session(engine) as session:
        agency = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        enterprise = issue_key(
            session, name="hd", role=Role.ENTERPRISE, created_by="t", enterprise_id=2
        )
        session.commit()
    return {"Authorization": f"Bearer {agency}"}, {"Authorization": f"Bearer {enterprise}"}


def test_terms_and_void_through_the_api(engine: Engine, points: dict[str, int]) -> None:
    agency, enterprise = _keys(engine)
    api = TestClient(create_app(engine))
    case_id = cases.open_case(engine, HUDONG, "超标排放", "SO2 超标", D("2025-06-20"), "agency:t")
    cases.record_step(engine, case_id, "filed", D("2025-07-03"), "agency:t")
    base = f"/api/v1/supervision/cases/{case_id}"
    body = {"kind": "extension", "rule": "decide_case", "days": 30, "on": "2025-10-08",
            "reason": "局长批准"}  # fmt: skip
    assert api.post(f"{base}/time", headers=enterprise, json=body).status_code == 403
    moved = api.post(f"{base}/time", headers=agency, json=body)
    assert moved.status_code == 200 and moved.json()["due"] == "2025-10-31"
    assert api.post(f"{base}/time", headers=agency, json={**body, "days": 0}).status_code == 422
    for step, on in (("investigated", "2025-09-01"), ("notified", "2025-09-10")):
        cases.record_step(engine, case_id, step, D(on), "agency:t")
    cases.record_step(
        engine, case_id, "decided", D("2025-10-20"), "agency:t",
        penalty_yuan=Decimal("100000"), legal_basis="大气污染防治法 第九十九条",
    )  # fmt: skip
    served = api.post(f"{base}/served", headers=agency, json={"served_on": "2025-10-22"})
    assert served.status_code == 204
    found = cases.get_case(engine, case_id, today=D("2025-10-23"))
    assert found is not None
    pay = next(d for d in found["deadlines"] if d["rule"] == "pay_fine")
    assert pay["due"] == "2025-11-06"  # 15 days from the day after service (行政处罚法 第六十七条)


def test_a_voided_draw_stays_listed_and_a_callers_seed_is_refused(
    engine: Engine, points: dict[str, int]
) -> None:
    agency, _ = _keys(engine)
    api = TestClient(create_app(engine))
    service.set_object(engine, HUDONG, "key", "t")
    service.set_inspector(engine, "SH-01", "甲", "310115", "t")
    service.set_inspector(engine, "SH-02", "乙", "310115", "t")
    seeded = api.post(
        "/api/v1/supervision/draws",
        headers=agency,
        json={"title": "季度抽查", "rates": {"key": 1.0}, "seed": 7},
    )
    assert seeded.status_code == 422 and seeded.json()["detail"].startswith("seed:")
    drawn = api.post(
        "/api/v1/supervision/draws",
        headers=agency,
        json={"title": "季度抽查", "rates": {"key": 1.0}},
    )
    assert drawn.status_code == 201
    draw_id = drawn.json()["id"]
    assert api.post(f"/api/v1/supervision/draws/{draw_id}/void", headers=agency,
                    json={"reason": ""}).status_code == 422  # fmt: skip
    voided = api.post(
        f"/api/v1/supervision/draws/{draw_id}/void", headers=agency, json={"reason": "名录有误"}
    )
    assert voided.status_code == 204
    listed = [d for d in service.list_draws(engine, public=True) if d["id"] == draw_id]
    assert listed and listed[0]["void_reason"] == "名录有误"
