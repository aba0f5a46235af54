"""HJ 212 gateway throughput, ACK latency and memory, on SQLite and PostgreSQL.

The gateway runs as ``ecohub serve`` in its own process on a scratch store; this process
runs the simulator with ``--connections`` loggers (flue-gas and waste-water profiles).

1. Sustained: every logger sends as fast as its answers come back for ``--seconds``;
   prints values/s stored (from the first packet until the store holds every answered
   value) and answered, and ACK latency. The gateway answers once a batch is in its
   journal, up to ``ECOHUB_JOURNAL_BACKLOG_ROWS`` rows ahead of the store (then once
   committed), so the stored rate is the sustained one; ``--no-journal`` answers once
   committed.
2. Half rate: the loggers are paced to half the sustained rate; prints ACK p50/p99, and
   the p99 of each second's packets (median and worst second): every tenth tick every
   logger also sends its ten-minute data, so some seconds carry several times the load.
3. Peak memory of the gateway process and of its writer process, and of both together,
   sampled from start to exit (shutdown included).

The gateway's writer recomputes the hourly and daily rollups of the hours they touched
within ``ECOHUB_ROLLUP_DELAY`` seconds (default 2) and all of them at shutdown, which the
last line checks.

Also the codec alone: packets/s through framing + parsing + value extraction.

    python -m benchmarks.hj212_gateway [--connections 1000] [--seconds 20]
                                       [--backends sqlite,postgresql] [--no-journal]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, func, select, text

from benchmarks._common import scratch_store
from ecohub.protocol.hj212 import Framer, parse_cp, parse_packet
from ecohub.protocol.hj212.values import upload_values
from ecohub.runtime import run_event_loop
from ecohub.simulate.hj212 import SimulationReport, build_upload, simulate, values_per_tick
from ecohub.simulate.points import SimulatedPoint, register_simulated_points
from ecohub.timeseries.observations import count_observations
from ecohub.timeseries.tables import rollup_queue


def codec_packets_per_second(count: int = 50_000) -> float:
    rng = random.Random(1)
    point = SimulatedPoint("SIM00000000001", "123456", "gas")
    packets = [
        build_upload(point, 2051, _t(i), f"2024010100000{i % 10000:04d}", rng)[0]
        for i in range(200)
    ]
    stream = b"".join(packets)
    framer = Framer()
    started = time.perf_counter()
    done = 0
    while done < count:
        for frame in framer.feed(stream):
            packet = parse_packet(frame.data)  # type: ignore[union-attr]
            upload_values(packet.cn, parse_cp(packet.cp))
            done += 1
    return done / (time.perf_counter() - started)


def _t(i: int) -> dt.datetime:
    return dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=10 * i)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gateway(
    engine: Engine, port: int, journal_dir: str, log: IO[bytes]
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ECOHUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "ECOHUB_LOG_LEVEL": "WARNING",
        "ECOHUB_JOURNAL_DIR": journal_dir,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "ecohub.cli.main", "serve", "--hj212-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,  # its warnings and errors, summarised after the run
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gateway did not start")


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid`` (the gateway's writer process)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = task / "children"
        if children.exists():
            found += [int(child) for child in children.read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(engine: Engine) -> list[int]:
    """PostgreSQL server processes serving the benchmark's database (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
        )


class CpuMeter:
    """CPU time per process over a phase: this load generator, the gateway, its writer
    process and the database's backends, so that a run shows where each packet's cost
    goes (a steadier figure than throughput on a shared machine)."""

    def __init__(self, engine: Engine, gateway: int) -> None:
        self.engine = engine
        self.gateway = gateway
        self.started: dict[str, float] = {}

    def _sample(self) -> dict[str, float]:
        children = child_pids(self.gateway)
        return {
            "load generator": time.process_time(),
            "gateway": cpu_seconds(self.gateway),
            "writer": sum(cpu_seconds(pid) for pid in children),
            "database": sum(cpu_seconds(pid) for pid in database_backends(self.engine)),
        }

    def start(self) -> None:
        self.started = self._sample()

    def report(self, packets: int, seconds: float) -> str:
        ended = self._sample()
        parts = []
        for name, before in self.started.items():
            used = max(0.0, ended[name] - before)
            parts.append(
                f"{name} {100 * used / seconds:.0f}% ({1e6 * used / max(1, packets):.0f} µs)"
            )
        return "CPU (µs per packet): " + ", ".join(parts)


