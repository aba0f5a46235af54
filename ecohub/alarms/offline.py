"""Offline points: silence brings no data to evaluate, so a periodic sweep (run by the
housekeeping of ``ecohub serve`` and by ``ecohub alarms sweep``) opens an offline alarm
for every point silent longer than ``offline_multiple`` of its reporting interval and
closes those heard from again."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from ecohub.alarms import rules
from ecohub.alarms.events import Event, Sample, Subject
from ecohub.alarms.lifecycle import apply_samples, in_maintenance
from ecohub.alarms.notify import enqueue
from ecohub.alarms.rules import Judgement
from ecohub.alarms.tables import AlarmKind, AlarmStatus, alarms
from ecohub.clock import utcnow
from ecohub.config import get_settings
from ecohub.db.engine import write_transaction
from ecohub.registry.directory import read_points
from ecohub.registry.models import MonitoringPoint


def sweep_offline(
    engine: Engine, now: dt.datetime | None = None, *, multiple: float | None = None
) -> list[Event]:
    """Open an offline alarm for every point silent longer than ``offline_multiple`` of its
    interval, close those heard from again; returns the events (queued for notification).

    Points never heard from are not judged. A point inside a maintenance window now is
    not alarmed.
    """
    now = now or utcnow()
    multiple = get_settings().offline_multiple if multiple is None else multiple
    with write_transaction(engine) as connection:
        points = {point.id: point for point in read_points(connection)}
        rows = [
            (point_id, last_seen)
            for point_id, last_seen in connection.execute(
                select(MonitoringPoint.id, MonitoringPoint.last_seen_at).where(
                    MonitoringPoint.last_seen_at.is_not(None)
                )
            )
            if point_id in points
        ]
        maintenance = in_maintenance(connection, ((row[0], now) for row in rows))
        unclosed = set(
            connection.execute(
                select(alarms.c.point_id).where(
                    alarms.c.kind == AlarmKind.OFFLINE.value,
                    alarms.c.status != AlarmStatus.CLOSED.value,
                )
            ).scalars()
        )
        samples = []
        for point_id, last_seen in rows:
            point = points[point_id]
            code, interval = point.code, point.interval_seconds
            silent = (now - last_seen).total_seconds()
            offline = rules.is_offline(silent, interval, multiple)
            if offline and (point_id, now) in maintenance:
                continue
            if not offline and point_id not in unclosed:
                continue
            judgement = Judgement(
                active=offline,
                severity="warning",
                evidence={
                    "last_seen_at": last_seen.astimezone(dt.UTC).isoformat(),
                    "silent_seconds": round(silent),
                    "interval_seconds": interval,
                    "multiple": multiple,
                },
                summary=f"point {code} silent for {silent / 60:.0f} min "
                f"(interval {interval} s, limit {multiple:g}×)",
            )
            samples.append(
                Sample(
                    AlarmKind.OFFLINE,
                    f"offline:{point_id}",
                    last_seen if offline else now,
                    dt.timedelta(seconds=interval),
                    judgement,
                    Subject(point_id, point.site_id, point.enterprise_id, point.region_code),
                )
            )
        events = apply_samples(connection, samples, now)
        enqueue(connection, events, now)
    return events
