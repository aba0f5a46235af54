"""MQTT and HTTP through the bus: ``ecohub serve``'s wiring (the gateway's batch writer
publishing to NATS JetStream, the MQTT door and the HTTP API on it) acknowledges an MQTT
message to the broker (PUBACK, QoS 1, the local Mosquitto) and answers an HTTP upload
only after JetStream has acknowledged the batch, and neither while NATS is unreachable.

NATS is made unreachable by a TCP forwarder of this test between the gateway and the
machine's nats-server, closed and opened again (the shared server is never killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ecohub.ingest.bus import BusConfig, BusPublisher, fetch_bus_status
from tests.test_bus import NATS_URL, delete_stream, free_port, nats_reachable

TS = "2024-01-15T10:00:00+08:00"


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=2).close()
        return True
    except OSError:
        return False


class Forwarder:
    """TCP from ``port`` to the NATS server; :meth:`cut` closes the listener and every
    connection (NATS unreachable), :meth:`open` listens again on the same port."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self.writers -= {writer, upstream_writer}


@pytest.fixture
def stream() -> Iterator[str]:
    if not nats_reachable():
        pytest.skip(f"no NATS server at {NATS_URL} (nats-server -js; see docs/bus.md)")
    if not _broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883 (.ci/run starts Mosquitto)")
    name = f"ECOHUB_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield name
    delete_stream(NATS_URL, name)


def _operator_key(engine: Engine) -> str:
    from ecohub.accounts.keys import Role, issue_key

    with Session(engine) as session:
        key = issue_key(session, name="operator", role=Role.OPERATOR, created_by="test")
        session.commit()
    return str(key)


def test_mqtt_and_http_answer_only_once_on_the_bus(
    stream: str, engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiomqtt
    import httpx
    import paho.mqtt.client

    from ecohub.config import get_settings
    from ecohub.ingest.hj212_gateway import HJ212Gateway
    from ecohub.serve import start_other_doors

    events: list[str] = []  # in the order they happen
    original_ack = paho.mqtt.client.Client.ack

    def ack(self: Any, mid: int, qos: int) -> Any:
        events.append("puback")
        return original_ack(self, mid, qos)

    monkeypatch.setattr(paho.mqtt.client.Client, "ack", ack)
    original_publish = BusPublisher.publish

    async def publish(self: BusPublisher, rows: Any, rejected: Any) -> None:
        await original_publish(self, rows, rejected)
        events.append(f"bus {len(rows)}")

    monkeypatch.setattr(BusPublisher, "publish", publish)
    host, port = NATS_URL.removeprefix("nats://").rsplit(":", 1)
    forwarder = Forwarder(free_port(), (host, int(port)))
    config = BusConfig(f"nats://127.0.0.1:{forwarder.port}", stream=stream, partitions=2)
    key = _operator_key(engine)
    topic = f"test-{uuid.uuid4().hex[:8]}/measurements"
    api_port = free_port()

    def measurement(value: float) -> bytes:
        return json.dumps(
            {"point": "1001A", "parameter": "a34004", "interval": "hour", "ts": TS, "value": value}
        ).encode()

    async def wait_for(what: str, seconds: float) -> bool:
        for _ in range(int(seconds * 20)):
            if what in events:
                return True
            await asyncio.sleep(0.05)
        return False

    async def scenario() -> dict[str, Any]:
        await forwarder.open()
        gateway = HJ212Gateway(engine, idle_timeout=60, bus=BusPublisher(config))
        await gateway.start("127.0.0.1", free_port())
        stop = asyncio.Event()
        doors = await start_other_doors(
            engine,
            gateway,
            stop,
            ("mqtt://127.0.0.1:1883", f"{topic}/#"),
            ("127.0.0.1", api_port),
            get_settings(),
            mqtt_client_id=f"test-{uuid.uuid4().hex[:8]}",
        )
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
        outcome: dict[str, Any] = {}
        try:
            await asyncio.sleep(1.0)  # subscribed, listening
            async with aiomqtt.Client("127.0.0.1", 1883) as client:
                # On the bus: the broker gets its PUBACK after JetStream's acknowledgement.
                await client.publish(f"{topic}/1001A", measurement(1.0), qos=1)
                assert await wait_for("puback", 10), events
                outcome["mqtt"] = list(events)
                events.clear()
                answer = await http.post(
                    "/api/v1/measurements", content=measurement(2.0), headers=headers
                )
                events.append(f"http {answer.status_code}")
                outcome["http"] = list(events)
                events.clear()
                # NATS unreachable: no PUBACK and no HTTP answer.
                await forwarder.cut()
                await client.publish(f"{topic}/1001A", measurement(3.0), qos=1)
                post = asyncio.create_task(
                    http.post("/api/v1/measurements", content=measurement(4.0), headers=headers)
                )
                await asyncio.sleep(3.0)
                outcome["cut"] = list(events)
                outcome["http_waiting"] = not post.done()
                # Reachable again: the publishes retried with their ids go through.
                await forwarder.open()
                answer = await asyncio.wait_for(post, 30)
                events.append(f"http {answer.status_code}")
                assert await wait_for("puback", 30), events
                outcome["after"] = list(events)
            outcome["status"] = await fetch_bus_status(
                BusConfig(NATS_URL, stream=stream, partitions=2)
            )
        finally:
            await http.aclose()
            stop.set()
            await asyncio.gather(*doors, return_exceptions=True)
            await gateway.close()
            with contextlib.suppress(Exception):
                await forwarder.cut()
        return outcome

    outcome = asyncio.run(scenario())
    assert outcome["mqtt"] == ["bus 1", "puback"]
    assert outcome["http"] == ["bus 1", "http 200"]
    assert outcome["cut"] == []  # neither acknowledged while NATS is away
    assert outcome["http_waiting"]
    # After: the two values held up (in one batch or two, as the writer gathered them)
    # on the bus first, then each door's answer.
    after = outcome["after"]
    published = [event for event in after if event.startswith("bus ")]
    assert sum(int(event.split()[1]) for event in published) == 2
    first = after.index(published[0])
    assert after.index("http 200") > first and after.index("puback") > first
    # One message per batch (one point, so one partition): two before, the rest after.
    assert outcome["status"]["messages"] == 2 + len(published)
