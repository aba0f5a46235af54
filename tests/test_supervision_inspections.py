"""Inspections in the field over the API, on both backends: a record submitted twice
through a flaky connection is stored once; the same client id with other contents is
refused; attachments are checked by their bytes (a text file named .png is refused, an
oversize file too), stored once under their SHA-256 and read back byte for byte; only
the agency's callers may submit or read."""

from __future__ import annotations

import hashlib
import struct
import warnings
import zlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.registry.models import AuditEntry
from ecohub.supervision import inspections, service
from ecohub.supervision.tables import inspections as inspection_rows

warnings.filterwarnings("ignore", category=DeprecationWarning)
HUDONG = "91310115MA1HDEM025"
RECORD = {
    "uscc": HUDONG,
    "inspectors": ["SH-02", "SH-03"],
    "inspected_at": "2024-03-05T10:20:00+08:00",
    "longitude": 121.7102,
    "latitude": 31.2705,
    "accuracy_m": 8.5,
    "checks": [
        {"item": "在线监测设备运行正常", "result": "ok"},
        {"item": "RTO焚烧炉运行记录完整", "result": "problem", "note": "3月1日至4日无记录"},
        {"item": "危险废物贮存规范", "result": "na"},
    ],
    "findings": "焚烧炉运行台账缺失4天，责令补齐。",
}


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid PNG image (signature, IHDR, IDAT, IEND; PNG specification §5)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture
def api(engine: Engine, points: dict[str, int]) -> tuple[TestClient, dict[str, str]]:
    for code in ("SH-02", "SH-03"):
        service.set_inspector(engine, code, f"检查员{code}", "310000", "t")
    with Session(engine) as session:
        keys = {
            role.value: issue_key(session, name=role.value, role=role, created_by="t")
            for role in (Role.AGENCY, Role.PUBLIC)
        }
        keys["hudong"] = issue_key(
            session, name="hudong", role=Role.ENTERPRISE, created_by="t", enterprise_id=2
        )
        session.commit()
    return TestClient(create_app(engine)), keys


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_submit_twice_is_stored_once(
    api: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    client, keys = api
    agency = _h(keys["agency"])
    url = "/api/v1/supervision/inspections/phone-7f3a-0001"
    first = client.put(url, json=RECORD, headers=agency)
    assert first.status_code == 201, first.text
    again = client.put(url, json=RECORD, headers=agency)  # the answer was lost: resubmitted
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    stored = first.json()
    assert stored["problems"] == 1 and stored["inspector_codes"] == ["SH-02", "SH-03"]
    assert stored["latitude"] == pytest.approx(31.2705)
    other = client.put(url, json={**RECORD, "findings": "另一次检查"}, headers=agency)
    assert other.status_code == 409 and "different inspection" in other.json()["detail"]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(inspection_rows)).scalar() == 1
        audited = connection.execute(
            select(func.count()).where(AuditEntry.entity == "inspection")
        ).scalar()
    assert audited == 1
    unknown = client.put(
        "/api/v1/supervision/inspections/phone-7f3a-0002",
        json={**RECORD, "inspectors": ["SH-09"]},
        headers=agency,
    )
    assert unknown.status_code == 409 and "SH-09" in unknown.json()["detail"]
    bad = client.put(
        "/api/v1/supervision/inspections/phone-7f3a-0003",
        json={**RECORD, "checks": [{"item": "x", "result": "maybe"}]},
        headers=agency,
    )
    assert bad.status_code == 422
    # Found by the schema test's fuzzing: a time with no UTC instant is refused, not a 500.
    ancient = client.put(
        "/api/v1/supervision/inspections/phone-7f3a-0004",
        json={**RECORD, "inspected_at": "0001-01-01T00:00:00+00:01"},
        headers=agency,
    )
    assert ancient.status_code == 409 and "too long ago" in ancient.json()["detail"]
    for key in (keys["public"], keys["hudong"]):
        assert client.put(url, json=RECORD, headers=_h(key)).status_code == 403
        assert client.get("/api/v1/supervision/inspections", headers=_h(key)).status_code == 403


