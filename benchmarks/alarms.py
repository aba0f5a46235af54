"""Pipeline throughput with the alarm rules on and off, on SQLite and PostgreSQL.

The same stream goes through :class:`ecohub.ingest.pipeline.Pipeline` twice per repeat
on a fresh store each time: once with the alarm rules off and once on. The stream is
``--minutes`` minutes of minute data (CN 2051 style) from 200 simulated outlets (six or
seven values each, flow included), one batch per minute, plus hourly data of the demo
registry's 30 air stations at each hour. Permits limit SO2 and COD near the simulated
levels and every eighth outlet runs 40 % high in the first hour, so exceedance alarms
really open (and close in the second hour) during the run.

Figure: values per second (median of ``--repeats``) with rules off and on, and their
ratio. Target: on ≥ 80 % of off.

    python -m benchmarks.alarms [--minutes 120] [--repeats 3] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import time
from importlib.resources import files
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from benchmarks._common import scratch_store
from ecohub.alarms.tables import alarms
from ecohub.ingest.pipeline import Pipeline
from ecohub.registry import service
from ecohub.registry.importer import import_file
from ecohub.registry.models import MonitoringPoint, Site
from ecohub.registry.schemas import PermitIn, PermitLimitIn
from ecohub.simulate.points import SIM_USCC, register_simulated_points
from ecohub.timeseries.observations import Observation

POINTS = 200
START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
GAS = {"a21026": 20.0, "a21002": 45.0, "a34013": 8.0, "a19001": 9.5, "a01012": 60.0}
WATER = {"w01018": 30.0, "w21003": 2.0, "w21011": 0.3, "w21001": 10.0, "w01001": 7.2}
AIR = {"a34004": 60.0, "a34002": 90.0, "a21026": 0.01, "a21004": 0.04, "a21005": 0.8}


def prepare(engine: Engine) -> tuple[list[tuple[int, str]], list[int]]:
    """Registry: demo registry (30 air stations) + 200 simulated outlets with permits."""
    import_file(engine, Path(str(files("ecohub.demo") / "registry.json")), "bench")
    simulated = register_simulated_points(engine, POINTS)
    limits = [
        PermitLimitIn(
            outlet_code=f"{'DA' if p.kind == 'gas' else 'DW'}{index:05d}",
            parameter_code="a21026" if p.kind == "gas" else "w01018",
            concentration_limit=23.0 if p.kind == "gas" else 34.0,
            unit="mg/m³" if p.kind == "gas" else "mg/L",
        )
        for index, p in enumerate(simulated)
    ]
    with Session(engine) as session, session.begin():
        service.upsert_permit(
            session,
            PermitIn(
                permit_no="SIM-BENCH-PERMIT",
                enterprise_uscc=SIM_USCC,
                valid_from=dt.date(2023, 1, 1),
                valid_to=dt.date(2027, 12, 31),
                limits=limits,
            ),
            "bench",
        )
        ids = dict(session.execute(select(MonitoringPoint.mn, MonitoringPoint.id)).all())
        stations = list(
            session.scalars(
                select(MonitoringPoint.id)
                .join(Site, Site.id == MonitoringPoint.site_id)
                .where(Site.kind == "air")
            )
        )
    return [(ids[p.mn], p.kind) for p in simulated], stations


def stream(
    outlets: list[tuple[int, str]], stations: list[int], minutes: int
) -> list[list[Observation]]:
    rng = random.Random(212)
    batches = []
    for minute in range(minutes):
        at = START + dt.timedelta(minutes=minute)
        batch = []
        for index, (point_id, kind) in enumerate(outlets):
            base = GAS if kind == "gas" else WATER
            high = 1.4 if index % 8 == 0 and minute < 60 else 1.0
            for code, mean in base.items():
                value = round(mean * high * rng.uniform(0.8, 1.2), 3)
                batch.append(Observation(point_id, code, "min", at, value, "N", 0, "bench"))
            flow = "a00000" if kind == "gas" else "w00000"
            value = round(rng.uniform(50, 60), 2)
            batch.append(Observation(point_id, flow, "min", at, value, "N", 0, "bench"))
        if minute % 60 == 59:
            hour = at.replace(minute=0)
            for point_id in stations:
                for code, mean in AIR.items():
                    value = round(mean * rng.uniform(0.5, 1.8), 4)
                    batch.append(Observation(point_id, code, "hour", hour, value, "N", 0, "b"))
        batches.append(batch)
    return batches


def run_once(backend: str, minutes: int, with_alarms: bool) -> tuple[float, int, int]:
    """(seconds, values, alarms opened) of one pass over the stream on a fresh store."""
    with scratch_store(backend) as engine:
        outlets, stations = prepare(engine)
        batches = stream(outlets, stations, minutes)
        pipeline = Pipeline(engine, alarms=with_alarms)
        now = START + dt.timedelta(days=1)
        began = time.perf_counter()
        for batch in batches:
            pipeline.process(batch, now=now)
        seconds = time.perf_counter() - began
        with engine.connect() as connection:
            opened = connection.execute(select(func.count()).select_from(alarms)).scalar_one()
        return seconds, sum(len(batch) for batch in batches), opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    print(
        f"pipeline with alarm rules off/on: {POINTS} outlets + 30 air stations, "
        f"{args.minutes} minutes of minute data, {args.repeats} repeats (median)"
    )
    for backend in args.backends.split(","):
        rates: dict[bool, list[float]] = {False: [], True: []}
        opened = 0
        for _ in range(args.repeats):
            for with_alarms in (False, True):
                seconds, values, count = run_once(backend, args.minutes, with_alarms)
                rates[with_alarms].append(values / seconds)
                if with_alarms:
                    opened = count
        off = statistics.median(rates[False])
        on = statistics.median(rates[True])
        print(
            f"{backend:>10}: rules off {off:,.0f} values/s, rules on {on:,.0f} values/s, "
            f"ratio {on / off:.1%} (target ≥ 80%); {opened} alarms opened in the run"
        )


if __name__ == "__main__":
    main()
