"""One permit, end to end on both backends: a permit applied for and issued through the
API → its limits in force → a month of CEMS hourly data through the HJ 212 gateway over
TCP → the month's emissions and tax → a monthly execution report completed, signed,
submitted and accepted → the exchange with the tax authority: the export, a declaration
file from the tax side reconciled, and the export re-imported giving the same records.

The month is the one of ``tests/test_permits_tax.py`` (March 2024, 京西's outlet DA001:
SO2 3 / 5 mg/m³ on even / odd hours at 9.9 / 10.1 m³/s, hours 100-101 flagged F, hours
200-201 missing), whose SO2 mass (107.1144 kg) and tax (676.51 元) are computed by hand
in that file's docstring; here the values arrive as HJ 212 CN 2061 hourly uploads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits import exchange
from ecohub.permits.accounting import month_hours
from ecohub.protocol.hj212.encode import data_segment
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.registry.service import delete_entity

JINGXI = "91110106MA00DEM01H"
MN, PASSWORD = "88888880000001", "123456"  # the demo point P0001 at DA001
SERIES = (("a21026", 3.0, 5.0), ("a21002", 14.0, 16.0), ("a34013", 1.0, 3.0), ("a00000", 9.9, 10.1))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
BEIJING = dt.timezone(dt.timedelta(hours=8))


def _uploads() -> list[bytes]:
    frames = []
    for index, at in enumerate(month_hours(2024, 3)):
        if index in (200, 201):
            continue
        flag = "F" if index in (100, 101) else "N"
        local = at.astimezone(BEIJING)
        parts = [
            f"{code}-Avg={odd if index % 2 else even},{code}-Flag={flag}"
            for code, even, odd in SERIES
        ]
        cp = f"DataTime={local:%Y%m%d%H%M%S};" + ";".join(parts)
        segment = data_segment(
            qn=f"{local:%Y%m%d%H%M%S}000", st=31, cn=2061, pw=PASSWORD, mn=MN, flag=4, cp=cp
        )
        frames.append(frame_packet(segment))
    return frames


def _send_month(engine: Engine) -> int:
    async def scenario() -> int:
        gateway = HJ212Gateway(engine, idle_timeout=30)
        port = await gateway.start("127.0.0.1", 0)
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for frame in _uploads():
                writer.write(frame)
            await writer.drain()
            deadline = time.monotonic() + 60
            while gateway.stats.values_accepted < 742 * 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            writer.close()
        finally:
            await gateway.close()
        return gateway.stats.values_accepted

    accepted = asyncio.run(scenario())
    Pipeline(engine).flush_all_rollups()
    return accepted


def _application() -> dict:
    limits = [
        ("a34013", 5, None),
        ("a21026", 10, 1000),
        ("a21002", 30, None),
    ]
    return {
        "uscc": JINGXI,
        "kind": "new",
        "management_class": "key",
        "content": {
            "limits": [
                {
                    "outlet_code": "DA001",
                    "parameter_code": code,
                    "concentration_limit": limit,
                    "unit": "mg/m³",
                    "annual_mass_limit_kg": annual,
                }
                for code, limit, annual in limits
            ],
            "monitoring": [
                {"outlet_code": "DA001", "parameter_code": code, "frequency": "自动监测"}
                for code, _, _ in limits
            ],
        },
    }


def _declarations(path: Path) -> Path:
    """The tax side's declarations of March 2024: SO2 as computed, NOx 10 % lower."""
    lines = []
    for pollutant, quantity, tax in (
        ("二氧化硫", "107.11", "676.51"),
        ("氮氧化物", "100.00", "900.00"),
    ):
        record = {
            "uscc": JINGXI,
            "tax_source_no": "S001",
            "month": "2024-03",
            "outlet_name": "燃气锅炉烟囱",
            "category": "大气污染物",
            "pollutant": pollutant,
            "method": "自动监测",
            "quantity": quantity,
            "tax_payable": tax,
            "declared_on": "2024-04-10",
        }
        lines.append(
            json.dumps(
                {"format": "ecohub-envtax-exchange/1", "kind": "declaration", "record": record},
                ensure_ascii=False,
            )
        )
    lines.append("{not json")
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def test_one_permit_end_to_end(points: dict[str, int], engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session:
        delete_entity(session, "permits", f"{JINGXI}001P", "test")  # the demo's own permit
        keys = {
            "agency": issue_key(session, name="agency", role=Role.AGENCY, created_by="t"),
            "jingxi": issue_key(
                session, name="jingxi", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
            ),
        }
        session.commit()
    as_ = {name: {"Authorization": f"Bearer {key}"} for name, key in keys.items()}
    http = TestClient(create_app(engine))

    # 1. Applied for and issued through the API.
    made = http.post("/api/v1/permits/applications", json=_application(), headers=as_["jingxi"])
    assert made.status_code == 201, made.text
    url = f"/api/v1/permits/applications/{made.json()['id']}/decision"
    http.post(url, json={"status": "accepted", "on": "2024-02-01"}, headers=as_["agency"])
    issued = http.post(
        url, json={"status": "issued", "on": "2024-02-20"}, headers=as_["agency"]
    ).json()
    number = issued["permit_no"]
    assert number == f"{JINGXI}001P"

    # 2. A month of hourly data through the gateway.
    assert _send_month(engine) == 742 * 4

    # 3. Emissions and tax from what arrived.
    tax = http.get(f"/api/v1/permits/{JINGXI}/tax?month=2024-03", headers=as_["jingxi"]).json()
    (outlet,) = tax["outlets"]
    so2 = {row["parameter_code"]: row for row in outlet["accounting"]}["a21026"]
    assert so2["mass_kg"] == pytest.approx(107.1144, abs=1e-4)
    assert (so2["hours_measured"], so2["hours_substituted"], so2["hours_shutdown"]) == (740, 2, 2)
    assert {s["pollutant"]: s["tax"] for s in outlet["steps"]}["二氧化硫"] == 676.51

    # 4. The monthly execution report.
    report = http.post(
        "/api/v1/permits/reports",
        json={"permit_no": number, "kind": "monthly", "day": "2024-03-15"},
        headers=as_["jingxi"],
    ).json()
    assert report["due_on"] == "2024-04-15" and report["status"] == "draft"
    (generated,) = report["generated"]["outlets"]
    sulphur = {p["parameter_code"]: p for p in generated["pollutants"]}["a21026"]
    assert sulphur["mass_kg"] == pytest.approx(107.1144, abs=1e-4)
    assert sulphur["exceedance_hours"] == 0
    assert sulphur["self_monitoring"] == {
        "frequency": "自动监测",
        "expected": 744,
        "held": 742,
        "missing": 2,
        "ratio": round(742 / 744, 4),
    }
    assert sulphur["substituted"] == [
        {"from": "2024-03-09 08:00", "to": "2024-03-09 09:00", "hours": 2}
    ]
    rid = report["id"]
    assert (
        http.post(
            f"/api/v1/permits/reports/{rid}/submission",
            files={"file": ("s.png", PNG)},
            headers=as_["agency"],
        ).status_code
        == 403
    )
    completed = http.post(
        f"/api/v1/permits/reports/{rid}/completion",
        json={"texts": {"actual_emissions": "本月达标排放"}},
        headers=as_["jingxi"],
    )
    assert completed.json()["completed"]["texts"] == {"actual_emissions": "本月达标排放"}
    wrong = http.post(
        f"/api/v1/permits/reports/{rid}/completion",
        json={"texts": {"x": "y"}},
        headers=as_["jingxi"],
    )
    assert wrong.status_code == 409 and "no section x" in wrong.json()["detail"]
    submitted = http.post(
        f"/api/v1/permits/reports/{rid}/submission",
        files={"file": ("s.png", PNG)},
        headers=as_["jingxi"],
    )
    assert submitted.status_code == 200, submitted.text
    reviewed = http.post(
        f"/api/v1/permits/reports/{rid}/review", json={"accept": True}, headers=as_["agency"]
    )
    assert reviewed.json()["status"] == "accepted"

    # 5. The exchange: export, a declaration file reconciled, re-import.
    out = tmp_path / "out"
    manifest = exchange.export(
        engine, out, first=dt.date(2024, 3, 1), last=dt.date(2024, 3, 31), actor="t"
    )
    counts = {item["kind"]: item["records"] for item in manifest["files"]}
    assert counts["permit"] == 1  # the demo's other permits carry no management class
    (permit_line,) = (out / "permit.jsonl").read_text("utf-8").splitlines()
    assert json.loads(permit_line)["record"]["valid_from"] == "2024-02-20"
    imported = http.post(
        "/api/v1/permits/exchange/import",
        files={"file": ("d.jsonl", _declarations(tmp_path / "d.jsonl").read_bytes())},
        headers=as_["agency"],
    ).json()
    assert (imported["new"], imported["refused"]) == (2, 1) and "d.jsonl:3" in imported["errors"][0]
    found = http.get(
        f"/api/v1/permits/exchange/reconciliation?uscc={JINGXI}&month=2024-03",
        headers=as_["agency"],
    ).json()
    findings = {row["pollutant"]: row["finding"] for row in found["rows"]}
    assert findings == {"二氧化硫": "一致", "氮氧化物": "差异", "烟尘": "未申报"}
    again = exchange.import_file(engine, out / "permit.jsonl", actor="t")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)
    fresh = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(fresh)
    first = exchange.import_file(fresh, out / "permit.jsonl", actor="t")
    assert first.new == 1
    assert exchange.records(fresh, "permit") == exchange.records(engine, "permit")


