"""Quality control on real data, and SaQC running the same checks on the same series.

Reads the real hourly files of ``../shared/data`` (never edits them): the 40 CNEMC days
(default), the 2019 year (``--data year``, streamed from its tar.xz) or the Beijing PRSA
four years (``--data prsa``; its CO is μg/m³ and is converted). Each series is one
station × parameter, checked as an ambient point: the thresholds of
``ecohub/quality/data/thresholds.csv`` (rows for ``ambient`` points where there are),
values already failing the range and negative checks masked before the series checks, the
flat-line floor and the 3-hour gap limit applied as ``docs/quality.md`` says the batch
should. Prints:

- flag rates per check and parameter over every station of the data set;
- on a fixed sample of stations (``--stations``; SaQC is slow), SaQC 2.x doing the same
  checks, one SaQC object per station-series: ``flagRange`` (range and negative),
  ``flagConstants`` (flat lines), ``flagOffset`` (spikes, up and down) — for each, the
  values flagged by both, by ours only, by SaQC only, and Cohen's kappa; SaQC's flat
  lines also with our detection-limit floor applied after it;
- wall time of both on that sample (ours: median of ``--repeats``; SaQC: one run) and
  the ratio;
- with ``--plots DIR``, the figures of ``docs/quality.md`` for that data set.

    python -m benchmarks.qc_saqc [--data days|year|prsa] [--stations 200] [--repeats 3]
                                 [--plots docs/img/quality]

The default (40 days, 200 stations) runs in about 40 seconds.

SaQC is a development dependency, imported here only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import tarfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from ecohub.quality import checks
from ecohub.quality.thresholds import Thresholds, thresholds_for

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CST = dt.timezone(dt.timedelta(hours=8))
# Published type → (HJ 212-2017 code, factor to the parameter table's unit).
CNEMC_TYPES = {
    "PM2.5": ("a34004", 1.0),
    "PM10": ("a34002", 1.0),
    "SO2": ("a21026", 0.001),
    "NO2": ("a21004", 0.001),
    "O3": ("a05024", 1.0),
    "CO": ("a21005", 1.0),
}
PRSA_FACTORS = {"PM2.5": 1.0, "PM10": 1.0, "SO2": 0.001, "NO2": 0.001, "O3": 1.0, "CO": 0.001}
NAMES = {code: name for name, (code, _) in CNEMC_TYPES.items()}


@dataclass
class Grid:
    """Station × hour values of each parameter (NaN: missing), in table units."""

    stations: list[str]
    hours: np.ndarray  # epoch seconds, sorted
    values: dict[str, np.ndarray]


# --- reading the real files ---------------------------------------------------------


def _cnemc_day(data: bytes) -> tuple[list[str], list[tuple[int, str, np.ndarray]]]:
    """One daily file's hourly rows of the six pollutants: (station codes, [(epoch
    seconds, code, values in table units)]). Plain splitting: the files are simple, and
    parsing 2,000 text columns with a data-frame library was five times slower."""
    lines = data.replace(b"\r", b"").split(b"\n")
    stations = lines[0].decode("utf-8-sig").split(",")[3:]
    rows = []
    for line in lines[1:]:
        parts = line.split(b",", 3)
        kind = parts[2].decode() if len(parts) == 4 else ""
        if kind not in CNEMC_TYPES or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        code, factor = CNEMC_TYPES[kind]
        cells = (parts[3].split(b",") + [b""] * len(stations))[: len(stations)]
        day = dt.datetime.strptime(parts[0].decode(), "%Y%m%d").replace(tzinfo=CST)
        ts = int((day + dt.timedelta(hours=int(parts[1]))).timestamp())
        row = np.array([float(c) if c.strip() else math.nan for c in cells]) * factor
        rows.append((ts, code, row))
    return stations, rows


def _cnemc_grid(days: Iterator[bytes]) -> Grid:
    parsed = [_cnemc_day(day) for day in days]
    index: dict[str, int] = {}
    for stations, _ in parsed:
        for station in stations:
            if station:  # 2023-01-21 has empty trailing columns; 3207A is there twice
                index.setdefault(station, len(index))
    hours = sorted({ts for _, rows in parsed for ts, _, _ in rows})
    column = {ts: i for i, ts in enumerate(hours)}
    values = {code: np.full((len(index), len(hours)), np.nan) for code, _ in CNEMC_TYPES.values()}
    for stations, rows in parsed:
        named = [i for i, s in enumerate(stations) if s]
        where = np.array([index[stations[i]] for i in named])
        for ts, code, row in rows:
            values[code][where, column[ts]] = row[named]
    return Grid(list(index), np.array(hours, dtype=np.int64), values)


def cnemc_days() -> Grid:
    folder = DATA / "cnemc" / "china_sites"
    return _cnemc_grid(p.read_bytes() for p in sorted(folder.glob("china_sites_*.csv")))


def cnemc_year() -> Grid:
    def members() -> Iterator[bytes]:
        path = DATA / "cnemc" / "year-2019" / "china_sites_2019_hourly.tar.xz"
        with tarfile.open(path, mode="r:xz") as archive:
            for member in archive:
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None and member.name.endswith(".csv"):
                    yield handle.read()

    return _cnemc_grid(members())


def prsa() -> Grid:
    frames = [
        pl.read_csv(path, null_values="NA", infer_schema_length=100_000)
        for path in sorted((DATA / "beijing-prsa").glob("PRSA_Data_*.csv"))
    ]
    first = frames[0]
    hours = [
        int(dt.datetime(y, m, d, h, tzinfo=CST).timestamp())
        for y, m, d, h in first.select("year", "month", "day", "hour").iter_rows()
    ]
    values = {
        CNEMC_TYPES[name][0]: np.vstack(
            [f[name].cast(pl.Float64).fill_null(np.nan).to_numpy() * factor for f in frames]
        )
        for name, factor in PRSA_FACTORS.items()
    }
    return Grid([f["station"][0] for f in frames], np.array(hours, dtype=np.int64), values)


# --- our checks, as the batch applies them to an ambient point ----------------------


def _number(value: float | None) -> float:
    return math.nan if value is None else value


def settings(code: str) -> Thresholds:
    """The thresholds of an ambient station's series of ``code``."""
    return thresholds_for(code, point="ambient")


