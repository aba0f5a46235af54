"""Execution-report rules (ecohub/permits/report_rules.py) against the texts they were typed
from: HJ 944-2018 5.1 and 5.3.1 as quoted, and two permits' wording of the due dates. Sample
counts are computed by hand in the comments."""

from __future__ import annotations

import datetime as dt

import pytest

from ecohub.permits import report_rules as rr
from ecohub.permits.report_rules import Frequency, ManagementClass, PeriodKind

D = dt.date


# --- periods (HJ 944-2018 5.1: natural year, quarter, month) -------------------------------


@pytest.mark.parametrize(
    ("kind", "day", "first", "last"),
    [
        ("annual", D(2024, 7, 9), D(2024, 1, 1), D(2024, 12, 31)),
        ("semiannual", D(2024, 7, 9), D(2024, 7, 1), D(2024, 12, 31)),
        ("semiannual", D(2024, 6, 30), D(2024, 1, 1), D(2024, 6, 30)),
        ("quarterly", D(2024, 2, 29), D(2024, 1, 1), D(2024, 3, 31)),
        ("quarterly", D(2024, 11, 5), D(2024, 10, 1), D(2024, 12, 31)),
        ("monthly", D(2024, 2, 10), D(2024, 2, 1), D(2024, 2, 29)),
        ("monthly", D(2023, 2, 10), D(2023, 2, 1), D(2023, 2, 28)),
        ("季度执行报告", D(2024, 5, 1), D(2024, 4, 1), D(2024, 6, 30)),
    ],
)
def test_period_of_is_the_natural_period(kind: str, day: dt.date, first: dt.date, last: dt.date):
    assert rr.period_of(kind, day) == (first, last)


def test_period_of_follows_the_beijing_calendar():
    # 2024-03-31 16:30 UTC is 2024-04-01 00:30 in Beijing: the second quarter.
    moment = dt.datetime(2024, 3, 31, 16, 30, tzinfo=dt.UTC)
    assert rr.period_of(PeriodKind.QUARTERLY, moment) == (D(2024, 4, 1), D(2024, 6, 30))


def test_an_unknown_period_kind_is_named():
    with pytest.raises(ValueError, match=r"period_kind.*'weekly'"):
        rr.period_of("weekly", D(2024, 1, 1))


# --- due dates, typed from the permits' wording --------------------------------------------


def test_default_schedule():
    # annual: 每年1月底之前 (cement permit); quarterly: 每季度结束后15日内 (cement) =
    # 下一季第一个月的15日前 (thermal power); monthly: 下一个月15日前 (thermal power).
    assert rr.due_date("annual", D(2024, 1, 1)) == D(2025, 1, 31)
    assert rr.due_date("quarterly", D(2024, 1, 1)) == D(2024, 4, 15)
    assert rr.due_date("quarterly", D(2024, 10, 1)) == D(2025, 1, 15)
    assert rr.due_date("monthly", D(2024, 2, 1)) == D(2024, 3, 15)
    assert rr.due_date("monthly", D(2024, 12, 1)) == D(2025, 1, 15)
    # semi-annual: 每年7月底之前 (cement).
    assert rr.due_date("semiannual", D(2024, 1, 1)) == D(2024, 7, 31)


def test_thermal_power_schedule():
    # 年度报告于下一年1月15日前; 半年报告分别于7月15日前和下一年1月15日前.
    assert rr.due_date("annual", D(2024, 1, 1), "thermal-power") == D(2025, 1, 15)
    assert rr.due_date("semiannual", D(2024, 1, 1), "thermal-power") == D(2024, 7, 15)
    assert rr.due_date("semiannual", D(2024, 7, 1), "thermal-power") == D(2025, 1, 15)
    assert rr.due_date("quarterly", D(2024, 7, 1), "thermal-power") == D(2024, 10, 15)


def test_due_date_takes_any_day_of_the_period():
    assert rr.due_date("quarterly", D(2024, 5, 20)) == D(2024, 7, 15)


