"""The batch writer: many producers, one writer, a future per submission.

Connections (HJ 212, MQTT, HTTP) submit observations and rejected input; the writer
gathers them for up to ``max_delay`` seconds or ``max_rows`` rows and passes each batch
through the ingestion pipeline (quality control, store, rollups) in one transaction, in
a worker thread or a child process, so the event loop never blocks on the database.
Hourly and daily rollups are deferred by ``rollup_delay`` seconds (setting
``ECOHUB_ROLLUP_DELAY``; see :mod:`ecohub.ingest.pipeline`) and recomputed by the
writer between batches, from its memory of the hours it writes
(:mod:`ecohub.store.open_hours`).
Each submission's future is resolved only after its rows are committed: a gateway
answers a logger after that, so nothing acknowledged is ever lost. A failed write is
retried with backoff before the futures fail (and the loggers, unanswered, send again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine

from ecohub.config import get_settings
from ecohub.ingest.events import log_event
from ecohub.ingest.pipeline import Pipeline
from ecohub.ingest.writer_process import WriterProcess
from ecohub.store.observations import Observation, WriteResult
from ecohub.store.quarantine import Rejected

logger = logging.getLogger("ecohub.ingest")
# Batches sent to a writer process before the first is answered: two keep the child
# busy while the next batch is gathered and pickled; more would only split the load
# into smaller batches.
MAX_BATCHES_IN_FLIGHT = 2


@dataclass
class WriterStats:
    batches: int = 0
    rows_submitted: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    rejected: int = 0
    failures: int = 0
    write_seconds: float = 0.0


@dataclass
class _Batch:
    rows: list[Observation] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    futures: list[asyncio.Future[None]] = field(default_factory=list)
    first_submit: float = 0.0


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
    ) -> None:
        self.engine = engine
        self.rollup_delay = get_settings().rollup_delay if rollup_delay is None else rollup_delay
        self.pipeline: Pipeline | None = None
        self.max_rows = max_rows
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
        url = engine.url
        if separate_process and not (
            url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        ):
            address = url.render_as_string(hide_password=False)
            self._process = WriterProcess(address, self.rollup_delay)

    async def start(self) -> None:
        """Start the writer (and wait until it is ready to write)."""
        loop = asyncio.get_running_loop()
        if self._process is not None:
            await loop.run_in_executor(self._executor, self._process.start)
        else:
            self.pipeline = self._new_pipeline()
            await loop.run_in_executor(self._executor, self.pipeline.directory.refresh)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batch-writer")

    def submit(
        self, rows: list[Observation], rejected: list[Rejected] | None = None
    ) -> asyncio.Future[None]:
        """Queue rows (and rejected input); the future resolves once they are committed."""
        if self._closing:
            raise RuntimeError("the batch writer is closing")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        batch = self._batch
        if not batch.futures:
            batch.first_submit = time.monotonic()
        batch.rows.extend(rows)
        if rejected:
            batch.rejected.extend(rejected)
        batch.futures.append(future)
        self.stats.rows_submitted += len(rows)
        self._wake.set()
        if len(batch.rows) >= self.max_rows:
            self._full.set()
        return future

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
        wake = (
            min(self.rollup_delay, 1.0) if self._process is None and self.rollup_delay > 0 else None
        )
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
                if self._process is None:
                    await self._write(batch)
                else:
                    # Pipelined: the next batch travels while the child writes this one.
                    await self._in_flight.acquire()
                    task = asyncio.get_running_loop().create_task(self._write(batch))
                    self._writes.add(task)
                    task.add_done_callback(self._write_done)
            if self._closing and not self._batch.futures:
                if self._writes:
                    await asyncio.gather(*self._writes)
                await self._flush_rollups(due_only=False)
                return

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
                pipeline.flush_rollups_between(lambda: bool(self._batch.futures))
            else:
                pipeline.flush_rollups()

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, flush)
        except Exception as error:  # the hours stay queued; the next flush tries again
            log_event(logger, "rollup_flush_failed", logging.ERROR, error=repr(error))

    async def _write(self, batch: _Batch) -> None:
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        for attempt in range(self.retries + 1):
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
                await asyncio.sleep(0.5 * 2**attempt)
                continue
            self.stats.write_seconds += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.rows_written += result.written
            self.stats.rows_unchanged += result.unchanged
            self.stats.rejected += len(batch.rejected) + result.rejected
            for future in batch.futures:
                if not future.done():
                    future.set_result(None)
            return
        for future in batch.futures:
            if not future.done():
                future.set_exception(RuntimeError(f"batch not stored: {error!r}"))

    def _send(self, batch: _Batch) -> concurrent.futures.Future[WriteResult]:
        assert self._process is not None
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
        if self._process is not None:
            await loop.run_in_executor(self._executor, self._process.close)
        self._executor.shutdown(wait=True)
        self._side_executor.shutdown(wait=True)
