"""Deferred rollups recomputed in their own process, beside the writer (PostgreSQL).

A long-running writer (see :mod:`ecohub.ingest.pipeline`) only queues the hours a batch
touched. With a PostgreSQL store this child process recomputes the queue every
``rollup_delay`` seconds, in chunks of :data:`~ecohub.ingest.pipeline.FLUSH_CHUNK_HOURS`
hours, so the writer process spends its core on raw values and loggers' answers never
wait behind a rollup flush. It reads the queue without locking it and removes what it
recomputed afterwards in a short transaction (``alongside_writer`` in
:meth:`~ecohub.ingest.pipeline.Pipeline.flush_rollups`), so the writer never waits for
its locks. When the rollups fall behind, the queue holds each touched hour once however
many values arrive meanwhile, so each flush covers more values per hour and catches up;
raw values are never held back. At close it recomputes everything still queued.

SQLite has one write lock per database: a second writing process would only make the
two wait for each other, so there the writer process recomputes between its batches.
"""

from __future__ import annotations

import contextlib
import logging
from multiprocessing.connection import Connection
from typing import Any

from ecohub.ingest.events import log_event
from ecohub.ingest.writer_process import start_child, stop_child

logger = logging.getLogger("ecohub.ingest")


def _serve(connection: Connection, url: str, rollup_delay: float) -> None:
    from ecohub.ingest.pipeline import Pipeline
    from ecohub.store.db import make_engine

    engine = make_engine(url)
    pipeline = Pipeline(engine, rollup_delay=rollup_delay)
    pipeline.directory.refresh()
    connection.send(("ready", None))
    try:
        stop = False
        while not stop:
            # Hours left by an earlier run (a crash) are due at once; then once per delay.
            stop = connection.poll(0 if pipeline.rollups_due() else rollup_delay)
            try:
                if stop:  # everything, the writer having finished
                    pipeline.flush_rollups(alongside_writer=True)
                else:
                    pipeline.flush_rollups_between(
                        lambda: connection.poll(0), alongside_writer=True
                    )
            except Exception as error:  # the hours stay queued; the next flush tries again
                log_event(logger, "rollup_flush_failed", logging.ERROR, error=repr(error))
                if stop:
                    with contextlib.suppress(OSError):
                        connection.send(("error", repr(error)))
                    return
        with contextlib.suppress(OSError):  # the parent may be gone
            connection.send(("done", None))
    finally:
        engine.dispose()


class RollupProcess:
    """A child process that recomputes the deferred rollups of the store at ``url``."""

    def __init__(self, url: str, rollup_delay: float) -> None:
        if rollup_delay <= 0:
            raise ValueError("a rollup process needs a rollup delay above 0")
        self.url = url
        self.rollup_delay = rollup_delay
        self._connection: Connection | None = None
        self._process: Any = None
        self.restarts = 0

    def start(self) -> None:
        self._process, self._connection = start_child(
            _serve, (self.url, self.rollup_delay), "ecohub-rollups"
        )

    def ensure_running(self) -> None:
        """Start the process again if it died (the queue it left is kept in the store)."""
        if self._process is not None and not self._process.is_alive():
            self.restarts += 1
            log_event(logger, "rollup_process_restarted", logging.ERROR, restarts=self.restarts)
            self._stop(timeout=1.0)
            self.start()

    def close(self, timeout: float = 120.0) -> None:
        """Recompute everything still queued, then stop. Call after the writer closed."""
        if self._connection is not None:
            with contextlib.suppress(OSError, EOFError):
                self._connection.send(None)
                if self._connection.poll(timeout):
                    status, payload = self._connection.recv()
                    if status != "done":
                        log_event(logger, "rollup_final_flush_failed", logging.ERROR, error=payload)
        self._stop(timeout=5.0)

    def _stop(self, timeout: float) -> None:
        stop_child(self._process, self._connection, timeout)
        self._process = self._connection = None
