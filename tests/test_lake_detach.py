"""An old month leaves the live store for the lake only once the lake holds it as the
store has it (both backends; on SQLite, with no partitions, nothing is detached)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from ecohub.ingest.pipeline import Pipeline
from ecohub.lake.detach import NotInLake, detach_exported
from ecohub.lake.export import export
from ecohub.lake.query import run
from ecohub.timeseries import partitions
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import observations

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
TZ = "Asia/Shanghai"


def _rows(point: int, day: dt.date) -> list[Observation]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return [
        Observation(point, "a21026", "hour", start + dt.timedelta(hours=h), 10.0 + h, "N", 0, "t")
        for h in range(24)
    ]


def _count(engine: Engine, start: dt.datetime, end: dt.datetime) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(observations.c.ts >= start, observations.c.ts < end)
            ).scalar_one()
        )


def test_a_month_is_detached_only_when_the_lake_holds_it(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    pipeline = Pipeline(engine, alarms=False)
    pipeline.process(_rows(points["P0001"], dt.date(2024, 1, 10)), now=NOW)
    pipeline.process(_rows(points["P0001"], dt.date(2024, 2, 10)), now=NOW)
    january = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    lake = tmp_path / "lake"
    with pytest.raises(NotInLake, match="not in the lake"):
        detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone=TZ)
    # Late data for January after the export: the lake's copy is stale.
    pipeline.process(_rows(points["P0002"], dt.date(2024, 1, 11)), now=NOW)
    with pytest.raises(NotInLake, match="changed since the lake's copy"):
        detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone=TZ)
    names = detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    in_lake = run(lake, "SELECT count(*) AS n FROM observations WHERE year = 2024 AND month = 1")
    assert in_lake["n"][0] == 48
    if engine.dialect.name == "sqlite":
        assert names == [] and _count(engine, *january) == 48
        return
    assert names == ["partitions.observations_2024_01", "partitions.rollups_2024_01"]
    assert _count(engine, *january) == 0  # gone from the live tables, kept in the lake
    states = {p.name: p.attached for p in partitions.list_partitions(engine)}
    assert states["partitions.observations_2024_01"] is False
    partitions.attach(engine, dt.date(2024, 1, 1))
    assert _count(engine, *january) == 48
