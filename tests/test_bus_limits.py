"""The ingestion bus's limits: messages cut by encoded size under the server's
max_payload, rejected input's raw text cut, a too-large publish not retried, hostile junk
that does not cost good loggers their answers, one partition count per stream, the
status command before any gateway has published, and the writer keeping the coming
months' partitions (PostgreSQL).

Needs the NATS server with JetStream at ``ECOHUB_TEST_NATS_URL`` (see test_bus.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from ecohub.db.quarantine import Rejected, raw_text
from ecohub.ingest.bus import (
    BusConfig,
    BusPublisher,
    PartitionMismatch,
    connect,
    cut_raw,
    decode_batch,
    encode_batch,
    ensure_stream,
    is_final,
    split_batch,
)
from ecohub.timeseries.observations import Observation
from tests.test_bus import NATS_URL, delete_stream, free_port, nats_reachable

WHEN = dt.datetime(2024, 3, 1, 8, 0, tzinfo=dt.UTC)


def _junk(size: int, seed: int) -> Rejected:
    """A 256 KiB read of binary junk as the gateway quarantines it (backslash escapes)."""
    data = random.Random(seed).randbytes(size)
    return Rejected("hj212", "bad_frame", "not HJ 212", raw_text(data), "10.0.0.9:4000", None, WHEN)


# --- pure -------------------------------------------------------------------------------


def test_cut_raw_keeps_4_kib_of_utf8_and_says_so() -> None:
    short = Rejected("mqtt", "bad_json", "JSON", "abc", None, "P1", WHEN)
    assert cut_raw(short) is short
    # 'a' + 3,000 'é' is 1 + 6,000 = 6,001 bytes; 4,096 bytes end inside the 2,048th 'é',
    # which is dropped whole: 'a' + 2,047 'é' (4,095 bytes) are kept.
    cut = cut_raw(Rejected("mqtt", "bad_json", "JSON", "a" + "é" * 3000, None, "P1", WHEN))
    kept, note = cut.raw.split(" [cut:")
    assert kept == "a" + "é" * 2047
    assert note == " 4,096 of 6,001 bytes kept]"


def test_hostile_junk_is_cut_into_messages_under_the_limit() -> None:
    """Two 256 KiB reads of junk used to make one message of about 1.7 MB, over NATS's
    1 MiB; now every message is under the limit and every row arrives."""
    rows = [Observation(p, "a21026", "rt", WHEN, float(p), "N", 0, "hj212") for p in range(40)]
    junk = [_junk(256 << 10, seed) for seed in range(2)]
    assert len(encode_batch([], junk)) > 1 << 20  # the old single message
    limit = (1 << 20) - 4096
    messages = split_batch(rows, junk, 4, limit)
    assert all(len(payload) <= limit for _, payload in messages)
    back_rows = [row for _, payload in messages for row in decode_batch(payload)[0]]
    back_junk = [item for _, payload in messages for item in decode_batch(payload)[1]]
    assert sorted(back_rows, key=lambda r: r.point_id) == rows
    assert len(back_junk) == 2
    for item, original in zip(back_junk, junk, strict=True):
        size = len(original.raw.encode())
        assert item.raw.endswith(f" [cut: 4,096 of {size:,} bytes kept]")
        assert len(item.raw.encode()) <= 4096 + 40


def test_rows_are_split_by_size_too() -> None:
    """With a 2,000-byte limit, 100 rows (about 30 bytes each as columns) take several
    messages, each under the limit, in order."""
    rows = [Observation(4, "a21026", "rt", WHEN + dt.timedelta(minutes=i), 1.5) for i in range(100)]
    messages = split_batch(rows, [], 4, 2000)
    assert len(messages) > 1
    assert all(partition == 0 and len(payload) <= 2000 for partition, payload in messages)
    assert [row for _, payload in messages for row in decode_batch(payload)[0]] == rows


def test_too_large_is_final_and_a_timeout_is_not() -> None:
    from nats.errors import MaxPayloadError
    from nats.js.errors import APIError, ServiceUnavailableError

    assert is_final(MaxPayloadError())
    assert is_final(APIError(code=400, err_code=10054, description="message size exceeds"))
    assert not is_final(TimeoutError())
    assert not is_final(ServiceUnavailableError(code=503))


# --- on the NATS server -------------------------------------------------------------------


@pytest.fixture
def stream() -> Iterator[str]:
    if not nats_reachable():
        pytest.skip(f"no NATS server at {NATS_URL} (nats-server -js; see docs/bus.md)")
    name = f"ECOHUB_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield name
    delete_stream(NATS_URL, name)


def test_hostile_junk_does_not_cost_good_loggers_their_answers(
    stream: str, engine: Engine, points: dict[str, int]
) -> None:
    """A batch of good values with four 256 KiB reads of junk (3.4 MB of JSON before the
    fix, refused by NATS and retried for 30 s): every sender is answered, and a writer
    stores the values and the junk, cut."""
    from ecohub.ingest.bus_writer import BusWriter

    ids = sorted(points.values())[:4]
    rows = [
        Observation(point, "a21026", "rt", WHEN + dt.timedelta(minutes=minute), 10.0 + minute)
        for point in ids
        for minute in range(30)
    ]
    junk = [_junk(256 << 10, seed) for seed in range(4)]
    config = BusConfig(NATS_URL, stream=stream, partitions=2, ack_wait=5)

    async def run() -> tuple[list[BaseException | None], int]:
        publisher = BusPublisher(config)
        await publisher.start()
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in range(3)]
        await publisher.dispatch(rows, junk, futures)
        await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
        outcomes = [future.exception() for future in futures]
        await publisher.close()
        stop = asyncio.Event()
        writer = BusWriter(engine, config, [0, 1], rollup_delay=0.1)
        task = asyncio.create_task(writer.run(stop))
        for _ in range(200):
            await asyncio.sleep(0.1)
            if writer.stats.rows >= len(rows) and writer.stats.messages >= publisher.stats.messages:
                break
        stop.set()
        await task
        return outcomes, publisher.stats.retries

    outcomes, retries = asyncio.run(run())
    assert outcomes == [None, None, None]  # every sender answered
    assert retries == 0  # nothing refused as too large
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM observations")).scalar()
        raws = (
            connection.execute(text("SELECT raw FROM quarantine WHERE reason_code = 'bad_frame'"))
            .scalars()
            .all()
        )
    assert count == 4 * 30
    assert len(raws) == 4
    assert all(" [cut: 4,096 of " in raw for raw in raws)


async def _ensure(config: BusConfig) -> None:
    nc = await connect(config, "test")
    try:
        await ensure_stream(nc.jetstream(), config)
    finally:
        await nc.close()


def test_a_second_partition_count_is_refused(stream: str) -> None:
    asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=4)))
    asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=4)))  # same: fine
    with pytest.raises(PartitionMismatch) as refused:
        asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=8)))
    message = str(refused.value)
    assert f"the stream {stream} has 4 partitions" in message
    assert "ECOHUB_BUS_PARTITIONS is 8" in message


def test_a_stream_without_a_recorded_count_gets_one(stream: str) -> None:
    """A stream made before the count was recorded takes the first process's count."""
    from nats.js.api import StreamConfig

    async def old_stream() -> None:
        nc = await connect(BusConfig(NATS_URL, stream=stream), "test")
        subjects = [f"{BusConfig(NATS_URL, stream=stream).subject_prefix}.*"]
        await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=subjects))
        await nc.close()

    asyncio.run(old_stream())
    asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=2)))
    with pytest.raises(PartitionMismatch):
        asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=3)))


