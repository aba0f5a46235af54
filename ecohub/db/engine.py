"""Database engine: SQLite gets WAL mode, foreign keys and a busy timeout on every
connection so that a gateway and a CLI command can share the file; PostgreSQL is used
as it comes. Write transactions take their locks up front, and :func:`retry_busy` tries
a transaction again while the store is busy, with a clear error after the last attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 30.0
# PostgreSQL SQLSTATEs of a transaction that lost to another one and may simply be tried
# again: lock_not_available (lock_timeout), serialization_failure, deadlock_detected.
_PG_BUSY = frozenset({"55P03", "40001", "40P01"})


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    # Bulk writes touch many B-tree pages: a 16 MiB page cache instead of the 2 MiB
    # default. 64 MiB was no faster on the gateway benchmark (the operating system caches
    # the file too) and held 70-100 MB more in the writer process.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``, creating the SQLite file's folder if needed."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(
        f"unsupported database URL {parsed.render_as_string(hide_password=True)!r}: "
        "use sqlite:///path or postgresql+psycopg://user@host/db"
    )


@contextmanager
def write_transaction(engine: Engine, lock_timeout: float | None = None) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error.

    SQLite takes the write lock at BEGIN (``BEGIN IMMEDIATE``): a transaction that reads
    first and writes later could otherwise fail when another writer got in between. (A
    savepoint is no transaction there: pysqlite begins none before it, so the first
    ``SAVEPOINT`` opens one that its ``RELEASE`` commits; inside this transaction they
    nest as they should.) ``lock_timeout``: seconds to wait for a lock before failing
    with a busy error (SQLite's busy timeout, PostgreSQL's ``lock_timeout``; default:
    SQLite's 30 s, PostgreSQL waits).
    """
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite and lock_timeout is not None:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        try:
            if sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.begin()  # so that a Session bound to it joins, not owns, it
                if lock_timeout is not None:
                    timeout = int(lock_timeout * 1000)
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = {timeout}")
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()
        finally:
            if sqlite and lock_timeout is not None:
                connection.rollback()
                connection.exec_driver_sql(
                    f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}"
                )


class StoreBusy(RuntimeError):
    """The store stayed locked by other writers through every attempt."""


def is_busy(error: BaseException) -> bool:
    """A database error that says another transaction holds the lock (SQLite "database
    is locked" or "busy"; PostgreSQL lock timeout, serialization failure, deadlock)."""
    if not isinstance(error, DBAPIError):
        return False
    code = getattr(error.orig, "sqlstate", None)
    if code is not None:
        return code in _PG_BUSY
    message = str(error.orig).lower()
    return "database is locked" in message or "database is busy" in message


def retry_busy(
    work: Callable[[], T], *, attempts: int = 3, pause: float = 1.0, what: str = "the write"
) -> T:
    """Run ``work`` (one whole transaction) until it is not refused as busy, at most
    ``attempts`` times, pausing ``pause`` seconds (doubling) between; then raise
    :class:`StoreBusy` saying how long it tried. Other errors pass through at once."""
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as error:
            if not is_busy(error):
                raise
            if attempt == attempts:
                waited = time.monotonic() - started
                raise StoreBusy(
                    f"{what} was refused: the store stayed busy (locked by other writers) "
                    f"through {attempts} attempts over {waited:.1f} s ({error.orig})"
                ) from error
            time.sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
