"""The alarm routes of the API: every role against every route, enterprise scoping,
acknowledge/annotate/close with their errors, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role, issue_key
from ecohub.app import create_app
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation

T0 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)


@pytest.fixture
def api(engine: Engine, points: dict[str, int]):  # type: ignore[no-untyped-def]
    """Two exceedance alarms: P0001 (enterprise 1) and P0002 (enterprise 2)."""
    rows = []
    for code, parameter, value in (("P0001", "a21026", 30.0), ("P0002", "a21026", 80.0)):
        point = points[code]
        rows += [
            Observation(point, parameter, "hour", T0, value, "N", 0, "t"),
            Observation(point, "a00000", "hour", T0, 80.0, "N", 0, "t"),
        ]
    Pipeline(engine).process(rows, now=T0 + dt.timedelta(days=1))
    with Session(engine) as session:
        keys = {
            role.value: issue_key(session, name=role.value, role=role, created_by="t")
            for role in (Role.ADMIN, Role.AGENCY, Role.OPERATOR)
        }
        keys["enterprise"] = issue_key(
            session, name="plant", role=Role.ENTERPRISE, created_by="t", enterprise_id=1
        )
        session.commit()
    return TestClient(create_app(engine)), keys


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


ROUTES = [
    ("get", "/api/v1/alarms", None),
    ("get", "/api/v1/alarms/1", None),
    ("post", "/api/v1/alarms/1/acknowledge", {"note": "x"}),
    ("post", "/api/v1/alarms/1/annotate", {"note": "x"}),
    ("post", "/api/v1/alarms/1/close", {"reason": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_alarm_route_denies_without_a_key_and_for_operator_keys(
    api, method: str, path: str, body: dict | None
) -> None:  # type: ignore[no-untyped-def]
    client, keys = api
    assert client.request(method, path, json=body).status_code == 401
    bad = client.request(method, path, json=body, headers=_h("ek_notakey"))
    assert bad.status_code == 401
    denied = client.request(method, path, json=body, headers=_h(keys["operator"]))
    assert denied.status_code == 403 and "role operator may not read it" in denied.json()["detail"]


def test_agency_sees_all_and_enterprise_only_its_own(api) -> None:  # type: ignore[no-untyped-def]
    client, keys = api
    for role in ("admin", "agency"):
        listed = client.get("/api/v1/alarms", headers=_h(keys[role])).json()
        assert sorted(a["point_id"] for a in listed) == [1, 2]
    own = client.get("/api/v1/alarms", headers=_h(keys["enterprise"])).json()
    assert [a["point_id"] for a in own] == [1]
    other_id = next(
        a["id"]
        for a in client.get("/api/v1/alarms", headers=_h(keys["agency"])).json()
        if a["point_id"] == 2
    )
    hidden = client.get(f"/api/v1/alarms/{other_id}", headers=_h(keys["enterprise"]))
    assert hidden.status_code == 404
    refused = client.post(
        f"/api/v1/alarms/{other_id}/acknowledge", json={}, headers=_h(keys["enterprise"])
    )
    assert refused.status_code == 404


def test_acknowledge_annotate_close_and_their_errors(api) -> None:  # type: ignore[no-untyped-def]
    client, keys = api
    own = client.get("/api/v1/alarms", headers=_h(keys["enterprise"])).json()[0]["id"]
    ack = client.post(
        f"/api/v1/alarms/{own}/acknowledge", json={"note": "on it"}, headers=_h(keys["enterprise"])
    )
    assert ack.status_code == 204
    twice = client.post(f"/api/v1/alarms/{own}/acknowledge", json={}, headers=_h(keys["agency"]))
    assert twice.status_code == 409 and "already acknowledged" in twice.json()["detail"]
    empty = client.post(
        f"/api/v1/alarms/{own}/annotate", json={"note": ""}, headers=_h(keys["agency"])
    )
    assert empty.status_code == 422
    noted = client.post(
        f"/api/v1/alarms/{own}/annotate", json={"note": "leak"}, headers=_h(keys["agency"])
    )
    assert noted.status_code == 204
    by_plant = client.post(
        f"/api/v1/alarms/{own}/close", json={"reason": "fixed"}, headers=_h(keys["enterprise"])
    )
    assert by_plant.status_code == 403
    closed = client.post(
        f"/api/v1/alarms/{own}/close", json={"reason": "verified"}, headers=_h(keys["agency"])
    )
    assert closed.status_code == 204
    again = client.post(
        f"/api/v1/alarms/{own}/close", json={"reason": "again"}, headers=_h(keys["agency"])
    )
    assert again.status_code == 409
    detail = client.get(f"/api/v1/alarms/{own}", headers=_h(keys["agency"])).json()
    assert detail["status"] == "closed" and detail["close_reason"] == "manual: verified"
    assert [e["action"] for e in detail["history"]] == [
        "opened",
        "acknowledged",
        "annotated",
        "closed",
    ]
    assert detail["history"][1]["actor"] == "key:plant"
    closed_list = client.get(
        "/api/v1/alarms", params={"status": "closed"}, headers=_h(keys["agency"])
    ).json()
    assert [a["id"] for a in closed_list] == [own]
    bad = client.get("/api/v1/alarms", params={"status": "gone"}, headers=_h(keys["agency"]))
    assert bad.status_code == 422
    bad_kind = client.get("/api/v1/alarms", params={"kind": "fire"}, headers=_h(keys["agency"]))
    assert bad_kind.status_code == 422
    missing = client.get("/api/v1/alarms/999", headers=_h(keys["agency"]))
    assert missing.status_code == 404
