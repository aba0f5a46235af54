"""The complaints area's pure rules against the texts they implement: the handling
periods of 《信访工作条例》(2022) as the shipped table has them (第二十三条: 15 日 to tell
whether accepted; 第三十四条: 60 日 from acceptance, at most 30 more; 第三十五条 and
第三十六条: 30 日 to ask for 复查 and 复核, 30 日 to answer), counted as 民法典 第二百零一条
(the first day not counted) and 第二百零三条 (a last day on a rest day runs to the next
working day); routing by GB/T 2260 code; the key's encryption and the query codes."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest

from ecohub.complaints.rules import (
    Agency,
    deadlines,
    due_date,
    event_deadlines,
    parse_deadlines,
    route,
)
from ecohub.complaints.secrets import CODE_ALPHABET, KeyProblem, Keyring, keyring, new_code


def test_the_shipped_periods_are_the_regulations() -> None:
    table = deadlines()
    assert (table["accept"].days, table["accept"].counted_from) == (15, "received")
    complete = table["complete"]
    assert (complete.days, complete.extension_days, complete.counted_from) == (60, 30, "accepted")
    assert "第三十四条" in complete.citation and "不得超过30日" in complete.citation
    assert (table["review_request"].days, table["review"].days) == (30, 30)
    assert table["re_review_request"].counted_from == "review_replied"
    assert all(rule.day_kind == "calendar" for rule in table.values())


def test_due_dates_count_as_the_civil_code_says() -> None:
    table = deadlines()
    # Received Friday 2024-03-01: day 15 is Saturday 03-16, so the period ends Monday 03-18.
    assert due_date(table["accept"], dt.date(2024, 3, 1)) == dt.date(2024, 3, 18)
    # Accepted 2024-03-01: 60 days → Tuesday 2024-04-30; with the 30 days' extension
    # → Thursday 2024-05-30.
    assert due_date(table["complete"], dt.date(2024, 3, 1)) == dt.date(2024, 4, 30)
    assert due_date(table["complete"], dt.date(2024, 3, 1), 30) == dt.date(2024, 5, 30)
    with pytest.raises(ValueError, match="at most 30"):
        due_date(table["complete"], dt.date(2024, 3, 1), 31)
    # A public holiday passed in: 2024-10-01 to 07 (国庆); received 2024-09-16, day 15 is
    # Tuesday 10-01, a holiday: the period ends on Tuesday 10-08.
    holidays = {dt.date(2024, 10, day) for day in range(1, 8)}
    assert due_date(table["accept"], dt.date(2024, 9, 16), holidays=holidays) == dt.date(
        2024, 10, 8
    )


def test_event_deadlines_done_overdue_and_windows() -> None:
    dates = {
        "received": dt.date(2024, 3, 1),
        "accepted": dt.date(2024, 3, 5),
        "replied": None,
    }
    found = {item["rule"]: item for item in event_deadlines(dates, dt.date(2024, 5, 10))}
    assert found["accept"]["done_on"] == "2024-03-05" and not found["accept"]["late"]
    complete = found["complete"]  # 03-05 + 60 = 05-04, a Saturday → Monday 05-06
    assert complete["due"] == "2024-05-06" and complete["overdue"] and complete["days_over"] == 4
    extended = event_deadlines(dates, dt.date(2024, 5, 10), extension_days=10)
    assert next(i for i in extended if i["rule"] == "complete")["overdue"] is False
    replied = {**dates, "replied": dt.date(2024, 4, 1)}
    window = {i["rule"]: i for i in event_deadlines(replied, dt.date(2024, 4, 2))}
    assert window["review_request"]["window"] and window["review_request"]["open"]
    assert window["review_request"]["due"] == "2024-05-01" and not window["complete"]["overdue"]
    assert "review" not in window  # no review asked for


def test_a_bad_table_names_its_line() -> None:
    text = (
        "# note\n"
        "rule,name_zh,name_en,counted_from,days,day_kind,extension_days,citation\n"
        "accept,受理,Accept,received,15,calendar,0,x\n"
        "complete,办结,Complete,accepted,sixty,calendar,30,x\n"
    )
    with pytest.raises(ValueError, match=r"local.csv line 4: .*sixty"):
        parse_deadlines(text, "local.csv")
    with pytest.raises(ValueError, match="'complete' is missing"):
        parse_deadlines("\n".join(text.splitlines()[:3]), "local.csv")


def test_routing_by_region_and_medium() -> None:
    agencies = [
        Agency("HEB", "130000", ()),
        Agency("SJZ", "130100", ()),
        Agency("SJZ-NOISE", "130100", ("noise",)),
        Agency("CA", "130102", ("water",)),
    ]
    assert route(agencies, "130102", "water").code == "CA"  # type: ignore[union-attr]
    assert route(agencies, "130102", "noise").code == "SJZ-NOISE"  # type: ignore[union-attr]
    assert route(agencies, "130102", "air").code == "SJZ"  # type: ignore[union-attr]
    assert route(agencies, "130200", "air").code == "HEB"  # type: ignore[union-attr]
    assert route(agencies, "110000", "air") is None and route(agencies, None, "air") is None


def test_contacts_are_encrypted_and_codes_digested(tmp_path: Path) -> None:
    keys = keyring(None, tmp_path)
    path = tmp_path / "complaints.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keyring(None, tmp_path).decrypt(keys.encrypt("王五 13700000000")) == "王五 13700000000"
    other = Keyring.from_key(b"A" * 43 + b"=")
    with pytest.raises(KeyProblem, match="another key"):
        other.decrypt(keys.encrypt("x"))
    with pytest.raises(KeyProblem, match="32 bytes"):
        Keyring.from_key("short")
    code = new_code()
    assert len(code) == 8 and set(code) <= set(CODE_ALPHABET) and not set("01IO") & set(code)
    digest = keys.code_digest("202612030000001", code)
    assert keys.code_matches("202612030000001", code.lower(), digest)
    assert not keys.code_matches("202612030000002", code, digest)
    assert not other.code_matches("202612030000001", code, digest)
    assert (
        keys.derived_code("portal:abc")
        == keys.derived_code("portal:abc")
        != keys.derived_code("portal:abd")
    )
