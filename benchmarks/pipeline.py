"""End-to-end ingestion pipeline throughput (quality control + store + rollups), through
the MQTT and HTTP doors, on SQLite and PostgreSQL.

- MQTT: a child process publishes ``--messages`` QoS 1 messages (one point, one minute,
  six parameters each; in a second run the same measurements ``--per-message`` to an
  array payload, as a gateway that forwards several points publishes them) to a
  private Mosquitto started for the run (the machine's
  broker keeps at most 1,000 queued messages per session and drops the rest of a burst;
  the private one is configured as docs/ingest.md advises for production); this process
  consumes them with the platform's subscriber and batch writer (pipeline in its writer
  process, a journal as in ``ecohub serve``). Figure: values committed per second, from
  the first publish to the last commit.
- HTTP: the platform runs as ``ecohub serve`` in a child process (its API shares the
  one batch writer); two concurrent clients here post JSON-lines uploads of
  ``--upload-rows`` values. Figure: values per second from the first upload until all
  are stored (they are answered once in the platform's journal, earlier) and their
  rollups recomputed (the rollup queue is empty).

Each run starts on an empty store with 200 simulated flue-gas and waste-water points;
values follow a minute grid, so every batch also recomputes hourly and daily rollups.

    python -m benchmarks.pipeline [--messages 50000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from benchmarks._common import scratch_store
from ecohub.accounts.keys import Role, issue_key
from ecohub.clock import hour_start
from ecohub.ingest.batch_writer import BatchWriter
from ecohub.ingest.hj212_gateway import _max_delay
from ecohub.ingest.measurements import Resolver
from ecohub.ingest.mqtt import MqttStats, consume
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.tables import observations, rollup_queue

POINTS = 200
GAS = {"a21026": 20.0, "a21002": 45.0, "a34013": 8.0, "a19001": 9.5, "a01012": 60.0}
WATER = {"w01018": 30.0, "w21003": 2.0, "w21011": 0.3, "w21001": 10.0, "w01001": 7.2}
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def message(point: str, kind: str, minute: int, rng: random.Random) -> dict[str, object]:
    base = GAS if kind == "gas" else WATER
    values: dict[str, float] = {
        code: round(v * rng.uniform(0.8, 1.2), 3) for code, v in base.items()
    }
    values["a00000" if kind == "gas" else "w00000"] = round(rng.uniform(50, 60), 2)
    return {
        "point": point,
        "ts": (START + dt.timedelta(minutes=minute)).isoformat(),
        "interval": "min",
        "values": values,
    }


def _messages(points: list[tuple[str, str]], count: int) -> list[dict[str, object]]:
    rng = random.Random(7)
    return [message(*points[i % len(points)], i // len(points), rng) for i in range(count)]


BROKER_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 0
max_inflight_messages 0
"""