def spike_floor(t: Thresholds) -> float:
    """The level under which the spike ratio is not read: the row's own floor, else a
    thousandth of the valid maximum (the batch's rule for rows without one)."""
    if t.spike_floor is not None:
        return t.spike_floor
    return 0.001 * t.valid_max if math.isfinite(t.valid_max) else 0.0


def ours(values: np.ndarray, hours: np.ndarray, t: Thresholds) -> dict[str, np.ndarray]:
    """Every applicable check over a station × hour block; masks of the same shape."""
    present = np.isfinite(values)
    sid, col = np.nonzero(present)  # rows sorted by series, then time: stored values only
    v = values[present]
    ts = hours[col].astype(float)
    n = len(v)

    def full(x: float) -> np.ndarray:
        return np.full(n, x)

    in_range = checks.out_of_range(v, t.valid_min, t.valid_max)
    negative = checks.negative(v, full(float(t.allow_negative)))
    series_v = np.where(in_range | negative, np.nan, v)
    spike = checks.spikes(
        sid,
        ts,
        series_v,
        full(_number(t.spike_step)),
        full(_number(t.spike_ratio)),
        full(spike_floor(t)),
    )
    flat = checks.flat_lines(
        sid,
        ts,
        series_v,
        full(t.flat_tolerance),
        full(_number(t.flat_hours) * 3600),
        floor=full(_number(t.flat_floor)),
        max_gap_seconds=checks.FLAT_MAX_GAP_SECONDS,
    )
    out = {}
    for name, mask in (("range", in_range | negative), ("spike", spike), ("flat_line", flat)):
        grid = np.zeros(values.shape, dtype=bool)
        grid[present] = mask
        out[name] = grid
    return out


# --- SaQC on the same series --------------------------------------------------------


def saqc_flags(values: np.ndarray, hours: np.ndarray, t: Thresholds) -> dict[str, np.ndarray]:
    """SaQC's nearest functions on the same block, one SaQC object per station-series
    (two to three times faster than one object holding every series as a field).
    flagRange masks what it flags for the next tests (as ours masks range and
    negative); the flat-line and spike tests each start from that, not from each other."""
    import pandas as pd
    import saqc

    index = pd.to_datetime(hours, unit="s", utc=True)
    low = 0.0 if not t.allow_negative else t.valid_min
    out: dict[str, list[np.ndarray]] = {"range": [], "flat_line": [], "spike": []}
    ratio = t.spike_ratio or 0.0
    for row in values:
        ranged = saqc.SaQC(pd.DataFrame({"x": row}, index=index)).flagRange(
            "x", min=low, max=t.valid_max
        )
        in_range = (ranged.flags["x"] > -np.inf).to_numpy()
        out["range"].append(in_range)
        if t.flat_hours is not None:
            # A window one hour longer than the limit holds flat_hours + 1 hourly values,
            # a run lasting flat_hours as ours counts it; min_periods as our minimum count
            # (SaQC's default, 2, flags two equal values alone after a gap).
            constants = ranged.flagConstants(
                "x",
                window=f"{int(t.flat_hours) + 1}h",
                thresh=t.flat_tolerance,
                min_periods=checks.FLAT_MIN_COUNT,
            )
            out["flat_line"].append((constants.flags["x"] > -np.inf).to_numpy() & ~in_range)
        if t.spike_step is not None or t.spike_ratio is not None:
            offsets = ranged.flagOffset(
                "x",
                thresh=t.spike_step,
                thresh_relative=(ratio, -ratio / (1 + ratio)) if ratio else None,
                tolerance=t.spike_step,
                window="150min",  # the value's two neighbours, one hour each side
            )
            out["spike"].append((offsets.flags["x"] > -np.inf).to_numpy() & ~in_range)
    return {check: np.vstack(rows) for check, rows in out.items() if rows}


