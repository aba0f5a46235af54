"""Intake and linking of 100,000 complaints (issue 28: under 60 s), on SQLite and
PostgreSQL.

The complaints are the labelled set's generator scaled up (``scripts/
make_complaints_labelled.py``: the hand-written scenarios over 760 more districts and a
year), written as a call centre's CSV (ref, medium, text, longitude, latitude,
observed_at, address; one in ten with a contact). Each run files the whole file into a
fresh store with :func:`ecohub.complaints.service.import_csv`, the path of ``ecohub
complaints import``: checks, jieba tokens, the city of each point, the link to earlier
complaints in the store and in the file, the ticket, the query code's digest, the
contact's encryption, the rows and their steps, in transactions of 5,000. It prints the
median of ``--repeats`` runs per backend, complaints per second, the events made and the
ratio to the 60 s target.

    python -m benchmarks.complaints_intake [--count 100000] [--repeats 3] [--backend both]
"""

from __future__ import annotations

import argparse
import csv
import io
import statistics
import tempfile
import time

from sqlalchemy import func, select

from benchmarks._common import scratch_store
from ecohub.complaints import service
from ecohub.complaints.tables import complaint_events, complaints
from ecohub.config import Settings
from scripts.make_complaints_labelled import generate

TARGET_SECONDS = 60.0


def call_centre_csv(count: int) -> bytes:
    rows = generate(base_events=round(count / 4.2), extra_areas=760, days=365)[:count]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["ref", "medium", "text", "longitude", "latitude", "observed_at", "address", "contact"]
    )
    for row in rows:
        contact = f"市民{row.id} 139{row.id:08d}" if row.id % 10 == 0 else ""
        writer.writerow(
            [
                f"CALL-{row.id:07d}",
                row.medium,
                row.text,
                f"{row.longitude:.6f}",
                f"{row.latitude:.6f}",
                row.at.isoformat(),
                row.address,
                contact,
            ]
        )
    return out.getvalue().encode("utf-8")


def run(backend: str, data: bytes, repeats: int, count: int) -> float:
    seconds = []
    for number in range(repeats):
        with scratch_store(backend) as engine, tempfile.TemporaryDirectory() as folder:
            settings = Settings(database_url=str(engine.url), var_dir=folder)
            began = time.perf_counter()
            report = service.import_csv(engine, settings, data, "bench.csv", "bench")
            seconds.append(time.perf_counter() - began)
            with engine.connect() as connection:
                stored = connection.execute(select(func.count()).select_from(complaints)).scalar()
                events = connection.execute(
                    select(func.count()).select_from(complaint_events)
                ).scalar()
            assert stored == count and not report.errors, report.errors[:3]
            print(
                f"{backend:<11} run {number + 1}: {seconds[-1]:6.1f} s  "
                f"{count / seconds[-1]:8,.0f} complaints/s  {events:,} events"
            )
    median = statistics.median(seconds)
    print(
        f"{backend:<11} median {median:6.1f} s  {count / median:8,.0f} complaints/s  "
        f"÷ target {TARGET_SECONDS:.0f} s = {median / TARGET_SECONDS:.2f}"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    options = parser.parse_args()
    began = time.perf_counter()
    data = call_centre_csv(options.count)
    print(
        f"generated {options.count:,} complaints ({len(data) / 1e6:.1f} MB of CSV) "
        f"in {time.perf_counter() - began:.1f} s"
    )
    backends = ("sqlite", "postgresql") if options.backend == "both" else (options.backend,)
    for backend in backends:
        run(backend, data, options.repeats, options.count)


if __name__ == "__main__":
    main()
