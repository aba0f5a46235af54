"""Issue 29, the hall's forms and the registry's side doors: a bad cell, a value the rules
refuse and a bad day are named by area, form line (from 1, blank lines counted) and
column, in Chinese or English; the hall lists the permits (their versions and the
enterprise's tax page), the versions page links the tax page; the registry refuses to
edit a permit kept by the procedure and outlet codes that are not HJ 608-2017's."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.app import create_app
from ecohub.permits import lifecycle
from ecohub.permits.versions import permit_versions
from ecohub.registry import service
from ecohub.registry.models import OutletKind
from ecohub.registry.schemas import OutletIn, PermitIn, PermitLimitIn

JINGXI = "91110106MA00DEM01H"
HUDONG = "91310115MA1HDEM025"
NUMBER = f"{JINGXI}001P"
PASSWORD = "correct horse battery"


def _token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


@pytest.fixture
def jx(points: dict, engine: Engine) -> TestClient:
    with Session(engine) as session:
        create_user(
            session, username="jx", password=PASSWORD, role=Role.ENTERPRISE, actor="t",
            enterprise_id=1,
        )  # fmt: skip
        session.commit()
    client = TestClient(create_app(engine), base_url="https://testserver")
    client.post("/login", data={"username": "jx", "password": PASSWORD})
    return client


def _refusal(client: TestClient, path: str, data: dict) -> str:
    answer = client.post(path, data=data, follow_redirects=False)
    assert answer.status_code == 303
    return unquote(answer.headers["location"].split("error=", 1)[1])


def test_form_errors_name_the_line_and_column(jx: TestClient) -> None:
    hall = jx.get("/permits")
    form = {
        "csrf_token": _token(hall.text),
        "uscc": JINGXI,
        "kind": "change",
        "management_class": "key",
        "permit_no": NUMBER,
        "effective_on": "2024-03-01",
        "limits": "DA001,a21002,abc,mg/m³",
    }
    assert (
        _refusal(jx, "/permits/apply", form) == "许可排放限值 第1行第3列（浓度限值）：“abc”不是数字"
    )
    english = _refusal(jx, "/permits/apply?lang=en", form)
    assert english == "Limits, line 1, column 3 (limit): “abc” is not a number"
    # The second row of the area stands on form line 3 (line 2 is blank); -5 is refused.
    form["limits"] = "DA001,a21026,10,mg/m³\n\nDA001,a21002,-5,mg/m³"
    assert _refusal(jx, "/permits/apply", form) == "许可排放限值 第3行（浓度限值）：应大于 0"
    assert (
        _refusal(jx, "/permits/apply?lang=en", form)
        == "Limits, line 3 (limit): must be greater than 0"
    )
    form["limits"] = "DA001,a21026,10,mg/m³"
    form["monitoring"] = "DA001,a21026,自动监测\nDA001,a21002,sometimes"
    assert _refusal(jx, "/permits/apply", form).startswith("自行监测方案 第2行（监测频次）：")
    day = {"csrf_token": form["csrf_token"], "permit_no": NUMBER, "kind": "monthly"}
    assert (
        _refusal(jx, "/permits/reports", {**day, "day": "2024-02-30"})
        == "周期内任一日：“2024-02-30”不是日期（年-月-日）"
    )
    assert _refusal(jx, "/permits/reports", {**day, "day": ""}) == "周期内任一日：必须填写"


def test_the_api_counts_items_from_one(points: dict, engine: Engine) -> None:
    row = {"outlet_code": "DA001", "unit": "mg/m³"}
    content = {
        "limits": [
            {**row, "parameter_code": "a21026", "concentration_limit": 10},
            {**row, "parameter_code": "a21002", "concentration_limit": 0},
        ]
    }
    with pytest.raises(lifecycle.PermitError) as refused:
        lifecycle.apply(
            engine, uscc=JINGXI, kind="new", management_class="key", content=content, actor="t"
        )
    assert str(refused.value).startswith("content.limits, item 2, concentration_limit:")
    assert (refused.value.section, refused.value.item, refused.value.column) == (
        "limits",
        2,
        "concentration_limit",
    )


def test_the_hall_and_versions_page_lead_to_the_permits_and_the_tax(jx: TestClient) -> None:
    hall = jx.get("/permits").text
    assert f'href="/permits/versions/{NUMBER}"' in hall
    assert f'href="/enterprises/{JINGXI}/tax"' in hall
    assert HUDONG not in hall  # only the enterprise's own permits
    versions = jx.get(f"/permits/versions/{NUMBER}").text
    assert f'href="/enterprises/{JINGXI}/tax"' in versions and 'href="/permits"' in versions
    assert "Emissions and environmental protection tax" in jx.get("/permits?lang=en").text


def _permit(limit: float) -> PermitIn:
    return PermitIn(
        permit_no=NUMBER,
        enterprise_uscc=JINGXI,
        valid_from=dt.date(2023, 1, 1),
        valid_to=dt.date(2027, 12, 31),
        limits=[
            PermitLimitIn(
                outlet_code="DA001",
                parameter_code="a21026",
                concentration_limit=limit,
                unit="mg/m³",
            )
        ],
    )


def test_the_registry_leaves_the_procedures_permits_alone(points: dict, engine: Engine) -> None:
    with Session(engine) as session, session.begin():  # a registry permit: still editable
        service.upsert_permit(session, _permit(12), "t")
    made = lifecycle.apply(
        engine,
        uscc=JINGXI,
        kind="change",
        management_class="key",
        permit_no=NUMBER,
        content={
            "limits": [
                {
                    "outlet_code": "DA001",
                    "parameter_code": "a21026",
                    "concentration_limit": 8,
                    "unit": "mg/m³",
                }
            ],
            "effective_on": "2025-07-01",
        },
        actor="t",
    )
    lifecycle.decide(engine, made["id"], "accepted", actor="a", by="agency", on=dt.date(2025, 6, 2))
    lifecycle.decide(engine, made["id"], "issued", actor="a", by="agency", on=dt.date(2025, 6, 20))
    with (
        Session(engine) as session,
        session.begin(),
        pytest.raises(service.RegistryError, match="apply for a change"),
    ):
        service.upsert_permit(session, _permit(5), "t")
    kept = permit_versions(engine, NUMBER)["versions"]
    assert [(v["valid_from"], v["valid_to"]) for v in kept] == [
        ("2023-01-01", "2025-06-30"),
        ("2025-07-01", "2027-12-31"),
    ]
    assert [lim["concentration_limit"] for lim in kept[1]["limits"]] == [8.0]


def test_registry_outlet_codes_are_hj_608s() -> None:
    def outlet(code: str, kind: str = "gas") -> OutletIn:
        return OutletIn(enterprise_uscc=JINGXI, code=code, name="排气筒", kind=OutletKind(kind))

    assert outlet("da001").code == "DA001" and outlet("DW001", "water").code == "DW001"
    for bad in ("XX1", "DX001", "DA0001", "S1"):
        with pytest.raises(ValidationError):
            outlet(bad)
    with pytest.raises(ValidationError, match="element letter W"):
        outlet("DW002", "gas")
