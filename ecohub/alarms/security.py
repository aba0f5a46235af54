"""Security alarms: someone guessing HJ 212 passwords. The gateway blocks an MN or a
sender address after repeated wrong passwords (:mod:`ecohub.ingest.hj212_guard`) and
calls :func:`raise_password_guessing`, which opens an alarm for the agency (or adds the
new block to the alarm still open for that target) and queues its notifications.

The alarm stays open until someone closes it: a block ends by itself, the question of
who was guessing does not.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from ecohub.alarms import rules
from ecohub.alarms.events import Event, Sample, Subject
from ecohub.alarms.lifecycle import apply_samples
from ecohub.alarms.notify import enqueue
from ecohub.alarms.tables import AlarmKind
from ecohub.clock import utcnow
from ecohub.db.engine import write_transaction
from ecohub.registry.directory import read_points


def raise_password_guessing(
    engine: Engine,
    *,
    target: str,
    mn: str | None,
    failures: int,
    window_seconds: float,
    blocked_seconds: float,
    peers: list[str],
    now: dt.datetime | None = None,
) -> list[Event]:
    """Open (or extend) the password-guessing alarm of ``target`` ("MN …" or "address
    …"); ``mn`` names the point when the target is one. Returns the events queued."""
    now = now or utcnow()
    subject = Subject()
    if mn:
        with engine.connect() as connection:
            point = next((p for p in read_points(connection) if p.mn == mn), None)
        if point is not None:
            subject = Subject(point.id, point.site_id, point.enterprise_id, point.region_code)
    sample = Sample(
        AlarmKind.PASSWORD_GUESSING,
        f"password_guessing:{target}"[:200],
        now.replace(microsecond=0),
        dt.timedelta(seconds=blocked_seconds),
        rules.password_guessing(target, failures, window_seconds, blocked_seconds, peers),
        subject,
    )
    with write_transaction(engine) as connection:
        events = apply_samples(connection, [sample], now)
        enqueue(connection, events, now)
    return events
