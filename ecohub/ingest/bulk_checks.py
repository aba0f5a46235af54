"""Quality checks of whole hourly series at once, for bulk imports of history: what
:class:`ecohub.quality.batch.SeriesChecks` decides for the pipeline, computed on columns
of a day of values instead of observation tuples.

The same pure masks (:mod:`ecohub.quality.checks`), thresholds and merging rules:

- point checks (device flag, range, negative, future and past time, zero flow) mask a
  value before the series checks (spike, flat line) see it;
- each series continues from its kept tail (its current constant run's first value and
  its last two values, with the run's flag) when the new values follow it: the tail's
  rows gain a flat-line flag, its last row is judged again as a spike, and the stored
  rows of a run that now qualifies are flagged as a range;
- a series without a kept tail is checked with the stored values around its new ones
  (the window :meth:`HourlyChecks.windows` names), whose rows are re-flagged as
  :func:`ecohub.quality.batch._restored_bits` does.

``tests/test_cnemc_import.py`` imports real days both ways and compares every flag.
This belongs in ``ecohub/quality/batch.py`` beside the pipeline's version (a column form
of ``SeriesChecks``); it lives here while only the bulk import uses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from ecohub.quality import checks
from ecohub.quality.batch import SeriesChecks
from ecohub.quality.flags import QualityFlag
from ecohub.quality.thresholds import EARLIEST_PLAUSIBLE, FUTURE_TOLERANCE, Thresholds

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]
CODE_SPAN = 64  # series key = point id × CODE_SPAN + code index
_SPIKE = int(QualityFlag.SPIKE)
_FLAT = int(QualityFlag.FLAT_LINE)
_CONFLICT = int(QualityFlag.CONFLICTING_DUPLICATE)
_NEW, _TAIL, _WINDOW = 0, 1, 2


@dataclass(frozen=True)
class SeriesRows:
    """Hourly values of several series as columns, sorted by series and time; ``code``
    indexes the checker's codes; ``device`` marks data flags under which the instrument
    was not measuring."""

    point: Ints
    code: Ints
    ts: Ints
    value: Floats
    flag: Ints
    device: Bools

    def __len__(self) -> int:
        return len(self.ts)

    @cached_property
    def series(self) -> Ints:
        return self.point * CODE_SPAN + self.code

    def runs(self) -> tuple[Ints, Ints]:
        """Each series' key and its first row (the rows are sorted by series)."""
        series = self.series
        starts = np.flatnonzero(_series_starts(series))
        return series[starts], starts

    def take(self, index: Ints | Bools) -> SeriesRows:
        return SeriesRows(
            self.point[index],
            self.code[index],
            self.ts[index],
            self.value[index],
            self.flag[index],
            self.device[index],
        )

    @staticmethod
    def empty() -> SeriesRows:
        none = np.zeros(0, dtype=np.int64)
        return SeriesRows(none, none, none, np.zeros(0), none, np.zeros(0, dtype=bool))

    @staticmethod
    def concat(parts: Sequence[SeriesRows]) -> SeriesRows:
        return SeriesRows(*(np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS))


_FIELDS = ("point", "code", "ts", "value", "flag", "device")


@dataclass(frozen=True)
class Window:
    """Stored values one series without a kept tail must be checked with: from
    ``first`` to ``last`` (epoch seconds, inclusive), per point as the pipeline reads
    them."""

    point: int
    codes: tuple[int, ...]
    first: int
    last: int


@dataclass(frozen=True)
class Checked:
    """What the checks decided for a day of new values."""

    flags: Ints  # of the new rows, in their order
    changed: SeriesRows  # stored (or kept) rows whose flags change, with the new flags
    ranges: list[tuple[int, int, int, int]]  # point, code, first ts, last ts: add FLAT

    @property
    def flagged(self) -> int:
        return int(np.count_nonzero(self.flags))


class _Flags(NamedTuple):
    """Every row's flags (all checks), spike and flat-line bits, the values the series
    checks saw (NaN: masked) and the flat-line tolerance."""

    bits: Ints
    spike: Ints
    flat: Ints
    masked: Floats
    tolerance: Floats


@dataclass
class _Tails:
    """Each series' kept tail: at most three rows per series (sorted), and per series
    (sorted keys) the offset of its run's first row among them and the run's flag."""

    rows: SeriesRows
    keys: Ints
    run_start: Ints
    run_flagged: Bools


