"""A change issued mid-period (a new version of the same permit, 变更): the execution
report counts an hour above the limit against the version in force at that hour, and
lists the limits in force with their dates. The demo permit of 京西 limits NOx at DA001
to 30 mg/m³; version 2, from 3 March 2024, to 15 mg/m³. NOx measured 20-22 mg/m³ every hour
of 1-4 March (Beijing time) exceeds only the 48 hours of 3 and 4 March."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, insert, select, update

from ecohub.ingest.pipeline import Pipeline
from ecohub.permits import reports
from ecohub.permits.accounting import month_hours
from ecohub.registry.models import Outlet, Permit, PermitLimit
from ecohub.timeseries.observations import Observation

PERMIT = "91110106MA00DEM01H001P"


def test_exceedances_count_against_the_version_in_force(
    engine: Engine, points: dict[str, int]
) -> None:
    hours = month_hours(2024, 3)
    rows = [  # varied, so that no flat-line check invalidates them
        Observation(points["P0001"], code, "hour", at, value, "N", 0, "t")
        for index, at in enumerate(hours[:96])
        for code, value in (("a21002", 20.0 + index % 3), ("a00000", 10.0 + index % 2))
    ]
    Pipeline(engine).process(rows, now=dt.datetime(2024, 4, 2, tzinfo=dt.UTC))
    with engine.begin() as connection:
        first = connection.execute(select(Permit).where(Permit.permit_no == PERMIT)).one()
        connection.execute(
            update(Permit).where(Permit.id == first.id).values(valid_to=dt.date(2024, 3, 2))
        )
        second = connection.execute(
            insert(Permit)
            .values(
                permit_no=PERMIT,
                version=2,
                enterprise_id=first.enterprise_id,
                valid_from=dt.date(2024, 3, 3),
                valid_to=dt.date(2027, 12, 31),
            )
            .returning(Permit.id)
        ).scalar_one()
        stack = connection.execute(
            select(Outlet.id).where(
                Outlet.enterprise_id == first.enterprise_id, Outlet.code == "DA001"
            )
        ).scalar_one()
        connection.execute(
            insert(PermitLimit).values(
                permit_id=second,
                outlet_id=stack,
                parameter_code="a21002",
                concentration_limit=15.0,
                unit="mg/m³",
            )
        )
        built = reports.build(
            connection, PERMIT, "monthly", dt.date(2024, 3, 1), dt.date(2024, 3, 31)
        )
    assert [v["version"] for v in built["versions"]] == [1, 2]
    nox = next(
        p for o in built["outlets"] if o["code"] == "DA001" for p in o["pollutants"]
        if p["parameter_code"] == "a21002"
    )  # fmt: skip
    assert nox["hours_measured"] == 96
    assert nox["exceedance_hours"] == 48
    assert nox["exceedances"][0]["from"].startswith("2024-03-03 00:00")
    assert nox["limits_in_force"] == [
        {"from": "2024-03-01", "to": "2024-03-02", "limit": 30.0},
        {"from": "2024-03-03", "to": "2024-03-31", "limit": 15.0},
    ]
    assert built["exceedance_hours"] == 48
