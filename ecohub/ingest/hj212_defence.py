"""The HJ 212 gateway's bounds applied to its connections: which connection is held,
what a run of rejected input may store, and what wrong passwords lead to (the rules and
their bookkeeping are :mod:`ecohub.ingest.hj212_guard`; docs/security.md describes them
with their settings).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from ecohub.alarms.security import raise_password_guessing
from ecohub.db.quarantine import Rejected, raw_text
from ecohub.ingest.events import log_event
from ecohub.ingest.hj212_connection import LoggerConnection, Outcome
from ecohub.ingest.hj212_guard import (
    AuthThrottle,
    Block,
    Burst,
    ConnectionLimits,
    GuardSettings,
    SenderQuota,
    capped,
)

logger = logging.getLogger("ecohub.hj212")
SOURCE = "hj212"


@dataclass
class DefenceStats:
    connections_refused: int = 0
    connections_evicted: int = 0
    junk_closed: int = 0
    auth_closed: int = 0
    auth_blocks: int = 0
    quarantine_dropped: int = 0  # rejections counted over a sender's quota, not stored


class Defence:
    """Connection caps, bounded quarantine and password throttling for one gateway.

    ``quarantine`` stores rejected input (the gateway logs and submits it to its
    writer); ``run_in_writer`` runs database work off the event loop (alarms)."""

    def __init__(
        self,
        settings: GuardSettings,
        engine: Engine,
        quarantine: Callable[[list[Rejected]], None],
        run_in_writer: Callable[[Callable[[], object]], asyncio.Future[object]],
        *,
        raise_alarms: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.quarantine = quarantine
        self.run_in_writer = run_in_writer
        self.raise_alarms = raise_alarms
        self.limits = ConnectionLimits(
            settings.max_connections,
            settings.max_connections_per_address,
            lambda event, **fields: log_event(logger, event, logging.WARNING, **fields),
        )
        self.quota = SenderQuota(settings.quota_rows, settings.quota_bytes)
        self.auth = AuthThrottle(settings)
        self.stats = DefenceStats()
        # Connections that have not yet sent a packet of a registered point, oldest first.
        self.unauthenticated: dict[LoggerConnection, None] = {}

    # --- connections ------------------------------------------------------------------

    def admission(
        self, connection: LoggerConnection, evict: Callable[[LoggerConnection], None]
    ) -> str | None:
        """Why ``connection`` cannot be held (``blocked_address``, ``address_cap``,
        ``total_cap``), or None after counting it. At the total cap the oldest connection
        without a packet of a registered point is evicted (``evict``) to make room."""
        address = connection.address
        reason = "blocked_address" if self.auth.address_blocked(address) else None
        reason = reason or self.limits.over(address)
        if reason == "total_cap" and self.unauthenticated:
            oldest = next(iter(self.unauthenticated))
            self.stats.connections_evicted += 1
            log_event(
                logger,
                "connection_evicted",
                logging.WARNING,
                peer=oldest.peer,
                for_peer=connection.peer,
                cap=self.limits.max_total,
            )
            evict(oldest)
            reason = self.limits.over(address)
        if reason is not None:
            self.stats.connections_refused += 1
            self.limits.refuse(address, reason)
            return reason
        self.limits.opened(address)
        self.unauthenticated[connection] = None
        return None

    def released(self, connection: LoggerConnection) -> None:
        self.limits.closed(connection.address)
        self.unauthenticated.pop(connection, None)

    def signed_in(self, connection: LoggerConnection, mn: str) -> None:
        """The connection sent ``mn``'s right password (for the first time)."""
        self.auth.succeeded(connection.address, mn)
        self.unauthenticated.pop(connection, None)

    def overdue(self, now: float) -> list[LoggerConnection]:
        """Connections without a packet of a registered point for too long."""
        found = []
        for connection in self.unauthenticated:
            if now - connection.opened < self.settings.first_packet_timeout:
                break
            found.append(connection)
        for connection in found:
            del self.unauthenticated[connection]
        return found

    def housekeep(self, *, ended_only: bool = True) -> None:
        self.auth.prune()
        self.limits.flush_log()
        self.quota_summaries(ended_only=ended_only)

    # --- quarantine -------------------------------------------------------------------

    def reject(
        self,
        connection: LoggerConnection,
        code: str,
        reason: str,
        raw: bytes,
        point_code: str | None = None,
    ) -> None:
        """Quarantine a rejection on ``connection`` within its bounds: a run of
        rejections of one reason (a burst) keeps at most ``raw_bytes`` of raw input,
        counting the rest; past ``junk_close_bytes`` since its last accepted packet the
        connection is closed."""
        cap = self.settings.raw_bytes
        connection.junk += len(raw)
        burst = connection.burst
        if burst is not None and burst.kind == code:
            burst.add(raw, cap)
        else:
            self.end_burst(connection)
            # A sixteenth of the cap stays for the burst's closing row, so that it keeps
            # some of the later input too (and two bursts of one flood are told apart).
            kept, note = capped(raw, cap - cap // 16)
            connection.burst = Burst(code, len(kept))
            self._store(connection, _row(code, reason + note, kept, connection.peer, point_code))
        if connection.junk > self.settings.junk_close_bytes and not connection.is_closing():
            self.stats.junk_closed += 1
            connection.close_for("junk", bytes=connection.junk)

    def end_burst(self, connection: LoggerConnection) -> None:
        """The run of rejections on ``connection`` is over: store what its first row did
        not say (how many more, their bytes and SHA-256, what raw input fits the cap)."""
        burst, connection.burst = connection.burst, None
        if burst is None or burst.count == 1:
            return
        more = burst.count - 1
        row = _row(
            burst.kind,
            f"{more:,} more rejections ({burst.kind}) on this connection after the one "
            f"stored before: {burst.size:,} bytes, SHA-256 {burst.digest.hexdigest()}; "
            f"{len(burst.extra):,} of them kept",
            bytes(burst.extra),
            connection.peer,
            None,
        )
        self._store(connection, dataclasses.replace(row, times=more))

    def _store(self, connection: LoggerConnection, row: Rejected) -> None:
        if not self.quota.allow(connection.address, len(row.raw)):
            self.stats.quarantine_dropped += row.times
            return
        self.quarantine([row])

    def quota_summaries(self, *, ended_only: bool = True) -> None:
        """One row per sender address and hour for what its quota kept out."""
        rows = []
        settings = self.settings
        for address, start, count, size in self.quota.over_quota(ended_only=ended_only):
            since = dt.datetime.fromtimestamp(start, dt.UTC).isoformat()
            reason = (
                f"{count:,} rejections ({size:,} raw bytes) from {address} in the hour from "
                f"{since} were counted, not stored: over the sender's quarantine quota of "
                f"{settings.quota_rows:,} rows and {settings.quota_bytes:,} bytes an hour"
            )
            log_event(logger, "quarantine_quota", logging.WARNING, address=address, dropped=count)
            rows.append(Rejected(SOURCE, "over_quota", reason, "", peer=address, times=count))
        if rows:
            self.quarantine(rows)

    # --- passwords --------------------------------------------------------------------

    def auth_failed(self, connection: LoggerConnection, mn: str | None) -> Outcome:
        """A wrong password or an unknown MN: pause the connection, close it, or block
        the MN or address (logged, and an alarm raised), as the throttle says."""
        connection.auth_failures += 1
        verdict = self.auth.failed(connection.address, mn, connection.auth_failures)
        for block in verdict.blocks:
            self._blocked(block)
        if verdict.close:
            self.stats.auth_closed += 1
            connection.close_for("auth_failures", failures=connection.auth_failures)
            return Outcome()
        if verdict.delay > 0:
            loop = asyncio.get_running_loop()
            wait: asyncio.Future[None] = loop.create_future()
            loop.call_later(verdict.delay, _resolve, wait)
            return Outcome(wait=wait)
        return Outcome()

    def _blocked(self, block: Block) -> None:
        settings = self.settings
        self.stats.auth_blocks += 1
        log_event(
            logger,
            "auth_blocked",
            logging.WARNING,
            target=block.target,
            failures=block.failures,
            seconds=settings.auth_block_seconds,
            peers=",".join(block.peers[:10]),
        )
        if not self.raise_alarms:
            return

        def alarm() -> None:
            raise_password_guessing(
                self.engine,
                target=block.target,
                mn=block.mn,
                failures=block.failures,
                window_seconds=settings.auth_window,
                blocked_seconds=settings.auth_block_seconds,
                peers=block.peers,
            )

        self.run_in_writer(alarm).add_done_callback(_log_alarm_failure)


def _row(code: str, reason: str, raw: bytes, peer: str, point_code: str | None) -> Rejected:
    return Rejected(
        source=SOURCE,
        reason_code=code,
        reason=reason,
        raw=raw_text(raw),
        peer=peer,
        point_code=point_code,
    )


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _log_alarm_failure(future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log_event(logger, "alarm_failed", logging.ERROR, error=repr(future.exception()))
