"""A penalty case's periods as they stand, on both backends: counted with the State
Council's holidays and make-up working days, lengthened by approved extensions and
suspensions; the decision's service (the agency's duty) and the fine's payment with its
surcharge; the daily penalty only for the violations of 按日连续处罚办法 第五条; re-serving
an order after re-inspections and two re-inspections a day refused, reads unharmed.

Expected dates are counted by hand from the notices (国办发明电〔2024〕12号: 2025-10-01 to
10-08 off, Sunday 09-28 and Saturday 10-11 working days) and the articles cited.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.alarms.lifecycle import list_alarms
from ecohub.app import create_app
from ecohub.standards import holidays
from ecohub.supervision import case_terms, cases, rules
from ecohub.supervision.overdue import sweep_overdue_cases
from ecohub.supervision.service import SupervisionError

CST = dt.timezone(dt.timedelta(hours=8))
HUDONG = "91310115MA1HDEM025"
NOON = dt.time(12, tzinfo=CST)
D = dt.date.fromisoformat


def _at(day: str) -> dt.datetime:
    return dt.datetime.combine(D(day), NOON)


# --- the table and the pure counting ------------------------------------------------------


def test_holiday_table_is_the_notices() -> None:
    calendar = holidays.packaged()
    # 2025 National Day and Mid-Autumn: 10-01 (Wed) to 10-08 (Wed), 8 days.
    assert {D("2025-10-01") + dt.timedelta(days=n) for n in range(8)} <= calendar.holidays
    assert D("2025-10-09") not in calendar.holidays
    assert {D("2025-09-28"), D("2025-10-11")} <= calendar.workdays
    # 2024 Spring Festival 02-10 … 02-17; 02-04 and 02-18 (Sundays) worked; 除夕 not a holiday.
    assert D("2024-02-17") in calendar.holidays and D("2024-02-09") not in calendar.holidays
    assert {D("2024-02-04"), D("2024-02-18")} <= calendar.workdays
    # 2026 New Year 01-01 … 01-03, Sunday 01-04 worked; Spring Festival 02-15 … 02-23.
    assert D("2026-01-03") in calendar.holidays and D("2026-01-04") in calendar.workdays
    assert D("2026-02-23") in calendar.holidays and D("2026-02-28") in calendar.workdays
    # Days off: 2024 1+8+3+5+1+3+7 = 28, 2025 1+8+3+5+3+8 = 28, 2026 3+9+3+5+3+3+7 = 33;
    # days worked: 2024 2+1+2+1+2 = 8, 2025 2+1+2 = 5, 2026 1+2+1+2 = 6.
    assert len(calendar.holidays) == 89 and len(calendar.workdays) == 19


def test_a_bad_holiday_row_is_refused_naming_its_line() -> None:
    with pytest.raises(ValueError, match="line 3: kind 'off'"):
        holidays.parse("# note\nday,kind,source\n2025-10-01,off,x\n")
    with pytest.raises(ValueError, match="line 2: workday 2025-10-09 is not a weekend day"):
        holidays.parse("day,kind,source\n2025-10-09,workday,x\n")


def test_five_working_days_across_national_day_2025() -> None:
    table = rules.case_deadlines()
    calendar = holidays.packaged()
    # Notified Tue 2025-09-30: 10-01 … 10-08 are off; 10-09 (1), 10-10 (2), Sat 10-11
    # worked (3), 10-13 (4), 10-14 (5). Without the notice it would be 10-07.
    hearing = table["request_hearing"]
    assert rules.due_date(
        hearing, D("2025-09-30"), holidays=calendar.holidays, workdays=calendar.workdays
    ) == D("2025-10-14")
    assert rules.due_date(hearing, D("2025-09-30")) == D("2025-10-07")
    # Decided Fri 2025-09-26, 7 working days to serve: Sun 09-28 worked (1), 09-29 (2),
    # 09-30 (3), 10-09 (4), 10-10 (5), Sat 10-11 (6), 10-13 (7).
    assert rules.due_date(
        table["serve_decision"],
        D("2025-09-26"),
        holidays=calendar.holidays,
        workdays=calendar.workdays,
    ) == D("2025-10-13")


# --- a case in the store --------------------------------------------------------------------


def _case(engine: Engine, dates: dict[str, str], penalty: str | None = None) -> int:
    case_id = cases.open_case(
        engine, HUDONG, "超标排放", "SO2 超标", D(dates.pop("discovered")), "agency:t"
    )
    for step, on in dates.items():
        extra = (
            {"penalty_yuan": Decimal(penalty or "0"), "legal_basis": "大气污染防治法 第九十九条"}
            if step == "decided"
            else {}
        )
        cases.record_step(engine, case_id, step, D(on), "agency:t", **extra)  # type: ignore[arg-type]
    return case_id


def _deadline(engine: Engine, case_id: int, rule: str, today: str) -> dict[str, object]:
    found = cases.get_case(engine, case_id, today=D(today))
    assert found is not None
    return next(d for d in found["deadlines"] if d["rule"] == rule)


def test_a_period_ending_on_a_holiday_rolls_and_an_extension_moves_it(
    engine: Engine, points: dict[str, int]
) -> None:
    # Filed 2025-07-03: the 90th day is 10-01, a holiday; it rolls past 10-08 to 10-09
    # (民法典 第二百零三条).
    case_id = _case(engine, {"discovered": "2025-06-20", "filed": "2025-07-03"})
    assert _deadline(engine, case_id, "decide_case", "2025-10-09")["due"] == "2025-10-09"
    assert sweep_overdue_cases(engine, _at("2025-10-09")) == []
    # 30 days approved on 10-08 (第五十七条): the 120th day, Fri 2025-10-31.
    moved = case_terms.change_time(
        engine, case_id, "extension", "decide_case", 30, D("2025-10-08"), "局长批准", "agency:t"
    )
    assert moved["due"] == "2025-10-31" and moved["extension_days"] == 30
    assert sweep_overdue_cases(engine, _at("2025-10-10")) == []
    assert sweep_overdue_cases(engine, _at("2025-10-31")) == []
    assert list_alarms(engine, status="unclosed", kind="case_overdue") == []
    # At most 30 + 30 days; a second extension of 31 is refused, naming the rule.
    with pytest.raises(SupervisionError, match="30 days already granted, 31 more exceed the 60"):
        case_terms.change_time(
            engine, case_id, "extension", "decide_case", 31, D("2025-10-20"), "x", "agency:t"
        )
    # An extension approved after the deadline cannot revive it.
    with pytest.raises(SupervisionError, match="after the deadline of 2025-10-31"):
        case_terms.change_time(
            engine, case_id, "extension", "decide_case", 10, D("2025-11-01"), "x", "agency:t"
        )
    # 10 days suspended (中止): 120 + 10 = the 130th day, Mon 2025-11-10.
    case_terms.change_time(
        engine, case_id, "suspension", "decide_case", 10, D("2025-10-15"), "鉴定", "agency:t"
    )
    assert _deadline(engine, case_id, "decide_case", "2025-11-10")["due"] == "2025-11-10"
    opened = sweep_overdue_cases(engine, _at("2025-11-11"))
    assert [event.action for event in opened] == ["opened"]
    with pytest.raises(SupervisionError, match="request_hearing has not started"):
        case_terms.change_time(
            engine, case_id, "extension", "request_hearing", 1, D("2025-10-01"), "x", "agency:t"
        )


def test_serving_the_decision_and_paying_the_fine(engine: Engine, points: dict[str, int]) -> None:
    case_id = _case(
        engine,
        {
            "discovered": "2025-08-25",
            "filed": "2025-09-01",
            "investigated": "2025-09-10",
            "notified": "2025-09-15",
            "decided": "2025-09-26",
        },
        penalty="100000",
    )
    # Serving is the agency's duty: 7 working days, by 2025-10-13; unserved on 10-14, overdue.
    serve = _deadline(engine, case_id, "serve_decision", "2025-10-14")
    assert serve["due"] == "2025-10-13" and serve["overdue"] and not serve["window"]
    opened = sweep_overdue_cases(engine, _at("2025-10-14"))
    assert [event.action for event in opened] == ["opened"]
    with pytest.raises(SupervisionError, match="before the decision"):
        case_terms.serve_decision(engine, case_id, D("2025-09-25"), "agency:t")
    case_terms.serve_decision(engine, case_id, D("2025-10-13"), "agency:t")
    case_terms.serve_decision(engine, case_id, D("2025-10-13"), "agency:t")  # the same: nothing
    with pytest.raises(SupervisionError, match="already recorded"):
        case_terms.serve_decision(engine, case_id, D("2025-10-14"), "agency:t")
    served = _deadline(engine, case_id, "serve_decision", "2025-10-14")
    assert served["done_on"] == "2025-10-13" and not served["overdue"] and not served["late"]
    # 15 days to pay from service (第六十七条): 2025-10-28. Unpaid on 11-02: 5 days late,
    # 3 % a day (第七十二条): 15,000 yuan.
    found = cases.get_case(engine, case_id, today=D("2025-11-02"))
    assert found is not None
    pay = next(d for d in found["deadlines"] if d["rule"] == "pay_fine")
    assert pay["due"] == "2025-10-28" and pay["overdue"]
    assert found["late_payment_days"] == 5
    assert found["late_payment_surcharge_yuan"] == Decimal("15000")
    # The sweep closes the serving alarm and opens one for the unpaid fine.
    swept = sweep_overdue_cases(engine, _at("2025-11-02"))
    assert sorted(event.action for event in swept) == ["closed", "opened"]
    # Never more than the fine: unpaid on 2026-01-01, 65 days, 195 % capped at 100 %.
    later = cases.get_case(engine, case_id, today=D("2026-01-01"))
    assert later is not None and later["late_payment_surcharge_yuan"] == Decimal("100000")
    # Paid (executed) on 10-30: 2 days late, 6,000 yuan, whatever today is.
    cases.record_step(engine, case_id, "executed", D("2025-10-30"), "agency:t")
    paid = cases.get_case(engine, case_id, today=D("2026-01-01"))
    assert paid is not None
    assert paid["late_payment_days"] == 2
    assert paid["late_payment_surcharge_yuan"] == Decimal("6000")


def test_daily_penalty_only_for_the_kinds_of_article_5(
    engine: Engine, points: dict[str, int]
) -> None:
    case_id = _case(
        engine,
        {
            "discovered": "2024-02-20",
            "filed": "2024-03-01",
            "investigated": "2024-03-05",
            "notified": "2024-03-10",
            "decided": "2024-03-20",
        },
        penalty="50000",
    )
    with pytest.raises(SupervisionError, match="violation_kind 'late_report'"):
        cases.order_correction(
            engine, case_id, D("2024-03-21"), "agency:t", violation_kind="late_report"
        )
    cases.order_correction(engine, case_id, D("2024-03-21"), "agency:t")  # no kind given
    cases.reinspect(engine, case_id, D("2024-03-31"), True, "agency:t")
    found = cases.get_case(engine, case_id, today=D("2024-04-01"))
    assert found is not None
    assert found["daily_penalty"] is False and found["daily_penalty_yuan"] is None
    assert found["daily_penalty_days"] == 10  # counted, not charged
    cases.order_correction(
        engine, case_id, D("2024-03-21"), "agency:t", violation_kind="evading_supervision"
    )
    found = cases.get_case(engine, case_id, today=D("2024-04-01"))
    assert found is not None and found["daily_penalty_yuan"] == Decimal("500000")


def test_bad_steps_answer_4xx_and_reads_keep_working(
    engine: Engine, points: dict[str, int]
) -> None:
    with Session(engine) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    api = TestClient(create_app(engine))
    headers = {"Authorization": f"Bearer {key}"}
    case_id = _case(engine, {"discovered": "2024-02-20", "filed": "2024-03-01"})
    base = f"/api/v1/supervision/cases/{case_id}"
    assert api.post(f"{base}/order", headers=headers, json={"served_on": "2024-03-01"}).is_success
    visit = {"on": "2024-03-11", "continuing": True}
    assert api.post(f"{base}/reinspections", headers=headers, json=visit).is_success
    # A second re-inspection the same day: refused with a clear message, not a 500.
    again = api.post(f"{base}/reinspections", headers=headers, json={**visit, "continuing": False})
    assert again.status_code == 409
    assert "already has a re-inspection on 2024-03-11" in again.json()["detail"]
    # Serving the order again after the re-inspection (it made penalty_days raise in every
    # read): refused, and the case still reads.
    moved = api.post(f"{base}/order", headers=headers, json={"served_on": "2024-03-20"})
    assert moved.status_code == 409 and "new penalty cycle" in moved.json()["detail"]
    read = api.get(base, headers=headers)
    assert read.status_code == 200 and read.json()["daily_penalty_days"] == 10


def test_open_cases_are_read_directly_oldest_overdue_first(
    engine: Engine, points: dict[str, int]
) -> None:
    late = _case(engine, {"discovered": "2024-01-02", "filed": "2024-01-03"})  # due 04-02
    later = _case(engine, {"discovered": "2024-02-01", "filed": "2024-02-02"})  # 05-02 → 05-06
    fresh = _case(engine, {"discovered": "2024-06-01"})  # file by 06-16 (Sun) → 06-17
    done = _case(engine, {"discovered": "2024-06-01"})
    for step, on in (
        ("filed", "2024-06-02"),
        ("investigated", "2024-06-03"),
        ("notified", "2024-06-04"),
    ):
        cases.record_step(engine, done, step, D(on), "agency:t")
    found = cases.open_cases(engine, today=D("2024-06-10"))
    assert [c["id"] for c in found] == [late, later, fresh, done]
    assert [bool(c["overdue"]) for c in found] == [True, True, False, False]
