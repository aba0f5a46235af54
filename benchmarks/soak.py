"""Soak: honest loggers and hostile senders against one ``ecohub serve``, for minutes.

``ecohub serve`` runs in its own process on a scratch store (SQLite by default), on
loopback only. This process runs ``--loggers`` honest loggers (``ecohub.simulate``, one
real-time packet per logger every ``--interval`` seconds, plus their ten-minute, hourly
and daily data), and a second process the hostile senders, from other loopback
addresses (127.0.0.2 and up):

- junk streams: connections sending random bytes without end, 1 MB/s each, reconnecting
  when the gateway closes them;
- slow connections: 1,800 connections that never send a packet (a byte every 20 s),
  reopened when closed, 1,600 of them from one address (past the per-address cap);
- password guessing: connections sending wrong passwords for the honest loggers' MNs as
  fast as they are read, from a new address each time one is blocked;
- oversized uploads: every ``--upload-every`` seconds two uploads of 100,000 rows
  (about 15 MB) at once, one valid, one of rejected rows, and one over the 16 MiB cap.

It prints the honest loggers' answer p50/p99, the values they were answered for and the
store lacks (must be 0), what the hostile input added to the store (quarantine rows and
raw bytes, upload values, file size), the gateway's own counts of what it refused, and
the peak memory of the gateway with its writer and upload workers.

    python -m benchmarks.soak [--minutes 10] [--loggers 1000] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from benchmarks._common import scratch_store
from benchmarks.hj212_gateway import child_pids, memory_mb
from ecohub.accounts.keys import Role, issue_key
from ecohub.db.quarantine import quarantine
from ecohub.protocol.hj212.encode import data_segment
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.registry.models import MonitoringPoint
from ecohub.runtime import run_event_loop
from ecohub.simulate.hj212 import SimulationReport, simulate
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.tables import observations

UPLOAD_POINTS = 20  # registered for the uploads only, apart from the honest loggers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(engine: Engine, port: int, api_port: int, folder: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ECOHUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "ECOHUB_LOG_LEVEL": "WARNING",
        "ECOHUB_JOURNAL_DIR": str(folder / "journal"),
        "ECOHUB_API_HOST": "127.0.0.1",
        "ECOHUB_VAR_DIR": str(folder),
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "ecohub.cli.main", "serve"),
            *("--hj212-port", str(port), "--api-port", str(api_port), "--no-mqtt"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "serve.log").open("wb"),
    )
    for _ in range(600):
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=0.2),
                socket.create_connection(("127.0.0.1", api_port), timeout=0.2),
            ):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("ecohub serve did not start")


class Memory:
    """Peak resident memory of ``ecohub serve`` and every process under it (the writer,
    upload workers), sampled twice a second: each one's peak, and the largest sum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, float] = {}
        self.together = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                todo += child_pids(pid)
        return found

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = 0.0
            for pid in self._tree():
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), memory_mb(pid, "VmHWM"))
                now += memory_mb(pid, "VmRSS")
            self.together = max(self.together, now)

    def stop(self) -> str:
        self._stop.set()
        self._thread.join()
        gateway = self.peaks.pop(self.pid, 0.0)
        others = sorted(self.peaks.values(), reverse=True)
        return (
            f"peak memory: gateway process {gateway:,.0f} MB; its children "
            f"{', '.join(f'{mb:,.0f}' for mb in others if mb > 20)} MB; all together at "
            f"once {self.together:,.0f} MB"
        )


# --- hostile senders (run in a process of their own) -----------------------------------


def hostile(
    port: int,
    api_port: int,
    key: str,
    mns: list[str],
    codes: list[str],
    seconds: float,
    upload_every: float,
    queue: multiprocessing.Queue,
) -> None:  # type: ignore[type-arg]
    """The hostile senders for ``seconds``; puts their counts on ``queue``."""
    counts: collections.Counter[str] = collections.Counter()
    try:
        run_event_loop(_hostile(port, api_port, key, mns, codes, seconds, upload_every, counts))
    finally:
        queue.put(dict(counts))


async def _hostile(
    port: int,
    api_port: int,
    key: str,
    mns: list[str],
    codes: list[str],
    seconds: float,
    upload_every: float,
    counts: collections.Counter[str],
) -> None:
    deadline = time.monotonic() + seconds
    tasks = [asyncio.create_task(_junk(port, n, deadline, counts)) for n in range(4)]
    tasks += [asyncio.create_task(_slow(port, deadline, counts))]
    tasks += [asyncio.create_task(_guess(port, mns, deadline, counts)) for _ in range(4)]
    tasks += [asyncio.create_task(_uploads(api_port, key, codes, deadline, upload_every, counts))]
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException):
            counts[f"sender_failed_{type(outcome).__name__}"] += 1
            print(f"a hostile sender failed: {outcome!r}", file=sys.stderr)


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 16)


