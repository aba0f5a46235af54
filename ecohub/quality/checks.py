"""The quality-control checks: each a small pure function returning a boolean mask of the
values it flags. None edits a value.

The series checks (:func:`spikes`, :func:`flat_lines`) take a ``series`` array of
integer ids so that one call checks many series at once: rows must be sorted by series
and then time, and neighbours are only compared within a series. For a single series pass
``np.zeros(n)``.

Both were tuned on real hourly data (CNEMC 2019-2025, Beijing PRSA 2013-2017;
``docs/quality.md``): a spike must rise above and come back from *adjacent* neighbours by
more than the limits, measured against the higher neighbour (against the value itself
for a dip; SaQC ``flagOffset``: a jump and a return; the IOOS QARTOD spike test: the
value against its two neighbours), so a sharp real rise that stays up (dust fronts,
fireworks) is not one; a constant run at or
below the parameter's ``flat_floor`` is a detection-limit or reporting-resolution plateau
(SO2 at 3 μg/m³, CO at 0.4 mg/m³), not a stuck instrument (SaQC ``flagConstants`` flags
any plateau; real low concentrations need the floor).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ecohub.quality.flags import INVALID_DATA_FLAGS

Mask = NDArray[np.bool_]

# Neighbours further apart than this are not compared by the spike check: adjacent
# hours of an hourly series (a missing hour hides the ramp of a real rise).
SPIKE_MAX_GAP_SECONDS = 3600
FLAT_MIN_COUNT = 3
# A constant run does not bridge a longer gap (the callers' choice: pass it to
# :func:`flat_lines`; a station back after a month with the value it left is not stuck).
FLAT_MAX_GAP_SECONDS = 3 * 3600


def device_flag(data_flags: Sequence[str]) -> Mask:
    """HJ 212-2017 Table 7 data flags F, M, S, D, C, B: the instrument was stopped, under
    maintenance, set by hand, faulty, calibrating or not communicating."""
    return np.fromiter(map(INVALID_DATA_FLAGS.__contains__, data_flags), bool, len(data_flags))


def out_of_range(values: ArrayLike, valid_min: ArrayLike, valid_max: ArrayLike) -> Mask:
    """Values outside the parameter's valid range (missing values are not flagged)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.asarray((v < np.asarray(valid_min)) | (v > np.asarray(valid_max)))


def negative(values: ArrayLike, allow_negative: ArrayLike) -> Mask:
    """Negative values of parameters that cannot be negative."""
    v = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.asarray((v < 0) & ~np.asarray(allow_negative, dtype=bool))


def future_time(ts_seconds: ArrayLike, now_seconds: float, tolerance_seconds: float) -> Mask:
    """Timestamps later than the platform's clock plus the tolerance (a fast device
    clock or a wrong time zone)."""
    return np.asarray(np.asarray(ts_seconds, dtype=float) > now_seconds + tolerance_seconds)


def past_time(ts_seconds: ArrayLike, earliest_seconds: float) -> Mask:
    """Timestamps before the earliest plausible date (a device clock reset to 1970/2000)."""
    return np.asarray(np.asarray(ts_seconds, dtype=float) < earliest_seconds)


