"""Counters of rate limits shared by every process of an installation: how many requests
or failed sign-ins a caller made in a time window, kept in Redis when one is configured
and answers, else in the store's own database (rows of ``change_counters`` named
``limit:<expiry>:<hash of the key>``, removed once expired).

:class:`WindowLimiter` answers from memory on the request path and adds its counts to
the shared store about once a second from a thread of its own, reading back every
process's totals: one process holds a limit exactly; several hold it to within what they
admit between two synchronisations. :class:`EventCounter` counts rare events (failed
sign-ins) straight in the store.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from ecohub.db.counters import change_counters
from ecohub.db.engine import write_transaction

logger = logging.getLogger("ecohub.limits")
PREFIX = "limit:"


class CounterStore(Protocol):
    """Where window counters live; keys already name their window."""

    name: str

    def add(self, counts: Mapping[str, int], ttl: float) -> dict[str, int]:
        """Add ``counts`` to the keys' counters (kept ``ttl`` seconds); their new totals."""
        ...

    def get(self, keys: Iterable[str]) -> dict[str, int]:
        """The keys' totals (0 for a key never counted)."""
        ...


def _row_name(key: str, expires: float) -> str:
    """A counter's row: expiry first, so that expired rows are one range to delete."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{PREFIX}{int(expires):010d}:{digest}"


class DatabaseStore:
    """Window counters in ``change_counters`` of the store (no extra service to run)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = "database"
        self._purged = 0.0

    @staticmethod
    def _names(keys: Iterable[str], ttl: float = 3600.0) -> dict[str, str]:
        # Every process derives the same row from the same window key (its expiry
        # follows from the window's number, see _expiry_of).
        return {key: _row_name(key, _expiry_of(key, ttl)) for key in keys}

    def add(self, counts: Mapping[str, int], ttl: float) -> dict[str, int]:
        names = self._names(counts, ttl)
        totals: dict[str, int] = {}
        with write_transaction(self.engine, lock_timeout=2.0) as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            for key, count in counts.items():
                statement = (
                    dialect.insert(change_counters)
                    .values(name=names[key], version=count)
                    .on_conflict_do_update(
                        index_elements=["name"],
                        set_={"version": change_counters.c.version + count},
                    )
                    .returning(change_counters.c.version)
                )
                totals[key] = int(connection.execute(statement).scalar_one())
            now = time.time()
            if now - self._purged > 60:
                self._purged = now
                connection.execute(
                    delete(change_counters).where(
                        change_counters.c.name >= PREFIX,
                        change_counters.c.name < f"{PREFIX}{int(now):010d}",
                    )
                )
        return totals

    def get(self, keys: Iterable[str]) -> dict[str, int]:
        names = self._names(keys)
        if not names:
            return {}
        with self.engine.connect() as connection:
            found: dict[str, int] = dict(
                connection.execute(  # type: ignore[arg-type]
                    select(change_counters.c.name, change_counters.c.version).where(
                        change_counters.c.name.in_(list(names.values()))
                    )
                ).all()
            )
        return {key: int(found.get(name, 0)) for key, name in names.items()}


def _expiry_of(key: str, ttl: float) -> float:
    """``name@<window>/<seconds>`` expires one window after its end; other keys ``ttl``
    seconds from now."""
    _name, at, window = key.rpartition("@")
    number, slash, seconds = window.partition("/")
    if at and slash and number.isdigit() and seconds.isdigit():
        return (int(number) + 2) * int(seconds)
    return time.time() + ttl


class RedisStore:
    """Window counters in Redis (``INCRBY`` and ``EXPIRE``), over its plain protocol: no
    client library needed for three commands."""

    def __init__(self, url: str, namespace: str, timeout: float = 0.5) -> None:
        parts = urlsplit(url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self.database = int(parts.path.strip("/") or 0)
        self.password = parts.password
        self.timeout = timeout
        self.namespace = f"ecohub:{namespace}:"
        self.name = f"redis {parts.hostname or '127.0.0.1'}:{parts.port or 6379}"
        self._socket: socket.socket | None = None
        self._buffer = b""
        self._lock = threading.Lock()

    def ping(self) -> None:
        with self._lock:
            if self._call([[b"PING"]]) != [b"PONG"]:
                raise ConnectionError("Redis did not answer PING")

    def add(self, counts: Mapping[str, int], ttl: float) -> dict[str, int]:
        commands = []
        keys = list(counts)
        for key in keys:
            name = (self.namespace + key).encode("utf-8", "surrogatepass")
            commands.append([b"INCRBY", name, str(counts[key]).encode()])
            expires = max(1, int(_expiry_of(key, ttl) - time.time()))
            commands.append([b"EXPIRE", name, str(expires).encode()])
        with self._lock:
            answers = self._call(commands)
        return {key: int(answers[2 * index]) for index, key in enumerate(keys)}  # type: ignore[call-overload]

    def get(self, keys: Iterable[str]) -> dict[str, int]:
        keys = list(keys)
        if not keys:
            return {}
        names = [(self.namespace + key).encode("utf-8", "surrogatepass") for key in keys]
        with self._lock:
            (values,) = self._call([[b"MGET", *names]])
        assert isinstance(values, list)
        return {
            key: int(value) if value is not None else 0
            for key, value in zip(keys, values, strict=True)
        }

    # --- RESP -----------------------------------------------------------------------

    def _call(self, commands: list[list[bytes]]) -> list[object]:
        try:
            if self._socket is None:
                self._connect()
            assert self._socket is not None
            self._socket.sendall(b"".join(_encode(command) for command in commands))
            return [self._reply() for _ in commands]
        except (OSError, ValueError):
            self._close()
            raise

    def _connect(self) -> None:
        self._socket = socket.create_connection(self.address, timeout=self.timeout)
        self._buffer = b""
        setup = []
        if self.password:
            setup.append([b"AUTH", self.password.encode()])
        if self.database:
            setup.append([b"SELECT", str(self.database).encode()])
        if setup:
            self._socket.sendall(b"".join(_encode(command) for command in setup))
            for _ in setup:
                self._reply()

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            assert self._socket is not None
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    def _reply(self) -> object:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise ValueError(f"Redis: {rest.decode(errors='replace')}")
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self._buffer) < size + 2:
                assert self._socket is not None
                chunk = self._socket.recv(65536)
                if not chunk:
                    raise ConnectionError("Redis closed the connection")
                self._buffer += chunk
            value, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
            return value
        if kind == b"*":
            return [self._reply() for _ in range(int(rest))]
        raise ValueError(f"Redis: unexpected reply {line[:40]!r}")


