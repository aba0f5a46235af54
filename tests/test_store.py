"""The time-series store on both backends: idempotent bulk writes, revisions, reads."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import polars as pl
from sqlalchemy import Engine, select

from ecohub.db.engine import write_transaction
from ecohub.db.quarantine import list_quarantine
from ecohub.timeseries.export import export_range
from ecohub.timeseries.observations import (
    Observation,
    count_observations,
    insert_new_rows,
    latest_values,
    read_page,
    read_range,
    write_observations,
)
from ecohub.timeseries.tables import observation_revisions

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2024, 1, 15, 8, 0, tzinfo=CST)


def _hourly(point_id: int, hours: int, parameter: str = "a21026", base: float = 20.0):
    return [
        Observation(
            point_id, parameter, "hour", T0 + dt.timedelta(hours=h), base + h, "N", 0, "test"
        )
        for h in range(hours)
    ]


def test_write_then_read_range_round_trips_values_and_time_zone(
    engine: Engine, points: dict[str, int]
) -> None:
    rows = _hourly(points["P0001"], 24)
    result = write_observations(engine, rows)
    assert (result.received, result.written, result.unchanged, result.rejected) == (24, 24, 0, 0)
    stored = read_range(
        engine,
        point_id=points["P0001"],
        parameter_code="a21026",
        interval="hour",
        start=T0,
        end=T0 + dt.timedelta(days=1),
    )
    assert [r.value for r in stored] == [20.0 + h for h in range(24)]
    assert stored[0].ts == T0  # 08:00+08:00 is 00:00 UTC, returned aware
    assert stored[0].ts.tzinfo is not None
    assert stored[0].ts.utcoffset() == dt.timedelta(0)


def test_same_batch_twice_yields_same_rows_and_no_revisions(
    engine: Engine, points: dict[str, int]
) -> None:
    rows = _hourly(points["P0001"], 48) + _hourly(points["P0002"], 48, "w01018", 30.0)
    first = write_observations(engine, rows)
    before = read_page(engine, start=T0, end=T0 + dt.timedelta(days=3), limit=1000).rows
    second = write_observations(engine, rows)
    after = read_page(engine, start=T0, end=T0 + dt.timedelta(days=3), limit=1000).rows
    assert first.written == 96
    assert (second.written, second.unchanged) == (0, 96)
    assert before == after  # including ingested_at: nothing was touched
    with engine.connect() as connection:
        assert connection.execute(select(observation_revisions)).all() == []


def test_corrected_value_updates_and_is_audited(engine: Engine, points: dict[str, int]) -> None:
    rows = _hourly(points["P0001"], 3)
    write_observations(engine, rows)
    corrected = [rows[1]._replace(value=99.5, source="manual")]
    flagged = [rows[2]._replace(data_flag="C")]
    assert write_observations(engine, corrected + flagged).written == 2
    stored = read_range(
        engine,
        point_id=points["P0001"],
        parameter_code="a21026",
        interval="hour",
        start=T0,
        end=T0 + dt.timedelta(hours=3),
    )
    assert [(r.value, r.data_flag) for r in stored] == [(20.0, "N"), (99.5, "N"), (22.0, "C")]
    with engine.connect() as connection:
        revisions = connection.execute(
            select(observation_revisions).order_by(observation_revisions.c.ts)
        ).all()
    assert [(r.old_value, r.new_value, r.old_data_flag, r.new_data_flag) for r in revisions] == [
        (21.0, 99.5, "N", "N"),
        (22.0, 22.0, "N", "C"),
    ]
    assert revisions[0].old_source == "test" and revisions[0].new_source == "manual"
    assert revisions[0].ts == T0 + dt.timedelta(hours=1)


def test_rows_believed_new_but_stored_fall_back_to_the_upsert(
    engine: Engine, points: dict[str, int]
) -> None:
    # A writer believes its rows new (it has not seen another writer store one of them):
    # the plain insert must not fail the batch nor double a row, and the stored value
    # that differs is corrected and audited as any re-sent value.
    point = points["P0001"]
    write_observations(engine, _hourly(point, 1, base=5.0))  # hour 0 holds 5.0
    rows = _hourly(point, 3)  # 20.0, 21.0, 22.0 at hours 0-2
    now = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    with write_transaction(engine) as connection:
        written = insert_new_rows(connection, rows[1:], [], now)
    assert written == (2, False) or engine.dialect.name == "sqlite"
    with write_transaction(engine) as connection:
        written = insert_new_rows(connection, rows, [], now)
    # Hour 0 changes (5.0 → 20.0); hours 1 and 2 are stored as sent, so unchanged.
    assert written.rows == 1
    assert written.fell_back == (engine.dialect.name == "postgresql")
    stored = read_range(
        engine,
        point_id=point,
        parameter_code="a21026",
        interval="hour",
        start=T0,
        end=T0 + dt.timedelta(days=1),
    )
    assert [r.value for r in stored] == [20.0, 21.0, 22.0]
    with engine.connect() as connection:
        revisions = connection.execute(select(observation_revisions.c.old_value)).all()
    assert [r.old_value for r in revisions] == [5.0]


def test_duplicates_inside_a_batch_keep_the_last(engine: Engine, points: dict[str, int]) -> None:
    row = _hourly(points["P0001"], 1)[0]
    result = write_observations(engine, [row, row._replace(value=1.0), row._replace(value=2.0)])
    assert (result.written, result.duplicates) == (1, 2)
    assert [r.value for r in latest_values(engine, point_ids=[points["P0001"]])] == [2.0]


def test_bad_rows_are_quarantined_and_good_rows_written(
    engine: Engine, points: dict[str, int]
) -> None:
    good = _hourly(points["P0001"], 5)
    bad = [
        good[0]._replace(point_id=999_999),
        good[1]._replace(data_flag="X"),
        good[2]._replace(interval="week"),
        good[3]._replace(ts=dt.datetime(2024, 1, 1, 0, 0)),
        good[4]._replace(value=math.nan),
    ]
    result = write_observations(engine, good[:2] + bad + good[2:])
    assert (result.written, result.rejected) == (5, 5)
    assert count_observations(engine) == 5
    reasons = sorted(row.reason for row in list_quarantine(engine))
    assert any("unknown monitoring point id 999999" in r for r in reasons)
    assert any("data flag 'X'" in r for r in reasons)
    assert any("interval 'week'" in r for r in reasons)
    assert any("has no time zone" in r for r in reasons)
    assert any("not a finite number" in r for r in reasons)


def test_latest_values_per_point_and_parameter(engine: Engine, points: dict[str, int]) -> None:
    write_observations(
        engine,
        _hourly(points["P0001"], 10)
        + _hourly(points["P0001"], 4, "a21002", 40.0)
        + _hourly(points["1001A"], 6, "a34004", 50.0),
    )
    latest = latest_values(engine)
    assert [(r.point_id, r.parameter_code, r.value) for r in latest] == sorted(
        [
            (points["P0001"], "a21026", 29.0),
            (points["P0001"], "a21002", 43.0),
            (points["1001A"], "a34004", 55.0),
        ]
    )
    only = latest_values(engine, parameter_codes=["a21002"])
    assert [r.ts for r in only] == [T0 + dt.timedelta(hours=3)]


def test_pages_cover_every_row_exactly_once(engine: Engine, points: dict[str, int]) -> None:
    rows = []
    for code in ("P0001", "P0002", "1001A"):
        rows += _hourly(points[code], 30)
        rows += _hourly(points[code], 30, "a21002")
    write_observations(engine, rows)
    seen = []
    after = None
    pages = 0
    while True:
        page = read_page(engine, start=T0, end=T0 + dt.timedelta(days=2), after=after, limit=7)
        seen += page.rows
        pages += 1
        if page.next_key is None:
            break
        after = page.next_key
    assert len(seen) == 180 and pages == math.ceil(180 / 7)
    keys = [(r.ts, r.point_id, r.parameter_code, r.interval) for r in seen]
    assert keys == sorted(keys) and len(set(keys)) == 180
    filtered = read_page(
        engine,
        start=T0,
        end=T0 + dt.timedelta(days=2),
        point_ids=[points["1001A"]],
        parameter_codes=["a21002"],
        interval="hour",
        limit=100,
    )
    assert len(filtered.rows) == 30 and filtered.next_key is None


def test_export_csv_and_parquet(engine: Engine, points: dict[str, int], tmp_path: Path) -> None:
    write_observations(
        engine, _hourly(points["P0001"], 24) + _hourly(points["1001A"], 24, "a34004", 50.0)
    )
    start, end = T0 + dt.timedelta(hours=2), T0 + dt.timedelta(hours=12)
    csv_path = tmp_path / "out.csv"
    assert export_range(engine, csv_path, "csv", start, end) == 20
    frame = pl.read_csv(csv_path)
    assert frame.columns[:4] == ["point_code", "parameter_code", "interval", "ts"]
    assert frame["ts"][0] == "2024-01-15T02:00:00+00:00"
    parquet_path = tmp_path / "out.parquet"
    assert export_range(engine, parquet_path, "parquet", start, end, point_code="1001A") == 10
    parquet = pl.read_parquet(parquet_path)
    assert parquet["value"].to_list() == [52.0 + h for h in range(10)]
    assert set(parquet["point_code"]) == {"1001A"}
