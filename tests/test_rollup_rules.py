"""The hourly and daily rules of :mod:`ecohub.timeseries.rules` on summaries, checked
against values computed by hand."""

from __future__ import annotations

import pytest

from ecohub.quality.flags import QualityFlag
from ecohub.timeseries.rules import BasisSummary, daily_rollup, hourly_rollup


def test_summary_keeps_only_valid_values_but_counts_every_one() -> None:
    summary = BasisSummary.of(
        [(1.0, 0), (None, 0), (3.0, int(QualityFlag.DEVICE_FLAG)), (2.0, 0), (4.0, 256)]
    )
    # 256 (a conflicting re-send) only informs: the value stays valid.
    assert summary == BasisSummary(received=5, good=3, total=7.0, low=1.0, high=4.0)
    assert summary.statistic("mean") == pytest.approx(7 / 3)
    assert (summary.statistic("sum"), summary.statistic("min"), summary.statistic("max")) == (
        7.0,
        1.0,
        4.0,
    )


def test_merged_summaries_are_one_summary_of_all_values() -> None:
    a = BasisSummary.of([(1.0, 0), (5.0, 0)])
    b = BasisSummary.of([(None, 0), (0.5, 0)])
    assert a.merged(b) == BasisSummary.of([(1.0, 0), (5.0, 0), (None, 0), (0.5, 0)])
    assert BasisSummary.of([]).merged(a) == a
    assert BasisSummary.of([]).statistic("mean") is None


def test_the_most_authoritative_kind_gives_the_hour() -> None:
    minutes = BasisSummary.of([(float(v), 0) for v in range(6)])  # every 10 minutes
    seconds = BasisSummary.of([(100.0, 0)] * 60)
    hour = hourly_rollup(
        {"rt": seconds, "min": minutes},
        "mean",
        interval_seconds=60,
        minute_interval_seconds=600,
    )
    assert hour is not None
    assert (hour.basis, hour.value, hour.samples, hour.valid) == ("min", 2.5, 6, True)
    # Four ten-minute values cover 40 minutes, fewer than 45 (GB 3095-2012 Table 4).
    short = hourly_rollup(
        {"min": BasisSummary.of([(1.0, 0)] * 4)},
        "mean",
        interval_seconds=60,
        minute_interval_seconds=600,
    )
    assert short is not None and short.valid is False
    assert hourly_rollup({}, "mean", interval_seconds=60, minute_interval_seconds=600) is None


@pytest.mark.parametrize(("hours", "valid"), [(20, True), (19, False)])
def test_a_day_needs_twenty_valid_hours(hours: int, valid: bool) -> None:
    summary = BasisSummary(received=hours * 60, good=hours, total=10.0 * hours, low=10, high=10)
    day = daily_rollup("a34004", summary, interval_seconds=3600, ambient_air=True)
    assert (day.value, day.valid, day.samples, day.received) == (10.0, valid, hours, hours * 60)


def test_a_two_hourly_sampler_needs_ten_valid_hours() -> None:
    # 12 expected hours a day; 20/24 of them, rounded up, is 10.
    summary = BasisSummary(received=10, good=10, total=300.0, low=20.0, high=40.0)
    day = daily_rollup("w01018", summary, interval_seconds=7200, ambient_air=False)
    assert day.valid and day.value == pytest.approx(30.0)
    fewer = BasisSummary(received=9, good=9, total=270.0, low=20.0, high=40.0)
    assert not daily_rollup("w01018", fewer, interval_seconds=7200, ambient_air=False).valid


def test_source_codes_invert_the_series_mapping() -> None:
    from ecohub.timeseries.rules import rollup_code, source_codes

    assert source_codes("a21026-ZsAvg") == ("a21026-ZsAvg", "a21026-ZsRtd")
    assert source_codes("a21026") == ("a21026",)
    for series in ("a21026-ZsAvg", "a21026", "a21026-Cou"):
        assert {rollup_code(code) for code in source_codes(series)} == {series}
