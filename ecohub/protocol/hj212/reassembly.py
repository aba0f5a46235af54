"""Putting split packets (PNUM/PNO, Flag bit D) back together.

A logger splits an upload too long for one packet into PNUM packets numbered PNO
1…PNUM, sharing QN; each carries part of the CP data area. The parts are joined once all
have arrived; a set still incomplete after ``timeout`` seconds is given up and reported.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from ecohub.protocol.hj212.codes import FLAG_SPLIT
from ecohub.protocol.hj212.packet import Packet


@dataclass
class _Pending:
    first_seen: float
    parts: dict[int, Packet] = field(default_factory=dict)


class Reassembler:
    """Collects split packets by (MN, CN, QN) and returns each whole upload once."""

    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._pending: dict[tuple[str, str, str | None], _Pending] = {}

    def add(self, packet: Packet, now: float | None = None) -> Packet | None:
        """Add a packet; returns the joined packet when this completes its set."""
        if not packet.is_split or packet.pnum is None or packet.pno is None:
            return packet
        key = (packet.mn, packet.cn, packet.qn)
        pending = self._pending.setdefault(
            key, _Pending(now if now is not None else time.monotonic())
        )
        pending.parts[packet.pno] = packet
        if len(pending.parts) < packet.pnum:
            return None
        del self._pending[key]
        parts = [pending.parts[number] for number in sorted(pending.parts)]
        joined_cp = ";".join(part.cp for part in parts if part.cp)
        return dataclasses.replace(
            parts[0],
            cp=joined_cp,
            pnum=None,
            pno=None,
            flag=None if parts[0].flag is None else parts[0].flag & ~FLAG_SPLIT,
        )

    def expire(self, now: float | None = None) -> list[list[Packet]]:
        """Give up on sets older than the timeout; returns their parts."""
        moment = now if now is not None else time.monotonic()
        stale = [k for k, p in self._pending.items() if moment - p.first_seen > self.timeout]
        return [list(self._pending.pop(key).parts.values()) for key in stale]

    def __len__(self) -> int:
        return len(self._pending)
