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
values, which the writer checks like any other door's. A message is kept under the
server's ``max_payload`` by its encoded size (:func:`split_batch`), each rejected input's
raw text cut to :data:`RAW_BYTES`, so that junk can never hold up good loggers' answers.

The stream's description records the partition count (``partitions=N``); a process
configured with another count refuses to start (:class:`PartitionMismatch`).
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import itertools
import json
import logging
import os
import re
import threading
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ecohub.config import Settings
from ecohub.db.quarantine import Rejected
from ecohub.ingest.events import log_event
from ecohub.timeseries.observations import Observation

logger = logging.getLogger("ecohub.bus")
FORMAT = 1  # of a message's JSON
# Rows per message (a row takes about 60 bytes of JSON); a message is also kept under
# the server's max_payload (1 MiB by default) by its encoded size, less HEADER_ROOM for
# the subject and headers.
MESSAGE_ROWS = 5_000
DEFAULT_MAX_PAYLOAD = 1 << 20
HEADER_ROOM = 4096
# A rejected input's raw text on the bus: at most this many bytes of its UTF-8, the rest
# cut with a note (the quarantine shows what was received, not all of a flood).
RAW_BYTES = 4096
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


def cut_raw(item: Rejected, limit: int = RAW_BYTES) -> Rejected:
    """``item`` with its raw text cut to ``limit`` bytes of UTF-8, saying so."""
    data = item.raw.encode("utf-8", errors="surrogateescape")
    if len(data) <= limit:
        return item
    kept = data[:limit].decode("utf-8", errors="ignore")
    note = f" [cut: {limit:,} of {len(data):,} bytes kept]"
    return replace(item, raw=kept + note)


def split_batch(
    rows: list[Observation],
    rejected: list[Rejected],
    partitions: int,
    max_bytes: int = DEFAULT_MAX_PAYLOAD - HEADER_ROOM,
) -> list[tuple[int, bytes]]:
    """A batch as messages: (partition, payload), at most :data:`MESSAGE_ROWS` rows and
    ``max_bytes`` bytes each, each rejected input's raw text cut (:func:`cut_raw`).
    Rejected input goes with the partition of its point's code (it names no point id)."""
    parts: dict[int, list[Observation]] = {}
    for row in rows:
        parts.setdefault(row.point_id % partitions, []).append(row)
    refused: dict[int, list[Rejected]] = {}
    for item in rejected:
        key = zlib.crc32((item.point_code or item.peer or "").encode()) % partitions
        refused.setdefault(key, []).append(cut_raw(item))
    messages = []
    for partition in sorted(parts.keys() | refused.keys()):
        part = parts.get(partition, [])
        extra = refused.get(partition, [])
        for start in range(0, max(len(part), 1), MESSAGE_ROWS):
            chunk = part[start : start + MESSAGE_ROWS]
            for payload in _sized(chunk, extra if start == 0 else [], max_bytes):
                messages.append((partition, payload))
    return messages


def _sized(rows: list[Observation], rejected: list[Rejected], max_bytes: int) -> list[bytes]:
    """``rows`` and ``rejected`` as messages of at most ``max_bytes``: halved until they
    fit (a single rejected input that still does not fit loses its raw text)."""
    payload = encode_batch(rows, rejected)
    if len(payload) <= max_bytes:
        return [payload]
    if len(rows) + len(rejected) <= 1:
        if rejected:
            note = f"[cut: raw input of {len(rejected[0].raw):,} characters not kept]"
            return [encode_batch(rows, [replace(rejected[0], raw=note)])]
        raise ValueError(f"one row encodes to {len(payload):,} bytes, over {max_bytes:,}")
    if len(rejected) > 1:
        half = len(rejected) // 2
        return _sized(rows, rejected[:half], max_bytes) + _sized([], rejected[half:], max_bytes)
    if rejected:
        return _sized(rows, [], max_bytes) + _sized([], rejected, max_bytes)
    half = len(rows) // 2
    return _sized(rows[:half], [], max_bytes) + _sized(rows[half:], [], max_bytes)


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


class PartitionMismatch(RuntimeError):
    """The stream was made for another partition count than this process's."""


def stream_description(partitions: int) -> str:
    """The stream's description, which records its partition count."""
    return f"EcoHub observations; partitions={partitions}"


def recorded_partitions(description: str | None) -> int | None:
    """The partition count a stream's description records (None: not recorded)."""
    match = re.search(r"\bpartitions=(\d+)\b", description or "")
    return int(match[1]) if match else None


