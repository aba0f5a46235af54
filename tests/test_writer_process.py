"""The writer process's loop (``ecohub.ingest.writer_process._write_batches``), run in a
thread over a pipe: batches are checked while the previous one commits, answered in
order, and a batch whose commit fails is answered with its error while the batches
around it are stored."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import pickle
import platform
import sys
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ecohub.ingest.pipeline import Pipeline, PreparedBatch
from ecohub.ingest.writer_process import (
    WriterProcess,
    _write_batches,
    batch_columns,
    batch_rows,
    unpack_batch,
)
from ecohub.runtime import tune_memory_allocator
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import observations, rollups

T0 = dt.datetime(2024, 1, 15, tzinfo=dt.UTC)


def _minute(point: int, minute: int, so2: float) -> list[Observation]:
    ts = T0 + dt.timedelta(minutes=minute)
    return [
        Observation(point, "a21026", "min", ts, so2, "N", 0, "t"),
        Observation(point, "a00000", "min", ts, 5.0, "N", 0, "t"),
    ]


def _run(pipeline: Pipeline, batches: list[list[Observation]]) -> list[tuple[str, Any]]:
    parent, child = multiprocessing.Pipe()
    loop = threading.Thread(target=_write_batches, args=(child, pipeline))
    loop.start()
    for batch in batches:  # all sent at once: each is checked while the one before commits
        parent.send((batch_columns(batch), []))
    answers = [parent.recv() for _ in batches]
    parent.send(None)  # stop: recomputes what is still queued
    loop.join(60)
    assert not loop.is_alive()
    return answers


def _so2_values(engine: Engine, point: int) -> list[float]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(observations.c.value)
                .where(observations.c.point_id == point, observations.c.parameter_code == "a21026")
                .order_by(observations.c.ts)
            ).scalars()
        )


def test_batches_are_answered_in_order_and_rolled_up(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    pipeline = Pipeline(engine, rollup_delay=3600)
    answers = _run(pipeline, [_minute(point, 10 * i, float(i)) for i in range(6)])
    assert [status for status, _result in answers] == ["ok"] * 6
    assert [result.written for _status, result in answers] == [2] * 6
    assert _so2_values(engine, point) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with engine.connect() as connection:
        hour = connection.execute(
            select(rollups.c.value, rollups.c.valid).where(
                rollups.c.point_id == point,
                rollups.c.parameter_code == "a21026",
                rollups.c.period == "hour",
            )
        ).one()
    assert tuple(hour) == (pytest.approx(2.5), True)  # (0 + … + 5) / 6, 60 minutes


def test_a_failed_commit_is_answered_with_its_error_and_the_rest_is_stored(
    engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    point = points["P0001"]
    pipeline = Pipeline(engine, rollup_delay=3600)
    original = pipeline.commit
    commits = []

    def commit(batch: PreparedBatch) -> Any:
        commits.append(batch)
        if len(commits) == 2:
            raise RuntimeError("connection lost")
        return original(batch)

    monkeypatch.setattr(pipeline, "commit", commit)
    answers = _run(
        pipeline, [_minute(point, 0, 1.0), _minute(point, 10, 2.0), _minute(point, 20, 3.0)]
    )
    assert [status for status, _result in answers] == ["ok", "error", "ok"]
    assert "connection lost" in answers[1][1]
    assert _so2_values(engine, point) == [1.0, 3.0]
    assert len(commits) == 3  # the failed batch is not retried here: its sender resends
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(observations)).scalar()
    assert stored == 4


def test_a_batch_crosses_the_pipe_as_columns_and_comes_back_whole() -> None:
    rows = [*_minute(1, 0, 3.5), Observation(2, "w01018", "rt", T0, None, "D", 4, "mqtt")]
    columns = batch_columns(rows)
    assert columns[0] == (1, 1, 2) and columns[4] == (3.5, 5.0, None)
    assert batch_rows(columns) == rows
    assert all(isinstance(row, Observation) for row in batch_rows(columns))
    assert batch_rows(batch_columns([])) == []


def test_journaled_batches_sent_together_are_written_as_one() -> None:
    first = [*_minute(1, 0, 3.5)]
    second = [*_minute(2, 0, 4.5), Observation(2, "w01018", "rt", T0, None, "D", 4, "mqtt")]
    payloads = [
        pickle.dumps((batch_columns(first), [])),
        pickle.dumps((batch_columns(second), ["rejected input"])),
    ]
    rows, rejected = unpack_batch(payloads)
    assert rows == first + second
    assert rejected == ["rejected input"]
    # One payload crosses the pipe as its bytes, exactly as send() would have pickled it.
    assert unpack_batch(pickle.loads(payloads[0])) == (first, [])


def test_the_writer_process_takes_the_configured_niceness(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECOHUB_WRITER_NICENESS", "3")  # read by the spawned child
    writer = WriterProcess(database_url)
    writer.start()
    try:
        child = writer._process.pid
        assert os.getpriority(os.PRIO_PROCESS, child) == os.getpriority(os.PRIO_PROCESS, 0) + 3
    finally:
        writer.close(timeout=10)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_the_allocator_is_tuned_on_glibc() -> None:
    # Both settings accepted: at most two arenas, a fixed mmap threshold (runtime.py).
    assert tune_memory_allocator() is True
