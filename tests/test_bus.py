"""The ingestion bus (NATS JetStream) on one host: the message format, the publisher's
dedupe id, and gateways and writers killed with SIGKILL while loggers send; every value
a logger got an answer for is stored exactly once.

Needs the NATS server with JetStream at ``ECOHUB_TEST_NATS_URL`` (default
nats://127.0.0.1:4222, which ``.ci/run``'s machine runs); each test uses a stream of its
own and deletes it. The processes and loggers are shared with ``test_multihost.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from ecohub.db.quarantine import Rejected
from ecohub.ingest.bus import (
    BusConfig,
    BusPublisher,
    connect,
    decode_batch,
    encode_batch,
    ensure_stream,
    split_batch,
)
from ecohub.simulate.points import SimulatedPoint, register_simulated_points
from ecohub.timeseries.observations import Observation

COUNTS_PROPERTY = "bus_counts"  # shown by conftest.py's pytest_terminal_summary
NATS_URL = os.environ.get("ECOHUB_TEST_NATS_URL", "nats://127.0.0.1:4222")
ROOT = Path(__file__).resolve().parents[1]

# The loggers: each sends a real-time upload (Flag=5) and waits up to 2 s for its 9014;
# without one it reconnects (to the next gateway) and sends the same packet again until
# answered. Every answered upload's values are written to the output file.
LOGGERS = textwrap.dedent(
    """
    import asyncio, datetime as dt, json, random, sys, time
    from ecohub.simulate.hj212 import build_upload
    from ecohub.simulate.points import SimulatedPoint
    spec = json.loads(sys.argv[1])
    gateways, seconds, pause = spec["gateways"], spec["seconds"], spec["pause"]
    out = open(spec["output"], "w")
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    stats = {"acked": 0, "resent": 0, "reconnects": 0}

    async def one(index, point):
        rng = random.Random(index)
        which, reader, writer = index, None, None
        stop_at = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < stop_at:
            when = t0 + dt.timedelta(seconds=tick)
            packet, values = build_upload(point, 2011, when, f"{tick:017d}", rng)
            while True:
                try:
                    if writer is None:
                        host, port = gateways[which % len(gateways)].rsplit(":", 1)
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(host, int(port)), 2)
                    writer.write(packet)
                    await writer.drain()
                    answer = await asyncio.wait_for(reader.readuntil(b"\\r\\n"), 2)
                    if b"CN=9014" in answer:
                        break
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    pass
                stats["resent"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                which += 1
                stats["reconnects"] += 1
                await asyncio.sleep(0.2)
            stats["acked"] += 1
            for code, value in values:
                out.write(f"{point.mn} {when.isoformat()} {code} {value!r}\\n")
            tick += 1
            await asyncio.sleep(pause)
        if writer is not None:
            writer.close()

    async def main():
        points = [SimulatedPoint(mn, "123456", kind) for mn, kind in spec["points"]]
        await asyncio.gather(*(one(i, p) for i, p in enumerate(points)))
        out.close()
        print(json.dumps(stats), flush=True)

    asyncio.run(main())
    """
)


# --- helpers shared with test_multihost.py --------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def nats_reachable(url: str = NATS_URL) -> bool:
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def bus_env(database_url: str, nats_url: str, stream: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ECOHUB_DATABASE_URL": database_url,
        "ECOHUB_BUS_URL": nats_url,
        "ECOHUB_BUS_STREAM": stream,
        "ECOHUB_BUS_PARTITIONS": "4",
        "ECOHUB_BUS_ACK_WAIT": "2",
        "ECOHUB_ROLLUP_DELAY": "1",
        "ECOHUB_ALARMS_ENABLED": "false",
        **extra,
    }


class Processes:
    """Processes started by a test, each logging to a file; all killed at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: Sequence[str], env: dict[str, str]) -> None:
        log = (self.folder / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            list(command), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        log.close()

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name: str, marker: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while marker not in self.log(name):
            if self.running[name].poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{name} did not log {marker!r}:\n{self.log(name)[-3000:]}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 60.0) -> int:
        process = self.running[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def kill_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


def bus_command(*arguments: str, prefix: Sequence[str] = ()) -> list[str]:
    return [*prefix, sys.executable, "-m", "ecohub.ingest.bus_cli", *arguments]


def loggers_command(
    points: list[SimulatedPoint], gateways: list[str], seconds: float, output: Path, pause: float
) -> list[str]:
    spec = {
        "gateways": gateways,
        "seconds": seconds,
        "pause": pause,
        "output": str(output),
        "points": [(p.mn, p.kind) for p in points],
    }
    return [sys.executable, "-c", LOGGERS, json.dumps(spec)]


def acknowledged(output: Path) -> dict[tuple[str, str, str], float]:
    """(MN, time, parameter) → value of every answered upload."""
    values = {}
    for line in output.read_text().splitlines():
        mn, when, code, value = line.split(" ")
        values[(mn, when, code)] = float(value)
    return values


def stored(engine: Engine) -> tuple[dict[tuple[str, str, str], float], int]:
    """The stored values of the simulated points, and the number of revisions (a value
    written twice with another value, which would mean two different writes of a key)."""
    query = text(
        "SELECT p.mn, o.ts, o.parameter_code, o.value FROM observations o "
        "JOIN monitoring_points p ON p.id = o.point_id WHERE p.mn LIKE 'SIM%'"
    )
    values = {}
    with engine.connect() as connection:
        for mn, ts, code, value in connection.execute(query):
            if isinstance(ts, str):  # SQLite
                ts = dt.datetime.fromisoformat(ts)
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=dt.UTC)
            values[(mn, ts.astimezone(dt.UTC).isoformat(), code)] = value
        revisions = connection.execute(text("SELECT count(*) FROM observation_revisions")).scalar()
    return values, int(revisions or 0)