class HourlyChecks:
    """The quality checks of one bulk import: its thresholds and each series' kept tail.

    ``codes`` are the parameter codes the rows' ``code`` indexes; ``is_source(point_id)``
    says whether a point measures a pollution-source outlet."""

    def __init__(
        self,
        codes: Sequence[str],
        thresholds_path: str | None,
        is_source: Callable[[int], bool],
    ) -> None:
        self.codes = tuple(codes)
        self.thresholds_path = thresholds_path
        self.is_source = is_source
        self.tails = _Tails(SeriesRows.empty(), *_no_series())
        # The pipeline's thresholds per code and kind of point (ambient, source).
        self._thresholds = SeriesChecks(thresholds_path, is_source)
        found = [
            [self._thresholds.thresholds_of(c, source) for source in (False, True)] for c in codes
        ]
        # Per code and kind of point: the settings row of SeriesChecks._check_settings.
        self._settings = np.array(
            [[_settings_of(t, s) for s, t in enumerate(row)] for row in found]
        )
        self.reach = np.array(
            [
                [max((t.flat_hours or 0) * 3600, checks.SPIKE_MAX_GAP_SECONDS) for t in row]
                for row in found
            ]
        )

    def forget(self) -> None:
        """Drop every kept tail (the next values are checked with stored windows)."""
        self.tails = _Tails(SeriesRows.empty(), *_no_series())

    # --- windows ---------------------------------------------------------------------

    def windows(self, new: SeriesRows) -> list[Window]:
        """The stored values the series of ``new`` without a usable kept tail must be
        checked with: per point, from its earliest new value minus the checks' reach to
        its latest plus the reach (as the pipeline's ``_read_windows``)."""
        streaming = self._streaming(new)
        keys, starts = new.runs()
        ends = np.append(starts[1:], len(new)) - 1
        wanted = ~streaming
        spans: dict[int, tuple[int, int, set[int]]] = {}
        for key, start, end in zip(keys[wanted], starts[wanted], ends[wanted], strict=True):
            point, code = divmod(int(key), CODE_SPAN)
            reach = int(self.reach[code, int(bool(self.is_source(point)))])
            first, last = int(new.ts[start]) - reach, int(new.ts[end]) + reach
            before = spans.get(point)
            if before is not None:
                first, last = min(first, before[0]), max(last, before[1])
                before[2].add(code)
                spans[point] = (first, last, before[2])
            else:
                spans[point] = (first, last, {code})
        return [
            Window(point, tuple(sorted(codes)), first, last)
            for point, (first, last, codes) in sorted(spans.items())
        ]

    def _streaming(self, new: SeriesRows) -> Bools:
        """Per series of ``new`` (sorted keys): whether it continues its kept tail."""
        keys, starts = new.runs()
        tails = self.tails
        if not len(tails.keys):
            return np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(tails.keys, keys).clip(0, len(tails.keys) - 1)
        known = tails.keys[at] == keys
        # The last kept row of each kept series.
        rows = tails.rows.series
        last_of = np.searchsorted(rows, tails.keys, side="right") - 1
        last_ts = tails.rows.ts[last_of][at]
        return np.asarray(known & (new.ts[starts] > last_ts))

    # --- the checks ------------------------------------------------------------------

    def check(
        self,
        new: SeriesRows,
        stored: SeriesRows,
        now: float,
        conflicts: Bools | None = None,
    ) -> Checked:
        """Check a day of new values (no two at one key, none at a stored key) with the
        kept tails and ``stored``, the rows read for :meth:`windows` (each window's
        rows, per point as read); keep the tails for the next day."""
        streaming_keys = new.runs()[0][self._streaming(new)]
        tails = self.tails
        tail_rows = tails.rows.take(np.isin(tails.rows.series, streaming_keys))
        stored = _within_windows(stored, self.windows(new))
        kinds = np.concatenate(
            [
                np.full(len(tail_rows), _TAIL),
                np.full(len(stored), _WINDOW),
                np.full(len(new), _NEW),
            ]
        )
        merged = SeriesRows.concat([tail_rows, stored, new])
        order = np.lexsort((merged.ts, merged.series))
        merged, kinds = merged.take(order), kinds[order]
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        bits, spike, flat, masked, tolerance = self._flags(merged, now)
        series = merged.series
        first = _series_starts(series)
        start_of = np.maximum.accumulate(np.where(first, np.arange(len(series)), 0))
        offset = np.arange(len(series)) - start_of
        size = np.bincount(np.cumsum(first) - 1)[np.cumsum(first) - 1]
        result = merged.flag.copy()
        is_new = kinds == _NEW
        result[is_new] = bits[is_new]
        if conflicts is not None:
            new_positions = position[len(tail_rows) + len(stored) :]
            result[new_positions[conflicts]] |= _CONFLICT
        # Kept tails: a flat-line flag may be added; the last kept row is judged again
        # as a spike (its right neighbour just came).
        tail = kinds == _TAIL
        group = np.cumsum(first) - 1
        context = np.bincount(group, weights=~is_new).astype(np.int64)[group]
        result[tail] |= flat[tail]
        last_kept = tail & (offset == context - 1) & (offset > 0)
        result[last_kept] = (result[last_kept] & ~_SPIKE) | spike[last_kept]
        # Windows read from the store: rows with both neighbours inside are judged again.
        window = kinds == _WINDOW
        inner = window & (offset > 0) & (offset < size - 1)
        result[inner] = (((merged.flag[inner] & ~_SPIKE) | spike[inner]) & ~_FLAT) | flat[inner]
        edge = window & ~inner
        result[edge] |= flat[edge]
        ranges = self._ranges(merged, kinds, first, offset, context, flat, streaming_keys)
        changed = ~is_new & (result != merged.flag)
        self._keep(merged, kinds, result, _Flags(bits, spike, flat, masked, tolerance), first, new)
        return Checked(
            result[position[len(tail_rows) + len(stored) :]],
            replace(merged.take(changed), flag=result[changed]),
            ranges,
        )

    def _flags(self, rows: SeriesRows, now: float) -> _Flags:
        """Every check over all rows (SeriesChecks._flags): all flags, the spike and
        flat-line bits, and the values the series checks saw (NaN: masked)."""
        is_source = per_point(rows.point, self.is_source)
        settings = self._settings[rows.code, is_source.astype(np.int64)]
        step, ratio, floor, flat_seconds, tolerance, valid_min, valid_max = settings[:, :7].T
        allow_negative = settings[:, 7].astype(bool)
        concentration = settings[:, 8].astype(bool)
        flat_floor = settings[:, 9]
        ts = rows.ts.astype(float)
        values = rows.value
        static = np.zeros(len(rows), dtype=np.int64)
        static |= rows.device * int(QualityFlag.DEVICE_FLAG)
        static |= checks.out_of_range(values, valid_min, valid_max) * int(QualityFlag.RANGE)
        static |= checks.negative(values, allow_negative) * int(QualityFlag.NEGATIVE)
        static |= checks.future_time(ts, now, FUTURE_TOLERANCE.total_seconds()) * int(
            QualityFlag.FUTURE_TIME
        )
        static |= checks.past_time(ts, EARLIEST_PLAUSIBLE.timestamp()) * int(QualityFlag.PAST_TIME)
        # A bulk import carries no flow values: the message flow of a source point's
        # concentration is missing, as in the pipeline's batch without a flow code.
        static |= checks.zero_flow(concentration, np.full(len(rows), np.nan)) * int(
            QualityFlag.ZERO_FLOW
        )
        masked = np.where(static & ~_CONFLICT, np.nan, values)
        series = rows.series
        spike = checks.spikes(series, ts, masked, step, ratio, floor) * _SPIKE
        flat_mask = checks.flat_lines(
            series,
            ts,
            masked,
            tolerance,
            flat_seconds,
            floor=flat_floor,
            max_gap_seconds=checks.FLAT_MAX_GAP_SECONDS,
        )
        flat = flat_mask.astype(np.int64) * _FLAT
        return _Flags(static | spike | flat, spike.astype(np.int64), flat, masked, tolerance)

    def _ranges(
        self,
        merged: SeriesRows,
        kinds: Ints,
        first: Bools,
        offset: Ints,
        context: Ints,
        flat: Ints,
        streaming_keys: Ints,
    ) -> list[tuple[int, int, int, int]]:
        """Stored runs of kept tails that now qualify as flat lines (flag them all)."""
        tails = self.tails
        if not len(streaming_keys):
            return []
        at = np.searchsorted(tails.keys, streaming_keys)
        flagged, run_start = tails.run_flagged[at], tails.run_start[at]
        starts = np.flatnonzero(first)
        of_key = np.searchsorted(merged.series[starts], streaming_keys)
        series_start = starts[of_key]
        n_context = context[series_start]
        run_row = series_start + run_start
        qualifies = (n_context > 0) & ~flagged & (flat[run_row] != 0)
        return [
            (int(merged.point[row]), int(merged.code[row]), int(merged.ts[row]),
             int(merged.ts[start + count - 1]))
            for row, start, count in zip(
                run_row[qualifies], series_start[qualifies], n_context[qualifies], strict=True
            )
        ]  # fmt: skip

    def _keep(
        self,
        merged: SeriesRows,
        kinds: Ints,
        flags: Ints,
        checked: _Flags,
        first: Bools,
        new: SeriesRows,
    ) -> None:
        """Keep each checked series' tail (SeriesChecks._keep_state): its constant run's
        first row and last two rows, with their flags now. A series whose last row is a
        stored one (a backfill) keeps none."""
        group = np.cumsum(first) - 1
        n = len(merged)
        last = np.append(np.flatnonzero(first)[1:], n) - 1
        ends_new = kinds[last] == _NEW
        # SeriesChecks' _trailing_run_start: equal within the tolerance, no long gap.
        with np.errstate(invalid="ignore"):
            same = np.abs(np.diff(checked.masked)) <= checked.tolerance[1:]
        same &= np.diff(merged.ts) <= checks.FLAT_MAX_GAP_SECONDS
        breaks = first | ~np.concatenate([[False], same])
        run_start_row = np.maximum.accumulate(np.where(breaks, np.arange(n), 0))[last]
        keep = np.zeros(n, dtype=bool)
        end_of_row = last[group]
        keep |= np.arange(n) >= end_of_row - 1
        keep[run_start_row] = True
        keep &= ends_new[group]
        rows = replace(merged.take(keep), flag=flags[keep])
        kept_so_far = np.cumsum(keep)  # kept rows up to and including each row
        starts = np.flatnonzero(first)[ends_new]
        kept_before_series = kept_so_far[starts] - keep[starts]
        run_offset = kept_so_far[run_start_row[ends_new]] - 1 - kept_before_series
        keys = merged.series[last[ends_new]]
        run_flagged = self._flat_of_last(flags, last[ends_new])
        checked_keys = new.runs()[0]
        old = self.tails
        stay = ~np.isin(old.keys, checked_keys)
        stay_rows = ~np.isin(old.rows.series, checked_keys)
        all_rows = SeriesRows.concat([old.rows.take(stay_rows), rows])
        order = np.lexsort((all_rows.ts, all_rows.series))
        all_keys = np.concatenate([old.keys[stay], keys])
        key_order = np.argsort(all_keys, kind="stable")
        self.tails = _Tails(
            all_rows.take(order),
            all_keys[key_order],
            np.concatenate([old.run_start[stay], run_offset])[key_order],
            np.concatenate([old.run_flagged[stay], run_flagged])[key_order],
        )

    @staticmethod
    def _flat_of_last(flags: Ints, last: Ints) -> Bools:
        return np.asarray((flags[last] & _FLAT) != 0)


