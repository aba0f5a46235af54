"""Registry operations on both backends: import, idempotency, audit, rejection."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.db.quarantine import list_quarantine
from ecohub.registry import service
from ecohub.registry.importer import import_file
from ecohub.registry.models import (
    AuditEntry,
    Enterprise,
    MonitoringPoint,
    Parameter,
    Permit,
    Site,
    SiteKind,
)
from ecohub.registry.parameters import canonical_parameter_code
from ecohub.registry.schemas import EnterpriseIn, PointIn, SiteIn
from ecohub.timeseries.observations import Observation, count_observations, write_observations

GOOD_USCC = "914403001922038216"


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_parameters_loaded_by_migration_with_legacy_codes(engine: Engine) -> None:
    with Session(engine) as session:
        so2 = session.get(Parameter, "a21026")
        assert so2 is not None
        assert (so2.name_zh, so2.legacy_code, so2.unit) == ("二氧化硫", "02", "mg/m³")
        cod = session.get(Parameter, "w01018")
        assert cod is not None and cod.legacy_code == "011"
    # HJ/T 212-2005 codes map onto HJ 212-2017 ones.
    assert canonical_parameter_code("02") == "a21026"
    assert canonical_parameter_code("B01") == "w00000"
    assert canonical_parameter_code("060") == "w21003"
    assert canonical_parameter_code("a34013") == "a34013"
    assert canonical_parameter_code("zz999") is None


def test_demo_registry_imports_and_reimport_changes_nothing(
    engine: Engine, demo_registry_path: Path
) -> None:
    report = import_file(engine, demo_registry_path, "test")
    assert report.rejected == []
    document = json.loads(demo_registry_path.read_text(encoding="utf-8"))
    for kind, records in document.items():
        assert report.accepted[kind] == len(records)
    audit_rows = _count(engine, AuditEntry)
    assert audit_rows == sum(len(records) for records in document.values())

    again = import_file(engine, demo_registry_path, "test")
    assert again.rejected == []
    assert _count(engine, AuditEntry) == audit_rows  # nothing changed, nothing audited
    assert _count(engine, Site) == len(document["sites"])
    with Session(engine) as session:
        permit = session.scalars(select(Permit).order_by(Permit.permit_no)).first()
        assert permit is not None and len(permit.limits) >= 3


def test_update_is_audited_with_before_and_after(engine: Engine) -> None:
    record = SiteIn(code="1001A", name="万寿西宫", kind="air", longitude=116.366, latitude=39.8673)
    with Session(engine) as session, session.begin():
        service.upsert_site(session, record, "alice")
    moved = record.model_copy(update={"latitude": 39.87})
    with Session(engine) as session, session.begin():
        service.upsert_site(session, moved, "bob")
    with Session(engine) as session:
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.actor, e.action, e.entity, e.entity_key) for e in entries] == [
        ("alice", "create", "sites", "1001A"),
        ("bob", "update", "sites", "1001A"),
    ]
    assert entries[1].before is not None and entries[1].before["latitude"] == 39.8673
    assert entries[1].after is not None and entries[1].after["latitude"] == 39.87
    assert entries[1].at.tzinfo is not None


def test_delete_is_audited(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        service.upsert_enterprise(session, EnterpriseIn(uscc=GOOD_USCC, name="华为"), "alice")
    with Session(engine) as session, session.begin():
        service.delete_entity(session, "enterprises", GOOD_USCC, "carol")
    assert _count(engine, Enterprise) == 0
    with Session(engine) as session:
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert last is not None
    assert (last.action, last.actor, last.after) == ("delete", "carol", None)
    assert last.before is not None and last.before["name"] == "华为"


def test_a_point_with_stored_data_cannot_be_deleted(engine: Engine) -> None:
    # The time-series tables have no foreign key to points (migration 0008): the
    # registry itself must keep a point's observations from being orphaned.
    with Session(engine) as session, session.begin():
        service.upsert_site(session, SiteIn(code="S1", name="测试站", kind=SiteKind.AIR), "alice")
        for code in ("P1", "P2"):
            service.upsert_point(session, PointIn(code=code, name=code, site_code="S1"), "alice")
        kept = session.scalars(select(MonitoringPoint.id).filter_by(code="P1")).one()
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    write_observations(engine, [Observation(kept, "a21026", "hour", moment, 12.0)])
    with (
        Session(engine) as session,
        pytest.raises(service.RegistryError, match="point P1 has stored observations"),
    ):
        service.delete_entity(session, "points", "P1", "carol")
    with Session(engine) as session, session.begin():
        service.delete_entity(session, "points", "P2", "carol")
    with Session(engine) as session:
        assert session.scalars(select(MonitoringPoint.code)).all() == ["P1"]
    assert count_observations(engine) == 1


def test_bad_records_are_rejected_quarantined_and_good_ones_kept(
    engine: Engine, tmp_path: Path
) -> None:
    document = {
        "enterprises": [
            {"uscc": GOOD_USCC, "name": "华为技术有限公司"},
            {"uscc": "914403001922038217", "name": "typo in the check character"},
            {"uscc": "9144030071526726XG", "name": "腾讯", "region_code": "999999"},
        ],
        "outlets": [
            {"enterprise_uscc": GOOD_USCC, "code": "DA001", "name": "烟囱", "kind": "gas"},
            {"enterprise_uscc": GOOD_USCC, "code": "DA002", "name": "x", "kind": "smoke"},
        ],
        "permits": [
            {
                "permit_no": "P-1",
                "enterprise_uscc": GOOD_USCC,
                "valid_from": "2024-01-01",
                "valid_to": "2028-12-31",
                "limits": [
                    {
                        "outlet_code": "DA001",
                        "parameter_code": "02",
                        "concentration_limit": 35,
                        "unit": "mg/m³",
                    }
                ],
            },
            {
                "permit_no": "P-2",
                "enterprise_uscc": GOOD_USCC,
                "valid_from": "2024-01-01",
                "valid_to": "2023-01-01",
            },
        ],
    }
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    report = import_file(engine, path, "test")

    assert report.accepted == {"enterprises": 1, "outlets": 1, "permits": 1}
    reasons = dict(report.rejected)
    assert "expected '6'" in reasons["registry.json:enterprises[1]"]
    assert "unknown region 999999" in reasons["registry.json:enterprises[2]"]
    assert "kind" in reasons["registry.json:outlets[1]"]
    assert "before valid_from" in reasons["registry.json:permits[1]"]
    quarantined = list_quarantine(engine, source="registry")
    assert len(quarantined) == 4
    assert any("914403001922038217" in row.raw for row in quarantined)
    with Session(engine) as session:
        permit = session.scalars(select(Permit)).one()
        # The legacy code 02 was stored as its HJ 212-2017 code.
        assert [limit.parameter_code for limit in permit.limits] == ["a21026"]


def test_csv_import_reports_line_numbers(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(
        "code,name,kind,region_code,longitude,latitude\n"
        "1001A,万寿西宫,air,,116.366,39.8673\n"
        "1002A,定陵,air,,200,40.2865\n"
        "1003A,东四,air,,116.434,39.9522\n",
        encoding="utf-8",
    )
    report = import_file(engine, path, "test")
    assert report.accepted == {"sites": 2}
    assert len(report.rejected) == 1
    where, reason = report.rejected[0]
    assert where == "sites.csv:3" and "longitude" in reason


def test_permit_csv_groups_limits_and_replaces_them(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as session, session.begin():
        service.upsert_enterprise(session, EnterpriseIn(uscc=GOOD_USCC, name="华为"), "t")
    (tmp_path / "outlets.csv").write_text(
        f"enterprise_uscc,code,name,kind\n{GOOD_USCC},DA001,烟囱,gas\n", encoding="utf-8"
    )
    import_file(engine, tmp_path / "outlets.csv", "t")
    header = "permit_no,enterprise_uscc,valid_from,valid_to,outlet_code,parameter_code,"
    header += "concentration_limit,unit,annual_mass_limit_kg\n"
    first = tmp_path / "permits.csv"
    first.write_text(
        header
        + f"P-9,{GOOD_USCC},2024-01-01,2028-12-31,DA001,a21026,35,mg/m³,12000\n"
        + f"P-9,{GOOD_USCC},2024-01-01,2028-12-31,DA001,a21002,50,mg/m³,\n",
        encoding="utf-8",
    )
    assert import_file(engine, first, "t").accepted == {"permits": 1}
    first.write_text(
        header + f"P-9,{GOOD_USCC},2024-01-01,2028-12-31,DA001,a21026,30,mg/m³,12000\n",
        encoding="utf-8",
    )
    assert import_file(engine, first, "t").accepted == {"permits": 1}
    with Session(engine) as session:
        permit = session.scalars(select(Permit)).one()
        assert [(lim.parameter_code, lim.concentration_limit) for lim in permit.limits] == [
            ("a21026", 30.0)
        ]
        update = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "permits", AuditEntry.action == "update")
        ).one()
        assert update.before is not None and len(update.before["limits"]) == 2


def test_point_must_measure_exactly_one_thing_and_mn_is_unique(
    engine: Engine, demo_registry_path: Path, tmp_path: Path
) -> None:
    import_file(engine, demo_registry_path, "t")
    path = tmp_path / "points.json"
    path.write_text(
        json.dumps(
            {
                "points": [
                    {
                        "code": "X1",
                        "name": "both",
                        "site_code": "1001A",
                        "enterprise_uscc": GOOD_USCC,
                        "outlet_code": "DA001",
                    },
                    {
                        "code": "X2",
                        "name": "stolen MN",
                        "site_code": "1001A",
                        "mn": "88888880000001",
                    },
                    {"code": "X3", "name": "no such site", "site_code": "9999Z"},
                ]
            }
        ),
        encoding="utf-8",
    )
    report = import_file(engine, path, "t")
    assert report.accepted == {}
    reasons = [reason for _, reason in report.rejected]
    assert "either enterprise_uscc + outlet_code or site_code" in reasons[0]
    assert "MN 88888880000001 already belongs to point P0001" in reasons[1]
    assert "unknown site 9999Z" in reasons[2]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(MonitoringPoint)) == 33


def test_unknown_delete_kind_is_refused(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(service.RegistryError, match="cannot delete"):
        service.delete_entity(session, "observations", "x", "t")
