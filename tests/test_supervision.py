"""Supervision end to end on both backends: an exceedance alarm → evidence and risk →
a double-random draw that picks the enterprise → a case from the alarm through its
steps → a penalty with a daily continuous penalty → a credit rating, objected, decided
and published → the public disclosure; with the audit trail and the roles (an
enterprise sees its own cases and draft rating only, the public only what is published,
never an inspector's name).

Expected figures are worked by hand from the cited rules: the demo permit's SO2 limit of
50 mg/m³ against an hourly 80 mg/m³ (超标倍数 (80 − 50) / 50 = 0.6); the risk weights of
``data/risk_weights.csv`` (exceedance 30 of 110 total weight, cap 100 h); 令第28号 第十七条
for penalty days; 办法 第五十七条 for the 90 days to decide; the bands of 附件1 and the
thresholds of 穗环〔2015〕210号 for the grade.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.alarms.tables import alarms
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.models import AuditEntry
from ecohub.supervision import cases, credit, evidence, service
from ecohub.supervision.draw import DrawRules
from ecohub.supervision.risk import load_weights
from ecohub.supervision.service import SupervisionError
from ecohub.timeseries.observations import Observation

warnings.filterwarnings("ignore", category=DeprecationWarning)
CST = dt.timezone(dt.timedelta(hours=8))
MIDNIGHT = dt.datetime(2024, 1, 15, tzinfo=CST)
HUDONG = "91310115MA1HDEM025"  # enterprise 2 of the demo registry, SO2 limit 50 mg/m³
JINGXI = "91110106MA00DEM01H"  # enterprise 1
STEPS = ("filed", "investigated", "notified")


@pytest.fixture
def store(engine: Engine, points: dict[str, int]) -> Engine:
    rows = [
        Observation(points["P0002"], "a21026", "hour", MIDNIGHT, 80.0, "N", 0, "t"),
        Observation(points["P0002"], "a00000", "hour", MIDNIGHT, 80.0, "N", 0, "t"),
    ]
    Pipeline(engine).process(rows, now=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    return engine


@pytest.fixture
def client(store: Engine) -> tuple[TestClient, dict[str, str]]:
    with Session(store) as session:
        keys = {
            role.value: issue_key(session, name=role.value, role=role, created_by="t")
            for role in (Role.AGENCY, Role.PUBLIC)
        }
        keys["hudong"] = issue_key(
            session, name="hudong", role=Role.ENTERPRISE, created_by="t", enterprise_id=2
        )
        keys["jingxi"] = issue_key(
            session, name="jingxi", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
        )
        session.commit()
    return TestClient(create_app(store)), keys


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_evidence_and_risk_from_an_exceedance(store: Engine) -> None:
    day = (MIDNIGHT.astimezone(dt.UTC), (MIDNIGHT + dt.timedelta(days=1)).astimezone(dt.UTC))
    with store.connect() as connection:
        alarm_id = connection.execute(
            select(alarms.c.id).where(alarms.c.kind == "source_exceedance")
        ).scalar_one()
    found = evidence.ranked(store, *day, load_weights())
    top = found[0]
    assert top["uscc"] == HUDONG
    assert top["exceedance_hours"] == 1.0
    assert top["exceedance_pollutants"] == ["a21026"]
    assert top["max_exceedance_multiple"] == pytest.approx(0.6)  # (80 − 50) / 50
    assert top["sources"]["alarms"]["source_exceedance"] == [alarm_id]
    # Series expected: the two that reported (P0002 SO2, flow) and the six other pollutants
    # the demo permit limits at 沪东's outlets (DA001: a34013, a21002, a24088 at P0002;
    # DW001: w01018, w21003, w21011 at P0003), silent, so wholly missing: 8 series of
    # 1,440 values a day (60 s), 2 received: 2 / 11,520; 2 valid hours of 8 × 24.
    assert top["transmission_rate"] == pytest.approx(2 / 11520)
    assert top["effective_rate"] == pytest.approx(2 / 192)
    assert top["silent_series"] == 6
    parts = {part["component"]: part for part in top["risk"]["components"]}
    # Weight 30 of 110, cap 100 h: 1 h scores 100 × 30 × 0.01 / 110 = 0.2727 points.
    assert parts["exceedance_hours"]["points"] == pytest.approx(0.27)
    # Multiple 0.6 of cap 2, weight 10: 100 × 10 × 0.3 / 110 = 2.727 points.
    assert parts["max_multiple"]["points"] == pytest.approx(2.73)
    # Shortfall below the 90 % target 0.9 − 2/11,520 of cap 0.5 → scaled 1: 100 × 10 / 110.
    assert parts["transmission_gap"]["points"] == pytest.approx(9.09)
    assert top["risk"]["score"] == pytest.approx(12.09)  # 100 × 13.3 / 110
    # An enterprise whose monitors sent nothing is not clean: 京西's three limited
    # pollutants at P0001 are expected, rate 0, shortfall 0.9 → scaled 1: 9.09 points.
    others = next(item for item in found if item["uscc"] == JINGXI)
    assert others["transmission_rate"] == 0 and others["silent_series"] == 3
    assert others["risk"]["score"] == pytest.approx(9.09)


def _directory(store: Engine) -> None:
    service.set_object(store, HUDONG, "key", "t")
    service.set_object(store, JINGXI, "general", "t")
    for code, region in (
        ("SH-01", "310000"),
        ("SH-02", "310000"),
        ("SH-03", "310000"),
        ("BJ-01", "110000"),
        ("BJ-02", "110000"),
    ):
        service.set_inspector(store, code, f"检查员{code}", region, "t", ["大气"])
    service.declare_conflict(store, "SH-01", HUDONG, "曾任该企业环保主管", "t")


def _inspected(store: Engine, uscc: str, team: list[str], at: dt.datetime) -> None:
    from ecohub.supervision import inspections

    record = inspections.InspectionRecord(
        client_id=f"{uscc}-{at.isoformat()}",
        uscc=uscc,
        inspectors=tuple(team),
        inspected_at=at,
        checks=(inspections.Check("排污许可证", "ok"),),
        findings="",
    )
    inspections.submit(store, record, "agency:t")


def test_draw_is_stored_published_and_reproducible(store: Engine) -> None:
    _directory(store)
    rules = DrawRules(rates={"key": 1.0, "general": 1.0}, team_size=2)
    with pytest.raises(SupervisionError, match="seed is made by the server"):
        service.run_draw(store, "选定的种子", rules, "agency:t", seed=20240115)
    made = service.run_draw(store, "2024年第一季度", rules, "agency:t")
    assert made["number"] == 1
    picks = {pick["uscc"]: pick["inspectors"] for pick in made["picks"]}
    # SH-01 declared a conflict, and each region has its own inspectors only: the team of
    # 沪东 is SH-02 and SH-03, whatever the seed; 京西's is BJ-01 and BJ-02.
    assert sorted(picks[HUDONG]) == ["SH-02", "SH-03"]
    assert sorted(picks[JINGXI]) == ["BJ-01", "BJ-02"]
    # The seed is the first 63 bits of SHA-256(entropy ‖ inputs digest), both recorded.
    source = made["seed_source"]
    word = hashlib.sha256(bytes.fromhex(source["entropy"]) + source["inputs_digest"].encode())
    assert made["seed"] == int.from_bytes(word.digest()[:8], "big") >> 1
    assert source["inputs_digest"] == made["inputs_digest"]
    assert service.get_draw(store, made["id"], public=True) is None  # not yet published
    service.publish_draw(store, made["id"], "agency:t")
    published = service.get_draw(store, made["id"], public=True)
    assert published is not None and service.verify_draw(published)
    # The public sees the conflicts as their digest, never the (inspector, enterprise) pair.
    assert "conflicts" not in published["inputs"] and "drawn_by" not in published
    pairs = json.dumps([["SH-01", HUDONG]], separators=(",", ":"))
    assert published["inputs"]["conflicts_digest"] == hashlib.sha256(pairs.encode()).hexdigest()
    agency_copy = service.get_draw(store, made["id"], public=False)
    assert agency_copy is not None and agency_copy["inputs"]["conflicts"] == [["SH-01", HUDONG]]
    assert service.verify_draw(agency_copy)
    assert not service.verify_draw({**published, "seed": published["seed"] + 1})
    assert not service.verify_draw({**agency_copy, "seed": agency_copy["seed"] + 1})
    # A second draw set aside before publication stays listed, with its number and reason.
    second = service.run_draw(store, "2024年第二季度", rules, "agency:t")
    service.void_draw(store, second["id"], "对象名录未更新", "agency:t")
    with pytest.raises(SupervisionError, match="voided"):
        service.publish_draw(store, second["id"], "agency:t")
    listed = service.list_draws(store, public=True)
    assert [(d["number"], d["void_reason"]) for d in listed] == [(2, "对象名录未更新"), (1, None)]
    # The previous team is the latest inspection's, not the latest draw's: only after
    # SH-02 and SH-03 inspected 沪东 (and BJ-01, BJ-02 京西) are they excluded.
    third = service.run_draw(store, "2024年第三季度", rules, "agency:t")
    assert third["number"] == 3 and len(third["picks"]) == 2
    _inspected(store, HUDONG, ["SH-02", "SH-03"], MIDNIGHT + dt.timedelta(days=30))
    _inspected(store, JINGXI, ["BJ-01", "BJ-02"], MIDNIGHT + dt.timedelta(days=30))
    again = service.run_draw(store, "2024年第四季度", rules, "agency:t")
    reasons = dict(again["unstaffed"])
    assert sorted(reasons) == sorted([HUDONG, JINGXI]) and not again["picks"]
    assert "1 conflict (SH-01)" in reasons[HUDONG] and "previous-team" in reasons[HUDONG]
    # Two more inspectors in Beijing staff 京西 again, without its previous team.
    for code in ("BJ-03", "BJ-04"):
        service.set_inspector(store, code, f"检查员{code}", "110000", "t", ["大气"])
    fifth = service.run_draw(store, "2025年第一季度", rules, "agency:t")
    assert [(p["uscc"], sorted(p["inspectors"])) for p in fifth["picks"]] == [
        (JINGXI, ["BJ-03", "BJ-04"])
    ]
    with pytest.raises(SupervisionError, match="no enterprise"):
        service.set_object(store, "91000000000000000X", "key", "t")


def test_a_city_inspector_is_drawn_for_a_district_enterprise_by_prefix(store: Engine) -> None:
    service.set_object(store, HUDONG, "key", "t", region="310115")  # 浦东新区
    service.set_inspector(store, "SH-C1", "市局甲", "310100", "t")  # 上海市市辖区
    service.set_inspector(store, "SH-C2", "市局乙", "310000", "t")  # 上海市
    service.set_inspector(store, "JS-01", "江苏", "320100", "t")
    exact = service.run_draw(store, "exact", DrawRules({"key": 1.0}, team_size=2), "agency:t")
    assert exact["picks"] == [] and "0 eligible inspectors of region 310115" in str(
        exact["unstaffed"]
    )
    rules = DrawRules({"key": 1.0}, team_size=2, region_match="prefix")
    prefix = service.run_draw(store, "prefix", rules, "agency:t")
    assert [sorted(p["inspectors"]) for p in prefix["picks"]] == [["SH-C1", "SH-C2"]]
    assert prefix["inputs"]["rules"]["region_match"] == "prefix"
    service.publish_draw(store, prefix["id"], "agency:t")
    shown = service.get_draw(store, prefix["id"], public=True)
    assert shown is not None and service.verify_draw(shown)


def _case_through_decision(store: Engine) -> int:
    with store.connect() as connection:
        alarm_id = connection.execute(select(alarms.c.id)).scalar_one()
    case_id = cases.open_case(
        store,
        HUDONG,
        "二氧化硫超标排放",
        "SO2 小时均值 80 mg/m³，许可限值 50",
        dt.date(2024, 2, 20),
        "agency:t",
        source_alarm_id=alarm_id,
    )
    for step, on in zip(
        STEPS, (dt.date(2024, 3, 1), dt.date(2024, 3, 20), dt.date(2024, 4, 1)), strict=True
    ):
        cases.record_step(store, case_id, step, on, "agency:t")
    return case_id


def test_case_deadlines_penalty_and_daily_penalty(store: Engine) -> None:
    case_id = _case_through_decision(store)
    # Filed 2024-03-01: decide within 90 days (办法 第五十七条), by 2024-05-30.
    found = cases.get_case(store, case_id, today=dt.date(2024, 5, 30))
    assert found is not None
    decide = next(d for d in found["deadlines"] if d["rule"] == "decide_case")
    assert decide["due"] == "2024-05-30" and not decide["overdue"]
    late = cases.get_case(store, case_id, today=dt.date(2024, 5, 31))
    assert late is not None
    assert [d["rule"] for d in late["deadlines"] if d["overdue"]] == ["decide_case"]
    assert [
        c["id"] for c in cases.list_cases(store, today=dt.date(2024, 5, 31), overdue_only=True)
    ] == [case_id]
    with pytest.raises(SupervisionError, match="penalty"):
        cases.record_step(store, case_id, "decided", dt.date(2024, 5, 20), "agency:t")
    with pytest.raises(SupervisionError, match="next step is decided"):
        cases.record_step(store, case_id, "closed", dt.date(2024, 5, 20), "agency:t")
    cases.record_step(
        store,
        case_id,
        "decided",
        dt.date(2024, 5, 20),
        "agency:t",
        penalty_yuan=Decimal("100000"),
        legal_basis="《大气污染防治法》第九十九条第（二）项",
    )
    # Order to correct served 2024-03-01; re-inspected 2024-03-11 still exceeding: the days
    # run from the day after service to the re-inspection (令第28号 第十七条): 10 days.
    # An exceedance is a kind of 按日连续处罚办法 第五条: the daily penalty applies.
    cases.order_correction(
        store, case_id, dt.date(2024, 3, 1), "agency:t", violation_kind="exceeds_standard_or_total"
    )
    with pytest.raises(SupervisionError, match="after the order"):
        cases.reinspect(store, case_id, dt.date(2024, 3, 1), True, "agency:t")
    cases.reinspect(store, case_id, dt.date(2024, 3, 11), True, "agency:t", "仍超标")
    found = cases.get_case(store, case_id, today=dt.date(2024, 5, 31))
    assert found is not None
    assert found["daily_penalty_days"] == 10
    assert found["daily_penalty_yuan"] == Decimal("1000000")
    # Decided in time; the decision, due to be served within 7 working days (行政处罚法
    # 第六十一条: 2024-05-21 … 05-24, 05-27 … 05-29), is the agency's duty, overdue unserved.
    assert [d["rule"] for d in found["deadlines"] if d["overdue"]] == ["serve_decision"]
    serve = next(d for d in found["deadlines"] if d["rule"] == "serve_decision")
    assert serve["due"] == "2024-05-29"
    with store.connect() as connection:
        trail = connection.execute(
            select(AuditEntry.action, AuditEntry.entity).where(
                AuditEntry.entity_key == str(case_id)
            )
        ).all()
    assert ("create", "case") in trail and len(trail) == 1 + len(STEPS) + 2


def test_credit_rating_review_and_publication(store: Engine) -> None:
    good = {"general_solid_waste": "1", "hazardous_waste": "1", "noise": "1", "siting_ecology": "1"}
    rated = credit.rate(store, HUDONG, 2024, "agency:t", good)
    document = rated["explanation"]
    measured = next(i for i in document["indicators"] if i["key"] == "air_water_compliance")
    # Outlet DA001: of its permit-limited pollutants only SO2 reported, 1 valid hour, 1
    # exceedance hour (the flow hour does not count): compliance 0 % → 0 分 (附件1 指标1).
    assert measured["evidence"]["measured_hours"] == 1
    assert measured["result"] == 0
    # Scores: band 1 floors 80 (weights 5+5+4+2 = 16), band 3 floor 0 (weight 15):
    # 80 × 16 / 31 = 41.29 → below 60: red (穗环〔2015〕210号).
    assert document["score"] == "41.29" and rated["grade"] == "red"
    all_good = credit.rate(store, HUDONG, 2024, "agency:t", {**good, "air_water_compliance": "1"})
    assert all_good["grade"] == "blue"  # 80 of 100: 良好 (80-100), green needs 100
    direct = credit.rate(store, HUDONG, 2024, "agency:t", findings=["hidden_discharge"])
    assert direct["grade"] == "red" and direct["explanation"]["decided_by"] == ["hidden_discharge"]
    with pytest.raises(SupervisionError, match="indicator results needed"):
        credit.rate(store, JINGXI, 2024, "agency:t")
    credit.object_to(store, HUDONG, 2024, "暗管已于2023年拆除，有验收记录", "enterprise:hudong")
    with pytest.raises(SupervisionError, match="expected decided"):
        credit.publish(store, HUDONG, 2024, "agency:t")
    credit.decide(store, HUDONG, 2024, "yellow", "复核：暗管已拆除，改为警示", "agency:t")
    with pytest.raises(SupervisionError, match="not allowed"):
        credit.rate(store, HUDONG, 2024, "agency:t", good)
    credit.publish(store, HUDONG, 2024, "agency:t")
    public = credit.published_ratings(store, 2024)
    assert [(r["uscc"], r["grade"], r["blacklisted"]) for r in public] == [
        (HUDONG, "yellow", False)
    ]


def test_roles_and_disclosure_over_the_api(client: tuple[TestClient, dict[str, str]]) -> None:
    api, keys = client
    agency, public = _h(keys["agency"]), _h(keys["public"])
    for code, region in (("SH-02", "310000"), ("SH-03", "310000")):
        made = api.put(
            "/api/v1/supervision/inspectors",
            headers=agency,
            json={"code": code, "name": f"张{code}", "region": region},
        )
        assert made.status_code == 200
    assert (
        api.put(
            "/api/v1/supervision/objects", headers=agency, json={"uscc": HUDONG, "category": "key"}
        ).status_code
        == 200
    )
    # Only the agency manages the directories; the public and enterprises are refused.
    for key in (public, _h(keys["hudong"])):
        assert api.get("/api/v1/supervision/inspectors", headers=key).status_code == 403
    assert api.get("/api/v1/supervision/inspectors").status_code == 401
    bad = api.post(
        "/api/v1/supervision/draws", headers=agency, json={"title": "x", "rates": {"key": 1.5}}
    )
    assert bad.status_code == 422
    drawn = api.post(
        "/api/v1/supervision/draws",
        headers=agency,
        json={"title": "季度抽查", "rates": {"key": 1.0}, "seed": 99},
    )
    assert drawn.status_code == 422 and "made by the server" in drawn.json()["detail"]
    drawn = api.post(
        "/api/v1/supervision/draws",
        headers=agency,
        json={"title": "季度抽查", "rates": {"key": 1.0}},
    )
    assert drawn.status_code == 201, drawn.text
    draw_id = drawn.json()["id"]
    assert api.get(f"/api/v1/supervision/public/draws/{draw_id}").status_code == 404
    api.post(f"/api/v1/supervision/draws/{draw_id}/publish", headers=agency)
    shown = api.get(f"/api/v1/supervision/public/draws/{draw_id}")
    assert shown.status_code == 200 and shown.json()["reproduced"] is True
    assert "张SH" not in shown.text and "drawn_by" not in shown.json()
    # A case: the agency opens it; 沪东 sees it, 京西 and the public do not.
    opened = api.post(
        "/api/v1/supervision/cases",
        headers=agency,
        json={
            "uscc": HUDONG,
            "title": "超标排放",
            "violation": "SO2 超标",
            "discovered_on": "2024-02-20",
        },
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    assert (
        api.get(f"/api/v1/supervision/cases/{case_id}", headers=_h(keys["hudong"])).status_code
        == 200
    )
    assert (
        api.get(f"/api/v1/supervision/cases/{case_id}", headers=_h(keys["jingxi"])).status_code
        == 404
    )
    assert api.get("/api/v1/supervision/cases", headers=_h(keys["jingxi"])).json() == []
    assert api.get(f"/api/v1/supervision/cases/{case_id}", headers=public).status_code == 403
    refused = api.post(
        f"/api/v1/supervision/cases/{case_id}/steps",
        headers=_h(keys["hudong"]),
        json={"step": "filed", "on": "2024-03-01"},
    )
    assert refused.status_code == 403
    early = api.post(f"/api/v1/supervision/cases/{case_id}/publish", headers=agency)
    assert early.status_code == 409 and "not decided" in early.json()["detail"]
    for step, on in (
        ("filed", "2024-03-01"),
        ("investigated", "2024-03-20"),
        ("notified", "2024-04-01"),
    ):
        done = api.post(
            f"/api/v1/supervision/cases/{case_id}/steps",
            headers=agency,
            json={"step": step, "on": on},
        )
        assert done.status_code == 200, done.text
    api.post(
        f"/api/v1/supervision/cases/{case_id}/steps",
        headers=agency,
        json={
            "step": "decided",
            "on": "2024-05-20",
            "penalty_yuan": "100000",
            "legal_basis": "大气污染防治法 第九十九条",
        },
    )
    assert api.get("/api/v1/supervision/public/penalties").json() == []
    api.post(f"/api/v1/supervision/cases/{case_id}/publish", headers=agency)
    penalties = api.get("/api/v1/supervision/public/penalties").json()
    assert [(p["uscc"], p["penalty_yuan"], p["decided_on"]) for p in penalties] == [
        (HUDONG, "100000.00", "2024-05-20")
    ]
    # Credit: a draft is the enterprise's own until published.
    rated = api.post(f"/api/v1/supervision/credit/{HUDONG}/2024", headers=agency)
    assert rated.status_code == 422 and "indicator results needed" in rated.json()["detail"]


def test_pages(client: tuple[TestClient, dict[str, str]], store: Engine) -> None:
    api, _keys = client
    shown = api.get("/supervision", headers={"accept": "text/html"})
    assert shown.status_code == 200 and "行政处罚决定公开" in shown.text
    english = api.get("/supervision?lang=en")
    assert "Published penalty decisions" in english.text
    anonymous = api.get("/agency/supervision", follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]


def test_commands_draw_verify_and_cases(
    store: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ecohub.cli.main import app
    from ecohub.config import get_settings

    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["supervision", *args])
        assert result.exit_code == 0, result.output
        return result.output

    run("object", HUDONG, "key")
    run("inspector", "SH-02", "王五", "310000")
    run("inspector", "SH-03", "赵六", "310000")
    drawn = run("draw", "季度抽查", "--rate", "key=1", "--publish")
    assert "draw no. 1" in drawn
    assert "SH-02, SH-03" in drawn.replace("SH-03, SH-02", "SH-02, SH-03")
    bad = runner.invoke(app, ["supervision", "draw", "x", "--rate", "key=lots"])
    assert bad.exit_code != 0 and "CATEGORY=SHARE" in bad.output
    published = service.get_draw(store, 1, public=True)
    assert published is not None
    path = tmp_path / "draw.json"
    path.write_text(json.dumps(published, default=str, ensure_ascii=False), "utf-8")
    assert "reproduced" in run("verify", str(path))
    published["picks"][0]["inspectors"] = ["SH-01", "SH-02"]
    path.write_text(json.dumps(published, default=str, ensure_ascii=False), "utf-8")
    forged = runner.invoke(app, ["supervision", "verify", str(path)])
    assert forged.exit_code == 1 and "NOT" in forged.output
    assert "case 1 opened" in run("case", HUDONG, "超标", "SO2 超标", "2024-02-20")
    refused = runner.invoke(app, ["supervision", "step", "1", "decided", "2024-03-01"])
    assert refused.exit_code == 2 and "next step is filed" in refused.output
    assert '"step": "filed"' in run("step", "1", "filed", "2024-03-01")
    ranked = run("risk", "2024-01-15", "2024-01-16")
    assert HUDONG in ranked.replace("\n", "").replace("│", "").replace(" ", "") and "12.1" in ranked
    get_settings.cache_clear()


def test_evidence_counts_cases_by_their_local_dates(store: Engine) -> None:
    case_id = _case_through_decision(store)  # discovered 2024-02-20, filed 03-01, …
    cases.record_step(
        store,
        case_id,
        "decided",
        dt.date(2024, 4, 10),
        "agency:t",
        penalty_yuan=Decimal("50000"),
        legal_basis="大气污染防治法 第九十九条",
    )
    cases.order_correction(store, case_id, dt.date(2024, 4, 12), "agency:t")
    cases.reinspect(store, case_id, dt.date(2024, 4, 20), True, "agency:t")

    def day(first: dt.date, last: dt.date) -> dict[str, Any]:
        start = dt.datetime.combine(first, dt.time(), CST)
        end = dt.datetime.combine(last, dt.time(), CST)
        return evidence.gather(store, start, end)[2].as_dict()

    # The local day 2024-04-10 holds the decision; the day before holds nothing.
    assert day(dt.date(2024, 4, 10), dt.date(2024, 4, 11))["penalties"] == 1
    assert day(dt.date(2024, 4, 9), dt.date(2024, 4, 10))["penalties"] == 0
    spring = day(dt.date(2024, 2, 1), dt.date(2024, 5, 1))
    assert (spring["cases_opened"], spring["penalties"], spring["penalty_yuan"]) == (
        1,
        1,
        "50000.00",
    )
    assert spring["overdue_rectifications"] == 1 and spring["sources"]["cases"] == [case_id]


def test_overdue_steps_raise_escalate_and_close_alarms(store: Engine) -> None:
    from ecohub.alarms.lifecycle import get_alarm, list_alarms
    from ecohub.supervision.overdue import sweep_overdue_cases

    case_id = _case_through_decision(store)  # filed 2024-03-01: decide by 2024-05-30
    noon = dt.time(12, tzinfo=CST)
    assert sweep_overdue_cases(store, dt.datetime.combine(dt.date(2024, 5, 30), noon)) == []
    opened = sweep_overdue_cases(store, dt.datetime.combine(dt.date(2024, 5, 31), noon))
    assert [event.action for event in opened] == ["opened"]
    alarm = get_alarm(store, opened[0].alarm_id)
    assert alarm is not None and alarm["kind"] == "case_overdue"
    assert alarm["enterprise_id"] == 2 and alarm["severity"] == "warning"
    assert alarm["evidence"]["peak"]["rule"] == "decide_case"
    assert alarm["evidence"]["peak"]["due"] == "2024-05-30"
    # Still undecided 31 days after the deadline: serious, for the level above.
    later = sweep_overdue_cases(store, dt.datetime.combine(dt.date(2024, 6, 30), noon))
    assert [event.action for event in later] == ["escalated"]
    assert get_alarm(store, opened[0].alarm_id)["severity"] == "serious"  # type: ignore[index]
    cases.record_step(
        store,
        case_id,
        "decided",
        dt.date(2024, 7, 1),
        "agency:t",
        penalty_yuan=Decimal("100000"),
        legal_basis="大气污染防治法 第九十九条",
    )
    closed = sweep_overdue_cases(store, dt.datetime.combine(dt.date(2024, 7, 2), noon))
    assert [event.action for event in closed] == ["closed"]
    assert list_alarms(store, status="unclosed", kind="case_overdue") == []


def test_credit_repair_after_rectification(
    client: tuple[TestClient, dict[str, str]], store: Engine
) -> None:
    from ecohub.supervision import repair

    api, keys = client
    hudong, agency = _h(keys["hudong"]), _h(keys["agency"])
    year = dt.date.today().year
    credit.rate(store, HUDONG, year, "agency:t", findings=["hidden_discharge"])
    credit.object_to(store, HUDONG, year, "旁路已拆除", "enterprise:hudong")  # answered
    credit.decide(store, HUDONG, year, "red", "私设旁路", "agency:t")
    url = f"/api/v1/supervision/credit/{HUDONG}/{year}"
    early = api.post(f"{url}/repair", headers=hudong, json={"text": "已拆除旁路"})
    assert early.status_code == 409 and "not published" in early.json()["detail"]
    credit.publish(store, HUDONG, year, "agency:t")
    # Rectification comes first: no re-inspection has found the violation corrected.
    missing = api.post(f"{url}/repair", headers=hudong, json={"text": "已拆除旁路"})
    assert missing.status_code == 409 and "rectification comes first" in missing.json()["detail"]
    case_id = cases.open_case(store, HUDONG, "私设旁路", "旁路排放", dt.date.today(), "agency:t")
    cases.order_correction(store, case_id, dt.date.today(), "agency:t")
    cases.reinspect(store, case_id, dt.date.today() + dt.timedelta(days=1), False, "agency:t")
    assert api.post(f"{url}/repair", headers=agency, json={"text": "x"}).status_code == 403
    asked = api.post(f"{url}/repair", headers=hudong, json={"text": "已拆除旁路，见复查记录"})
    assert asked.status_code == 201, asked.text
    assert asked.json()["evidence"][0]["case_id"] == case_id
    assert api.post(f"{url}/repair", headers=hudong, json={"text": "again"}).status_code == 409
    refused = api.post(f"{url}/repair/decision", headers=hudong, json={"grant": True, "text": "x"})
    assert refused.status_code == 403
    granted = api.post(
        f"{url}/repair/decision",
        headers=agency,
        json={"grant": True, "text": "现场复查确认整改到位"},
    )
    assert granted.status_code == 200, granted.text
    # One level up (粤环函〔2015〕947号 as Guangzhou applies it): red → yellow, in effect
    # when the 7-day public notice ends; until then the published grade stands.
    assert granted.json()["to_grade"] == "yellow"
    public = api.get("/api/v1/supervision/public/credit").json()
    assert [(r["uscc"], r["grade"], r["blacklisted"]) for r in public] == [(HUDONG, "red", True)]
    after = credit.published_ratings(store, now=dt.datetime.now(dt.UTC) + dt.timedelta(days=8))
    assert [(r["uscc"], r["grade"], r["blacklisted"]) for r in after] == [(HUDONG, "yellow", False)]
    rating = credit.get_rating(store, HUDONG, year)
    assert rating is not None and rating["explanation"]["repairs"][0]["from"] == "red"
    # Past the window of 183 days after publication a request is refused.
    late = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    with pytest.raises(SupervisionError, match="window closed"):
        repair.request_repair(store, HUDONG, year, "再次申请", "enterprise:hudong", now=late)
    assert repair.repaired_grade("yellow", repair.repair_rules()) == "blue"
    assert repair.repaired_grade("blue", repair.repair_rules()) == "blue"  # green is earned


def test_alarm_to_inspection_to_case_to_penalty_to_rectification_to_grade(store: Engine) -> None:
    """The whole chain on one enterprise, each step linked to the one before, audited."""
    from ecohub.supervision import inspections

    with store.connect() as connection:
        alarm_id = connection.execute(select(alarms.c.id)).scalar_one()  # 沪东's SO2 hour
    service.set_inspector(store, "SH-02", "检查员SH-02", "310000", "t")
    record = inspections.InspectionRecord(
        client_id="chain-0001",
        uscc=HUDONG,
        inspectors=("SH-02",),
        inspected_at=dt.datetime(2024, 1, 16, 10, tzinfo=CST),
        checks=(inspections.Check("污染防治设施正常运行", "problem", "RTO 停运"),),
        findings="RTO焚烧炉停运，二氧化硫超标。",
        latitude=31.27,
        longitude=121.71,
    )
    inspected, _new = inspections.submit(store, record, "user:SH-02")
    with pytest.raises(SupervisionError, match="not one of"):
        cases.open_case(
            store,
            JINGXI,
            "x",
            "y",
            dt.date(2024, 1, 16),
            "agency:t",
            source_inspection_id=inspected["id"],
        )
    case_id = cases.open_case(
        store,
        HUDONG,
        "二氧化硫超标排放",
        inspected["findings"],
        dt.date(2024, 1, 16),
        "agency:t",
        source_alarm_id=alarm_id,
        source_inspection_id=inspected["id"],
    )
    for step, on in (
        ("filed", dt.date(2024, 1, 20)),
        ("investigated", dt.date(2024, 2, 1)),
        ("notified", dt.date(2024, 2, 5)),
    ):
        cases.record_step(store, case_id, step, on, "agency:t")
    cases.record_step(
        store,
        case_id,
        "decided",
        dt.date(2024, 2, 20),
        "agency:t",
        penalty_yuan=Decimal("200000"),
        legal_basis="大气污染防治法 第九十九条",
    )
    cases.order_correction(store, case_id, dt.date(2024, 2, 21), "agency:t")
    cases.reinspect(store, case_id, dt.date(2024, 3, 1), False, "agency:t", "整改到位")
    found = cases.get_case(store, case_id, today=dt.date(2024, 3, 2))
    assert found is not None
    assert (found["source_alarm_id"], found["source_inspection_id"]) == (alarm_id, inspected["id"])
    assert found["daily_penalty_days"] == 0  # corrected at the first re-inspection
    rated = credit.rate(
        store,
        HUDONG,
        2024,
        "agency:t",
        {"general_solid_waste": "1", "hazardous_waste": "1", "noise": "1", "siting_ecology": "1"},
    )
    assert rated["grade"] == "red"  # indicator 1 at 50 % compliance (see above): 41.29
    with store.connect() as connection:
        trail = {
            (entity, action)
            for entity, action in connection.execute(
                select(AuditEntry.entity, AuditEntry.action).where(
                    AuditEntry.entity.in_(
                        ["inspection", "case", "case_reinspection", "credit_rating"]
                    )
                )
            ).all()
        }
    assert trail == {
        ("inspection", "create"),
        ("case", "create"),
        ("case", "update"),
        ("case_reinspection", "create"),
        ("credit_rating", "rate"),
    }
