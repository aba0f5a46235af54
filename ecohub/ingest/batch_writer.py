"""The batch writer: many producers, one writer, a future per batch of submissions.

Connections (HJ 212, MQTT, HTTP) submit observations and rejected input; the writer
gathers them for up to ``max_delay`` seconds or ``max_rows`` rows and passes each batch
through the ingestion pipeline (quality control, store, rollups) in one transaction, in
a worker thread or a child process, so the event loop never blocks on the database.
Hourly and daily rollups are deferred by ``rollup_delay`` seconds (setting
``ECOHUB_ROLLUP_DELAY``; see :mod:`ecohub.ingest.pipeline`) and recomputed by the
writer between batches, from its memory of the hours it writes
(:mod:`ecohub.timeseries.open_hours`).
A submission's future (shared by its batch) is resolved once its rows are durable, and
a door answers its sender only then, so nothing acknowledged is ever lost:

- without a journal, once they are committed; a failed write is retried with backoff
  before the futures fail (and the loggers, unanswered, send again);
- with a journal (``journal_dir``; :mod:`ecohub.ingest.journal`), once the batch is
  appended to it and flushed to disk, while the store is at most ``max_backlog_rows``
  rows behind (beyond that, once committed again: the journal absorbs bursts, it does
  not hide a store that cannot keep up). A journaled batch is retried until the store
  takes it; batches left uncommitted at shutdown or by a crash are written at the next
  start.

With a bus (``bus``; :mod:`ecohub.ingest.bus`), once JetStream has acknowledged the
batch; writer processes elsewhere store it, and this process writes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import pickle
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ecohub.config import get_settings
from ecohub.db.quarantine import Rejected
from ecohub.ingest.bus import BusPublisher
from ecohub.ingest.events import log_event
from ecohub.ingest.journal import Journal, Record
from ecohub.ingest.pipeline import Pipeline
from ecohub.ingest.writer_process import (
    WriterProcess,
    batch_columns,
    payload_counts,
    unpack_batch,
)
from ecohub.timeseries.observations import Observation, WriteResult

logger = logging.getLogger("ecohub.ingest")
# Batches sent to a writer process before the first is answered: two keep the child
# busy while the next batch is gathered and pickled; more would only split the load
# into smaller batches.
MAX_BATCHES_IN_FLIGHT = 2
# With a journal: rows accepted ahead of the store before answers wait for commits again.
# A sender answered beyond it waits for everything before it (on PostgreSQL here about
# one and a half seconds' worth); a burst of ten-minute data from 1,000 loggers is about
# 20,000. Twice STORE_BATCH_ROWS, so that the next write gathers while one commits.
MAX_BACKLOG_ROWS = 100_000
# With a journal: the batches waiting for the store are written together up to this
# many rows. Each write has a fixed cost, and on SQLite each series' rows go to their
# own page of the primary key, written out once per commit: 50,000 instead of 20,000
# sustained 13-17 % more on the gateway benchmark (both backends, alternating runs).
STORE_BATCH_ROWS = 50_000
# A journal flush this slow is logged (answers wait for it).
SLOW_FLUSH_SECONDS = 0.5
# A journaled batch the store refuses is tried again after at most this long.
MAX_RETRY_DELAY = 30.0


@dataclass
class WriterStats:
    batches: int = 0
    rows_submitted: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    rejected: int = 0
    failures: int = 0
    write_seconds: float = 0.0
    journaled: int = 0  # batches appended to the journal
    replayed: int = 0  # batches an earlier process left in the journal, written again
    answered_early: int = 0  # batches whose senders were answered before the commit
    slowest_flush_seconds: float = 0.0  # of the journal


@dataclass
class _Batch:
    rows: list[Observation] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    # One future per gathered batch, resolved when it is durable (several once queued
    # batches are written together).
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    first_submit: float = 0.0
    # Journaled: its records' numbers and payloads (the pickled columns and rejected
    # input; several when queued batches are written together).
    sequences: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)
    row_count: int = 0

    def absorb(self, other: _Batch) -> None:
        """Add ``other``'s rows, input, futures and journal records to this batch."""
        self.rows += other.rows
        self.rejected += other.rejected
        self.futures += other.futures
        self.sequences += other.sequences
        self.payloads += other.payloads
        self.row_count += other.row_count


