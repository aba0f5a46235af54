"""The exchange on both backends: the JSON Schema served by the API and written beside each
export is :func:`exchange_docs.schema_document` and validates each kind's example; a
permit's ``issued_on`` is the Beijing day of its decision; a review opinion is due 15 days
after the request's ``sent_on``, however often the request is re-imported.

By hand: a decision at 2024-02-19 17:30 UTC is 2024-02-20 01:30 in Beijing (UTC+8), so the
permit's 核发日期 is 2024-02-20 where the UTC date is the 19th. A request sent 2024-04-20 is
due 15 days later, 2024-05-05 (第二十条, the day of receipt not counted: 21 April is day 1,
5 May day 15); answered 2024-05-06 it is late.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.permits import exchange, exchange_docs, lifecycle, reconcile
from ecohub.permits import exchange_schema as xs
from ecohub.permits.exchange_schema import Kind
from ecohub.permits.tables import permit_applications
from tests.test_permits_exchange_schema import EXAMPLES

JINGXI = "91110106MA00DEM01H"
URL = "/api/v1/permits/exchange/schema"


@pytest.fixture
def http(engine: Engine) -> tuple[TestClient, dict[str, dict[str, str]]]:
    with Session(engine) as session:
        keys = {
            role.value: issue_key(session, name=role.value, role=role, created_by="t")
            for role in (Role.AGENCY, Role.PUBLIC)
        }
        session.commit()
    headers = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    return TestClient(create_app(engine)), headers


def test_the_served_schema_is_the_format_and_validates_each_kind(
    http: tuple[TestClient, dict[str, dict[str, str]]], engine: Engine, tmp_path: Path
) -> None:
    client, as_ = http
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=as_["public"]).status_code == 403
    served = client.get(URL, headers=as_["agency"])
    assert served.status_code == 200
    document = served.json()
    assert document == exchange_docs.schema_document()
    validator = jsonschema_rs.Draft202012Validator(document)
    for kind in Kind:
        one = client.get(f"{URL}/{kind.value}", headers=as_["agency"]).json()
        assert one == xs.json_schema(kind) == document["$defs"][kind.value]
        record = xs.to_json(kind, EXAMPLES[kind])
        assert jsonschema_rs.Draft202012Validator(one).is_valid(record), kind
        line = {"format": xs.FORMAT_VERSION, "kind": kind.value, "record": record}
        assert validator.is_valid(line), kind
        missing = next(iter(one["required"]))
        broken = {k: v for k, v in record.items() if k != missing}
        assert not validator.is_valid(dict(line, record=broken)), kind
    assert client.get(f"{URL}/invoice", headers=as_["agency"]).status_code == 422

    manifest = exchange.export(
        engine, tmp_path, first=dt.date(2024, 3, 1), last=dt.date(2024, 3, 31), actor="t"
    )
    written = (tmp_path / "schema.json").read_bytes()
    assert json.loads(written) == document
    assert manifest["schema"]["file"] == "schema.json"
    assert manifest["schema"]["sha256"] == hashlib.sha256(written).hexdigest()
    saved = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert saved["schema"] == manifest["schema"]


def test_issued_on_is_the_beijing_day_of_the_decision(
    points: dict[str, int], engine: Engine, tmp_path: Path
) -> None:
    content = {
        "outlets": [{"code": "DA002", "name": "2号锅炉排气筒", "kind": "gas"}],
        "limits": [
            {
                "outlet_code": "DA002",
                "parameter_code": "a21026",
                "concentration_limit": 35,
                "unit": "mg/m³",
            }
        ],
        "monitoring": [
            {"outlet_code": "DA002", "parameter_code": "a21026", "frequency": "automatic"}
        ],
    }
    made = lifecycle.apply(
        engine, uscc=JINGXI, kind="new", management_class="key", content=content, actor="t"
    )
    day = dt.date(2024, 2, 20)
    for step in ("accepted", "issued"):
        lifecycle.decide(engine, made["id"], step, actor="t", by="agency", on=day)
    decided = dt.datetime(2024, 2, 19, 17, 30, tzinfo=dt.UTC)
    with engine.begin() as connection:
        connection.execute(
            update(permit_applications)
            .where(permit_applications.c.id == made["id"])
            .values(decided_at=decided)
        )
    exchange.export(engine, tmp_path, first=day, last=day, kinds=["permit"], actor="t")
    lines = (tmp_path / "permit.jsonl").read_text("utf-8").splitlines()
    issued = [
        json.loads(line)["record"]
        for line in lines
        if json.loads(line)["record"]["valid_from"] == "2024-02-20"
    ]
    assert [record["issued_on"] for record in issued] == ["2024-02-20"]


def _request(path: Path, note: str) -> Path:
    line = {
        "format": xs.FORMAT_VERSION,
        "kind": "review_request",
        "record": dict(EXAMPLES[Kind.REVIEW_REQUEST], note=note),
    }
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", "utf-8")
    return path


def test_the_review_deadline_counts_from_sent_on(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    assert exchange.import_file(engine, _request(path, "首次"), actor="t").new == 1
    first = reconcile.answer_review(
        engine,
        "FH-2024-007",
        conclusion="申报属实",
        opinion="与自动监测数据一致",
        actor="t",
        on=dt.date(2024, 5, 5),
    )
    assert (first["received_on"], first["due"], first["late"]) == (
        "2024-04-20",
        "2024-05-05",
        False,
    )
    # The tax side sends the request again with another note: the record is updated (its
    # updated_at is now), the deadline stays where 第二十条 puts it.
    assert exchange.import_file(engine, _request(path, "补充说明"), actor="t").updated == 1
    second = reconcile.answer_review(
        engine,
        "FH-2024-007",
        conclusion="调整排放量",
        opinion="按自动监测数据核定",
        actor="t",
        reviewed_quantity=None,
        on=dt.date(2024, 5, 6),
    )
    assert (second["line"], second["received_on"], second["due"], second["late"]) == (
        2,
        "2024-04-20",
        "2024-05-05",
        True,
    )
    assert [r["received_on"] for r in exchange.records(engine, "review_opinion")] == [
        "2024-04-20",
        "2024-04-20",
    ]