def memory_mb(pid: int, field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak so far) of a process; 0 once gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class MemorySampler:
    """Peak memory of the gateway process and of its writer process, sampled every 0.1 s
    from start to exit: shutdown, when the writer recomputes every queued rollup, is
    part of the run. Each process's peak is its ``VmHWM``; together, the largest sum of
    the two resident sizes at one moment."""

    def __init__(self, gateway: int) -> None:
        self.gateway = gateway
        self.peaks = {"gateway": 0.0, "writer": 0.0}
        self.together = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            writer = _largest_child(self.gateway)
            self.peaks["gateway"] = max(self.peaks["gateway"], memory_mb(self.gateway, "VmHWM"))
            if writer is not None:
                self.peaks["writer"] = max(self.peaks["writer"], memory_mb(writer, "VmHWM"))
            now = memory_mb(self.gateway, "VmRSS")
            now += memory_mb(writer, "VmRSS") if writer is not None else 0.0
            self.together = max(self.together, now)

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        return (
            f"peak memory (start to exit): gateway {self.peaks['gateway']:,.0f} MB, its "
            f"writer process {self.peaks['writer']:,.0f} MB, both together "
            f"{self.together:,.0f} MB"
        )


def _largest_child(pid: int) -> int | None:
    """The writer: the gateway's largest child (the other one is multiprocessing's
    resource tracker)."""
    try:
        children = child_pids(pid)
    except OSError:
        return None
    return max(children, key=lambda child: memory_mb(child, "VmRSS"), default=None)


def wait_until_stored(engine: Engine, values: int, timeout: float = 600.0) -> float:
    """Seconds until the store holds ``values`` observations (polled)."""
    started = time.perf_counter()
    while count_observations(engine) < values and time.perf_counter() - started < timeout:
        time.sleep(0.1)
    return time.perf_counter() - started


