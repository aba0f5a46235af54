"""What keeps the HJ 212 gateway standing against hostile senders: connection caps,
bounded quarantine and password throttling. Plain bookkeeping with the clock passed in;
the gateway (:mod:`ecohub.ingest.hj212_gateway`) applies its verdicts.

- **Connections**: at most ``max_connections`` at once and ``max_connections_per_address``
  from one sender address; past the total cap the oldest connection that has not yet
  sent a packet of a registered point makes room, past the address cap the new one is
  refused. Refusals are logged (the first at once, then a count every ten seconds).
- **Quarantine**: a *burst* is a run of rejections of one reason on one connection; it
  keeps at most ``raw_bytes`` of raw input, the rest counted with its SHA-256. A sender
  address may fill at most ``quota_rows`` rows and ``quota_bytes`` raw bytes an hour;
  beyond that rejections are counted in one summary row per address and hour. A
  connection that sends ``junk_close_bytes`` of rejected input since its last accepted
  packet is closed.
- **Passwords**: wrong passwords (and unknown MNs) are counted per MN, per sender address
  and per connection over ``auth_window``. From ``auth_delay_after`` failures a connection
  is paused before each further packet (0.5 s, doubling, at most ``auth_max_delay``); at
  ``auth_block_after`` the connection is closed, and the MN, or the address when no
  logger has signed in from it for a day, is blocked for ``auth_block_seconds`` (an
  address whose logger sent the MN's right password within the day is never blocked for
  that MN, so guessing cannot lock a logger out). A block is logged and raises an alarm.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KNOWN_GOOD_SECONDS = 86_400.0  # a logger's address stays trusted for its MN this long
QUOTA_WINDOW_SECONDS = 3_600.0


@dataclass(frozen=True)
class GuardSettings:
    """The limits (``ecohub serve`` fills them from the ``ECOHUB_HJ212_*`` settings)."""

    max_connections: int = 10_000
    max_connections_per_address: int = 1_500
    first_packet_timeout: float = 60.0
    raw_bytes: int = 4096
    junk_close_bytes: int = 16 << 20
    quota_rows: int = 1_000
    quota_bytes: int = 1_048_576
    auth_delay_after: int = 3
    auth_block_after: int = 10
    auth_window: float = 600.0
    auth_block_seconds: float = 900.0
    auth_max_delay: float = 30.0
    auth_first_delay: float = 0.5  # the first pause; each further one doubles


def address_of(peer: str) -> str:
    """``1.2.3.4:5678`` → ``1.2.3.4`` (IPv6 ``[::1]:5678`` and ``::1:5678`` → ``::1``)."""
    host = peer.rpartition(":")[0] or peer
    return host.strip("[]")


# --- connections ----------------------------------------------------------------------


class ConnectionLimits:
    """Open connections in total and per sender address, with logged refusals."""

    def __init__(
        self,
        max_total: int,
        max_per_address: int,
        log: Callable[..., None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.log = log
        self.clock = clock
        self.total = 0
        self.per_address: dict[str, int] = {}
        self.refused = 0
        self._unlogged: dict[tuple[str, str], int] = {}
        self._logged_at = -1e9

    def over(self, address: str) -> str | None:
        """Why a new connection from ``address`` cannot be held (``address_cap`` or
        ``total_cap``), or None."""
        if self.per_address.get(address, 0) >= self.max_per_address:
            return "address_cap"
        if self.total >= self.max_total:
            return "total_cap"
        return None

    def opened(self, address: str) -> None:
        self.total += 1
        self.per_address[address] = self.per_address.get(address, 0) + 1

    def closed(self, address: str) -> None:
        self.total -= 1
        left = self.per_address.get(address, 1) - 1
        if left > 0:
            self.per_address[address] = left
        else:
            self.per_address.pop(address, None)

    def refuse(self, address: str, reason: str) -> None:
        """Count a refusal; log the first at once and the rest every ten seconds."""
        self.refused += 1
        key = (reason, address)
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        if self.clock() - self._logged_at >= 10.0:
            self.flush_log()

    def flush_log(self) -> None:
        for (reason, address), count in self._unlogged.items():
            cap = self.max_per_address if reason == "address_cap" else self.max_total
            self.log("connections_refused", reason=reason, address=address, refused=count, cap=cap)
        self._unlogged.clear()
        self._logged_at = self.clock()


# --- quarantine -------------------------------------------------------------------------


@dataclass
class Burst:
    """Consecutive rejections of one reason on one connection."""

    kind: str
    kept: int  # raw bytes stored so far (by the burst's first row)
    count: int = 1
    size: int = 0  # bytes of the rejections after the first
    digest: Any = field(default_factory=hashlib.sha256)
    extra: bytearray = field(default_factory=bytearray)  # raw kept for the closing row

    def add(self, raw: bytes, cap: int) -> None:
        self.count += 1
        self.size += len(raw)
        self.digest.update(raw)
        room = cap - self.kept - len(self.extra)
        if room > 0:
            self.extra += raw[:room]


def capped(raw: bytes, cap: int) -> tuple[bytes, str]:
    """The raw bytes to keep and what to add to the reason when some are dropped."""
    if len(raw) <= cap:
        return raw, ""
    digest = hashlib.sha256(raw).hexdigest()
    return raw[:cap], f" ({len(raw):,} bytes, the first {cap:,} kept; SHA-256 {digest})"


class SenderQuota:
    """Quarantine rows and raw bytes per sender address and hour."""

    def __init__(self, rows: int, raw_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.rows = rows
        self.raw_bytes = raw_bytes
        self.clock = clock
        # address → [window start, rows, bytes, rows dropped, bytes dropped]
        self.used: dict[str, list[float]] = {}

    def allow(self, address: str, size: int) -> bool:
        """Whether a rejection of ``size`` raw bytes from ``address`` may be stored (it is
        counted either way)."""
        start = self.clock() // QUOTA_WINDOW_SECONDS * QUOTA_WINDOW_SECONDS
        used = self.used.get(address)
        if used is None or used[0] != start:
            used = self.used[address] = [start, 0, 0, 0, 0]
        if used[1] + 1 > self.rows or used[2] + size > self.raw_bytes:
            used[3] += 1
            used[4] += size
            return False
        used[1] += 1
        used[2] += size
        return True

    def over_quota(self, *, ended_only: bool = True) -> list[tuple[str, float, int, int]]:
        """(address, window start, rejections dropped, bytes dropped) of windows that
        ended (or all, at shutdown); forgets them."""
        now_start = self.clock() // QUOTA_WINDOW_SECONDS * QUOTA_WINDOW_SECONDS
        found = []
        for address, used in list(self.used.items()):
            if ended_only and used[0] == now_start:
                continue
            if used[3]:
                found.append((address, used[0], int(used[3]), int(used[4])))
            del self.used[address]
        return found


# --- passwords --------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """An MN or address just blocked."""

    target: str  # "MN …" or "address …"
    mn: str | None
    failures: int
    peers: list[str]


@dataclass(frozen=True)
class AuthVerdict:
    delay: float = 0.0  # pause the connection this long before its next packet
    close: bool = False  # close the connection
    blocks: tuple[Block, ...] = ()


class AuthThrottle:
    """Wrong passwords per MN, per sender address and per connection."""

    def __init__(self, settings: GuardSettings, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self.failures_mn: dict[str, deque[float]] = {}
        self.failures_address: dict[str, deque[float]] = {}
        self.peers_mn: dict[str, set[str]] = {}
        self.signed_in: dict[str, float] = {}  # address → last right password
        self.good: dict[tuple[str, str], float] = {}  # (address, MN) → last right password
        self.blocked_mn: dict[str, float] = {}  # → blocked until
        self.blocked_address: dict[str, float] = {}

    def address_blocked(self, address: str) -> bool:
        until = self.blocked_address.get(address)
        return until is not None and until > self.clock()

    def blocked(self, address: str, mn: str) -> bool:
        """Whether a packet for ``mn`` from ``address`` is refused unchecked."""
        if not self.blocked_mn and not self.blocked_address:
            return False
        now = self.clock()
        trusted = self.good.get((address, mn), -1e18) > now - KNOWN_GOOD_SECONDS
        if trusted:
            return False
        return self.blocked_mn.get(mn, 0.0) > now or self.blocked_address.get(address, 0.0) > now

    def succeeded(self, address: str, mn: str) -> None:
        now = self.clock()
        self.good[(address, mn)] = now
        self.signed_in[address] = now

    def failed(self, address: str, mn: str | None, on_connection: int) -> AuthVerdict:
        """Count a wrong password for ``mn`` (None: an unknown MN) from ``address``, the
        ``on_connection``-th on its connection; the verdict for the connection."""
        settings = self.settings
        now = self.clock()
        horizon = now - settings.auth_window
        by_address = _recent(self.failures_address, address, now, horizon)
        by_mn = 0
        blocks = []
        if mn:
            by_mn = _recent(self.failures_mn, mn, now, horizon)
            peers = self.peers_mn.setdefault(mn, set())
            if len(peers) < 1000:
                peers.add(address)
            if by_mn >= settings.auth_block_after and self.blocked_mn.get(mn, 0.0) <= now:
                self.blocked_mn[mn] = now + settings.auth_block_seconds
                blocks.append(Block(f"MN {mn}", mn, by_mn, sorted(peers)))
        hosts_loggers = self.signed_in.get(address, -1e18) > now - KNOWN_GOOD_SECONDS
        if hosts_loggers:
            by_address = 0  # a NAT with loggers behind it: per MN and connection only
        elif (
            by_address >= settings.auth_block_after
            and self.blocked_address.get(address, 0.0) <= now
        ):
            self.blocked_address[address] = now + settings.auth_block_seconds
            blocks.append(Block(f"address {address}", None, by_address, [address]))
        worst = max(on_connection, by_mn, by_address)
        delay = 0.0
        if worst >= settings.auth_delay_after:
            delay = min(
                settings.auth_first_delay * 2 ** (worst - settings.auth_delay_after),
                settings.auth_max_delay,
            )
        close = on_connection >= settings.auth_block_after or (
            mn is not None and self.blocked(address, mn)
        )
        close = close or self.address_blocked(address)
        return AuthVerdict(delay=delay, close=close, blocks=tuple(blocks))

    def prune(self) -> None:
        """Forget what has aged out (run now and then)."""
        now = self.clock()
        horizon = now - self.settings.auth_window
        for table in (self.failures_mn, self.failures_address):
            for key in [k for k, times in table.items() if not times or times[-1] < horizon]:
                del table[key]
        for key in [k for k in self.peers_mn if k not in self.failures_mn]:
            del self.peers_mn[key]
        for blocks in (self.blocked_mn, self.blocked_address):
            for key in [k for k, until in blocks.items() if until <= now]:
                del blocks[key]
        old = now - KNOWN_GOOD_SECONDS
        for pair in [p for p, at in self.good.items() if at < old]:
            del self.good[pair]
        for address in [a for a, at in self.signed_in.items() if at < old]:
            del self.signed_in[address]


def _recent(table: dict[str, deque[float]], key: str, now: float, horizon: float) -> int:
    times = table.setdefault(key, deque())
    times.append(now)
    while times and times[0] < horizon:
        times.popleft()
    if len(times) > 10_000:
        times.popleft()
    return len(times)