def test_a_schedule_without_the_report_or_unknown_is_named():
    with pytest.raises(ValueError, match="'cement' has no monthly report"):
        rr.due_date("monthly", D(2024, 1, 1), "cement")
    with pytest.raises(ValueError, match="schedule must be one of default"):
        rr.due_date("annual", D(2024, 1, 1), "shanghai")


def test_schedules_list_default_first():
    assert rr.schedules() == ("default", "cement", "thermal-power")


# --- HJ 944-2018 5.1: the first period needing a report -----------------------------------


@pytest.mark.parametrize(
    ("kind", "issued", "first"),
    [
        # a year held three months (1 October to 31 December) reports; from 2 October it does not
        ("annual", D(2024, 10, 1), D(2024, 1, 1)),
        ("annual", D(2024, 10, 2), D(2025, 1, 1)),
        # a quarter held one month (1 to 31 March) reports; from 2 March it does not
        ("quarterly", D(2024, 3, 1), D(2024, 1, 1)),
        ("quarterly", D(2024, 3, 2), D(2024, 4, 1)),
        # a month held ten days (22 to 31 January) reports; nine days (from the 23rd) do not
        ("monthly", D(2024, 1, 22), D(2024, 1, 1)),
        ("monthly", D(2024, 1, 23), D(2024, 2, 1)),
    ],
)
def test_first_report_period(kind: str, issued: dt.date, first: dt.date):
    assert rr.first_report_period(kind, issued)[0] == first


# --- who files what, and the sections -----------------------------------------------------


def test_periods_required_by_management_class():
    assert rr.periods_required(ManagementClass.KEY) == {PeriodKind.ANNUAL, PeriodKind.QUARTERLY}
    assert rr.periods_required("简化管理") == {PeriodKind.ANNUAL}
    assert rr.periods_required("登记管理") == set()
    with pytest.raises(ValueError, match="management_class must be one of"):
        rr.periods_required("重要")


def test_annual_sections_are_those_of_hj944_5_3_1():
    # 5.3 承诺书, then 5.3.1 in the text's order.
    assert [s.zh for s in rr.sections("annual")] == [
        "承诺书",
        "排污单位基本情况",
        "遵守法律法规情况",
        "污染防治设施运行情况",
        "自行监测执行情况",
        "环境管理台账执行情况",
        "实际排放情况及达标判定分析",
        "环境保护税（排污费）缴纳情况",
        "信息公开情况",
        "排污单位内部环境管理体系建设与运行情况",
        "其他排污许可证规定的内容执行情况",
        "其他需要说明的问题",
        "结论",
        "附图附件",
    ]
    assert all(s.required for s in rr.sections("annual"))


def test_quarterly_and_monthly_sections():
    # 至少包括 "实际排放量报表"、达标判定分析说明及污染防治设施异常情况说明 (thermal power).
    for kind in ("quarterly", "monthly"):
        keys = [(key, required) for key, _zh, _en, required in rr.sections(kind)]
        assert keys == [("commitment", True), ("actual_emissions", True), ("abnormal", True)]


def test_semiannual_sections():
    # thermal power: at least items 1, 3 and 6; cement adds self-monitoring and the ledger.
    found = {s.key: s.required for s in rr.sections(PeriodKind.SEMIANNUAL)}
    assert found == {
        "commitment": True,
        "basic_info": True,
        "treatment_operation": True,
        "self_monitoring": False,
        "ledger": False,
        "actual_emissions": True,
    }


# --- self-monitoring: samples expected and held -------------------------------------------