def _encode(command: list[bytes]) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for part in command:
        parts.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(parts)


def open_store(engine: Engine, redis_url: str = "") -> CounterStore:
    """Redis at ``redis_url`` if it answers, else the database (logged either way)."""
    if redis_url:
        namespace = hashlib.sha256(
            engine.url.render_as_string(hide_password=True).encode()
        ).hexdigest()[:12]
        store = RedisStore(redis_url, namespace)
        try:
            store.ping()
        except (OSError, ValueError) as error:
            logger.warning(
                "limits_store store=database reason=%r",
                f"Redis at {redis_url} does not answer ({error}); counting in the database",
            )
        else:
            logger.info("limits_store store=%r", store.name)
            return store
    database = DatabaseStore(engine)
    logger.info("limits_store store=database")
    return database


class WindowLimiter:
    """At most ``limit`` hits per key in each ``window`` seconds (aligned to the clock,
    so that every process counts the same windows), across processes sharing ``store``."""

    def __init__(
        self,
        store: CounterStore,
        window: float = 60.0,
        sync_every: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.window = window
        self.sync_every = sync_every
        self.clock = clock
        self._known: dict[str, int] = {}  # totals read back from the store
        self._pending: defaultdict[str, int] = defaultdict(int)  # hits not yet added
        self._lock = threading.Lock()
        self._synced = clock()
        self._syncing = False
        self._warned = 0.0

    def hit(self, key: str, limit: int) -> float:
        """Count a hit of ``key``; 0 when it may go ahead, else the seconds until the
        window ends (an over-limit hit is not counted)."""
        now = self.clock()
        number = int(now // self.window)
        counted = f"{key}@{number}/{int(self.window)}"
        with self._lock:
            if self._known.get(counted, 0) + self._pending[counted] >= limit:
                return (number + 1) * self.window - now
            self._pending[counted] += 1
            if not self._syncing and now - self._synced >= self.sync_every:
                self._syncing = True
                threading.Thread(target=self.sync, name="limits-sync", daemon=True).start()
        return 0.0

    def sync(self) -> None:
        """Add the hits counted here since the last call to the store and read back the
        totals of every process."""
        with self._lock:
            pending = {key: count for key, count in self._pending.items() if count}
            self._pending.clear()
        try:
            totals = self.store.add(pending, 2 * self.window) if pending else {}
        except Exception as error:  # the store is away: keep counting here
            with self._lock:
                for key, count in pending.items():
                    self._pending[key] += count
                self._syncing = False
                self._synced = self.clock()
            if self.clock() - self._warned > 60:
                self._warned = self.clock()
                logger.warning("limits_sync_failed store=%s error=%r", self.store.name, error)
            return
        with self._lock:
            oldest = int(self.clock() // self.window) - 1
            self._known = {
                key: total
                for key, total in {**self._known, **totals}.items()
                if int(key.rpartition("@")[2].partition("/")[0]) >= oldest
            }
            self._syncing = False
            self._synced = self.clock()


class EventCounter:
    """Rare events (failed sign-ins) counted straight in the shared store, over the
    current and the previous ``window``: a lock lasts until the events of both age out."""

    def __init__(
        self, store: CounterStore, window: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.window = window
        self.clock = clock

    def _keys(self, key: str) -> tuple[str, str]:
        number = int(self.clock() // self.window)
        seconds = int(self.window)
        return f"{key}@{number}/{seconds}", f"{key}@{number - 1}/{seconds}"

    def counts(self, keys: Iterable[str]) -> dict[str, int]:
        """Events of each key in the current and previous window."""
        pairs = {key: self._keys(key) for key in keys}
        found = self.store.get([name for pair in pairs.values() for name in pair])
        return {key: found[now] + found[before] for key, (now, before) in pairs.items()}

    def record(self, keys: Iterable[str]) -> None:
        """Count one event of each key."""
        self.store.add({self._keys(key)[0]: 1 for key in keys}, 2 * self.window)