async def _junk(port: int, n: int, deadline: float, counts: collections.Counter[str]) -> None:
    rng = random.Random(n)
    while time.monotonic() < deadline:
        try:
            _reader, writer = await _connect(port, "127.0.0.2")
            counts["junk_connections"] += 1
            while time.monotonic() < deadline:
                writer.write(rng.randbytes(65536))
                await writer.drain()
                counts["junk_bytes"] += 65536
                await asyncio.sleep(0.064)  # about 1 MB/s
            writer.close()
        except (ConnectionError, OSError, RuntimeError):  # uvloop: writing to a closed one
            counts["junk_closed_by_gateway"] += 1
            await asyncio.sleep(0.5)


async def _slow(port: int, deadline: float, counts: collections.Counter[str]) -> None:
    """1,600 connections from 127.0.0.3 and 200 from 127.0.0.4 that never send a packet."""

    async def one(source: str) -> None:
        while time.monotonic() < deadline:
            try:
                reader, writer = await _connect(port, source)
                opened = time.monotonic()
                counts["slow_opened"] += 1
                while time.monotonic() < deadline:
                    try:
                        if await asyncio.wait_for(reader.read(1), 20) == b"":
                            break
                    except TimeoutError:
                        writer.write(b"#")
                if time.monotonic() < deadline:
                    held = time.monotonic() - opened
                    counts["slow_refused" if held < 1 else "slow_closed_after_timeout"] += 1
                writer.close()
            except (ConnectionError, OSError, RuntimeError):  # uvloop: writing to a closed one
                counts["slow_refused"] += 1
            await asyncio.sleep(1 + random.random())

    await asyncio.gather(
        *(one("127.0.0.3") for _ in range(1600)), *(one("127.0.0.4") for _ in range(200))
    )


async def _guess(
    port: int, mns: list[str], deadline: float, counts: collections.Counter[str]
) -> None:
    rng = random.Random()
    while time.monotonic() < deadline:
        source = f"127.0.0.{rng.randrange(5, 250)}"
        try:
            reader, writer = await _connect(port, source)
            while time.monotonic() < deadline:
                mn = rng.choice(mns)
                segment = data_segment(
                    qn="20240101000000001",
                    st=31,
                    cn=2011,
                    pw=f"{rng.randrange(10**6):06d}",
                    mn=mn,
                    cp="DataTime=20240101000000;a21026-Rtd=1",
                    flag=5,
                )
                writer.write(frame_packet(segment))
                await writer.drain()
                counts["guess_packets_written"] += 1  # most never read: paused
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(100), 0.001) == b"":
                        break
            counts["guessing_closed_by_gateway"] += 1
            writer.close()
        except (ConnectionError, OSError, RuntimeError):  # uvloop: writing to a closed one
            counts["guessing_refused"] += 1
        await asyncio.sleep(0.05)


