"""Real HJ 212 traffic replayed through the TCP gateway: the frames of three public
sources (a real ambient station, a Node.js server's test device, a Windows logger
simulator) sent as captured, their MNs registered; afterwards the store holds exactly
the values the frames carry, read from the frame text by this test itself, not by the
codec. Values of codes the parameter table lacks are quarantined, with the codes named."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from ecohub.db.quarantine import quarantine
from ecohub.ingest.hj212_gateway import HJ212Gateway
from ecohub.registry.importer import import_records
from ecohub.registry.models import MonitoringPoint
from ecohub.registry.parameters import load_parameter_rows
from ecohub.timeseries.tables import observations

PACKETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "hj212" / "packets.jsonl"
# source prefix → (MN, site kind)
SOURCES = {
    "gj0312/GB212ReceiverApp": ("LB4200001", "air"),
    "skylakezf/HJ212_Server": ("Abc", "pollution_source"),
    "mutoushirana/HJ212Virtual": ("DXCBZ000000005", "surface_water"),
}
INTERVAL = {"2011": "rt", "2051": "min", "2061": "hour", "2031": "day"}
CST = dt.timezone(dt.timedelta(hours=8))


def _frames() -> list[dict[str, str]]:
    if not PACKETS.exists():
        pytest.skip(f"{PACKETS} is absent: the real-data tests need ../shared/data")
    found = []
    for line in PACKETS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["source"].split("@")[0] in SOURCES and record["crc_ok"] and record["length_ok"]:
            found.append(record)
    return found


def _expected(frames: list[dict[str, str]]) -> tuple[set[tuple], Counter[str]]:
    """(MN, code, interval, time, value) of every value the frames carry, read with a
    regular expression from the frame text; and the codes not in the parameter table."""
    known = {row["code"] for row in load_parameter_rows()}
    expected: set[tuple] = set()
    unknown: Counter[str] = Counter()
    for frame in frames:
        raw = frame["raw"]
        cn = re.search(r"CN=(\d+)", raw).group(1)  # type: ignore[union-attr]
        if cn not in INTERVAL:
            continue
        mn = re.search(r"MN=([^;]*)", raw).group(1)  # type: ignore[union-attr]
        cp = raw[raw.index("CP=&&") + 5 : raw.rindex("&&")]
        moment = dt.datetime.strptime(
            re.search(r"DataTime=(\d{14})", cp).group(1),
            "%Y%m%d%H%M%S",  # type: ignore[union-attr]
        ).replace(tzinfo=CST)
        for code, field, value in re.findall(r"(\w+)-(Rtd|Avg|Min|Max|Cou)=([-\d.]+)", cp):
            if code not in known:
                unknown[code] += 1
                continue
            stored = code if field in ("Rtd", "Avg") else f"{code}-{field}"
            expected.add((mn, stored, INTERVAL[cn], moment.astimezone(dt.UTC), float(value)))
    return expected, unknown


def _register(engine: Engine) -> None:
    records = [("regions", "r", {"code": "420000", "name": "湖北省"})]
    for number, (mn, kind) in enumerate(SOURCES.values()):
        code = f"REPLAY{number}"
        records.append(
            ("sites", code, {"code": code, "name": code, "kind": kind, "region_code": "420000"})
        )
        records.append(
            (
                "points",
                code,
                {"code": code, "name": code, "mn": mn, "password": "123456", "site_code": code},
            )
        )
    assert not import_records(engine, records, "test").rejected


async def _replay(engine: Engine, frames: list[dict[str, str]]) -> int:
    gateway = HJ212Gateway(engine, idle_timeout=30)
    port = await gateway.start("127.0.0.1", 0)
    answers = 0
    try:
        for source in SOURCES:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for frame in frames:
                if frame["source"].startswith(source):
                    raw = frame["raw"].encode("ascii")
                    writer.write(raw if raw.endswith(b"\r\n") else raw + b"\r\n")
            await writer.drain()
            # The simulator's uploads ask for answers (Flag=5): read them while they come.
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), timeout=1.5)
                except TimeoutError:
                    break
                if not line:
                    break
                answers += b"CN=9014" in line
            writer.close()
    finally:
        await gateway.close()
    return answers


def test_real_frames_of_three_sources_are_stored_value_for_value(engine: Engine) -> None:
    frames = _frames()
    _register(engine)
    answers = asyncio.run(_replay(engine, frames))
    expected, unknown = _expected(frames)
    with engine.connect() as connection:
        stored = {
            (mn, code, interval, ts, value)
            for mn, code, interval, ts, value in connection.execute(
                select(
                    MonitoringPoint.mn,
                    observations.c.parameter_code,
                    observations.c.interval,
                    observations.c.ts,
                    observations.c.value,
                ).join(MonitoringPoint, MonitoringPoint.id == observations.c.point_id)
            )
        }
        reasons = Counter(connection.execute(select(quarantine.c.reason_code)).scalars().all())
        partly = (
            connection.execute(
                select(quarantine.c.reason).where(quarantine.c.reason_code == "partly_unusable")
            )
            .scalars()
            .all()
        )
    assert stored == expected
    assert len(stored) > 1000  # gj0312 949, skylakezf 218, mutoushirana 120, less repeats
    # gj0312's station sends five codes the parameter table does not hold: each of its
    # uploads is quarantined as partly unusable, naming them.
    assert set(unknown) == {"a05002", "a34006", "a34007", "a34049", "a99999"}
    assert reasons["partly_unusable"] == 69 and all("a05002" in reason for reason in partly)
    # Every frame whose Flag asks for an answer (bit 1) is answered with a 9014, except the
    # answers among them (CN 9011, 9012, 9014 carry Flag=5 in the simulator's log too).
    wanted = 0
    for frame in frames:
        flag = re.search(r";Flag=(\d+)", frame["raw"].split("CP=")[0])
        cn = re.search(r"CN=(\d+)", frame["raw"]).group(1)  # type: ignore[union-attr]
        wanted += bool(flag and int(flag.group(1)) & 1 and not cn.startswith("90"))
    assert answers == wanted and wanted >= 24  # 24 real-time uploads among them