async def ensure_stream(js: Any, config: BusConfig) -> None:
    """Create the stream if it is missing: file storage; work-queue retention (a
    message is removed once its writer acknowledges it); at most ``max_bytes``, beyond
    which publishes are refused rather than old messages dropped; the duplicate window
    of :data:`DUPLICATE_WINDOW`; the partition count in its description.

    An existing stream whose description records another partition count than
    ``config.partitions`` raises :class:`PartitionMismatch` (a point would then have two
    writers, or messages no writer reads); one that records none gets this count."""
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(config.stream)
    except NotFoundError:
        info = None
    if info is not None:
        found = recorded_partitions(info.config.description)
        if found is None:
            info.config.description = stream_description(config.partitions)
            await js.update_stream(info.config)
            log_event(logger, "bus_partitions_recorded", partitions=config.partitions)
        elif found != config.partitions:
            raise PartitionMismatch(
                f"the stream {config.stream} has {found} partitions but "
                f"ECOHUB_BUS_PARTITIONS is {config.partitions}: set ECOHUB_BUS_PARTITIONS="
                f"{found} on every gateway and writer (changing the count needs an empty "
                "stream, deleted and made again; docs/bus.md)"
            )
        return
    await js.add_stream(
        StreamConfig(
            name=config.stream,
            description=stream_description(config.partitions),
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
        messages = split_batch(rows, rejected, self.config.partitions, self.max_message_bytes)
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

    @property
    def max_message_bytes(self) -> int:
        """The largest payload to publish: the server's ``max_payload`` (as this
        connection was told) less room for the subject and headers."""
        limit = getattr(self._nc, "max_payload", None) or DEFAULT_MAX_PAYLOAD
        return max(int(limit) - HEADER_ROOM, 1024)

    async def _publish_one(self, partition: int, payload: bytes, message_id: str) -> None:
        """One message, retried with the same id until JetStream acknowledges it or
        :data:`PUBLISH_RETRY_SECONDS` pass; a message too large is not retried."""
        deadline = time.monotonic() + PUBLISH_RETRY_SECONDS
        subject = self.config.subject(partition)
        for attempt in itertools.count():
            try:
                ack = await self._js.publish(
                    subject, payload, timeout=PUBLISH_TIMEOUT, headers={"Nats-Msg-Id": message_id}
                )
            except Exception as error:
                if is_final(error) or time.monotonic() >= deadline:
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


def is_final(error: Exception) -> bool:
    """Whether a publish error comes again however often the message is sent: it is too
    large (the client's check against max_payload, or JetStream's own limit)."""
    from nats.errors import MaxPayloadError
    from nats.js.errors import APIError

    if isinstance(error, MaxPayloadError):
        return True
    return isinstance(error, APIError) and error.err_code in _TOO_LARGE


_TOO_LARGE = {10054}  # JetStream: message size exceeds maximum allowed


# --- status -------------------------------------------------------------------------


# The status shows at most this many partitions' consumers: one listing request of
# JetStream (it answers up to 256 consumers at a time).
STATUS_PARTITIONS = 256
STATUS_CACHE_SECONDS = 5.0  # bus_status answers from its last look this long
STATUS_CONNECT_SECONDS = 5.0


async def _quiet(error: Exception) -> None:
    """The status's connection errors are its answer (``error``), not log noise."""


async def fetch_bus_status(config: BusConfig, nc: Any = None) -> dict[str, Any]:
    """The backlog of the bus: the stream's messages and bytes, and per writer consumer
    (partition) the messages not yet delivered (``pending``), delivered and not yet
    acknowledged (``ack_pending``), their sum (``backlog``) and redeliveries. For
    ``ecohub serve``'s status and the agency portal; ``absent`` when no gateway has made
    the stream yet, ``error`` when the bus is away. Two requests to JetStream (the
    stream, the list of its consumers), whatever the partition count; at most
    :data:`STATUS_PARTITIONS` partitions are shown (``omitted`` says how many not)."""
    own = nc is None
    status: dict[str, Any] = {"stream": config.stream, "url": config.url, "consumers": []}
    try:
        if own:
            import nats

            # One more try per server, not nats-py's default of 60 two seconds apart
            # (two minutes for a page view while NATS is away).
            nc = await asyncio.wait_for(
                nats.connect(
                    servers=config.servers,
                    connect_timeout=2,
                    allow_reconnect=False,
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.2,
                    error_cb=_quiet,
                ),
                STATUS_CONNECT_SECONDS,
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
        found = {c.name: c for c in await js.consumers_info(config.stream)}
        shown = min(config.partitions, STATUS_PARTITIONS)
        if shown < config.partitions:
            status["omitted"] = config.partitions - shown
        status["consumers"] = [_consumer(config, p, found) for p in range(shown)]
    except Exception as error:
        status["error"] = repr(error)
    finally:
        if own and nc is not None:
            try:
                await nc.close()
            except Exception as error:  # already gone
                log_event(logger, "bus_status_close_failed", logging.DEBUG, error=repr(error))
    return status


def _consumer(config: BusConfig, partition: int, found: dict[str, Any]) -> dict[str, Any]:
    name = config.durable(partition)
    consumer = found.get(name)
    if consumer is None:  # no writer has taken this partition yet
        return {"name": name, "partition": partition, "missing": True}
    return {
        "name": name,
        "partition": partition,
        "pending": consumer.num_pending,
        "ack_pending": consumer.num_ack_pending,
        "backlog": (consumer.num_pending or 0) + (consumer.num_ack_pending or 0),
        "redelivered": consumer.num_redelivered,
    }


_status_cache: dict[BusConfig, tuple[float, dict[str, Any]]] = {}
_status_lock = threading.Lock()


def bus_status(config: BusConfig, max_age: float = STATUS_CACHE_SECONDS) -> dict[str, Any]:
    """:func:`fetch_bus_status` for callers without an event loop (the portal's pages run
    in worker threads), answered from the last look if it is under ``max_age`` seconds
    old, so that page views do not each open a connection to NATS."""
    with _status_lock:
        cached = _status_cache.get(config)
        if cached is not None and time.monotonic() - cached[0] < max_age:
            return copy.deepcopy(cached[1])
        status = asyncio.run(fetch_bus_status(config))
        _status_cache[config] = (time.monotonic(), status)
        return copy.deepcopy(status)


def clear_status_cache() -> None:
    """Forget :func:`bus_status`'s last looks (the next call asks the bus)."""
    with _status_lock:
        _status_cache.clear()
