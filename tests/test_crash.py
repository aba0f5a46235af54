"""A writer killed in the middle of a batch leaves no partial batch (both backends)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ecohub.registry.importer import import_file
from ecohub.registry.models import MonitoringPoint
from ecohub.timeseries.observations import count_observations, write_observations

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from ecohub.db.engine import make_engine
    from ecohub.timeseries.observations import Observation, write_observations
    url, point_id, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    rows = [Observation(point_id, "a21026", "rt", t0 + dt.timedelta(seconds=i), float(i))
            for i in range(n)]
    engine = make_engine(url)
    print("writing", flush=True)
    write_observations(engine, rows)
    print("committed", flush=True)
    """
)
BATCH = 600_000


def test_killed_writer_leaves_no_partial_batch(
    engine: Engine, database_url: str, demo_registry_path: Path
) -> None:
    import_file(engine, demo_registry_path, "test")
    with Session(engine) as session:
        point_id = session.scalars(
            select(MonitoringPoint.id).where(MonitoringPoint.code == "P0001")
        ).one()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, database_url, str(point_id), str(BATCH)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "writing"
    time.sleep(0.8)  # well inside the batch: writing 600k rows takes seconds
    assert writer.poll() is None, "the writer finished before it could be killed"
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    output = writer.stdout.read()
    writer.stdout.close()
    assert "committed" not in output

    assert count_observations(engine) == 0
    # The store is usable afterwards (no stale lock, no half-applied state).
    import datetime as dt

    from ecohub.timeseries.observations import Observation

    row = Observation(point_id, "a21026", "hour", dt.datetime(2024, 1, 1, tzinfo=dt.UTC), 1.0)
    assert write_observations(engine, [row]).written == 1
    assert count_observations(engine) == 1
