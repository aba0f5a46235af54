"""The moving averages of CNEMC's hourly station files recomputed from their hourly
values (GB 3095-2012, HJ 663-2013; ``ecohub.standards.moving_averages``) and compared
with the published ones, across file boundaries; and recomputed for files that do not
publish them (the 2019 archive). The files are read by
:mod:`ecohub.ingest.cnemc_validation`, one at a time, each station's last hours carried
from one day to the next.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ecohub.ingest.cnemc_bulk import members
from ecohub.ingest.cnemc_validation import (
    HOURLY_TYPES,
    MAX_EXAMPLES,
    CnemcFileError,
    FloatArray,
    StationDay,
    read_station_day,
    station_label,
)
from ecohub.standards.moving_averages import (
    CNEMC_REALTIME,
    CNEMC_REALTIME_2025,
    EIGHT_HOURS,
    HOURS_PER_DAY,
    MIN_HOURS_8H,
    MIN_HOURS_24H,
    MovingAverageRules,
    hour_in_day,
    is_half,
    mean_24h,
    o3_1h_max_24h,
    round_half_even,
    valid_hours,
    window_reach,
)

# Published moving average → (hourly type it is computed from, decimals published).
MEAN_24H_TYPES = {
    "PM2.5_24h": ("PM2.5", 0),
    "PM10_24h": ("PM10", 0),
    "SO2_24h": ("SO2", 0),
    "NO2_24h": ("NO2", 0),
    "CO_24h": ("CO", 1),
}
MOVING_AVERAGE_TYPES = (*MEAN_24H_TYPES, "O3_8h", "O3_24h", "O3_8h_24h")
# GB 3095-2012 Table 4: the valid hours each type needs (the maxima: one).
STANDARD_HOURS = {**{name: MIN_HOURS_24H for name in MEAN_24H_TYPES}, "O3_8h": MIN_HOURS_8H}
# Hours of history kept per station between consecutive days: the longest window
# (the 24-hour maximum of 8-hour means reaches back 24 + 7 hours) with room to spare.
TAIL_HOURS = 2 * HOURS_PER_DAY

# Mismatch causes.
HOUR_NOT_PUBLISHED = "window has hours whose 1-h value is not published"
HALF_AT_PRECISION = "mean lies on a half at the published precision"
OTHER = "full window, not a half: other"


# --- moving averages ------------------------------------------------------------------


@dataclass
class Agreement:
    """Published values of one moving-average type against the recomputed ones.

    ``compared``/``exact`` cover station-hours whose whole window lies in the files read;
    ``first_day_*`` those whose window reaches before the first day of a run of
    consecutive days (recomputed from the hours there are), ``absent_hour_*`` those whose
    window covers an hour the files have no rows for."""

    compared: int = 0
    exact: int = 0
    first_day_compared: int = 0
    first_day_exact: int = 0
    absent_hour_compared: int = 0
    absent_hour_exact: int = 0
    published_not_recomputed: int = 0  # published, but no valid hour to recompute from
    recomputed_not_published: int = 0
    below_standard_hours: int = 0  # published from fewer valid hours than GB 3095 Table 4
    # Of ``compared``: windows with every hour's 1-h value published.
    full_compared: int = 0
    full_exact: int = 0
    per_day: dict[dt.date, list[int]] = field(default_factory=dict)  # [compared, exact]
    causes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exact_rate(self) -> float:
        return self.exact / self.compared if self.compared else float("nan")

    @property
    def full_rate(self) -> float:
        return self.full_exact / self.full_compared if self.full_compared else float("nan")

    @property
    def first_day_rate(self) -> float:
        if not self.first_day_compared:
            return float("nan")
        return self.first_day_exact / self.first_day_compared


@dataclass
class MovingAverageReport:
    files: int = 0
    runs: list[tuple[dt.date, dt.date]] = field(default_factory=list)
    types: dict[str, Agreement] = field(
        default_factory=lambda: {name: Agreement() for name in MOVING_AVERAGE_TYPES}
    )
    rules: Counter[str] = field(default_factory=Counter)  # rules' name → files
    # Files whose O3_8h and O3_8h_24h rows hold each other's values (read swapped).
    o3_8h_swapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _History:
    """Each station's last TAIL_HOURS hours, carried from one day to the next."""

    date: dt.date
    stations: dict[str, int]
    values: dict[str, FloatArray]  # hourly type → (stations, TAIL_HOURS)
    known: NDArray[np.bool_]  # (TAIL_HOURS,): the hour's rows were read


