"""The environmental management ledger (HJ 944-2018, as issued permits copy its ledger
table): the rules' expected counts typed from those frequencies and hand-counted calendars,
the service's checks (each naming its field), append-only corrections, the Beijing-day
boundaries and the ledger section of an execution report; the submit refusal of a report
whose period is not over; the pollutants' English names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update

from ecohub.clock import local_today
from ecohub.permits import ledger, ledger_rules, reports
from ecohub.permits.ledger_rules import Condition, RecordKind
from ecohub.permits.tables import execution_reports, permit_monitoring
from ecohub.registry.models import AuditEntry, Outlet, Permit

JINGXI = "91110106MA00DEM01H"
PERMIT = f"{JINGXI}001P"  # the demo's permit of enterprise 1, outlet DA001
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
MARCH = (dt.date(2024, 3, 1), dt.date(2024, 3, 31))


# --- rules ----------------------------------------------------------------------------------


def test_the_frequencies_are_the_permits_copies_of_hj944() -> None:
    found = ledger_rules.rules()
    assert len(found) == 7  # five kinds; production and treatment also abnormal
    # "运行状态：1次/日或批次" (permit-a), "运行情况：按日记录，1 次/日" (permit-b)
    assert found[RecordKind.PRODUCTION, Condition.NORMAL].frequency == "1次/日"
    assert found[RecordKind.TREATMENT, Condition.NORMAL].frequency == "1次/日"
    # "未发生变化的基本信息，按年记录，1次/年"; abnormal: "1次/工况期"
    assert found[RecordKind.BASIC, Condition.NORMAL].frequency == "1次/年"
    assert found[RecordKind.PRODUCTION, Condition.ABNORMAL].frequency == "per_event"
    abnormal = {f.name for f in found[RecordKind.PRODUCTION, Condition.ABNORMAL].fields}
    assert {"ended_at", "reason", "measures", "reported"} <= abnormal  # 起止时间、事件原因…


def test_expected_records_of_a_period() -> None:
    daily = ledger_rules.rule("production")
    assert ledger_rules.expected(daily, *MARCH, facilities=2) == 62  # 31 days × 2
    assert ledger_rules.expected(daily, dt.date(2024, 1, 1), dt.date(2024, 3, 31), 1) == 91
    yearly = ledger_rules.rule("basic")
    assert ledger_rules.expected(yearly, *MARCH, facilities=0) == 1
    assert ledger_rules.expected(yearly, dt.date(2024, 12, 1), dt.date(2025, 1, 31), 0) == 2
    assert ledger_rules.expected(ledger_rules.rule("treatment", "abnormal"), *MARCH, 1) is None
    assert ledger_rules.expected(ledger_rules.rule("other"), *MARCH, 0) is None


def test_values_are_checked_naming_the_field() -> None:
    at = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    normal = ledger_rules.rule("production")
    with pytest.raises(ValueError, match=r"values\.running: required"):
        ledger_rules.check_values(normal, {"load_percent": 80}, at)
    with pytest.raises(ValueError, match=r"values\.load_percent: a load above 200"):
        ledger_rules.check_values(normal, {"running": "yes", "load_percent": 250}, at)
    with pytest.raises(ValueError, match=r"values\.colour: not a field"):
        ledger_rules.check_values(normal, {"running": True, "colour": "red"}, at)
    with pytest.raises(ValueError, match=r"values\.output: a number is expected"):
        ledger_rules.check_values(normal, {"running": True, "output": "many"}, at)
    checked = ledger_rules.check_values(normal, {"running": "是", "output": "12.5"}, at)
    assert checked == {"running": True, "output": 12.5}
    abnormal = ledger_rules.rule("production", "abnormal")
    values = {"reason": "停电", "measures": "停炉", "reported": "no"}
    with pytest.raises(ValueError, match=r"values\.ended_at: before the record's start"):
        ledger_rules.check_values(abnormal, {**values, "ended_at": "2024-03-01 07:00"}, at)
    # 2024-03-01 09:00 Beijing is 01:00 UTC, after the start at 00:00 UTC
    kept = ledger_rules.check_values(abnormal, {**values, "ended_at": "2024-03-01 09:00"}, at)
    assert kept["ended_at"] == "2024-03-01T09:00:00+08:00"
    with pytest.raises(ValueError, match="condition: a basic record has no abnormal"):
        ledger_rules.rule("basic", "abnormal")
    with pytest.raises(ValueError, match="kind must be one of"):
        ledger_rules.rule("diary")


# --- the service ----------------------------------------------------------------------------


def _entry(engine: Engine, kind: str, at: str, values: dict, **extra: object) -> dict:
    return ledger.add_entry(
        engine,
        PERMIT,
        kind=kind,
        at=at,
        values=values,
        operator="张工",
        actor="jx",
        enterprise_id=1,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def kept(engine: Engine, points: dict[str, int]) -> dict[str, dict]:
    """A March 2024 ledger of the demo permit, with a weekly manual plan for particulates."""
    for code, name, kind in (
        ("MF0001", "燃气锅炉1", "production"),
        ("MF0002", "燃气锅炉2", "production"),
        ("TA001", "低氮燃烧", "treatment"),
    ):
        ledger.add_facility(
            engine, PERMIT, code=code, name=name, kind=kind, actor="jx", enterprise_id=1
        )
    with engine.begin() as connection:
        permit_id = connection.execute(
            select(Permit.id).where(Permit.permit_no == PERMIT)
        ).scalar_one()
        outlet_id = connection.execute(
            select(Outlet.id).where(Outlet.enterprise_id == 1, Outlet.code == "DA001")
        ).scalar_one()
        connection.execute(
            insert(permit_monitoring).values(
                permit_id=permit_id,
                outlet_id=outlet_id,
                parameter_code="a34013",
                frequency="1次/周",
            )
        )
    running = {"running": "yes", "load_percent": 85}
    made = {
        "a": _entry(engine, "production", "2024-03-02 08:00", running, facility="MF0001"),
        "b": _entry(engine, "production", "2024-03-02 20:00", running, facility="MF0001"),
        "c": _entry(engine, "production", "2024-03-03 08:00", running, facility="MF0001"),
        "e": _entry(engine, "production", "2024-03-31 23:30", running, facility="MF0001"),
        "f": _entry(engine, "production", "2024-04-01 00:30", running, facility="MF0001"),
        "t": _entry(engine, "treatment", "2024-03-05 09:00", {"running": "yes"}, facility="TA001"),
        "basic": _entry(engine, "basic", "2024-03-01 09:00", {"description": "基本信息未变"}),
        "other": _entry(engine, "other", "2024-03-06 09:00", {"description": "危废转移"}),
        "event": _entry(
            engine,
            "production",
            "2024-03-10 02:00",
            {
                "ended_at": "2024-03-10 06:00",
                "reason": "停电",
                "measures": "停炉",
                "reported": "是",
            },
            facility="MF0001",
            condition="abnormal",
        ),
    }
    for name, at in (
        ("m1", "2024-03-02 10:00"),
        ("m2", "2024-03-03 15:00"),
        ("m3", "2024-03-12 10:00"),
    ):
        made[name] = _entry(
            engine,
            "monitoring",
            at,
            {"outlet_code": "DA001", "parameter_code": "a34013", "value": 2.1, "unit": "mg/m³"},
        )
    # Entry c was the wrong day: corrected by a new entry, c itself stays as it was.
    made["d"] = _entry(
        engine,
        "production",
        "2024-03-04 08:00",
        running,
        facility="MF0001",
        corrects=made["c"]["id"],
    )
    return made


def test_entries_are_in_beijing_time_and_corrections_append(
    engine: Engine, kept: dict[str, dict]
) -> None:
    assert kept["e"]["at"] == "2024-03-31 23:30"  # stored as 15:30 UTC, shown in Beijing time
    listed = {
        e["id"]: e for e in ledger.list_entries(engine, PERMIT, first=MARCH[0], last=MARCH[1])
    }
    assert kept["f"]["id"] not in listed  # 2024-04-01 00:30 Beijing is April's
    assert kept["e"]["id"] in listed  # 2024-03-31 23:30 Beijing is March's
    corrected = listed[kept["c"]["id"]]
    assert corrected["corrected_by"] == kept["d"]["id"] and corrected["at"] == "2024-03-03 08:00"
    assert listed[kept["d"]["id"]]["corrects_id"] == kept["c"]["id"]
    with pytest.raises(ledger.LedgerError, match=f"already corrected by entry {kept['d']['id']}"):
        _entry(
            engine,
            "production",
            "2024-03-05 08:00",
            {"running": "yes"},
            facility="MF0001",
            corrects=kept["c"]["id"],
        )
    with pytest.raises(ledger.LedgerError, match="is a basic record, not production"):
        _entry(
            engine,
            "production",
            "2024-03-05 08:00",
            {"running": "yes"},
            facility="MF0001",
            corrects=kept["basic"]["id"],
        )
    with engine.connect() as connection:
        actions = connection.execute(
            select(AuditEntry.action, func.count())
            .where(AuditEntry.entity == "ledger_entries")
            .group_by(AuditEntry.action)
        ).all()
    # 13 entries appended, none changed
    assert {row[0]: row[1] for row in actions} == {"create": 12, "correct": 1}


def test_writes_are_checked_and_an_enterprise_writes_only_its_own(
    engine: Engine, kept: dict[str, dict]
) -> None:
    with pytest.raises(ledger.NotFound, match=f"no permit {PERMIT}"):
        ledger.add_entry(
            engine,
            PERMIT,
            kind="basic",
            at="2024-03-01 08:00",
            values={"description": "x"},
            operator="李",
            actor="hd",
            enterprise_id=2,
        )
    cases: list[tuple[dict[str, Any], str]] = [
        ({"facility": None}, "facility: a production record names its production facility"),
        ({"facility": "TA001"}, "facility: TA001 is a treatment facility, not production"),
        ({"facility": "MF9"}, f"facility: permit {PERMIT} has no facility MF9"),
        ({"facility": "MF0001", "at": "03/01/2024"}, "at: '03/01/2024' is not a time"),
        ({"facility": "MF0001", "at": "2099-01-01 00:00"}, "at: 2099-01-01 00:00 is in the future"),
        ({"facility": "MF0001", "operator": " "}, "operator: required"),
    ]
    for extra, message in cases:
        arguments: dict[str, Any] = {"at": "2024-03-01 08:00", "operator": "张工", **extra}
        with pytest.raises(ledger.LedgerError, match=message):
            ledger.add_entry(
                engine,
                PERMIT,
                kind="production",
                values={"running": True},
                actor="jx",
                enterprise_id=1,
                **arguments,
            )
    bad_outlet = {"outlet_code": "DW009", "parameter_code": "a34013", "value": 1, "unit": "mg/m³"}
    with pytest.raises(
        ledger.LedgerError, match=r"values\.outlet_code: permit .* has no outlet DW009"
    ):
        _entry(engine, "monitoring", "2024-03-01 08:00", bad_outlet)
    with pytest.raises(ledger.LedgerError, match=r"code: permit .* already has a facility MF0001"):
        ledger.add_facility(
            engine, PERMIT, code="MF0001", name="x", kind="production", actor="jx", enterprise_id=1
        )


def test_the_report_counts_the_ledger_against_hj944(engine: Engine, kept: dict[str, dict]) -> None:
    with engine.connect() as connection:
        built = reports.build(connection, PERMIT, "monthly", *MARCH)
    section = {row["kind"]: row for row in built["ledger"]}
    assert list(section) == ["basic", "production", "treatment", "monitoring", "other"]
    # Two boilers × 31 days; MF0001 holds 2, 4 (c corrected to d) and 31 March, MF0002 none.
    production = section["production"]
    assert (production["expected"], production["held"], production["missing"]) == (62, 3, 59)
    assert production["facilities"] == 2 and production["events"] == 1
    assert (section["treatment"]["expected"], section["treatment"]["held"]) == (31, 1)
    assert (section["basic"]["expected"], section["basic"]["held"]) == (1, 1)
    assert (section["other"]["expected"], section["other"]["held"]) == (None, 1)
    # Weekly particulates: March 2024 touches five Monday weeks (26 Feb-3 Mar … 25-31 Mar);
    # records on 2 and 3 March (the first week) and 12 March (the third): 2 of 5.
    (outlet,) = built["outlets"]
    particulates = {p["parameter_code"]: p for p in outlet["pollutants"]}["a34013"]
    assert particulates["self_monitoring"]["expected"] == 5
    assert particulates["self_monitoring"]["held"] == 2
    assert (section["monitoring"]["expected"], section["monitoring"]["held"]) == (5, 2)


def test_pollutants_carry_their_english_names(engine: Engine, points: dict[str, int]) -> None:
    with engine.connect() as connection:
        built = reports.build(connection, PERMIT, "monthly", *MARCH)
    names = {
        p["parameter_code"]: (p["name"], p["name_en"]) for p in built["outlets"][0]["pollutants"]
    }
    # HJ 212-2017 parameter table as the registry holds it
    assert names["a21002"] == ("氮氧化物", "Nitrogen oxides (NOx)")


def test_a_report_is_submitted_only_after_its_period(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    today = local_today()
    current = reports.generate(engine, PERMIT, "monthly", today, actor="jx")
    assert current["generated"]["partial"] is True
    with pytest.raises(reports.ReportError, match="is not over: submit the report after"):
        reports.submit(engine, tmp_path, current["id"], signature=PNG, name="s.png", actor="jx")
    past = reports.generate(engine, PERMIT, "monthly", dt.date(2024, 3, 15), actor="jx")
    assert past["generated"]["partial"] is False
    with engine.begin() as connection:  # as if generated while March was still running
        connection.execute(
            update(execution_reports)
            .where(execution_reports.c.id == past["id"])
            .values(generated={**past["generated"], "partial": True})
        )
    with pytest.raises(reports.ReportError, match="generate it again, then submit"):
        reports.submit(engine, tmp_path, past["id"], signature=PNG, name="s.png", actor="jx")
    again = reports.generate(engine, PERMIT, "monthly", dt.date(2024, 3, 15), actor="jx")
    done = reports.submit(engine, tmp_path, again["id"], signature=PNG, name="s.png", actor="jx")
    assert done["status"] == "submitted"
