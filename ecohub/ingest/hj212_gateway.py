"""The HJ 212 gateway: an asyncio TCP server for data loggers (数采仪).

Each connection has its own framer; each packet is checked (frame, CRC, fields), its
sender authenticated by MN and PW against the registry's monitoring points, its values
written through the batch writer, and, when Flag asks for it, answered with 9014 — once
the values are durable (committed, or with a journal journaled on disk), so nothing
acknowledged is ever lost. Retransmissions (same
MN, CN and DataTime) are answered again but not written again. Everything rejected goes
to the quarantine with the raw bytes, the peer address and the reason; a bad packet or a
bad client never affects another connection. What hostile senders can take (connections,
quarantine, password guesses) is bounded by :mod:`ecohub.ingest.hj212_guard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import Engine

from ecohub.db.quarantine import Rejected, raw_text
from ecohub.ingest.batch_writer import MAX_BACKLOG_ROWS, BatchWriter
from ecohub.ingest.bus import BusPublisher
from ecohub.ingest.events import log_event
from ecohub.ingest.hj212_connection import LoggerConnection, Outcome
from ecohub.ingest.hj212_defence import Defence
from ecohub.ingest.hj212_guard import GuardSettings
from ecohub.ingest.last_seen import LastSeen
from ecohub.protocol.hj212 import (
    Frame,
    FrameError,
    Packet,
    PacketError,
    parse_cp,
    parse_packet,
)
from ecohub.protocol.hj212.encode import data_answer
from ecohub.protocol.hj212.values import DATA_COMMANDS, upload_values
from ecohub.registry.directory import PointDirectory, PointInfo
from ecohub.registry.service import registry_version
from ecohub.timeseries.observations import Observation

logger = logging.getLogger("ecohub.hj212")
# Commands that are themselves answers: HJ 212-2017 Table 5's interactive commands (交互命令)
# 9011 request answer, 9012 execution result, 9013 notice answer, 9014 data answer, and
# the 90xx answers vendors add (9021 in a logger simulator's log): never answered.
ANSWER_COMMAND_PREFIX = "90"
SOURCE = "hj212"
# Uploads remembered to answer retransmissions without writing them again: 1,000 loggers
# sending every minute for three hours, about 27 MB. Older ones reach the store again,
# whose keys make writing them a second time change nothing.
DEDUP_CAPACITY = 200_000


@dataclass
class GatewayStats:
    connections_open: int = 0
    connections_total: int = 0
    packets_accepted: int = 0
    packets_rejected: int = 0
    packets_duplicate: int = 0
    values_accepted: int = 0
    answers_sent: int = 0
    idle_closed: int = 0


@dataclass
class PointState:
    """Online state of a point: when it was last heard, and on which connection."""

    last_seen: dt.datetime
    connection: LoggerConnection | None = None


class HJ212Gateway:
    """The gateway server; ``start`` it inside a running event loop, ``close`` to stop."""

    def __init__(
        self,
        engine: Engine,
        *,
        idle_timeout: float = 600.0,
        directory_refresh: float = 30.0,
        dedup_capacity: int = DEDUP_CAPACITY,
        split_timeout: float = 120.0,
        max_rows: int = 20_000,
        max_delay: float | None = None,
        separate_writer: bool = True,
        journal_dir: str | os.PathLike[str] | None = None,
        journal_backlog_rows: int = MAX_BACKLOG_ROWS,
        guard: GuardSettings | None = None,
        raise_alarms: bool = True,
        bus: BusPublisher | None = None,
    ) -> None:
        """``journal_dir``: answer uploads once journaled there, not once committed
        (see :mod:`ecohub.ingest.batch_writer`). ``max_delay``: seconds uploads are
        gathered into a batch (default: see :func:`_max_delay`). ``guard``: the limits
        on connections, quarantine and passwords; ``raise_alarms``: open an alarm when
        guessing blocks an MN or address. ``bus``: answer once the batch is on the
        ingestion bus (:mod:`ecohub.ingest.bus`); writer processes store it."""
        self.engine = engine
        self.guard = guard or GuardSettings()
        self.idle_timeout = idle_timeout
        self.directory_refresh = directory_refresh
        self.points = PointDirectory(engine)
        self.writer = BatchWriter(
            engine,
            max_rows=max_rows,
            max_delay=max_delay if max_delay is not None else _max_delay(journal_dir or bus),
            separate_process=separate_writer,
            journal_dir=journal_dir,
            max_backlog_rows=journal_backlog_rows,
            bus=bus,
        )
        self.stats = GatewayStats()
        self.online: dict[str, PointState] = {}
        self.split_timeout = split_timeout
        # Recent uploads (see upload_key) → their batch's future, to answer a
        # retransmission once the original is durable, without writing it again.
        self._recent: OrderedDict[int, asyncio.Future[None]] = OrderedDict()
        self._dedup_capacity = dedup_capacity
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[LoggerConnection] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self._idle_closer: asyncio.Task[None] | None = None
        self.last_seen = LastSeen(engine)
        self.defence = Defence(
            self.guard,
            engine,
            self._quarantine,
            self.writer.run_in_writer,
            raise_alarms=raise_alarms,
        )
        self._registry_version = -1  # of the registry the directory was loaded from
        self._lookup: asyncio.Future[object] | None = None  # a directory check running
        self._lookup_next: asyncio.Future[None] | None = None  # and one asked for since
        self._closing = False

    # --- life cycle ----------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        """Load the registry, start writing and listening; returns the bound port."""
        await asyncio.to_thread(self._load_points)
        await self.writer.start()
        self._server = await asyncio.get_running_loop().create_server(
            lambda: LoggerConnection(self), host, port, backlog=4096
        )
        bound = self._server.sockets[0].getsockname()[1]
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())
        self._idle_closer = asyncio.get_running_loop().create_task(self._close_idle())
        log_event(
            logger,
            "gateway_started",
            host=host,
            port=bound,
            points=len(self.points),
            max_connections=self.guard.max_connections,
            per_address=self.guard.max_connections_per_address,
        )
        return int(bound)

    async def close(self) -> None:
        """Graceful stop: no new connections, flush every accepted value, then exit."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        # Uploads not yet committed are not answered: their loggers send them again.
        for connection in list(self._connections):
            connection.close()
        if self._connections:
            # A transport closes once its answers are sent; a logger that reads none is cut.
            waiting = [c.closed for c in list(self._connections)]
            await asyncio.wait(waiting, timeout=5.0)
            for connection in list(self._connections):
                connection.abort()
            await asyncio.gather(*waiting)
        for background in (self._housekeeping, self._idle_closer):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        self.defence.housekeep(ended_only=False)
        await self.writer.close()
        self.last_seen.flush()
        log_event(
            logger,
            "gateway_stopped",
            **self.stats.__dict__,
            defence=self.defence.stats.__dict__,
            writer=self.writer.stats.__dict__,
        )

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(min(self.directory_refresh, 5.0))
            try:
                if time.monotonic() - self.points.loaded_at >= self.directory_refresh:
                    await self.writer.run_in_writer(self._load_points)
                if self.last_seen.dirty:
                    await self.writer.run_in_writer(self.last_seen.flush)
                self.defence.housekeep()
            except Exception as error:  # the database is away: try again next round
                log_event(logger, "housekeeping_failed", logging.ERROR, error=repr(error))

    def _load_points(self) -> None:
        """Load the point directory, noting the registry version it reflects (read
        first: a change committed meanwhile makes the next check reload)."""
        version = registry_version(self.engine)
        self.points.load()
        self._registry_version = version

    # --- connections -------------------------------------------------------------

    async def _close_idle(self) -> None:
        """Close connections that have waited for data longer than ``idle_timeout``, and
        those without a packet of a registered point after the first-packet timeout."""
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout / 3, self.guard.first_packet_timeout))
            now = time.monotonic()
            for connection in self.defence.overdue(now):
                connection.close_for("no_first_packet", seconds=self.guard.first_packet_timeout)
            idle = [
                connection
                for connection in self._connections
                if not connection.answering and now - connection.heard >= self.idle_timeout
            ]
            for connection in idle:
                self.stats.idle_closed += 1
                log_event(logger, "idle_close", peer=connection.peer, seconds=self.idle_timeout)
                connection.close()

    def admit(self, connection: LoggerConnection) -> bool:
        """Whether a new connection may be held (see :meth:`Defence.admission`)."""
        if self._closing or self.defence.admission(connection, self._evict) is not None:
            return False
        connection.admitted = True
        self._connections.add(connection)
        self.stats.connections_open += 1
        self.stats.connections_total += 1
        return True

    def _evict(self, connection: LoggerConnection) -> None:
        self.forget(connection)
        connection.ended = "evicted"
        connection.abort()

    def forget(self, connection: LoggerConnection) -> None:
        """A connection is gone (or evicted): release its place."""
        if not connection.admitted:
            return
        connection.admitted = False
        self.defence.released(connection)
        for mn in connection.mns:
            state = self.online.get(mn)
            if state is not None and state.connection is connection:
                state.connection = None
        self.stats.connections_open -= 1
        self._connections.discard(connection)

    def answered(self, count: int) -> None:
        self.stats.answers_sent += count

    def log(self, event: str, level: int = logging.INFO, **fields: object) -> None:
        log_event(logger, event, level, **fields)

    # --- packets -----------------------------------------------------------------

    def handle(
        self, result: Frame | FrameError, connection: LoggerConnection, lookup: bool = True
    ) -> Outcome:
        peer = connection.peer
        if isinstance(result, FrameError):
            if result.data is None or not self._tolerated(result):
                self.reject(connection, result.kind, result.reason, result.raw)
                return Outcome()
            data, raw = result.data, result.raw
        else:
            data, raw = result.data, result.raw
        try:
            packet = parse_packet(data, framed=True)
        except PacketError as error:
            self.reject(connection, error.code, error.reason, raw)
            return Outcome()
        mns = connection.mns
        if packet.mn not in mns and self.defence.auth.blocked(connection.address, packet.mn):
            self.reject(connection, "auth_blocked", f"MN {packet.mn} or sender blocked", raw)
            connection.close_for("auth_blocked")
            return Outcome()
        point = self.points.get(packet.mn)
        if point is None:
            if packet.mn and lookup:  # an empty MN= is no point to look up again
                return Outcome(wait=self._check_registry(), again=True)
            reason = f"MN {packet.mn} is not a registered monitoring point"
            self.reject(connection, "unknown_mn", reason, raw)
            return self.defence.auth_failed(connection, None)
        if point.password is not None and packet.pw != point.password:
            reason = f"wrong password for MN {packet.mn}"
            self.defence.reject(connection, "bad_password", reason, raw, point.code)
            return self.defence.auth_failed(connection, packet.mn)
        now = dt.datetime.now(dt.UTC)
        self._seen(point, connection, now)
        if packet.mn not in mns:
            mns.add(packet.mn)
            self.defence.signed_in(connection, packet.mn)
        connection.accepted()
        whole = connection.reassembler.add(packet)
        if whole is None:
            return Outcome()  # answered when the set is complete and stored
        # Answers (9011, 9012, 9014…) are not answered, whatever their Flag asks.
        wanted = whole.answer_wanted and not whole.cn.startswith(ANSWER_COMMAND_PREFIX)
        answers = [data_answer(packet)] * (packet.pnum or 1) if wanted else []
        if whole.cn not in DATA_COMMANDS:
            log_event(logger, "command", peer=peer, mn=whole.mn, cn=whole.cn, cp=whole.cp)
            self.stats.packets_accepted += 1
            return Outcome(answers=answers)
        return self._data_upload(whole, point, raw, peer, answers)

    def _data_upload(
        self, packet: Packet, point: PointInfo, raw: bytes, peer: str, answers: list[bytes]
    ) -> Outcome:
        try:
            upload = upload_values(packet.cn, parse_cp(packet.cp))
        except PacketError as error:
            self._quarantine([self._rejection(error.code, error.reason, raw, peer, point.code)])
            return Outcome()
        key = upload_key(point.id, packet.cn, upload.data_time)
        earlier = self._recent.get(key)
        if earlier is not None and not (earlier.done() and earlier.exception() is not None):
            self.stats.packets_duplicate += 1
            self._recent.move_to_end(key)
            return Outcome(future=earlier, answers=answers)
        rows = [
            Observation(
                point.id,
                value.parameter_code,
                upload.interval,
                upload.data_time,
                value.value,
                value.data_flag,
                0,
                SOURCE,
            )
            for value in upload.values
        ]
        rejected = []
        if upload.problems:
            rejected.append(
                self._rejection(
                    "partly_unusable" if rows else "nothing_stored",
                    "; ".join(upload.problems),
                    raw,
                    peer,
                    point.code,
                )
            )
        elif not rows:
            rejected.append(
                self._rejection(
                    "nothing_stored", "the upload carries no value", raw, peer, point.code
                )
            )
        future = self.writer.submit(rows, rejected)
        self._recent[key] = future
        if len(self._recent) > self._dedup_capacity:
            self._recent.popitem(last=False)
        self.stats.packets_accepted += 1
        self.stats.values_accepted += len(rows)
        return Outcome(future=future, answers=answers)

    def _check_registry(self) -> asyncio.Future[None]:
        """An unknown MN may have just been registered: a future that resolves once the
        directory reflects every registry change committed before this call (the
        registry's version is read, and the points reloaded if it moved), so that the
        new logger's first packet is accepted. One check runs at a time; packets that
        arrive meanwhile share the next one."""
        wanted = self._lookup_next
        if wanted is None:
            wanted = self._lookup_next = asyncio.get_running_loop().create_future()
            if self._lookup is None:
                self._start_lookup()
        return wanted

    def _start_lookup(self) -> None:
        waiting, self._lookup_next = self._lookup_next, None
        assert waiting is not None

        def check() -> None:
            if registry_version(self.engine) != self._registry_version:
                self._load_points()

        def done(future: asyncio.Future[object]) -> None:
            self._lookup = None
            if not future.cancelled() and future.exception() is not None:
                log_event(logger, "lookup_failed", logging.ERROR, error=repr(future.exception()))
            waiting.set_result(None)
            if self._lookup_next is not None:
                self._start_lookup()

        self._lookup = self.writer.run_in_writer(check)
        self._lookup.add_done_callback(done)

    def _tolerated(self, error: FrameError) -> bool:
        """A whole packet that breaks only a rule a tolerant point may waive (a wrong CRC
        with the length right, a length field without its leading zeros: docs/hj212.md),
        from a point marked tolerant."""
        assert error.data is not None
        try:
            packet = parse_packet(error.data, framed=True)
        except PacketError:
            return False
        point = self.points.get(packet.mn)
        if point is not None and point.crc_tolerant:
            log_event(logger, "tolerated", mn=packet.mn, kind=error.kind)
            return True
        return False

    def _seen(self, point: PointInfo, connection: LoggerConnection, now: dt.datetime) -> None:
        mn = point.mn or ""  # a point found by its MN
        state = self.online.get(mn)
        if state is None:
            self.online[mn] = PointState(last_seen=now, connection=connection)
            log_event(logger, "online", mn=mn, point=point.code)
        else:
            state.last_seen = now
            state.connection = connection
        self.last_seen.dirty[point.id] = now

    def is_online(self, mn: str, now: dt.datetime | None = None) -> bool:
        """Connected, or heard from within three reporting intervals."""
        state = self.online.get(mn)
        point = self.points.get(mn)
        if state is None or point is None:
            return False
        if state.connection is not None and not state.connection.is_closing():
            return True
        moment = now or dt.datetime.now(dt.UTC)
        return (moment - state.last_seen).total_seconds() <= 3 * point.interval_seconds

    async def send_command(self, mn: str, packet: bytes) -> bool:
        """Send a command packet (built with :mod:`ecohub.protocol.hj212.encode`) to a
        connected logger; False if it is not connected."""
        state = self.online.get(mn)
        if state is None or state.connection is None or state.connection.is_closing():
            return False
        state.connection.write(packet)
        await state.connection.drain()
        log_event(logger, "command_sent", mn=mn, packet=packet.decode("ascii", "replace").strip())
        return True

    # --- rejections --------------------------------------------------------------

    def _rejection(
        self, code: str, reason: str, raw: bytes, peer: str, point_code: str | None = None
    ) -> Rejected:
        return Rejected(
            source=SOURCE,
            reason_code=code,
            reason=reason,
            raw=raw_text(raw),
            peer=peer,
            point_code=point_code,
        )

    def reject_parts(self, parts: list[Packet], connection: LoggerConnection) -> None:
        numbers = sorted(p.pno or 0 for p in parts)
        for part in parts:
            reason = (
                f"split upload QN {parts[0].qn}: only parts {numbers} of {parts[0].pnum} arrived"
            )
            self.reject(connection, "incomplete_split", reason, part.cp.encode())

    def reject(self, connection: LoggerConnection, code: str, reason: str, raw: bytes) -> None:
        self.defence.reject(connection, code, reason, raw)

    def end_burst(self, connection: LoggerConnection) -> None:
        self.defence.end_burst(connection)

    def _quarantine(self, rejected: list[Rejected]) -> None:
        for row in rejected:
            log_event(
                logger,
                "rejected",
                logging.WARNING,
                peer=row.peer,
                reason=row.reason_code,
                detail=row.reason,
            )
        self.writer.submit([], rejected)


_DATA_COMMAND_NUMBERS = {cn: number for number, cn in enumerate(sorted(DATA_COMMANDS))}


def upload_key(point_id: int, cn: str, data_time: dt.datetime) -> int:
    """An upload's identity for spotting retransmissions (point, command, DataTime), as
    one integer: the gateway remembers :data:`DEDUP_CAPACITY` of them, and as a tuple of
    MN, CN and time text each took about 420 bytes with its own future; now about 130
    with its place in the ordered dict.

    DataTime has whole seconds. Every ``datetime`` is within 2**37 seconds before and
    2**38 after 1970, so the seconds, shifted by 2**37, fit in the lowest 40 bits."""
    return (point_id * 16 + _DATA_COMMAND_NUMBERS[cn]) << 40 | (
        int(data_time.timestamp()) + (1 << 37)
    )


def _max_delay(journal_dir: object) -> float:
    """How long uploads are gathered into one batch: 20 ms when each batch is a store
    transaction (fewer, larger ones cost the store less); 5 ms when it is a journal
    record (or a message on the bus), which costs a write and a flush, while the batches
    waiting for the store are written together anyway. Every answer waits for its
    batch's delay."""
    return 0.02 if journal_dir is None else 0.005