def validate_moving_averages(
    paths: Iterable[Path | str],
    *,
    rules: MovingAverageRules | str = "auto",
    o3_8h_rows: str = "auto",
) -> MovingAverageReport:
    """Recompute the published moving averages from the published 1-hour values, across
    file boundaries (the previous day supplies the earlier hours when the dates are
    consecutive; give the paths in date order), and compare them, rounded half-even
    (GB/T 8170) to the published precision.

    ``rules``: a :class:`~ecohub.standards.moving_averages.MovingAverageRules` such as
    ``STANDARD`` or ``CNEMC_REALTIME``; ``"auto"`` (default) takes the publisher's rules
    per file: ``CNEMC_REALTIME``, or ``CNEMC_REALTIME_2025`` for a file that publishes
    (almost) no O3 8-hour mean at the day's first 7 hours. ``report.rules`` counts them.

    ``o3_8h_rows``: the 2025 files publish the 8-hour mean in the ``O3_8h_24h`` row and
    its maximum in the ``O3_8h`` row. ``"auto"`` reads a file swapped when its
    ``O3_8h_24h`` values are below its ``O3_8h`` values more often than above (a maximum
    cannot be below the mean it is taken over) and lists it in ``o3_8h_swapped``;
    ``"as_labelled"`` and ``"swapped"`` force either reading.
    """
    return _validate_days((read_station_day(path) for path in paths), rules, o3_8h_rows)


def recompute_moving_averages(
    sources: Iterable[Path], published: Iterable[Path | str] = ()
) -> MovingAverageReport:
    """The moving averages of files that do not publish them (the 2019 archive keeps
    only the hourly types), recomputed from the hourly values with the publisher's
    rules, history carried from day to day; where a full file of the same date is in
    ``published``, its published averages are compared with the recomputed ones.

    ``sources``: files, folders and archives as ``ecohub import cnemc`` reads them,
    in date order. In the report, ``recomputed_not_published`` counts the averages
    recomputed where none is published, and ``compared``/``exact`` the agreement on the
    days of ``published``."""
    full = {day.date: day for day in (read_station_day(path) for path in published)}

    def days() -> Iterator[StationDay]:
        for member in members(sources):
            if member.data is None:
                raise CnemcFileError(f"{member.name}: {member.error}")
            day = read_station_day(member.name, member.data)
            yield _with_published(day, full[day.date]) if day.date in full else day

    return _validate_days(days(), "auto", "auto")


def _with_published(day: StationDay, full: StationDay) -> StationDay:
    """``day`` with the moving averages ``full`` publishes for its stations."""
    index = {code: i for i, code in enumerate(full.stations)}
    rows = np.array([index.get(code, -1) for code in day.stations], dtype=np.int64)
    values = dict(day.values)
    for name in MOVING_AVERAGE_TYPES:
        taken = np.full((len(day.stations), HOURS_PER_DAY), np.nan)
        taken[rows >= 0] = full.values[name][rows[rows >= 0]]
        values[name] = taken
    return replace(day, values=values)


def _validate_days(
    days: Iterable[StationDay], rules: MovingAverageRules | str, o3_8h_rows: str
) -> MovingAverageReport:
    if o3_8h_rows not in {"auto", "as_labelled", "swapped"}:
        raise ValueError(f"o3_8h_rows must be auto, as_labelled or swapped; got {o3_8h_rows!r}")
    if isinstance(rules, str) and rules != "auto":
        raise ValueError(f"rules must be MovingAverageRules or 'auto'; got {rules!r}")
    report = MovingAverageReport()
    history: _History | None = None
    for day in days:
        report.files += 1
        report.notes.extend(f"{day.path.name}: {note}" for note in day.notes)
        if history is not None and day.date == history.date + dt.timedelta(days=1):
            report.runs[-1] = (report.runs[-1][0], day.date)
        else:
            history = None
            report.runs.append((day.date, day.date))
        published = dict(day.values)
        if _o3_8h_swapped(day, o3_8h_rows):
            report.o3_8h_swapped.append(day.path.name)
            published["O3_8h"], published["O3_8h_24h"] = published["O3_8h_24h"], published["O3_8h"]
        file_rules = _publisher_rules(published) if isinstance(rules, str) else rules
        report.rules[file_rules.name] += 1
        history = _compare_day(day, published, history, file_rules, report)
    return report