def _cli(monkeypatch: pytest.MonkeyPatch, url: str, stream: str, *args: str) -> Any:
    from ecohub.config import get_settings
    from ecohub.ingest.bus_cli import bus_app

    monkeypatch.setenv("ECOHUB_BUS_URL", url)
    monkeypatch.setenv("ECOHUB_BUS_STREAM", stream)
    monkeypatch.setenv("ECOHUB_BUS_PARTITIONS", "2")
    get_settings.cache_clear()
    return CliRunner().invoke(bus_app, ["status", *args])


def test_status_before_any_gateway_and_without_nats(
    stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _cli(monkeypatch, NATS_URL, stream)
    assert result.exit_code == 0, result.output
    assert f"stream {stream}: not created yet (no gateway has published)" in result.output
    result = _cli(monkeypatch, NATS_URL, stream, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["absent"] is True
    closed = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    result = _cli(monkeypatch, closed, stream)
    assert result.exit_code == 1
    assert f"bus {closed}: cannot be read" in result.output
    asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=2)))
    result = _cli(monkeypatch, NATS_URL, stream)
    assert result.exit_code == 0, result.output
    assert f"stream {stream}: 0 messages, 0 bytes" in result.output
    assert "partition 1: no writer yet" in result.output


# --- partitions ahead ---------------------------------------------------------------------