def per_point(point: Ints, test: Callable[[int], bool]) -> Bools:
    """``test`` of each row's point, called once per point (rows sorted by point are
    read as runs; others are sorted first)."""
    if not len(point):
        return np.zeros(0, dtype=bool)
    if np.all(point[1:] >= point[:-1]):
        starts = np.flatnonzero(np.concatenate([[True], point[1:] != point[:-1]]))
        found = np.array([test(int(p)) for p in point[starts]], dtype=bool)
        return np.repeat(found, np.diff(np.append(starts, len(point))))
    distinct, inverse = np.unique(point, return_inverse=True)
    return np.array([test(int(p)) for p in distinct], dtype=bool)[inverse.reshape(-1)]


def _settings_of(t: Thresholds, source: int) -> tuple[float, ...]:
    """One series' thresholds as numbers, as SeriesChecks._check_settings lays them out:
    step, ratio, spike floor, flat seconds, tolerance, valid min and max, negative
    allowed, concentration at a source point, flat floor."""
    if t.spike_floor is not None:
        spike_floor = t.spike_floor
    else:
        spike_floor = 0.001 * t.valid_max if math.isfinite(t.valid_max) else 0.0
    return (
        math.nan if t.spike_step is None else t.spike_step,
        math.nan if t.spike_ratio is None else t.spike_ratio,
        spike_floor,
        math.nan if t.flat_hours is None else t.flat_hours * 3600,
        t.flat_tolerance,
        t.valid_min,
        t.valid_max,
        float(t.allow_negative),
        float(t.role == "concentration" and bool(source)),
        math.nan if t.flat_floor is None else t.flat_floor,
    )


def _no_series() -> tuple[Ints, Ints, Bools]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)


def _series_starts(series: Ints) -> Bools:
    return np.concatenate([[True], series[1:] != series[:-1]]) if len(series) else np.zeros(0, bool)


def _within_windows(stored: SeriesRows, windows: list[Window]) -> SeriesRows:
    """The stored rows inside their point's window, of the codes it names."""
    if not len(stored) or not windows:
        return SeriesRows.empty()
    points = np.array([w.point for w in windows])
    at = np.searchsorted(points, stored.point).clip(0, len(points) - 1)
    inside = points[at] == stored.point
    first = np.array([w.first for w in windows])[at]
    last = np.array([w.last for w in windows])[at]
    wanted = np.zeros((len(windows), CODE_SPAN), dtype=bool)
    for index, window in enumerate(windows):
        wanted[index, list(window.codes)] = True
    inside &= (stored.ts >= first) & (stored.ts <= last) & wanted[at, stored.code]
    return stored.take(np.flatnonzero(inside))