def bench_backend(
    engine: Engine, connections: int, seconds: float, ticks: int, journal: bool, log: IO[bytes]
) -> None:
    backend = engine.dialect.name
    points = register_simulated_points(engine, connections)
    port = free_port()
    journal_dir = tempfile.mkdtemp(prefix="ecohub-bench-journal-") if journal else ""
    gateway = start_gateway(engine, port, journal_dir, log)
    memory = MemorySampler(gateway.pid)
    try:
        # Packets are built before the clock starts, so that the load generator, which
        # shares this machine's two cores with the gateway, spends its time on I/O.
        meter = CpuMeter(engine, gateway.pid)
        full = run_event_loop(
            simulate(
                points,
                port=port,
                ticks=ticks,
                interval=0,
                duration=seconds,
                seed=1,
                prebuild=True,
                on_start=meter.start,
            )
        )
        # Answered values may still be in the journal: the clock runs until all are stored.
        behind = wait_until_stored(engine, full.expected_values)
        elapsed = full.seconds + behind
        rate = full.expected_values / elapsed
        print(
            f"{backend:<11} sustained   {rate:>10,.0f} values/s stored  "
            f"({full.good_packets / elapsed:,.0f} packets/s, {connections} connections, "
            f"{full.seconds:.1f} s sending + {behind:.1f} s until all stored; answered "
            f"{full.expected_values / full.seconds:,.0f} values/s)  ACK p50 "
            f"{full.latency_ms(0.5):.1f} ms p99 {full.latency_ms(0.99):.1f} ms  "
            f"missing ACKs {full.missing_acks}"
        )
        print(f"{backend:<11} {meter.report(full.good_packets, elapsed)}")
        if full.seconds < 0.95 * seconds:
            print(
                f"{backend:<11} (the loggers ran out of prepared ticks after "
                f"{full.seconds:.1f} s: raise --ticks for a full {seconds:.0f} s phase)"
            )
        # Pace each logger so that all of them together offer half the sustained rate:
        # a tick every `interval` seconds on each logger's own clock, the loggers'
        # clocks spread over the interval.
        # (A tick may also send ten-minute or hourly data: pace by the values per tick of
        # the ticks the phase will send.)
        interval = connections * values_per_tick() / (rate / 2)
        for _ in range(3):
            sent = max(1, int(seconds / interval))
            interval = connections * values_per_tick(sent) / (rate / 2)
        half = run_event_loop(
            simulate(
                points,
                port=port,
                ticks=int(seconds / max(interval, 0.01)) + 3,
                interval=interval,
                duration=seconds,
                seed=2,
                start=_t(100_000),
                prebuild=True,  # as above: the load generator only sends and receives
            )
        )
        behind = wait_until_stored(engine, full.expected_values + half.expected_values)
        print(
            f"{backend:<11} half rate   {half.expected_values / half.seconds:>10,.0f} values/s  "
            f"ACK p50 {half.latency_ms(0.5):.1f} ms  p99 {half.latency_ms(0.99):.1f} ms  "
            f"(all stored {behind:.1f} s after the last answer)"
        )
        print(f"{backend:<11} {_per_second(half)}")
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=120)
        if journal_dir:
            shutil.rmtree(journal_dir, ignore_errors=True)
    print(f"{backend:<11} {memory.stop()}")
    log.seek(0)
    print(f"{backend:<11} {_logged_events(log.read().decode('utf-8', 'replace'))}")
    stored = count_observations(engine)
    answered = full.expected_values + half.expected_values
    with engine.connect() as connection:
        queued = connection.execute(select(func.count()).select_from(rollup_queue)).scalar()
    print(
        f"{backend:<11} stored {stored:,} values; answered {answered:,} (stored ≥ answered: "
        f"{stored >= answered}); hours left for rollups after shutdown: {queued}"
    )


def _logged_events(text: str) -> str:
    """The gateway's warnings and errors (it logs at WARNING here), counted by event."""
    events = Counter(re.findall(r'"event": "(\w+)"', text))
    if not events:
        return "gateway log: no warning or error"
    listed = ", ".join(f"{name} ×{count}" for name, count in events.most_common())
    return f"gateway log: {listed}"


def _per_second(report: SimulationReport) -> str:
    """How the slow answers of a paced run are spread: the p99 of each second's packets.
    Every tenth tick each logger also sends ten-minute data (3-4 values per parameter),
    and the loggers' ticks are spread over one tick interval only, so such a second
    carries several times the average load."""
    by_second = [ms for ms in report.latency_ms_by_second(0.99) if ms == ms]  # not NaN
    if not by_second:
        return "ACK p99 per second: no answers"
    slow = sum(1 for ms in by_second if ms >= 100)
    return (
        f"ACK p99 per second: median {statistics.median(by_second):.1f} ms, "
        f"worst {max(by_second):.1f} ms; {slow} of {len(by_second)} seconds at 100 ms or more"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--no-journal",
        action="store_true",
        help="answer once committed, not once journaled (ECOHUB_JOURNAL_DIR empty)",
    )
    parser.add_argument(
        "--ticks",
        type=int,
        default=400,
        help="ticks prepared per logger (a phase stops at --seconds, or when they run out)",
    )
    args = parser.parse_args()
    print(
        f"codec alone: {codec_packets_per_second():,.0f} packets/s "
        "(2051 flue-gas packets, 6 parameters, framing + parsing + values)"
    )
    for backend in args.backends.split(","):
        with scratch_store(backend) as engine, tempfile.TemporaryFile() as log:
            bench_backend(
                engine, args.connections, args.seconds, args.ticks, not args.no_journal, log
            )


if __name__ == "__main__":
    main()
