"""The HJ 212 gateway over real TCP, with the simulator, on both backends."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ecohub.db.quarantine import quarantine
from ecohub.ingest.hj212_gateway import HJ212Gateway, upload_key
from ecohub.protocol.hj212 import Frame, Framer, parse_packet
from ecohub.protocol.hj212.encode import data_segment
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.protocol.hj212.values import DATA_COMMANDS
from ecohub.registry.importer import import_file
from ecohub.registry.models import MonitoringPoint
from ecohub.simulate.hj212 import SimulationReport, simulate, values_per_tick
from ecohub.simulate.points import register_simulated_points
from ecohub.timeseries.tables import observations


def stored_by_series(engine: Engine) -> dict[tuple[str, str, str], tuple[int, float]]:
    query = (
        select(
            MonitoringPoint.mn,
            observations.c.parameter_code,
            observations.c.interval,
            func.count(),
            func.sum(observations.c.value),
        )
        .join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
        .group_by(MonitoringPoint.mn, observations.c.parameter_code, observations.c.interval)
    )
    with engine.connect() as connection:
        return {
            (mn, code, kind): (n, total) for mn, code, kind, n, total in connection.execute(query)
        }


def quarantined_reasons(engine: Engine) -> Counter[str]:
    query = select(quarantine.c.reason_code, func.sum(quarantine.c.times)).group_by(
        quarantine.c.reason_code
    )
    with engine.connect() as connection:
        return Counter(dict(connection.execute(query).all()))  # type: ignore[arg-type]


async def _run_scenario(
    engine: Engine, devices: int, ticks: int, bad_ratio: float, journal_dir: Path | None = None
) -> SimulationReport:
    points = register_simulated_points(engine, devices)
    gateway = HJ212Gateway(engine, idle_timeout=30, journal_dir=journal_dir)
    port = await gateway.start("127.0.0.1", 0)
    try:
        return await simulate(
            points, port=port, ticks=ticks, interval=0, bad_ratio=bad_ratio, seed=7
        )
    finally:
        await gateway.close()


@pytest.mark.parametrize("journal", [False, True], ids=["answer-at-commit", "journal"])
def test_200_devices_mixed_traffic_store_exactly_the_good_unique_values(
    engine: Engine, journal: bool, tmp_path: Path
) -> None:
    journal_dir = tmp_path / "journal" if journal else None
    report = asyncio.run(
        _run_scenario(engine, devices=200, ticks=12, bad_ratio=0.1, journal_dir=journal_dir)
    )

    assert report.missing_acks == 0
    assert report.bad_total > 100 and report.retransmissions > 100 and report.reconnects > 10
    stored = stored_by_series(engine)
    assert sum(n for n, _ in stored.values()) == report.expected_values
    assert stored.keys() == report.expected.keys()
    for key, (count, total) in report.expected.items():
        stored_count, stored_total = stored[key]
        assert stored_count == count, key
        assert stored_total == pytest.approx(total, rel=1e-9), key

    reasons = quarantined_reasons(engine)
    sent = report.bad_packets
    assert reasons["bad_crc"] == sent["bad_crc"]
    assert reasons["truncated"] == sent["truncated"] + sent["cut_connection"]
    assert reasons["garbage"] == sent["garbage"]
    assert reasons["bad_password"] == sent["bad_password"]
    assert reasons["unknown_mn"] == sent["unknown_mn"]
    assert reasons["bad_cn"] == sent["bad_field"]
    assert sum(reasons.values()) == report.bad_total
    with engine.connect() as connection:
        peers = connection.execute(select(quarantine.c.peer).distinct()).scalars().all()
        raw = connection.execute(
            select(quarantine.c.raw).where(quarantine.c.reason_code == "bad_password").limit(1)
        ).scalar_one()
    assert all(peer and peer.startswith("127.0.0.1:") for peer in peers)
    assert "PW=wrong0" in raw
    with Session(engine) as session:
        seen = session.scalars(
            select(MonitoringPoint.last_seen_at).where(MonitoringPoint.mn.like("SIM%"))
        ).all()
    assert len(seen) == 200 and all(moment is not None for moment in seen)
    if journal_dir is not None:  # everything committed: no segment kept
        assert list(journal_dir.glob("*.journal")) == []


async def _exchange(
    port: int, packets: list[bytes], expect: int, timeout: float = 5.0
) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(packets))
    await writer.drain()
    framer = Framer()
    answers: list[str] = []
    try:
        while len(answers) < expect:
            chunk = await asyncio.wait_for(reader.read(4096), timeout)
            if not chunk:
                break
            answers += [parse_packet(f.data).cn for f in framer.feed(chunk) if isinstance(f, Frame)]
    finally:
        writer.close()
    return answers


def _upload(
    mn: str,
    cp: str,
    *,
    pw: str = "123456",
    qn: str = "20240101080000001",
    extra: dict[str, int] | None = None,
    cn: int = 2061,
) -> bytes:
    return frame_packet(
        data_segment(
            qn=qn, st=31, cn=cn, pw=pw, mn=mn, flag=5 | (2 if extra else 0), cp=cp, **(extra or {})
        )
    )


def test_split_packets_crc_tolerance_idle_close_and_commands(
    engine: Engine, demo_registry_path: Path
) -> None:
    import_file(engine, demo_registry_path, "test")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        tolerant = session.scalars(
            select(MonitoringPoint).where(MonitoringPoint.code == "P0002")
        ).one()
        tolerant.crc_tolerant = True

    async def scenario() -> None:
        gateway = HJ212Gateway(engine, idle_timeout=0.3)
        port = await gateway.start("127.0.0.1", 0)
        try:
            parts = [
                _upload(
                    "88888880000001",
                    "DataTime=20240101080000;a21026-Avg=11.5,a21026-Flag=N",
                    extra={"pnum": 2, "pno": 1},
                ),
                _upload(
                    "88888880000001",
                    "DataTime=20240101080000;a21002-Avg=42.0,a21002-Flag=N",
                    extra={"pnum": 2, "pno": 2},
                ),
            ]
            assert await _exchange(port, parts, expect=2) == ["9014", "9014"]

            good = _upload("88888880000002", "DataTime=20240101080000;a34013-Avg=3.5,a34013-Flag=N")
            broken = good[:-6] + b"0000\r\n"
            assert await _exchange(port, [broken], expect=1) == ["9014"]  # tolerated
            strict = _upload("88888880000001", "DataTime=20240101090000;a34013-Avg=9.9")
            assert await _exchange(port, [strict[:-6] + b"0000\r\n"], expect=1, timeout=0.5) == []

            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(10), 3) == b""  # closed for idleness
            writer.close()
            assert gateway.stats.idle_closed >= 1

            # A command reaches a connected logger; an unconnected one is reported.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                _upload(
                    "88888880000003", "DataTime=20240101100000;a21026-Avg=1", qn="20240101100000001"
                )
            )
            await asyncio.wait_for(reader.read(4096), 3)
            assert gateway.is_online("88888880000003")
            from ecohub.protocol.hj212.encode import set_realtime_interval

            assert await gateway.send_command(
                "88888880000003", set_realtime_interval("88888880000003", "123456", 31, 60)
            )
            command = await asyncio.wait_for(reader.read(4096), 3)
            assert b"CN=1062" in command and b"RtdInterval=60" in command
            writer.close()
            assert not await gateway.send_command("NOT-CONNECTED", b"x")
        finally:
            await gateway.close()

    asyncio.run(scenario())
    stored = stored_by_series(engine)
    assert stored[("88888880000001", "a21026", "hour")] == (1, 11.5)
    assert stored[("88888880000001", "a21002", "hour")] == (1, 42.0)
    assert stored[("88888880000002", "a34013", "hour")] == (1, 3.5)
    assert ("88888880000001", "a34013", "hour") not in stored
    assert quarantined_reasons(engine)["bad_crc"] == 1


def test_a_flooding_client_does_not_disturb_others(engine: Engine) -> None:
    async def scenario() -> SimulationReport:
        points = register_simulated_points(engine, 20)
        gateway = HJ212Gateway(engine, idle_timeout=30)
        port = await gateway.start("127.0.0.1", 0)

        async def flood() -> None:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(200):
                writer.write(b"\xff" * 50_000 + b"##9999" + b"x" * 3000)
                await writer.drain()
            writer.close()

        try:
            _, report = await asyncio.gather(
                flood(), simulate(points, port=port, ticks=10, interval=0, seed=3)
            )
            return report
        finally:
            await gateway.close()

    report = asyncio.run(scenario())
    assert report.missing_acks == 0
    assert sum(n for n, _ in stored_by_series(engine).values()) == report.expected_values
    reasons = quarantined_reasons(engine)
    assert reasons["garbage"] > 0 and reasons["too_long"] > 0


def test_packets_sent_just_before_a_logger_hangs_up_are_stored(engine: Engine) -> None:
    """The second upload arrives while the first one commits (it is held then), and the
    logger closes without reading: both are stored, only the first can be answered."""
    [point] = register_simulated_points(engine, 1)

    def upload(minute: int, value: float) -> bytes:
        cp = f"DataTime=202401010{minute:03d}00;a21026-Rtd={value},a21026-Flag=N"
        segment = data_segment(
            qn=f"20240101000{minute:03d}001", st=31, cn=2011, pw=point.password,
            mn=point.mn, cp=cp, flag=5,
        )  # fmt: skip
        return frame_packet(segment)

    async def scenario() -> None:
        gateway = HJ212Gateway(engine, idle_timeout=30)
        port = await gateway.start("127.0.0.1", 0)
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(upload(1, 11.0))
            await writer.drain()
            await asyncio.sleep(0.005)  # the batch writer gathers for 20 ms
            writer.write(upload(2, 12.0))
            await writer.drain()
            writer.close()
            deadline = time.monotonic() + 10
            while gateway.stats.values_accepted < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            await gateway.close()

    asyncio.run(scenario())
    assert stored_by_series(engine)[(point.mn, "a21026", "rt")] == (2, 23.0)


def test_graceful_shutdown_keeps_everything_answered(engine: Engine) -> None:
    async def scenario() -> SimulationReport:
        points = register_simulated_points(engine, 50)
        gateway = HJ212Gateway(engine, idle_timeout=30)
        port = await gateway.start("127.0.0.1", 0)
        run = asyncio.ensure_future(
            simulate(points, port=port, ticks=500, interval=0, seed=5, ack_timeout=1)
        )
        # Close mid-traffic: once answers flow (on a loaded machine the first batch, with
        # a writer process just started, may take longer than a fixed pause).
        deadline = time.monotonic() + 30
        while gateway.stats.answers_sent < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await gateway.close()
        return await run

    report = asyncio.run(scenario())
    stored = stored_by_series(engine)
    assert report.acks > 100 and report.gave_up == 50
    for key, (count, _) in report.expected.items():
        assert stored.get(key, (0, 0.0))[0] >= count, key


def test_values_per_tick_counts_what_the_loggers_send() -> None:
    # Ten ticks: ten real-time packets of 6 values, and one ten-minute packet of 21
    # (flue gas: SO2, NOx, particulates with mass 4 fields each, 3 others with 3)
    # or 22 (waste water: 4 with mass, 2 without): (60 + 21 + 60 + 22) / 20.
    assert values_per_tick(10) == pytest.approx(8.15)
    # A day adds the hourly packets (24 × 21 or 22) and the daily one.
    assert values_per_tick(1440) == pytest.approx(
        (1440 * 6 * 2 + (144 + 24 + 1) * (21 + 22)) / (1440 * 2)
    )


def test_latency_by_second_groups_answers_by_when_they_were_sent() -> None:
    first, second = SimulationReport(), SimulationReport()
    first.ack_sent_at, first.ack_latencies = [10.0, 11.2], [0.010, 0.050]
    second.ack_sent_at, second.ack_latencies = [10.5, 13.9], [0.030, 0.200]
    first.merge(second)
    # Seconds since the first send: 0 → 10 and 30 ms, 1 → 50 ms, 2 → none, 3 → 200 ms.
    by_second = first.latency_ms_by_second(0.99)
    assert by_second[0] == pytest.approx(30.0)
    assert by_second[1] == pytest.approx(50.0)
    assert math.isnan(by_second[2])
    assert by_second[3] == pytest.approx(200.0)
    assert first.latency_ms_by_second(0.0)[0] == pytest.approx(10.0)
    assert SimulationReport().latency_ms_by_second(0.99) == []


@settings(max_examples=300, deadline=None)
@given(
    st.tuples(
        st.integers(1, 10**6),
        st.sampled_from(sorted(DATA_COMMANDS)),
        st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.replace(microsecond=0)),
    ),
    st.tuples(
        st.integers(1, 10**6),
        st.sampled_from(sorted(DATA_COMMANDS)),
        st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.replace(microsecond=0)),
    ),
)
def test_upload_keys_are_equal_exactly_for_the_same_upload(
    first: tuple[int, str, dt.datetime], second: tuple[int, str, dt.datetime]
) -> None:
    # Any DataTime a datetime can hold, years 1 to 9999, and any point and data command.
    assert (upload_key(*first) == upload_key(*second)) == (first == second)
    assert upload_key(*first) == upload_key(*first)


def test_upload_keys_tell_apart_the_extremes() -> None:
    earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    latest = dt.datetime.max.replace(tzinfo=dt.UTC, microsecond=0)
    keys = {
        upload_key(point, cn, moment)
        for point in (1, 2)
        for cn in ("2011", "2051", "2061", "2031")
        for moment in (earliest, latest, earliest + dt.timedelta(seconds=1))
    }
    assert len(keys) == 2 * 4 * 3
