"""Issue 29, revocation once a renewal is issued: revoking a permit from a day ends the
version in force the day before and revokes the versions issued to follow it (each
audited; their limits no longer read by the alarms), through the API and the agency's
form on the versions page; an enterprise has no such form and cannot post it.

The demo permit …001P runs 2023-01-01 to 2027-12-31; its renewal (第十四条) runs from
2028-01-01 for 5 years, to 2032-12-31.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.alarms.context import load_registry
from ecohub.app import create_app
from ecohub.permits import lifecycle, versions
from ecohub.registry.models import AuditEntry

JINGXI = "91110106MA00DEM01H"
NUMBER = f"{JINGXI}001P"
PASSWORD = "correct horse battery"
LIMITS = [
    {"outlet_code": "DA001", "parameter_code": "a21026", "concentration_limit": 8, "unit": "mg/m³"}
]


def _renew(engine: Engine) -> None:
    made = lifecycle.apply(
        engine,
        uscc=JINGXI,
        kind="renewal",
        management_class="key",
        permit_no=NUMBER,
        content={"limits": LIMITS},
        actor="t",
    )
    lifecycle.decide(engine, made["id"], "accepted", actor="a", by="agency", on=dt.date(2026, 9, 1))
    lifecycle.decide(engine, made["id"], "issued", actor="a", by="agency", on=dt.date(2026, 9, 8))


def _spans(found: dict) -> list[tuple]:
    return [(v["version"], v["status"], v["valid_from"], v["valid_to"]) for v in found["versions"]]


def test_revoking_today_revokes_the_renewal_too(points: dict, engine: Engine) -> None:
    _renew(engine)
    found = versions.revoke(engine, NUMBER, on=dt.date(2026, 12, 10), reason="依法撤销", actor="a")
    assert _spans(found) == [
        (1, "revoked", "2023-01-01", "2026-12-09"),
        (2, "revoked", "2028-01-01", "2032-12-31"),
    ]
    assert found["versions"][1]["limits"] == [] and found["versions"][1]["monitoring"] == []
    with Session(engine) as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "permits", AuditEntry.action == "update")
            .order_by(AuditEntry.id)
        ).all()
    revoked = {e.entity_key: e for e in entries if (e.after or {}).get("reason") == "依法撤销"}
    assert set(revoked) == {f"{NUMBER} v1", f"{NUMBER} v2"}
    before = revoked[f"{NUMBER} v2"].before or {}
    assert before["limits"][0]["concentration_limit"] == 8
    # The alarms no longer read the renewal's limit (8 mg/m³) for 2028.
    with engine.connect() as connection:
        registry = load_registry(connection, dt.datetime(2028, 6, 1, tzinfo=dt.UTC))
    read = [
        (info.valid_from, info.concentration_limit)
        for infos in registry.limits.values()
        for info in infos
        if info.permit_no == NUMBER
    ]
    assert read and all(valid_from == dt.date(2023, 1, 1) for valid_from, _ in read)


def test_revoking_from_the_renewals_first_day(points: dict, engine: Engine) -> None:
    _renew(engine)
    found = versions.revoke(engine, NUMBER, on=dt.date(2028, 1, 1), reason="不再排放", actor="a")
    assert _spans(found) == [
        (1, "in_force", "2023-01-01", "2027-12-31"),  # ends as it would have
        (2, "revoked", "2028-01-01", "2032-12-31"),
    ]
    with pytest.raises(lifecycle.PermitError, match="no version in force"):
        versions.revoke(engine, NUMBER, on=dt.date(2028, 1, 1), reason="again", actor="a")
    with pytest.raises(lifecycle.PermitError, match="written reason"):
        versions.revoke(engine, NUMBER, on=dt.date(2026, 1, 1), reason=" ", actor="a")


def _client(engine: Engine, username: str) -> TestClient:
    client = TestClient(create_app(engine), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": username, "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    return client


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_the_agency_revokes_on_the_versions_page(points: dict, engine: Engine) -> None:
    _renew(engine)
    with Session(engine) as session:
        create_user(session, username="officer", password=PASSWORD, role=Role.AGENCY, actor="t")
        create_user(
            session, username="jx", password=PASSWORD, role=Role.ENTERPRISE, actor="t",
            enterprise_id=1,
        )  # fmt: skip
        session.commit()
    officer, jx = _client(engine, "officer"), _client(engine, "jx")
    url = f"/permits/versions/{NUMBER}"
    mine = jx.get(url)
    assert mine.status_code == 200 and 'id="revoke"' not in mine.text
    refused = jx.post(
        f"{url}/revoke",
        data={"csrf_token": _token(mine.text), "on": "2026-12-10", "reason": "x"},
        follow_redirects=False,
    )
    assert refused.status_code in {303, 403} and "error" not in refused.headers.get("location", "")
    page = officer.get(url)
    assert 'id="revoke"' in page.text and "撤销许可证" in page.text
    token = _token(page.text)
    bad = officer.post(
        f"{url}/revoke",
        data={"csrf_token": token, "on": "2026-13-01", "reason": "依法撤销"},
    )
    assert "撤销生效日期：“2026-13-01”不是日期（年-月-日）" in bad.text
    done = officer.post(
        f"{url}/revoke", data={"csrf_token": token, "on": "2026-12-10", "reason": "依法撤销"}
    )
    assert done.status_code == 200
    assert done.text.count("已撤销") == 2 and "2023-01-01 – 2026-12-09" in done.text
    assert 'id="revoke"' not in done.text  # nothing left in force
    assert versions.permit_versions(engine, NUMBER)["versions"][0]["status"] == "revoked"
