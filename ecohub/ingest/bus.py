"""The ingestion bus: the doors publish accepted batches to NATS JetStream, and writer
processes (:mod:`ecohub.ingest.bus_writer`) store them, on one host or several.

A batch's rows are split by point into ``partitions`` subjects (``<prefix>.<n>``, the
point id modulo the partition count), so that each series, and each point's hours and
alarms, has one writer. The gateway's batch writer publishes each part with a
``Nats-Msg-Id`` made of this process's origin, the batch number and the part number, and
answers the batch's senders once JetStream has acknowledged every part (its stream on
file storage): a publish retried after a lost acknowledgement carries the same id and
is dropped by JetStream within the stream's duplicate window, and a batch sent again by
a logger (a new id) is stored again with the same key, which changes nothing.

Messages carry JSON, not pickles: anyone who can publish to the bus can only send
values, which the writer checks like any other door's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import logging
import os
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ecohub.config import Settings
from ecohub.db.quarantine import Rejected
from ecohub.ingest.events import log_event
from ecohub.timeseries.observations import Observation

logger = logging.getLogger("ecohub.bus")
FORMAT = 1  # of a message's JSON
# Rows per message: NATS refuses messages over its max_payload (1 MB by default); a row
# takes about 60 bytes of JSON.
MESSAGE_ROWS = 5_000
# JetStream drops a message whose Nats-Msg-Id it saw this recently; publishes are
# retried well within it.
DUPLICATE_WINDOW = 120.0
PUBLISH_TIMEOUT = 5.0
PUBLISH_RETRY_SECONDS = 30.0  # then the batch fails and its senders send again
# Batches being published at once (each waits for JetStream's acknowledgement).
MAX_PUBLISHING = 8
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class BusConfig:
    """Where the bus is and how it is cut: from the settings (:func:`bus_config`)."""

    url: str
    stream: str = "ECOHUB_OBS"
    partitions: int = 8
    ack_wait: float = 30.0
    max_bytes: int = 1 << 30

    @property
    def subject_prefix(self) -> str:
        """``ECOHUB_OBS`` → ``ecohub.obs``: a stream's subjects follow its name."""
        return self.stream.lower().replace("_", ".")

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.{partition}"

    def durable(self, partition: int) -> str:
        """The durable consumer of a partition (one per partition, shared by whoever
        holds the partition)."""
        return f"{self.stream}_writer_{partition}"

    @property
    def servers(self) -> list[str]:
        return [part.strip() for part in self.url.split(",") if part.strip()]


def bus_config(settings: Settings) -> BusConfig | None:
    """The bus of these settings, or None for the single-process path (the default)."""
    if not settings.bus_url.strip():
        return None
    return BusConfig(
        url=settings.bus_url,
        stream=settings.bus_stream,
        partitions=settings.bus_partitions,
        ack_wait=settings.bus_ack_wait,
        max_bytes=settings.bus_max_bytes,
    )


def partition_of(point_id: int, partitions: int) -> int:
    """The partition of a point: every series of a point goes to one writer."""
    return point_id % partitions


# --- messages -----------------------------------------------------------------------