def spikes(
    series: ArrayLike,
    ts_seconds: ArrayLike,
    values: ArrayLike,
    step: ArrayLike,
    ratio: ArrayLike,
    floor: ArrayLike,
    max_gap_seconds: float = SPIKE_MAX_GAP_SECONDS,
) -> Mask:
    """Single-value spikes: a value that jumps away from both neighbours in the same
    direction (up then down, or down then up) by more than the limit on each side, so
    that the series comes back where it was; a step (a rise that stays) is never one.

    The limit of each row combines an absolute ``step`` and a ``ratio``: the jump to the
    nearer neighbour must exceed ``step`` and ``ratio`` times a level, which is the
    higher neighbour for an upward spike and the value itself for a downward one (at
    least ``floor`` either way). The ratio reads the same both ways: with 2, a value
    three times its higher neighbour, or a third of its lower one. NaN disables a part,
    and a row with both NaN is never flagged. Neighbours must be in the same series and
    at most ``max_gap_seconds`` apart (default: adjacent hours); the first and last
    value of a series are never spikes.
    """
    sid = np.asarray(series)
    t = np.asarray(ts_seconds, dtype=float)
    v = np.asarray(values, dtype=float)
    n = len(v)
    flagged = np.zeros(n, dtype=bool)
    if n < 3:
        return flagged
    middle = slice(1, n - 1)
    prev_v, this_v, next_v = v[:-2], v[1:-1], v[2:]
    rise = this_v - prev_v
    fall = this_v - next_v
    same_direction = np.sign(rise) * np.sign(fall) > 0
    jump = np.minimum(np.abs(rise), np.abs(fall))
    with np.errstate(invalid="ignore"):
        base = np.where(rise > 0, np.maximum(np.abs(prev_v), np.abs(next_v)), np.abs(this_v))
    level = np.maximum(base, np.asarray(floor, dtype=float)[middle])
    step_m = np.asarray(step, dtype=float)[middle]
    ratio_m = np.asarray(ratio, dtype=float)[middle]
    with np.errstate(invalid="ignore"):
        over_step = np.where(np.isnan(step_m), True, jump > step_m)
        over_ratio = np.where(np.isnan(ratio_m), True, jump > ratio_m * level)
        checked = ~(np.isnan(step_m) & np.isnan(ratio_m))
        neighbours = (
            (sid[:-2] == sid[1:-1])
            & (sid[2:] == sid[1:-1])
            & (t[1:-1] - t[:-2] <= max_gap_seconds)
            & (t[2:] - t[1:-1] <= max_gap_seconds)
        )
        flagged[middle] = (
            checked & neighbours & same_direction & over_step & over_ratio & ~np.isnan(jump)
        )
    return flagged


def flat_lines(
    series: ArrayLike,
    ts_seconds: ArrayLike,
    values: ArrayLike,
    tolerance: ArrayLike,
    min_seconds: ArrayLike,
    min_count: int = FLAT_MIN_COUNT,
    floor: ArrayLike | None = None,
    max_gap_seconds: float | None = None,
) -> Mask:
    """Constant runs: consecutive values of one series differing by at most ``tolerance``
    whose run lasts at least ``min_seconds`` (NaN: never) with at least ``min_count``
    values. Every value of such a run is flagged (a stuck or falsified signal).

    A run whose values are all at or below ``floor`` (per row; NaN or None: no floor) is
    not flagged: near the detection limit, a value reported at a resolution of one unit
    stays the same for hours in clean air (SO2 at 3 μg/m³, CO at 0.4 mg/m³). Values
    further apart than ``max_gap_seconds`` (None: any gap) are not in one run."""
    sid = np.asarray(series)
    t = np.asarray(ts_seconds, dtype=float)
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=bool)
    tol = np.asarray(tolerance, dtype=float)
    with np.errstate(invalid="ignore"):
        continues = (sid[1:] == sid[:-1]) & (np.abs(v[1:] - v[:-1]) <= tol[1:])
    if max_gap_seconds is not None:
        continues &= t[1:] - t[:-1] <= max_gap_seconds
    run_id = np.concatenate([[0], np.cumsum(~continues)])
    starts = np.flatnonzero(np.concatenate([[True], ~continues]))
    ends = np.concatenate([starts[1:], [n]]) - 1
    counts = ends - starts + 1
    durations = t[ends] - t[starts]
    limit = np.asarray(min_seconds, dtype=float)[starts]
    with np.errstate(invalid="ignore"):
        run_flat = (counts >= min_count) & (durations >= limit) & ~np.isnan(v[starts])
        if floor is not None:
            # The run's highest value: with a tolerance, its values may differ a little.
            peak = np.maximum.reduceat(np.abs(v), starts)
            run_flat &= ~(peak <= np.asarray(floor, dtype=float)[starts])
    return np.asarray(run_flat[run_id])


def zero_flow(is_concentration: ArrayLike, message_flow: ArrayLike) -> Mask:
    """Concentrations reported in a message (HJ 212 packet, MQTT message, upload row
    group) whose flow is zero or missing (NaN): a plant that emits nothing cannot have a
    measured flue-gas or waste-water concentration, so the pair is flagged."""
    flow = np.asarray(message_flow, dtype=float)
    with np.errstate(invalid="ignore"):
        no_flow = np.isnan(flow) | (flow == 0)
    return np.asarray(np.asarray(is_concentration, dtype=bool) & no_flow)


def conflicting_duplicates(values: ArrayLike, previous: ArrayLike) -> Mask:
    """Values arriving for a key that already had a different value (NaN: no previous)."""
    v = np.asarray(values, dtype=float)
    p = np.asarray(previous, dtype=float)
    both_missing = np.isnan(v) & np.isnan(p)
    return np.asarray(~np.isnan(p) & ~both_missing & ~np.isclose(v, p, rtol=0, atol=0))
