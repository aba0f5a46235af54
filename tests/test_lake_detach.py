"""An old month leaves the live store for the lake only once the lake holds it as the
store has it (both backends; on SQLite, with no partitions, nothing is detached), and a
detached month is never removed or replaced by a later export: the export keeps the
lake's copy, refuses (naming the month) when rows of it arrive in the store meanwhile,
and exports it from the store again once it is attached. Only a lake partitioned by
Beijing months, as the store's partitions are, can detach."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from ecohub.ingest.pipeline import Pipeline
from ecohub.lake import manifest
from ecohub.lake.cli import lake_app
from ecohub.lake.detach import NotInLake, detach_exported
from ecohub.lake.export import DetachedMonthChanged, ExportReport, export
from ecohub.lake.query import run
from ecohub.timeseries import partitions
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.tables import observations

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
TZ = "Asia/Shanghai"


FEBRUARY = dt.date(2024, 2, 1)
# Beijing months in UTC: [2024-01-31 16:00, 2024-02-29 16:00) is February.
BEIJING_FEBRUARY = (
    dt.datetime(2024, 1, 31, 16, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, 16, tzinfo=dt.UTC),
)


def _rows(point: int, day: dt.date) -> list[Observation]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return [
        Observation(point, "a21026", "hour", start + dt.timedelta(hours=h), 10.0 + h, "N", 0, "t")
        for h in range(24)
    ]


def _count(engine: Engine, start: dt.datetime, end: dt.datetime) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(observations.c.ts >= start, observations.c.ts < end)
            ).scalar_one()
        )


def test_a_month_is_detached_only_when_the_lake_holds_it(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    pipeline = Pipeline(engine, alarms=False)
    pipeline.process(_rows(points["P0001"], dt.date(2024, 1, 10)), now=NOW)
    pipeline.process(_rows(points["P0001"], dt.date(2024, 2, 10)), now=NOW)
    january = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    lake = tmp_path / "lake"
    with pytest.raises(NotInLake, match="not in the lake"):
        detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone=TZ)
    # Late data for January after the export: the lake's copy is stale.
    pipeline.process(_rows(points["P0002"], dt.date(2024, 1, 11)), now=NOW)
    with pytest.raises(NotInLake, match="changed since the lake's copy"):
        detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone=TZ)
    names = detach_exported(engine, lake, dt.date(2024, 1, 1), timezone=TZ, now=NOW)
    in_lake = run(lake, "SELECT count(*) AS n FROM observations WHERE year = 2024 AND month = 1")
    assert in_lake["n"][0] == 48
    if engine.dialect.name == "sqlite":
        assert names == [] and _count(engine, *january) == 48
        return
    assert names == ["partitions.observations_2024_01", "partitions.rollups_2024_01"]
    assert _count(engine, *january) == 0  # gone from the live tables, kept in the lake
    states = {p.name: p.attached for p in partitions.list_partitions(engine)}
    assert states["partitions.observations_2024_01"] is False
    partitions.attach(engine, dt.date(2024, 1, 1))
    assert _count(engine, *january) == 48


def _export(engine: Engine, lake: Path) -> ExportReport:
    return export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone=TZ)


def _in_lake(lake: Path, month: int) -> tuple[int, float]:
    """The lake's observations of a month of 2024: rows and the sum of their values."""
    found = run(
        lake,
        "SELECT count(*) AS n, sum(value) AS total FROM observations "
        f"WHERE year = 2024 AND month = {month}",
    )
    return int(found["n"][0]), float(found["total"][0] or 0)


def _shas(lake: Path, table: str, month: str) -> dict[str, str]:
    entry = manifest.load(lake, TZ).tables[table][month]
    return {f["path"]: f["sha256"] for f in entry["files"]}


def _late(pipeline: Pipeline, point: int, moment: dt.datetime) -> None:
    """One late hourly value (5.0) of a month already exported."""
    pipeline.process([Observation(point, "a21026", "hour", moment, 5.0, "N", 0, "t")], now=NOW)


