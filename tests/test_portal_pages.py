"""The portal's pages as a newcomer meets them: every visible word in Chinese (and in
English with ?lang=en), never a raw enumeration value; the alarm page with filters,
paging and bulk acknowledge; a page, not JSON, for an unknown address; and an OpenAPI
document Swagger can drive (security schemes, the upload's body)."""

from __future__ import annotations

import datetime as dt
import enum
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.accounts.keys import Role
from ecohub.accounts.users import create_user
from ecohub.alarms.tables import AlarmKind, AlarmStatus
from ecohub.app import create_app
from ecohub.complaints.rules import Medium, Step
from ecohub.complaints.tables import Channel, EventStatus, Satisfaction
from ecohub.ingest.pipeline import Pipeline
from ecohub.permits.report_rules import Frequency, ManagementClass, PeriodKind
from ecohub.permits.rules import ApplicationKind, ApplicationStatus, ReportStatus
from ecohub.registry.models import OutletKind, RegionLevel, SiteKind, SiteStatus, WaterBody
from ecohub.timeseries.observations import Observation
from ecohub.web.i18n import TERMS

T0 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)
PASSWORD = "correct horse battery"
# Every enumeration a page may show, with the TERMS category that names its values.
ENUMS: dict[str, type[enum.StrEnum]] = {
    "alarm_kind": AlarmKind,
    "alarm_status": AlarmStatus,
    "site_kind": SiteKind,
    "site_status": SiteStatus,
    "outlet_kind": OutletKind,
    "water_body": WaterBody,
    "region_level": RegionLevel,
    "medium": Medium,
    "complaint_status": EventStatus,
    "complaint_step": Step,
    "satisfaction": Satisfaction,
    "channel": Channel,
    "application_kind": ApplicationKind,
    "application_status": ApplicationStatus,
    "report_status": ReportStatus,
    "report_period": PeriodKind,
    "management_class": ManagementClass,
}
# Written in Chinese already (the permits' own wording): only their English is needed.
assert all(TERMS["monitoring_frequency"][f.value][1] for f in Frequency)
RAW = {member.value for values in ENUMS.values() for member in values} | {
    "on change",
    "hourly",
    "daily",
    "unconditional",
    "not_shared",
}


class _Text(HTMLParser):
    """The text a reader sees: no tags, scripts, styles or attribute values."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    return parser.parts


@pytest.fixture
def portal(engine: Engine, points: dict[str, int]) -> TestClient:
    rows = []
    for h in range(3):  # P0001 SO2 30 mg/m³ > its permit's 10 (registry.json): one alarm
        at = T0 + dt.timedelta(hours=h)
        rows += [
            Observation(points["P0001"], "a21026", "hour", at, 30.0, "N", 0, "t"),
            Observation(points["P0001"], "a00000", "hour", at, 80.0, "N", 0, "t"),
        ]
    Pipeline(engine).process(rows, now=T0 + dt.timedelta(days=1))
    with Session(engine) as session:
        create_user(session, username="inspector", password=PASSWORD, role=Role.AGENCY, actor="t")
        session.commit()
    client = TestClient(create_app(engine), base_url="https://testserver")
    signed = client.post(
        "/login", data={"username": "inspector", "password": PASSWORD}, follow_redirects=False
    )
    assert signed.status_code == 303
    return client


def test_every_enumeration_value_has_both_words() -> None:
    for category, values in ENUMS.items():
        for member in values:
            zh, en = TERMS[category][member.value]
            assert zh and en and zh != member.value, (category, member.value)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/ranking",
        "/enterprises",
        "/enterprises/91110000MA01ABCD5X",
        "/catalogue",
        "/agency/alarms",
        "/agency/quarantine",
        "/stations/1001A",
        "/complaints/new",
        "/complaints/query",
        "/complaints/statistics",
        "/agency/complaints",
        "/enterprises/91110106MA00DEM01H/tax?month=2024-01",
        "/permits",
        "/permits/versions/91110106MA00DEM01H001P",
    ],
)
def test_no_raw_enumeration_value_on_a_chinese_page(portal: TestClient, path: str) -> None:
    page = portal.get(path)
    assert page.status_code in (200, 404), page.text
    leaked = [part for part in visible(page.text) if part in RAW]
    assert leaked == [], f"{path} shows untranslated values: {leaked}"


def test_the_alarm_page_filters_pages_and_acknowledges_in_bulk(portal: TestClient) -> None:
    page = portal.get("/agency/alarms")
    text = " ".join(visible(page.text))
    assert "排放超标" in text and "未处理" in text  # kind and status in Chinese
    assert "超标倍数 2.00" in text  # 30 against the permit's 10 mg/m³: (30 − 10)/10
    assert "共 1 条报警" in text
    english = " ".join(visible(portal.get("/agency/alarms?lang=en").text))
    assert "Emission above the permit" in english and "exceedance multiple 2.00" in english
    none = " ".join(visible(portal.get("/agency/alarms?kind=offline&lang=zh").text))
    assert "共 0 条报警" in none
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    alarm_id = re.search(r'name="alarm_ids" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    done = portal.post(
        "/agency/alarms/acknowledge",
        data={"csrf_token": token, "alarm_ids": [alarm_id], "back": ""},
        follow_redirects=False,
    )
    assert done.status_code == 303
    after = " ".join(visible(portal.get("/agency/alarms?status=acknowledged").text))
    assert "已确认" in after and "共 1 条报警" in after
    refused = portal.post(
        "/agency/alarms/acknowledge", data={"csrf_token": "wrong", "alarm_ids": [alarm_id]}
    )
    assert refused.status_code == 403


def test_an_unknown_page_is_a_page_and_the_api_stays_json(portal: TestClient) -> None:
    page = portal.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "未找到" in page.text
    api = portal.get("/api/v1/no-such-route", headers={"accept": "text/html"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"


def test_swagger_can_authorize_and_try_the_upload(portal: TestClient) -> None:
    document = portal.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyBearer"]["scheme"] == "bearer"
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
    upload = document["paths"]["/api/v1/measurements"]["post"]
    assert {"application/x-ndjson", "application/json", "text/csv"} <= set(
        upload["requestBody"]["content"]
    )
    assert upload["security"]  # the Authorize button applies to it
