"""Every outlet's month at once (:mod:`ecohub.permits.bulk`) against the per-outlet path
(:func:`ecohub.permits.accounting.account_outlet`, :func:`ecohub.permits.tax.month_tax`,
themselves tested against a month computed by hand in ``test_permits_tax.py``), on both
backends.

The demo registry (five enterprises, gas and water outlets) gets March 2024 of hourly
means, drawn at random with a seed: most hours measured, some missing, invalid or valid
without a value, plus runs chosen to meet each rule: a gap at the month's start and end
(no neighbour: unresolved), gaps of 5, 24 (filled) and 25 hours (unresolved) in the
concentration, others in the flow, a gap against a shutdown, hours flagged ``F`` at the
hour, at a minute and on another parameter, and hours just outside the month that must
not count. 京西's stack has a second point that measured some of the hours its first
point missed and, at every 97th hour, an hour its first point measured too (three times
the value; the first point's must count, though the second's rows are stored first);
沪东 has a newer permit in force with another SO2 limit; 哈北's permit ended in February.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event, insert, select, update

from ecohub.permits import bulk
from ecohub.permits.accounting import account_outlet, month_hours
from ecohub.permits.tax import month_tax
from ecohub.registry.models import Enterprise, MonitoringPoint, Outlet, Permit, PermitLimit
from ecohub.standards import cems
from ecohub.timeseries.tables import observations, rollups

JINGXI = "91110106MA00DEM01H"
HUDONG = "91310115MA1HDEM025"
HEBEI = "91130100MA0DDEM04X"
HABEI = "91230100MA1BDEM05Q"  # permit ended in February
FLOW_CODES = {"gas": "a00000", "water": "w00000"}
NOW = dt.datetime(2024, 4, 2, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
# (point, code) → hour indexes without a row, for the rules' cases.
GAPS = {
    ("P0001", "a21026"): [*range(0, 3), *range(300, 305), *range(400, 424), *range(741, 744)],
    ("P0001", "a21002"): list(range(500, 525)),  # 25 hours: unresolved
    ("P0001", "a00000"): [*range(200, 203), 600],
    ("P0002", "a21026"): list(range(118, 121)),  # ends against the shutdown at 121
    ("P0002", "a00000"): list(range(50, 90)),
    ("P0003", "w01018"): list(range(10, 14)),  # waste water: never substituted
}
BOTH = 5  # at hours 5, 102, 199, …: both of 京西's points measured
# point → hour indexes flagged F, and how: (parameter, interval, minute)
SHUTDOWN = {
    "P0001": [(100, "a00000", "hour", 0), (101, "a21026", "min", 30)],
    "P0002": [(121, "a99999", "rt", 15), (122, "a00000", "hour", 0)],
    "P0003": [(700, "w00000", "hour", 0)],
}


def _row(point: int, code: str, at: dt.datetime, value: float | None, valid: bool) -> dict:
    return {
        "point_id": point, "parameter_code": code, "period": "hour", "ts": at, "value": value,
        "statistic": "mean", "samples": 60 if valid else 20, "received": 60, "valid": valid,
        "basis": "min", "flags": 0, "computed_at": NOW,
    }  # fmt: skip


def _observation(point: int, code: str, interval: str, at: dt.datetime, flag: str) -> dict:
    return {
        "point_id": point, "parameter_code": code, "interval": interval, "ts": at,
        "value": 1.0, "data_flag": flag, "quality_flag": 0, "source": "t", "ingested_at": NOW,
    }  # fmt: skip


def _series(engine: Engine) -> list[tuple[int, str, str]]:
    """(point id, point code, parameter code) of every series an outlet needs."""
    with engine.connect() as connection:
        found = connection.execute(
            select(
                MonitoringPoint.id, MonitoringPoint.code, Outlet.kind, PermitLimit.parameter_code
            )
            .join(Outlet, Outlet.id == MonitoringPoint.outlet_id)
            .join(PermitLimit, PermitLimit.outlet_id == Outlet.id)
        ).all()
    series = {(point, code, parameter) for point, code, _, parameter in found}
    series |= {(point, code, FLOW_CODES[kind]) for point, code, kind, _ in found}
    return sorted(series)


def _fill(engine: Engine, points: dict[str, int]) -> None:
    rng = np.random.default_rng(29)
    hours = month_hours(2024, 3)
    edges = [hours[0] - HOUR, hours[-1] + HOUR]  # outside the month: must not count
    rows, second = [], []
    for point, code, parameter in _series(engine):
        if code == "P0001B":  # the second point: only where the first missed an hour
            continue
        flow = parameter in FLOW_CODES.values()
        scale = 10.0 if flow else 40.0
        gaps = set(GAPS.get((code, parameter), ()))
        for index, at in enumerate([*hours, *edges]):
            draw = rng.random()
            value = float(rng.uniform(0.2, 1.8) * scale)
            if index in gaps or draw < 0.08:
                if code == "P0001" and index < len(hours) and draw < 0.04:
                    second.append(_row(points["P0001B"], parameter, at, value, True))
                continue
            if draw < 0.11:
                rows.append(_row(point, parameter, at, value, False))
            elif draw < 0.12:
                rows.append(_row(point, parameter, at, None, True))
            else:
                rows.append(_row(point, parameter, at, value if index < len(hours) else 1e6, True))
                if code == "P0001" and index < len(hours) and index % 97 == BOTH:
                    second.append(_row(points["P0001B"], parameter, at, 3 * value, True))
        # Rows the accounting must not read: another statistic in a gap, a day.
        if gaps:
            at = hours[min(gaps)]
            rows.append({**_row(point, parameter, at, 1e6, True), "statistic": "max"})
        rows.append({**_row(point, parameter, hours[16], 1e6, True), "period": "day"})
    flagged = [
        _observation(points[code], parameter, interval, hours[index] + dt.timedelta(minutes=m), "F")
        for code, marks in SHUTDOWN.items()
        for index, parameter, interval, m in marks
    ]
    flagged.append(_observation(points["P0004"], "w00000", "hour", hours[0] - HOUR, "F"))
    flagged.append(_observation(points["P0004"], "w00000", "hour", hours[3], "N"))
    with engine.begin() as connection:
        connection.execute(insert(rollups), second + rows)
        connection.execute(insert(observations), flagged)


@pytest.fixture
def march(engine: Engine, points: dict[str, int]) -> Engine:
    with engine.begin() as connection:
        outlet = connection.execute(
            select(MonitoringPoint.outlet_id).where(MonitoringPoint.code == "P0001")
        ).scalar_one()
        connection.execute(
            insert(MonitoringPoint).values(code="P0001B", name="second analyser", outlet_id=outlet)
        )
        hudong, habei = (
            connection.execute(select(Enterprise.id).where(Enterprise.uscc == uscc)).scalar_one()
            for uscc in (HUDONG, HABEI)
        )
        connection.execute(
            update(Permit)
            .where(Permit.enterprise_id == habei)
            .values(valid_to=dt.date(2024, 2, 29))
        )
        renewed = connection.execute(
            insert(Permit)
            .values(
                permit_no="renewed",
                enterprise_id=hudong,
                valid_from=dt.date(2024, 3, 10),
                valid_to=dt.date(2029, 3, 9),
            )
            .returning(Permit.id)
        ).scalar_one()
        stack = connection.execute(
            select(Outlet.id).where(Outlet.enterprise_id == hudong, Outlet.code == "DA001")
        ).scalar_one()
        connection.execute(
            insert(PermitLimit).values(
                permit_id=renewed,
                outlet_id=stack,
                parameter_code="a21026",
                concentration_limit=35.0,
                unit="mg/m³",
            )
        )
        points["P0001B"] = connection.execute(
            select(MonitoringPoint.id).where(MonitoringPoint.code == "P0001B")
        ).scalar_one()
    _fill(engine, points)
    return engine


def test_every_outlet_at_once_as_one_at_a_time(march: Engine) -> None:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(march, "before_cursor_execute", count)
    accounts = bulk.account_month(march, 2024, 3)
    event.remove(march, "before_cursor_execute", count)
    assert len(statements) <= 8  # set-based: not a query per outlet
    assert {e.uscc for e in accounts.enterprises} == {
        JINGXI, HUDONG, HEBEI, "91440101MA5CDEM03X"
    }  # fmt: skip
    hours = month_hours(2024, 3)
    with march.connect() as connection:
        outlets = connection.execute(select(Outlet)).all()
        one_by_one = {
            outlet.id: [item.summary() for item in account_outlet(connection, outlet, hours)]
            for outlet in outlets
            if outlet.id in accounts.accounted
        }
    assert len(one_by_one) == 6
    assert accounts.accounted == one_by_one
    # The month met every rule.
    items = [item for found in one_by_one.values() for item in found]
    totals = [item.totals for item in items]
    assert all(sum(t.__dict__[k] for t in totals) > 0 for k in cems.Totals.__dataclass_fields__)
    assert {item.usable_as_basis for item in items} == {True, False}
    hudong_so2 = next(i for i in items if i.parameter_code == "a21026" and i.limit == 35.0)
    assert hudong_so2.totals.hours_shutdown == 2


def test_of_two_points_measuring_an_hour_the_first_registered_counts(march: Engine) -> None:
    hours = month_hours(2024, 3)
    with march.connect() as connection:
        first, second = connection.execute(
            select(MonitoringPoint.id)
            .where(MonitoringPoint.code.in_(["P0001", "P0001B"]))
            .order_by(MonitoringPoint.id)
        ).scalars()
        outlet = connection.execute(
            select(Outlet).join(MonitoringPoint).where(MonitoringPoint.id == first)
        ).one()
        stored = connection.execute(
            select(rollups.c.point_id, rollups.c.ts, rollups.c.value).where(
                rollups.c.parameter_code == "a21026",
                rollups.c.period == "hour",
                rollups.c.statistic == "mean",
                rollups.c.valid.is_(True),
                rollups.c.point_id.in_([first, second]),
            )
        ).all()
        so2 = next(
            i for i in account_outlet(connection, outlet, hours) if i.parameter_code == "a21026"
        )
    by_point: dict[int, dict[dt.datetime, float]] = {first: {}, second: {}}
    for point, at, value in stored:
        by_point[point][at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at] = value
    both = sorted(set(by_point[first]) & set(by_point[second]))
    assert len(both) >= 3
    for at in both:
        assert by_point[second][at] == pytest.approx(3 * by_point[first][at])
        assert so2.accounting.hours[hours.index(at)].concentration == by_point[first][at]


def test_every_enterprises_tax_as_month_tax(march: Engine) -> None:
    found = {entry["uscc"]: entry for entry in bulk.month_all(march, 2024, 3)}
    assert HABEI not in found and len(found) == 4
    for uscc, entry in found.items():
        assert entry == month_tax(march, uscc, 2024, 3)
    assert found[JINGXI]["tax"] > 0 and found[HUDONG]["outlets"][1]["tax"] > 0
    assert found[HEBEI]["outlets"][0]["error"]  # 河北 sets its rates by zone
    zoned = bulk.month_all(march, 2024, 3, zone="一档", rate={"water": 3.5})
    for entry in zoned:
        assert entry == month_tax(march, entry["uscc"], 2024, 3, zone="一档", rate={"water": 3.5})
    assert next(e for e in zoned if e["uscc"] == HEBEI)["tax"] > 0


def test_progress_is_reported(march: Engine) -> None:
    seen: list[tuple[str, int, int]] = []
    bulk.month_all(march, 2024, 3, progress=lambda *args: seen.append(args))
    stages = [what for what, _, _ in seen]
    assert stages[0] == "hourly means" and "outlets" in stages and stages[-1] == "tax"
    assert seen[-1][1] == seen[-1][2] == 4


def test_a_month_without_permits(engine: Engine) -> None:
    assert bulk.month_all(engine, 2024, 3) == []
    with pytest.raises(ValueError, match="not a month"):
        bulk.month_all(engine, 2024, 13)


def _cems_fill(
    values: np.ndarray, measured: np.ndarray, shutdown: np.ndarray, gas: bool
) -> list[Any]:
    """Each hour's (value, basis) by the per-outlet rules, one series at a time."""
    out = []
    for value_row, measured_row, shutdown_row in zip(values, measured, shutdown, strict=True):
        hours = [
            cems.Hour(
                float(v),
                1.0,
                cems.HourState.SHUTDOWN
                if s
                else cems.HourState.VALID
                if m
                else cems.HourState.MISSING,
            )
            for v, m, s in zip(value_row, measured_row, shutdown_row, strict=True)
        ]
        account = cems.account_flue_gas if gas else cems.account_wastewater
        out.append([(h.concentration, h.concentration_basis) for h in account(hours).hours])
    return out


