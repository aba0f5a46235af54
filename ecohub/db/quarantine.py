"""The quarantine: rejected input kept with its raw text and the reason, never dropped."""

from __future__ import annotations

import datetime as dt
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


def raw_text(raw: bytes | str) -> str:
    """Raw input as storable text: bytes that are not UTF-8 are kept as ``\\xNN`` escapes."""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="backslashreplace")
    return raw


def quarantine_rows(target: Engine | Connection, rows: Iterable[Rejected]) -> int:
    """Store rejected input; returns how many rows were written."""
    values = [
        {
            "received_at": row.received_at,
            "source": row.source,
            "peer": row.peer,
            "point_code": row.point_code,
            "reason_code": row.reason_code,
            "reason": row.reason,
            "raw": row.raw,
        }
        for row in rows
    ]
    if not values:
        return 0
    if isinstance(target, Engine):
        with target.begin() as connection:
            connection.execute(insert(quarantine), values)
    else:
        target.execute(insert(quarantine), values)
    return len(values)


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
            )
            for row in connection.execute(query)
        ]


def count_quarantine(target: Engine, reason_code: str | None = None) -> int:
    query = select(func.count()).select_from(quarantine)
    if reason_code:
        query = query.where(quarantine.c.reason_code == reason_code)
    with target.connect() as connection:
        return int(connection.execute(query).scalar_one())
