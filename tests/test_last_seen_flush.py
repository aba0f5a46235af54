"""The gateway's flush of last-seen times never waits for a row another transaction holds.

The writer records last-seen times in the transaction of each batch; the gateway's
periodic flush updates the same rows. When both waited for each other PostgreSQL
aborted the writer's batch as a deadlock (seen in a benchmark run: a thousand loggers
unanswered for ten seconds while the batch was retried).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError

from ecohub.db.engine import make_engine
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.registry.models import MonitoringPoint
from ecohub.simulate.points import register_simulated_points

HEARD = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


def _point_ids(engine: Engine, count: int) -> list[int]:
    mns = [point.mn for point in register_simulated_points(engine, count)]
    with engine.connect() as connection:
        return sorted(
            connection.scalars(select(MonitoringPoint.id).where(MonitoringPoint.mn.in_(mns)))
        )


def _last_seen(engine: Engine, ids: list[int]) -> dict[int, dt.datetime | None]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(MonitoringPoint.id, MonitoringPoint.last_seen_at).where(
                MonitoringPoint.id.in_(ids)
            )
        )
        return {row.id: row.last_seen_at for row in rows}


def test_flush_writes_each_points_last_seen_time(engine: Engine) -> None:
    ids = _point_ids(engine, 3)
    gateway = HJ212Gateway(engine, separate_writer=False)
    gateway.last_seen.dirty = {
        point_id: HEARD + dt.timedelta(minutes=i) for i, point_id in enumerate(ids)
    }
    gateway.last_seen.flush()
    assert _last_seen(engine, ids) == {
        point_id: HEARD + dt.timedelta(minutes=i) for i, point_id in enumerate(ids)
    }
    assert gateway.last_seen.dirty == {}


def test_flush_skips_a_row_another_transaction_holds(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite locks the whole database")
    ids = _point_ids(engine, 3)
    held = ids[1]
    gateway = HJ212Gateway(engine, separate_writer=False)
    gateway.last_seen.dirty = dict.fromkeys(ids, HEARD)
    with engine.connect() as writer:
        # The writer's batch transaction, which has updated one of the points.
        transaction = writer.begin()
        writer.execute(
            update(MonitoringPoint)
            .where(MonitoringPoint.id == held)
            .values(last_seen_at=HEARD - dt.timedelta(hours=1))
        )
        flush = threading.Thread(target=gateway.last_seen.flush)
        flush.start()
        flush.join(10)
        waited = flush.is_alive()  # waiting for the writer's row lock
        transaction.commit()
        flush.join()
        assert not waited
        assert _last_seen(engine, [ids[0], ids[2]]) == {ids[0]: HEARD, ids[2]: HEARD}
        assert gateway.last_seen.dirty == {held: HEARD}  # kept for the next flush
    gateway.last_seen.flush()
    assert _last_seen(engine, ids) == dict.fromkeys(ids, HEARD)
    assert gateway.last_seen.dirty == {}


def test_a_point_deleted_meanwhile_is_not_kept_dirty(engine: Engine) -> None:
    gateway = HJ212Gateway(engine, separate_writer=False)
    gateway.last_seen.dirty = {987_654: HEARD}  # no such point
    gateway.last_seen.flush()
    assert gateway.last_seen.dirty == {}


def test_a_failed_flush_keeps_the_times_for_the_next(tmp_path: Path) -> None:
    gateway = HJ212Gateway(make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite3'}"))
    gateway.last_seen.dirty = {1: HEARD, 2: HEARD}
    with pytest.raises(OperationalError):
        gateway.last_seen.flush()
    assert gateway.last_seen.dirty == {1: HEARD, 2: HEARD}
