"""The HJ 212 gateway: an asyncio TCP server for data loggers (数采仪).

Each connection has its own framer; each packet is checked (frame, CRC, fields), its
sender authenticated by MN and PW against the registry's monitoring points, its values
written through the batch writer, and, when Flag asks for it, answered with 9014 — once
the values are durable (committed, or with a journal journaled on disk), so nothing
acknowledged is ever lost. Retransmissions (same
MN, CN and DataTime) are answered again but not written again. Everything rejected goes
to the quarantine with the raw bytes, the peer address and the reason; a bad packet or a
bad client never affects another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ecohub.db.quarantine import Rejected, raw_text
from ecohub.ingest.batch_writer import MAX_BACKLOG_ROWS, BatchWriter
from ecohub.ingest.events import log_event
from ecohub.ingest.last_seen import LastSeen
from ecohub.protocol.hj212 import (
    Frame,
    FrameError,
    Framer,
    Packet,
    PacketError,
    parse_cp,
    parse_packet,
)
from ecohub.protocol.hj212.encode import data_answer
from ecohub.protocol.hj212.reassembly import Reassembler
from ecohub.protocol.hj212.values import DATA_COMMANDS, upload_values
from ecohub.registry.directory import PointDirectory, PointInfo
from ecohub.timeseries.observations import Observation

logger = logging.getLogger("ecohub.hj212")
# Commands that are themselves answers: HJ 212-2017 Table 5's interactive commands (交互命令)
# 9011 request answer, 9012 execution result, 9013 notice answer, 9014 data answer, and
# the 90xx answers vendors add (9021 in a logger simulator's log): never answered.
ANSWER_COMMAND_PREFIX = "90"
SOURCE = "hj212"
# Bytes a connection holds while its previous uploads commit before it stops reading.
HELD_BYTES = 1 << 16
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


@dataclass
class _Outcome:
    """What one frame led to: values to commit first, and an answer to send after."""

    future: asyncio.Future[None] | None = None
    answers: list[bytes] = field(default_factory=list)


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
    ) -> None:
        """``journal_dir``: answer uploads once journaled there, not once committed
        (see :mod:`ecohub.ingest.batch_writer`). ``max_delay``: seconds uploads are
        gathered into a batch (default: see :func:`_max_delay`)."""
        self.engine = engine
        self.idle_timeout = idle_timeout
        self.directory_refresh = directory_refresh
        self.points = PointDirectory(engine)
        self.writer = BatchWriter(
            engine,
            max_rows=max_rows,
            max_delay=max_delay if max_delay is not None else _max_delay(journal_dir),
            separate_process=separate_writer,
            journal_dir=journal_dir,
            max_backlog_rows=journal_backlog_rows,
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
        self._reload: asyncio.Future[object] | None = None
        self._closing = False

    # --- life cycle ----------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        """Load the registry, start writing and listening; returns the bound port."""
        await asyncio.to_thread(self.points.load)
        await self.writer.start()
        self._server = await asyncio.get_running_loop().create_server(
            lambda: LoggerConnection(self), host, port, backlog=4096
        )
        bound = self._server.sockets[0].getsockname()[1]
        self._housekeeping = asyncio.get_running_loop().create_task(self._housekeep())
        self._idle_closer = asyncio.get_running_loop().create_task(self._close_idle())
        log_event(logger, "gateway_started", host=host, port=bound, points=len(self.points))
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
        await self.writer.close()
        self.last_seen.flush()
        log_event(
            logger, "gateway_stopped", **self.stats.__dict__, writer=self.writer.stats.__dict__
        )

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(min(self.directory_refresh, 5.0))
            try:
                if time.monotonic() - self.points.loaded_at >= self.directory_refresh:
                    await self.writer.run_in_writer(self.points.load)
                if self.last_seen.dirty:
                    await self.writer.run_in_writer(self.last_seen.flush)
            except Exception as error:  # the database is away: try again next round
                log_event(logger, "housekeeping_failed", logging.ERROR, error=repr(error))

    # --- connections -------------------------------------------------------------

    async def _close_idle(self) -> None:
        """Close connections that have waited for data longer than ``idle_timeout``."""
        while True:
            await asyncio.sleep(min(5.0, self.idle_timeout / 3))
            now = time.monotonic()
            idle = [
                connection
                for connection in self._connections
                if not connection.answering and now - connection.heard >= self.idle_timeout
            ]
            for connection in idle:
                self.stats.idle_closed += 1
                log_event(logger, "idle_close", peer=connection.peer, seconds=self.idle_timeout)
                connection.close()

    # --- packets -----------------------------------------------------------------

    def _handle(
        self,
        result: Frame | FrameError,
        peer: str,
        connection: LoggerConnection,
        reassembler: Reassembler,
        mns: set[str],
    ) -> _Outcome:
        if isinstance(result, FrameError):
            if result.data is None or not self._tolerated(result):
                self._quarantine([self._frame_rejection(result, peer)])
                return _Outcome()
            data, raw = result.data, result.raw
        else:
            data, raw = result.data, result.raw
        try:
            packet = parse_packet(data, framed=True)
        except PacketError as error:
            self._quarantine([self._rejection(error.code, error.reason, raw, peer)])
            return _Outcome()
        point = self.points.get(packet.mn)
        if point is None:
            if packet.mn:  # an empty MN= is no point to look up again
                self._refresh_soon()
            self._quarantine(
                [
                    self._rejection(
                        "unknown_mn",
                        f"MN {packet.mn} is not a registered monitoring point",
                        raw,
                        peer,
                    )
                ]
            )
            return _Outcome()
        if point.password is not None and packet.pw != point.password:
            self._quarantine(
                [
                    self._rejection(
                        "bad_password", f"wrong password for MN {packet.mn}", raw, peer, point.code
                    )
                ]
            )
            return _Outcome()
        now = dt.datetime.now(dt.UTC)
        self._seen(point, connection, now)
        mns.add(packet.mn)
        whole = reassembler.add(packet)
        if whole is None:
            return _Outcome()  # answered when the set is complete and stored
        # Answers (9011, 9012, 9014…) are not answered, whatever their Flag asks.
        wanted = whole.answer_wanted and not whole.cn.startswith(ANSWER_COMMAND_PREFIX)
        answers = [data_answer(packet)] * (packet.pnum or 1) if wanted else []
        if whole.cn not in DATA_COMMANDS:
            log_event(logger, "command", peer=peer, mn=whole.mn, cn=whole.cn, cp=whole.cp)
            self.stats.packets_accepted += 1
            return _Outcome(answers=answers)
        return self._data_upload(whole, point, raw, peer, answers)

    def _data_upload(
        self, packet: Packet, point: PointInfo, raw: bytes, peer: str, answers: list[bytes]
    ) -> _Outcome:
        try:
            upload = upload_values(packet.cn, parse_cp(packet.cp))
        except PacketError as error:
            self._quarantine([self._rejection(error.code, error.reason, raw, peer, point.code)])
            return _Outcome()
        key = upload_key(point.id, packet.cn, upload.data_time)
        earlier = self._recent.get(key)
        if earlier is not None and not (earlier.done() and earlier.exception() is not None):
            self.stats.packets_duplicate += 1
            self._recent.move_to_end(key)
            return _Outcome(future=earlier, answers=answers)
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
        return _Outcome(future=future, answers=answers)

    def _refresh_soon(self) -> None:
        """An unknown MN may have just been registered: reload the directory (at most
        every five seconds) so that its next packet is accepted."""
        if self._reload is None and time.monotonic() - self.points.loaded_at > 5.0:
            self._reload = self.writer.run_in_writer(self.points.load)
            self._reload.add_done_callback(self._reload_done)

    def _reload_done(self, _future: asyncio.Future[object]) -> None:
        self._reload = None

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

    def _frame_rejection(self, error: FrameError, peer: str) -> Rejected:
        return self._rejection(error.kind, error.reason, error.raw, peer)

    def _reject_parts(self, parts: list[Packet], peer: str) -> None:
        numbers = sorted(p.pno or 0 for p in parts)
        self._quarantine(
            [
                self._rejection(
                    "incomplete_split",
                    f"split upload QN {parts[0].qn}: only parts {numbers} "
                    f"of {parts[0].pnum} arrived",
                    part.cp.encode(),
                    peer,
                )
                for part in parts
            ]
        )

    def _quarantine(self, rejected: list[Rejected]) -> None:
        self.stats.packets_rejected += len(rejected)
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
    record, which costs a write and a flush, while the batches waiting for the store are
    written together anyway. Every answer waits for its batch's delay."""
    return 0.02 if journal_dir is None else 0.005