def test_a_bad_exchange_file_is_named_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    header = ",".join(exchange.schema.csv_header("treasury"))
    good = f"{JINGXI},V001,2024-03-01,2024-03-31,676.51,2024-04-15,"
    lines = [
        header,
        good,
        f"{JINGXI},V002,2024-03-01,2024-03-31,abc,2024-04-15,",
        good.replace("V001", "V003") + ",extra",
    ]
    path = tmp_path / "treasury.csv"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    found = exchange.import_file(engine, path, actor="t")
    assert (found.new, found.refused) == (1, 2)
    assert "treasury.csv:3" in found.errors[0] and "amount" in found.errors[0]
    assert "treasury.csv:4" in found.errors[1] and "cells beyond the header" in found.errors[1]
    broken = tmp_path / "penalty.csv"
    broken.write_text(header.replace("voucher_no", "x") + "\n", "utf-8")
    with pytest.raises(exchange.ExchangeError, match=r"penalty\.csv: columns"):
        exchange.import_file(engine, broken, actor="t")
    gbk = tmp_path / "declaration.csv"
    gbk.write_bytes("纳税人".encode("gb18030"))
    with pytest.raises(exchange.ExchangeError, match="not UTF-8"):
        exchange.import_file(engine, gbk, actor="t")
    assert len(exchange.records(engine, "treasury")) == 1