def _three_months(engine: Engine, points: dict[str, int], lake: Path) -> Pipeline:
    """24 hourly values (10.0 … 33.0, sum 516) on the 10th of January, February and
    March 2024 (UTC days, inside their Beijing months), exported."""
    pipeline = Pipeline(engine, alarms=False)
    for month in (1, 2, 3):
        pipeline.process(_rows(points["P0001"], dt.date(2024, month, 10)), now=NOW)
    _export(engine, lake)
    assert [_in_lake(lake, m) for m in (1, 2, 3)] == [(24, 516.0)] * 3
    return pipeline


def _refused_by_the_command(database_url: str, lake: Path) -> None:
    """``ecohub lake export`` says which month it refused and exits with 2."""
    from ecohub.config import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ECOHUB_DATABASE_URL", database_url)
        patch.setenv("ECOHUB_TIMEZONE", TZ)
        patch.setenv("COLUMNS", "400")
        get_settings.cache_clear()
        result = CliRunner().invoke(lake_app, ["export", "--lake", str(lake)])
    get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "2 detached (kept)" in result.output
    assert "ecohub partitions attach 2024-02" in " ".join(result.output.split())


def test_a_detached_month_survives_later_exports(
    engine: Engine, database_url: str, points: dict[str, int], tmp_path: Path
) -> None:
    """The review's two cases: exporting again after a detach emptied the lake's month;
    a late value of the detached month then replaced the month with that value alone."""
    lake = tmp_path / "lake"
    pipeline = _three_months(engine, points, lake)
    before = _shas(lake, "observations", "2024-02")
    names = detach_exported(engine, lake, FEBRUARY, timezone=TZ, now=NOW)
    again = _export(engine, lake)
    assert _in_lake(lake, 2) == (24, 516.0) and _shas(lake, "observations", "2024-02") == before
    assert again.removed == [] and again.written == [] and manifest.check(lake).ok
    late = dt.datetime(2024, 2, 20, tzinfo=dt.UTC)  # 08:00 in Beijing
    if engine.dialect.name == "sqlite":  # nothing detached: the late value is exported
        assert names == [] and again.detached == []
        _late(pipeline, points["P0002"], late)
        assert "observations 2024-02" in _export(engine, lake).written
        assert _in_lake(lake, 2) == (25, 521.0)
        return
    assert again.detached == ["observations 2024-02", "rollups 2024-02"]
    mark = manifest.load(lake, TZ).tables["observations"]["2024-02"]["detached"]
    assert mark == {"at": NOW.isoformat(), "dropped": False}
    assert _count(engine, *BEIJING_FEBRUARY) == 0

    # A late value lands in DEFAULT: the export refuses February, every time, and keeps it.
    _late(pipeline, points["P0002"], late)
    for _ in range(2):
        with pytest.raises(DetachedMonthChanged) as refused:
            _export(engine, lake)
        message = str(refused.value)
        assert "observations 2024-02: detached from the store, and 1 row(s)" in message
        assert "ecohub partitions attach 2024-02" in message
        assert refused.value.report.written == []
        assert _in_lake(lake, 2) == (24, 516.0)
        assert _shas(lake, "observations", "2024-02") == before
    assert manifest.check(lake).ok
    _refused_by_the_command(database_url, lake)

    # Attached again: the mark is cleared and the whole month (24 + 1 late) exported.
    partitions.attach(engine, FEBRUARY)
    attached = _export(engine, lake)
    assert "observations 2024-02" in attached.written and attached.refused == []
    assert _in_lake(lake, 2) == (25, 521.0)
    assert "detached" not in manifest.load(lake, TZ).tables["observations"]["2024-02"]
    assert manifest.check(lake).ok
    assert _export(engine, lake).written == []  # idempotent


