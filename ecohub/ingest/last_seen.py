"""The last-seen times of the points the gateway hears from, written to the registry in
the background (``_LAST_SEEN_CHUNK`` points per statement) rather than with every
upload."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, Table, bindparam, select, update

from ecohub.registry.models import MonitoringPoint

_LAST_SEEN_CHUNK = 500  # point ids per statement when last-seen times are flushed


class LastSeen:
    """Points heard since the previous flush, with when (``dirty``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dirty: dict[int, dt.datetime] = {}

    def flush(self) -> None:
        """Write the last-seen times of the points heard since the previous flush.

        The writer also records last-seen times, in the transaction of the batch it is
        writing, so both lock the same rows. This transaction takes only the rows no
        other transaction holds (PostgreSQL's ``SKIP LOCKED``; SQLite locks the whole
        database and needs nothing): it never waits for a lock, so it can never be half
        of a deadlock. It was, once in some twenty-five benchmark runs: PostgreSQL then
        aborted the writer's batch, which was retried after a pause, and a thousand
        loggers went unanswered for ten seconds. Skipped points are flushed next time.
        """
        dirty, self.dirty = self.dirty, {}
        if not dirty:
            return
        skipped: list[int] = []
        try:
            skipped = self._write(dirty)
        except BaseException:
            skipped = list(dirty)  # nothing was written
            raise
        finally:
            for point_id in skipped:
                # Unless heard from again meanwhile (a later time is already waiting).
                self.dirty.setdefault(point_id, dirty[point_id])

    def _write(self, dirty: dict[int, dt.datetime]) -> list[int]:
        """Write what rows no other transaction holds; returns the skipped points."""
        table = MonitoringPoint.__table__
        assert isinstance(table, Table)
        ids = sorted(dirty)
        free: list[int] = []
        with self.engine.begin() as connection:
            for start in range(0, len(ids), _LAST_SEEN_CHUNK):
                chunk = ids[start : start + _LAST_SEEN_CHUNK]
                free += connection.scalars(
                    select(table.c.id)
                    .where(table.c.id.in_(chunk))
                    .order_by(table.c.id)
                    .with_for_update(skip_locked=True)
                ).all()
            if free:
                connection.execute(
                    update(table)
                    .where(table.c.id == bindparam("point_id"))
                    .values(last_seen_at=bindparam("seen")),
                    [{"point_id": point_id, "seen": dirty[point_id]} for point_id in free],
                )
            skipped = sorted(dirty.keys() - set(free))
            if not skipped:
                return []
            # Locked by another transaction, or deleted from the registry meanwhile.
            return list(connection.scalars(select(table.c.id).where(table.c.id.in_(skipped))))