# --- figures ------------------------------------------------------------------------


def kappa(ours_mask: np.ndarray, theirs: np.ndarray) -> float:
    n = ours_mask.size
    if n == 0:
        return math.nan
    a, b = ours_mask.mean(), theirs.mean()
    agree = (ours_mask == theirs).mean()
    expected = a * b + (1 - a) * (1 - b)
    return 1.0 if expected == 1 else float((agree - expected) / (1 - expected))


def median_time(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# --- figures for docs/quality.md ----------------------------------------------------


@dataclass
class Panel:
    """One plotted window: series (station, parameter code), and hours the previous
    check flagged (typed from its run, docs/quality.md) to mark."""

    title: str
    series: list[tuple[str, str]]
    start: str  # local time, YYYY-MM-DD HH
    hours: int
    before: list[tuple[str, str, str]] = field(default_factory=list)  # station, code, time
    log: bool = False


PANELS = {
    "days": {
        "quality_real_events.png": [
            Panel(
                "Dust front, Tianjin 1023A, 2019-04-05",
                [("1023A", "a34002"), ("1023A", "a34004")],
                "2019-04-04 18",
                36,
                [("1023A", "a34002", "2019-04-05 11")],
            ),
            Panel(
                "New Year's Eve, Ezhou, 2023-01-21 (2436A and two neighbours)",
                [("2436A", "a34004"), ("2437A", "a34004"), ("3654A", "a34004")],
                "2023-01-21 12",
                12,
                [("2436A", "a34004", "2023-01-21 22")],
            ),
            Panel(
                "Glitch, Haixi 2676A, 2025-01-24",
                [("2676A", "a34004"), ("2676A", "a34002")],
                "2025-01-23 18",
                30,
            ),
            Panel(
                "Dropout, Baicheng 2236A, 2025-01-24",
                [("2236A", "a34004"), ("2236A", "a34002")],
                "2025-01-23 18",
                30,
            ),
        ],
        "quality_span_checks.png": [
            Panel(
                "SO2, Beijing 1005A and 1009A, 2019-01-01..07 (span checks at 01:00-02:00)",
                [("1005A", "a21026"), ("1009A", "a21026")],
                "2019-01-01 00",
                168,
                log=True,
            ),
            Panel(
                "CO, Beijing 1005A, same days",
                [("1005A", "a21005")],
                "2019-01-01 00",
                168,
            ),
        ],
        "quality_flat_examples.png": [
            Panel(
                "SO2 at 3 μg/m³ for 10 h, Beijing 1001A (clean air at the resolution)",
                [("1001A", "a21026")],
                "2019-10-28 06",
                36,
            ),
            Panel(
                "PM2.5 stuck at 57 μg/m³ for 15 h, Huangshi 2423A",
                [("2423A", "a34004"), ("2426A", "a34004")],
                "2019-01-03 00",
                36,
            ),
        ],
    },
    "prsa": {
        "quality_prsa.png": [
            Panel(
                "Fireworks, Dingling, Spring Festival eve 2016",
                [("Dingling", "a34002"), ("Dingling", "a34004")],
                "2016-02-07 18",
                18,
                [("Dingling", "a34002", "2016-02-08 02")],
            ),
            Panel(
                "O3 at 107 μg/m³ for 50 h at Gucheng and Tiantan alike (filled upstream), 2013-03",
                [("Gucheng", "a05024"), ("Tiantan", "a05024")],
                "2013-03-15 00",
                96,
            ),
            Panel(
                "NO2 dropouts to 2 μg/m³, Aotizhongxin, 2016-12",
                [("Aotizhongxin", "a21004")],
                "2016-12-17 12",
                48,
            ),
        ],
    },
    "year": {
        "quality_pm10_gusts.png": [
            Panel(
                f"PM10, {city}, {day}: one hour at three stations (PM2.5 dashed)",
                [(station, code) for station in stations for code in ("a34002", "a34004")],
                start,
                12,
                [(station, "a34002", peak) for station in stations],
            )
            for city, day, stations, start, peak in (
                (
                    "Kashgar",
                    "2019-07-31",
                    ("2698A", "2699A", "2700A"),
                    "2019-07-31 14",
                    "2019-07-31 20",
                ),
                (
                    "Jinzhong",
                    "2019-07-02",
                    ("2171A", "2173A", "2865A"),
                    "2019-07-02 14",
                    "2019-07-02 20",
                ),
                (
                    "Wuhai",
                    "2019-05-11",
                    ("2186A", "2187A", "2188A"),
                    "2019-05-11 14",
                    "2019-05-11 21",
                ),
            )
        ],
    },
}
UNITS = {"a21026": 1000, "a21004": 1000}  # plotted in μg/m³


def _local(text: str) -> int:
    return int(dt.datetime.strptime(text, "%Y-%m-%d %H").replace(tzinfo=CST).timestamp())


def plot_panels(grid: Grid, data: str, folder: Path) -> list[Path]:
    """The figures of ``data``: each series with the values ours flags now (red) and the
    hours the previous check flagged (open circles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, panels in PANELS.get(data, {}).items():
        fig, axes = plt.subplots(
            len(panels), 1, figsize=(7.5, 2.1 * len(panels)), squeeze=False, dpi=90
        )
        for ax, panel in zip(axes[:, 0], panels, strict=True):
            first = _local(panel.start)
            window = (grid.hours >= first) & (grid.hours < first + panel.hours * 3600)
            x = (grid.hours[window] - first) / 3600
            for station, code in panel.series:
                row = grid.stations.index(station)
                masks = ours(grid.values[code][row : row + 1], grid.hours, settings(code))
                y = grid.values[code][row, window] * UNITS.get(code, 1)
                style = "--" if code == "a34004" and len(panel.series) > 4 else "-"
                ax.plot(x, y, style, marker=".", ms=3, lw=1, label=f"{station} {NAMES[code]}")
                hit = (masks["spike"] | masks["flat_line"])[0, window]
                ax.plot(x[hit], y[hit], "o", color="red", ms=5)
            for station, code, when in panel.before:
                row = grid.stations.index(station)
                hour = int(np.searchsorted(grid.hours, _local(when)))
                value = grid.values[code][row, hour] * UNITS.get(code, 1)
                ax.plot((grid.hours[hour] - first) / 3600, value, "o", mfc="none", mec="k", ms=9)
            if panel.log:
                ax.set_yscale("log")
            ax.set_title(panel.title, fontsize=9, loc="left")
            ax.set_xlabel(f"hours from {panel.start}:00 (Beijing time)", fontsize=8)
            ax.set_ylabel("μg/m³ (CO mg/m³)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6, ncol=4, loc="upper left", frameon=False)
        fig.text(
            0.99,
            0.005,
            "red: flagged now; open circle: flagged by the previous check",
            ha="right",
            fontsize=7,
        )
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        path = folder / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    if data == "days":
        written.append(plot_flat_resolution(grid, folder / "quality_flat_resolution.png"))
    return written


RESOLUTION = {"a21005": 0.1, "a21026": 0.001, "a21004": 0.001}  # else 1 μg/m³


def plot_flat_resolution(grid: Grid, path: Path) -> Path:
    """Share of values inside a constant run as long as the parameter's flat-line
    limit, against the value in reporting steps: the detection-limit plateau."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.0), dpi=90)
    steps = np.arange(1, 61)
    for code, values in grid.values.items():
        t = settings(code)
        present = np.isfinite(values)
        sid, col = np.nonzero(present)
        v = values[present]
        n = len(v)
        flat = checks.flat_lines(
            sid,
            grid.hours[col].astype(float),
            v,
            np.zeros(n),
            np.full(n, _number(t.flat_hours) * 3600),
            max_gap_seconds=checks.FLAT_MAX_GAP_SECONDS,
        )
        level = np.rint(v / RESOLUTION.get(code, 1.0)).astype(int)
        counts = np.bincount(np.clip(level, 0, 61), minlength=62)[1:61]
        hits = np.bincount(np.clip(level[flat], 0, 61), minlength=62)[1:61]
        share = np.where(counts >= 200, hits / np.maximum(counts, 1), np.nan)
        ax.plot(
            steps, 100 * share, marker=".", ms=3, lw=1, label=f"{NAMES[code]} ({t.flat_hours:g} h)"
        )
    ax.axvline(10, color="k", lw=0.8, ls="--")
    ax.text(10.5, 30, "floor: 10 steps", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("value in reporting steps (1 μg/m³; CO 0.1 mg/m³)", fontsize=8)
    ax.set_ylabel("% of values in a flat run", fontsize=8)
    ax.set_title("Constant runs against the value, 40 CNEMC days", fontsize=9, loc="left")
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", choices=("days", "year", "prsa"), default="days")
    parser.add_argument("--stations", type=int, default=200, help="SaQC sample (0: no SaQC)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plots", type=Path, help="write this data set's figures here")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"no real data at {DATA}")
    warnings.filterwarnings("ignore", module="saqc")
    started = time.perf_counter()
    grid = {"days": cnemc_days, "year": cnemc_year, "prsa": prsa}[args.data]()
    print(
        f"{args.data}: {len(grid.stations):,} stations × {len(grid.hours):,} hours, read in "
        f"{time.perf_counter() - started:.1f} s"
    )
    print_rates(grid)
    if args.stations > 0:
        compare_with_saqc(grid, args.stations, args.repeats)
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        for path in plot_panels(grid, args.data, args.plots):
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


def print_rates(grid: Grid) -> None:
    print("\nflag rates, every station (values flagged / values present):")
    print(f"{'parameter':9s} {'values':>11s} {'range':>8s} {'spike':>16s} {'flat line':>17s}")
    flagged = total = 0
    for code, values in grid.values.items():
        masks = ours(values, grid.hours, settings(code))
        n = int(np.isfinite(values).sum())
        cells = [f"{int(masks[k].sum()):>7,} ({masks[k].sum() / n:.4%})" for k in masks]
        print(f"{NAMES[code]:9s} {n:>11,} {cells[0]:>8s} {cells[1]:>16s} {cells[2]:>17s}")
        flagged += int((masks["range"] | masks["spike"] | masks["flat_line"]).sum())
        total += n
    print(f"{'all':9s} {total:>11,} any check: {flagged:,} ({flagged / total:.4%})")


def compare_with_saqc(grid: Grid, stations: int, repeats: int) -> None:
    rng = np.random.default_rng(23)
    with_data = np.flatnonzero(np.isfinite(grid.values["a34004"]).any(axis=1))
    sample = np.sort(rng.choice(with_data, min(stations, len(with_data)), replace=False))
    print(f"\nSaQC {_saqc_version()} against ours on {len(sample)} stations (seed 23):")
    print(
        f"{'parameter':9s} {'check':10s} {'both':>6s} {'ours only':>10s} {'SaQC only':>10s} "
        f"{'kappa':>6s}"
    )
    ours_total = saqc_total = 0.0
    for code, values in grid.values.items():
        block = values[sample]
        t = settings(code)
        ours_total += median_time(partial(ours, block, grid.hours, t), repeats)
        mine = ours(block, grid.hours, t)
        started = time.perf_counter()
        theirs = saqc_flags(block, grid.hours, t)
        saqc_total += time.perf_counter() - started
        present = np.isfinite(block)
        for check, their_mask in theirs.items():
            a, b = mine[check][present], their_mask[present]
            print(
                f"{NAMES[code]:9s} {check:10s} {int((a & b).sum()):>6,} {int((a & ~b).sum()):>10,} "
                f"{int((~a & b).sum()):>10,} {kappa(a, b):>6.3f}"
            )
            if check == "flat_line" and t.flat_floor is not None:
                floored = b & (block[present] > t.flat_floor)
                print(
                    f"{'':9s} {'+ floor':10s} {int((a & floored).sum()):>6,} "
                    f"{int((a & ~floored).sum()):>10,} {int((~a & floored).sum()):>10,} "
                    f"{kappa(a, floored):>6.3f}"
                )
    values_n = int(sum(np.isfinite(v[sample]).sum() for v in grid.values.values()))
    print(
        f"\nspeed on the sample ({values_n:,} values, 6 parameters): ours {ours_total:.3f} s "
        f"(median of {repeats}), SaQC {saqc_total:.1f} s (one run); "
        f"SaQC takes {saqc_total / ours_total:,.0f}× as long"
    )


def _saqc_version() -> str:
    import saqc

    return str(saqc.__version__)


if __name__ == "__main__":
    main()
