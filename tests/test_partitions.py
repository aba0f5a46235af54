"""Monthly partitions of observations and rollups (migration 0020, PostgreSQL): a store
holding rows is converted without losing one, each row lands in its Beijing month's
partition, the normal write and read paths behave as on an unpartitioned store, a value
of a month without a partition is kept in DEFAULT, and months are created ahead,
detached and attached again. On SQLite every partition function does nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import ecohub.schema  # noqa: F401 - every area's tables on Base.metadata
from ecohub.db.base import Base
from ecohub.db.engine import make_engine, write_transaction
from ecohub.db.migrate import alembic_config, upgrade
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.importer import import_file
from ecohub.timeseries import partitions
from ecohub.timeseries.observations import (
    Observation,
    insert_new_rows,
    latest_values,
    read_page,
    read_range,
    write_observations,
)
from ecohub.timeseries.partitions_cli import partitions_app
from ecohub.timeseries.tables import observation_revisions, observations, rollups

CST = dt.timezone(dt.timedelta(hours=8))
# Beijing days on both sides of two month ends: 2023-12-31, 2024-01-01, 2024-01-31, 2024-02-01.
DAYS = [
    dt.datetime(2023, 12, 31, tzinfo=CST),
    dt.datetime(2024, 1, 1, tzinfo=CST),
    dt.datetime(2024, 1, 31, tzinfo=CST),
    dt.datetime(2024, 2, 1, tzinfo=CST),
]
MONTHS = [dt.date(2023, 12, 1), dt.date(2024, 1, 1), dt.date(2024, 2, 1)]
NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def _day_rows(point: int, code: str = "a34004", base: float = 30.0) -> list[Observation]:
    """24 hourly values of each day of ``DAYS`` (its daily mean is valid)."""
    return [
        Observation(point, code, "hour", day + dt.timedelta(hours=h), base + h, "N", 0, "t")
        for day in DAYS
        for h in range(24)
    ]


def _all(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    key = [column for column in table.primary_key.columns]
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(*key))]


def _placement(engine: Engine, table: str) -> dict[str, set[dt.date]]:
    """Partition name → the Beijing months of the rows it holds."""
    found: dict[str, set[dt.date]] = {}
    with engine.connect() as connection:
        for name, ts in connection.exec_driver_sql(
            f"SELECT tableoid::regclass::text, ts FROM {table}"
        ):
            found.setdefault(name, set()).add(partitions.month_of(ts))
    return found


def _assert_in_their_months(engine: Engine, table: str) -> None:
    for name, months in _placement(engine, table).items():
        assert name != partitions.partition_name(table, None), f"{months} left in DEFAULT"
        assert [partitions.partition_name(table, month) for month in months] == [name]


def _pages(engine: Engine) -> list[tuple[Any, ...]]:
    seen, after = [], None
    while True:
        page = read_page(
            engine, start=DAYS[0], end=DAYS[-1] + dt.timedelta(days=1), after=after, limit=17
        )
        seen += [tuple(row[:8]) for row in page.rows]
        if page.next_key is None:
            return seen
        after = page.next_key


# --- the migration -------------------------------------------------------------------


@pytest.fixture
def old_store(postgres_url: str) -> Iterator[Engine]:
    """A PostgreSQL store of its own, migrated only to 0019."""
    name = f"ecohub_test_old_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(
        make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    )
    upgrade(engine, "0019")
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_migration_moves_every_row_into_its_months_partition(
    old_store: Engine, demo_registry_path: Path
) -> None:
    engine = old_store
    import_file(engine, demo_registry_path, "test")
    with engine.connect() as connection:
        point = connection.exec_driver_sql(
            "SELECT id FROM monitoring_points WHERE code = '1001A'"
        ).scalar_one()
    Pipeline(engine, alarms=False).process(_day_rows(point), now=NOW)
    before = {table.name: _all(engine, table) for table in (observations, rollups)}
    pages, latest = _pages(engine), latest_values(engine)
    assert len(before["observations"]) == 96 and len(pages) == 96
    assert {row[2] for row in before["rollups"]} == {"hour", "day"}

    upgrade(engine)

    assert partitions.is_partitioned(engine)
    for table in (observations, rollups):
        assert _all(engine, table) == before[table.name]
        _assert_in_their_months(engine, table.name)
    assert _pages(engine) == pages
    assert latest_values(engine) == latest
    # The daily rollup of the Beijing day 2024-02-01 starts at 2024-01-31 16:00 UTC and
    # is in February's partition, with that day's hours.
    assert partitions.month_of(DAYS[3]) == dt.date(2024, 2, 1)
    placed = _placement(engine, "rollups")
    assert dt.date(2024, 2, 1) in placed[partitions.partition_name("rollups", dt.date(2024, 2, 1))]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    # Created ahead: this month and the three after it.
    names = {found.name for found in partitions.list_partitions(engine)}
    month = partitions.month_of(dt.datetime.now(dt.UTC))
    for _ in range(4):
        assert partitions.partition_name("observations", month) in names
        month = partitions.next_month(month)
    # The revision trigger is on the partitioned table.
    changed = _day_rows(point)[0]._replace(value=99.0)
    write_observations(engine, [changed])
    with engine.connect() as connection:
        revised = connection.execute(select(observation_revisions.c.new_value)).scalars().all()
    assert revised == [99.0]

    config = alembic_config(engine)  # and back: one plain table with every row
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0019")
    with engine.connect() as connection:
        kind = connection.exec_driver_sql(
            "SELECT relkind FROM pg_class WHERE relname = 'observations'"
        )
        assert kind.scalar_one() == "r"
    assert len(_all(engine, observations)) == 96


# --- writes and reads ------------------------------------------------------------------


def test_writes_upserts_and_reads_behave_as_unpartitioned(
    engine: Engine, points: dict[str, int]
) -> None:
    partitions.ensure_months(engine, MONTHS)
    point = points["1001A"]
    rows = _day_rows(point)
    pipeline = Pipeline(engine, alarms=False)
    assert pipeline.process(rows, now=NOW).written == 96
    assert pipeline.process(rows, now=NOW).written == 0  # the same values again: nothing
    assert write_observations(engine, rows).unchanged == 96
    # A believed-new row that is stored after all: COPY into the partitioned table fails,
    # and the batch goes through the upsert.
    with write_transaction(engine) as connection:
        written = insert_new_rows(connection, [rows[30]._replace(value=1.0)], [], NOW)
    assert written.rows == 1
    assert written.fell_back == (engine.dialect.name == "postgresql")
    with engine.connect() as connection:
        revised = connection.execute(select(observation_revisions.c.old_value)).scalars().all()
    assert revised == [rows[30].value]

    stored = read_range(
        engine,
        point_id=point,
        parameter_code="a34004",
        interval="hour",
        start=DAYS[2],
        end=DAYS[3] + dt.timedelta(days=1),
    )
    assert [row.value for row in stored] == [30.0 + h for h in range(24)] * 2
    assert len(_pages(engine)) == 96
    days = [(row[3], row[4], row[8]) for row in _all(engine, rollups) if row[2] == "day"]
    assert days == [(day.astimezone(dt.UTC), 30.0 + 23 / 2, True) for day in DAYS]
    if partitions.is_partitioned(engine):
        _assert_in_their_months(engine, "observations")
        _assert_in_their_months(engine, "rollups")


def test_a_month_without_partition_lands_in_default_and_is_kept(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    far = dt.datetime(2041, 6, 15, 12, tzinfo=dt.UTC)
    rows = [
        Observation(point, "a21026", "hour", far + dt.timedelta(hours=h), 5.0 + h) for h in range(3)
    ]
    assert write_observations(engine, rows).written == 3
    assert write_observations(engine, rows).unchanged == 3
    if partitions.is_partitioned(engine):
        assert _placement(engine, "observations") == {
            partitions.partition_name("observations", None): {dt.date(2041, 6, 1)}
        }
        assert partitions.split_default(engine) == [
            partitions.partition_name("observations", dt.date(2041, 6, 1))
        ]
        _assert_in_their_months(engine, "observations")
    else:
        assert partitions.split_default(engine) == []
    stored = read_range(
        engine,
        point_id=point,
        parameter_code="a21026",
        interval="hour",
        start=far,
        end=far + dt.timedelta(days=1),
    )
    assert [row.value for row in stored] == [5.0, 6.0, 7.0]


def test_a_month_created_later_takes_its_rows_from_default(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    moment = dt.datetime(2042, 3, 1, tzinfo=CST)  # the first instant of March in Beijing
    write_observations(engine, [Observation(point, "a21026", "hour", moment, 1.0)])
    created = partitions.ensure_months(engine, [dt.date(2042, 3, 1)])
    if partitions.is_partitioned(engine):
        assert created == [
            partitions.partition_name(t, dt.date(2042, 3, 1)) for t in partitions.PARTITIONED
        ]
        _assert_in_their_months(engine, "observations")
    else:
        assert created == []
    assert [row[4] for row in _all(engine, observations)] == [1.0]


# --- creating ahead, detaching, attaching --------------------------------------------


def test_ensure_ahead_is_idempotent(engine: Engine) -> None:
    moment = dt.datetime(2044, 12, 20, tzinfo=dt.UTC)
    first = partitions.ensure_ahead(engine, 3, now=moment)
    if not partitions.is_partitioned(engine):
        assert first == [] and partitions.list_partitions(engine) == []
        return
    months = ["2044_12", "2045_01", "2045_02", "2045_03"]
    assert first == [f"partitions.{t}_{m}" for t in partitions.PARTITIONED for m in months]
    assert partitions.ensure_ahead(engine, 3, now=moment) == []
    listed = {found.name: found for found in partitions.list_partitions(engine, exact=True)}
    assert all(listed[name].attached and listed[name].rows == 0 for name in first)
    assert (
        "FROM ('2044-11-30 16:00:00+00') TO ('2044-12-31 16:00:00+00')" in listed[first[0]].bounds
    )
    assert listed["partitions.observations_default"].month is None


def test_detach_and_attach_round_trip_keeps_the_rows(
    engine: Engine, points: dict[str, int]
) -> None:
    month = dt.date(2024, 1, 1)
    with pytest.raises(ValueError, match="stay attached"):
        partitions.detach(engine, dt.date(2026, 11, 1), now=NOW)
    partitions.ensure_months(engine, MONTHS)
    point = points["1001A"]
    Pipeline(engine, alarms=False).process(_day_rows(point), now=NOW)
    before = {table.name: _all(engine, table) for table in (observations, rollups)}
    attached_before = partitions.month_attached(engine, "observations", month)
    detached = partitions.detach(engine, month, now=NOW)
    if not partitions.is_partitioned(engine):
        assert detached == [] and partitions.attach(engine, month) == []
        assert attached_before is None  # no partitions on SQLite
        return
    try:
        assert attached_before is True
        assert partitions.month_attached(engine, "observations", month) is False
        assert detached == ["partitions.observations_2024_01", "partitions.rollups_2024_01"]
        assert partitions.detach(engine, month, now=NOW) == detached  # already detached
        with engine.connect() as connection:
            kept = connection.exec_driver_sql(f"SELECT count(*) FROM {detached[0]}").scalar_one()
        assert kept == 48  # the hours of 2024-01-01 and 2024-01-31
        assert len(_all(engine, observations)) == 48
        # A late value of the detached month is kept in DEFAULT, and merged on attach.
        late = _day_rows(point)[30]._replace(value=-1.0)
        write_observations(engine, [late])
    finally:
        attached = partitions.attach(engine, month)
    assert attached == detached
    assert partitions.month_attached(engine, "rollups", month) is True
    assert partitions.attach(engine, month) == []  # attached already
    after = _all(engine, observations)
    assert len(after) == 96 and after != before["observations"]
    assert [row[4] for row in after if row[3] == _day_rows(point)[30].ts] == [-1.0]
    assert _all(engine, rollups) == before["rollups"]
    _assert_in_their_months(engine, "observations")
    with pytest.raises(LookupError):
        partitions.detach(engine, dt.date(1990, 1, 1), now=NOW)


def test_detach_without_keeping_the_table_drops_the_month(
    engine: Engine, points: dict[str, int]
) -> None:
    month = dt.date(2018, 5, 1)
    partitions.ensure_months(engine, [month])
    moment = dt.datetime(2018, 5, 10, tzinfo=CST)
    write_observations(engine, [Observation(points["P0001"], "a21026", "hour", moment, 1.0)])
    dropped = partitions.detach(engine, month, keep_table=False, now=NOW)
    if partitions.is_partitioned(engine):
        assert dropped == ["partitions.observations_2018_05", "partitions.rollups_2018_05"]
        assert _all(engine, observations) == []
        assert all(found.month != month for found in partitions.list_partitions(engine))
        assert partitions.month_attached(engine, "observations", month) is None  # dropped
    else:
        assert dropped == [] and len(_all(engine, observations)) == 1


def test_commands(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecohub.config import get_settings

    monkeypatch.setenv("ECOHUB_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(partitions_app, ["list"])
    assert listed.exit_code == 0, listed.output
    refused = runner.invoke(partitions_app, ["detach", "2026-12"])
    if database_url.startswith("sqlite"):
        assert "not partitioned" in listed.output
        assert "not partitioned" in refused.output
        return
    assert "partitions.observations_default" in listed.output
    assert refused.exit_code == 2
    created = runner.invoke(partitions_app, ["create", "2045-07", "2045-08"])
    assert created.exit_code == 0 and "partitions.rollups_2045_08" in created.output
    again = runner.invoke(partitions_app, ["ahead", "--months", "1"])
    assert again.exit_code == 0, again.output