@contextlib.contextmanager
def private_broker() -> Iterator[int]:
    """A Mosquitto of this run's own, with unbounded per-session queues."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        config.write_text(BROKER_CONFIG.format(port=port))
        broker = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield port
        finally:
            broker.terminate()
            broker.wait(10)


def _publish(topic: str, payloads: list[str], port: int) -> None:
    """Publish with Mosquitto's own client, written in C, where it is installed: paho
    used a whole core of the two to publish, more than the platform spent receiving."""
    publisher = shutil.which("mosquitto_pub")
    if publisher is not None:
        command = [publisher, "-h", "127.0.0.1", "-p", str(port), "-t", topic]
        command += ["-q", "1", "-M", "1000", "-l", "-i", f"bench-{uuid.uuid4().hex[:6]}"]
        subprocess.run(command, input="\n".join(payloads) + "\n", text=True, check=True)
        return
    import paho.mqtt.client as mqtt

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:6]}"
    )
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.loop_stop()
    client.disconnect()


def _count(engine: Engine, table: Table = observations) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar())


def mqtt_run(
    engine: Engine, points: list[tuple[str, str]], count: int, port: int, per_message: int = 1
) -> float:
    measurements = _messages(points, count)
    if per_message == 1:
        payloads = [json.dumps(m) for m in measurements]
    else:  # a gateway's array payload: several points' measurements in one message
        payloads = [
            json.dumps(measurements[i : i + per_message])
            for i in range(0, len(measurements), per_message)
        ]
    expected = sum(len(m["values"]) for m in measurements)  # type: ignore[arg-type]
    topic_root = f"bench/{uuid.uuid4().hex[:8]}"

    journal_dir = tempfile.mkdtemp(prefix="ecohub-bench-journal-")

    async def scenario() -> float:
        # As `ecohub serve` runs it: PUBACK once journaled, the store a moment later.
        writer = BatchWriter(
            engine,
            max_delay=_max_delay(journal_dir),
            separate_process=True,
            journal_dir=journal_dir,
        )
        await writer.start()

        async def submit(rows, rejected):  # type: ignore[no-untyped-def]
            await writer.submit(rows, rejected)

        stop = asyncio.Event()
        stats = MqttStats()
        consumer = asyncio.ensure_future(
            consume(
                submit,
                Resolver(engine),
                url=f"mqtt://127.0.0.1:{port}",
                topic=f"{topic_root}/#",
                client_id=f"bench-consumer-{uuid.uuid4().hex[:6]}",
                stop=stop,
                stats=stats,
            )
        )
        await asyncio.sleep(0.5)
        publisher = multiprocessing.get_context("spawn").Process(
            target=_publish, args=(f"{topic_root}/x", payloads, port)
        )
        began = time.perf_counter()
        publisher.start()
        deadline = time.monotonic() + 300
        while stats.messages < len(payloads) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await consumer
        await writer.close()
        elapsed = time.perf_counter() - began
        publisher.join()
        return elapsed

    try:
        elapsed = asyncio.run(scenario())
    finally:
        shutil.rmtree(journal_dir, ignore_errors=True)
    stored = _count(engine)
    assert stored == expected, f"stored {stored} of {expected}"
    # The writer defers rollups (ECOHUB_ROLLUP_DELAY) and recomputes them all at close,
    # inside the measured time.
    assert _count(engine, rollup_queue) == 0, "rollups left queued"
    return expected / elapsed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_run(engine: Engine, points: list[tuple[str, str]], rows: int, uploads: int) -> float:
    with Session(engine) as session:
        key = issue_key(session, name="bench", role=Role.OPERATOR, created_by="bench")
        session.commit()
    port = _free_port()
    journal_dir = tempfile.mkdtemp(prefix="ecohub-bench-journal-")
    # The platform as it runs: ``ecohub serve``, whose API shares the one batch writer.
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecohub.cli.main",
            "serve",
            "--no-mqtt",
            "--hj212-port",
            str(_free_port()),
            "--api-port",
            str(port),
        ],
        env={
            **os.environ,
            "ECOHUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "ECOHUB_LOG_LEVEL": "WARNING",
            "ECOHUB_JOURNAL_DIR": journal_dir,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        per_upload = rows // 6
        bodies = []
        for upload in range(uploads):
            rng = random.Random(upload)
            lines = [
                json.dumps(message(*points[i % len(points)], upload * 1000 + i // len(points), rng))
                for i in range(per_upload)
            ]
            bodies.append("\n".join(lines))
        values = uploads * per_upload * 6

        async def client(work: list[str]) -> None:
            async with httpx.AsyncClient(timeout=300) as http:
                for body in work:
                    response = await http.post(
                        f"http://127.0.0.1:{port}/api/v1/measurements",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {key}",
                            "Content-Type": "application/x-ndjson",
                        },
                    )
                    response.raise_for_status()

        async def scenario() -> float:
            began = time.perf_counter()
            await asyncio.gather(client(bodies[0::2]), client(bodies[1::2]))
            # Answered once journaled; the clock stops when every value is stored and
            # the rollups of every hour are computed too, but for the last one: the
            # writer treats it as the hour in progress and refreshes it every few
            # minutes (ECOHUB_CURRENT_HOUR_REFRESH), or at shutdown, checked below.
            deadline = time.monotonic() + 300
            while _count(engine) < values and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            last_hour = _last_data_hour(engine)
            while _queued_before(engine, last_hour) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return time.perf_counter() - began

        elapsed = asyncio.run(scenario())
        stored = _count(engine)
        assert stored == values, f"stored {stored} of {values}"
        assert _queued_before(engine, _last_data_hour(engine)) == 0, "rollups left queued"
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(journal_dir, ignore_errors=True)
    assert _count(engine, rollup_queue) == 0, "rollups left queued after shutdown"
    return values / elapsed


def _last_data_hour(engine: Engine) -> dt.datetime:
    with engine.connect() as connection:
        latest = connection.execute(select(func.max(observations.c.ts))).scalar_one()
    if isinstance(latest, str):  # SQLite returns the stored text
        latest = dt.datetime.fromisoformat(latest)
    return hour_start(latest)


def _queued_before(engine: Engine, hour: dt.datetime) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(rollup_queue).where(rollup_queue.c.hour < hour)
        return int(connection.execute(query).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument(
        "--per-message", type=int, default=20, help="measurements per array payload (2nd run)"
    )
    parser.add_argument("--upload-rows", type=int, default=12_000)
    parser.add_argument("--uploads", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with scratch_store(backend) as engine:
            simulated = register_simulated_points(engine, POINTS)
            points = _point_codes(engine, simulated)
            with private_broker() as port:
                rate = mqtt_run(engine, points, args.messages, port)
            print(f"{backend:<10}  MQTT  {rate:>10,.0f} values/s end to end (QC + store + rollups)")
        with scratch_store(backend) as engine:
            simulated = register_simulated_points(engine, POINTS)
            points = _point_codes(engine, simulated)
            with private_broker() as port:
                rate = mqtt_run(engine, points, args.messages, port, args.per_message)
            print(
                f"{backend:<10}  MQTT  {rate:>10,.0f} values/s end to end, "
                f"{args.per_message} measurements per message"
            )
        with scratch_store(backend) as engine:
            simulated = register_simulated_points(engine, POINTS)
            points = _point_codes(engine, simulated)
            rate = http_run(engine, points, args.upload_rows, args.uploads)
            print(f"{backend:<10}  HTTP  {rate:>10,.0f} values/s end to end (QC + store + rollups)")


def _point_codes(engine: Engine, simulated: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    from ecohub.registry.models import MonitoringPoint

    with Session(engine) as session:
        by_mn = dict(
            session.execute(select(MonitoringPoint.mn, MonitoringPoint.code)).tuples().all()
        )
    return [(by_mn[p.mn], p.kind) for p in simulated]


if __name__ == "__main__":
    main()
