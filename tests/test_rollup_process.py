"""The rollup process beside the writer: the batch writer's child processes write raw
values and recompute the queued hours separately, and nothing queued is left at close or
lost when the rollup process dies. Expected values are computed by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import Engine, func, select

from ecohub.ingest.batch_writer import BatchWriter
from ecohub.ingest.pipeline import Pipeline
from ecohub.ingest.rollup_process import RollupProcess
from ecohub.store.observations import Observation
from ecohub.store.tables import rollup_queue, rollups

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 15, tzinfo=UTC)
NOW = dt.datetime(2024, 3, 1, tzinfo=UTC)


def _minute_rows(point: int, hour: int, first: int, count: int) -> list[Observation]:
    """Ten-minute SO2 values first, first + 1, … with flow, in hour ``hour``."""
    rows = []
    for i in range(count):
        ts = T0 + dt.timedelta(hours=hour, minutes=10 * i)
        rows.append(Observation(point, "a21026", "min", ts, float(first + i), "N", 0, "t"))
        rows.append(Observation(point, "a00000", "min", ts, 5.0, "N", 0, "t"))
    return rows


def _hour_value(engine: Engine, point: int, hour: int) -> tuple[float | None, bool] | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(rollups.c.value, rollups.c.valid).where(
                rollups.c.point_id == point,
                rollups.c.parameter_code == "a21026",
                rollups.c.period == "hour",
                rollups.c.ts == T0 + dt.timedelta(hours=hour),
            )
        ).one_or_none()
    return None if row is None else (row[0], row[1])


def _queued(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(rollup_queue)).scalar())


def _file_store(engine: Engine) -> None:
    if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
        pytest.skip("child processes need a store on disk")


def test_the_batch_writer_process_computes_rollups_while_running_and_at_close(
    engine: Engine, points: dict[str, int]
) -> None:
    _file_store(engine)
    point = points["P0001"]

    async def run() -> tuple[BatchWriter, float | None]:
        writer = BatchWriter(engine, separate_process=True, rollup_delay=0.2)
        await writer.start()
        # On PostgreSQL the rollups have a process of their own; SQLite's one write
        # lock makes the writer process recompute them between batches.
        assert (writer.rollups is not None) == (engine.dialect.name == "postgresql")
        await writer.submit(_minute_rows(point, 0, 10, 6))  # mean 12.5
        deadline = time.monotonic() + 30
        while _hour_value(engine, point, 0) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        computed_while_running = _hour_value(engine, point, 0)
        # Values of a new hour, then close at once: the final flush computes them.
        await writer.submit(_minute_rows(point, 1, 20, 6))  # mean 22.5
        await writer.close()
        return writer, None if computed_while_running is None else computed_while_running[0]

    _writer, running_value = asyncio.run(run())
    assert running_value == pytest.approx(12.5)  # (10 + 11 + … + 15) / 6
    assert _hour_value(engine, point, 1) == (pytest.approx(22.5), True)
    assert _queued(engine) == 0


def test_a_dead_rollup_process_is_restarted_and_the_queue_is_kept(
    engine: Engine, points: dict[str, int]
) -> None:
    _file_store(engine)
    point = points["P0001"]
    url = engine.url.render_as_string(hide_password=False)
    # Raw values stored and their hour queued, as the writer process leaves them.
    Pipeline(engine, rollup_delay=3600).process(_minute_rows(point, 0, 0, 6), now=NOW)
    assert _queued(engine) == 2  # SO2 and flow
    process = RollupProcess(url, rollup_delay=3600)  # never due by itself after start-up
    process.start()
    try:
        deadline = time.monotonic() + 30
        while _queued(engine) and time.monotonic() < deadline:  # the start-up flush
            time.sleep(0.1)
        assert _hour_value(engine, point, 0) == (pytest.approx(2.5), True)

        Pipeline(engine, rollup_delay=3600).process(_minute_rows(point, 2, 30, 6), now=NOW)
        process._process.kill()  # dies with the hour queued
        process._process.join(5)
        process.ensure_running()
        assert process.restarts == 1
        deadline = time.monotonic() + 30
        while _queued(engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _hour_value(engine, point, 2) == (pytest.approx(32.5), True)
    finally:
        process.close()
    assert _queued(engine) == 0


def test_a_flush_beside_the_writer_leaves_an_hour_queued_again_meanwhile(
    engine: Engine, points: dict[str, int]
) -> None:
    """The rollup process reads the queue without taking it; an hour that the writer
    queues again before the entries are removed keeps its new entry."""
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600)
    writer.process(_minute_rows(point, 0, 0, 3), now=NOW)
    rollups_side = Pipeline(engine, rollup_delay=3600)
    original = rollups_side._recompute_queued

    at = T0 + dt.timedelta(minutes=30)
    later = [
        Observation(point, "a21026", "min", at, 4.0, "N", 0, "t"),
        Observation(point, "a00000", "min", at, 5.0, "N", 0, "t"),
    ]

    def recompute_while_the_writer_writes(*args: object, **kwargs: object) -> None:
        original(*args, **kwargs)  # type: ignore[arg-type]
        writer.process(later, now=NOW)

    rollups_side._recompute_queued = recompute_while_the_writer_writes  # type: ignore[method-assign]
    rollups_side.flush_rollups(now=NOW, alongside_writer=True)
    assert _hour_value(engine, point, 0) == (pytest.approx(1.0), False)  # 0, 1, 2: 30 min
    assert _queued(engine) == 2  # queued again by the later values: SO2 and flow
    Pipeline(engine, rollup_delay=3600).flush_rollups(now=NOW, alongside_writer=True)
    assert _hour_value(engine, point, 0) == (pytest.approx(1.75), False)  # 0, 1, 2, 4: 40 min
    assert _queued(engine) == 0
