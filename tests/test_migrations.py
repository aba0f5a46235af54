"""The migrations create exactly the schema the models describe, on both backends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.exc import IntegrityError

import ecohub.schema  # noqa: F401 - every area's tables on Base.metadata
from ecohub.db.base import Base
from ecohub.db.engine import make_engine
from ecohub.db.migrate import upgrade
from ecohub.timeseries.observations import Observation, write_observations
from ecohub.timeseries.tables import observation_revisions, observations


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_installs_revision_trigger(engine: Engine) -> None:
    upgrade(engine)  # already at head: nothing to do, nothing fails
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            triggers = (
                connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                .scalars()
                .all()
            )
        else:
            triggers = (
                connection.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
                .scalars()
                .all()
            )
    assert "trg_observations_revision" in triggers
    assert "observations" in inspect(engine).get_table_names()


def test_dropping_the_series_foreign_keys_keeps_sqlite_data_and_trigger(tmp_path: Path) -> None:
    """Migration 0008 copies SQLite's observations and rollups into new tables: the rows,
    the revision trigger and WITHOUT ROWID must survive, and the keys must be gone."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0007")
    point = _register_point(engine)
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    write_observations(engine, [Observation(point, "a21026", "hour", moment, 12.0)])
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO rollups (point_id, parameter_code, period, ts, value, statistic, "
            "samples, received, valid, basis, flags, computed_at) VALUES "
            "(?, 'a21026', 'day', '2024-01-01 00:00:00.000000', 12.0, 'mean', 1, 1, 0, "
            "'hour', 0, '2024-01-02 00:00:00.000000')",
            (point,),
        )
    upgrade(engine)
    with engine.connect() as connection:
        for table in ("observations", "rollups"):
            keys = connection.exec_driver_sql(f"PRAGMA foreign_key_list('{table}')").all()
            assert keys == []
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).scalar_one()
            assert "WITHOUT ROWID" in sql
        assert connection.exec_driver_sql("SELECT value FROM rollups").scalars().all() == [12.0]
    _assert_trigger_records_a_revision(engine, point, moment)
    engine.dispose()


def test_observation_checks_refuse_unknown_flags_and_intervals(engine: Engine) -> None:
    """Migration 0010 rewrote the checks (equalities, not IN lists): what they refuse and
    accept is unchanged."""
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)

    def insert(interval: str, flag: str, hours: int) -> None:
        with engine.begin() as connection:
            connection.execute(
                observations.insert().values(
                    point_id=1,
                    parameter_code="a21026",
                    interval=interval,
                    ts=moment + dt.timedelta(hours=hours),
                    value=1.0,
                    data_flag=flag,
                    source="test",
                    ingested_at=moment,
                )
            )

    for hours, flag in enumerate("NFMSDCTB"):
        insert("rt", flag, hours)
    for interval in ("min", "hour", "day"):
        insert(interval, "N", 0)
    for interval, flag in (("rt", "X"), ("sec", "N"), ("rt", "n")):
        with pytest.raises(IntegrityError, match="ck_observations"):
            insert(interval, flag, 100)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(observations)).scalar_one()
    assert count == 11


def test_sqlite_observation_checks_are_rewritten_keeping_rows_and_trigger(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0009")
    point = _register_point(engine)
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    write_observations(engine, [Observation(point, "a21026", "hour", moment, 12.0)])
    upgrade(engine)
    with engine.connect() as connection:
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'observations'"
        ).scalar_one()
        indexes = connection.exec_driver_sql("PRAGMA index_list('observations')").all()
    assert " IN (" not in sql and "WITHOUT ROWID" in sql
    assert "data_flag = 'B'" in sql and "interval = 'day'" in sql
    assert "ix_observations_ts" in {row[1] for row in indexes}
    _assert_trigger_records_a_revision(engine, point, moment)
    engine.dispose()


def _register_point(engine: Engine) -> int:
    """A site and its point, written as SQL: the schema may be older than the models."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO sites (code, name, kind, status) VALUES ('S1', '站', 'air', 'active')"
        )
        connection.exec_driver_sql(
            "INSERT INTO monitoring_points (code, name, site_id, interval_seconds, crc_tolerant) "
            "SELECT 'P1', '点', id, 60, false FROM sites WHERE code = 'S1'"
        )
        return int(connection.exec_driver_sql("SELECT id FROM monitoring_points").scalar_one())


def _assert_trigger_records_a_revision(engine: Engine, point: int, moment: dt.datetime) -> None:
    """The stored 12.0 at ``moment`` becomes 13.0: the revision trigger must record it."""
    write_observations(engine, [Observation(point, "a21026", "hour", moment, 13.0)])
    with engine.connect() as connection:
        revised = connection.execute(
            select(observation_revisions.c.old_value, observation_revisions.c.new_value)
        ).all()
    assert [tuple(row) for row in revised] == [(12.0, 13.0)]
