"""CEMS emissions accounting: hand-computed hours from the clauses' own words.

The thresholds are typed here from the sources (not read from the package's CSV):
HJ 76-2017 附录B (45 min, 20 h, 25 d, 23 d in February), HJ/T 75-2007 as paraphrased by
Tang et al. 2020 (gaps of 1–24 h take the mean of the valid values before and after), and
附录E E.1 (1) of a 排污许可证申请与核发技术规范 (more than 25 % missing: not a basis).
"""

from __future__ import annotations

from datetime import date

import pytest

from ecohub.standards.cems import (
    Basis,
    Hour,
    HourState,
    PriorHalfYear,
    account_flue_gas,
    account_wastewater,
    annual_totals,
    daily_totals,
    day_is_valid,
    hour_is_valid,
    hourly_mass_kg,
    mass_kg,
    month_is_valid,
    monthly_totals,
    short_gap_value,
    state_from_hj212_flag,
    thresholds,
    totals_by_key,
)

V, M, X, F = HourState.VALID, HourState.MISSING, HourState.INVALID, HourState.SHUTDOWN


def test_thresholds_as_the_sources_write_them() -> None:
    assert thresholds() == {
        "hour_valid_minutes": 45,
        "day_valid_hours": 20,
        "month_valid_days": 25,
        "february_valid_days": 23,
        "short_gap_max_hours": 24,
        "max_missing_share": 0.25,
    }


def test_hourly_mass_formula_e1() -> None:
    # (E1): E = Σ C × Q × 10⁻⁹ t. One hour of 100 mg/Nm³ in 500 000 Nm³/h:
    # 100 × 500 000 × 10⁻⁹ = 0.05 t = 50 kg.
    assert hourly_mass_kg(100, 500_000) == pytest.approx(50)
    # 35 mg/Nm³ (an ultra-low SO2 limit) in 1 200 000 Nm³/h: 35 × 1.2e6 × 1e-9 t = 42 kg.
    assert hourly_mass_kg(35, 1_200_000) == pytest.approx(42)


def test_wastewater_mass() -> None:
    # E = Q × C × 10⁻⁶ t (Q in t of water, C in mg/L): 200 m³ at 30 mg/L is
    # 200 × 30 × 10⁻⁶ = 0.006 t = 6 kg.
    assert mass_kg(30, 200) == pytest.approx(6)
    # 1 mg/L = 1 g/m³: 0.5 mg/L of ammonia nitrogen in 1 000 m³ is 500 g.
    assert mass_kg(0.5, 1000) == pytest.approx(0.5)


def test_validity_of_means_hj76_appendix_b() -> None:
    # "小时数据应包含本小时内至少45min的分钟有效数据"
    assert hour_is_valid(45) and not hour_is_valid(44)
    # "日数据应包含本日至少20h的小时有效数据"
    assert day_is_valid(20) and not day_is_valid(19)
    # "月数据应包含本月至少25天（其中二月份至少23天）的日有效数据"
    assert month_is_valid(25, 1) and not month_is_valid(24, 12)
    assert month_is_valid(23, 2) and not month_is_valid(22, 2)


@pytest.mark.parametrize(
    ("flag", "state"),
    [("N", V), ("T", V), ("F", F), ("M", X), ("S", X), ("D", X), ("C", X), ("B", X), (None, M)],
)
def test_hj212_flags(flag: str | None, state: HourState) -> None:
    assert state_from_hj212_flag(flag) is state


def test_unknown_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="HJ 212"):
        state_from_hj212_flag("X")
    with pytest.raises(ValueError, match="whole hour"):
        Hour(10, 10, V, flow_state=F)


def test_all_measured() -> None:
    hours = [Hour(100, 500_000), Hour(80, 400_000)]
    result = account_flue_gas(hours)
    # 100 × 500 000 × 1e-6 = 50 kg; 80 × 400 000 × 1e-6 = 32 kg.
    assert result.totals.mass_kg == pytest.approx(82)
    assert result.totals.hours_measured == 2
    assert result.totals.measured_share == 1
    assert [h.basis for h in result.hours] == [Basis.MEASURED, Basis.MEASURED]
    assert result.usable_as_basis