@pytest.mark.parametrize("gas", [True, False])
def test_fill_gaps_is_the_cems_rule(gas: bool) -> None:
    rng = np.random.default_rng(7)
    rows, hours = 300, 120
    values = rng.uniform(0, 100, (rows, hours))
    # Runs of every length, so that gaps of 1-40 hours and gaps at the edges occur.
    measured = np.repeat(rng.random((rows, hours // 4)) < 0.6, 4, axis=1)
    measured &= rng.random((rows, hours)) < 0.9
    measured[::7, 30:54] = False  # 24 hours
    measured[::7, [29, 54]] = True
    measured[1::7, 30:55] = False  # 25 hours
    measured[1::7, [29, 55]] = True
    shutdown = np.repeat(rng.random((rows, hours // 8)) < 0.1, 8, axis=1)
    basis_of = {
        bulk.MEASURED: cems.Basis.MEASURED,
        bulk.SHORT_GAP: cems.Basis.SHORT_GAP,
        bulk.SHUTDOWN: cems.Basis.SHUTDOWN,
        bulk.UNRESOLVED: cems.Basis.UNRESOLVED,
    }
    used, basis = bulk.fill_gaps(values, measured, shutdown, np.full(rows, 24 if gas else -1))
    found = [
        [(None if np.isnan(v) else float(v), basis_of[int(b)]) for v, b in zip(u, k, strict=True)]
        for u, k in zip(used, basis, strict=True)
    ]
    assert found == _cems_fill(values, measured, shutdown, gas)
    kinds = set(basis.ravel().tolist())
    assert kinds == ({0, 1, 2, 3} if gas else {0, 2, 3})


def test_the_command_runs_every_enterprise(
    march: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from ecohub.cli.main import app
    from ecohub.config import get_settings

    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    get_settings.cache_clear()
    out = tmp_path / "month.json"
    done = CliRunner().invoke(app, ["permits", "tax-all", "2024-03", "--out", str(out)])
    assert done.exit_code == 0, done.output
    written = {entry["uscc"]: entry["tax"] for entry in json.loads(out.read_text("utf-8"))}
    assert written == {entry["uscc"]: entry["tax"] for entry in bulk.month_all(march, 2024, 3)}
    assert "4 enterprises" in done.output
    bad = CliRunner().invoke(app, ["permits", "tax-all", "2024-13"])
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    get_settings.cache_clear()