def wait_for_empty_backlog(config: BusConfig, timeout: float = 60.0) -> dict[str, Any]:
    from ecohub.ingest.bus import bus_status

    deadline = time.monotonic() + timeout
    while True:
        status = bus_status(config, max_age=0)
        consumers = [c for c in status.get("consumers", []) if not c.get("missing")]
        # By the consumers: after a killed nats-server (2.9) a work-queue stream can keep
        # messages its consumers have acknowledged (the removal was not yet on disk).
        if "error" not in status and consumers and all(c["backlog"] == 0 for c in consumers):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"the bus did not drain: {status}")
        time.sleep(0.5)


def delete_stream(url: str, stream: str) -> None:
    import nats

    async def delete() -> None:
        nc = await nats.connect(servers=[url], connect_timeout=2, allow_reconnect=False)
        try:
            await nc.jetstream().delete_stream(stream)
        except Exception as error:  # never created
            print(f"stream {stream} not deleted: {error!r}")
        await nc.close()

    asyncio.run(delete())


def check_exactly_once(
    engine: Engine, output: Path, title: str, record: Callable[[str, object], None]
) -> None:
    """Every acknowledged value is stored, with its value, once; nothing was revised.
    The counts go to ``record`` (pytest's ``record_property``), which the summary hook
    of ``conftest.py`` prints at the end of the run, passed or failed."""
    answered = acknowledged(output)
    held, revisions = stored(engine)
    missing = [key for key in answered if key not in held]
    wrong = [key for key, value in answered.items() if key in held and held[key] != value]
    counts = (
        f"{title}: acknowledged values {len(answered):,}, stored values {len(held):,}, "
        f"acknowledged and missing {len(missing)}, stored with another value {len(wrong)}, "
        f"revisions {revisions}"
    )
    print(counts)
    record(COUNTS_PROPERTY, counts)
    assert answered, "no upload was answered"
    assert not missing, missing[:5]
    assert not wrong, wrong[:5]
    assert revisions == 0
    # Stored but never answered: only uploads whose answer a kill cut off and that the
    # logger then sent again, which are answered by now, so none.
    assert set(held) == set(answered)


# --- unit tests -------------------------------------------------------------------------


def test_messages_round_trip() -> None:
    when = dt.datetime(2024, 1, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)
    rows = [
        Observation(7, "a21026", "rt", when, 12.5, "N", 0, "hj212"),
        Observation(8, "a21026-Cou", "min", when, None, "D", 1, "mqtt"),
    ]
    rejected = [Rejected("hj212", "bad_crc", "CRC", "##raw", "1.2.3.4:5", "P0001", when, 3)]
    back_rows, back_rejected = decode_batch(encode_batch(rows, rejected))
    assert back_rows == rows
    assert back_rows[0].ts.tzinfo is dt.UTC  # the one UTC object (docs/architecture.md)
    assert back_rejected == rejected
    with pytest.raises(ValueError):
        decode_batch(b'{"f": 99}')


def test_batches_split_by_point_partition() -> None:
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    rows = [Observation(point, "a21026", "rt", when, 1.0) for point in range(10)]
    messages = split_batch(rows, [], 4)
    assert [partition for partition, _ in messages] == [0, 1, 2, 3]
    for partition, payload in messages:
        assert {row.point_id % 4 for row in decode_batch(payload)[0]} == {partition}


@pytest.fixture
def stream() -> Iterator[str]:
    if not nats_reachable():
        pytest.skip(f"no NATS server at {NATS_URL} (nats-server -js; see docs/bus.md)")
    name = f"ECOHUB_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield name
    delete_stream(NATS_URL, name)


def test_a_retried_publish_is_stored_once(stream: str) -> None:
    """JetStream drops a message whose Nats-Msg-Id it has seen (a retry after a lost
    acknowledgement)."""
    from ecohub.ingest.bus import fetch_bus_status

    config = BusConfig(NATS_URL, stream=stream, partitions=2)
    rows = [
        Observation(point, "a21026", "rt", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), 1.0)
        for point in range(4)
    ]

    async def run() -> dict[str, Any]:
        publisher = BusPublisher(config)
        await publisher.start()
        await publisher.publish(rows, [])
        publisher._numbers = itertools.count(1)  # the same batch numbers: the same ids
        await publisher.publish(rows, [])
        assert publisher.stats.duplicates == 2
        status = await fetch_bus_status(config, publisher._nc)
        await publisher.close()
        return status

    status = asyncio.run(run())
    assert status["messages"] == 2  # one per partition, not four


