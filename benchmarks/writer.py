"""The ingestion pipeline's writer alone, without network or processes: values/s and
microseconds per value of each step, on gateway-shaped batches, SQLite and PostgreSQL.

Batches are what the HJ 212 gateway hands its writer under load: ``--points`` loggers
each sending one real-time packet (six flue-gas or waste-water values) per minute,
``--per-batch`` packets per batch, for ``--minutes`` minutes. Rollups are deferred as in
the gateway and the queue is recomputed every ``--flush-every`` batches (with 1,000
points and 500 packets per batch, every 4 batches is every second minute): each time
every hour before the hour in progress, as a writer process's cycle does, and all of
them after the last batch.

Each step's time is measured by wrapping the pipeline's functions with a timer; a step
called inside another (hours inside the recomputation) is counted in both.

    python -m benchmarks.writer [--points 1000] [--minutes 12] [--per-batch 500]
                                [--flush-every 4] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, select

import ecohub.ingest.pipeline as pipeline_module
import ecohub.timeseries.rollups as rollups_module
from benchmarks._common import scratch_store
from ecohub.alarms.evaluate import AlarmEvaluator
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry.models import MonitoringPoint
from ecohub.simulate.hj212 import PROFILES
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.observations import Observation

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
STEPS: list[tuple[Any, str, str]] = [
    (Pipeline, "_merge", "merge with kept tails / stored windows"),
    (Pipeline, "_check", "quality checks"),
    (pipeline_module, "insert_new_rows", "store raw values"),
    (pipeline_module, "queue_hours", "queue touched hours"),
    (AlarmEvaluator, "evaluate", "alarms (last seen; rules at flush)"),
    (pipeline_module, "take_queue_entries", "take queued hours"),
    (rollups_module, "recompute_hours", "recompute hours"),
    (rollups_module, "recompute_days", "recompute days"),
]


@contextmanager
def timed_steps() -> Iterator[dict[str, float]]:
    """Wrap each step's function with a timer for the duration of the block."""
    totals: dict[str, float] = defaultdict(float)
    originals = []
    for owner, name, label in STEPS:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def timer(function: Callable[..., Any], label: str = label) -> Callable[..., Any]:
            @functools.wraps(function)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    totals[label] += time.perf_counter() - started

            return wrapped

        setattr(owner, name, timer(original))
    try:
        yield totals
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def batches(engine: Engine, points: int, minutes: int, per_batch: int) -> list[list[Observation]]:
    simulated = register_simulated_points(engine, points)
    with engine.connect() as connection:
        ids = dict(connection.execute(select(MonitoringPoint.mn, MonitoringPoint.id)).all())
    rng = random.Random(1)
    packets = []
    for minute in range(minutes):
        ts = START + dt.timedelta(minutes=minute)
        for point in simulated:
            packets.append(
                [
                    Observation(
                        ids[point.mn],
                        code,
                        "rt",
                        ts,
                        round(max(0.0, rng.gauss(mean, spread)), 3),
                        "N",
                        0,
                        "hj212",
                    )
                    for code, mean, spread, _mass in PROFILES[point.kind]
                ]
            )
    return [
        [row for packet in packets[i : i + per_batch] for row in packet]
        for i in range(0, len(packets), per_batch)
    ]


def bench_backend(engine: Engine, args: argparse.Namespace) -> None:
    backend = engine.dialect.name
    work = batches(engine, args.points, args.minutes, args.per_batch)
    pipeline = Pipeline(engine, rollup_delay=3600)  # flushed here, not by the clock
    pipeline.directory.refresh()
    pipeline.flush_rollups()
    values = sum(len(batch) for batch in work)
    processing = flushing = 0.0
    with timed_steps() as steps:
        for index, batch in enumerate(work):
            started = time.perf_counter()
            pipeline.process(batch)
            processing += time.perf_counter() - started
            last = index == len(work) - 1
            if index % args.flush_every == args.flush_every - 1 or last:
                started = time.perf_counter()
                # A cycle, as the writer process runs one: every queued hour before the
                # hour in progress (refreshed every few minutes); at the end, all.
                pipeline.flush_rollups(limit=None if last else 1_000_000)
                flushing += time.perf_counter() - started
    total = processing + flushing
    print(
        f"{backend:<11} {values:,} values in {len(work)} batches: {values / total:,.0f} values/s "
        f"({1e6 * processing / values:.1f} µs/value storing, "
        f"{1e6 * flushing / values:.1f} µs/value recomputing rollups)"
    )
    for label, seconds in sorted(steps.items(), key=lambda item: -item[1]):
        print(f"{'':<11}   {1e6 * seconds / values:6.1f} µs/value  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--minutes", type=int, default=12)
    parser.add_argument("--per-batch", type=int, default=500)
    parser.add_argument("--flush-every", type=int, default=4)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with scratch_store(backend) as engine:
            bench_backend(engine, args)


if __name__ == "__main__":
    main()