async def _uploads(
    api_port: int,
    key: str,
    codes: list[str],
    deadline: float,
    every: float,
    counts: collections.Counter[str],
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    url = f"http://127.0.0.1:{api_port}/api/v1/measurements"
    round_ = 0
    async with httpx.AsyncClient(timeout=300) as client:
        while time.monotonic() + every < deadline:
            await asyncio.sleep(every)
            round_ += 1
            bodies = [
                _upload_body(codes, round_, valid=True),
                _upload_body(codes, round_, valid=False),
            ]
            if round_ % 3 == 1:
                bodies.append(b" " * (17 << 20))  # over the 16 MiB cap
            answers = await asyncio.gather(
                *(client.post(url, content=body, headers=headers) for body in bodies),
                return_exceptions=True,
            )
            for body, answer in zip(bodies, answers, strict=True):
                counts["upload_bytes"] += len(body)
                status = getattr(answer, "status_code", type(answer).__name__)
                counts[f"upload_status_{status}"] += 1
                if status == 200:
                    counts["upload_values_accepted"] += answer.json()["accepted"]  # type: ignore[union-attr]


def _upload_body(codes: list[str], round_: int, *, valid: bool) -> bytes:
    start = dt.datetime(2022, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=100 * round_)
    rows = []
    for n in range(100_000):
        ts = (start + dt.timedelta(minutes=n // len(codes))).isoformat()
        value: object = n % 97 if valid else "not a number, nor any other kind of value"
        row = {"point": codes[n % len(codes)], "parameter": "a21026", "ts": ts, "value": value}
        rows.append(json.dumps({**row, "interval": "min", "flag": "N"}))
    return "\n".join(rows).encode()


# --- the run -----------------------------------------------------------------------------


def stored_by_series(engine: Engine) -> dict[tuple[str, str, str], int]:
    query = (
        select(
            MonitoringPoint.mn, observations.c.parameter_code, observations.c.interval, func.count()
        )
        .join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
        .group_by(MonitoringPoint.mn, observations.c.parameter_code, observations.c.interval)
    )
    with engine.connect() as connection:
        return {(mn, code, kind): n for mn, code, kind, n in connection.execute(query)}


def store_bytes(engine: Engine) -> int:
    if engine.dialect.name != "sqlite":
        with engine.connect() as connection:
            return int(
                connection.exec_driver_sql(
                    "SELECT pg_database_size(current_database())"
                ).scalar_one()
            )
    path = Path(engine.url.database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def soak(
    engine: Engine,
    minutes: float,
    loggers: int,
    interval: float,
    upload_every: float,
    hostile_too: bool = True,
) -> None:
    points = register_simulated_points(engine, loggers + UPLOAD_POINTS)
    honest, upload_points = points[:loggers], points[loggers:]
    with Session(engine) as session:
        key = issue_key(
            session, name="soak-uploads", role=Role.AGENCY, created_by="soak", rate_limit=10**6
        )
        session.commit()
    codes = [f"SIM{int(p.mn[3:]):05d}" for p in upload_points]
    port, api_port = free_port(), free_port()
    folder = Path(tempfile.mkdtemp(prefix="ecohub-soak-"))
    size_before = store_bytes(engine)
    serve = start_serve(engine, port, api_port, folder)
    memory = Memory(serve.pid)
    seconds = 60 * minutes
    seconds_hostile = seconds - 5
    queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()  # type: ignore[type-arg]
    if not hostile_too:
        seconds_hostile = 0.0
    attacker = multiprocessing.get_context("spawn").Process(
        target=hostile,
        args=(
            *(port, api_port, key, [p.mn for p in honest], codes),
            *(seconds_hostile, upload_every, queue),
        ),
    )
    try:
        start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
        attacker.start()
        report: SimulationReport = run_event_loop(
            simulate(
                honest,
                port=port,
                ticks=10**9,
                interval=interval,
                duration=seconds,
                start=start,
                ack_timeout=10.0,
            )
        )
        attacks = queue.get(timeout=300)
        attacker.join(60)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(300)
        peak = memory.stop()
    stored = stored_by_series(engine)
    lost = sum(
        max(0, count - stored.get(series, 0)) for series, (count, _total) in report.expected.items()
    )
    with engine.connect() as connection:
        rows, raw, times = connection.execute(
            select(
                func.count(),
                func.coalesce(func.sum(func.length(quarantine.c.raw)), 0),
                func.coalesce(func.sum(quarantine.c.times), 0),
            )
        ).one()
        by_reason = dict(
            connection.execute(
                select(quarantine.c.reason_code, func.sum(quarantine.c.times)).group_by(
                    quarantine.c.reason_code
                )
            ).all()
        )
    upload_values = sum(
        n for (mn, _c, _k), n in stored.items() if mn in {p.mn for p in upload_points}
    )
    events = collections.Counter(
        _event(line) for line in (folder / "serve.log").read_text(errors="replace").splitlines()
    )
    events.pop(None, None)
    shutil.rmtree(folder, ignore_errors=True)
    print(
        f"soak{'' if hostile_too else ' (baseline: no hostile senders)'}: {minutes:g} min, "
        f"{loggers} honest loggers (a tick every {interval:g} s), {engine.dialect.name}, "
        f"loopback; load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"honest loggers: {report.good_packets:,} packets, {report.expected_values:,} values "
        f"answered; answer p50 {report.latency_ms(0.5):.1f} ms, p99 "
        f"{report.latency_ms(0.99):.1f} ms, max {report.latency_ms(1.0):.0f} ms; missing "
        f"answers {report.missing_acks}, reconnects {report.reconnects}"
    )
    print(f"values lost (answered, not stored): {lost}")
    print(f"hostile senders: {json.dumps(attacks, sort_keys=True)}")
    print(
        f"store growth from hostile input: quarantine {rows:,} rows, {raw:,} bytes of raw "
        f"text, standing for {times:,} rejections ({json.dumps(by_reason, sort_keys=True)}); "
        f"{upload_values:,} values of valid uploads; store files "
        f"{size_before / 1e6:,.1f} → {store_bytes(engine) / 1e6:,.1f} MB (honest data "
        f"included)"
    )
    print(f"gateway log: {json.dumps(dict(events.most_common(12)))}")
    print(peak)


def _event(line: str) -> str | None:
    """The event name of one log line of the gateway (JSON after the logger's prefix)."""
    try:
        found = json.loads(line[line.index("{") :])
    except ValueError:
        return None
    return str(found.get("event")) if isinstance(found, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--loggers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--upload-every", type=float, default=30.0)
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument(
        "--no-hostile", action="store_true", help="honest loggers only (the baseline)"
    )
    args = parser.parse_args()
    with scratch_store(args.backend) as engine:
        soak(
            engine,
            args.minutes,
            args.loggers,
            args.interval,
            args.upload_every,
            hostile_too=not args.no_hostile,
        )


if __name__ == "__main__":
    main()