def _o3_8h_swapped(day: StationDay, option: str) -> bool:
    if option != "auto":
        return option == "swapped"
    mean, peak = day.values["O3_8h"], day.values["O3_8h_24h"]
    with np.errstate(invalid="ignore"):
        return _count(peak < mean) > _count(peak > mean)


def _publisher_rules(published: dict[str, FloatArray]) -> MovingAverageRules:
    """CNEMC_REALTIME_2025 when the day's hours 1-7 carry under a tenth as many O3 8-hour
    means as its hours 8-23, else CNEMC_REALTIME."""
    present = ~np.isnan(published["O3_8h"])
    first_hours = _count(present[:, 1:EIGHT_HOURS]) / (EIGHT_HOURS - 1)
    later_hours = _count(present[:, EIGHT_HOURS:]) / (HOURS_PER_DAY - EIGHT_HOURS)
    return CNEMC_REALTIME_2025 if first_hours < 0.1 * later_hours else CNEMC_REALTIME


def _compare_day(
    day: StationDay,
    published: dict[str, FloatArray],
    history: _History | None,
    rules: MovingAverageRules,
    report: MovingAverageReport,
) -> _History:
    """Compare one file's moving averages; return the history for the next day."""
    n_stations = len(day.stations)
    rows = [history.stations.get(code, -1) for code in day.stations] if history else []
    take = np.array(rows, dtype=np.int64)
    hourly: dict[str, FloatArray] = {}
    for name in HOURLY_TYPES:
        tail = np.full((n_stations, TAIL_HOURS), np.nan)
        if history is not None:
            tail[take >= 0] = history.values[name][take[take >= 0]]
        hourly[name] = np.concatenate([tail, day.values[name]], axis=1)
    known = np.concatenate(
        [history.known if history is not None else np.zeros(TAIL_HOURS, bool), day.hours]
    )
    n = TAIL_HOURS + HOURS_PER_DAY
    before = np.zeros(n, dtype=bool)
    before[:TAIL_HOURS] = history is None
    context = _Context(day, published, known, before, report)
    first_hour = 0  # the label of element 0: the tail starts at a day's hour 0
    # The five 24-hour means (and O3's valid hours over 24 h) in one pass.
    sources = np.stack([hourly[source] for source, _ in MEAN_24H_TYPES.values()] + [hourly["O3"]])
    trailing_24 = window_reach(n, HOURS_PER_DAY)
    means = mean_24h(sources[:-1], min_hours=rules.min_hours_24h)
    valid_24 = valid_hours(sources, trailing_24)
    for index, (name, (_, decimals)) in enumerate(MEAN_24H_TYPES.items()):
        context.compare(name, means[index], valid_24[index], trailing_24, decimals=decimals)
    o3 = hourly["O3"]
    context.compare("O3_24h", o3_1h_max_24h(o3), valid_24[-1], trailing_24)
    eight = rules.eight_hour(o3, first_hour)
    reach_8 = window_reach(n, EIGHT_HOURS, first_hour=first_hour if rules.o3_within_day else None)
    context.compare("O3_8h", eight, valid_hours(o3, reach_8), reach_8)
    if rules.o3_within_day:  # the day's hours so far
        reach_peak = hour_in_day(n, first_hour)
    else:  # 24 hours of 8-hour windows
        reach_peak = np.full(n, HOURS_PER_DAY + EIGHT_HOURS - 2, dtype=np.int64)
    peak = rules.eight_hour_max(round_half_even(eight), first_hour)
    context.compare("O3_8h_24h", peak, valid_hours(o3, reach_peak), reach_peak)
    return _History(
        date=day.date,
        stations={code: i for i, code in enumerate(day.stations)},
        values={name: hourly[name][:, -TAIL_HOURS:] for name in HOURLY_TYPES},
        known=known[-TAIL_HOURS:],
    )


