"""Agency routes, the resource catalogue, portal sign-in and rate limits: every role
against every protected route, audit of registry writes, quarantine review, the
transmission-rate report, water class and sources on the map, on both backends."""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.accounts.catalogue import DATASETS
from ecohub.accounts.keys import Role, issue_key
from ecohub.accounts.users import User, UserError, create_user
from ecohub.app import create_app
from ecohub.config import get_settings
from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation

warnings.filterwarnings("ignore", category=DeprecationWarning)
CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2024, 1, 15)
MIDNIGHT = dt.datetime(2024, 1, 15, tzinfo=CST)
PASSWORD = "a long enough password"


@pytest.fixture
def api(engine: Engine, points: dict[str, int]) -> tuple[TestClient, dict[str, str]]:
    rows = []
    # P0001 (enterprise 1, one reading a minute): 30 real-time SO2 values on the day.
    for minute in range(30):
        ts = MIDNIGHT + dt.timedelta(minutes=minute)
        rows.append(
            Observation(points["P0001"], "a21026", "rt", ts, 10.0 + minute % 3, "N", 0, "t")
        )
        rows.append(
            Observation(points["P0001"], "a00000", "rt", ts, 50.0 + minute % 2, "N", 0, "t")
        )
    # P0002 (enterprise 2): an hourly SO2 of 80 mg/m³ against its limit, an alarm.
    rows.append(Observation(points["P0002"], "a21026", "hour", MIDNIGHT, 80.0, "N", 0, "t"))
    rows.append(Observation(points["P0002"], "a00000", "hour", MIDNIGHT, 80.0, "N", 0, "t"))
    # 珠江广州猎德 (WQ-GZ-01): six 4-hourly samples on the day; COD 24-26 mg/L (mean 25,
    # GB 3838-2002 Table 1: III ≤ 20 < IV ≤ 30, so class IV, (25 − 20)/20 = 0.25 times
    # over class III), NH3-N mean 0.4 mg/L (II: 0.15 < 0.4 ≤ 0.5), DO mean 6.5 mg/L (II:
    # ≥ 6). Values vary a little so that the flat-line check stays quiet.
    for index in range(6):
        ts = MIDNIGHT + dt.timedelta(hours=4 * index)
        cod = 24.0 + index % 3  # 24, 25, 26, 24, 25, 26: mean 25
        rows += [
            Observation(points["WQ-GZ-01"], "w01018", "hour", ts, cod, "N", 0, "t"),
            Observation(
                points["WQ-GZ-01"], "w21003", "hour", ts, 0.38 + 0.02 * (index % 3), "N", 0, "t"
            ),
            Observation(
                points["WQ-GZ-01"], "w01009", "hour", ts, 6.5 + (index % 2) * 0.2 - 0.1, "N", 0, "t"
            ),
        ]
    Pipeline(engine).process(rows, now=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    quarantine_rows(
        engine,
        [
            Rejected(
                source="hj212", reason_code="bad_crc", reason="CRC", raw="##00", peer="1.2.3.4"
            ),
            Rejected(source="http", reason_code="unknown_point", reason="no point X", raw="X,1"),
        ],
    )
    with Session(engine) as session:
        keys = {
            role.value: issue_key(session, name=role.value, role=role, created_by="t")
            for role in (Role.ADMIN, Role.AGENCY, Role.OPERATOR, Role.PUBLIC)
        }
        keys["enterprise"] = issue_key(
            session, name="plant", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
        )
        keys["limited"] = issue_key(
            session, name="limited", role=Role.AGENCY, created_by="t", rate_limit=3
        )
        create_user(session, username="inspector", password=PASSWORD, role=Role.AGENCY, actor="t")
        create_user(session, username="citizen", password=PASSWORD, role=Role.PUBLIC, actor="t")
        session.commit()
    return TestClient(create_app(engine), base_url="https://testserver"), keys


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


SITE = {"code": "T-01", "name": "测试站", "kind": "air", "region_code": "110000"}
# (method, path, body, statuses by role: anonymous, public, operator, enterprise, agency)
PROTECTED: list[tuple[str, str, Any, tuple[int, int, int, int, int]]] = [
    ("put", "/api/v1/registry/sites", SITE, (401, 403, 403, 403, 200)),
    ("delete", "/api/v1/registry/permits/91230100MA1BDEM05Q001P", None, (401, 403, 403, 403, 204)),
    ("get", "/api/v1/audit", None, (401, 403, 403, 403, 200)),
    ("get", "/api/v1/quarantine", None, (401, 403, 403, 403, 200)),
    ("get", "/api/v1/quarantine/1", None, (401, 403, 403, 403, 200)),
    ("post", "/api/v1/quarantine/1/review", {"outcome": "dismissed"}, (401, 403, 403, 403, 204)),
    ("get", "/api/v1/reports/transmission?day=2024-01-15", None, (401, 403, 403, 200, 200)),
    ("get", "/api/v1/alarms", None, (401, 403, 403, 200, 200)),
    ("post", "/api/v1/measurements", None, (401, 403, 415, 415, 415)),
]
ROLES = ("anonymous", "public", "operator", "enterprise", "agency")


@pytest.mark.parametrize(("method", "path", "body", "expected"), PROTECTED)
def test_every_role_against_every_protected_route(
    api: tuple[TestClient, dict[str, str]], method: str, path: str, body: Any, expected: tuple
) -> None:
    client, keys = api
    for role, status in zip(ROLES, expected, strict=True):
        headers = {} if role == "anonymous" else _h(keys[role])
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == status, (role, answer.text)
        if status in (401, 403):
            assert answer.json()["detail"], role  # a message, not a bare code
    # The admin may do what the agency may.
    assert client.request(method, path, json=body, headers=_h(keys["admin"])).status_code in (
        200,
        204,
        404,
        409,
        415,
    )


def test_every_data_route_is_in_the_catalogue(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _keys = api
    unlisted = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1"):
            continue
        if route.path in ("/api/v1/catalogue", "/api/v1/measurements"):
            continue  # the catalogue itself; uploading is writing, not reading a dataset
        dependencies = [d.call for d in route.dependant.dependencies]
        nested = [d.call for dep in route.dependant.dependencies for d in dep.dependencies]
        if not any(hasattr(call, "dataset_id") for call in dependencies + nested):
            unlisted.append(route.path)
    assert unlisted == []
    listed = client.get("/api/v1/catalogue").json()
    assert {d["id"] for d in listed} == set(DATASETS)
    sharing = {d["id"]: d["sharing"] for d in listed}
    assert sharing["air_quality"] == "unconditional" and sharing["quarantine"] == "not_shared"
    assert sharing["alarms"] == "conditional"
    assert {d["id"]: d["you_may_read"] for d in listed}["alarms"] is False


def test_registry_writes_are_validated_and_audited(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    made = client.put("/api/v1/registry/sites", json=SITE, headers=_h(keys["agency"]))
    assert made.status_code == 200 and made.json()["code"] == "T-01"
    renamed = client.put(
        "/api/v1/registry/sites", json={**SITE, "name": "新名"}, headers=_h(keys["agency"])
    )
    assert renamed.json()["name"] == "新名"
    bad = client.put(
        "/api/v1/registry/sites", json={**SITE, "kind": "volcano"}, headers=_h(keys["agency"])
    )
    assert bad.status_code == 422 and "kind" in str(bad.json()["detail"])
    orphan = client.put(
        "/api/v1/registry/sites", json={**SITE, "region_code": "999999"}, headers=_h(keys["agency"])
    )
    assert orphan.status_code == 409 and "999999" in orphan.json()["detail"]
    point = {
        "code": "T-P1",
        "name": "x",
        "mn": "99990000000001",
        "password": "s3cret",
        "site_code": "T-01",
        "interval_seconds": 3600,
    }
    assert (
        client.put("/api/v1/registry/points", json=point, headers=_h(keys["admin"])).json()[
            "password"
        ]
        == "***"
    )
    missing = client.delete("/api/v1/registry/sites/NOPE", headers=_h(keys["agency"]))
    assert missing.status_code == 404
    used = client.delete("/api/v1/registry/sites/T-01", headers=_h(keys["agency"]))
    assert used.status_code == 409  # its point still refers to it
    log = client.get("/api/v1/audit", params={"limit": 3}, headers=_h(keys["agency"])).json()
    assert [(e["actor"], e["action"], e["key"]) for e in log] == [
        ("key:admin", "create", "T-P1"),
        ("key:agency", "update", "T-01"),
        ("key:agency", "create", "T-01"),
    ]
    assert log[0]["after"]["password"] == "***"
    assert log[1]["before"]["name"] == "测试站" and log[1]["after"]["name"] == "新名"


def test_quarantine_review(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    agency = _h(keys["agency"])
    rows = client.get("/api/v1/quarantine", headers=agency).json()
    assert [r["reason_code"] for r in rows] == ["unknown_point", "bad_crc"]
    crc = client.get("/api/v1/quarantine", params={"source": "hj212"}, headers=agency).json()
    assert len(crc) == 1 and crc[0]["peer"] == "1.2.3.4"
    older = client.get("/api/v1/quarantine", params={"before": rows[0]["id"]}, headers=agency)
    assert [r["id"] for r in older.json()] == [rows[1]["id"]]
    done = client.post(
        f"/api/v1/quarantine/{crc[0]['id']}/review",
        json={"outcome": "device_fault", "note": "logger firmware"},
        headers=agency,
    )
    assert done.status_code == 204
    pending = client.get("/api/v1/quarantine", params={"reviewed": False}, headers=agency).json()
    assert [r["reason_code"] for r in pending] == ["unknown_point"]
    reviewed = client.get(f"/api/v1/quarantine/{crc[0]['id']}", headers=agency).json()
    assert (reviewed["review_outcome"], reviewed["reviewed_by"]) == ("device_fault", "key:agency")
    assert (
        client.post(
            "/api/v1/quarantine/999/review", json={"outcome": "dismissed"}, headers=agency
        ).status_code
        == 404
    )
    wrong = client.post(
        f"/api/v1/quarantine/{crc[0]['id']}/review", json={"outcome": "burn"}, headers=agency
    )
    assert wrong.status_code == 422
    assert client.get("/api/v1/quarantine/999", headers=agency).status_code == 404


def test_transmission_report(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    report = client.get(
        "/api/v1/reports/transmission", params={"day": "2024-01-15"}, headers=_h(keys["agency"])
    ).json()
    by_point = {row["point"]: row for row in report}
    # P0001 reports every 60 s: 1,440 slots owed in the day, 30 received, all valid.
    p1 = by_point["P0001"]
    assert (p1["expected"], p1["received"], p1["valid"]) == (1440, 30, 30)
    assert p1["transmission_rate"] == round(30 / 1440, 4)
    assert p1["enterprise"] == "91110106MA00DEM01H"
    own = client.get(
        "/api/v1/reports/transmission",
        params={"day": "2024-01-15"},
        headers=_h(keys["enterprise"]),
    ).json()
    assert {row["point"] for row in own} == {"P0001"}
    beijing = client.get(
        "/api/v1/reports/transmission",
        params={"day": "2024-01-15", "region": "440100"},
        headers=_h(keys["agency"]),
    ).json()
    assert {row["point"] for row in beijing} >= {"WQ-GZ-01", "P0004"}
    assert all(row["point"] not in ("P0001", "1001A") for row in beijing)
    bad = client.get(
        "/api/v1/reports/transmission", params={"day": "15/01/2024"}, headers=_h(keys["agency"])
    )
    assert bad.status_code == 422


def test_water_class_of_a_site(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _keys = api
    (site,) = client.get("/api/v1/water/classes").json()
    assert site["site"] == "WQ-GZ-01" and site["day"] == "2024-01-14T16:00:00Z"
    assert site["values"]["w01018"] == pytest.approx(25.0)
    assert site["classes"] == {"COD": 4, "NH3-N": 2, "DO": 2}
    assert (site["water_class"], site["class_name"], site["status"]) == (4, "IV", "轻度污染")
    assert site["worst"] == ["COD"] and site["exceeding"]["COD"] == pytest.approx(0.25)
    same = client.get("/api/v1/water/classes", params={"day": "2024-01-15T12:00:00+08:00"})
    assert same.json()[0]["water_class"] == 4
    assert (
        client.get("/api/v1/water/classes", params={"day": "2024-03-01T00:00:00+08:00"}).json()
        == []
    )
    # Without an offset a time is Beijing time, and a date alone its day.
    naive = client.get("/api/v1/water/classes", params={"day": "2024-01-15T12:00:00"})
    assert naive.json() == same.json()
    assert client.get("/api/v1/water/classes", params={"day": "2024-01-15"}).json() == same.json()
    typo = client.get("/api/v1/water/classes", params={"date": "2024-01-15"})
    assert typo.status_code == 400 and "unknown query parameter date" in typo.json()["detail"]
    assert "takes: day" in typo.json()["detail"]


def test_sources_carry_their_alarm_state(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _keys = api
    answer = client.get("/api/v1/sources")
    assert answer.headers["content-type"].startswith("application/geo+json")
    states = {f["properties"]["uscc"]: f["properties"] for f in answer.json()["features"]}
    assert states["91310115MA1HDEM025"]["alarm_state"] == "alarm"  # P0002's enterprise
    assert states["91110106MA00DEM01H"]["alarm_state"] == "normal"


def test_portal_sign_in_session_csrf_and_sign_out(
    api: tuple[TestClient, dict[str, str]], engine: Engine
) -> None:
    client, _keys = api
    refused = client.post("/login", data={"username": "inspector", "password": "nope"})
    assert refused.status_code == 401
    signed = client.post(
        "/login",
        data={"username": "inspector", "password": PASSWORD, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/"  # no open redirect
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    with Session(engine) as session:
        user = session.scalars(select(User).filter_by(username="inspector")).one()
        assert user.password_hash.startswith("$argon2id$")
    assert client.get("/api/v1/quarantine").status_code == 200  # the cookie signs in
    page = client.get("/agency/alarms")
    assert page.status_code == 200
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    no_token = client.post("/api/v1/quarantine/1/review", json={"outcome": "dismissed"})
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["detail"]
    with_token = client.post(
        "/api/v1/quarantine/1/review",
        json={"outcome": "dismissed"},
        headers={"X-CSRF-Token": csrf},
    )
    assert with_token.status_code == 204
    form_without = client.post("/agency/quarantine/2/review", data={"outcome": "dismissed"})
    assert form_without.status_code == 403
    out = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/agency/alarms", follow_redirects=False).status_code == 303
    citizen = client.post(
        "/login", data={"username": "citizen", "password": PASSWORD}, follow_redirects=False
    )
    assert citizen.status_code == 303
    assert client.get("/agency/alarms").status_code == 403
    assert client.get("/api/v1/quarantine").status_code == 403


def test_repeated_failed_sign_ins_are_throttled(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _keys = api
    for _ in range(get_settings().login_attempts):
        assert (
            client.post("/login", data={"username": "inspector", "password": "x"}).status_code
            == 401
        )
    locked = client.post("/login", data={"username": "inspector", "password": PASSWORD})
    assert locked.status_code == 429


def test_per_key_rate_limit(api: tuple[TestClient, dict[str, str]]) -> None:
    client, keys = api
    answers = [
        client.get("/api/v1/quarantine", headers=_h(keys["limited"])).status_code for _ in range(4)
    ]
    assert answers == [200, 200, 200, 429]
    over = client.get("/api/v1/quarantine", headers=_h(keys["limited"]))
    assert int(over.headers["retry-after"]) >= 1 and "3 requests" in over.json()["detail"]
    # Another key has its own budget.
    assert client.get("/api/v1/quarantine", headers=_h(keys["agency"])).status_code == 200


def test_user_rules(engine: Engine, points: dict[str, int]) -> None:
    with Session(engine) as session:
        with pytest.raises(UserError, match="at least 10"):
            create_user(session, username="a", password="short", role=Role.AGENCY, actor="t")
        with pytest.raises(UserError, match="enterprise it belongs to"):
            create_user(session, username="b", password=PASSWORD, role=Role.ENTERPRISE, actor="t")
        with pytest.raises(UserError, match="API key"):
            create_user(session, username="c", password=PASSWORD, role=Role.OPERATOR, actor="t")
        create_user(session, username="d", password=PASSWORD, role=Role.AGENCY, actor="t")
        with pytest.raises(UserError, match="exists"):
            create_user(session, username="d", password=PASSWORD, role=Role.AGENCY, actor="t")


def test_emitted_masses_by_month_against_the_permit(
    api: tuple[TestClient, dict[str, str]], engine: Engine, points: dict[str, int]
) -> None:
    client, keys = api
    permit = {
        "permit_no": "91110106MA00DEM01H001P",
        "enterprise_uscc": "91110106MA00DEM01H",
        "valid_from": "2023-01-01",
        "valid_to": "2027-12-31",
        "limits": [
            {
                "outlet_code": "DA001",
                "parameter_code": "a21026",
                "concentration_limit": 10,
                "unit": "mg/m³",
                "annual_mass_limit_kg": 3600,
            }
        ],
    }
    made = client.put("/api/v1/registry/permits", json=permit, headers=_h(keys["agency"]))
    assert made.status_code == 200
    # Hourly SO2 masses (HJ 212 "-Cou", kg) of P0001: 0.4/0.5/0.6 kg over the 24 hours of
    # 2024-01-20 (sum 12 kg) and 0.9/1.0/1.1 kg over 2024-02-10 (sum 24 kg), local days.
    rows = []
    for day, base in (
        (dt.datetime(2024, 1, 20, tzinfo=CST), 0.5),
        (dt.datetime(2024, 2, 10, tzinfo=CST), 1.0),
    ):
        for hour in range(24):
            value = base + 0.1 * (hour % 3 - 1) * (2 if base == 1.0 else 1)
            rows.append(
                Observation(
                    points["P0001"],
                    "a21026-Cou",
                    "hour",
                    day + dt.timedelta(hours=hour),
                    round(value, 3),
                    "N",
                    0,
                    "t",
                )
            )
    Pipeline(engine).process(rows, now=dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
    answer = client.get(
        "/api/v1/enterprises/91110106MA00DEM01H/emissions", params={"year": 2024}
    ).json()
    (so2,) = [e for e in answer["emissions"] if e["parameter_code"] == "a21026"]
    assert so2["months"] == {"1": pytest.approx(12.0), "2": pytest.approx(24.0)}
    assert so2["total"] == pytest.approx(36.0) and so2["days"] == 2
    assert so2["annual_limit_kg"] == 3600 and so2["share_of_limit"] == pytest.approx(0.01)
    empty = client.get("/api/v1/enterprises/91110106MA00DEM01H/emissions", params={"year": 2023})
    assert empty.json()["emissions"] == []
    assert (
        client.get(
            "/api/v1/enterprises/91110106MA00DEM01H/emissions", params={"year": 1800}
        ).status_code
        == 422
    )
    unknown = client.get("/api/v1/enterprises/91110106MA00DEM01H/emissions")
    assert unknown.status_code == 422