def test_a_dropped_month_is_kept_in_the_lake(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores have no partitions: nothing is detached or dropped")
    lake = tmp_path / "lake"
    pipeline = _three_months(engine, points, lake)
    january = dt.date(2024, 1, 1)
    detach_exported(engine, lake, january, timezone=TZ, drop=True, now=NOW)
    assert partitions.month_attached(engine, "observations", january) is None
    assert _export(engine, lake).removed == []
    assert _in_lake(lake, 1) == (24, 516.0)
    with pytest.raises(LookupError, match="dropped already"):
        detach_exported(engine, lake, january, timezone=TZ, drop=True, now=NOW)
    _late(pipeline, points["P0002"], dt.datetime(2024, 1, 20, tzinfo=dt.UTC))
    with pytest.raises(DetachedMonthChanged, match=r"observations 2024-01: .*cannot be attached"):
        _export(engine, lake)
    assert _in_lake(lake, 1) == (24, 516.0) and manifest.check(lake).ok
    # Even a partition made again for January (its late row alone) does not replace it.
    partitions.split_default(engine)
    assert partitions.month_attached(engine, "observations", january) is True
    with pytest.raises(DetachedMonthChanged, match="2024-01"):
        _export(engine, lake)
    assert _in_lake(lake, 1) == (24, 516.0)


def test_a_month_detached_without_the_lake_is_kept_and_marked(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    """``ecohub partitions detach`` does not ask the lake; the export sees the detached
    partition, keeps the lake's month and marks it."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores have no partitions: nothing is detached")
    lake = tmp_path / "lake"
    _three_months(engine, points, lake)
    partitions.detach(engine, FEBRUARY, now=NOW)  # a month between two stored ones
    assert partitions.month_attached(engine, "observations", FEBRUARY) is False
    kept = _export(engine, lake)
    assert "observations 2024-02" in kept.detached and kept.removed == []
    assert _in_lake(lake, 2) == (24, 516.0)
    entry = manifest.load(lake, TZ).tables["observations"]["2024-02"]
    assert entry["detached"] == {"at": None, "dropped": False}
    # `ecohub lake detach` of it checks the detached table against the lake, then drops it.
    assert detach_exported(engine, lake, FEBRUARY, timezone=TZ, drop=True, now=NOW)
    entry = manifest.load(lake, TZ).tables["observations"]["2024-02"]
    assert entry["detached"] == {"at": NOW.isoformat(), "dropped": True}
    assert partitions.month_attached(engine, "observations", FEBRUARY) is None
    assert _export(engine, lake).removed == [] and _in_lake(lake, 2) == (24, 516.0)


def test_a_month_detached_then_attached_is_exported_as_usual(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores have no partitions: nothing is detached")
    lake = tmp_path / "lake"
    pipeline = _three_months(engine, points, lake)
    detach_exported(engine, lake, FEBRUARY, timezone=TZ, now=NOW)
    partitions.attach(engine, FEBRUARY)
    assert partitions.month_attached(engine, "observations", FEBRUARY) is True
    assert _export(engine, lake).written == []  # the store holds what the lake does
    assert "detached" not in manifest.load(lake, TZ).tables["observations"]["2024-02"]
    # Late data of an attached month rewrites it (24 + 1 rows), as for any month.
    _late(pipeline, points["P0002"], dt.datetime(2024, 2, 20, tzinfo=dt.UTC))
    assert "observations 2024-02" in _export(engine, lake).written
    assert _in_lake(lake, 2) == (25, 521.0)


def test_only_a_lake_of_beijing_months_can_detach(
    engine: Engine, points: dict[str, int], tmp_path: Path
) -> None:
    """The partitions hold Beijing months; a UTC lake's January ends 8 hours later, so
    its check would not cover the partition's rows: refused, nothing detached."""
    pipeline = Pipeline(engine, alarms=False)
    pipeline.process(_rows(points["P0001"], dt.date(2024, 1, 10)), now=NOW)
    lake = tmp_path / "utc-lake"
    export(engine, lake, now=NOW, delay=dt.timedelta(hours=72), timezone="UTC")
    with pytest.raises(ValueError, match=r"months of UTC .* months of Asia/Shanghai"):
        detach_exported(engine, lake, dt.date(2024, 1, 1), timezone="UTC", now=NOW)
    january = (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    assert _count(engine, *january) == 24
    if engine.dialect.name == "postgresql":
        january_month = dt.date(2024, 1, 1)
        assert partitions.month_attached(engine, "observations", january_month) is True
