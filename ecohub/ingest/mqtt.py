"""The MQTT door: subscribe to measurement topics on a broker (QoS 1) and feed the pipeline.

Topics follow ``ecohub/measurements/<point code>`` by default (``ECOHUB_MQTT_TOPIC``);
a payload that names no point takes it from the topic's last level. Payloads are the JSON
format of :mod:`ecohub.ingest.measurements`.

At-least-once, end to end: the session is persistent (MQTT 5, fixed client id, clean
start off, a session expiry of a week) and each message is acknowledged to the broker
only after its values are committed (or quarantined). If the process dies before that,
the broker delivers the message again and the store's keys make the second delivery a
no-op.

The subscriber asks for up to ``RECEIVE_MAXIMUM`` unacknowledged messages at a time (MQTT
5 Receive Maximum): with acknowledgement after commit, the number in flight is what lets
the batch writer gather many messages into one commit. (Under MQTT 3.1.1 Mosquitto
would allow only its ``max_inflight_messages``, 20 by default.)

paho, under aiomqtt, decodes each message's MQTT 5 properties with lookup tables it
builds anew for every message (a third of this door's time with one small measurement
per message). An earlier version replaced a class in paho's private ``_packet`` module to
share one set; the platform does not patch its dependencies' private modules, so that
cost is now paid, measured in docs/performance.md, and forwarders are advised to send
several measurements per message (the array payload), which divides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ecohub.db.quarantine import Rejected
from ecohub.ingest.events import log_event
from ecohub.ingest.measurements import MeasurementError, Resolver, parse_item, parse_items
from ecohub.timeseries.observations import Observation

logger = logging.getLogger("ecohub.ingest.mqtt")
MAX_PAYLOAD = 1 << 20
RECEIVE_MAXIMUM = 2000
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600

Submit = Callable[[list[Observation], list[Rejected]], Awaitable[None]]


@dataclass
class MqttStats:
    messages: int = 0
    values: int = 0
    rejected: int = 0


def broker_address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    if parsed.scheme not in ("mqtt", "tcp", ""):
        raise ValueError(f"unsupported MQTT URL {url!r}: use mqtt://host:port")
    return parsed.hostname or "127.0.0.1", parsed.port or 1883


def message_to_rows(
    resolver: Resolver, topic: str, payload: bytes
) -> tuple[list[Observation], list[Rejected]]:
    """Observations of one MQTT message, and a rejection per bad item in it."""
    default_point = topic.rsplit("/", 1)[-1] if "/" in topic else None
    rejected: list[Rejected] = []
    rows: list[Observation] = []

    def reject(code: str, reason: str, raw: str) -> None:
        rejected.append(
            Rejected(
                source="mqtt",
                reason_code=code,
                reason=reason,
                raw=raw,
                peer=topic[:100],
                point_code=default_point,
            )
        )

    text = payload.decode("utf-8", errors="replace")
    if len(payload) > MAX_PAYLOAD:
        reject("too_long", f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}", text[:4096])
        return rows, rejected
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        reject("bad_json", f"not JSON: {error}", text)
        return rows, rejected
    for item in parse_items(document):
        try:
            for measurement in parse_item(item, default_point):
                rows.append(resolver.observation(measurement, "mqtt")[0])
        except MeasurementError as error:
            reject(error.reason_code, error.reason, json.dumps(item, ensure_ascii=False))
    return rows, rejected


async def consume(
    submit: Submit,
    resolver: Resolver,
    *,
    url: str,
    topic: str,
    client_id: str = "ecohub-ingest",
    stop: asyncio.Event | None = None,
    stats: MqttStats | None = None,
    reconnect_delay: float = 2.0,
) -> None:
    """Subscribe and feed ``submit`` until ``stop`` is set; reconnects on broker loss."""
    host, port = broker_address(url)
    stop = stop or asyncio.Event()
    stats = stats or MqttStats()
    delay = reconnect_delay
    while not stop.is_set():
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client(
            host,
            port,
            identifier=client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=properties,
        )
        # aiomqtt has no manual-ack option; its paho client does. Set before connecting
        # so that messages queued in the session are not acknowledged on arrival either.
        client._client.manual_ack_set(True)
        try:
            async with client:
                await client.subscribe(topic, qos=1)
                log_event(logger, "mqtt_subscribed", host=host, port=port, topic=topic)
                delay = reconnect_delay
                await _receive(client, submit, resolver, stop, stats)
        except aiomqtt.MqttError as error:
            log_event(
                logger, "mqtt_disconnected", logging.WARNING, error=str(error), retry_in=delay
            )
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, 60.0)


async def _receive(
    client: aiomqtt.Client,
    submit: Submit,
    resolver: Resolver,
    stop: asyncio.Event,
    stats: MqttStats,
) -> None:
    """Read messages until ``stop`` is set (or the connection fails: the error is
    raised). One reading task, cancelled at stop: waiting for the next message or the
    stop signal afresh for each message took a tenth of this process's time."""
    pending: set[asyncio.Task[None]] = set()

    async def read() -> None:
        async for message in client.messages:
            stats.messages += 1
            rows, rejected = message_to_rows(resolver, str(message.topic), bytes(message.payload))
            stats.values += len(rows)
            stats.rejected += len(rejected)
            task = asyncio.ensure_future(_store_then_ack(client, submit, message, rows, rejected))
            pending.add(task)
            task.add_done_callback(pending.discard)

    reader = asyncio.ensure_future(read())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if reader.done():
            reader.result()  # the connection failed: reconnect
    finally:
        stopper.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _store_then_ack(
    client: aiomqtt.Client,
    submit: Submit,
    message: aiomqtt.Message,
    rows: list[Observation],
    rejected: list[Rejected],
) -> None:
    try:
        await submit(rows, rejected)
    except Exception as error:  # not stored: no ack, the broker will deliver it again
        log_event(logger, "mqtt_store_failed", logging.ERROR, mid=message.mid, error=repr(error))
        return
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)
