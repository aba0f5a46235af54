"""Quality checks applied to a batch of observations with each series' kept tail: the
one place where the pure masks of :mod:`ecohub.quality.checks` meet the data.

SaQC's core is the model here: the data and its flags are kept apart from the checks,
values already flagged invalid by a point check are masked before the series checks run
(a fault value must not make its neighbours look like a spike), and the flags of all
checks are merged once and written once.

Quality control needs each value's neighbours (spikes, flat lines). For data arriving in
time order, :class:`SeriesChecks` keeps per series the last few stored values and the
start of the current constant run; for late, re-sent or backfilled values the caller
reads the stored values around them (:meth:`SeriesChecks.window_seconds` says how far),
and the whole window is re-checked, stored neighbours whose flags change re-flagged.

Nothing here reads or writes the store.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ecohub.quality import checks
from ecohub.quality.flags import QualityFlag
from ecohub.quality.series import Observation
from ecohub.quality.thresholds import (
    EARLIEST_PLAUSIBLE,
    FLOW_CODES,
    FUTURE_TOLERANCE,
    Thresholds,
    thresholds_for,
)

SeriesKey = tuple[int, str, str]  # point id, parameter code, interval kind
ObservationKey = tuple[int, str, str, dt.datetime]
_timestamp = operator.attrgetter("ts")
_value = operator.attrgetter("value")
_data_flag = operator.attrgetter("data_flag")
_message_key = operator.itemgetter(0, 2, 3)  # point id, interval kind, timestamp
# Plain ints for the per-row loops (an enum member's int() costs more than the bit test).
_SPIKE = int(QualityFlag.SPIKE)
_FLAT_LINE = int(QualityFlag.FLAT_LINE)
_CONFLICTING_DUPLICATE = int(QualityFlag.CONFLICTING_DUPLICATE)


class SeriesState(NamedTuple):
    """The tail of a series kept between batches: its first value of the current
    constant run and its last two values (as stored, with their flags). A named tuple:
    each batch replaces the tails of thousands of series."""

    rows: list[Observation]  # distinct, oldest first, at most 3
    run_start: int = 0  # index in rows of the first value of the current constant run
    run_flagged: bool = False


@dataclass(slots=True)
class Merged:
    """One series' rows to check: stored context and new values, oldest first.

    A series that continues its kept tail (``streaming``) has its new rows from
    ``first_new`` on, none of them at a stored key: the per-row lists stay None (most
    series of a batch; building them was a measurable share of the writer's time)."""

    key: SeriesKey
    rows: list[Observation]
    first_new: int  # rows before it are stored context
    streaming: bool  # context is the kept tail (True) or a window read from the store
    new: list[bool] | None = None  # window: which rows are new
    previous: list[float] | None = None  # window: stored value at a new row's key (NaN: none)
    replaced: list[bool] | None = None  # window: a new row at a key the store already held
    run_start: int = 0  # streaming: index of the kept run's first value
    run_flagged: bool = False


class Checked(NamedTuple):
    """What the checks decided for a batch."""

    ranges: list[tuple[SeriesKey, dt.datetime, dt.datetime]]  # stored flat-line runs
    inserted: list[Observation]  # new rows at keys the store did not hold
    changed: list[Observation]  # rows replacing stored ones
    flagged: int = 0  # new rows stored with at least one quality flag
    reflagged: int = 0  # stored rows whose flags changed


class _Flags(NamedTuple):
    """Every row's new flags, as plain lists for the per-row loop."""

    new_bits: list[int]  # all checks
    spike_bits: list[int]
    flat_bits: list[int]
    checked: list[float]  # values the series checks saw (NaN: masked)
    tolerances: list[float]
    seconds: list[float]  # each row's time, seconds since the epoch


class SeriesChecks:
    """The quality checks of one writer: its thresholds and each series' kept tail.

    ``is_source(point_id)`` says whether a point measures a pollution-source outlet
    (concentrations there are judged against their message's flow)."""

    def __init__(self, thresholds_path: str | None, is_source: Callable[[int], bool]) -> None:
        self.thresholds_path = thresholds_path
        self.is_source = is_source
        self.state: dict[SeriesKey, SeriesState] = {}
        self._thresholds: dict[tuple[str, bool], Thresholds] = {}  # (code, source point)
        self._settings: dict[tuple[str, bool], int] = {}  # (code, source point) → row
        self._settings_rows: list[tuple[float, ...]] = []
        self._settings_table = np.empty((0, 10))

    # --- the kept tails --------------------------------------------------------------

    def forget(self) -> None:
        """Drop every kept series tail (the next batches read the store instead)."""
        self.state.clear()

    def restore(self, saved: dict[SeriesKey, SeriesState | None]) -> None:
        """Put back the tails a rolled-back batch replaced."""
        for key, state in saved.items():
            if state is None:
                self.state.pop(key, None)
            else:
                self.state[key] = state

    def split(
        self, by_series: dict[SeriesKey, list[Observation]]
    ) -> tuple[list[Merged], dict[SeriesKey, list[Observation]]]:
        """The series that continue their kept tail, merged with it; and the others,
        whose stored neighbours the caller must read (:meth:`window`)."""
        merged: list[Merged] = []
        windows: dict[SeriesKey, list[Observation]] = {}
        get_state = self.state.get
        for key, rows in by_series.items():
            if len(rows) > 1:
                rows.sort(key=_timestamp)
            state = get_state(key)
            if state is not None and rows[0].ts > state.rows[-1].ts:
                context = state.rows
                # Positional: this runs once per series of every batch.
                merged.append(
                    Merged(
                        key,
                        [*context, *rows],
                        len(context),
                        True,
                        None,
                        None,
                        None,
                        state.run_start,
                        state.run_flagged,
                    )
                )
            else:
                windows[key] = rows
        return merged, windows

    @staticmethod
    def window(key: SeriesKey, rows: list[Observation], stored: list[Observation]) -> Merged:
        """New rows of one series merged with the stored rows around them."""
        by_ts: dict[dt.datetime, tuple[Observation, bool, float, bool]] = {
            row.ts: (row, False, math.nan, False) for row in stored
        }
        for row in rows:
            before = by_ts.get(row.ts)
            previous = math.nan
            if before is not None:
                previous = math.nan if before[0].value is None else before[0].value
            by_ts[row.ts] = (row, True, previous, before is not None)
        ordered = [by_ts[ts] for ts in sorted(by_ts)]
        new = [item[1] for item in ordered]
        return Merged(
            key,
            [item[0] for item in ordered],
            new.index(True),
            False,
            new=new,
            previous=[item[2] for item in ordered],
            replaced=[item[3] for item in ordered],
        )

    def window_seconds(self, key: SeriesKey) -> float:
        """How far before and after new values the checks of one series look."""
        thresholds = self.thresholds_of(key[1], bool(self.is_source(key[0])))
        flat = (thresholds.flat_hours or 0) * 3600
        return max(flat, checks.SPIKE_MAX_GAP_SECONDS)

    def thresholds_of(self, code: str, source: bool) -> Thresholds:
        """The thresholds of ``code`` at an ambient station or (``source``) at a
        pollution-source outlet: the same code means both, on different scales."""
        found = self._thresholds.get((code, source))
        if found is None:
            found = self._thresholds[(code, source)] = thresholds_for(
                code, self.thresholds_path, point="source" if source else "ambient"
            )
        return found

    # --- the checks ------------------------------------------------------------------

    def check(
        self,
        merged: list[Merged],
        unique: list[Observation],
        conflicts: set[ObservationKey],
        now: dt.datetime,
        saved: dict[SeriesKey, SeriesState | None],
    ) -> Checked:
        """Run every check over all series at once; returns the stored ranges to mark as
        flat lines and the rows to write: new ones, and stored ones that are replaced or
        re-flagged. Each series' tail is kept for the next batch (the one it replaces
        goes to ``saved``)."""
        flat_rows = [row for item in merged for row in item.rows]
        if not flat_rows:
            return Checked([], [], [])
        flags = self._flags(merged, flat_rows, unique, now)
        inserted: list[Observation] = []
        changed: list[Observation] = []
        ranges: list[tuple[SeriesKey, dt.datetime, dt.datetime]] = []
        flagged = reflagged = 0
        position = 0
        for item in merged:
            count = len(item.rows)
            new_flagged, new_reflagged = self._decide(
                item, position, flags, conflicts, inserted, changed
            )
            flagged += new_flagged
            reflagged += new_reflagged
            first_new = item.first_new
            if (
                item.streaming
                and first_new > 0
                and not item.run_flagged
                and flags.flat_bits[position + item.run_start]
            ):
                # The kept run now qualifies: flag its stored values we no longer hold.
                ranges.append((item.key, item.rows[item.run_start].ts, item.rows[first_new - 1].ts))
            run_start = _trailing_run_start(flags, position, count)
            self._keep_state(
                item, run_start - position, bool(flags.flat_bits[position + count - 1]), saved
            )
            position += count
        return Checked(ranges, inserted, changed, flagged, reflagged)

    def _flags(
        self,
        merged: list[Merged],
        flat_rows: list[Observation],
        unique: list[Observation],
        now: dt.datetime,
    ) -> _Flags:
        """Every check over all rows at once: columns are built once over all rows (a
        batch holds thousands of short series) and each series' thresholds are spread
        over its rows."""
        n = len(flat_rows)
        lengths = [len(item.rows) for item in merged]
        sid = np.repeat(np.arange(len(merged), dtype=np.int64), lengths)
        rows_of_series = [self._check_settings(item.key) for item in merged]
        if len(self._settings_table) != len(self._settings_rows):
            self._settings_table = np.array(self._settings_rows, dtype=float)
        settings = self._settings_table[np.repeat(rows_of_series, lengths)]
        step, ratio, floor, flat_seconds, tolerance, valid_min, valid_max = settings[:, :7].T
        allow_negative = settings[:, 7].astype(bool)
        concentration = settings[:, 8].astype(bool)
        flat_floor = settings[:, 9]
        seconds = _epoch_seconds(flat_rows)
        ts = np.array(seconds, dtype=float)
        values = np.array(list(map(_value, flat_rows)), dtype=float)  # None → NaN
        previous = np.full(n, math.nan)  # NaN but in windows read from the store
        position = 0
        for item in merged:
            if item.previous is not None:
                previous[position : position + len(item.rows)] = item.previous
            position += len(item.rows)
        data_flags = list(map(_data_flag, flat_rows))

        # Each concentration's message flow (the zero-flow check reads no other row's).
        flow = _message_flow(unique)
        message_flow = np.full(n, math.nan)
        if flow:
            wanted = np.flatnonzero(concentration)
            keys = map(_message_key, map(flat_rows.__getitem__, wanted.tolist()))
            message_flow[wanted] = np.array(list(map(flow.get, keys)), dtype=float)  # None → NaN
        static = np.zeros(n, dtype=np.int64)
        static |= checks.device_flag(data_flags) * int(QualityFlag.DEVICE_FLAG)
        static |= checks.out_of_range(values, valid_min, valid_max) * int(QualityFlag.RANGE)
        static |= checks.negative(values, allow_negative) * int(QualityFlag.NEGATIVE)
        now_s = now.timestamp()
        static |= checks.future_time(ts, now_s, FUTURE_TOLERANCE.total_seconds()) * int(
            QualityFlag.FUTURE_TIME
        )
        static |= checks.past_time(ts, EARLIEST_PLAUSIBLE.timestamp()) * int(QualityFlag.PAST_TIME)
        static |= checks.zero_flow(concentration, message_flow) * int(QualityFlag.ZERO_FLOW)
        static |= checks.conflicting_duplicates(values, previous) * int(
            QualityFlag.CONFLICTING_DUPLICATE
        )
        # Values already flagged invalid by a point check do not take part in the series
        # checks (a fault value must not make its neighbours look like a spike).
        series_values = np.where(static & ~int(QualityFlag.CONFLICTING_DUPLICATE), np.nan, values)
        spike = checks.spikes(sid, ts, series_values, step, ratio, floor)
        flat = checks.flat_lines(
            sid,
            ts,
            series_values,
            tolerance,
            flat_seconds,
            floor=flat_floor,
            max_gap_seconds=checks.FLAT_MAX_GAP_SECONDS,
        )
        spike_array = spike * int(QualityFlag.SPIKE)
        flat_array = flat * int(QualityFlag.FLAT_LINE)
        return _Flags(
            (static | spike_array | flat_array).tolist(),
            spike_array.tolist(),
            flat_array.tolist(),
            series_values.tolist(),
            tolerance.tolist(),
            seconds,
        )

    def _decide(
        self,
        item: Merged,
        position: int,
        flags: _Flags,
        conflicts: set[ObservationKey],
        inserted: list[Observation],
        changed: list[Observation],
    ) -> tuple[int, int]:
        """One series' rows with their new flags: new rows to ``inserted`` (or to
        ``changed`` where they replace a stored row), re-flagged stored rows to
        ``changed``; returns (new rows flagged, stored rows re-flagged)."""
        rows = item.rows
        first_new = item.first_new
        new, replaced = item.new, item.replaced
        new_bits, spike_bits, flat_bits = flags.new_bits, flags.spike_bits, flags.flat_bits
        flagged = reflagged = 0
        for offset in range(len(rows)):
            row = rows[offset]
            index = position + offset
            if offset >= first_new if new is None else new[offset]:
                bits = new_bits[index]
                if conflicts and row[:4] in conflicts:
                    bits |= _CONFLICTING_DUPLICATE
                if bits:
                    flagged += 1
                if bits != row.quality_flag:
                    row = row._replace(quality_flag=bits)
                (changed if replaced is not None and replaced[offset] else inserted).append(row)
                continue
            if new is None:
                # The kept tail (most stored rows of a batch, so not a call): a
                # flat-line flag may be added; only its last row, whose right
                # neighbour just came, is re-judged as a spike.
                bits = row.quality_flag | flat_bits[index]
                if offset == first_new - 1 and offset > 0:
                    bits = (bits & ~_SPIKE) | spike_bits[index]
            else:
                bits = _restored_bits(item, offset, row, spike_bits[index], flat_bits[index])
            if bits != row.quality_flag:
                reflagged += 1
                rows[offset] = row = row._replace(quality_flag=bits)
                changed.append(row)
        return flagged, reflagged

    def _check_settings(self, key: SeriesKey) -> int:
        """The row of ``_settings_rows`` that holds one series' check thresholds as
        numbers, in the order :meth:`_flags` reads them (a series is a dictionary
        look-up; the rows become one array, indexed for all series at once)."""
        source = bool(self.is_source(key[0]))
        cache_key = (key[1], source)
        found = self._settings.get(cache_key)
        if found is None:
            t = self.thresholds_of(key[1], source)
            found = self._settings[cache_key] = len(self._settings_rows)
            self._settings_rows.append(
                (
                    math.nan if t.spike_step is None else t.spike_step,
                    math.nan if t.spike_ratio is None else t.spike_ratio,
                    _spike_floor(t),
                    math.nan if t.flat_hours is None else t.flat_hours * 3600,
                    t.flat_tolerance,
                    t.valid_min,
                    t.valid_max,
                    float(t.allow_negative),
                    float(t.role == "concentration" and source),
                    math.nan if t.flat_floor is None else t.flat_floor,
                )
            )
        return found

    def _keep_state(
        self,
        item: Merged,
        run_start: int,
        run_flat: bool,
        saved: dict[SeriesKey, SeriesState | None],
    ) -> None:
        """Keep the series' tail for the next batch, when the batch ends the series (and
        the tail it replaces in ``saved``, for a rollback)."""
        key, rows = item.key, item.rows
        saved[key] = self.state.get(key)  # a batch has one Merged per series
        last = len(rows) - 1
        if not (last >= item.first_new if item.new is None else item.new[last]):
            # Stored values follow the new ones: this was a backfill; re-read next time.
            self.state.pop(key, None)
            return
        if last < 2:  # one or two rows: keep them all
            kept, start = rows[:], run_start
        elif run_start >= last - 1:  # the run is within the last two rows
            kept, start = rows[-2:], run_start - (last - 1)
        else:
            kept, start = [rows[run_start], rows[-2], rows[-1]], 0
        self.state[key] = SeriesState(kept, start, run_flat)


def _restored_bits(
    item: Merged, offset: int, row: Observation, spike_bit: int, flat_bit: int
) -> int:
    """New flags of a stored row in a window read from the store (the kept tail's rows
    are re-flagged by :meth:`SeriesChecks._decide` itself).

    A spike needs both neighbours: only rows with both inside the window are re-judged.
    A flat-line flag is added when the row's run now qualifies; it is removed only
    where the whole run is visible, inside the window.
    """
    bits = row.quality_flag
    last_index = len(item.rows) - 1
    if 0 < offset < last_index:
        bits = (bits & ~_SPIKE) | spike_bit
        bits = (bits & ~_FLAT_LINE) | flat_bit
    else:
        bits |= flat_bit
    return bits


def _message_flow(rows: Sequence[Observation]) -> dict[tuple[int, str, dt.datetime], float]:
    """The flow value of each message (point, interval kind, timestamp) in the batch."""
    flow: dict[tuple[int, str, dt.datetime], float] = {}
    for row in rows:
        if row.parameter_code in FLOW_CODES:
            flow[(row.point_id, row.interval, row.ts)] = (
                math.nan if row.value is None else row.value
            )
    return flow


def _spike_floor(t: Thresholds) -> float:
    """The least level a spike's jump is compared with: the parameter's own, else a
    thousandth of its valid range's top (0 with none)."""
    if t.spike_floor is not None:
        return t.spike_floor
    return 0.001 * t.valid_max if math.isfinite(t.valid_max) else 0.0


def _trailing_run_start(flags: _Flags, position: int, count: int) -> int:
    """Index of the first row of the constant run that ends the series at ``position``
    (``count`` rows); a run does not bridge a gap longer than
    :data:`checks.FLAT_MAX_GAP_SECONDS`."""
    values, seconds = flags.checked, flags.seconds
    tolerance = flags.tolerances[position]
    index = position + count - 1
    while index > position:
        if not (abs(values[index] - values[index - 1]) <= tolerance):
            break
        if seconds[index] - seconds[index - 1] > checks.FLAT_MAX_GAP_SECONDS:
            break
        index -= 1
    return index


def _epoch_seconds(rows: Sequence[Observation]) -> list[float]:
    """Each row's timestamp as seconds since the epoch (a batch repeats few instants, so
    each is converted once; the loops over rows run in C)."""
    stamps = list(map(_timestamp, rows))
    seconds = {ts: ts.timestamp() for ts in set(stamps)}
    return list(map(seconds.__getitem__, stamps))
