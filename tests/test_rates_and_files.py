"""Transmission and effective-data rates, and the file door (CSV / JSON-lines backfill)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from ecohub.db.quarantine import quarantine
from ecohub.ingest.files import FileFormatError, count_rows, import_measurement_file
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.rates import daily_rates
from ecohub.timeseries.tables import observations, rollups

CST = dt.timezone(dt.timedelta(hours=8))
DAY = dt.date(2024, 1, 15)
MIDNIGHT = dt.datetime(2024, 1, 15, tzinfo=CST)


def test_rates_count_slots_received_and_valid(engine: Engine, points: dict[str, int]) -> None:
    station = points["1001A"]  # hourly station: 24 slots a day
    rows = []
    for hour in range(24):
        if hour in (5, 6):
            continue  # never arrived
        flag = "D" if hour in (10, 11) else "N"  # device fault: received, not valid
        value = 30.0 + hour
        ts = MIDNIGHT + dt.timedelta(hours=hour)
        rows.append(Observation(station, "a34004", "hour", ts, value, flag, 0, "t"))
        rows.append(Observation(station, "a34002", "hour", ts, value + 20, "N", 0, "t"))
    Pipeline(engine).process(rows, now=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    (rate,) = daily_rates(engine, DAY, point_codes=["1001A"])
    assert (rate.expected, rate.received, rate.valid) == (24, 22, 20)
    assert rate.transmission_rate == pytest.approx(22 / 24)
    assert rate.effective_rate == pytest.approx(20 / 24)
    # A point that sent nothing: 0 of 24 (the point P0001 expects one reading a minute).
    (silent,) = daily_rates(engine, DAY, point_codes=["P0001"])
    assert (silent.expected, silent.received) == (1440, 0)
    # Half-way through the day only the slots so far are owed.
    (partial,) = daily_rates(
        engine, DAY, point_codes=["1001A"], now=MIDNIGHT + dt.timedelta(hours=12)
    )
    assert partial.expected == 12


def test_csv_backfill_quarantines_bad_rows_and_keeps_the_rest(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    path = tmp_path / "backfill.csv"
    lines = ["point,parameter,interval,ts,value,flag"]
    for hour in range(24):
        ts = (MIDNIGHT + dt.timedelta(hours=hour)).isoformat()
        lines.append(f"1001A,a34004,hour,{ts},{40 + hour},N")
        if hour == 3:
            lines.append(f"1001A,a34004,hour,{ts},abc,N")  # bad value
            lines.append(f"NOPE,a34004,hour,{ts},1,N")  # unknown point
            lines.append(f"1001A,a34004,hour,{ts},1,X")  # bad flag
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert count_rows(path) == 27
    seen: list[int] = []
    result = import_measurement_file(Pipeline(engine), path, progress=seen.append)
    assert (result.rows, result.values, result.rejected) == (27, 24, 3)
    assert result.reasons == {"bad_field": 2, "unknown_point": 1}
    assert seen[-1] == 27
    with engine.connect() as connection:
        stored = connection.execute(
            select(func.count(), func.sum(observations.c.value)).where(
                observations.c.point_id == points["1001A"]
            )
        ).one()
        reasons = connection.execute(select(quarantine.c.reason)).scalars().all()
        day = connection.execute(
            select(rollups.c.value).where(rollups.c.period == "day", rollups.c.ts == MIDNIGHT)
        ).scalar()
    assert tuple(stored) == (24, sum(40 + h for h in range(24)))
    assert any("line 6" in reason for reason in reasons)  # header is line 1
    assert day == pytest.approx(sum(40 + h for h in range(24)) / 24)
    again = import_measurement_file(Pipeline(engine), path)
    assert again.written == 0 and again.unchanged == 24


def test_file_with_a_wrong_header_is_refused(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("station,time,pm25\n1001A,2024-01-01,3\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="header must use the columns"):
        import_measurement_file(Pipeline(engine), path)
