"""The rollup queue: the hours whose rollups are due, written in the transaction that
stored their raw values, so that a crash before the recomputation loses nothing.

A deferring writer queues the hours a batch touched under its own token and takes them
back, oldest first, in the transaction that recomputes them
(:func:`ecohub.timeseries.rollups.recompute`).
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Connection, delete, func, select, tuple_

from ecohub.db.bulk import bulk_upsert
from ecohub.timeseries.tables import rollup_queue

SeriesHour = tuple[int, str, dt.datetime]  # point id, rollup series code, hour start (UTC)

# A queue entry's token once two writers queued the hour: neither may trust its memory.
SHARED_TOKEN = 0


def new_queue_token() -> int:
    """A random token identifying one writer's queue entries (never SHARED_TOKEN)."""
    return secrets.randbits(62) | 1


def queue_hours(connection: Connection, dirty: set[SeriesHour], token: int | None = None) -> None:
    """Queue ``dirty`` for a later :func:`recompute` (inside the transaction that stored
    their raw values), under the writer's ``token`` (default: a new one). An hour already
    queued under another token becomes :data:`SHARED_TOKEN`."""
    token = new_queue_token() if token is None else token
    bulk_upsert(
        connection,
        rollup_queue,
        [
            {"point_id": point_id, "parameter_code": code, "hour": hour, "token": token}
            for point_id, code, hour in dirty
        ],
        ["point_id", "parameter_code", "hour"],
        updates={
            "token": f"CASE WHEN rollup_queue.token = excluded.token THEN excluded.token "
            f"ELSE {SHARED_TOKEN} END"
        },
    )


QueueEntry = tuple[int, str, dt.datetime, int]  # point id, series, hour, token


def take_queued_hours(connection: Connection, limit: int | None = None) -> set[SeriesHour]:
    """Queued hours (all, or the ``limit`` oldest), removed from the queue in the
    caller's transaction (which must then recompute them). An hour that another writer
    queues again meanwhile stays queued."""
    return {(p, code, hour) for p, code, hour, _token in take_queue_entries(connection, limit)}


def count_queued_hours(connection: Connection, before: dt.datetime | None = None) -> int:
    """Queued hours (those starting before ``before``, if given)."""
    query = select(func.count()).select_from(rollup_queue)
    if before is not None:
        query = query.where(rollup_queue.c.hour < before)
    return int(connection.execute(query).scalar_one())


def take_queue_entries(
    connection: Connection, limit: int | None = None, before: dt.datetime | None = None
) -> list[QueueEntry]:
    """As :func:`take_queued_hours`, with each entry's token: one ``DELETE … RETURNING``,
    so exactly the entries removed are returned, even with other writers queueing.
    With ``before``, only hours starting before it are taken."""
    deleted = delete(rollup_queue)
    if limit is None and before is not None:
        deleted = deleted.where(rollup_queue.c.hour < before)
    if limit is not None:
        oldest = (
            select(rollup_queue.c.point_id, rollup_queue.c.parameter_code, rollup_queue.c.hour)
            .order_by(rollup_queue.c.hour, rollup_queue.c.point_id)
            .limit(limit)
        )
        if before is not None:
            oldest = oldest.where(rollup_queue.c.hour < before)
        deleted = deleted.where(
            tuple_(rollup_queue.c.point_id, rollup_queue.c.parameter_code, rollup_queue.c.hour).in_(
                oldest
            )
        )
    returning = deleted.returning(
        rollup_queue.c.point_id,
        rollup_queue.c.parameter_code,
        rollup_queue.c.hour,
        rollup_queue.c.token,
    )
    return [(p, c, h, t) for p, c, h, t in connection.execute(returning)]
