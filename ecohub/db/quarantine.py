"""The quarantine: rejected input kept with its raw text and the reason.

Nothing rejected goes uncounted; what a hostile sender can make it store is bounded by
the doors (the HJ 212 gateway keeps a capped part of each burst of rejected bytes with
their SHA-256, and a quota per sender address: :mod:`ecohub.ingest.hj212_guard`), and
the agency's listing pages by size as well as by count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from ecohub.clock import utcnow
from ecohub.db.base import metadata
from ecohub.db.types import UTCDateTime

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    Column("source", String(16), nullable=False),
    Column("peer", String(100)),
    Column("point_code", String(32)),
    Column("reason_code", String(32), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
    # Identical input (same source, reason and raw text) rejected again is counted on the
    # unreviewed row it matches rather than stored again (migration 0013).
    Column("fingerprint", String(64), index=True),
    Column("times", Integer, nullable=False, server_default="1"),
    Column("last_received_at", UTCDateTime),
    # Review by agency staff: who looked, when, what they decided and why.
    Column("reviewed_at", UTCDateTime),
    Column("reviewed_by", String(100)),
    Column("review_outcome", String(16)),  # dismissed | device_fault | forwarded
    Column("review_note", Text),
)


@dataclass(frozen=True)
class Rejected:
    """One piece of rejected input."""

    source: str  # the door it came in by: hj212, mqtt, http, file, registry, cnemc
    reason_code: str  # short machine-readable cause, e.g. "bad_crc", "unknown_mn"
    reason: str  # the sentence a person reads
    raw: str  # the input as received (bytes decoded with backslash escapes)
    peer: str | None = None
    point_code: str | None = None
    received_at: dt.datetime = field(default_factory=utcnow)
    # Rejections this row stands for: identical ones counted on one row (as read back),
    # or the rest of a burst whose raw input was not all kept (see the HJ 212 gateway).
    times: int = 1


def raw_text(raw: bytes | str) -> str:
    """Raw input as storable text: bytes that are not UTF-8 are kept as ``\\xNN`` escapes."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="backslashreplace")
    return raw


def _storable(text: str | None) -> str | None:
    """NUL, which PostgreSQL's text refuses, written as the escape ``\\x00``."""
    return None if text is None else text.replace("\x00", "\\x00")


def fingerprint(row: Rejected) -> str:
    """What makes two rejections the same input: source, reason code and raw text."""
    digest = hashlib.sha256()
    for part in (row.source, row.reason_code, row.raw):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def quarantine_rows(target: Engine | Connection, rows: Iterable[Rejected]) -> int:
    """Store rejected input; returns how many rejections were recorded. An input
    identical to one already waiting for review (same source, reason and raw text) is
    counted on that row (``times``, ``last_received_at``) instead of stored again."""
    merged: dict[str, tuple[Rejected, int]] = {}
    for row in rows:
        key = fingerprint(row)
        earlier = merged.get(key)
        merged[key] = (row, row.times + (earlier[1] if earlier else 0))
    if not merged:
        return 0
    if isinstance(target, Engine):
        with target.begin() as connection:
            _store(connection, merged)
    else:
        _store(target, merged)
    return sum(times for _row, times in merged.values())


def _store(connection: Connection, merged: dict[str, tuple[Rejected, int]]) -> None:
    keys = list(merged)
    waiting: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        for ident, key in connection.execute(
            select(quarantine.c.id, quarantine.c.fingerprint).where(
                quarantine.c.fingerprint.in_(keys[start : start + 500]),
                quarantine.c.reviewed_at.is_(None),
            )
        ):
            waiting.setdefault(key, ident)
    fresh = []
    for key, (row, times) in merged.items():
        ident = waiting.get(key)
        if ident is not None:
            connection.execute(
                update(quarantine)
                .where(quarantine.c.id == ident)
                .values(
                    times=quarantine.c.times + times,
                    last_received_at=row.received_at,
                    peer=row.peer,
                )
            )
            continue
        fresh.append(
            {
                "received_at": row.received_at,
                "source": row.source,
                "peer": _storable(row.peer),
                "point_code": _storable(row.point_code),
                "reason_code": row.reason_code,
                "reason": _storable(row.reason),
                "raw": _storable(row.raw),
                "fingerprint": key,
                "times": times,
                "last_received_at": row.received_at if times > 1 else None,
            }
        )
    if fresh:
        connection.execute(insert(quarantine), fresh)


def list_quarantine(
    target: Engine, *, source: str | None = None, limit: int = 100
) -> Sequence[Rejected]:
    """The newest quarantined rows, optionally of one source."""
    query = select(quarantine).order_by(quarantine.c.id.desc()).limit(limit)
    if source:
        query = query.where(quarantine.c.source == source)
    with target.connect() as connection:
        return [
            Rejected(
                source=row.source,
                reason_code=row.reason_code,
                reason=row.reason,
                raw=row.raw,
                peer=row.peer,
                point_code=row.point_code,
                received_at=row.received_at,
                times=row.times,
            )
            for row in connection.execute(query)
        ]


def count_quarantine(target: Engine, reason_code: str | None = None) -> int:
    """How many rejections were recorded (identical ones counted each time)."""
    query = select(func.coalesce(func.sum(quarantine.c.times), 0)).select_from(quarantine)
    if reason_code:
        query = query.where(quarantine.c.reason_code == reason_code)
    with target.connect() as connection:
        return int(connection.execute(query).scalar_one())
