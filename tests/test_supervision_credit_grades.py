"""Credit grades as published: names from the grade itself after the agency changes it,
the review window before publication, a granted repair in effect only after its public
notice, and input errors that name their field (issue 27, review findings 1, 4, 13, 15).

Names: 《企业环境信用评价办法（试行）》(环发〔2013〕150号) 四个等级 — 环保警示企业（黄牌）,
环保不良企业（红牌）. Review window: ``data/credit_review.csv`` (15 days, a local choice).
Repair: ``data/credit_repair.csv`` (粤环函〔2015〕947号; 7-day 公示 before a repair is final).
"""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.clock import utcnow
from ecohub.supervision import cases, credit, repair
from ecohub.supervision import rules as r
from ecohub.supervision.service import SupervisionError

HUDONG = "91310115MA1HDEM025"  # enterprise 2 of the demo registry
# Every indicator at 70: the weighted mean is 70 → 警示 (60-79, 穗环〔2015〕210号).
YELLOW = dict.fromkeys(r.credit_rules().indicators, 70)


@pytest.fixture
def store(engine: Engine, points: dict[str, int]) -> Engine:
    return engine


def test_a_changed_grade_is_published_under_its_own_name(store: Engine) -> None:
    rated = credit.rate(store, HUDONG, 2024, "agency:t", YELLOW)
    assert rated["grade"] == "yellow"
    credit.object_to(store, HUDONG, 2024, "数据有误", "enterprise:hudong")
    credit.decide(store, HUDONG, 2024, "red", "复核发现私设旁路", "agency:t")
    credit.publish(store, HUDONG, 2024, "agency:t")
    [public] = credit.published_ratings(store, 2024)
    assert (public["grade"], public["blacklisted"]) == ("red", True)
    assert public["name_zh"] == "环保不良企业（红牌）"
    assert public["name_en"] == "Environmentally poor enterprise (red)"
    assert public["text"] == "复核决定: 复核发现私设旁路"
    latest = credit.latest_published(store, HUDONG)
    assert latest is not None and latest["name_zh"] == "环保不良企业（红牌）"
    # The stored explanation follows the change and keeps the computed grade.
    stored = credit.get_rating(store, HUDONG, 2024)
    assert stored is not None
    explanation = stored["explanation"]
    assert (explanation["grade"], explanation["name_zh"]) == ("red", "环保不良企业（红牌）")
    assert explanation["computed"]["name_zh"] == "环保警示企业（黄牌）"
    assert explanation["changes"][0]["from"] == "yellow"


def test_the_review_window_holds_publication(store: Engine) -> None:
    rated = credit.rate(store, HUDONG, 2024, "agency:t", YELLOW)
    credit.decide(store, HUDONG, 2024, "yellow", "维持初评", "agency:t")
    made = rated["computed_at"]
    assert credit.review_rules().review_days == 15
    assert rated["review_closes_at"] == made + dt.timedelta(days=15)
    late = made + dt.timedelta(days=14, hours=23)
    with pytest.raises(SupervisionError, match=r"review window .* open until"):
        credit.publish(store, HUDONG, 2024, "agency:t", now=late)
    published = credit.publish(store, HUDONG, 2024, "agency:t", now=made + dt.timedelta(days=15))
    assert published["status"] == "published"


def test_an_answered_draft_may_be_published_at_once(store: Engine) -> None:
    credit.rate(store, HUDONG, 2024, "agency:t", YELLOW)
    credit.object_to(store, HUDONG, 2024, "异议", "enterprise:hudong")
    credit.decide(store, HUDONG, 2024, "yellow", "异议不成立", "agency:t")
    assert credit.publish(store, HUDONG, 2024, "agency:t")["status"] == "published"


def test_a_granted_repair_waits_for_its_notice(store: Engine) -> None:
    year = utcnow().year
    credit.rate(store, HUDONG, year, "agency:t", findings=["hidden_discharge"])
    credit.object_to(store, HUDONG, year, "异议", "enterprise:hudong")
    credit.decide(store, HUDONG, year, "red", "私设旁路", "agency:t")
    credit.publish(store, HUDONG, year, "agency:t")
    today = utcnow().date()
    case_id = cases.open_case(store, HUDONG, "私设旁路", "旁路排放", today, "agency:t")
    cases.order_correction(store, case_id, today, "agency:t")
    cases.reinspect(store, case_id, today + dt.timedelta(days=1), False, "agency:t")
    repair.request_repair(store, HUDONG, year, "已拆除旁路", "enterprise:hudong")
    granted_at = utcnow()
    granted = repair.decide_repair(
        store, HUDONG, year, True, "整改到位", "agency:t", now=granted_at
    )
    assert granted["to_grade"] == "yellow"
    assert granted["effective_at"] == granted_at + dt.timedelta(days=7)
    during = credit.published_ratings(store, year, now=granted_at + dt.timedelta(days=6))
    assert (during[0]["grade"], during[0]["blacklisted"]) == ("red", True)
    assert during[0]["repair_pending"]["to"] == "yellow"
    with pytest.raises(SupervisionError, match="public notice"):
        repair.request_repair(store, HUDONG, year, "再次申请", "enterprise:hudong")
    after = credit.published_ratings(store, year, now=granted_at + dt.timedelta(days=7))
    assert (after[0]["grade"], after[0]["blacklisted"]) == ("yellow", False)
    assert after[0]["name_zh"] == "环保警示企业（黄牌）"
    assert after[0]["text"] == "信用修复: 整改到位"


def test_input_errors_name_the_field_and_answer_422(store: Engine) -> None:
    with Session(store) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    api, agency = TestClient(create_app(store)), {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/supervision/credit/{HUDONG}/2024"
    bad = api.post(url, headers=agency, json={"results": {**YELLOW, "noise": 150}})
    assert bad.status_code == 422
    assert bad.json()["detail"] == "results.noise: score 150 outside 0-100"
    band = api.post(url, headers=agency, json={"results": {**YELLOW, "noise": "4"}})
    assert band.status_code == 422 and band.json()["detail"].startswith("results.noise:")
    finding = api.post(url, headers=agency, json={"findings": ["not_a_rule"]})
    assert finding.status_code == 422 and finding.json()["detail"].startswith("findings:")
    missing = api.post(url, headers=agency, json={"results": {"noise": "1"}})
    assert missing.status_code == 422 and "results.siting_ecology" in missing.json()["detail"]
    # A conflict stays 409: publishing a draft.
    assert api.post(url, headers=agency, json={"results": YELLOW}).status_code == 200
    assert api.post(f"{url}/publish", headers=agency).status_code == 409
    with pytest.raises(ValueError, match="noise: score 150 outside 0-100"):
        r.indicator_score(150, "noise")
