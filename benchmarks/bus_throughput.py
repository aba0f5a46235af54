"""Ingestion through the bus (NATS JetStream) with 1, 2 and 4 writer processes, on
PostgreSQL: values/s stored, and the ratios 2/1 and 4/1 from the same run.

Each run publishes ``--values`` real-time values of ``--points`` simulated loggers
(gateway-shaped batches of ``--rows`` rows, one partition each) to a fresh stream while
no writer runs, then starts the writers (``ecohub bus writer --index i --count n``).
The rate is taken between the moment every writer holds its partitions and the moment
the stream is empty: messages consumed in between × rows per message ÷ seconds (the
writers' start-up is not counted). Each run writes new hours (its own day), so nothing
is unchanged; the writers recompute rollups as ``ecohub serve``'s writer does
(``ECOHUB_ROLLUP_DELAY``, default 2 s). Medians over ``--repeats`` rounds, the writer
counts alternating in order within each round.

    python -m benchmarks.bus_throughput [--values 240000] [--repeats 3]
                                        [--writers 1,2,4] [--nats nats://127.0.0.1:4222]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks._common import scratch_store
from ecohub.ingest.bus import BusConfig, BusPublisher, bus_status
from ecohub.simulate.hj212 import PROFILES
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.observations import Observation

PARTITIONS = 8
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(sessions: set[int]) -> dict[str, float]:
    """CPU seconds used so far by the writers (their sessions: each writer and its
    pipeline child), PostgreSQL, the NATS server, everything else, and the machine's
    idle time (from /proc)."""
    used = {"writers": 0.0, "postgres": 0.0, "nats": 0.0}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICKS
        if int(fields[3]) in sessions:
            used["writers"] += seconds
        elif name.startswith("postgres"):
            used["postgres"] += seconds
        elif name.startswith("nats-server"):
            used["nats"] += seconds
    cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    used["machine_busy"] = (sum(cpu) - cpu[3] - cpu[4]) / TICKS
    used["machine_idle"] = (cpu[3] + cpu[4]) / TICKS
    return used


def _workload(point_ids: list[int], values: int, day: int) -> list[list[Observation]]:
    """Batches of one partition each: every point's six gas values per second."""
    codes = [code for code, *_ in PROFILES["gas"]]
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=day)
    by_partition: dict[int, list[Observation]] = {}
    count = 0
    second = 0
    while count < values:
        when = start + dt.timedelta(seconds=second)
        for point in point_ids:
            rows = by_partition.setdefault(point % PARTITIONS, [])
            rows.extend(
                Observation(point, c, "rt", when, 10.0 + second % 7, "N", 0, "bench") for c in codes
            )
            count += len(codes)
        second += 1
    return [rows for _, rows in sorted(by_partition.items())]


async def _publish(config: BusConfig, batches: list[list[Observation]], rows: int) -> int:
    publisher = BusPublisher(config)
    await publisher.start()
    messages = 0
    for partition_rows in batches:
        for start in range(0, len(partition_rows), rows):
            await publisher.publish(partition_rows[start : start + rows], [])
            messages += 1
    await publisher.close()
    return messages


def _delete_stream(config: BusConfig) -> None:
    import nats

    async def delete() -> None:
        nc = await nats.connect(servers=config.servers)
        await nc.jetstream().delete_stream(config.stream)
        await nc.close()

    asyncio.run(delete())


