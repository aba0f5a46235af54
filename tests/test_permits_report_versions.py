"""A change issued mid-period (a new version of the same permit, 变更): the execution
report counts an hour above the limit against the version in force at that hour, and
lists the limits in force with their dates; a limit stated at a reference O2 content is
judged on the converted concentration, as the limit alarms judge it.

The demo permit of 京西 limits NOx at DA001 to 30 mg/m³; version 2, from 3 March 2024, to
15 mg/m³. NOx measured 20-22 mg/m³ every hour of 1-4 March (Beijing time) exceeds only
the 48 hours of 3 and 4 March."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, insert, select, update

from ecohub.ingest.pipeline import Pipeline
from ecohub.permits import reports
from ecohub.permits.accounting import month_hours
from ecohub.registry.models import Outlet, Permit, PermitLimit
from ecohub.timeseries.observations import Observation
from tests.test_permits_tax_sources import _limit, fill_march

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


@pytest.fixture
def march(engine: Engine, points: dict[str, int]) -> Engine:
    return fill_march(engine, points)


def test_exceedances_at_the_reference_oxygen_as_the_alarms_judge(march: Engine) -> None:
    """SO2 limit 7 mg/m³ at DA001; the data (``tests/test_permits_tax_sources.py``): even
    hours 3 mg/m³ at 11 % O2, odd hours 5 at 13 %, 370 measured hours of each. Measured as
    is, no hour exceeds 7. Stated at 9 % O2 (GB 13271-2014 formula (1), × (21 − 9) /
    (21 − O2)): even 3 × 12/10 = 3.6, odd 5 × 12/8 = 7.5 > 7: the 370 odd hours exceed."""
    period = (dt.date(2024, 3, 1), dt.date(2024, 3, 31))

    def so2() -> dict:
        with march.connect() as connection:
            built = reports.build(connection, PERMIT, "monthly", *period)
        return next(
            p for o in built["outlets"] for p in o["pollutants"] if p["parameter_code"] == "a21026"
        )

    _limit(march, "a21026", concentration_limit=7.0)
    assert so2()["exceedance_hours"] == 0
    _limit(march, "a21026", concentration_limit=7.0, reference_o2=9.0)
    assert so2()["exceedance_hours"] == 370
