"""Deferred rollups from the writer's memory of open hours (ecohub.timeseries.open_hours):
the hours come out as the store's values say, whoever else writes them; the store is
only summarised where the memory cannot be trusted. Expected values are computed by
hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from sqlalchemy import Engine, func, select

import ecohub.timeseries.rollups as store_rollups
from ecohub.ingest.batch_writer import BatchWriter
from ecohub.ingest.pipeline import Pipeline
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import rollup_queue, rollups

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

    async def run() -> tuple[float | None, object]:
        writer = BatchWriter(engine, separate_process=True, rollup_delay=0.2)
        await writer.start()
        await writer.submit(_minute_rows(point, 0, 10, 6))  # mean 12.5
        # Values of the next hour end hour 0, which is then due within the delay; the
        # next hour is in progress and waits for its refresh (five minutes).
        await writer.submit(_minute_rows(point, 1, 20, 6))  # mean 22.5
        deadline = time.monotonic() + 30
        while _hour_value(engine, point, 0) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        computed_while_running = _hour_value(engine, point, 0)
        in_progress = _hour_value(engine, point, 1)
        await writer.close()  # the final flush computes the hour in progress
        return None if computed_while_running is None else computed_while_running[0], in_progress

    running_value, in_progress = asyncio.run(run())
    assert running_value == pytest.approx(12.5)  # (10 + 11 + … + 15) / 6
    assert in_progress is None
    assert _hour_value(engine, point, 1) == (pytest.approx(22.5), True)
    assert _queued(engine) == 0


def test_the_writer_process_refreshes_the_hour_in_progress(
    engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    _file_store(engine)
    monkeypatch.setenv("ECOHUB_CURRENT_HOUR_REFRESH", "0.3")  # read by the writer process
    point = points["P0001"]

    async def run() -> tuple[float | None, float | None]:
        writer = BatchWriter(engine, separate_process=True, rollup_delay=0.1)
        await writer.start()
        await writer.submit(_minute_rows(point, 0, 10, 3))  # mean 11 so far
        deadline = time.monotonic() + 30
        while _hour_value(engine, point, 0) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first = _hour_value(engine, point, 0)
        await writer.submit(_minute_rows(point, 0, 10, 6)[6:])  # 13, 14, 15: mean 12.5
        while _hour_value(engine, point, 0) == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        second = _hour_value(engine, point, 0)
        await writer.close()
        return (None if first is None else first[0]), (None if second is None else second[0])

    first, second = asyncio.run(run())
    # Three ten-minute values are too few for a valid hour, but the mean is shown.
    assert first == pytest.approx(11.0)
    assert second == pytest.approx(12.5)


@pytest.fixture
def summarised(monkeypatch: pytest.MonkeyPatch) -> list[set[tuple[int, str, dt.datetime]]]:
    """The hours each recomputation asked the store to summarise."""
    calls: list[set[tuple[int, str, dt.datetime]]] = []
    original = store_rollups._hour_summaries

    def spy(connection, dirty, lookahead=0):  # type: ignore[no-untyped-def]
        calls.append(set(dirty))
        return original(connection, dirty, lookahead)

    monkeypatch.setattr(store_rollups, "_hour_summaries", spy)
    return calls


def _so2_hours(calls: list[set[tuple[int, str, dt.datetime]]]) -> list[int]:
    return [sum(1 for _p, code, _h in call if code == "a21026") for call in calls]


def test_an_hour_is_summarised_by_the_store_once_then_kept_in_memory(
    engine: Engine, points: dict[str, int], summarised: list[set[tuple[int, str, dt.datetime]]]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600)
    writer.process(_minute_rows(point, 0, 10, 2), now=NOW)  # 10, 11
    writer.flush_rollups(now=NOW)
    assert _hour_value(engine, point, 0) == (pytest.approx(10.5), False)  # 20 minutes
    writer.process(_minute_rows(point, 0, 10, 6)[4:], now=NOW)  # 12, 13, 14, 15
    writer.flush_rollups(now=NOW + dt.timedelta(seconds=1))
    assert _hour_value(engine, point, 0) == (pytest.approx(12.5), True)
    # The next hour started empty in memory when the first flush found nothing there.
    writer.process(_minute_rows(point, 1, 20, 6), now=NOW)
    writer.flush_rollups(now=NOW + dt.timedelta(seconds=2))
    assert _hour_value(engine, point, 1) == (pytest.approx(22.5), True)
    assert _so2_hours(summarised) == [1, 0, 0]
    assert _queued(engine) == 0


def test_a_value_another_writer_stored_meanwhile_counts(
    engine: Engine, points: dict[str, int], summarised: list[set[tuple[int, str, dt.datetime]]]
) -> None:
    """A file import (a writer of its own, recomputing at once) fills a gap of the hour
    the gateway's writer holds in memory: its next recomputation of the hour asks the
    store again, as another writer recomputed rollups since its own last recomputation
    (the store's rollup generation moved on by two, not one)."""
    point = points["P0001"]
    gateway = Pipeline(engine, rollup_delay=3600)
    rows = _minute_rows(point, 0, 0, 6)  # 0 … 5 at minutes 0 … 50
    gateway.process(rows[:4], now=NOW)  # 0, 1
    gateway.flush_rollups(now=NOW)
    Pipeline(engine).process(rows[6:8], now=NOW + dt.timedelta(milliseconds=1))  # 3
    assert _hour_value(engine, point, 0) == (pytest.approx(4 / 3), False)  # 0, 1, 3
    gateway.process(rows[8:], now=NOW)  # 4, 5
    gateway.flush_rollups(now=NOW + dt.timedelta(seconds=1))
    assert _hour_value(engine, point, 0) == (pytest.approx(13 / 5), True)  # 0, 1, 3, 4, 5
    assert _so2_hours(summarised) == [1, 1, 1]  # gateway, import, gateway again


def test_another_writers_recomputation_of_any_hour_voids_the_memory(
    engine: Engine, points: dict[str, int], summarised: list[set[tuple[int, str, dt.datetime]]]
) -> None:
    """The generation is counted per store, not per hour: an import into another point
    makes the gateway's writer summarise its own hour from the store once more (the
    price of one cheap check per recomputation instead of one per hour)."""
    point, other = points["P0001"], points["P0002"]
    gateway = Pipeline(engine, rollup_delay=3600)
    rows = _minute_rows(point, 0, 0, 6)
    gateway.process(rows[:4], now=NOW)
    gateway.flush_rollups(now=NOW)
    gateway.process(rows[4:8], now=NOW)
    gateway.flush_rollups(now=NOW)  # from memory
    Pipeline(engine).process(_minute_rows(other, 0, 0, 2), now=NOW)
    gateway.process(rows[8:], now=NOW)
    gateway.flush_rollups(now=NOW)  # from the store again
    assert _hour_value(engine, point, 0) == (pytest.approx(15 / 6), True)  # 0 … 5
    assert _so2_hours(summarised) == [1, 0, 1, 1]  # gateway, memory, import, gateway


def test_an_hour_two_deferring_writers_queued_is_summarised_by_the_store(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    first = Pipeline(engine, rollup_delay=3600)
    second = Pipeline(engine, rollup_delay=3600)
    rows = _minute_rows(point, 0, 0, 6)
    first.process(rows[:4], now=NOW)  # 0, 1
    first.flush_rollups(now=NOW)  # the hour is now in the first writer's memory
    second.process(rows[4:6], now=NOW)  # 2
    first.process(rows[6:], now=NOW)  # 3, 4, 5: the queue entry is now shared
    first.flush_rollups(now=NOW + dt.timedelta(seconds=1))
    assert _hour_value(engine, point, 0) == (pytest.approx(2.5), True)  # 0 … 5
    assert _queued(engine) == 0


def test_a_corrected_value_makes_the_writer_forget_the_hour(
    engine: Engine, points: dict[str, int], summarised: list[set[tuple[int, str, dt.datetime]]]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600)
    rows = _minute_rows(point, 0, 10, 6)  # 10 … 15, mean 12.5
    writer.process(rows, now=NOW)
    writer.flush_rollups(now=NOW)
    assert _hour_value(engine, point, 0) == (pytest.approx(12.5), True)
    corrected = rows[0]._replace(value=11.0)  # the logger re-sends 10 as 11 (and its flow)
    writer.process([corrected, rows[1]], now=NOW)
    writer.flush_rollups(now=NOW + dt.timedelta(seconds=1))
    assert _hour_value(engine, point, 0) == (pytest.approx(76 / 6), True)  # 11, 11 … 15
    assert _so2_hours(summarised) == [1, 1]


def test_a_failed_recomputation_clears_the_memory(
    engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600)
    writer.process(_minute_rows(point, 0, 10, 3), now=NOW)
    writer.flush_rollups(now=NOW)
    assert writer.open_hours is not None and len(writer.open_hours) > 0
    writer.process(_minute_rows(point, 0, 10, 6)[6:], now=NOW)

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    with monkeypatch.context() as patched:
        patched.setattr(store_rollups, "bulk_upsert", fail)
        with pytest.raises(RuntimeError):
            writer.flush_rollups(now=NOW + dt.timedelta(seconds=1))
    assert len(writer.open_hours) == 0
    assert _queued(engine) == 2  # still queued: SO2 and flow
    writer.flush_rollups(now=NOW + dt.timedelta(seconds=2))
    assert _hour_value(engine, point, 0) == (pytest.approx(12.5), True)


def test_hours_a_stopped_writer_left_queued_are_recomputed_by_the_next(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    Pipeline(engine, rollup_delay=3600).process(_minute_rows(point, 0, 0, 6), now=NOW)
    assert _queued(engine) == 2  # SO2 and flow; the writer stopped before recomputing
    Pipeline(engine, rollup_delay=3600).flush_rollups(now=NOW)
    assert _hour_value(engine, point, 0) == (pytest.approx(2.5), True)
    assert _queued(engine) == 0


def test_a_recomputation_cycle_covers_the_hours_queued_when_it_began(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600, current_hour_refresh=0)
    writer.process(_minute_rows(point, 0, 0, 6) + _minute_rows(point, 1, 0, 6), now=NOW)
    assert _queued(engine) == 4  # two hours of SO2 and flow
    assert writer.flush_rollups(now=NOW, limit=2).rollups_pending
    writer.process(_minute_rows(point, 2, 0, 6), now=NOW)  # queued during the cycle
    assert not writer.flush_rollups(now=NOW, limit=2).rollups_pending  # cycle done
    assert _queued(engine) == 2  # the third hour waits for the next cycle
    assert _hour_value(engine, point, 1) == (pytest.approx(2.5), True)
    assert _hour_value(engine, point, 2) is None
    assert not writer.rollups_due(busy=False)


@pytest.fixture
def slow_recomputation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every recomputation of rollups takes 0.2 s more."""
    original = store_rollups.recompute

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(0.2)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("ecohub.ingest.pipeline.recompute", slow)


@pytest.mark.usefixtures("slow_recomputation")
def test_a_slow_recomputation_stretches_the_gap_to_the_next(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=0.05, current_hour_refresh=0)
    writer.process(_minute_rows(point, 0, 0, 6), now=NOW)
    writer.flush_rollups(now=NOW, limit=1000)
    assert writer.rollup_gap() >= 4 * 0.2  # recomputing takes at most about a fifth
    writer.process(_minute_rows(point, 1, 0, 6), now=NOW)
    time.sleep(0.1)
    assert not writer.rollups_due()  # busy: waits for the stretched gap
    assert writer.rollups_due(busy=False)  # idle: the base delay is enough


def test_hours_queued_during_a_cycle_wait_a_gap_after_it_ends(
    engine: Engine, points: dict[str, int]
) -> None:
    """A cycle spread between batches over longer than the gap must not start the next
    one at once: recomputation would then take half the writer's time."""
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=0.5, current_hour_refresh=0)
    writer.process(_minute_rows(point, 0, 0, 6) + _minute_rows(point, 1, 0, 6), now=NOW)
    assert writer.flush_rollups(now=NOW, limit=2).rollups_pending
    writer.process(_minute_rows(point, 2, 0, 6), now=NOW)  # queued during the cycle
    time.sleep(1.0)  # batches in between: the cycle lasts longer than the gap
    assert not writer.flush_rollups(now=NOW, limit=2).rollups_pending  # cycle done
    assert not writer.rollups_due(busy=False)  # the gap starts now, not 1 s ago
    time.sleep(0.55)
    assert writer.rollups_due(busy=False)


@pytest.mark.usefixtures("slow_recomputation")
def test_a_cycle_under_load_takes_a_fifth_of_the_writers_time(
    engine: Engine, points: dict[str, int]
) -> None:
    """While batches keep coming, a cycle's next chunk waits until the chunks so far are
    a fifth of the time since the cycle began; an idle writer goes on at once."""
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600, current_hour_refresh=0)
    writer.process(_minute_rows(point, 0, 0, 6) + _minute_rows(point, 1, 0, 6), now=NOW)
    started = time.monotonic()
    assert writer.flush_rollups(now=NOW, limit=2).rollups_pending  # over 0.2 s of work
    took = time.monotonic() - started
    assert not writer.rollups_due()  # busy: paced
    assert writer.rollups_due(busy=False)  # idle: at once
    time.sleep(4 * took + 0.05)  # the chunk is now a fifth of the cycle's time
    assert writer.rollups_due()
    assert not writer.flush_rollups(now=NOW, limit=2).rollups_pending
    assert _queued(engine) == 0


def _so2_hours_queued(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        hours = connection.execute(
            select(rollup_queue.c.hour).where(rollup_queue.c.parameter_code == "a21026")
        ).scalars()
        return sorted(int((_utc(hour) - T0).total_seconds() // 3600) for hour in hours)


def _utc(instant: dt.datetime) -> dt.datetime:
    return instant if instant.tzinfo else instant.replace(tzinfo=dt.UTC)


def test_a_cycle_leaves_the_hour_in_progress_until_the_data_move_on(
    engine: Engine, points: dict[str, int]
) -> None:
    """Loggers keep adding to the hour in progress: a cycle takes only earlier hours.
    The first value of a later hour ends it, and it is due like any other."""
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=0.1)  # refresh: the default five minutes
    writer.process(_minute_rows(point, 0, 0, 6) + _minute_rows(point, 1, 0, 3), now=NOW)
    assert not writer.flush_rollups(now=NOW, limit=100).rollups_pending
    assert _hour_value(engine, point, 0) == (pytest.approx(2.5), True)
    assert _hour_value(engine, point, 1) is None and _so2_hours_queued(engine) == [1]
    assert not writer.rollups_due(busy=False)  # nothing before the hour in progress
    writer.process(_minute_rows(point, 1, 0, 6)[6:], now=NOW)  # still hour 1
    time.sleep(0.15)
    assert not writer.rollups_due(busy=False)
    writer.process(_minute_rows(point, 2, 7, 1), now=NOW)  # hour 2 begins: hour 1 ends
    assert writer.rollups_due(busy=False)  # hour 1 has waited longer than the delay
    writer.flush_rollups(now=NOW, limit=100)
    assert _hour_value(engine, point, 1) == (pytest.approx(2.5), True)  # all six values
    assert _so2_hours_queued(engine) == [2]


def test_the_hour_in_progress_is_refreshed_after_its_period(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600, current_hour_refresh=0.2)
    writer.process(_minute_rows(point, 0, 0, 3), now=NOW)
    writer.flush_rollups(now=NOW, limit=100)  # the first cycle takes everything
    writer.process(_minute_rows(point, 0, 0, 6)[6:], now=NOW)
    assert not writer.rollups_due(busy=False)
    time.sleep(0.25)
    assert writer.rollups_due(busy=False) and writer.rollups_due(busy=True)
    writer.flush_rollups(now=NOW, limit=100)
    assert _hour_value(engine, point, 0) == (pytest.approx(2.5), True)
    assert _so2_hours_queued(engine) == []


def test_hourly_values_and_clocks_ahead_do_not_end_the_hour_in_progress(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    writer = Pipeline(engine, rollup_delay=3600)
    writer.process(_minute_rows(point, 0, 0, 3), now=NOW)
    writer.flush_rollups(now=NOW, limit=100)
    # An hourly value (it closes its own hour) and, with "now" at 00:40, a minute value
    # stamped 02:00 by a logger whose clock is ahead.
    hourly = Observation(point, "a21026", "hour", T0 + dt.timedelta(hours=1), 4.0, "N", 0, "t")
    ahead = _minute_rows(point, 2, 0, 1)
    writer.process([hourly, *ahead], now=T0 + dt.timedelta(minutes=40))
    writer.process(_minute_rows(point, 0, 0, 4)[6:], now=T0 + dt.timedelta(minutes=40))
    writer.flush_rollups(now=NOW, limit=100)
    assert _so2_hours_queued(engine) == [0, 1, 2]  # hour 0 is still in progress