def run_once(
    url: str, nats_url: str, writers: int, point_ids: list[int], args: argparse.Namespace, day: int
) -> float:
    """Values/s of one run with ``writers`` writer processes."""
    config = BusConfig(
        nats_url, stream=f"ECOHUB_BENCH_{uuid.uuid4().hex[:6].upper()}", partitions=PARTITIONS
    )
    batches = _workload(point_ids, args.values, day)
    # Every message holds exactly --rows rows: the rate follows from the count.
    batches = [rows[: len(rows) // args.rows * args.rows] for rows in batches]
    messages = asyncio.run(_publish(config, batches, args.rows))
    env = {
        **os.environ,
        "ECOHUB_DATABASE_URL": url,
        "ECOHUB_BUS_URL": nats_url,
        "ECOHUB_BUS_STREAM": config.stream,
        "ECOHUB_BUS_PARTITIONS": str(PARTITIONS),
        "ECOHUB_ALARMS_ENABLED": "false",
    }
    with tempfile.TemporaryDirectory() as folder:
        logs = [Path(folder) / f"writer{i}.log" for i in range(writers)]
        processes = []
        for index, log in enumerate(logs):
            command = [
                sys.executable,
                "-m",
                "ecohub.ingest.bus_cli",
                "writer",
                "--index",
                str(index),
                "--count",
                str(writers),
            ]
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        command,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        expected = [len(range(index, PARTITIONS, writers)) for index in range(writers)]
        while any(
            log.read_text().count("bus_partition_taken") < n
            for log, n in zip(logs, expected, strict=True)
        ):
            time.sleep(0.05)
        sessions = {process.pid for process in processes}
        started, left = time.monotonic(), bus_status(config)["messages"]
        before = cpu_seconds(sessions)
        while (remaining := bus_status(config)["messages"]) > 0:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        after = cpu_seconds(sessions)
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(120)
    _delete_stream(config)
    rate = left * args.rows / elapsed
    use = {key: (after[key] - before[key]) / elapsed for key in after}
    print(
        f"  {writers} writer(s): {left}/{messages} messages in {elapsed:.1f} s: "
        f"{rate:,.0f} values/s; CPU cores busy: writers {use['writers']:.2f}, "
        f"PostgreSQL {use['postgres']:.2f}, NATS {use['nats']:.2f}, machine "
        f"{use['machine_busy']:.2f} of {os.cpu_count()} (idle {use['machine_idle']:.2f})",
        flush=True,
    )
    return rate if remaining == 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--values", type=int, default=240_000)
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--rows", type=int, default=600, help="rows per published message")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument(
        "--nats", default=os.environ.get("ECOHUB_TEST_NATS_URL", "nats://127.0.0.1:4222")
    )
    args = parser.parse_args()
    counts = [int(part) for part in args.writers.split(",")]
    rates: dict[int, list[float]] = {count: [] for count in counts}
    with scratch_store("postgresql") as engine:
        register_simulated_points(engine, args.points)
        from sqlalchemy import text

        with engine.connect() as connection:
            point_ids = list(
                connection.execute(
                    text("SELECT id FROM monitoring_points WHERE mn LIKE 'SIM%' ORDER BY id")
                ).scalars()
            )
        url = engine.url.render_as_string(hide_password=False)
        day = 0
        for repeat in range(args.repeats):
            print(f"round {repeat + 1} of {args.repeats}", flush=True)
            order = counts[repeat % len(counts) :] + counts[: repeat % len(counts)]
            for count in order:
                rates[count].append(run_once(url, args.nats, count, point_ids, args, day))
                day += 1
    medians = {count: statistics.median(values) for count, values in rates.items()}
    print(f"cpus: {os.cpu_count()}, values per run: {args.values:,}, rows per message: {args.rows}")
    for count in counts:
        runs = ", ".join(f"{rate:,.0f}" for rate in rates[count])
        print(f"{count} writer(s): median {medians[count]:,.0f} values/s  (runs: {runs})")
    if 1 in medians and medians[1] > 0:
        for count in counts:
            if count != 1:
                # Also per round (the rounds' runs share the machine's other load).
                rounds = [n / one for n, one in zip(rates[count], rates[1], strict=True) if one]
                print(
                    f"ratio {count}/1: {medians[count] / medians[1]:.2f} of the medians, "
                    f"{statistics.median(rounds):.2f} median of the rounds' ratios "
                    f"({', '.join(f'{ratio:.2f}' for ratio in rounds)})"
                )


if __name__ == "__main__":
    main()
