"""The pure enforcement rules of ``ecohub.supervision.rules``, against the documents they
implement. Every expected date and amount below was worked out by hand from the article
text (see ``docs/supervision.md``), not by running the code."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from ecohub.supervision import rules as r

D = dt.date
# 2024 National Day (国务院办公厅 2024 年部分节假日安排): 10-01 to 10-07 off, 09-29 (Sun) and
# 10-12 (Sat) worked; 2024 Dragon Boat Festival: 06-10 off.
NATIONAL_DAY_2024 = {D(2024, 10, day) for day in range(1, 8)}
MAKEUP_2024 = {D(2024, 9, 29), D(2024, 10, 12)}


# --- the tables, typed again from the documents --------------------------------------------


def test_case_deadline_table_matches_the_articles() -> None:
    rules = r.case_deadlines()
    typed = {
        # rule: (step, counted_from, days, day_kind, extension_days)
        "decide_filing": ("filed", "discovered", 15, "calendar", 15),  # 办法 第十八条
        "decide_case": ("decided", "filed", 90, "calendar", 60),  # 办法 第五十七条
        "request_hearing": ("notified", "notified", 5, "working", 0),  # 处罚法 第六十四条
        "serve_decision": ("decided", "decided", 7, "working", 0),  # 处罚法 第六十一条
        "pay_fine": ("executed", "served", 15, "calendar", 0),  # 处罚法 第六十七条
    }
    got = {
        k: (v.step, v.counted_from, v.days, v.day_kind, v.extension_days) for k, v in rules.items()
    }
    assert got == typed


def test_credit_indicator_weights_of_annex_1() -> None:
    indicators = r.credit_rules().indicators
    # 附件1: 1 大气及水污染物达标排放 15%, 2 一般固体废物处理处置 5%, 3 危险废物规范化管理 5%,
    # 4 噪声污染防治 4%, 5 选址布局中的生态保护 2%.
    assert {i.number: (i.name_zh, i.weight) for i in indicators.values()} == {
        1: ("大气及水污染物达标排放", Decimal(15)),
        2: ("一般固体废物处理处置", Decimal(5)),
        3: ("危险废物规范化管理", Decimal(5)),
        4: ("噪声污染防治", Decimal(4)),
        5: ("选址布局中的生态保护", Decimal(2)),
    }


def test_daily_penalty_violations_of_article_5() -> None:
    # 按日连续处罚办法 第五条 lists five kinds of violation, (一) to (五).
    assert len(r.DAILY_PENALTY_VIOLATIONS) == 5
    assert r.DAILY_PENALTY_VIOLATIONS["hazardous_waste_dumping"] == "违法倾倒危险废物的"


# --- deadlines of a penalty case -----------------------------------------------------------


def test_decision_within_90_days_of_filing() -> None:
    # 办法 第五十七条: 自立案之日起九十日内. 03-01 + 30 → 03-31, + 30 → 04-30, + 30 → 05-30
    # (a Thursday).
    rule = r.case_deadlines()["decide_case"]
    assert r.due_date(rule, D(2024, 3, 1)) == D(2024, 5, 30)


def test_decision_extended_once_and_twice() -> None:
    rule = r.case_deadlines()["decide_case"]
    # + 30 (经本机关负责人批准): 05-30 + 30 = 06-29, a Saturday → Monday 07-01
    # (民法典 第二百零三条).
    assert r.due_date(rule, D(2024, 3, 1), extension_days=30) == D(2024, 7, 1)
    assert r.due_date(rule, D(2024, 3, 1), extension_days=30, roll_past_holidays=False) == D(
        2024, 6, 29
    )
    # + 30 + 30 (集体讨论决定继续延期): 05-30 + 60 = 07-29, a Monday.
    assert r.due_date(rule, D(2024, 3, 1), extension_days=60) == D(2024, 7, 29)
    with pytest.raises(ValueError):
        r.due_date(rule, D(2024, 3, 1), extension_days=61)


def test_suspension_is_not_counted() -> None:
    rule = r.case_deadlines()["decide_case"]
    # 10 days suspended (中止): 05-30 + 10 = 06-09 (Sunday) → 06-10, 端午 2024 → 06-11.
    assert r.due_date(rule, D(2024, 3, 1), suspended_days=10) == D(2024, 6, 10)
    holidays = {D(2024, 6, 10)}
    assert r.due_date(rule, D(2024, 3, 1), suspended_days=10, holidays=holidays) == D(2024, 6, 11)


def test_filing_decided_within_15_days() -> None:
    # 办法 第十八条: 十五日内决定是否立案; 03-01 + 15 = 03-16 (Saturday) → Monday 03-18;
    # extended by 15: 03-31 (Sunday) → Monday 04-01.
    rule = r.case_deadlines()["decide_filing"]
    assert r.due_date(rule, D(2024, 3, 1)) == D(2024, 3, 18)
    assert r.due_date(rule, D(2024, 3, 1), extension_days=15) == D(2024, 4, 1)


def test_hearing_request_counts_working_days_across_national_day() -> None:
    # 处罚法 第六十四条(一) 告知后五日内, 第八十五条 working days. Notified Friday 2024-09-27:
    # 09-29 (worked Sunday) 1, 09-30 2, [10-01..10-07 off], 10-08 3, 10-09 4, 10-10 5.
    rule = r.case_deadlines()["request_hearing"]
    due = r.due_date(rule, D(2024, 9, 27), holidays=NATIONAL_DAY_2024, workdays=MAKEUP_2024)
    assert due == D(2024, 10, 10)
    # Without the holiday lists: 09-30, 10-01, 10-02, 10-03, 10-04.
    assert r.due_date(rule, D(2024, 9, 27)) == D(2024, 10, 4)


def test_decision_served_within_7_working_days() -> None:
    # 处罚法 第六十一条: 七日内 送达. Decided Friday 2024-03-01: 03-04..03-08 (5), 03-11, 03-12.
    rule = r.case_deadlines()["serve_decision"]
    assert r.due_date(rule, D(2024, 3, 1)) == D(2024, 3, 12)


def test_case_due_dates_from_the_events_known() -> None:
    due = r.case_due_dates({"filed": D(2024, 3, 1), "served": D(2024, 5, 6)})
    # pay_fine: 处罚法 第六十七条 自收到之日起十五日内: 05-06 + 15 = 05-21 (Tuesday).
    assert due == {"decide_case": D(2024, 5, 30), "pay_fine": D(2024, 5, 21)}
    with pytest.raises(ValueError):
        r.case_due_dates({"arrested": D(2024, 3, 1)})


def test_a_locality_may_change_a_deadline() -> None:
    local = {"decide_case": replace(r.case_deadlines()["decide_case"], days=60)}
    # 03-01 + 60 = 04-30 (Tuesday).
    assert r.case_due_dates({"filed": D(2024, 3, 1)}, local) == {"decide_case": D(2024, 4, 30)}


def test_a_deadline_must_name_known_steps() -> None:
    rule = r.case_deadlines()["decide_case"]
    with pytest.raises(ValueError):
        replace(rule, step="appealed")
    with pytest.raises(ValueError):
        replace(rule, counted_from="received")


def test_late_payment_surcharge_is_3_percent_a_day_capped_at_the_fine() -> None:
    # 处罚法 第七十二条(一): 每日按罚款数额的百分之三加处罚款，加处罚款的数额不得超出罚款的数额.
    fine = Decimal("10000")
    assert r.late_payment_surcharge(fine, 10) == Decimal("3000")  # 10 × 300
    assert r.late_payment_surcharge(fine, 33) == Decimal("9900")  # 33 × 300
    assert r.late_payment_surcharge(fine, 34) == Decimal("10000")  # 10 200, capped
    assert r.late_payment_surcharge(fine, 0) == Decimal("0")


# --- daily continuous penalties ------------------------------------------------------------


def test_days_run_from_the_day_after_service_to_the_reinspection() -> None:
    # 按日连续处罚办法 第十七条: order served 2015-03-01, re-inspection 2015-03-11 finds the
    # discharge continuing: 03-02 to 03-11 inclusive = 10 days.
    assert r.penalty_days(D(2015, 3, 1), [(D(2015, 3, 11), True)]) == 10
    # Across 29 February 2016: 02-29 and 03-01 = 2 days.
    assert r.penalty_days(D(2016, 2, 28), [(D(2016, 3, 1), True)]) == 2


def test_repeated_reinspections_accumulate() -> None:
    # 第十七条: 再次复查仍拒不改正的，计罚日数累计执行: 03-02 to 04-10 = 30 + 10 = 40 days.
    found = [(D(2015, 3, 11), True), (D(2015, 4, 10), True)]
    assert r.penalty_days(D(2015, 3, 1), found) == 40


def test_correction_ends_the_cycle() -> None:
    # 第十八条: corrected at the second re-inspection: only the first run counts (10 days);
    # a later finding starts a new cycle with a new decision.
    inspections = [(D(2015, 3, 11), True), (D(2015, 4, 10), False), (D(2015, 5, 10), True)]
    assert r.penalty_days(D(2015, 3, 1), inspections) == 10
    assert r.penalty_days(D(2015, 3, 1), [(D(2015, 3, 11), False)]) == 0
    assert r.penalty_days(D(2015, 3, 1), []) == 0


def test_reinspections_must_follow_service_in_order() -> None:
    with pytest.raises(ValueError):
        r.penalty_days(D(2015, 3, 1), [(D(2015, 3, 1), True)])
    with pytest.raises(ValueError):
        r.penalty_days(D(2015, 3, 1), [(D(2015, 4, 10), True), (D(2015, 3, 11), True)])


def test_daily_penalty_is_the_original_fine_times_the_days() -> None:
    # 第十九条: 原处罚决定书确定的罚款数额乘以计罚日数. 100 000 yuan × 10 days = 1 000 000;
    # 250 000.50 × 40 = 10 000 020.
    assert r.daily_penalty(Decimal("100000"), 10) == Decimal("1000000")
    assert r.daily_penalty(Decimal("250000.50"), 40) == Decimal("10000020.00")
    assert r.daily_penalty(Decimal("100000"), 0) == Decimal("0")
    with pytest.raises(ValueError):
        r.daily_penalty(Decimal("-1"), 3)


# --- enterprise environmental credit -------------------------------------------------------

ALL_BEST = {
    "air_water_compliance": 100,
    "general_solid_waste": 100,
    "hazardous_waste": 100,
    "noise": 100,
    "siting_ecology": 100,
}


def test_all_indicators_best_with_green_extras_is_green() -> None:
    # 穗环〔2015〕210号: 得分100分且符合绿色附加指标2项及以上 → 环保诚信企业（绿牌）.
    grade = r.credit_grade(ALL_BEST, green_extras=2)
    assert (grade.grade, grade.score, grade.decided_by) == ("green", Decimal(100), ())
    assert grade.name_zh == "环保诚信企业（绿牌）"
    # One green extra only: 良好 (80-100).
    assert r.credit_grade(ALL_BEST, green_extras=1).grade == "blue"


def test_bands_score_their_floor() -> None:
    # Every indicator in 第1档 (80-100) scored at 80: weighted 80 → blue.
    grade = r.credit_grade(dict.fromkeys(ALL_BEST, "1"), green_extras=2)
    assert (grade.grade, grade.score) == ("blue", Decimal(80))


def test_weighted_score_decides_the_grade_and_names_the_indicators() -> None:
    # Weights 15 + 5 + 5 + 4 + 2 = 31.
    # 达标排放 at 50: (15 × 50 + 16 × 100) / 31 = 2350 / 31 = 75.81 → 警示 (60-79).
    grade = r.credit_grade({**ALL_BEST, "air_water_compliance": 50})
    assert grade.grade == "yellow"
    assert grade.score is not None and round(grade.score, 2) == Decimal("75.81")
    assert grade.decided_by == ("air_water_compliance",)
    # 达标排放 in 第3档 (0): 1600 / 31 = 51.61 → 不良 (60 分以下).
    assert r.credit_grade({**ALL_BEST, "air_water_compliance": "3"}).grade == "red"
    # 噪声 at 0: 2700 / 31 = 87.10 → 良好.
    assert r.credit_grade({**ALL_BEST, "noise": 0}).grade == "blue"


def test_a_direct_condition_is_red_regardless_of_the_rest() -> None:
    # 一票否决: 私设暗管 …… 排放水污染物 → 直接评定为环保不良企业.
    grade = r.credit_grade(ALL_BEST, {"hidden_discharge"}, green_extras=5)
    assert (grade.grade, grade.score, grade.decided_by) == ("red", None, ("hidden_discharge",))
    assert "私设暗管" in grade.explanation


def test_credit_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        r.credit_grade(ALL_BEST, {"bad_weather"})
    with pytest.raises(ValueError):
        r.credit_grade({k: v for k, v in ALL_BEST.items() if k != "noise"})
    with pytest.raises(ValueError):
        r.credit_grade({**ALL_BEST, "noise": "4"})
    with pytest.raises(ValueError):
        r.credit_grade({**ALL_BEST, "noise": 101})
