"""The ingestion pipeline: quality flags, rollups with their validity rules, late data and
station AQI, on both backends. Expected values are computed by hand from the standards'
tables (HJ 633-2012 Table 1) and the validity rules (GB 3095-2012 Table 4, HJ 75-2017)."""

from __future__ import annotations

import datetime as dt
import functools
import operator
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from ecohub.db.types import epoch_seconds
from ecohub.ingest.pipeline import Pipeline, PipelineResult
from ecohub.quality.flags import QualityFlag, describe, is_valid
from ecohub.registry.models import MonitoringPoint
from ecohub.timeseries.observations import Observation
from ecohub.timeseries.queue import queue_hours, take_queued_hours
from ecohub.timeseries.tables import (
    observation_revisions,
    observations,
    rollup_queue,
    rollups,
    station_aqi,
)

UTC = dt.UTC
CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2024, 1, 15, 0, 0, tzinfo=UTC)
DAY_CST = dt.datetime(2024, 1, 15, 0, 0, tzinfo=CST)
NOW = dt.datetime(2024, 3, 1, tzinfo=UTC)


def _minute(point: int, code: str, minute: int, value: float | None, flag: str = "N"):
    return Observation(point, code, "min", T0 + dt.timedelta(minutes=minute), value, flag, 0, "t")


def _hour(point: int, code: str, start: dt.datetime, hour: int, value: float | None):
    return Observation(point, code, "hour", start + dt.timedelta(hours=hour), value, "N", 0, "t")


def _flags(engine: Engine, point: int, code: str, interval: str) -> list[int]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(observations.c.quality_flag)
                .where(
                    observations.c.point_id == point,
                    observations.c.parameter_code == code,
                    observations.c.interval == interval,
                )
                .order_by(observations.c.ts)
            ).scalars()
        )


def _rollup(engine: Engine, point: int, code: str, period: str, ts: dt.datetime):
    with engine.connect() as connection:
        return connection.execute(
            select(rollups).where(
                rollups.c.point_id == point,
                rollups.c.parameter_code == code,
                rollups.c.period == period,
                rollups.c.ts == ts,
            )
        ).one_or_none()


def _aqi(engine: Engine, point: int, period: str, ts: dt.datetime):
    with engine.connect() as connection:
        return connection.execute(
            select(station_aqi).where(
                station_aqi.c.point_id == point,
                station_aqi.c.period == period,
                station_aqi.c.ts == ts,
            )
        ).one_or_none()


# --- rollups ---------------------------------------------------------------------------


@pytest.mark.parametrize(("valid_values", "valid"), [(6, True), (5, True), (4, False)])
def test_hourly_mean_from_minute_data_needs_45_minutes(
    engine: Engine, points: dict[str, int], valid_values: int, valid: bool
) -> None:
    point = points["P0001"]  # flue-gas outlet, 10-minute data
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
    rows = []
    for i, value in enumerate(values):
        flag = "N" if i < valid_values else "M"  # M: maintenance, not valid
        rows.append(_minute(point, "a21026", 10 * i, value, flag))
        rows.append(_minute(point, "a00000", 10 * i, 5.0))
    Pipeline(engine).process(rows, now=NOW)
    hour = _rollup(engine, point, "a21026", "hour", T0)
    assert hour.valid is valid
    assert hour.samples == valid_values and hour.received == 6
    assert hour.basis == "min"
    expected = sum(values[:valid_values]) / valid_values
    assert hour.value == pytest.approx(expected)