def test_attachments_are_checked_hashed_and_kept_once(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, keys = api
    agency = _h(keys["agency"])
    made = client.put("/api/v1/supervision/inspections/tablet-0001", json=RECORD, headers=agency)
    inspection_id = made.json()["id"]
    url = f"/api/v1/supervision/inspections/{inspection_id}/attachments"
    image = png(4, 3)
    photo = client.post(
        url,
        headers=agency,
        data={"kind": "photo"},
        files={"file": ("现场.png", image, "image/png")},
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["sha256"] == hashlib.sha256(image).hexdigest()
    again = client.post(
        url,
        headers=agency,
        data={"kind": "photo"},
        files={"file": ("retry.png", image, "image/png")},
    )
    assert again.status_code == 201 and again.json()["sha256"] == photo.json()["sha256"]
    fake = client.post(
        url,
        headers=agency,
        data={"kind": "signature"},
        files={"file": ("sign.png", b"<script>alert(1)</script>", "image/png")},
    )
    assert fake.status_code == 422 and "none of these" in fake.json()["detail"]
    pdf_as_photo = client.post(
        url,
        headers=agency,
        data={"kind": "photo"},
        files={"file": ("a.pdf", b"%PDF-1.7\n%...", "application/pdf")},
    )
    assert pdf_as_photo.status_code == 422
    huge = b"\x89PNG\r\n\x1a\n" + b"\x00" * inspections.MAX_ATTACHMENT_BYTES
    too_big = client.post(
        url, headers=agency, data={"kind": "photo"}, files={"file": ("big.png", huge, "image/png")}
    )
    assert too_big.status_code == 413
    shown = client.get(f"/api/v1/supervision/inspections/{inspection_id}", headers=agency).json()
    assert [(a["kind"], a["filename"]) for a in shown["attachments"]] == [("photo", "现场.png")]
    read = client.get(f"{url}/{photo.json()['sha256']}", headers=agency)
    assert read.status_code == 200 and read.content == image
    assert read.headers["content-type"] == "image/png"
    missing = client.get(f"{url}/{'0' * 64}", headers=agency)
    assert missing.status_code == 404


def test_an_inspector_sees_and_files_only_their_own(
    api: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    from ecohub.supervision.draw import DrawRules

    client, keys = api
    with Session(engine) as session:
        # An inspector's account is named by their badge code.
        own = issue_key(session, name="SH-02", role=Role.INSPECTOR, created_by="t")
        session.commit()
    service.set_inspector(engine, "SH-04", "检查员SH-04", "310000", "t")
    service.set_object(engine, HUDONG, "key", "t")
    drawn = service.run_draw(engine, "季度抽查", DrawRules({"key": 1.0}), "t")
    team = drawn["picks"][0]["inspectors"]
    mine = client.get("/api/v1/supervision/assignments", headers=_h(own)).json()
    assert [a["uscc"] for a in mine] == ([HUDONG] if "SH-02" in team else [])
    everyone = client.get("/api/v1/supervision/assignments", headers=_h(keys["agency"])).json()
    assert [a["uscc"] for a in everyone] == [HUDONG]
    # Not the directories: names of colleagues and the draws are the agency's.
    assert client.get("/api/v1/supervision/inspectors", headers=_h(own)).status_code == 403
    assert client.get("/api/v1/supervision/draws", headers=_h(own)).status_code == 403
    # Files a record naming themselves; not one naming only others.
    filed = client.put(
        "/api/v1/supervision/inspections/phone-sh02-0001", json=RECORD, headers=_h(own)
    )
    assert filed.status_code == 201, filed.text
    others = {**RECORD, "inspectors": ["SH-03", "SH-04"]}
    refused = client.put(
        "/api/v1/supervision/inspections/phone-sh02-0002", json=others, headers=_h(own)
    )
    assert refused.status_code == 403
    theirs = client.put(
        "/api/v1/supervision/inspections/agency-0003", json=others, headers=_h(keys["agency"])
    )
    assert theirs.status_code == 201
    listed = client.get("/api/v1/supervision/inspections", headers=_h(own)).json()
    assert [item["id"] for item in listed] == [filed.json()["id"]]
    hidden = client.get(f"/api/v1/supervision/inspections/{theirs.json()['id']}", headers=_h(own))
    assert hidden.status_code == 404
    upload = client.post(
        f"/api/v1/supervision/inspections/{theirs.json()['id']}/attachments",
        headers=_h(own),
        data={"kind": "photo"},
        files={"file": ("a.png", png(), "image/png")},
    )
    assert upload.status_code == 404
    assert (
        len(client.get("/api/v1/supervision/inspections", headers=_h(keys["agency"])).json()) == 2
    )
