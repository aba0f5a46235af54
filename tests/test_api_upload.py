"""The HTTP bulk-upload door: authentication, per-row results, quarantine, idempotence."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key, revoke_key
from ecohub.app import create_app
from ecohub.db.quarantine import quarantine
from ecohub.registry.models import AuditEntry, MonitoringPoint, Outlet
from ecohub.timeseries.tables import observations

TS = "2024-01-15T08:00:00+08:00"


@pytest.fixture
def setup(engine: Engine, points: dict[str, int]):  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        owner = {
            code: enterprise
            for code, enterprise in session.execute(
                select(MonitoringPoint.code, Outlet.enterprise_id).join(
                    Outlet, MonitoringPoint.outlet_id == Outlet.id
                )
            )
        }
        operator = issue_key(session, name="operator", role=Role.OPERATOR, created_by="test")
        enterprise = issue_key(
            session,
            name="plant",
            role=Role.ENTERPRISE,
            created_by="test",
            enterprise_id=owner["P0001"],
        )
        revoked = issue_key(session, name="old", role=Role.OPERATOR, created_by="test")
        revoke_key(session, revoked[3:11])
        session.commit()
    other = next(code for code, ent in owner.items() if ent != owner["P0001"])
    client = TestClient(create_app(engine))
    return client, {"operator": operator, "enterprise": enterprise, "revoked": revoked}, other


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar())


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_upload_needs_a_valid_key(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = setup
    body = json.dumps({"point": "1001A", "parameter": "a34004", "ts": TS, "value": 1})
    headers = {"Content-Type": "application/x-ndjson"}
    assert client.post("/api/v1/measurements", content=body, headers=headers).status_code == 401
    for key in ("ek_0000000000000000", keys["revoked"], "not-a-key"):
        response = client.post(
            "/api/v1/measurements", content=body, headers={**headers, **_auth(key)}
        )
        assert response.status_code == 401, key
    assert _count(engine) == 0


def test_json_lines_answer_per_row_and_quarantine_the_bad(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = setup
    lines = [
        json.dumps(
            {"point": "1001A", "parameter": "a34004", "interval": "hour", "ts": TS, "value": 35}
        ),
        "{broken",
        '{"point": "1001A", "parameter": "a34004", "ts": "2024-01-15T08:00:00", "value": 1}',
        json.dumps({"point": "GHOST", "parameter": "a34004", "ts": TS, "value": 1}),
        json.dumps(
            {"point": "1001A", "ts": TS, "interval": "hour", "values": {"a21026": 0.01, "02": 5}}
        ),
    ]
    response = client.post(
        "/api/v1/measurements",
        content="\n".join(lines),
        headers={"Content-Type": "application/x-ndjson", **_auth(keys["operator"])},
    )
    assert response.status_code == 200
    result = response.json()
    assert (result["accepted"], result["rejected"]) == (2, 3)
    statuses = [(row["row"], row["status"], row["reason_code"]) for row in result["rows"]]
    assert statuses == [
        (1, "accepted", None),
        (2, "rejected", "bad_json"),
        (3, "rejected", "bad_field"),
        (4, "rejected", "unknown_point"),
        (5, "accepted", None),
    ]
    assert "UTC offset" in result["rows"][2]["reason"]
    # The legacy code "02" (HJ/T 212-2005 SO2) is stored under a21026: one key, last wins.
    assert _count(engine) == 2
    with engine.connect() as connection:
        reasons = sorted(connection.execute(select(quarantine.c.reason_code)).scalars())
    assert reasons == ["bad_field", "bad_json", "unknown_point"]
    # The upload is audited under the key's name.
    with engine.connect() as connection:
        (entry,) = connection.execute(
            select(AuditEntry.actor, AuditEntry.after).where(AuditEntry.entity == "measurements")
        ).all()
    assert entry.actor.startswith("key:") and entry.after["accepted_rows"] == 2
    assert entry.after["rejected_rows"] == 3 and entry.after["values"] == 3
    # Sending the same upload again stores nothing new.
    client.post(
        "/api/v1/measurements",
        content=lines[0],
        headers={"Content-Type": "application/x-ndjson", **_auth(keys["operator"])},
    )
    assert _count(engine) == 2


def test_csv_upload(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = setup
    text = (
        "point,parameter,interval,ts,value,flag\n"
        f"1001A,a34004,hour,{TS},35,N\n"
        f"1001A,a34002,hour,{TS},not-a-number,N\n"
        f"1001A,a34002,hour,{TS},,D\n"
    )
    response = client.post(
        "/api/v1/measurements",
        content=text,
        headers={"Content-Type": "text/csv", **_auth(keys["operator"])},
    )
    result = response.json()
    assert [row["status"] for row in result["rows"]] == ["accepted", "rejected", "accepted"]
    assert "value" in result["rows"][1]["reason"]
    bad_header = client.post(
        "/api/v1/measurements",
        content="station,value\nx,1\n",
        headers={"Content-Type": "text/csv", **_auth(keys["operator"])},
    )
    assert bad_header.status_code == 400 and "unknown: station" in bad_header.json()["detail"]


def test_enterprise_key_uploads_only_for_its_own_points(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys, other = setup
    rows = [
        {"point": "P0001", "parameter": "a21026", "interval": "min", "ts": TS, "value": 20},
        {"point": other, "parameter": "a21026", "interval": "min", "ts": TS, "value": 20},
    ]
    response = client.post("/api/v1/measurements", json=rows, headers=_auth(keys["enterprise"]))
    result = response.json()
    assert [row["reason_code"] for row in result["rows"]] == [None, "forbidden_point"]
    assert _count(engine) == 1


def test_bad_requests_get_clear_4xx(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    client, keys, _ = setup
    auth = _auth(keys["operator"])
    wrong_type = client.post(
        "/api/v1/measurements", content="x", headers={"Content-Type": "text/plain", **auth}
    )
    assert wrong_type.status_code == 415
    not_json = client.post(
        "/api/v1/measurements", content="{", headers={"Content-Type": "application/json", **auth}
    )
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["detail"]
    assert dt.datetime.fromisoformat(TS)  # the fixture's timestamp is itself valid


def test_carriage_returns_in_a_csv_upload(engine: Engine, setup) -> None:  # type: ignore[no-untyped-def]
    """Found by the schema fuzzing: a lone CR in a CSV body was a 500. A file with CR
    line ends is read; one that stops being CSV is refused with its line."""
    client, keys, _ = setup
    headers = {"Content-Type": "text/csv", **_auth(keys["operator"])}
    crs = f"point,parameter,interval,ts,value,flag\r1001A,a34004,hour,{TS},35,N\r"
    answer = client.post("/api/v1/measurements", content=crs, headers=headers)
    assert [row["status"] for row in answer.json()["rows"]] == ["accepted"]
    lone = client.post("/api/v1/measurements", content="\r0", headers=headers)
    assert lone.status_code == 400
    broken = client.post(
        "/api/v1/measurements",
        content=f'point,parameter,interval,ts,value,flag\n1001A,a34004,hour,{TS},"35\x00,N\n',
        headers=headers,
    )
    assert broken.status_code == 200, broken.text  # the row rejected, kept with NUL escaped
    assert [row["status"] for row in broken.json()["rows"]] == ["rejected"]