def test_reported_hourly_value_wins_over_minute_data(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    rows = [_minute(point, "a21026", 10 * i, 10.0 + i) for i in range(6)]
    rows += [_minute(point, "a00000", 10 * i, 5.0) for i in range(6)]
    rows.append(Observation(point, "a21026", "hour", T0, 99.0, "N", 0, "t"))
    rows.append(Observation(point, "a00000", "hour", T0, 5.0, "N", 0, "t"))
    Pipeline(engine).process(rows, now=NOW)
    hour = _rollup(engine, point, "a21026", "hour", T0)
    assert (hour.value, hour.basis, hour.valid) == (99.0, "hour", True)


def test_emitted_mass_is_summed(engine: Engine, points: dict[str, int]) -> None:
    point = points["P0001"]
    rows = [_minute(point, "a21026-Cou", 10 * i, 0.5 * (i + 1)) for i in range(6)]
    Pipeline(engine).process(rows, now=NOW)
    hour = _rollup(engine, point, "a21026-Cou", "hour", T0)
    assert hour.statistic == "sum"
    assert hour.value == pytest.approx(0.5 + 1 + 1.5 + 2 + 2.5 + 3)


def test_daily_mean_needs_20_hours_and_late_value_recomputes_the_day(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["1001A"]  # ambient air station, hourly data
    pipeline = Pipeline(engine)
    pipeline.process([_hour(point, "a34004", DAY_CST, h, 30.0 + h) for h in range(19)], now=NOW)
    day = _rollup(engine, point, "a34004", "day", DAY_CST)
    assert day.valid is False and day.samples == 19  # one hour too few (GB 3095 Table 4)
    assert _aqi(engine, point, "day", DAY_CST).aqi is None

    # The 20th hour arrives late, after the day was computed.
    pipeline.process([_hour(point, "a34004", DAY_CST, 19, 49.0)], now=NOW)
    day = _rollup(engine, point, "a34004", "day", DAY_CST)
    assert day.valid is True and day.samples == 20
    assert day.value == pytest.approx(sum(30.0 + h for h in range(20)) / 20)  # 39.5
    # HJ 633 Table 1, PM2.5 24 h: 35→50, 75→100; IAQI(39.5) = 50 + 50/40 × 4.5 = 55.6 → 56
    daily = _aqi(engine, point, "day", DAY_CST)
    assert daily.aqi == 56
    assert daily.primary_pollutants == "PM2.5"
    # The day before and after were never touched.
    with engine.connect() as connection:
        days = connection.execute(
            select(func.count()).where(rollups.c.period == "day", rollups.c.point_id == point)
        ).scalar()
    assert days == 1


def test_hour_flags_are_the_union_of_its_values_flags(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    values = [(10.0, "N"), (11.0, "M"), (-1.0, "N"), (13.0, "N"), (14.0, "N"), (15.0, "N")]
    rows = [_minute(point, "a21026", 10 * i, value, flag) for i, (value, flag) in enumerate(values)]
    rows += [_minute(point, "a00000", 10 * i, 5.0) for i in range(6)]
    Pipeline(engine).process(rows, now=NOW)
    hour = _rollup(engine, point, "a21026", "hour", T0)
    stored = _flags(engine, point, "a21026", "min")
    assert hour.flags == functools.reduce(operator.or_, stored)
    assert hour.flags & QualityFlag.DEVICE_FLAG and hour.flags & QualityFlag.NEGATIVE
    # Four valid values cover 40 minutes: shown, but not a valid hour (HJ 75-2017 11.2).
    assert (hour.samples, hour.received, hour.valid) == (4, 6, False)
    assert hour.value == pytest.approx((10 + 13 + 14 + 15) / 4)


def test_real_time_converted_values_roll_up_into_the_converted_mean(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]  # real-time values every 60 s
    at = [T0 + dt.timedelta(minutes=i) for i in range(45)]
    rows = [
        Observation(point, "a21026-ZsRtd", "rt", ts, 20 + 0.01 * i, "N", 0, "t")
        for i, ts in enumerate(at)
    ]
    rows += [Observation(point, "a00000", "rt", ts, 5.0, "N", 0, "t") for ts in at]
    Pipeline(engine).process(rows, now=NOW)
    hour = _rollup(engine, point, "a21026-ZsAvg", "hour", T0)
    assert (hour.basis, hour.samples, hour.valid) == ("rt", 45, True)  # 45 × 60 s = 45 min
    assert hour.value == pytest.approx(20 + 0.01 * 22)  # mean of 20.00 … 20.44


def test_daily_sum_maximum_and_minimum_of_a_source(engine: Engine, points: dict[str, int]) -> None:
    point = points["P0001"]  # hourly or faster: 20 valid hours of 24 make a valid day
    rows = []
    for h in range(20):
        rows.append(_hour(point, "a21026-Cou", DAY_CST, h, 0.5 * (h + 1)))
        rows.append(_hour(point, "a21026-Max", DAY_CST, h, 40.0 + h))
        rows.append(_hour(point, "a21026-Min", DAY_CST, h, 10.0 - 0.1 * h))
        rows.append(_hour(point, "a00000", DAY_CST, h, 5.0))
    Pipeline(engine).process(rows, now=NOW)
    mass = _rollup(engine, point, "a21026-Cou", "day", DAY_CST)
    assert (mass.statistic, mass.samples, mass.received, mass.valid) == ("sum", 20, 20, True)
    assert mass.value == pytest.approx(0.5 * 210)  # 0.5 × (1 + 2 + … + 20)
    assert _rollup(engine, point, "a21026-Max", "day", DAY_CST).value == pytest.approx(59.0)
    assert _rollup(engine, point, "a21026-Min", "day", DAY_CST).value == pytest.approx(8.1)


def test_hourly_aqi_converts_units_and_names_the_primary_pollutant(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["1001A"]
    rows = [
        Observation(point, "a34004", "hour", T0, 30.0, "N", 0, "t"),
        Observation(point, "a21026", "hour", T0, 0.2, "N", 0, "t"),  # mg/m³ = 200 μg/m³
    ]
    Pipeline(engine).process(rows, now=NOW)
    hourly = _aqi(engine, point, "hour", T0)
    # SO2 1 h: 150→50, 500→100; IAQI(200) = 50 + 50 × 50/350 = 57.1 → 58.
    # PM2.5 (24 h breakpoints, HJ 633 5.2): IAQI(30) = 50 × 30/35 = 42.9 → 43.
    assert hourly.aqi == 58
    assert hourly.primary_pollutants == "SO2"
    assert hourly.level == 2


def test_daily_o3_uses_the_maximum_8_hour_mean(engine: Engine, points: dict[str, int]) -> None:
    point = points["1001A"]
    # 24 hourly O3 values: 100 everywhere except 8 hours of 200 from local 10:00 to 17:00.
    values = [200.0 + (h % 2) if 10 <= h < 18 else 100.0 + (h % 3) for h in range(24)]
    Pipeline(engine).process([_hour(point, "a05024", DAY_CST, h, v) for h, v in enumerate(values)])
    peak = _rollup(engine, point, "a05024-8hmax", "day", DAY_CST)
    assert peak.valid and peak.value == pytest.approx(sum(values[10:18]) / 8)
    assert _rollup(engine, point, "a05024-1hmax", "day", DAY_CST).value == 201.0
    # HJ 633 Table 1, O3 8 h: 160→100, 215→150; IAQI(200.5) = 100 + 50 × 40.5/55 = 136.8 → 137
    assert _aqi(engine, point, "day", DAY_CST).aqi == 137


# --- quality control ---------------------------------------------------------------------


def test_spike_is_flagged_when_the_next_value_arrives(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["1001A"]
    pipeline = Pipeline(engine)
    first = pipeline.process(
        [_hour(point, "a34004", T0, h, v) for h, v in enumerate([40, 41, 300])]
    )
    assert first.flagged == 0  # the last value has no right neighbour yet
    second = pipeline.process([_hour(point, "a34004", T0, h, v) for h, v in [(3, 42), (4, 43)]])
    assert second.reflagged == 1
    assert _flags(engine, point, "a34004", "hour") == [0, 0, QualityFlag.SPIKE, 0, 0]
    # The spike's hour is no longer valid, and its hourly AQI is gone with it.
    assert _rollup(engine, point, "a34004", "hour", T0 + dt.timedelta(hours=2)).valid is False


def test_flat_line_across_batches_flags_the_whole_run(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["1001A"]
    pipeline = Pipeline(engine)
    batches = [[0, 1, 2], [3, 4], [5, 6]]
    for hours in batches:
        pipeline.process([_hour(point, "a34004", T0, h, 50.0) for h in hours], now=NOW)
    # Seven equal hourly values span six hours: the PM2.5 flat-line limit.
    assert _flags(engine, point, "a34004", "hour") == [QualityFlag.FLAT_LINE] * 7
    # A new pipeline (a restart) continues the run from the store.
    Pipeline(engine).process([_hour(point, "a34004", T0, 7, 50.0)], now=NOW)
    assert _flags(engine, point, "a34004", "hour") == [QualityFlag.FLAT_LINE] * 8
    assert _rollup(engine, point, "a34004", "hour", T0).valid is False


def test_five_equal_hours_are_not_a_flat_line(engine: Engine, points: dict[str, int]) -> None:
    point = points["1001A"]
    Pipeline(engine).process([_hour(point, "a34004", T0, h, 50.0) for h in range(6)], now=NOW)
    assert _flags(engine, point, "a34004", "hour") == [0] * 6


def test_a_plateau_at_the_reporting_resolution_is_not_a_flat_line(
    engine: Engine, points: dict[str, int]
) -> None:
    """Ambient SO2 published at 3 μg/m³ for fourteen hours (Beijing stations, 2019-10-28
    18:00 onwards: clean air at the CNEMC files' resolution) is not a stuck analyser:
    ``flat_floor`` of the ambient row is 0.01 mg/m³. In a flue the same code has no
    floor, and twelve hours of a constant 3 mg/m³ are a flat line."""
    station, outlet = points["1001A"], points["P0001"]
    pipeline = Pipeline(engine)
    pipeline.process([_hour(station, "a21026", T0, h, 0.003) for h in range(14)], now=NOW)
    assert _flags(engine, station, "a21026", "hour") == [0] * 14
    # Ten times higher, the same run is a flat line at the station too.
    pipeline.process([_hour(station, "a21026", T0, h, 0.03) for h in range(14, 28)], now=NOW)
    assert _flags(engine, station, "a21026", "hour")[14:] == [QualityFlag.FLAT_LINE] * 14
    rows = [
        _hour(outlet, code, T0, h, value)
        for h in range(13)
        for code, value in (("a21026", 3.0), ("a00000", 6.5 + h))
    ]
    pipeline.process(rows, now=NOW)
    assert _flags(engine, outlet, "a21026", "hour") == [QualityFlag.FLAT_LINE] * 13


def test_a_constant_run_does_not_bridge_a_gap(engine: Engine, points: dict[str, int]) -> None:
    """Four equal hours, a day without data, four more equal hours: not a flat line (the
    station came back with the value it left); within one batch and across batches."""
    first, second = points["1001A"], points["1002A"]
    pipeline = Pipeline(engine)
    hours = [0, 1, 2, 3, 28, 29, 30, 31]
    pipeline.process([_hour(first, "a34004", T0, h, 50.0) for h in hours], now=NOW)
    assert _flags(engine, first, "a34004", "hour") == [0] * 8
    pipeline.process([_hour(second, "a34004", T0, h, 50.0) for h in hours[:4]], now=NOW)
    pipeline.process([_hour(second, "a34004", T0, h, 50.0) for h in hours[4:]], now=NOW)
    assert _flags(engine, second, "a34004", "hour") == [0] * 8
    # Three more hours after the gap make a run of seven: flagged from the gap on.
    pipeline.process([_hour(second, "a34004", T0, h, 50.0) for h in (32, 33, 34)], now=NOW)
    assert _flags(engine, second, "a34004", "hour") == [0] * 4 + [QualityFlag.FLAT_LINE] * 7


def test_zero_or_missing_flow_flags_concentrations(engine: Engine, points: dict[str, int]) -> None:
    point = points["P0001"]
    rows = [
        _minute(point, "a21026", 0, 20.0),
        _minute(point, "a00000", 0, 0.0),  # flow zero
        _minute(point, "a21026", 10, 21.0),  # no flow in this message
        _minute(point, "a21026", 20, 22.0),
        _minute(point, "a00000", 20, 6.5),
    ]
    Pipeline(engine).process(rows, now=NOW)
    zero = int(QualityFlag.ZERO_FLOW)
    assert _flags(engine, point, "a21026", "min") == [zero, zero, 0]
    assert _flags(engine, point, "a00000", "min") == [0, 0]


def test_point_checks(engine: Engine, points: dict[str, int]) -> None:
    point = points["1001A"]
    rows = [
        Observation(point, "a21026", "hour", T0, -0.001, "N", 0, "t"),
        Observation(point, "a34004", "hour", T0, 6000.0, "N", 0, "t"),
        Observation(point, "a34002", "hour", T0, 80.0, "D", 0, "t"),
        Observation(point, "a05024", "hour", NOW + dt.timedelta(hours=2), 80.0, "N", 0, "t"),
        Observation(point, "a21004", "hour", dt.datetime(2000, 1, 1, tzinfo=UTC), 0.03),
        Observation(point, "a21005", "hour", T0, 0.8, "T", 0, "t"),  # T: over range, valid
    ]
    Pipeline(engine).process(rows, now=NOW)
    with engine.connect() as connection:
        stored = dict(
            connection.execute(select(observations.c.parameter_code, observations.c.quality_flag))
            .tuples()
            .all()
        )
    assert describe(stored["a21026"]) == ["range", "negative"]
    assert describe(stored["a34004"]) == ["range"]
    assert describe(stored["a34002"]) == ["device_flag"]
    assert describe(stored["a05024"]) == ["future_time"]
    assert describe(stored["a21004"]) == ["past_time"]
    assert stored["a21005"] == 0


def test_conflicting_resend_is_flagged_audited_and_still_valid(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["1001A"]
    pipeline = Pipeline(engine)
    pipeline.process([_hour(point, "a34004", T0, 0, 40.0)], now=NOW)
    again = pipeline.process([_hour(point, "a34004", T0, 0, 40.0)], now=NOW)
    assert again.written == 0 and again.unchanged == 1  # an identical re-send changes nothing
    pipeline.process([_hour(point, "a34004", T0, 0, 44.0)], now=NOW)
    (flag,) = _flags(engine, point, "a34004", "hour")
    assert flag == QualityFlag.CONFLICTING_DUPLICATE and is_valid(flag)
    with engine.connect() as connection:
        revision = connection.execute(select(observation_revisions)).one()
    assert (revision.old_value, revision.new_value) == (40.0, 44.0)
    assert _rollup(engine, point, "a34004", "hour", T0).value == 44.0


def test_whole_batch_rolls_back_on_error(engine: Engine, points: dict[str, int]) -> None:
    point = points["1001A"]
    pipeline = Pipeline(engine)
    pipeline.process([_hour(point, "a34004", T0, h, 40.0 + h) for h in range(3)], now=NOW)
    bad = [_hour(point, "a34004", T0, 3, 44.0), _hour(point, "a34004", T0, 4, 45.0)]
    original = pipeline.directory.points
    pipeline.directory.points = {}  # makes the rollup step fail after the raw write
    pipeline.directory.ids = lambda wanted=(): set(original)  # type: ignore[method-assign]
    with pytest.raises(KeyError):
        pipeline.process(bad, now=NOW)
    assert len(_flags(engine, point, "a34004", "hour")) == 3  # nothing of the batch stayed
    pipeline.directory = type(pipeline.directory)(engine)
    pipeline.process(bad, now=NOW)  # the retry stores it, with the state restored
    assert len(_flags(engine, point, "a34004", "hour")) == 5


# --- deferred rollups (the long-running writers) ---------------------------------------


def _queued(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(rollup_queue)).scalar())


def test_deferred_rollups_are_queued_then_computed_once_by_the_rule(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]  # flue-gas outlet, 10-minute data
    pipeline = Pipeline(engine, rollup_delay=3600)
    pipeline.flush_rollups(now=NOW)  # the start-up flush: nothing left from a crash
    assert not pipeline.rollups_due()
    for first in (0, 2, 4):  # three batches touch the same hour
        rows = [_minute(point, "a21026", 10 * i, 10.0 + i) for i in (first, first + 1)]
        rows += [_minute(point, "a00000", 10 * i, 5.0) for i in (first, first + 1)]
        result = pipeline.process(rows, now=NOW)
        assert result.hours_recomputed == 0 and result.hours_queued == 2
    assert _rollup(engine, point, "a21026", "hour", T0) is None
    assert _queued(engine) == 2  # one entry per series hour, however many batches
    assert not pipeline.rollups_due()  # an hour's delay has not passed

    flushed = pipeline.flush_rollups(now=NOW)
    assert flushed.hours_recomputed == 2
    hour = _rollup(engine, point, "a21026", "hour", T0)
    assert (hour.samples, hour.valid) == (6, True)
    assert hour.value == pytest.approx(12.5)  # (10 + 11 + … + 15) / 6
    assert _queued(engine) == 0


def test_rollups_queued_before_a_crash_are_computed_by_the_next_writer(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    rows = [_minute(point, "a21026-Cou", 10 * i, 0.5 * (i + 1)) for i in range(6)]
    Pipeline(engine, rollup_delay=3600).process(rows, now=NOW)  # never flushed
    assert _rollup(engine, point, "a21026-Cou", "hour", T0) is None

    restarted = Pipeline(engine, rollup_delay=3600)
    assert restarted.rollups_due()  # at start, whatever the delay
    restarted.flush_rollups(now=NOW)
    assert _rollup(engine, point, "a21026-Cou", "hour", T0).value == pytest.approx(10.5)
    assert _queued(engine) == 0


def test_an_hour_queued_again_while_being_recomputed_stays_queued(
    engine: Engine, points: dict[str, int]
) -> None:
    """The queue entry carries the token of the batch that queued it last; taking the
    queue removes only the tokens it read."""
    point = points["P0001"]
    hour = (point, "a21026", T0)
    with engine.begin() as connection:
        queue_hours(connection, {hour})
    with engine.begin() as connection:
        tokens = set(connection.execute(select(rollup_queue.c.token)).scalars())
        queue_hours(connection, {hour})  # another batch touches the hour meanwhile
        connection.execute(delete(rollup_queue).where(rollup_queue.c.token.in_(tokens)))
    assert _queued(engine) == 1
    with engine.begin() as connection:
        assert take_queued_hours(connection) == {hour}
    assert _queued(engine) == 0


def test_a_part_of_the_queue_takes_the_oldest_hours_and_leaves_the_rest(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    hours = [(point, "a21026", T0 + dt.timedelta(hours=h)) for h in range(5)]
    with engine.begin() as connection:
        queue_hours(connection, set(hours))  # one token for all five
    with engine.begin() as connection:
        assert take_queued_hours(connection, limit=2) == set(hours[:2])
    assert _queued(engine) == 3  # the batch's token did not take its other hours along
    with engine.begin() as connection:
        assert take_queued_hours(connection, limit=10) == set(hours[2:])
    assert _queued(engine) == 0


def _three_queued_hours(engine: Engine, point: int) -> Pipeline:
    """A deferring pipeline that has written three hours of 10-minute data (six values
    make a valid hour; means 2.5, 8.5, 14.5) with flow, and queued their six hours."""
    pipeline = Pipeline(engine, rollup_delay=3600)
    pipeline.flush_rollups(now=NOW)
    rows = [
        Observation(
            point, "a21026", "min", T0 + dt.timedelta(minutes=10 * i), float(i), "N", 0, "t"
        )
        for i in range(18)
    ]
    rows += [_minute(point, "a00000", 10 * i, 5.0) for i in range(18)]
    pipeline.process(rows, now=NOW)
    return pipeline


def test_chunked_flush_yields_to_a_waiting_batch_and_computes_every_hour_at_last(
    engine: Engine, points: dict[str, int]
) -> None:
    point = points["P0001"]
    pipeline = _three_queued_hours(engine, point)
    assert _queued(engine) == 6

    pipeline.flush_rollups_between(lambda: True, chunk=1)  # a batch is waiting at once
    # The rest is still due: at once when idle, paced while batches keep coming.
    assert _queued(engine) == 5 and pipeline.rollups_due(busy=False)
    pipeline.flush_rollups_between(lambda: False, chunk=1)
    # The third hour is the hour in progress: it waits for its refresh (or for data of a
    # later hour), as the next test shows; the first two are done.
    assert _queued(engine) == 2 and not pipeline.rollups_due(busy=False)
    assert _rollup(engine, point, "a21026", "hour", T0 + dt.timedelta(hours=2)) is None
    pipeline.flush_rollups(now=NOW)  # everything: as at shutdown
    assert _queued(engine) == 0 and not pipeline.rollups_due()
    means = [_rollup(engine, point, "a21026", "hour", T0 + dt.timedelta(hours=h)) for h in range(3)]
    assert [hour.value for hour in means] == pytest.approx([2.5, 8.5, 14.5])
    assert all(hour.valid for hour in means)


def test_the_flush_at_shutdown_takes_every_hour_in_chunks(
    engine: Engine, points: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    point = points["P0001"]
    pipeline = _three_queued_hours(engine, point)
    # A cycle is under way (it leaves the hour in progress queued) when the writer stops.
    pipeline.flush_rollups_between(lambda: True, chunk=1)
    assert _queued(engine) == 5
    taken = []
    flush_rollups = pipeline.flush_rollups

    def counted(**kwargs: Any) -> PipelineResult:
        result = flush_rollups(**kwargs)
        taken.append(kwargs["limit"])
        return result

    monkeypatch.setattr(pipeline, "flush_rollups", counted)
    pipeline.flush_all_rollups(chunk=2, now=NOW)
    assert _queued(engine) == 0
    assert taken == [2, 2, 2]  # five hours, the hour in progress included: three chunks
    means = [_rollup(engine, point, "a21026", "hour", T0 + dt.timedelta(hours=h)) for h in range(3)]
    assert [hour.value for hour in means] == pytest.approx([2.5, 8.5, 14.5])
    assert all(hour.valid for hour in means)


def test_chunks_are_sized_to_take_about_fifty_milliseconds(engine: Engine) -> None:
    # A waiting batch (and its loggers' answers) waits for at most one chunk.
    pipeline = Pipeline(engine, rollup_delay=3600)
    sizes = []
    for seconds_per_hour in (0.0, 1e-5, 1e-4, 5e-4, 1e-3, 0.01):
        pipeline.schedule.seconds_per_hour = seconds_per_hour
        sizes.append(pipeline.schedule.chunk_hours())
    # Unmeasured: 100; then 0.05 s ÷ time per hour, between 50 and 1,000.
    assert sizes == [100, 1000, 500, 100, 50, 50]


def test_epoch_seconds_keep_a_fraction_of_a_second_in_its_hour(
    engine: Engine, points: dict[str, int]
) -> None:
    late = dt.datetime(2024, 1, 15, 8, 59, 59, 999900, tzinfo=UTC)
    Pipeline(engine).process([Observation(points["P0001"], "a21026", "rt", late, 1.0, "N", 0, "t")])
    with engine.connect() as connection:
        seconds = connection.execute(select(epoch_seconds(observations.c.ts))).scalar()
    assert seconds == 1705309199  # 2024-01-15T08:59:59Z, not rounded up to 09:00


def test_a_points_last_seen_time_is_written_at_most_every_ten_seconds(
    engine: Engine, points: dict[str, int]
) -> None:
    # Every batch used to rewrite the registry row of every point in it; offline alarms
    # need the time only to within a reporting interval (a minute or more).
    point = points["P0001"]
    pipeline = Pipeline(engine, rollup_delay=3600, alarms=True)

    def last_seen() -> dt.datetime | None:
        with engine.connect() as connection:
            return connection.execute(
                select(MonitoringPoint.last_seen_at).where(MonitoringPoint.id == point)
            ).scalar_one()

    for minute, now in ((0, NOW), (1, NOW + dt.timedelta(seconds=5))):
        pipeline.process([_minute(point, "a21026", minute, 1.0)], now=now)
    assert last_seen() == NOW  # 5 s later: not written again
    pipeline.process([_minute(point, "a21026", 2, 1.0)], now=NOW + dt.timedelta(seconds=12))
    assert last_seen() == NOW + dt.timedelta(seconds=12)
