"""A writer of the ingestion bus: takes partitions, consumes their batches from JetStream
and stores them through the pipeline's writer process (:mod:`ecohub.ingest.bus`).

- **One writer per partition.** Before it consumes a partition a writer takes the
  partition's lock in the store: a PostgreSQL advisory lock held by its own session
  (released by the server when the writer dies), or on SQLite an ``flock`` on a file
  beside the database. A second writer started for a partition waits for it, so a
  series, its hours and its alarms always have one writer (the memory of open hours
  and the alarm rules rely on it).
- **Acknowledged after the commit.** Each partition has one durable pull consumer with
  explicit acknowledgement. The batches fetched are decoded and written by the same
  :class:`~ecohub.ingest.writer_process.WriterProcess` as the local journal's (quality
  checks, idempotent upsert, deferred rollups, alarms); a message is acknowledged once
  the batch holding it is committed, and told to come again (``nak``) when the write
  failed. A writer killed before acknowledging leaves its messages to be delivered again
  ``ack_wait`` seconds later, to the writer that takes the partition next; writing them
  a second time changes nothing (the store's key).
- **Partitions ahead.** On PostgreSQL a writer makes sure the current month and the
  next three have their partitions of the observations and rollups, at start and every
  :data:`PARTITIONS_AHEAD_SECONDS` (:func:`keep_partitions_ahead`), as ``ecohub serve``
  does: on a bus deployment the writers are what runs for months.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from ecohub.ingest.bus import BusConfig, connect, decode_batch, ensure_stream
from ecohub.ingest.events import log_event
from ecohub.ingest.writer_process import WriterProcess
from ecohub.timeseries.observations import WriteResult
from ecohub.timeseries.partitions import ensure_ahead

logger = logging.getLogger("ecohub.bus")
FETCH_MESSAGES = 64  # per pull of one partition
STORE_BATCH_ROWS = 50_000  # messages gathered into one write up to this many rows
GATHER_SECONDS = 0.02  # how long a write waits for more messages
MAX_WRITES_IN_FLIGHT = 2  # as the batch writer's: the next batch travels while one commits
LOCK_CHECK_SECONDS = 5.0
PARTITIONS_AHEAD_SECONDS = 3600.0


class PartitionLocks:
    """The partitions' locks in the store (see the module docstring)."""

    def __init__(self, engine: Engine, stream: str) -> None:
        self.engine = engine
        self.stream = stream
        self.held: set[int] = set()
        self._connection: Connection | None = None
        self._files: dict[int, Any] = {}
        self._postgres = engine.url.get_backend_name() == "postgresql"

    def _key(self, partition: int) -> int:
        return (zlib.crc32(self.stream.encode()) << 16) | partition

    def try_take(self, partition: int) -> bool:
        """Take a partition's lock if no other writer holds it."""
        if partition in self.held:
            return True
        if self._postgres:
            if self._connection is None:
                self._connection = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            query = text("SELECT pg_try_advisory_lock(:key)")
            taken = bool(self._connection.execute(query, {"key": self._key(partition)}).scalar())
        else:
            database = self.engine.url.database or "ecohub"
            path = Path(f"{database}.bus-{self.stream}-{partition}.lock")
            handle = path.open("a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._files[partition] = handle
            taken = True
        if taken:
            self.held.add(partition)
        return taken

    def alive(self) -> bool:
        """Whether the locks are still held (the session holding them still answers)."""
        if self._connection is None:
            return True
        try:
            self._connection.execute(text("SELECT 1"))
        except Exception as error:
            log_event(logger, "bus_locks_lost", logging.ERROR, error=repr(error))
            return False
        return True

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()  # ends the session: its advisory locks go with it
            self._connection = None
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        self.held.clear()


@dataclass
class BusWriterStats:
    messages: int = 0
    rows: int = 0
    batches: int = 0
    written: int = 0
    unchanged: int = 0
    failures: int = 0
    undecodable: int = 0
    partitions: list[int] = field(default_factory=list)


class BusWriter:
    """Consumes ``partitions`` of the bus into the store at ``url`` until ``stop``."""

    def __init__(
        self,
        engine: Engine,
        config: BusConfig,
        partitions: list[int],
        *,
        rollup_delay: float = 2.0,
        name: str = "ecohub-bus-writer",
    ) -> None:
        self.engine = engine
        self.config = config
        self.partitions = sorted(set(partitions))
        self.rollup_delay = rollup_delay
        self.name = name
        self.stats = BusWriterStats()
        self.locks = PartitionLocks(engine, config.stream)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=FETCH_MESSAGES * 8)
        self._slots = asyncio.Semaphore(MAX_WRITES_IN_FLIGHT)
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecohub-bus-send")
        self._store = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecohub-bus-locks")
        self._process: WriterProcess | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._nc: Any = None

    async def run(self, stop: asyncio.Event) -> None:
        """Take the partitions, consume them until ``stop``, then finish the writes in
        flight (their messages acknowledged) and flush the deferred rollups."""
        loop = asyncio.get_running_loop()
        self._nc = await connect(self.config, self.name)
        js = self._nc.jetstream(timeout=10.0)
        try:
            await ensure_stream(js, self.config)  # PartitionMismatch: refuse to start
        except BaseException:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._sender.shutdown(wait=False)
            self._store.shutdown(wait=False)
            raise
        url = self.engine.url.render_as_string(hide_password=False)
        self._process = WriterProcess(url, self.rollup_delay)
        await loop.run_in_executor(self._sender, self._process.start)
        fetchers = [
            loop.create_task(self._consume(js, partition, stop), name=f"bus-partition-{partition}")
            for partition in self.partitions
        ]
        gatherer = loop.create_task(self._gather(stop), name="bus-gather")
        watcher = loop.create_task(self._watch_locks(stop), name="bus-locks")
        ahead = loop.create_task(
            keep_partitions_ahead(self.engine, stop, PARTITIONS_AHEAD_SECONDS),
            name="bus-partitions-ahead",
        )
        log_event(logger, "bus_writer_started", name=self.name, partitions=self.partitions)
        try:
            await stop.wait()
        finally:
            for task in (*fetchers, watcher, ahead):
                task.cancel()
            await asyncio.gather(*fetchers, watcher, ahead, return_exceptions=True)
            await gatherer  # writes what was fetched, and waits for the writes
            await self._close()

    async def _close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._process is not None:
            await loop.run_in_executor(self._sender, self._process.close)
        if self._nc is not None:
            # Not drain(): it waits for the pull subscriptions' open requests. The
            # acknowledgements are flushed; any lost means one delivery more.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await self._nc.close()
        await loop.run_in_executor(self._store, self.locks.release)
        self._sender.shutdown(wait=True)
        self._store.shutdown(wait=True)
        log_event(logger, "bus_writer_stopped", **self.stats.__dict__)

    async def _take(self, partition: int, stop: asyncio.Event) -> bool:
        """Wait until this writer holds the partition's lock (False: stopping)."""
        loop = asyncio.get_running_loop()
        waited = False
        while not stop.is_set():
            try:
                if await loop.run_in_executor(self._store, self.locks.try_take, partition):
                    self.stats.partitions = sorted(self.locks.held)
                    log_event(logger, "bus_partition_taken", partition=partition, name=self.name)
                    return True
            except Exception as error:  # the store is away: try again
                log_event(logger, "bus_lock_failed", logging.ERROR, error=repr(error))
            if not waited:
                log_event(logger, "bus_partition_busy", partition=partition)
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
        return False

    async def _consume(self, js: Any, partition: int, stop: asyncio.Event) -> None:
        """Pull a partition's messages into the queue while the writer holds it."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if not await self._take(partition, stop):
            return
        config = ConsumerConfig(
            durable_name=self.config.durable(partition),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.config.ack_wait,
            max_ack_pending=FETCH_MESSAGES * 16,
            max_deliver=-1,
        )
        subscription = None
        while not stop.is_set():
            try:
                if subscription is None:
                    subscription = await js.pull_subscribe(
                        self.config.subject(partition),
                        durable=self.config.durable(partition),
                        stream=self.config.stream,
                        config=config,
                    )
                messages = await subscription.fetch(FETCH_MESSAGES, timeout=1.0)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the server is away: the client reconnects
                log_event(logger, "bus_fetch_failed", logging.WARNING, error=repr(error))
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                await self._queue.put(message)

    async def _gather(self, stop: asyncio.Event) -> None:
        """Gather fetched messages into writes of up to :data:`STORE_BATCH_ROWS` rows."""
        while True:
            try:
                first = await asyncio.wait_for(self._queue.get(), 0.25)
            except TimeoutError:
                if stop.is_set() and self._queue.empty():
                    break
                continue
            batch = [first]
            rows, rejected = self._decoded(first)
            deadline = time.monotonic() + GATHER_SECONDS
            while len(rows) < STORE_BATCH_ROWS:
                remaining = deadline - time.monotonic()
                if self._queue.empty() and remaining <= 0:
                    break
                try:
                    message = await asyncio.wait_for(self._queue.get(), max(remaining, 0.001))
                except TimeoutError:
                    break
                more, refused = self._decoded(message)
                batch.append(message)
                rows += more
                rejected += refused
            await self._slots.acquire()
            task = asyncio.get_running_loop().create_task(self._write(batch, rows, rejected))
            self._writes.add(task)
            task.add_done_callback(self._write_done)
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    def _decoded(self, message: Any) -> tuple[list[Any], list[Any]]:
        try:
            return decode_batch(message.data)
        except (ValueError, TypeError, KeyError) as error:
            # Not a batch: acknowledged with the write, so that it does not come back.
            self.stats.undecodable += 1
            log_event(logger, "bus_message_refused", logging.ERROR, error=repr(error))
            return [], []

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        self._slots.release()

    async def _write(self, messages: list[Any], rows: list[Any], rejected: list[Any]) -> None:
        """Store one gathered batch; acknowledge its messages once committed."""
        assert self._process is not None
        process = self._process
        loop = asyncio.get_running_loop()
        try:
            sent = await loop.run_in_executor(self._sender, process.send, rows, rejected)
            result: WriteResult = await asyncio.wrap_future(sent)
        except Exception as error:  # delivered again soon; writing twice changes nothing
            self.stats.failures += 1
            log_event(logger, "bus_write_failed", logging.ERROR, error=repr(error))
            for message in messages:
                with contextlib.suppress(Exception):
                    await message.nak(delay=1.0)
            return
        for message in messages:
            # An acknowledgement lost on the way means one delivery more, nothing else.
            with contextlib.suppress(Exception):
                await message.ack()
        self.stats.messages += len(messages)
        self.stats.rows += len(rows)
        self.stats.batches += 1
        self.stats.written += result.written
        self.stats.unchanged += result.unchanged

    async def _watch_locks(self, stop: asyncio.Event) -> None:
        """Stop if the session holding the partitions' locks is gone: another writer may
        take them now."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            if not await loop.run_in_executor(self._store, self.locks.alive):
                stop.set()


def partitions_of(index: int, count: int, partitions: int) -> list[int]:
    """The partitions writer ``index`` of ``count`` takes: every ``count``-th one."""
    if not 0 <= index < count:
        raise ValueError(f"writer index {index} is not in 0..{count - 1}")
    return [p for p in range(partitions) if p % count == index]


async def keep_partitions_ahead(engine: Engine, stop: asyncio.Event, every: float) -> None:
    """Until ``stop``: now and every ``every`` seconds, make sure this month's and the
    next three months' partitions exist (:func:`ecohub.timeseries.partitions.ensure_ahead`;
    nothing on SQLite). A failure (a lock timeout) is logged and tried again next time:
    meanwhile a value of a month without its partition is kept in DEFAULT."""
    while not stop.is_set():
        try:
            created = await asyncio.to_thread(ensure_ahead, engine)
        except Exception as error:
            log_event(logger, "partitions_ahead_failed", logging.ERROR, error=repr(error))
        else:
            if created:
                log_event(logger, "partitions_created", names=created)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