class LoggerConnection(asyncio.Protocol):
    """One data logger's TCP connection to the gateway.

    Received bytes are framed and handled at once (an ``asyncio.Protocol``, not a task
    and a ``StreamReader`` per connection). While the uploads of one read are being
    committed, what arrives is held, and handled after their answers, so a logger's
    packets are answered in order; the transport stops reading only past
    :data:`HELD_BYTES`, or while the logger does not read its answers.
    """

    def __init__(self, gateway: HJ212Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.BaseTransport | None = None
        self.peer = "?"
        self.framer = Framer()
        self.reassembler = Reassembler(gateway.split_timeout)
        self.mns: set[str] = set()
        self.heard = time.monotonic()  # last data, for the idle sweep
        self.answering = False  # uploads of the last read are being committed
        self._held = bytearray()  # bytes received meanwhile
        self._paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        gateway = self.gateway
        gateway._connections.add(self)
        gateway.stats.connections_open += 1
        gateway.stats.connections_total += 1
        if gateway._closing:
            self.close()

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        if self.answering:
            # Handled once the previous uploads are answered, in order. Pausing the
            # transport for every upload cost two system calls a packet; it pauses only
            # when a logger sends this much ahead of its answers.
            self._held += data
            if len(self._held) > HELD_BYTES and not self._paused:
                self._paused = True
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self._handle_bytes(data)

    def _handle_bytes(self, data: bytes) -> None:
        gateway = self.gateway
        outcomes = [
            gateway._handle(result, self.peer, self, self.reassembler, self.mns)
            for result in self.framer.feed(data)
        ]
        for parts in self.reassembler.expire():
            gateway._reject_parts(parts, self.peer)
        # The uploads of one read are mostly in one batch, which has one future.
        futures = {o.future for o in outcomes if o.future is not None}
        if not futures:
            self._send_answers(outcomes)
            return
        self.answering = True
        waiting = futures.pop() if len(futures) == 1 else asyncio.gather(*futures)
        waiting.add_done_callback(lambda done: self._committed(done, outcomes))

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        gateway = self.gateway
        if exc is not None:
            log_event(logger, "connection_error", peer=self.peer, error=repr(exc))
        if self._held:  # sent before the logger hung up: stored, though not answered
            held, self._held = bytes(self._held), bytearray()
            self._handle_bytes(held)
        leftovers = self.framer.flush()
        if leftovers:
            gateway._quarantine([gateway._frame_rejection(error, self.peer) for error in leftovers])
        for parts in self.reassembler.expire(now=float("inf")):
            gateway._reject_parts(parts, self.peer)
        for mn in self.mns:
            state = gateway.online.get(mn)
            if state is not None and state.connection is self:
                state.connection = None
        gateway.stats.connections_open -= 1
        gateway._connections.discard(self)
        self.resume_writing()
        if not self.closed.done():
            self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()
        if not self._paused:  # nor read from a logger that does not read its answers
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
            self._resume_reading()
        self._writable = None

    # --- what the gateway uses ---------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.is_closing():
            self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self) -> None:
        if self._writable is not None:
            await self._writable

    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _committed(self, done: asyncio.Future[Any], outcomes: list[_Outcome]) -> None:
        self.answering = False
        if done.cancelled():
            error: BaseException | None = asyncio.CancelledError()
        else:
            error = done.exception()
        if error is not None:
            log_event(logger, "not_stored", logging.ERROR, peer=self.peer, error=repr(error))
            # Answer nothing for this read: the logger will send it again.
        else:
            self._send_answers(outcomes)
        if self._held and not self.is_closing():
            held, self._held = bytes(self._held), bytearray()
            self._handle_bytes(held)
        if self._writable is None:
            self._resume_reading()
        # else: a logger that does not read its answers is not read either, until it does

    def _resume_reading(self) -> None:
        if self._paused and not self.is_closing() and not self.answering:
            self._paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]

    def _send_answers(self, outcomes: list[_Outcome]) -> None:
        replies = [answer for o in outcomes for answer in o.answers]
        if replies:
            self.write(b"".join(replies))
            self.gateway.stats.answers_sent += len(replies)