def _coming_months(now: dt.datetime) -> list[dt.date]:
    """This Beijing-time month and the next three, by hand."""
    local = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    months, year, month = [], local.year, local.month
    for _ in range(4):
        months.append(dt.date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_the_writer_makes_the_coming_months_partitions(stream: str, engine: Engine) -> None:
    """The furthest of the coming months' partitions is dropped; a bus writer makes it
    again at its start."""
    from ecohub.ingest.bus_writer import BusWriter
    from ecohub.timeseries.partitions import list_partitions

    months = _coming_months(dt.datetime.now(dt.UTC))
    furthest = f"{months[-1]:%Y_%m}"
    with engine.begin() as connection:
        for table in ("observations", "rollups"):
            connection.execute(text(f"DROP TABLE IF EXISTS partitions.{table}_{furthest}"))

    def held() -> set[tuple[str, dt.date | None]]:
        return {(p.table, p.month) for p in list_partitions(engine) if p.attached}

    assert ("observations", months[-1]) not in held()
    config = BusConfig(NATS_URL, stream=stream, partitions=2)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(BusWriter(engine, config, [0]).run(stop))
        for _ in range(100):
            await asyncio.sleep(0.1)
            if ("observations", months[-1]) in await asyncio.to_thread(held):
                break
        stop.set()
        await task

    asyncio.run(run())
    now_held = held()
    for table in ("observations", "rollups"):
        for month in months:
            assert (table, month) in now_held, (table, month)


def test_the_status_is_cached_for_a_few_seconds(stream: str) -> None:
    """Page views within 5 s share one look at the bus; ``max_age=0`` looks again."""
    from ecohub.ingest.bus import bus_status

    config = BusConfig(NATS_URL, stream=stream, partitions=2)
    assert bus_status(config).get("absent") is True
    asyncio.run(_ensure(config))
    assert bus_status(config).get("absent") is True  # the look of a moment ago
    fresh = bus_status(config, max_age=0)
    assert "absent" not in fresh and fresh["messages"] == 0
    assert [c["partition"] for c in fresh["consumers"]] == [0, 1]


def test_a_writer_with_another_partition_count_refuses_to_start(
    stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ecohub.config import get_settings
    from ecohub.ingest.bus_cli import bus_app

    asyncio.run(_ensure(BusConfig(NATS_URL, stream=stream, partitions=2)))
    monkeypatch.setenv("ECOHUB_BUS_URL", NATS_URL)
    monkeypatch.setenv("ECOHUB_BUS_STREAM", stream)
    monkeypatch.setenv("ECOHUB_BUS_PARTITIONS", "3")
    get_settings.cache_clear()
    result = CliRunner().invoke(bus_app, ["writer"])
    assert result.exit_code == 2
    assert f"the stream {stream} has 2 partitions" in " ".join(result.output.split())


def test_serve_keeps_months_ahead_with_alarms_off(engine: Engine) -> None:
    """`ecohub serve`'s background rounds: the partitions' round runs whether alarms are
    on or not; the alarm housekeeping only when they are."""
    from ecohub.config import Settings
    from ecohub.serve import _housekeeping

    async def names(alarms: bool) -> list[str]:
        stop = asyncio.Event()
        tasks = _housekeeping(engine, stop, Settings(alarms_enabled=alarms), None)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return sorted(task.get_name() for task in tasks)

    assert asyncio.run(names(False)) == ["partitions-ahead"]
    assert asyncio.run(names(True)) == ["alarm-housekeeping", "partitions-ahead"]
