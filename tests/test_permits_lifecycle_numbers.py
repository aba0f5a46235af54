"""Issue 29, the permit procedure's numbers and days: a new permit's number follows the
highest sequence the enterprise holds (HJ 608-2017, not a count, which collides after a
gap), application references and acceptance days follow the Beijing calendar, working
days skip the State Council's public holidays and count its make-up working days (调休),
and a change that shortens the version before it is audited on its own.

Hand computations (the notice for 2026: 国务院办公厅关于2026年部分节假日安排的通知,
2025-11-04; 国庆节 1-7 October holidays, Saturday 10 October a working day):
- submitted Wednesday 30 September 2026 (Beijing), acceptance within 5 working days
  (行政许可法 第三十二条): 8 Oct (1), 9 (2), Saturday 10 (3, 调休), 12 (4), 13 (5) →
  2026-10-13; weekends alone would give 7 October;
- 23:30 UTC on 2026-12-31 is 07:30 on 1 January 2027 in Beijing: reference SQ2027…;
- 17:00 UTC on Thursday 2026-03-05 is Friday 01:00 in Beijing: 5 working days from
  Friday 6 March → Friday 13 March (from the UTC Thursday it would be the 12th).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from ecohub import clock
from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.permits import lifecycle, rules
from ecohub.registry.models import AuditEntry, Enterprise, Permit

JINGXI = "91110106MA00DEM01H"

LIMITS = [
    {"outlet_code": "DA001", "parameter_code": "a21026", "concentration_limit": 20, "unit": "mg/m³"}
]


def _at(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    """Freeze the clock the procedure reads (UTC now; Beijing today follows from it)."""
    monkeypatch.setattr(clock, "utcnow", lambda: moment)
    monkeypatch.setattr(lifecycle, "utcnow", lambda: moment)
    monkeypatch.setattr(lifecycle, "local_today", clock.local_today)


def _new(engine: Engine) -> dict:
    return lifecycle.apply(
        engine,
        uscc=JINGXI,
        kind="new",
        management_class="simplified",
        content={"limits": LIMITS},
        actor="t",
    )


def test_a_new_permit_follows_the_highest_sequence(points: dict, engine: Engine) -> None:
    # The demo enterprise holds …001P; give it …003P (a gap: 002 was never issued here).
    with engine.begin() as connection:
        enterprise_id = connection.execute(
            select(Enterprise.id).where(Enterprise.uscc == JINGXI)
        ).scalar_one()
        connection.execute(
            insert(Permit).values(
                permit_no=f"{JINGXI}003P",
                version=1,
                status="in_force",
                enterprise_id=enterprise_id,
                valid_from=dt.date(2024, 1, 1),
                valid_to=dt.date(2028, 12, 31),
            )
        )
    made = _new(engine)
    lifecycle.decide(engine, made["id"], "accepted", actor="a", by="agency", on=dt.date(2026, 3, 2))
    issued = lifecycle.decide(
        engine, made["id"], "issued", actor="a", by="agency", on=dt.date(2026, 3, 9)
    )
    assert issued["permit_no"] == f"{JINGXI}004P"  # a count (2) + 1 would give 003P again
    again = _new(engine)
    lifecycle.decide(
        engine, again["id"], "accepted", actor="a", by="agency", on=dt.date(2026, 3, 2)
    )
    second = lifecycle.decide(
        engine, again["id"], "issued", actor="a", by="agency", on=dt.date(2026, 3, 9)
    )
    assert second["permit_no"] == f"{JINGXI}005P"


def test_public_holidays_and_make_up_days_count(
    points: dict, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = rules.public_calendar()
    assert dt.date(2026, 10, 1) in calendar.holidays and dt.date(2026, 10, 10) in calendar.workdays
    assert dt.date(2026, 2, 14) in calendar.workdays and dt.date(2026, 2, 23) in calendar.holidays
    assert rules.acceptance_due(dt.date(2026, 9, 30)) == dt.date(2026, 10, 7)  # weekends only
    _at(monkeypatch, dt.datetime(2026, 9, 30, 2, 0, tzinfo=dt.UTC))  # 10:00 in Beijing
    made = _new(engine)
    assert made["acceptance_due"] == "2026-10-13"
    # Accepted on Friday 13 February 2026, simplified management: 20 working days. Sat 14
    # (调休) is 1, 16-23 Spring Festival holidays, 24-27 → 5, Sat 28 (调休) → 6, 2-6 March
    # → 11, 9-13 → 16, 16-19 → 20: Thursday 2026-03-19.
    accepted = lifecycle.decide(
        engine, made["id"], "accepted", actor="a", by="agency", on=dt.date(2026, 2, 13)
    )
    assert accepted["decision_due"].isoformat() == "2026-03-19"


def test_references_and_acceptance_follow_the_beijing_calendar(
    points: dict, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _at(monkeypatch, dt.datetime(2026, 3, 5, 17, 0, tzinfo=dt.UTC))
    assert _new(engine)["acceptance_due"] == "2026-03-13"
    _at(monkeypatch, dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC))
    first = _new(engine)
    second = _new(engine)
    assert (first["reference"], second["reference"]) == ("SQ2027000001", "SQ2027000002")


def test_a_change_audits_the_shortened_version(points: dict, engine: Engine) -> None:
    number = f"{JINGXI}001P"  # the demo's permit, 2023-01-01 to 2027-12-31
    made = lifecycle.apply(
        engine,
        uscc=JINGXI,
        kind="change",
        management_class="key",
        permit_no=number,
        content={"limits": LIMITS, "effective_on": "2025-07-01", "reason": "新标准"},
        actor="t",
    )
    lifecycle.decide(engine, made["id"], "accepted", actor="a", by="agency", on=dt.date(2025, 6, 2))
    lifecycle.decide(engine, made["id"], "issued", actor="a", by="agency", on=dt.date(2025, 6, 20))
    with Session(engine) as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "permits", AuditEntry.entity_key == f"{number} v1"
            )
        ).one()
    assert entry.before == {"valid_to": "2027-12-31"}
    assert entry.after == {"valid_to": "2025-06-30", "changed_by": made["reference"]}


def test_the_api_issues_after_a_gap_without_an_error(points: dict, engine: Engine) -> None:
    """Through the API the collision was a 500; now the next number is issued."""
    with Session(engine) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    with engine.begin() as connection:
        connection.execute(
            insert(Permit).values(
                permit_no=f"{JINGXI}003P",
                version=1,
                status="in_force",
                enterprise_id=1,
                valid_from=dt.date(2024, 1, 1),
                valid_to=dt.date(2028, 12, 31),
            )
        )
    http = TestClient(create_app(engine))
    headers = {"Authorization": f"Bearer {key}"}
    body = {"uscc": JINGXI, "kind": "new", "management_class": "key", "content": {"limits": LIMITS}}
    made = http.post("/api/v1/permits/applications", json=body, headers=headers).json()
    url = f"/api/v1/permits/applications/{made['id']}/decision"
    http.post(url, json={"status": "accepted", "on": "2026-03-02"}, headers=headers)
    issued = http.post(url, json={"status": "issued", "on": "2026-03-09"}, headers=headers)
    assert issued.status_code == 200 and issued.json()["permit_no"] == f"{JINGXI}004P"
