"""Answers once journaled: senders are answered while the store cannot commit, nothing
answered is lost when the gateway is killed, and answers wait for the store again once
it is too far behind. The store is made to wait by holding a lock on it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from ecohub.ingest.batch_writer import BatchWriter
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.protocol.hj212 import Frame, Framer, parse_packet
from ecohub.registry.models import MonitoringPoint
from ecohub.simulate.hj212 import build_upload
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import observations

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


@contextlib.contextmanager
def store_locked(engine: Engine) -> Iterator[None]:
    """Hold the store's write lock (SQLite) or a lock on ``observations`` that blocks
    inserts (PostgreSQL) until the block ends."""
    connection = engine.connect()
    try:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.begin()
            connection.execute(text("LOCK TABLE observations IN SHARE ROW EXCLUSIVE MODE"))
        yield
    finally:
        connection.rollback()
        connection.close()


def stored_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(observations)).scalar_one())


def _rows(point_id: int, start: int, count: int) -> list[Observation]:
    return [
        Observation(point_id, "a21026", "rt", T0 + dt.timedelta(minutes=start + i), 10.0 + i)
        for i in range(count)
    ]


def _one_registered_point(engine: Engine) -> int:
    (point,) = register_simulated_points(engine, 1)
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(MonitoringPoint.id).where(MonitoringPoint.mn == point.mn)
            ).scalar_one()
        )


def test_answers_wait_for_the_store_once_it_is_too_far_behind(
    engine: Engine, tmp_path: Path
) -> None:
    point_id = _one_registered_point(engine)

    async def scenario() -> None:
        writer = BatchWriter(
            engine, journal_dir=tmp_path / "journal", max_backlog_rows=10, max_delay=0.01
        )
        await writer.start()
        with store_locked(engine):
            first = writer.submit(_rows(point_id, 0, 8))
            await asyncio.wait_for(asyncio.shield(first), 10)  # journaled: answered
            second = writer.submit(_rows(point_id, 8, 8))
            await asyncio.sleep(1.0)
            assert not second.done()  # 16 rows behind, over 10: it waits for the store
            assert stored_count(engine) == 0
        await asyncio.wait_for(second, 60)
        await writer.close()
        assert writer.stats.answered_early == 1 and writer.stats.journaled == 2

    asyncio.run(scenario())
    assert stored_count(engine) == 16
    assert list((tmp_path / "journal").glob("*.journal")) == []  # all committed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_serve(url: str, journal: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ECOHUB_DATABASE_URL": url,
        "ECOHUB_JOURNAL_DIR": str(journal),
        "ECOHUB_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "ecohub.cli.main", "serve", "--hj212-port", str(port)]
    command += ["--no-mqtt", "--api-port", str(_free_port())]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: killed with its writer
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"ecohub serve exited with {process.returncode}")
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("ecohub serve did not start")


def _send_and_count_answers(port: int, packets: list[bytes]) -> int:
    framer = Framer()
    answers = 0
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"".join(packets))
        while answers < len(packets):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answers += sum(
                1
                for frame in framer.feed(chunk)
                if isinstance(frame, Frame) and parse_packet(frame.data).cn == "9014"
            )
    return answers


def test_nothing_answered_is_lost_when_the_gateway_is_killed(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    import random

    (point,) = register_simulated_points(engine, 1)
    rng = random.Random(3)
    uploads = [
        build_upload(point, 2011, T0 + dt.timedelta(minutes=i), f"20240301000000{i:03d}", rng)
        for i in range(20)
    ]
    sent_values = sum(len(values) for _packet, values in uploads)
    journal = tmp_path / "journal"
    port = _free_port()
    process = _start_serve(database_url, journal, port)
    try:
        with store_locked(engine):
            answered = _send_and_count_answers(port, [packet for packet, _v in uploads])
            os.killpg(process.pid, signal.SIGKILL)  # a crash: no graceful shutdown
            process.wait(30)
        assert answered == len(uploads)  # every upload answered while the store was locked
        assert stored_count(engine) == 0  # ... and none of it committed

        async def restart() -> None:
            gateway = HJ212Gateway(engine, journal_dir=journal)
            await gateway.start("127.0.0.1", 0)
            await gateway.close()  # the journaled batches are written before it stops

        asyncio.run(restart())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert stored_count(engine) == sent_values
    with engine.connect() as connection:
        total = connection.execute(select(func.sum(observations.c.value))).scalar_one()
    assert total == pytest.approx(sum(v for _p, values in uploads for _c, v in values))
    assert list(journal.glob("*.journal")) == []


def test_a_second_gateway_on_the_same_journal_stops_with_a_clear_error(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from ecohub.cli.main import app
    from ecohub.config import get_settings
    from ecohub.ingest.journal import Journal

    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("ECOHUB_JOURNAL_DIR", str(tmp_path / "journal"))
    held = Journal(tmp_path / "journal")  # as a running gateway holds it
    get_settings.cache_clear()
    try:
        ports = ["--hj212-port", str(_free_port()), "--api-port", str(_free_port())]
        result = CliRunner().invoke(app, ["serve", "--no-mqtt", *ports])
    finally:
        get_settings.cache_clear()
        held.close()
    assert result.exit_code == 2, result.output
    assert "is in use by another process" in " ".join(result.output.split())


def test_queued_journal_batches_are_written_together_up_to_store_batch_rows(
    engine: Engine,
) -> None:
    from ecohub.ingest.batch_writer import _Batch

    # Gathering stops at max_rows; writing to the store groups up to store_batch_rows.
    writer = BatchWriter(engine, max_rows=3, store_batch_rows=10)
    for number, rows in enumerate([4, 4, 4, 12, 1], start=1):
        writer._enqueue(_Batch(sequences=[number], payloads=[b"%d" % number], row_count=rows))
    groups = [writer._take_group() for _ in range(3)]
    assert [g.sequences for g in groups] == [[1, 2], [3], [4]]  # 4+4; 4 (+12 > 10); 12
    assert [g.payloads for g in groups] == [[b"1", b"2"], [b"3"], [b"4"]]
    assert [g.row_count for g in groups] == [8, 4, 12]
    assert writer._take_group().sequences == [5]


def test_a_writer_thread_writes_what_an_earlier_process_left_in_the_journal(
    engine: Engine, tmp_path: Path
) -> None:
    import pickle

    from ecohub.ingest.journal import Journal
    from ecohub.ingest.writer_process import batch_columns

    point_id = _one_registered_point(engine)
    left = Journal(tmp_path / "journal")  # an earlier process, killed after answering
    left.append(pickle.dumps((batch_columns(_rows(point_id, 0, 5)), [])))
    left.sync()
    left._lock.close()

    async def restart() -> None:
        writer = BatchWriter(engine, journal_dir=tmp_path / "journal", separate_process=False)
        await writer.start()
        await writer.close()
        assert writer.stats.replayed == 1

    asyncio.run(restart())
    assert stored_count(engine) == 5