def test_the_agency_page_shows_the_backlog(stream: str, engine: Engine, tmp_path: Path) -> None:
    """The portal's page of the ingestion path: with the bus, the stream and each writer
    consumer's backlog (none yet: no writer has started); without it, the journal."""
    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session

    from ecohub.accounts.keys import Role
    from ecohub.accounts.users import create_user
    from ecohub.app import create_app
    from ecohub.config import Settings
    from ecohub.ingest.bus import clear_status_cache

    with Session(engine) as session:
        create_user(
            session,
            username="officer",
            password="correct horse battery",
            role=Role.AGENCY,
            actor="t",
        )
        session.commit()
    pages = {}
    for name, bus_url in (("absent", NATS_URL), ("bus", NATS_URL), ("journal", "")):
        if name == "bus":

            async def create() -> None:
                nc = await connect(BusConfig(NATS_URL, stream=stream, partitions=2), "t")
                await ensure_stream(
                    nc.jetstream(), BusConfig(NATS_URL, stream=stream, partitions=2)
                )
                await nc.close()

            asyncio.run(create())
        clear_status_cache()  # the page's status is cached for 5 s
        settings = Settings(
            bus_url=bus_url,
            bus_stream=stream,
            bus_partitions=2,
            journal_dir=str(tmp_path / "journal"),
        )
        client = TestClient(create_app(engine, settings=settings), base_url="https://testserver")
        client.post("/login", data={"username": "officer", "password": "correct horse battery"})
        pages[name] = client.get("/agency/ingest").text
    assert stream in pages["bus"] and f"{stream}_writer_1" in pages["bus"]
    assert "尚未创建（无写入者启动过）" in pages["bus"]
    assert "尚未创建（尚无网关发布数据）" in pages["absent"]
    assert "未启用消息总线" in pages["journal"]


# --- processes killed while loggers send ---------------------------------------------


def _stamp(started: float, what: str) -> None:
    print(f"{time.monotonic() - started:6.1f} s  {what}", flush=True)


def _run_with_kills(
    engine: Engine,
    database_url: str,
    stream: str,
    tmp_path: Path,
    writers: int,
    record: Callable[[str, object], None],
) -> None:
    """Two gateways and ``writers`` writers; loggers send for 8 s while a writer is
    killed (and started again) and then a gateway (its loggers go to the other)."""
    points = register_simulated_points(engine, 12)
    processes = Processes(tmp_path)
    ports = [free_port(), free_port()]
    env = bus_env(database_url, NATS_URL, stream)
    config = BusConfig(NATS_URL, stream=stream, partitions=4)
    output = tmp_path / "acknowledged.txt"
    started = time.monotonic()
    try:
        for number, port in enumerate(ports):
            command = bus_command("gateway", "--host", "127.0.0.1", "--port", str(port))
            processes.start(f"gateway{number}", command, env)
        for index in range(writers):
            command = bus_command("writer", "--index", str(index), "--count", str(writers))
            processes.start(f"writer{index}", command, env)
        for number in range(2):
            processes.wait_for(f"gateway{number}", "gateway_started")
        for index in range(writers):
            processes.wait_for(f"writer{index}", "bus_partition_taken")
        _stamp(started, "gateways and writers ready")
        gateways = [f"127.0.0.1:{port}" for port in ports]
        processes.start("loggers", loggers_command(points, gateways, 8.0, output, 0.05), env)
        processes.wait_for("gateway0", '"online"')
        time.sleep(2.0)
        processes.kill("writer0")  # mid-stream: its batches are delivered again
        command = bus_command("writer", "--index", "0", "--count", str(writers))
        processes.start("writer0", command, env)
        time.sleep(2.0)
        processes.kill("gateway0")  # its loggers send their unanswered uploads again
        _stamp(started, "a writer and a gateway killed")
        assert processes.running["loggers"].wait(60) == 0, processes.log("loggers")
        _stamp(started, f"loggers done: {processes.log('loggers').strip().splitlines()[-1]}")
        status = wait_for_empty_backlog(config)
        _stamp(started, f"bus drained: {status['messages']} messages")
        for index in range(writers):
            assert processes.stop(f"writer{index}") == 0, processes.log(f"writer{index}")
        processes.stop("gateway1")
        _stamp(started, "stopped")
    finally:
        processes.kill_all()
    check_exactly_once(engine, output, f"one host, {writers} writer(s)", record)


def test_killed_writer_and_gateway_lose_nothing(
    engine: Engine,
    database_url: str,
    backend: str,
    stream: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """SQLite: one writer; PostgreSQL: two writers sharing the partitions."""
    writers = 1 if backend == "sqlite" else 2
    _run_with_kills(engine, database_url, stream, tmp_path, writers, record_property)