def encode_batch(rows: list[Observation], rejected: Iterable[Rejected] = ()) -> bytes:
    """One message: the rows as columns (times as microseconds since 1970, UTC)."""
    columns: list[list[Any]] = [[], [], [], [], [], [], [], []]
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        columns[3] = [(ts - _EPOCH) // _MICROSECOND for ts in columns[3]]
    document = {
        "f": FORMAT,
        "c": columns,
        "r": [
            [
                *(r.source, r.reason_code, r.reason, r.raw, r.peer, r.point_code),
                *((r.received_at - _EPOCH) // _MICROSECOND, r.times),
            ]
            for r in rejected
        ],
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


_MICROSECOND = dt.timedelta(microseconds=1)


def decode_batch(payload: bytes) -> tuple[list[Observation], list[Rejected]]:
    """The rows and rejected input of a message (ValueError if it is not one)."""
    document = json.loads(payload)
    if not isinstance(document, dict) or document.get("f") != FORMAT:
        raise ValueError("not an EcoHub bus message")
    points, codes, intervals, times, values, flags, qualities, sources = document["c"]
    stamps = [_EPOCH + dt.timedelta(microseconds=int(us)) for us in times]
    rows = [
        Observation(int(p), str(c), str(i), t, None if v is None else float(v), str(f), int(q), s)
        for p, c, i, t, v, f, q, s in zip(
            points, codes, intervals, stamps, values, flags, qualities, sources, strict=True
        )
    ]
    rejected = [
        Rejected(
            source=str(source),
            reason_code=str(code),
            reason=str(reason),
            raw=str(raw),
            peer=peer,
            point_code=point_code,
            received_at=_EPOCH + dt.timedelta(microseconds=int(received)),
            times=int(times_),
        )
        for source, code, reason, raw, peer, point_code, received, times_ in document["r"]
    ]
    return rows, rejected


def split_batch(
    rows: list[Observation], rejected: list[Rejected], partitions: int
) -> list[tuple[int, bytes]]:
    """A batch as messages: (partition, payload), at most :data:`MESSAGE_ROWS` rows each.
    Rejected input goes with the partition of its point's code (it names no point id)."""
    parts: dict[int, list[Observation]] = {}
    for row in rows:
        parts.setdefault(row.point_id % partitions, []).append(row)
    refused: dict[int, list[Rejected]] = {}
    for item in rejected:
        key = zlib.crc32((item.point_code or item.peer or "").encode()) % partitions
        refused.setdefault(key, []).append(item)
    messages = []
    for partition in sorted(parts.keys() | refused.keys()):
        part = parts.get(partition, [])
        extra = refused.get(partition, [])
        for start in range(0, max(len(part), 1), MESSAGE_ROWS):
            chunk = part[start : start + MESSAGE_ROWS]
            messages.append((partition, encode_batch(chunk, extra if start == 0 else ())))
    return messages


# --- the stream ---------------------------------------------------------------------


async def connect(config: BusConfig, name: str) -> Any:
    """A NATS connection that reconnects for ever (its publishes fail meanwhile)."""
    import nats

    async def error_cb(error: Exception) -> None:
        log_event(logger, "bus_connection_error", logging.WARNING, error=repr(error))

    return await nats.connect(
        servers=config.servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
        error_cb=error_cb,
    )


async def ensure_stream(js: Any, config: BusConfig) -> None:
    """Create the stream if it is missing: file storage; work-queue retention (a
    message is removed once its writer acknowledges it); at most ``max_bytes``, beyond
    which publishes are refused rather than old messages dropped; the duplicate window
    of :data:`DUPLICATE_WINDOW`."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(config.stream)
        return
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=config.stream,
            subjects=[f"{config.subject_prefix}.*"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            discard=DiscardPolicy.NEW,
            max_bytes=config.max_bytes,
            duplicate_window=DUPLICATE_WINDOW,
            num_replicas=1,
        )
    )
    log_event(logger, "bus_stream_created", stream=config.stream, partitions=config.partitions)


# --- the publisher ------------------------------------------------------------------


@dataclass
class PublisherStats:
    batches: int = 0
    messages: int = 0
    rows: int = 0
    duplicates: int = 0  # publishes JetStream had already (a retry after a lost answer)
    retries: int = 0
    failures: int = 0  # batches given up on (their senders were not answered)
    slowest_seconds: float = 0.0


@dataclass
class BusPublisher:
    """Publishes the gateway's batches (see the module docstring); a
    :class:`~ecohub.ingest.batch_writer.BatchWriter` given one answers its senders once
    their batch is on the bus."""

    config: BusConfig
    stats: PublisherStats = field(default_factory=PublisherStats)

    def __post_init__(self) -> None:
        # Unique per process start: message ids never repeat across restarts.
        self.origin = f"{os.uname().nodename}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self._numbers = itertools.count(1)
        self._nc: Any = None
        self._js: Any = None
        self._slots = asyncio.Semaphore(MAX_PUBLISHING)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._nc = await connect(self.config, f"ecohub-gateway-{self.origin}")
        self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT)
        await ensure_stream(self._js, self.config)
        log_event(logger, "bus_publisher_started", stream=self.config.stream, origin=self.origin)

    async def dispatch(
        self,
        rows: list[Observation],
        rejected: list[Rejected],
        futures: list[asyncio.Future[None]],
    ) -> None:
        """Publish a batch in the background (at most :data:`MAX_PUBLISHING` at once) and
        resolve its futures once JetStream has it, or fail them."""
        await self._slots.acquire()
        task = asyncio.get_running_loop().create_task(
            self._publish_then_answer(rows, rejected, futures)
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _publish_then_answer(
        self, rows: list[Observation], rejected: list[Rejected], futures: list[asyncio.Future[None]]
    ) -> None:
        try:
            await self.publish(rows, rejected)
        except Exception as error:
            self.stats.failures += 1
            log_event(logger, "bus_publish_failed", logging.ERROR, error=repr(error))
            for future in futures:
                if not future.done():
                    future.set_exception(RuntimeError(f"batch not on the bus: {error!r}"))
            return
        for future in futures:
            if not future.done():
                future.set_result(None)

    async def publish(self, rows: list[Observation], rejected: list[Rejected]) -> None:
        """Publish a batch and return once JetStream has acknowledged every part."""
        number = next(self._numbers)
        started = time.monotonic()
        messages = split_batch(rows, rejected, self.config.partitions)
        await asyncio.gather(
            *(
                self._publish_one(partition, payload, f"{self.origin}.{number}.{index}")
                for index, (partition, payload) in enumerate(messages)
            )
        )
        took = time.monotonic() - started
        self.stats.slowest_seconds = max(self.stats.slowest_seconds, took)
        self.stats.batches += 1
        self.stats.messages += len(messages)
        self.stats.rows += len(rows)

    async def _publish_one(self, partition: int, payload: bytes, message_id: str) -> None:
        """One message, retried with the same id until JetStream acknowledges it or
        :data:`PUBLISH_RETRY_SECONDS` pass."""
        deadline = time.monotonic() + PUBLISH_RETRY_SECONDS
        subject = self.config.subject(partition)
        for attempt in itertools.count():
            try:
                ack = await self._js.publish(
                    subject, payload, timeout=PUBLISH_TIMEOUT, headers={"Nats-Msg-Id": message_id}
                )
            except Exception as error:
                if time.monotonic() >= deadline:
                    raise
                self.stats.retries += 1
                if attempt == 0:
                    log_event(logger, "bus_publish_retry", logging.WARNING, error=repr(error))
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
                continue
            if ack.duplicate:
                self.stats.duplicates += 1
            return

    async def close(self) -> None:
        """Wait for the batches being published, then close the connection."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception as error:  # the server is away: nothing is waiting on it
                log_event(logger, "bus_close_failed", logging.WARNING, error=repr(error))
        log_event(logger, "bus_publisher_stopped", **self.stats.__dict__)


# --- status -------------------------------------------------------------------------


async def fetch_bus_status(config: BusConfig, nc: Any = None) -> dict[str, Any]:
    """The backlog of the bus: the stream's messages and bytes, and per writer consumer
    (partition) the messages not yet delivered (``pending``), delivered and not yet
    acknowledged (``ack_pending``), their sum (``backlog``) and redeliveries. For
    ``ecohub serve``'s status and the agency portal; ``error`` when the bus is away."""
    own = nc is None
    status: dict[str, Any] = {"stream": config.stream, "url": config.url, "consumers": []}
    try:
        if own:
            import nats

            nc = await nats.connect(
                servers=config.servers, connect_timeout=2, allow_reconnect=False
            )
        js = nc.jetstream(timeout=3.0)
        try:
            info = await js.stream_info(config.stream)
        except Exception as error:
            if type(error).__name__ != "NotFoundError":
                raise
            status["absent"] = True  # no gateway has published yet
            return status
        status.update(messages=info.state.messages, bytes=info.state.bytes)
        for partition in range(config.partitions):
            name = config.durable(partition)
            try:
                consumer = await js.consumer_info(config.stream, name)
            except Exception:  # no writer has taken this partition yet
                status["consumers"].append({"name": name, "partition": partition, "missing": True})
                continue
            status["consumers"].append(
                {
                    "name": name,
                    "partition": partition,
                    "pending": consumer.num_pending,
                    "ack_pending": consumer.num_ack_pending,
                    "backlog": (consumer.num_pending or 0) + (consumer.num_ack_pending or 0),
                    "redelivered": consumer.num_redelivered,
                }
            )
    except Exception as error:
        status["error"] = repr(error)
    finally:
        if own and nc is not None:
            try:
                await nc.close()
            except Exception as error:  # already gone
                log_event(logger, "bus_status_close_failed", logging.DEBUG, error=repr(error))
    return status


def bus_status(config: BusConfig) -> dict[str, Any]:
    """:func:`fetch_bus_status` for callers without an event loop (the portal's pages run
    in worker threads)."""
    return asyncio.run(fetch_bus_status(config))
