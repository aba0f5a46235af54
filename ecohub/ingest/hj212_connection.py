"""One data logger's TCP connection to the HJ 212 gateway (:mod:`.hj212_gateway`).

Received bytes are framed and handled at once (an ``asyncio.Protocol``, not a task and a
``StreamReader`` per connection). While the uploads of one read are being committed,
what arrives is held, and handled after their answers, so a logger's packets are
answered in order; the transport stops reading only past :data:`HELD_BYTES`, or while
the logger does not read its answers. A frame may also ask the connection to wait
before going on (a sender being slowed after wrong passwords), or to handle it again
once the point directory is current (an MN not yet known).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ecohub.ingest.hj212_guard import Burst, address_of
from ecohub.protocol.hj212 import Frame, FrameError, Framer, Packet
from ecohub.protocol.hj212.reassembly import Reassembler

# Bytes a connection holds while its previous uploads commit before it stops reading.
HELD_BYTES = 1 << 16


@dataclass(slots=True)
class Outcome:
    """What one frame led to: values to commit first, and an answer to send after; or a
    pause (``wait``) before the connection's next frame, or before this one is handled
    ``again`` (an unknown MN, once the point directory is current)."""

    future: asyncio.Future[None] | None = None
    answers: list[bytes] = field(default_factory=list)
    wait: asyncio.Future[None] | None = None
    again: bool = False


class Gateway(Protocol):
    """What a connection asks of its gateway."""

    split_timeout: float

    def admit(self, connection: LoggerConnection) -> bool: ...

    def forget(self, connection: LoggerConnection) -> None: ...

    def handle(
        self, result: Frame | FrameError, connection: LoggerConnection, lookup: bool = True
    ) -> Outcome: ...

    def reject(self, connection: LoggerConnection, code: str, reason: str, raw: bytes) -> None: ...

    def reject_parts(self, parts: list[Packet], connection: LoggerConnection) -> None: ...

    def end_burst(self, connection: LoggerConnection) -> None: ...

    def answered(self, count: int) -> None: ...

    def log(self, event: str, level: int = ..., **fields: Any) -> None: ...


class LoggerConnection(asyncio.Protocol):
    """One data logger's TCP connection to the gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.BaseTransport | None = None
        self.peer = "?"
        self.address = "?"  # the sender's address, without the port
        self.framer = Framer()
        self.reassembler = Reassembler(gateway.split_timeout)
        self.mns: set[str] = set()
        self.opened = self.heard = time.monotonic()  # heard: last data, for the idle sweep
        self.answering = False  # uploads of the last read are being committed
        self.admitted = False  # counted in the gateway's connections (until forgotten)
        self.ended: str | None = None  # why the gateway closed it (junk, passwords…)
        self.auth_failures = 0
        self.junk = 0  # rejected bytes since the last accepted packet
        self.burst: Burst | None = None  # the rejections of one reason running now
        self._held = bytearray()  # bytes received meanwhile
        self._paused = False
        self._waiting: asyncio.Future[None] | None = None  # a pause before the next frame
        self._lost = False  # the connection ended during that pause
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        self.address = address_of(self.peer) if peername else "?"
        if not self.gateway.admit(self):
            self.ended = "refused"
            self.abort()

    def data_received(self, data: bytes) -> None:
        if self.ended is not None:
            return  # closing: what it sends now is not read
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
        self._process(self.framer.feed(data))

    def _process(self, results: Sequence[Frame | FrameError], again: bool = False) -> None:
        gateway = self.gateway
        outcomes = []
        for index, result in enumerate(results):
            if self.ended is not None:
                break
            outcome = gateway.handle(result, self, lookup=not (again and index == 0))
            outcomes.append(outcome)
            if outcome.wait is not None:
                rest = results[index:] if outcome.again else results[index + 1 :]
                self._wait(outcomes, outcome.wait, rest, outcome.again)
                return
        for parts in self.reassembler.expire():
            gateway.reject_parts(parts, self)
        # The uploads of one read are mostly in one batch, which has one future.
        futures = {o.future for o in outcomes if o.future is not None}
        if not futures:
            self._send_answers(outcomes)
            return
        self.answering = True
        waiting = futures.pop() if len(futures) == 1 else asyncio.gather(*futures)
        waiting.add_done_callback(lambda done: self._committed(done, outcomes))

    def _wait(
        self,
        outcomes: list[Outcome],
        wait: asyncio.Future[None],
        rest: Sequence[Frame | FrameError],
        again: bool,
    ) -> None:
        """Answer the frames handled so far once committed, then, once ``wait`` is
        over, go on with ``rest`` (reading paused meanwhile)."""
        self.answering = True
        self._waiting = wait
        if not self._paused and not self.is_closing():
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        futures = [o.future for o in outcomes if o.future is not None]
        committed = asyncio.gather(*futures, return_exceptions=True) if futures else None

        def go_on(_: object) -> None:
            self._waiting = None
            if committed is not None and not committed.cancelled():
                errors = [r for r in committed.result() if isinstance(r, BaseException)]
                self._finish(errors[0] if errors else None, outcomes, resume=False)
            else:
                self._send_answers(outcomes)
            self.answering = False
            if self.ended is None:  # also when the logger hung up meanwhile: stored
                self._process(rest, again)
            if self._lost and self._waiting is None:
                self._gone()
            else:
                self._after_answers()

        both: list[asyncio.Future[Any]] = [wait, *([committed] if committed is not None else [])]
        asyncio.gather(*both, return_exceptions=True).add_done_callback(go_on)

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.admitted:
            self.gateway.log("connection_error", peer=self.peer, error=repr(exc))
        self._lost = True
        if self._waiting is None:
            self._gone()
        # else: once the pause is over, its frames are handled, then this

    def _gone(self) -> None:
        gateway = self.gateway
        if self.ended is None:
            if self._held:  # sent before the logger hung up: stored, though not answered
                held, self._held = bytes(self._held), bytearray()
                self._handle_bytes(held)
            for error in self.framer.flush():
                gateway.reject(self, error.kind, error.reason, error.raw)
            for parts in self.reassembler.expire(now=float("inf")):
                gateway.reject_parts(parts, self)
        gateway.end_burst(self)
        gateway.forget(self)
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

    def accepted(self) -> None:
        """A packet of a registered point, its password right: the run of rejected
        input (if any) is over."""
        self.junk = 0
        if self.burst is not None:
            self.gateway.end_burst(self)

    def close_for(self, reason: str, **fields: Any) -> None:
        """Close the connection because of what it sent (logged once)."""
        if self.ended is None:
            self.ended = reason
            self.gateway.log("connection_closed", 30, peer=self.peer, reason=reason, **fields)
            self._held.clear()
            self.close()

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
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)  # no pause for a connection being cut
        if self.transport is not None:
            self.transport.abort()  # type: ignore[attr-defined]

    def _committed(self, done: asyncio.Future[Any], outcomes: list[Outcome]) -> None:
        if done.cancelled():
            error: BaseException | None = asyncio.CancelledError()
        else:
            error = done.exception()
        self._finish(error, outcomes)

    def _finish(
        self, error: BaseException | None, outcomes: list[Outcome], resume: bool = True
    ) -> None:
        if error is not None:
            self.gateway.log("not_stored", 40, peer=self.peer, error=repr(error))
            # Answer nothing for this read: the logger will send it again.
        else:
            self._send_answers(outcomes)
        if resume:
            self.answering = False
            self._after_answers()

    def _after_answers(self) -> None:
        if self.answering:
            return
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

    def _send_answers(self, outcomes: list[Outcome]) -> None:
        replies = [answer for o in outcomes for answer in o.answers]
        if replies:
            self.write(b"".join(replies))
            self.gateway.answered(len(replies))
