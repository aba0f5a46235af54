"""The exchange round trip on both backends: records of all eight kinds exported for a
period as JSON lines and as CSV, re-imported into the same store (nothing changes, every
record reported unchanged, the files written again byte for byte) and into an empty store
(the same records); the export holds the period's records only; a CSV file with a bad row
refused whole when imported strictly.

The records are the examples of ``tests/test_permits_exchange_schema.py`` with, per kind,
records inside and outside the period 2024-01-01..2024-06-30 placed by hand:

==================  =========================================  ===========================
kind                in the period                              outside
==================  =========================================  ===========================
permit              v2 2023-06-01..2028-05-31                  v1 2018-06-01..2023-05-31
monitoring          sampled 2024-03-11, 2024-06-30 (last day)  sampled 2024-07-01
penalty             decided 2024-04-02                         decided 2023-12-31
review_request      sent 2024-04-20                            sent 2023-11-02
review_opinion      replied 2024-05-06                         —
tax_source          2024-01-01.. (open)                        ..2023-12-31; 2024-07-01..
declaration         2024-03, 2024-06                           2023-12
treasury            2024-01..03; 2023-12-01..2024-01-31        2023-10-01..2023-12-31
==================  =========================================  ===========================

So 11 of the 19 records are exported: 1, 2, 1, 1, 1, 1, 2, 2 in the order above.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.permits import exchange
from ecohub.permits import exchange_schema as xs
from ecohub.permits.exchange_schema import Kind
from ecohub.permits.tables import exchange_records
from tests.test_permits_exchange_schema import EXAMPLES, PERMIT, USCC

FIRST, LAST = dt.date(2024, 1, 1), dt.date(2024, 6, 30)
EXPECTED = {
    "permit": 1,
    "supervisory_monitoring": 2,
    "penalty": 1,
    "review_request": 1,
    "review_opinion": 1,
    "tax_source": 1,
    "declaration": 2,
    "treasury": 2,
}
ALL_KINDS = [kind.value for kind in Kind]


def _records() -> list[tuple[Kind, dict[str, Any]]]:
    """Every kind in and out of the period, with text a CSV file must quote."""
    e = EXAMPLES
    return [
        (Kind.PERMIT, e[Kind.PERMIT]),
        (
            Kind.PERMIT,
            dict(
                e[Kind.PERMIT],
                version="1",
                issued_on="2018-05-20",
                valid_from="2018-06-01",
                valid_to="2023-05-31",
            ),
        ),
        (Kind.MONITORING, e[Kind.MONITORING]),
        (
            Kind.MONITORING,
            dict(
                e[Kind.MONITORING],
                pollutant="氮氧化物",
                sampled_on="2024-06-30",
                permit_no=PERMIT,
                concentration="0.0050",
                flow="123456.7",
            ),
        ),
        (
            Kind.MONITORING,
            dict(e[Kind.MONITORING], report_no="JC-2024-0701", sampled_on="2024-07-01"),
        ),
        (Kind.PENALTY, dict(e[Kind.PENALTY], violation='超标排放, "二氧化硫"\n两次')),
        (
            Kind.PENALTY,
            dict(
                e[Kind.PENALTY],
                decision_no="唐环罚〔2023〕99号",
                decided_on="2023-12-31",
                violation_from="2023-11-01",
                violation_to="2023-11-30",
            ),
        ),
        (Kind.REVIEW_REQUEST, dict(e[Kind.REVIEW_REQUEST], note="=疑点 1, 申报量偏低")),
        (
            Kind.REVIEW_REQUEST,
            dict(
                e[Kind.REVIEW_REQUEST],
                request_no="FH-2023-031",
                period_from="2023-07-01",
                period_to="2023-09-30",
                sent_on="2023-11-02",
            ),
        ),
        (Kind.REVIEW_OPINION, e[Kind.REVIEW_OPINION]),
        (Kind.TAX_SOURCE, e[Kind.TAX_SOURCE]),
        (
            Kind.TAX_SOURCE,
            dict(
                e[Kind.TAX_SOURCE],
                tax_source_no="S13020000000",
                valid_from="2021-01-01",
                valid_to="2023-12-31",
            ),
        ),
        (
            Kind.TAX_SOURCE,
            dict(e[Kind.TAX_SOURCE], tax_source_no="S13020000002", valid_from="2024-07-01"),
        ),
        (Kind.DECLARATION, e[Kind.DECLARATION]),
        (Kind.DECLARATION, dict(e[Kind.DECLARATION], month="2024-06", declared_on="2024-07-10")),
        (Kind.DECLARATION, dict(e[Kind.DECLARATION], month="2023-12", declared_on="2024-01-12")),
        (Kind.TREASURY, e[Kind.TREASURY]),
        (
            Kind.TREASURY,
            dict(
                e[Kind.TREASURY],
                voucher_no="313020023000000999",
                period_from="2023-10-01",
                period_to="2023-12-31",
            ),
        ),
        (
            Kind.TREASURY,
            dict(
                e[Kind.TREASURY],
                voucher_no="313020024000000001",
                period_from="2023-12-01",
                period_to="2024-01-31",
                arrears="12.50",
            ),
        ),
    ]


def _load(engine: Engine, folder: Path) -> None:
    lines = [
        json.dumps({"format": xs.FORMAT_VERSION, "kind": kind.value, "record": record})
        for kind, record in _records()
    ]
    path = folder / "input.jsonl"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    report = exchange.import_file(engine, path, actor="t")
    assert (report.new, report.refused) == (19, 0), report.errors


def _rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(select(exchange_records).order_by(exchange_records.c.id))
        ]


def _export(engine: Engine, folder: Path, fmt: str) -> dict[str, Any]:
    return exchange.export(
        engine, folder, first=FIRST, last=LAST, kinds=ALL_KINDS, fmt=fmt, actor="t"
    )


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_all_eight_kinds_round_trip(engine: Engine, tmp_path: Path, fmt: str) -> None:
    _load(engine, tmp_path)
    manifest = _export(engine, tmp_path / "one", fmt)
    assert {item["kind"]: item["records"] for item in manifest["files"]} == EXPECTED
    assert manifest["period"] == {"first": "2024-01-01", "last": "2024-06-30"}
    assert (tmp_path / "one" / "schema.json").is_file()
    stored = {kind: exchange.records(engine, kind) for kind in ALL_KINDS}
    in_period = {
        kind: [r for r in found if xs.in_period(kind, r, FIRST, LAST)]
        for kind, found in stored.items()
    }
    assert {kind: len(found) for kind, found in in_period.items()} == EXPECTED
    files = {item["kind"]: tmp_path / "one" / item["file"] for item in manifest["files"]}
    sha = {item["kind"]: item["sha256"] for item in manifest["files"]}

    # Into the same store: every record unchanged, the rows untouched, the files the same.
    rows = _rows(engine)
    for kind, path in files.items():
        again = exchange.import_file(engine, path, actor="t")
        assert (again.new, again.updated, again.unchanged, again.refused) == (
            0,
            0,
            EXPECTED[kind],
            0,
        ), (kind, again.errors)
    assert _rows(engine) == rows
    second = _export(engine, tmp_path / "two", fmt)
    assert {item["kind"]: item["sha256"] for item in second["files"]} == sha

    # Into an empty store: the period's records, equal, and the same files written again.
    with engine.begin() as connection:
        connection.execute(delete(exchange_records))
    for kind, path in files.items():
        first = exchange.import_file(engine, path, actor="t")
        assert (first.new, first.refused) == (EXPECTED[kind], 0), (kind, first.errors)
    assert {kind: exchange.records(engine, kind) for kind in ALL_KINDS} == in_period
    third = _export(engine, tmp_path / "three", fmt)
    assert {item["kind"]: item["sha256"] for item in third["files"]} == sha


def test_the_export_holds_its_period_only(engine: Engine, tmp_path: Path) -> None:
    _load(engine, tmp_path)
    _export(engine, tmp_path / "out", "jsonl")

    def exported(kind: str, field: str) -> list[str]:
        text = (tmp_path / "out" / f"{kind}.jsonl").read_text("utf-8")
        return sorted(json.loads(line)["record"][field] for line in text.splitlines())

    assert exported("permit", "version") == [2]
    assert exported("supervisory_monitoring", "sampled_on") == ["2024-03-11", "2024-06-30"]
    assert exported("penalty", "decided_on") == ["2024-04-02"]
    assert exported("review_request", "sent_on") == ["2024-04-20"]
    assert exported("tax_source", "tax_source_no") == ["S13020000001"]
    assert exported("declaration", "month") == ["2024-03", "2024-06"]
    assert exported("treasury", "period_from") == ["2023-12-01", "2024-01-01"]
    # One day, 2023-12-31: permit v2 (from 2023-06-01), the penalty of that day, the tax
    # source ending that day, the declaration of 2023-12, both treasury records covering it.
    day = dt.date(2023, 12, 31)
    manifest = exchange.export(
        engine, tmp_path / "day", first=day, last=day, kinds=ALL_KINDS, actor="t"
    )
    counts = {item["kind"]: item["records"] for item in manifest["files"]}
    assert counts == {
        "permit": 1,
        "supervisory_monitoring": 0,
        "penalty": 1,
        "review_request": 0,
        "review_opinion": 0,
        "tax_source": 1,
        "declaration": 1,
        "treasury": 2,
    }


def _treasury_csv(path: Path, amount: str) -> Path:
    header = ",".join(xs.csv_header("treasury"))
    lines = [
        header,
        f"{USCC},V001,2024-03-01,2024-03-31,{amount},2024-04-15,",
        f"{USCC},V002,2024-03-01,2024-03-31,676.51,2024-04-15,",
        f"{USCC},V003,2024-03-01,2024-03-31,abc,2024-04-15,",
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_a_csv_with_a_bad_row_is_refused_whole(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "treasury.csv"
    first = exchange.import_file(engine, _treasury_csv(path, "100.00"), actor="t")
    assert (first.new, first.refused) == (2, 1)
    assert first.errors == [
        "treasury.csv:4: treasury (入库): field 'amount' is not a number",
    ]
    before = _rows(engine)
    # V001 would be updated, but the file has a bad row: nothing of it is written.
    with pytest.raises(
        exchange.ExchangeError, match=r"^treasury\.csv: 1 bad line.*treasury\.csv:4: .*'amount'"
    ):
        exchange.import_file(engine, _treasury_csv(path, "200.00"), actor="t", strict=True)
    assert _rows(engine) == before
    assert [r["amount"] for r in exchange.records(engine, "treasury")] == ["100.00", "676.51"]

    with Session(engine) as session:
        key = issue_key(session, name="agency", role=Role.AGENCY, created_by="t")
        session.commit()
    http = TestClient(create_app(engine))
    refused = http.post(
        "/api/v1/permits/exchange/import?strict=true",
        files={"file": ("treasury.csv", path.read_bytes())},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 422 and "treasury.csv:4" in refused.json()["detail"]
    assert _rows(engine) == before