@pytest.mark.parametrize(
    ("freq", "start", "end", "expected"),
    [
        ("自动监测", D(2024, 1, 1), D(2024, 1, 31), 31 * 24),  # 744 hourly values
        ("1次/日", D(2024, 2, 1), D(2024, 2, 29), 29),
        ("1次/周", D(2024, 1, 1), D(2024, 1, 31), 5),  # Mondays 1, 8, 15, 22, 29 January
        ("1次/周", D(2024, 1, 7), D(2024, 1, 8), 2),  # a Sunday and the next Monday
        ("1次/月", D(2024, 1, 1), D(2024, 3, 31), 3),
        ("1次/月", D(2024, 1, 20), D(2024, 2, 5), 2),  # touches January and February
        ("1次/季度", D(2024, 1, 1), D(2024, 12, 31), 4),
        ("1次/季", D(2024, 3, 31), D(2024, 4, 1), 2),
        ("1次/半年", D(2024, 1, 1), D(2024, 12, 31), 2),
        ("1次/年", D(2023, 12, 31), D(2024, 1, 1), 2),
        ("1次/年", D(2024, 1, 1), D(2024, 12, 31), 1),
    ],
)
def test_expected_samples(freq: str, start: dt.date, end: dt.date, expected: int):
    assert rr.expected_samples(freq, start, end) == expected


def test_expected_samples_rejects_a_reversed_range_and_unknown_words():
    with pytest.raises(ValueError, match="end_date 2024-01-01 is before start_date 2024-02-01"):
        rr.expected_samples("1次/月", D(2024, 2, 1), D(2024, 1, 1))
    with pytest.raises(ValueError, match="frequency must be one of"):
        rr.expected_samples("1次/两年", D(2024, 1, 1), D(2024, 2, 1))


def test_completeness_counts_periods_not_samples():
    # 1次/月 over the first quarter: three samples, all in January, cover one month of three.
    held = [D(2024, 1, 3), D(2024, 1, 10), D(2024, 1, 17)]
    found = rr.completeness(Frequency.MONTHLY, D(2024, 1, 1), D(2024, 3, 31), held)
    assert (found.expected, found.held, found.missing) == (3, 1, 2)
    assert found.ratio == pytest.approx(1 / 3)


def test_completeness_from_a_count_and_samples_outside_the_range():
    assert rr.completeness("1次/日", D(2024, 2, 1), D(2024, 2, 29), 29).ratio == 1.0
    over = rr.completeness("1次/月", D(2024, 1, 1), D(2024, 1, 31), 4)
    assert (over.expected, over.held, over.missing, over.ratio) == (1, 4, 0, 1.0)
    outside = rr.completeness("1次/月", D(2024, 1, 1), D(2024, 1, 31), [D(2024, 2, 1)])
    assert outside.missing == 1


def test_completeness_of_automatic_monitoring_counts_beijing_hours():
    # one day expects 24 hourly values; 16:00 and 16:30 UTC fall in the same Beijing hour
    # (00:00 on 2 January), and 15:00 UTC on 1 January is 23:00 in Beijing.
    utc = dt.UTC
    held = [
        dt.datetime(2024, 1, 1, 15, 0, tzinfo=utc),
        dt.datetime(2024, 1, 1, 16, 0, tzinfo=utc),
        dt.datetime(2024, 1, 1, 16, 30, tzinfo=utc),
    ]
    found = rr.completeness("自动监测", D(2024, 1, 2), D(2024, 1, 2), held)
    assert (found.expected, found.held, found.missing) == (24, 1, 23)


def test_completeness_by_point():
    plan = {("DW001", "化学需氧量"): "1次/月", ("DA001", "二氧化硫"): "1次/季度"}
    held = {("DW001", "化学需氧量"): [D(2024, 1, 5), D(2024, 2, 5), D(2024, 3, 5)]}
    table = rr.completeness_by_point(plan, held, D(2024, 1, 1), D(2024, 3, 31))
    assert table["DW001", "化学需氧量"].ratio == 1.0
    assert (table["DA001", "二氧化硫"].expected, table["DA001", "二氧化硫"].held) == (1, 0)


def test_completeness_rejects_a_negative_count():
    with pytest.raises(ValueError, match="held must be >= 0"):
        rr.completeness("1次/月", D(2024, 1, 1), D(2024, 1, 31), -1)