class BatchWriter:
    """Gathers submissions and writes them in batches; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_rows: int = 20_000,
        max_delay: float = 0.02,
        retries: int = 3,
        separate_process: bool = False,
        rollup_delay: float | None = None,
        journal_dir: str | os.PathLike[str] | None = None,
        max_backlog_rows: int = MAX_BACKLOG_ROWS,
        store_batch_rows: int = STORE_BATCH_ROWS,
        drain_timeout: float = 60.0,
        bus: BusPublisher | None = None,
    ) -> None:
        """``journal_dir``: answer once journaled (see the module docstring); at
        :meth:`close` the store gets ``drain_timeout`` seconds to take the journaled
        batches, and what it has not taken by then waits in the journal for the next
        start. ``bus``: publish batches there instead (no journal, no store writes)."""
        self.engine = engine
        self.bus = bus
        self.rollup_delay = get_settings().rollup_delay if rollup_delay is None else rollup_delay
        self.pipeline: Pipeline | None = None
        self.max_rows = max_rows
        self.store_batch_rows = store_batch_rows
        self.max_delay = max_delay
        self.retries = retries
        self.stats = WriterStats()
        self._batch = _Batch()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecohub-writer")
        self._side_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ecohub-writer-side"
        )
        self._task: asyncio.Task[None] | None = None
        self._process: WriterProcess | None = None
        self._in_flight = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
        self._writes: set[asyncio.Task[None]] = set()
        # The journal, and the journaled batches waiting for the store.
        self.journal_dir = journal_dir
        self.max_backlog_rows = max_backlog_rows
        self.drain_timeout = drain_timeout
        self._journal: Journal | None = None
        self._journal_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ecohub-journal"
        )
        self._backlog: deque[_Batch] = deque()
        self._backlog_ready = asyncio.Event()
        self._backlog_rows = 0
        self._backlog_closed = False
        self._abandon = False  # shutdown: leave what the store has not taken in the journal
        self._answering_late = False  # the backlog is full (logged once per episode)
        self._outstanding: set[int] = set()  # journaled, not committed
        self._last_journaled = 0
        self._drainer: asyncio.Task[None] | None = None
        url = engine.url
        if bus is not None:
            self.journal_dir = None
        elif separate_process and not (
            url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        ):
            address = url.render_as_string(hide_password=False)
            self._process = WriterProcess(address, self.rollup_delay)

    async def start(self) -> None:
        """Start the writer (and wait until it is ready to write)."""
        loop = asyncio.get_running_loop()
        if self.bus is not None:
            await self.bus.start()
            self._task = loop.create_task(self._run(), name="batch-writer")
            return
        if self.journal_dir is not None:
            self._journal = await loop.run_in_executor(
                self._journal_executor, Journal, self.journal_dir
            )
        if self._process is not None:
            await loop.run_in_executor(self._executor, self._process.start)
        else:
            self.pipeline = self._new_pipeline()
            await loop.run_in_executor(self._executor, self.pipeline.directory.refresh)
        if self._journal is not None:
            self._last_journaled = self._journal.next_sequence - 1
            for record in self._journal.pending():
                self._enqueue(self._replayed(record))
                self.stats.replayed += 1
            if self.stats.replayed:
                log_event(
                    logger,
                    "journal_replay",
                    batches=self.stats.replayed,
                    rows=self._backlog_rows,
                )
            self._drainer = loop.create_task(self._drain(), name="batch-writer-drain")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-writer")

    def submit(
        self, rows: list[Observation], rejected: list[Rejected] | None = None
    ) -> asyncio.Future[None]:
        """Queue rows (and rejected input); the future resolves once they are durable
        (journaled, or committed).

        Every submission to one batch gets the same future (they all succeed or fail
        together): a future per upload cost the gateway memory for as long as it
        remembered the upload, to answer a retransmission. Wait for it through
        :func:`asyncio.shield`: cancelling it would fail the whole batch's answers."""
        if self._closing:
            raise RuntimeError("the batch writer is closing")
        batch = self._batch
        if not batch.futures:
            batch.first_submit = time.monotonic()
            batch.futures.append(asyncio.get_running_loop().create_future())
        future = batch.futures[0]  # a batch being gathered has one
        batch.rows.extend(rows)
        if rejected:
            batch.rejected.extend(rejected)
        self.stats.rows_submitted += len(rows)
        self._wake.set()
        if len(batch.rows) >= self.max_rows:
            self._full.set()
        return future

    @property
    def backlog_rows(self) -> int:
        """Rows answered (journaled) but not yet known to be in the store."""
        return self._backlog_rows

    def run_in_writer(self, function: Callable[[], object]) -> asyncio.Future[object]:
        """Run other database work (the gateway's registry reloads, last-seen times) on
        the writer thread, which keeps SQLite to one writer in this process. With a
        writer process the thread only sends batches, and the work gets a thread of its
        own: on the send thread, no batch could leave while it ran."""
        executor = self._side_executor if self._process is not None else self._executor
        return asyncio.get_running_loop().run_in_executor(executor, function)

    def _new_pipeline(self) -> Pipeline:
        return Pipeline(self.engine, rollup_delay=self.rollup_delay)

    async def _run(self) -> None:
        # In a child process the writer flushes deferred rollups itself; in a thread
        # this loop wakes up for them.
        wake = self._rollup_wake() if self._journal is None and self.bus is None else None
        while True:
            if wake is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wake)
                await self._flush_rollups(due_only=True)
                if not self._wake.is_set():
                    continue
            # Wait at most max_delay from the batch's first submission: a batch that
            # filled up while the previous one was being written goes at once.
            remaining = self._batch.first_submit + self.max_delay - time.monotonic()
            if not self._closing and remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), remaining)
            batch, self._batch = self._batch, _Batch()
            self._wake.clear()
            self._full.clear()
            if batch.futures:
                if self.bus is not None:  # answered once on the bus
                    await self.bus.dispatch(batch.rows, batch.rejected, batch.futures)
                elif self._journal is not None:
                    # Journaled here, written to the store by _drain.
                    await self._journal_batch(batch)
                else:
                    await self._dispatch(batch)
            if self._closing and not self._batch.futures:
                if self._drainer is not None:
                    await self._stop_draining()
                if self._writes:
                    await asyncio.gather(*self._writes)
                await self._flush_rollups(due_only=False)
                return

    async def _dispatch(self, batch: _Batch) -> None:
        """Write one batch: at once in a thread, or pipelined to the child process."""
        if self._process is None:
            await self._write(batch)
            return
        # Pipelined: the next batch travels while the child writes this one.
        await self._in_flight.acquire()
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._writes.add(task)
        task.add_done_callback(self._write_done)

    # --- the journal --------------------------------------------------------------

    async def _journal_batch(self, batch: _Batch) -> None:
        """Append a batch to the journal and flush it; answer its senders now unless the
        store is ``max_backlog_rows`` behind; queue it for the store."""
        loop = asyncio.get_running_loop()
        batch.row_count = len(batch.rows)
        try:
            payload, sequence = await loop.run_in_executor(
                self._journal_executor, self._append, batch.rows, batch.rejected
            )
        except Exception as error:  # a full or failing disk: answer after the commit
            log_event(logger, "journal_failed", logging.ERROR, error=repr(error))
            await self._dispatch(batch)
            return
        batch.payloads, batch.sequences = [payload], [sequence]
        self.stats.journaled += 1
        self._last_journaled = sequence
        if self._process is not None:
            batch.rows = []  # the child gets the payload
        if self._backlog_rows == 0 or self._backlog_rows + batch.row_count <= self.max_backlog_rows:
            self._answering_late = False
            self.stats.answered_early += 1
            for future in batch.futures:
                if not future.done():
                    future.set_result(None)
            batch.futures = []
        elif not self._answering_late:
            self._answering_late = True
            log_event(
                logger,
                "journal_backlog_full",
                logging.WARNING,
                rows=self._backlog_rows,
                limit=self.max_backlog_rows,
            )
        self._enqueue(batch)

    def _append(self, rows: list[Observation], rejected: list[Rejected]) -> tuple[bytes, int]:
        """(Journal thread.) Pickle a batch as the child process receives it, append it
        and flush; returns the payload and its sequence number."""
        assert self._journal is not None
        payload = pickle.dumps((batch_columns(rows), rejected), protocol=pickle.HIGHEST_PROTOCOL)
        sequence = self._journal.append(payload)
        started = time.perf_counter()
        self._journal.sync()
        took = time.perf_counter() - started
        if took > self.stats.slowest_flush_seconds:
            self.stats.slowest_flush_seconds = took
        if took >= SLOW_FLUSH_SECONDS:  # every answer waited for it: the disk is too busy
            log_event(logger, "journal_slow_flush", logging.WARNING, seconds=round(took, 3))
        return payload, sequence

    def _replayed(self, record: Record) -> _Batch:
        """A batch an earlier process journaled and did not see committed."""
        batch = _Batch(
            sequences=[record.sequence],
            payloads=[record.payload],
            row_count=payload_counts(record.payload)[0],
        )
        if self._process is None:  # a writer thread takes rows, not payloads
            batch.rows, batch.rejected = unpack_batch([record.payload])
        return batch

    def _enqueue(self, batch: _Batch) -> None:
        self._outstanding.update(batch.sequences)
        self._backlog_rows += batch.row_count
        self._backlog.append(batch)
        self._backlog_ready.set()

    async def _drain(self) -> None:
        """Hand journaled batches to the store, in order (and, with a writer thread,
        recompute due rollups while none is waiting)."""
        wake = self._rollup_wake()
        while True:
            while not self._backlog:
                if self._backlog_closed or self._abandon:
                    return
                self._backlog_ready.clear()
                if wake is None:
                    await self._backlog_ready.wait()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._backlog_ready.wait(), wake)
                await self._flush_rollups(due_only=True)
            if self._abandon:
                return
            if self._process is not None:
                await self._in_flight.acquire()  # meanwhile more batches queue up
                task = asyncio.get_running_loop().create_task(self._write(self._take_group()))
                self._writes.add(task)
                task.add_done_callback(self._write_done)
            else:
                await self._write(self._take_group())

    def _take_group(self) -> _Batch:
        """The queued batches, oldest first, up to ``store_batch_rows`` rows, as one
        batch: under load the store then gets large batches (each has a fixed cost),
        however small the journaled ones."""
        first = self._backlog.popleft()
        limit = self.store_batch_rows
        if not self._backlog or first.row_count >= limit:
            return first
        group = _Batch()
        group.absorb(first)
        while self._backlog and group.row_count + self._backlog[0].row_count <= limit:
            group.absorb(self._backlog.popleft())
        return group

    async def _stop_draining(self) -> None:
        """At shutdown: give the store ``drain_timeout`` seconds to take the backlog, then
        leave the rest in the journal for the next start (its unanswered senders are
        told the batch was not stored, and send again)."""
        assert self._drainer is not None
        self._backlog_closed = True
        self._backlog_ready.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout
        while True:
            waiting = [task for task in (self._drainer, *self._writes) if not task.done()]
            if not waiting:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        self._abandon = True
        log_event(
            logger,
            "journal_left_for_next_start",
            logging.WARNING,
            batches=len(self._outstanding),
            rows=self._backlog_rows,
        )
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        while self._backlog:
            _fail_unanswered(self._backlog.popleft())

    def _committed(self, batch: _Batch) -> None:
        """Journaled batches are in the store: move the journal's committed mark to just
        below the oldest batch still outstanding."""
        if not self._outstanding.issuperset(batch.sequences):
            return
        self._outstanding.difference_update(batch.sequences)
        self._backlog_rows -= batch.row_count
        mark = min(self._outstanding) - 1 if self._outstanding else self._last_journaled
        journal = self._journal
        assert journal is not None
        done = asyncio.get_running_loop().run_in_executor(
            self._journal_executor, journal.mark_committed, mark
        )
        done.add_done_callback(_log_failure)

    def _rollup_wake(self) -> float | None:
        """Seconds between looks at the deferred rollups, when this process recomputes
        them (a writer thread; a child process flushes its own)."""
        return (
            min(self.rollup_delay, 1.0) if self._process is None and self.rollup_delay > 0 else None
        )

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        self._in_flight.release()

    async def _flush_rollups(self, *, due_only: bool) -> None:
        pipeline = self.pipeline
        if self._process is not None or pipeline is None or pipeline.rollup_delay <= 0:
            return
        if due_only and not pipeline.rollups_due():
            return

        def flush() -> None:
            if due_only:  # in chunks, yielding to a batch that is being gathered
                pipeline.flush_rollups_between(
                    lambda: bool(self._batch.futures) or bool(self._backlog)
                )
            else:
                pipeline.flush_all_rollups()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, flush)
        except Exception as error:  # the hours stay queued; the next flush tries again
            log_event(logger, "rollup_flush_failed", logging.ERROR, error=repr(error))

    async def _write(self, batch: _Batch) -> None:
        """Write a batch, retrying with backoff. An unjournaled batch fails its futures
        after ``retries`` retries; a journaled one is retried until the store takes it
        (its senders may have been answered), or until shutdown gives up on it."""
        try:
            await self._write_until_stored(batch)
        except asyncio.CancelledError:  # shutdown gave up on it: it stays in the journal
            _fail_unanswered(batch)
            raise

    async def _write_until_stored(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        for attempt in itertools.count():
            if self._abandon or (not batch.sequences and attempt > self.retries):
                break
            started = time.perf_counter()
            try:
                if self._process is not None:
                    # Sent from the one worker thread, so batches keep their order.
                    sent = await loop.run_in_executor(self._executor, self._send, batch)
                    result = await asyncio.wrap_future(sent)
                else:
                    result = await loop.run_in_executor(self._executor, self._write_sync, batch)
            except Exception as exc:  # a database error: retry, then fail the futures
                error = exc
                self.stats.failures += 1
                log_event(logger, "write_failed", logging.ERROR, attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(MAX_RETRY_DELAY, 0.5 * 2 ** min(attempt, 10)))
                continue
            self.stats.write_seconds += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.rows_written += result.written
            self.stats.rows_unchanged += result.unchanged
            self.stats.rejected += result.rejected  # the pipeline counts the door's too
            if batch.sequences:
                self._committed(batch)
            for future in batch.futures:
                if not future.done():
                    future.set_result(None)
            return
        for future in batch.futures:
            if not future.done():
                future.set_exception(RuntimeError(f"batch not stored: {error!r}"))

    def _send(self, batch: _Batch) -> concurrent.futures.Future[WriteResult]:
        assert self._process is not None
        if batch.payloads:
            return self._process.send_payloads(batch.payloads)
        return self._process.send(batch.rows, batch.rejected)

    def _write_sync(self, batch: _Batch) -> WriteResult:
        if self.pipeline is None:
            self.pipeline = self._new_pipeline()
        return self.pipeline.process(batch.rows, batch.rejected).as_write_result()

    async def close(self) -> None:
        """Write everything submitted so far, then stop."""
        self._closing = True
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task
        loop = asyncio.get_running_loop()
        if self.bus is not None:
            await self.bus.close()
        if self._process is not None:
            await loop.run_in_executor(self._executor, self._process.close)
        if self._journal is not None:
            await loop.run_in_executor(self._journal_executor, self._journal.close)
        self._executor.shutdown(wait=True)
        self._side_executor.shutdown(wait=True)
        self._journal_executor.shutdown(wait=True)


def _fail_unanswered(batch: _Batch) -> None:
    for future in batch.futures:
        if not future.done():
            future.set_exception(RuntimeError("not stored before shutdown; kept in the journal"))


def _log_failure(done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log_event(logger, "journal_mark_failed", logging.ERROR, error=repr(done.exception()))