def test_short_gap_takes_the_mean_of_the_valid_hours_around_it() -> None:
    # Two hours missing between 100 mg/Nm³ at 100 000 Nm³/h and 120 at 120 000 (a gap of
    # 2 h, within "1–24 hour(s)"): each takes the "arithmetic mean of the two nearest valid
    # points before and after them", C = (100 + 120)/2 = 110, Q = (100 000 + 120 000)/2 =
    # 110 000, mass 110 × 110 000 × 1e-6 = 12.1 kg each.
    hours = [Hour(100, 100_000), Hour(None, None, M), Hour(55, 7, X), Hour(120, 120_000)]
    result = account_flue_gas(hours)
    gap = result.hours[1:3]
    assert [(h.concentration, h.flow) for h in gap] == [(110, 110_000)] * 2
    assert [h.basis for h in gap] == [Basis.SHORT_GAP] * 2
    assert all(h.mass_kg == pytest.approx(12.1) for h in gap)
    # 10 + 12.1 + 12.1 + 14.4
    assert result.totals.mass_kg == pytest.approx(48.6)
    assert (result.totals.hours_measured, result.totals.hours_substituted) == (2, 2)
    assert result.totals.measured_share == pytest.approx(0.5)
    assert short_gap_value(100, 120) == 110


def test_a_gap_of_24_hours_is_short_and_of_25_is_not() -> None:
    # 24 missing hours between 40 and 60 mg/Nm³ (flow 10 000 throughout): C = 50, mass
    # 50 × 10 000 × 1e-6 = 0.5 kg each.
    hours = [Hour(40, 10_000)] + [Hour(None, 10_000, M)] * 24 + [Hour(60, 10_000)]
    result = account_flue_gas(hours)
    assert {h.basis for h in result.hours[1:25]} == {Basis.SHORT_GAP}
    assert result.totals.mass_kg == pytest.approx(0.4 + 24 * 0.5 + 0.6)
    # 25 hours: beyond "1–24 hour(s)", "no interpolation … above 24 hours": unresolved,
    # the hours' mass unknown and not summed.
    hours = [Hour(40, 10_000)] + [Hour(None, 10_000, M)] * 25 + [Hour(60, 10_000)]
    result = account_flue_gas(hours)
    assert {h.basis for h in result.hours[1:26]} == {Basis.UNRESOLVED}
    assert all(h.mass_kg is None for h in result.hours[1:26])
    assert result.totals.mass_kg == pytest.approx(1.0)
    assert result.totals.hours_unresolved == 25
    # 25 of 27 operating hours not measured: more than 25 %, not a basis.
    assert result.totals.missing_share == pytest.approx(25 / 27)
    assert not result.usable_as_basis


def test_long_gap_with_the_prior_half_year_means() -> None:
    # 附录E: "按照上一个半年申报期间的稳定运行期间自动监测数据的小时浓度均值和半年平均烟气量":
    # with 80 mg/Nm³ and 90 000 Nm³/h, each of 30 missing hours is 80 × 90 000 × 1e-6 =
    # 7.2 kg.
    prior = PriorHalfYear(concentration=80, flow=90_000)
    hours = [Hour(100, 100_000)] + [Hour(None, None, M)] * 30 + [Hour(100, 100_000)]
    result = account_flue_gas(hours, prior_half_year=prior)
    assert {h.basis for h in result.hours[1:31]} == {Basis.PRIOR_HALF_YEAR}
    assert result.totals.mass_kg == pytest.approx(2 * 10 + 30 * 7.2)
    assert result.totals.hours_substituted == 30
    # The short-gap rule still comes first: a 3-hour gap takes the mean, not the prior.
    hours = [Hour(100, 100_000)] + [Hour(None, None, M)] * 3 + [Hour(100, 100_000)]
    result = account_flue_gas(hours, prior_half_year=prior)
    assert {h.basis for h in result.hours[1:4]} == {Basis.SHORT_GAP}


