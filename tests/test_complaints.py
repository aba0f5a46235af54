"""Public complaints end to end, on both backends: a hotline record through the API, then
a complaint from the public form about the same thing linked to its event; routing to
the city's agency; acceptance; the handling deadline of 信访工作条例 第三十四条 (60 days
from acceptance, 民法典 第二百零一条: the first day not counted) passed → a
``complaint_overdue`` alarm that the level above supervises once 15 days over; the reply
closes it; the complainant's rating, objection and the review by the level above; the
public statistics. Roles: only the handling agency's staff read contact details; the
self-query refuses a wrong code and is throttled."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.alarms.tables import alarms
from ecohub.app import create_app
from ecohub.clock import local_zone
from ecohub.complaints import handling, queries, service
from ecohub.complaints.overdue import sweep_overdue_complaints
from ecohub.complaints.tables import complaint_events, complaints
from ecohub.config import get_settings
from ecohub.registry.models import Enterprise
from ecohub.supervision import evidence
from ecohub.supervision.risk import evidence_values, load_weights, risk_score

warnings.filterwarnings("ignore", category=DeprecationWarning)
# 石家庄 (130100): a point in 长安区 and one 300 m east of it.
SJZ = (114.5390, 38.0420)
SJZ_EAST = (114.5424, 38.0421)
PHONE = "李四 13912345678"


@pytest.fixture
def setup(engine: Engine, tmp_path: Path) -> tuple[TestClient, dict[str, str]]:
    handling.add_agency(engine, "HEB", "河北省生态环境厅", "130000", "t")
    handling.add_agency(engine, "SJZ", "石家庄市生态环境局", "130100", "t", parent_code="HEB")
    handling.add_agency(engine, "BJ", "北京市生态环境局", "110000", "t")
    with Session(engine) as session:
        keys = {
            name: issue_key(session, name=name, role=role, created_by="t")
            for name, role in (
                ("sjz-staff", Role.AGENCY),
                ("heb-staff", Role.AGENCY),
                ("bj-staff", Role.AGENCY),
                ("admin", Role.ADMIN),
                ("hotline", Role.OPERATOR),
                ("citizen", Role.PUBLIC),
            )
        }
        session.commit()
    for account, agency in (("sjz-staff", "SJZ"), ("heb-staff", "HEB"), ("bj-staff", "BJ")):
        handling.add_handler(engine, account, agency, "t")
    settings = get_settings().model_copy(
        update={
            "var_dir": str(tmp_path),
            "complaints_query_attempts": 3,
            "complaints_per_client_hour": 2,
        }
    )
    return TestClient(create_app(engine, settings=settings)), keys


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(local_zone()).strftime("%Y-%m-%dT%H:%M")


def _hotline(client: TestClient, key: str, **changes: Any) -> Any:
    record = {
        "medium": "air",
        "text": "长安区这边化工厂晚上偷排废气，刺鼻的气味，窗户都不敢开",
        "longitude": SJZ[0],
        "latitude": SJZ[1],
        "observed_at": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)).isoformat(),
        "channel": "hotline",
        "external_ref": "CALL-0001",
        "contact": PHONE,
    } | changes
    return client.post("/api/v1/complaints/intake", json=[record], headers=_h(key))


def test_complaint_lifecycle(setup: tuple[TestClient, dict[str, str]], engine: Engine) -> None:
    client, keys = setup
    first = _hotline(client, keys["hotline"])
    assert first.status_code == 200, first.text
    hotline = first.json()[0]
    assert hotline["repeat"] is False and len(hotline["code"]) == 8
    again = _hotline(client, keys["hotline"])  # the operator's retry: nothing filed twice
    assert again.json()[0] | {"repeat": False} == hotline and again.json()[0]["repeat"] is True

    # The public form: a map click 300 m east, another wording, two hours later.
    page = client.post(
        "/complaints/new",
        data={
            "client_id": "c0ffee00c0ffee00",
            "medium": "air",
            "text": "附近工厂排放刺鼻废气，晚上气味特别大，化工味",
            "longitude": str(SJZ_EAST[0]),
            "latitude": str(SJZ_EAST[1]),
            "observed_at": _local(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)),
            "anonymous": "1",
        },
    )
    assert page.status_code == 201, page.text
    with engine.connect() as connection:
        rows = connection.execute(select(complaints).order_by(complaints.c.id)).all()
        event = connection.execute(select(complaint_events)).one()
    assert len(rows) == 2 and rows[1].event_id == rows[0].event_id == event.id
    assert rows[1].linked_to == rows[0].id and 250 < rows[1].link_distance_m < 350
    assert event.complaint_count == 2 and event.agency_code == "SJZ"
    assert event.region_code == "130100"
    assert PHONE not in (rows[0].contact_cipher or "") and rows[0].contact_cipher
    public_ticket = rows[1].ticket
    assert public_ticket in page.text

    # Only the handling agency's staff read the contact details.
    url = f"/api/v1/complaints/events/{event.id}"
    seen = client.get(url, headers=_h(keys["sjz-staff"])).json()
    assert seen["contacts_visible"] and seen["complaints"][0]["contact"] == PHONE
    for other in ("heb-staff", "bj-staff", "admin"):
        answer = client.get(url, headers=_h(keys[other])).json()
        assert answer["complaints"][0]["contact"] is None, other
        assert PHONE not in str(answer)
    for outsider in ("hotline", "citizen"):
        assert client.get(url, headers=_h(keys[outsider])).status_code == 403
    assert client.get(url).status_code == 401

    # Acceptance by another agency is refused; by the handling one recorded.
    step = f"/api/v1/complaints/events/{event.id}"
    assert client.post(f"{step}/accept", json={}, headers=_h(keys["bj-staff"])).status_code == 403
    assert client.post(f"{step}/accept", json={}, headers=_h(keys["sjz-staff"])).status_code == 200
    noon = _overdue_and_reply(client, keys, engine, event.id)
    _complainant(client, keys, engine, hotline, event.id)
    # Replied: the overdue alarm closes; with the windows to ask for 复查 and 复核 past
    # (30 days each, 第三十五条, 第三十六条) the sweep closes the event too.
    sweep_overdue_complaints(engine, noon + dt.timedelta(days=18))
    with engine.connect() as connection:
        status = connection.execute(
            select(alarms.c.status).where(alarms.c.kind == "complaint_overdue")
        ).scalar_one()
        closed = connection.execute(select(complaint_events.c.status)).scalar_one()
    assert status == "closed" and closed == "closed"


def _overdue_and_reply(
    client: TestClient, keys: dict[str, str], engine: Engine, event_id: int
) -> dt.datetime:
    with engine.connect() as connection:
        accepted = connection.execute(
            select(complaint_events.c.accepted_at).where(complaint_events.c.id == event_id)
        ).scalar_one()
    day = accepted.astimezone(local_zone()).date()
    due = day + dt.timedelta(days=60)  # 第三十四条, the day of acceptance not counted
    while due.weekday() >= 5:  # 民法典 第二百零三条 (weekends; no holiday list passed)
        due += dt.timedelta(days=1)
    noon = dt.datetime.combine(due, dt.time(12), local_zone())
    assert sweep_overdue_complaints(engine, noon) == []  # the last day: still in time
    opened = sweep_overdue_complaints(engine, noon + dt.timedelta(days=1))
    assert [event.action for event in opened] == ["opened"]
    sweep_overdue_complaints(engine, noon + dt.timedelta(days=17))
    with engine.connect() as connection:
        alarm = connection.execute(select(alarms).where(alarms.c.kind == "complaint_overdue")).one()
    assert alarm.condition_key == f"complaint_overdue:{event_id}:complete"
    latest = alarm.evidence["latest"]
    assert alarm.severity == "serious" and latest["supervising_agency"] == "HEB"
    assert latest["due"] == due.isoformat() and latest["days_over"] == 17
    assert alarm.region_code == "130100" and "第三十四条" in latest["citation"]
    below = queries.supervised_agencies(engine, "HEB")
    assert sorted(below) == ["HEB", "SJZ"]
    late = queries.list_events(engine, below, overdue_only=True, today=due + dt.timedelta(days=17))
    assert [item["id"] for item in late] == [event_id]
    assert queries.list_events(engine, below, overdue_only=True, today=due) == []
    supervised = client.get(
        "/api/v1/complaints/events?scope=supervised", headers=_h(keys["heb-staff"])
    ).json()
    assert [item["id"] for item in supervised] == [event_id]
    assert client.get("/api/v1/complaints/events", headers=_h(keys["heb-staff"])).json() == []

    reply = {
        "findings": "现场检查发现某化工企业RTO装置停运，已立案",
        "reply": "经查属实，已责令整改并立案查处。",
    }
    answer = client.post(
        f"/api/v1/complaints/events/{event_id}/reply", json=reply, headers=_h(keys["sjz-staff"])
    )
    assert answer.status_code == 200 and answer.json()["status"] == "replied"
    return noon


def _complainant(
    client: TestClient, keys: dict[str, str], engine: Engine, hotline: dict[str, Any], event_id: int
) -> None:
    ticket, code = hotline["ticket"], hotline["code"]
    found = client.get(f"/api/v1/complaints/self-query?ticket={ticket}&code={code}")
    assert found.status_code == 200
    body = found.json()
    assert body["status"] == "replied" and body["reply"].startswith("经查属实")
    assert body["linked_count"] == 2 and "contact" not in str(body).lower()
    assert PHONE not in found.text
    rating = {"ticket": ticket, "code": code, "satisfaction": "unsatisfied"}
    assert client.post("/api/v1/complaints/self-query/satisfaction", json=rating).status_code == 200
    objection = {"ticket": ticket, "code": code, "reason": "夜里仍然有刺鼻气味，整改没有落实"}
    assert client.post("/api/v1/complaints/self-query/objection", json=objection).status_code == 200
    decide = {"justified": True, "reason": "复查：夜间再次核查"}
    url = f"/api/v1/complaints/events/{event_id}/objection"
    assert client.post(url, json=decide, headers=_h(keys["sjz-staff"])).status_code == 403
    assert client.post(url, json=decide, headers=_h(keys["heb-staff"])).json()["status"] == (
        "reviewing"
    )
    review = {
        "findings": "夜间复查：RTO已恢复运行",
        "reply": "复查意见：整改已落实，维持原处理意见。",
    }
    done = client.post(
        f"/api/v1/complaints/events/{event_id}/reply", json=review, headers=_h(keys["heb-staff"])
    ).json()
    review_deadline = next(item for item in done["deadlines"] if item["rule"] == "review")
    assert review_deadline["done_on"] is not None and not review_deadline["overdue"]

    stats = client.get("/api/v1/complaints/statistics").json()
    assert stats["complaints"] == 2 and stats["events"] == 1
    assert stats["by_medium"] == {"air": 2} and stats["by_region"][0]["region_code"] == "130100"
    assert stats["satisfaction"] == {"unsatisfied": 1} and stats["density"]["cells"] == []
    assert PHONE not in str(stats)

    # The self-query: a wrong code is refused, and after 3 wrong ones even the right one.
    for _ in range(3):
        wrong = client.get(f"/api/v1/complaints/self-query?ticket={ticket}&code=AAAAAAAA")
        assert wrong.status_code == 404
    throttled = client.get(f"/api/v1/complaints/self-query?ticket={ticket}&code={code}")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "900"


def test_bad_input_is_refused_and_nothing_half_filed(
    setup: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    client, keys = setup
    batch = [
        {"medium": "air", "text": "烟囱冒黑烟很严重", "longitude": SJZ[0], "latitude": SJZ[1]},
        {"medium": "air", "text": "没有位置的举报内容", "longitude": 0.0, "latitude": 0.0},
        {"medium": "smell", "text": "类别不对的举报内容", "longitude": SJZ[0], "latitude": SJZ[1]},
        {"medium": "noise", "text": "短", "longitude": SJZ[0], "latitude": SJZ[1]},
    ]
    answer = client.post("/api/v1/complaints/intake", json=batch, headers=_h(keys["hotline"]))
    results = answer.json()
    assert "ticket" in results[0]
    assert results[1]["error"].startswith("longitude, latitude") and "China" in results[1]["error"]
    assert results[2]["error"].startswith("medium") and results[3]["error"].startswith("text")
    no_place = client.post(
        "/complaints/new", data={"client_id": "x1x1x1x1", "medium": "air", "text": "有异味有异味"}
    )
    assert no_place.status_code == 400 and "longitude" in no_place.text
    not_image = client.post(
        "/complaints/new",
        data={
            "client_id": "x2x2x2x2",
            "medium": "air",
            "text": "有异味有异味",
            "longitude": str(SJZ[0]),
            "latitude": str(SJZ[1]),
        },
        files={"photo": ("a.png", b"MZ\x90\x00 not a picture", "image/png")},
    )
    assert not_image.status_code == 400 and "a.png" in not_image.text
    form = {
        "medium": "noise",
        "text": "夜间施工噪声扰民",
        "longitude": str(SJZ[0]),
        "latitude": str(SJZ[1]),
    }
    codes = [
        client.post("/complaints/new", data={**form, "client_id": f"flood-{n:04d}"}).status_code
        for n in range(3)
    ]
    assert codes == [201, 201, 429]  # complaints_per_client_hour = 2
    with engine.connect() as connection:
        filed = connection.execute(select(complaints.c.medium)).scalars().all()
    assert sorted(filed) == ["air", "noise", "noise"]


def test_csv_intake_reports_bad_lines_and_is_idempotent(
    setup: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    header = "ref,medium,text,longitude,latitude,observed_at,address,contact\n"
    lines = [
        f"H-1,water,河里有一股臭味，水发黑,{SJZ[0]},{SJZ[1]},2026-11-30 21:10,长安区民心河,"
        "王五 13700000000\n",
        "H-2,water,排污口冒白沫,,38.1,2026-11-30 22:00,,\n",
        f"H-3,noise,凌晨两点工地还在打桩,{SJZ[0]},{SJZ[1]},2026-11-31 02:00,,\n",
        f"H-4,noise,KTV每天唱到半夜,{SJZ[0]},{SJZ[1]},2026-12-01T23:30+08:00,,\n",
    ]
    data = (header + "".join(lines)).encode()
    settings = get_settings()
    report = service.import_csv(engine, settings, data, "calls.csv", "t")
    assert len(report.filed) == 2 and report.repeated == 0
    assert report.errors == [
        "calls.csv line 3: missing longitude",
        "calls.csv line 4: observed_at: '2026-11-31 02:00' is no ISO 8601 time",
    ]
    again = service.import_csv(engine, settings, data, "calls.csv", "t")
    assert again.repeated == 2 and again.filed == []
    with pytest.raises(service.ComplaintError, match="not UTF-8"):
        service.import_csv(engine, settings, (header + lines[0]).encode("gb18030"), "gbk.csv", "t")
    with engine.connect() as connection:
        rows = connection.execute(select(complaints)).all()
    assert len(rows) == 2
    first = next(row for row in rows if row.external_ref == "H-1")
    # Taken as Beijing time: 21:10 CST is 13:10 UTC.
    assert first.observed_at == dt.datetime(2026, 11, 30, 13, 10, tzinfo=dt.UTC)


def test_a_case_from_an_event_counts_in_the_enterprise_evidence(
    setup: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    """The reply names the source; a penalty case opened from the event (supervision's
    ``POST /cases``) is recorded on the event; the enterprise's supervision evidence and
    risk score count the complaint event, with its id among the sources."""
    client, keys = setup
    with Session(engine) as session:
        found = Enterprise(
            uscc="91130100MA0CPL001K", name="某化工", longitude=SJZ[0], latitude=SJZ[1]
        )
        other = Enterprise(uscc="91130100MA0CPL002N", name="另一家", longitude=114.6, latitude=38.1)
        session.add_all([found, other])
        session.commit()
        found_id, other_id = found.id, other.id
    filed = _hotline(client, keys["hotline"]).json()[0]
    event_id = filed["event_id"]
    staff = _h(keys["sjz-staff"])
    assert client.post(f"/api/v1/complaints/events/{event_id}/accept", json={}, headers=staff)
    reply = {"findings": "某化工RTO停运", "reply": "经查属实，已立案。", "enterprise_id": found_id}
    client.post(f"/api/v1/complaints/events/{event_id}/reply", json=reply, headers=staff)
    case = {
        "uscc": "91130100MA0CPL002N",
        "title": "废气超标排放",
        "violation": "RTO停运",
        "discovered_on": dt.date.today().isoformat(),
        "source_complaint_event_id": event_id,
    }
    wrong = client.post("/api/v1/supervision/cases", json=case, headers=_h(keys["admin"]))
    assert wrong.status_code == 409 and "another enterprise" in wrong.json()["detail"]
    opened = client.post(
        "/api/v1/supervision/cases",
        json={**case, "uscc": "91130100MA0CPL001K"},
        headers=_h(keys["admin"]),
    )
    assert opened.status_code == 201, opened.text
    event = client.get(f"/api/v1/complaints/events/{event_id}", headers=staff).json()
    assert event["case_id"] == opened.json()["id"] and event["steps"][-1]["step"] == "case"
    now = dt.datetime.now(dt.UTC)
    gathered = evidence.gather(engine, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))
    mine = gathered[found_id].as_dict()
    assert mine["complaint_events"] == 1 and mine["complaints"] == 1
    assert mine["sources"]["complaint_events"] == [event_id]
    assert gathered[other_id].as_dict()["complaint_events"] == 0
    parts = {
        part["component"]: part
        for part in risk_score(evidence_values(mine), load_weights())["components"]
    }
    # Weight 10, cap 5 (data/risk_weights.csv): one event scales to 1/5.
    assert parts["complaint_events"]["scaled"] == 0.2


def test_transfer_extension_refusal_and_english_pages(
    setup: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    """转办 with its reason moves the event to the other agency (whose staff then read
    the contact, the first agency's no longer); 延期 adds days up to the rule's 30 in all
    and moves the due date; 不予受理 tells every complainant why. The agency's and the
    public's pages render in English too."""
    client, keys = setup
    event_id = _hotline(client, keys["hotline"]).json()[0]["event_id"]
    url = f"/api/v1/complaints/events/{event_id}"
    sjz, heb = _h(keys["sjz-staff"]), _h(keys["heb-staff"])
    no_reason = client.post(f"{url}/transfer", json={"to_agency": "HEB"}, headers=sjz)
    assert no_reason.status_code == 409 and "reason" in no_reason.json()["detail"]
    moved = client.post(
        f"{url}/transfer", json={"to_agency": "HEB", "reason": "跨县区，省厅督办"}, headers=sjz
    ).json()
    assert moved["agency_code"] == "HEB" and moved["steps"][-1]["to_agency_code"] == "HEB"
    assert client.get(url, headers=heb).json()["complaints"][0]["contact"] == PHONE
    assert client.get(url, headers=sjz).json()["complaints"][0]["contact"] is None
    assert client.post(f"{url}/accept", json={}, headers=sjz).status_code == 403
    accepted = client.post(f"{url}/accept", json={}, headers=heb).json()
    due = dt.date.fromisoformat(
        next(d for d in accepted["deadlines"] if d["rule"] == "complete")["due"]
    )
    extended = client.post(
        f"{url}/extend", json={"days": 20, "reason": "需要监测取证"}, headers=heb
    ).json()
    new_due = dt.date.fromisoformat(
        next(d for d in extended["deadlines"] if d["rule"] == "complete")["due"]
    )
    assert extended["extension_days"] == 20 and (new_due - due).days >= 20
    too_long = client.post(f"{url}/extend", json={"days": 11, "reason": "再延"}, headers=heb)
    assert too_long.status_code == 409 and "30 days of extension" in too_long.json()["detail"]

    other = _hotline(client, keys["hotline"], external_ref="CALL-0002", medium="radiation")
    other_id = other.json()[0]["event_id"]
    assert other_id != event_id  # another medium at the same place: another event
    refused = client.post(
        f"/api/v1/complaints/events/{other_id}/refuse",
        json={"reason": "属通信基站辐射，已转交通信管理部门"},
        headers=sjz,
    ).json()
    assert refused["status"] == "not_accepted" and refused["reply"].startswith("属通信基站")
    for path in ("/complaints/new?lang=en", "/complaints/statistics?lang=en"):
        page = client.get(path)
        assert page.status_code == 200 and "complaint" in page.text.lower()
        assert "举报类别" not in page.text
