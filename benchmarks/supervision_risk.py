"""Evidence and risk scores of 10,000 enterprises over a year, on PostgreSQL (issue 27:
under 30 s).

A scratch store gets, server-side (``generate_series``, not timed):

- 10,000 enterprises in 10 regions, each with one flue-gas outlet and its logger (a value
  a minute);
- a year (2024) of the loggers' data as the evidence reads it: the daily rollups of three
  series a point (SO2, NOx, flow: 10,950,000 rows, ``received`` about 1,440 values and
  ``samples`` about 24 valid hours a day, some days short or missing); with ``--hourly N``
  also the hourly rollups of the first N points' three series (8,760 hours each), so that
  the daily rows sit among hourly ones as in a live store;
- 60,000 closed alarms (exceedance with a peak multiple, data anomaly, offline) spread
  over the year, and 2,000 penalty cases with their steps and re-inspections.

Then it times :func:`ecohub.supervision.evidence.ranked` (every enterprise's evidence and
risk score, sorted) for the year, the median of ``--repeats`` runs, and prints it with
its ratio to the 30 s target.

    python -m benchmarks.supervision_risk [--enterprises 10000] [--repeats 3] [--hourly 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from sqlalchemy import Engine, text

from benchmarks._common import scratch_store
from ecohub.supervision import evidence
from ecohub.supervision.risk import load_weights

CST = dt.timezone(dt.timedelta(hours=8))
TARGET_SECONDS = 30.0

SETUP = [
    """INSERT INTO regions (code, name, level)
       SELECT lpad((110000 + 100 * r)::text, 6, '0'), 'bench region ' || r, 'city'
       FROM generate_series(1, 10) AS r""",
    """INSERT INTO enterprises (id, uscc, name, region_code, industry, longitude, latitude)
       SELECT e, '91' || lpad(e::text, 15, '0') || 'X', 'bench enterprise ' || e,
              lpad((110000 + 100 * (1 + e % 10))::text, 6, '0'), 'bench',
              100 + (e % 200) * 0.1, 25 + (e % 150) * 0.1
       FROM generate_series(1, :n) AS e""",
    """INSERT INTO outlets (id, enterprise_id, code, name, kind)
       SELECT e, e, 'DA001', 'stack', 'gas' FROM generate_series(1, :n) AS e""",
    """INSERT INTO monitoring_points (id, code, mn, name, outlet_id, interval_seconds,
                                      minute_interval_seconds, crc_tolerant)
       SELECT e, 'B' || lpad(e::text, 6, '0'), 'BM' || lpad(e::text, 12, '0'), 'logger', e,
              60, 600, false
       FROM generate_series(1, :n) AS e""",
    # A day of a series: usually complete; every 17th day short, every 53rd missing.
    """INSERT INTO rollups (point_id, parameter_code, period, ts, value, statistic, samples,
                            received, valid, basis, flags, computed_at)
       SELECT p, c, 'day', d, 20 + (p % 30), 'mean',
              CASE WHEN (p + extract(doy FROM d)::int) % 17 = 0 THEN 14 ELSE 24 END,
              CASE WHEN (p + extract(doy FROM d)::int) % 17 = 0 THEN 800 ELSE 1440 END,
              (p + extract(doy FROM d)::int) % 17 <> 0, 'hour', 0, now()
       FROM generate_series(1, :n) AS p,
            unnest(ARRAY['a21026', 'a21002', 'a00000']) AS c,
            generate_series(timestamptz '2023-12-31 16:00+00', timestamptz '2024-12-30 16:00+00',
                            interval '1 day') AS d
       WHERE (p + extract(doy FROM d)::int) % 53 <> 0""",
    """INSERT INTO alarms (kind, condition_key, status, severity, point_id, enterprise_id,
                           region_code, parameter_code, summary, evidence, started_at,
                           last_active_at, ended_at, duration_seconds, opened_at, closed_at,
                           closed_by, close_reason)
       SELECT k, k || ':' || a, 'closed', 'warning', 1 + a % :n, 1 + a % :n,
              lpad((110000 + 100 * (1 + (1 + a % :n) % 10))::text, 6, '0'), 'a21026', 'bench',
              json_build_object('peak', json_build_object('multiple', (a % 40) / 10.0)),
              t, t + (1 + a % 6) * interval '1 hour', t + (2 + a % 6) * interval '1 hour',
              (2 + a % 6) * 3600, t, t + interval '1 day', 'bench', 'bench'
       FROM generate_series(1, 60000) AS a,
            LATERAL (SELECT (ARRAY['source_exceedance', 'data_anomaly', 'offline'])[1 + a % 3]
                            AS k,
                            timestamptz '2024-01-01 00:00+08' + (a % 8700) * interval '1 hour'
                            AS t) AS x""",
    """INSERT INTO cases (id, enterprise_id, title, violation, step, legal_basis, penalty_yuan,
                          daily_penalty, order_served_on, created_by, created_at)
       SELECT c, 1 + (c * 7) % :n, 'bench case', 'exceedance', 'decided', 'bench',
              10000 * (1 + c % 20), true, date '2024-01-10' + (c % 300), 'bench', now()
       FROM generate_series(1, 2000) AS c""",
    """INSERT INTO case_steps (case_id, step, on_date, actor, recorded_at)
       SELECT c, s, date '2024-01-01' + (c % 300) + o, 'bench', now()
       FROM generate_series(1, 2000) AS c,
            (VALUES ('discovered', 0), ('filed', 5), ('investigated', 20), ('notified', 30),
                    ('decided', 40)) AS steps(s, o)""",
    """INSERT INTO case_reinspections (case_id, on_date, continuing, actor)
       SELECT c, date '2024-01-10' + (c % 300) + 15, c % 3 = 0, 'bench'
       FROM generate_series(1, 2000) AS c""",
]

HOURLY = """INSERT INTO rollups (point_id, parameter_code, period, ts, value, statistic,
                                 samples, received, valid, basis, flags, computed_at)
    SELECT p, c, 'hour', h, 20 + (p % 30), 'mean', 60, 60, true, 'min', 0, now()
    FROM generate_series(1, :points) AS p,
         unnest(ARRAY['a21026', 'a21002', 'a00000']) AS c,
         generate_series(timestamptz '2023-12-31 16:00+00', timestamptz '2024-12-31 15:00+00',
                         interval '1 hour') AS h"""


def fill(engine: Engine, enterprises: int, hourly_points: int) -> dict[str, int]:
    """Generate the store's rows; returns the counts of the main tables."""
    with engine.begin() as connection:
        for statement in SETUP:
            connection.execute(text(statement), {"n": enterprises})
        if hourly_points:
            connection.execute(text(HOURLY), {"points": hourly_points})
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("enterprises", "rollups", "alarms", "cases")
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--enterprises", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hourly", type=int, default=0, help="points with hourly rollups too")
    args = parser.parse_args()
    start = dt.datetime(2024, 1, 1, tzinfo=CST)
    end = dt.datetime(2025, 1, 1, tzinfo=CST)
    weights = load_weights()
    with scratch_store("postgresql") as engine:
        began = time.perf_counter()
        counts = fill(engine, args.enterprises, args.hourly)
        print(
            f"supervision_risk: store filled in {time.perf_counter() - began:.0f} s: "
            + ", ".join(f"{count:,} {table}" for table, count in counts.items())
        )
        seconds = []
        for run in range(args.repeats):
            began = time.perf_counter()
            ranked = evidence.ranked(engine, start, end, weights)
            seconds.append(time.perf_counter() - began)
            print(f"run {run + 1}: {seconds[-1]:.1f} s, {len(ranked):,} enterprises scored")
        top = ranked[0]
        print(
            f"highest: {top['name']} score {top['risk']['score']}, "
            f"transmission {top['transmission_rate']:.3f}"
        )
    median = statistics.median(seconds)
    print(f"{'evidence + risk, one year':<32}{median:>8.1f} s  (median of {args.repeats})")
    print(f"{'÷ target 30 s':<32}{median / TARGET_SECONDS:>8.2f}")


if __name__ == "__main__":
    main()