def test_shutdown_hours_emit_nothing_and_are_no_valid_point() -> None:
    # (E1) sums over "T——核算时段内的污染物排放时间": shutdown (停运, flag F) hours add 0.
    # The missing hour before the shutdown has a valid point only on one side: it is
    # unresolved (no "two nearest valid points before and after").
    hours = [
        Hour(100, 100_000),
        Hour(None, None, M),
        Hour(None, None, F),
        Hour(0, 0, F),
        Hour(100, 100_000),
    ]
    result = account_flue_gas(hours)
    assert [h.basis for h in result.hours] == [
        Basis.MEASURED,
        Basis.UNRESOLVED,
        Basis.SHUTDOWN,
        Basis.SHUTDOWN,
        Basis.MEASURED,
    ]
    assert [h.mass_kg for h in result.hours[2:4]] == [0.0, 0.0]
    totals = result.totals
    assert (totals.hours_measured, totals.hours_shutdown, totals.hours_unresolved) == (2, 2, 1)
    assert totals.hours_operating == 3
    assert totals.mass_kg == pytest.approx(20)
    # 1 of 3 operating hours missing: 33 % > 25 %.
    assert not result.usable_as_basis


def test_gap_at_the_edge_of_the_series_is_unresolved() -> None:
    result = account_flue_gas([Hour(None, None, M), Hour(100, 100_000)])
    assert result.hours[0].basis is Basis.UNRESOLVED


def test_flow_and_concentration_are_substituted_separately() -> None:
    # The analyser measured all three hours; the flow meter failed (D → invalid) in the
    # middle one: its flow is (100 000 + 140 000)/2 = 120 000, its concentration 90 is
    # kept, mass 90 × 120 000 × 1e-6 = 10.8 kg.
    hours = [
        Hour(100, 100_000),
        Hour(90, 1, V, flow_state=state_from_hj212_flag("D")),
        Hour(100, 140_000),
    ]
    middle = account_flue_gas(hours).hours[1]
    assert (middle.concentration_basis, middle.flow_basis) == (Basis.MEASURED, Basis.SHORT_GAP)
    assert (middle.concentration, middle.flow) == (90, 120_000)
    assert middle.mass_kg == pytest.approx(10.8)
    assert middle.basis is Basis.SHORT_GAP


def test_a_quarter_missing_is_still_a_basis() -> None:
    # "缺失时段超过25%": exactly 1 hour in 4 is not more than 25 %.
    hours = [Hour(10, 10), Hour(None, None, M), Hour(10, 10), Hour(10, 10)]
    assert account_flue_gas(hours).usable_as_basis
    assert not account_flue_gas(hours, max_missing_share=0.2).usable_as_basis


def test_a_valid_state_without_a_value_is_not_a_measurement() -> None:
    result = account_flue_gas([Hour(10, 100), Hour(None, 100), Hour(30, 100)])
    assert result.hours[1].concentration == 20
    assert result.hours[1].basis is Basis.SHORT_GAP


def test_wastewater_is_never_substituted() -> None:
    # HJ/T 356's 补遗 rules were not read: the missing hour stays unresolved.
    hours = [Hour(30, 200), Hour(None, None, M), Hour(30, 200), Hour(0, 0, F)]
    result = account_wastewater(hours)
    assert [h.basis for h in result.hours] == [
        Basis.MEASURED,
        Basis.UNRESOLVED,
        Basis.MEASURED,
        Basis.SHUTDOWN,
    ]
    # 2 hours × 30 mg/L × 200 m³ × 1e-3 = 12 kg.
    assert result.totals.mass_kg == pytest.approx(12)


def test_daily_monthly_annual_sums() -> None:
    # 23:00 on 31 January and 00:00-01:00 on 1 February (local time), 01:00 missing and
    # left unresolved at the series' end.
    days = [date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 1)]
    hours = [Hour(100, 100_000), Hour(50, 100_000), Hour(None, None, M)]
    result = account_flue_gas(hours)
    daily = daily_totals(days, result)
    assert list(daily) == [date(2024, 1, 31), date(2024, 2, 1)]
    assert daily[date(2024, 1, 31)].mass_kg == pytest.approx(10)
    february_first = daily[date(2024, 2, 1)]
    assert february_first.mass_kg == pytest.approx(5)
    assert (february_first.hours_measured, february_first.hours_unresolved) == (1, 1)
    monthly = monthly_totals(days, result)
    assert {k: v.mass_kg for k, v in monthly.items()} == pytest.approx(
        {(2024, 1): 10, (2024, 2): 5}
    )
    annual = annual_totals(days, result)
    assert annual[2024].mass_kg == pytest.approx(15)
    assert annual[2024].hours_operating == 3
    with pytest.raises(ValueError, match="2 keys for 3 hours"):
        totals_by_key(days[:2], result)