@dataclass(frozen=True)
class _Context:
    """One file's hours: the last 24 of the arrays (tail + day) that ``known`` (the
    hour's rows were read) and ``before`` (before the run's first day) describe."""

    day: StationDay
    published: dict[str, FloatArray]
    known: NDArray[np.bool_]
    before: NDArray[np.bool_]
    report: MovingAverageReport

    def compare(
        self,
        name: str,
        unrounded_all: FloatArray,
        valid_all: FloatArray,
        reach: NDArray[np.int64],
        *,
        decimals: int = 0,
    ) -> None:
        """Compare one type: ``unrounded_all`` is recomputed over tail + day,
        ``valid_all`` counts the published 1-h values in each hour's source window,
        which reaches ``reach[h]`` hours back."""
        agreement = self.report.types[name]
        published = self.published[name]
        standard_hours = STANDARD_HOURS.get(name, 1)
        n = valid_all.shape[-1]
        today = slice(n - HOURS_PER_DAY, n)
        unrounded = unrounded_all[:, today]
        recomputed = round_half_even(unrounded, decimals)
        valid = valid_all[:, today]
        length = (reach + 1)[today]
        # Per hour: does the window reach before the run, or over an hour without rows?
        spans = [(max(end - int(reach[end]), 0), end + 1) for end in range(n - HOURS_PER_DAY, n)]
        first_day = np.array([self.before[a:b].any() for a, b in spans])
        absent = np.array([not self.known[a:b].all() for a, b in spans]) & ~first_day
        whole = ~first_day & ~absent
        rows = self.day.hours  # an hour without rows publishes nothing
        has_published = ~np.isnan(published) & rows
        has_recomputed = ~np.isnan(recomputed) & rows
        both = has_published & has_recomputed
        equal = both & (np.abs(published - recomputed) < 1e-9)
        full = valid >= length
        agreement.published_not_recomputed += _count(has_published & ~has_recomputed)
        agreement.recomputed_not_published += _count(~has_published & has_recomputed)
        agreement.below_standard_hours += _count(has_published & (valid < standard_hours))
        agreement.first_day_compared += _count(both & first_day)
        agreement.first_day_exact += _count(equal & first_day)
        agreement.absent_hour_compared += _count(both & absent)
        agreement.absent_hour_exact += _count(equal & absent)
        agreement.compared += _count(both & whole)
        agreement.exact += _count(equal & whole)
        agreement.full_compared += _count(both & whole & full)
        agreement.full_exact += _count(equal & whole & full)
        tally = agreement.per_day.setdefault(self.day.date, [0, 0])
        tally[0] += _count(both & whole)
        tally[1] += _count(equal & whole)
        differ = both & ~equal & whole
        if not differ.any():
            return
        half = differ & full & is_half(unrounded, decimals)
        for cause, mask in (
            (HOUR_NOT_PUBLISHED, differ & ~full),
            (HALF_AT_PRECISION, half),
            (OTHER, differ & full & ~half),
        ):
            count = _count(mask)
            if not count:
                continue
            agreement.causes[cause] += count
            examples = agreement.examples.setdefault(cause, [])
            hours, stations = np.nonzero(mask.T)  # in time order
            for hour, station in list(zip(hours, stations, strict=True))[
                : MAX_EXAMPLES - len(examples)
            ]:
                examples.append(
                    f"{station_label(self.day, station, hour)} {name}: published "
                    f"{published[station, hour]:g}, recomputed {recomputed[station, hour]:g} "
                    f"(unrounded {unrounded[station, hour]:.4g}, "
                    f"{int(valid[station, hour])} of {int(length[hour])} hours published)"
                )


def _count(mask: NDArray[np.bool_]) -> int:
    return int(np.count_nonzero(mask))
