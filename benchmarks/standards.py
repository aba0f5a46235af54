"""Speed of the standards library on a national-scale year of data.

Synthetic hourly concentrations (fixed seed) for 1,700 stations × 365 days × 24 hours
(14.9 million station-hours, six pollutants). Prints:

- hourly AQI (HJ 633-2012): station-hours per second (median of ``--repeats`` runs);
- a full annual assessment (HJ 663-2013): daily means with validity, O3 daily maximum
  8-hour means, daily AQI, annual means and percentiles, compliance, comprehensive index
  and good-day ratios for every station: seconds, and the process's peak memory.

Targets: AQI ≥ 5 million station-hours/s; assessment < 60 s and < 8 GB.

    python -m benchmarks.standards [--stations 1700] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import time

import numpy as np

from ecohub.standards.air_assessment import (
    annual_compliance,
    annual_statistics,
    category_days,
    comprehensive_index,
    daily_max,
    daily_mean,
    o3_daily_max_8h,
)
from ecohub.standards.aqi import daily_aqi, hourly_aqi

DAYS = 365
MEANS = {"SO2": 12.0, "NO2": 30.0, "PM10": 70.0, "PM2.5": 40.0, "CO": 0.8, "O3": 70.0}


def synthetic_year(stations: int, seed: int = 633) -> dict[str, np.ndarray]:
    """Log-normal hourly values, shape (stations, days, 24), with 2 % missing."""
    rng = np.random.default_rng(seed)
    shape = (stations, DAYS, 24)
    data = {}
    for name, mean in MEANS.items():
        values = rng.lognormal(np.log(mean), 0.6, size=shape)
        values = np.round(values, 1) if name == "CO" else np.round(values)
        values[rng.random(shape) < 0.02] = np.nan
        data[name] = values
    return data


def annual_assessment(data: dict[str, np.ndarray]) -> dict[str, object]:
    months = np.array([(dt.date(2023, 1, 1) + dt.timedelta(days=d)).month for d in range(DAYS)])
    daily = {name: daily_mean(values) for name, values in data.items() if name != "O3"}
    o3_8h = o3_daily_max_8h(data["O3"])
    o3_1h = daily_max(data["O3"])
    day_aqi = daily_aqi(
        so2=daily["SO2"],
        no2=daily["NO2"],
        pm10=daily["PM10"],
        pm25=daily["PM2.5"],
        co=daily["CO"],
        o3_1h_max=o3_1h,
        o3_8h_max=o3_8h,
    ).aqi
    stats = {name: annual_statistics(name, values, months) for name, values in daily.items()}
    stats["O3"] = annual_statistics("O3", o3_8h, months)
    compliance = {name: annual_compliance(stat) for name, stat in stats.items()}
    figures = {
        name: (stat.mean if stat.mean is not None else stat.percentile)
        for name, stat in stats.items()
    }
    index = comprehensive_index(figures)
    good = [category_days(day_aqi[station]).good_ratio for station in range(day_aqi.shape[0])]
    return {"compliance": compliance, "index": index, "good_ratio": good}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--stations", type=int, default=1700)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = synthetic_year(args.stations)
    station_hours = args.stations * DAYS * 24
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        hourly_aqi(
            so2=data["SO2"],
            no2=data["NO2"],
            pm10=data["PM10"],
            pm25=data["PM2.5"],
            co=data["CO"],
            o3=data["O3"],
        )
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"hourly AQI: {station_hours:,} station-hours in {median:.2f} s (median of "
        f"{args.repeats}) = {station_hours / median:,.0f} station-hours/s"
    )
    started = time.perf_counter()
    result = annual_assessment(data)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    good = np.nanmean(np.asarray(result["good_ratio"], dtype=float))
    print(
        f"annual assessment of {args.stations:,} stations: {seconds:.1f} s, "
        f"peak memory {peak:.2f} GB (mean good-day ratio {good:.1%})"
    )


if __name__ == "__main__":
    main()
