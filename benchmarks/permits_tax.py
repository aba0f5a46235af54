"""A month's emissions and environmental protection tax of 5,000 outlets from their hourly
data, on PostgreSQL (issue 29: under 60 s).

A scratch store gets, server-side (``generate_series``, not timed):

- 2,500 enterprises in 7 provinces that set one rate for the whole province, each with
  two outlets (5,000: 70 % flue gas with SO2, NOx and 烟尘; 30 % waste water with COD,
  氨氮 and 总磷), a logger at each, a permit in force with each outlet's concentration
  limits (every 20th enterprise also a renewed permit from 2024-03-15 with tighter ones);
- March 2024 (744 hours, Beijing calendar) of hourly mean rollups of the three
  pollutants and the flow of every outlet, written hour by hour as a live store writes
  them (about 14.7 million rows): about 1 % of the hours missing and 1.5 % invalid, a
  gap of 6 hours in one pollutant at every 5th outlet, of 30 hours in everything at
  every 20th, of 4 hours in the flow at every 7th;
- the hourly observations behind those rollups (unless ``--no-observations``: the
  shutdown hours are read from them), a shutdown of 12 hours (flag ``F``) at every 9th
  outlet.

Then it times :func:`ecohub.permits.bulk.month_all` (every enterprise's month: the
accounting of each outlet's pollutants and the tax, every step) for March 2024, prints
each run with its phases (reading the hourly means, accounting, tax), the median of
``--repeats`` runs and its ratio to the 60 s target, and the process's peak memory.

    python -m benchmarks.permits_tax [--outlets 5000] [--repeats 3] [--no-observations]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

from sqlalchemy import Engine, text

from benchmarks._common import scratch_store
from ecohub.permits import bulk
from ecohub.permits.tax import month_tax

TARGET_SECONDS = 60.0
PROVINCES = {
    "110000": "北京市",
    "140000": "山西省",
    "310000": "上海市",
    "370000": "山东省",
    "410000": "河南省",
    "440000": "广东省",
    "510000": "四川省",
}
# Outlet o (1…n) belongs to enterprise (o + 1) / 2 and carries waste water when o % 10 is
# 3, 6 or 9. Codes: index c 0-2 the pollutants, 3 the flow.
KIND = "CASE WHEN o % 10 IN (3, 6, 9) THEN 'water' ELSE 'gas' END"
CODES = """CASE WHEN o % 10 IN (3, 6, 9)
                THEN (ARRAY['w01018', 'w21003', 'w21011', 'w00000'])[c + 1]
                ELSE (ARRAY['a21026', 'a21002', 'a34013', 'a00000'])[c + 1] END"""
# Concentrations around half their limit, flows about 10 m³/s or 20 L/s.
VALUE = """CASE WHEN c = 3 THEN (CASE WHEN o % 10 IN (3, 6, 9) THEN 20 ELSE 10 END)
                                * (0.8 + ((o * 7919 + i * 104729) % 400) / 1000.0)
                ELSE (ARRAY[25, 50, 5, 30, 4, 0.5])[c + 1 + 3 * (o % 10 IN (3, 6, 9))::int]
                     * (0.6 + ((o * 31 + i * 977 + c * 131) % 800) / 1000.0) END"""
MISSING = """((o * 31 + i * 17 + c) % 101 = 0
              OR (o % 5 = 0 AND c = 0 AND i BETWEEN (o % 600) + 10 AND (o % 600) + 15)
              OR (o % 20 = 1 AND i BETWEEN (o * 3) % 600 + 50 AND (o * 3) % 600 + 79)
              OR (o % 7 = 2 AND c = 3 AND i BETWEEN (o % 500) + 100 AND (o % 500) + 103))"""
SERIES = f"""FROM generate_series(0, 743) AS i,
                 generate_series(1, :n) AS o,
                 generate_series(0, 3) AS c,
                 LATERAL (SELECT timestamptz '2024-03-01 00:00+08' + i * interval '1 hour'
                          AS ts) AS t
            WHERE NOT {MISSING}
            ORDER BY i, o, c"""

SETUP = [
    """INSERT INTO enterprises (id, uscc, name, region_code, industry)
       SELECT e, '91' || lpad(e::text, 15, '0') || 'X', 'bench enterprise ' || e,
              (ARRAY['110000', '140000', '310000', '370000', '410000', '440000', '510000'])
              [1 + e % 7], 'bench'
       FROM generate_series(1, (:n + 1) / 2) AS e""",
    f"""INSERT INTO outlets (id, enterprise_id, code, name, kind)
        SELECT o, (o + 1) / 2,
               CASE WHEN o % 10 IN (3, 6, 9) THEN 'DW' ELSE 'DA' END || lpad(o::text, 5, '0'),
               'outlet ' || o, {KIND}
        FROM generate_series(1, :n) AS o""",
    """INSERT INTO monitoring_points (id, code, mn, name, outlet_id, interval_seconds,
                                      minute_interval_seconds, crc_tolerant)
       SELECT o, 'B' || lpad(o::text, 6, '0'), 'BM' || lpad(o::text, 12, '0'), 'logger', o,
              60, 600, false
       FROM generate_series(1, :n) AS o""",
    """INSERT INTO permits (id, permit_no, enterprise_id, valid_from, valid_to)
       SELECT e, 'P' || e, e, date '2023-01-01', date '2027-12-31'
       FROM generate_series(1, (:n + 1) / 2) AS e
       UNION ALL
       SELECT 100000 + e, 'R' || e, e, date '2024-03-15', date '2029-03-14'
       FROM generate_series(20, (:n + 1) / 2, 20) AS e""",
    f"""INSERT INTO permit_limits (permit_id, outlet_id, parameter_code, concentration_limit,
                                   unit)
        SELECT p.id, o, {CODES},
               (ARRAY[50, 100, 10, 60, 8, 1])[c + 1 + 3 * (o % 10 IN (3, 6, 9))::int]
               * CASE WHEN p.id > 100000 THEN 0.8 ELSE 1 END,
               CASE WHEN o % 10 IN (3, 6, 9) THEN 'mg/L' ELSE 'mg/m³' END
        FROM generate_series(1, :n) AS o, generate_series(0, 2) AS c,
             permits AS p
        WHERE p.enterprise_id = (o + 1) / 2""",
    f"""INSERT INTO rollups (point_id, parameter_code, period, ts, value, statistic, samples,
                            received, valid, basis, flags, computed_at)
        SELECT o, {CODES}, 'hour', ts, {VALUE}, 'mean', 60, 60,
               (o * 13 + i * 7 + c) % 67 <> 0, 'min', 0, now()
        {SERIES}""",
]
OBSERVATIONS = f"""INSERT INTO observations (point_id, parameter_code, interval, ts, value,
                                             data_flag, quality_flag, source, ingested_at)
    SELECT o, {CODES}, 'hour', ts, {VALUE},
           CASE WHEN o % 9 = 0 AND i BETWEEN (o * 11) % 700 AND (o * 11) % 700 + 11
                THEN 'F' ELSE 'N' END,
           0, 'bench', now()
    {SERIES}"""
SHUTDOWN_ONLY = """INSERT INTO observations (point_id, parameter_code, interval, ts, value,
                                             data_flag, quality_flag, source, ingested_at)
    SELECT o, 'a00000', 'hour', timestamptz '2024-03-01 00:00+08' + i * interval '1 hour', 0,
           'F', 0, 'bench', now()
    FROM generate_series(9, :n, 9) AS o, generate_series(0, 743) AS i
    WHERE i BETWEEN (o * 11) % 700 AND (o * 11) % 700 + 11"""


def fill(engine: Engine, outlets: int, with_observations: bool) -> dict[str, int]:
    """Generate the store's rows; returns the counts of the main tables."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO regions (code, name, level) VALUES (:code, :name, 'province')"),
            [{"code": code, "name": name} for code, name in PROVINCES.items()],
        )
        for statement in SETUP:
            connection.execute(text(statement), {"n": outlets})
        connection.execute(
            text(OBSERVATIONS if with_observations else SHUTDOWN_ONLY), {"n": outlets}
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("enterprises", "outlets", "permit_limits", "rollups", "observations")
        }


def run(engine: Engine) -> tuple[float, dict[str, float], list[dict]]:
    """One timed month: the seconds, the phases' seconds and the answer."""
    marks: dict[str, float] = {}
    began = time.perf_counter()

    def progress(what: str, done: int, total: int) -> None:
        marks.setdefault(what, time.perf_counter())
        if what == "hourly means":
            marks["rows"] = done

    found = bulk.month_all(engine, 2024, 3, progress=progress)
    ended = time.perf_counter()
    read, accounted, taxed = marks.get("outlets", ended), marks.get("tax", ended), ended
    phases = {"read": read - began, "account": accounted - read, "tax": taxed - accounted}
    phases["rows"] = marks.get("rows", 0)
    return ended - began, phases, found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--outlets", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-observations",
        action="store_true",
        help="store only the shutdown flags, not the hourly observations",
    )
    parser.add_argument(
        "--check",
        type=int,
        default=10,
        help="enterprises compared with the per-outlet path (month_tax) after the runs",
    )
    args = parser.parse_args()
    with scratch_store("postgresql") as engine:
        began = time.perf_counter()
        counts = fill(engine, args.outlets, not args.no_observations)
        print(
            f"permits_tax: store filled in {time.perf_counter() - began:.0f} s: "
            + ", ".join(f"{count:,} {table}" for table, count in counts.items())
        )
        seconds = []
        for number in range(args.repeats):
            elapsed, phases, found = run(engine)
            seconds.append(elapsed)
            outlets = sum(len(entry["outlets"]) for entry in found)
            print(
                f"run {number + 1}: {elapsed:.1f} s ("
                + ", ".join(
                    f"{phase} {phases[phase]:.1f} s" for phase in ("read", "account", "tax")
                )
                + f"), {phases['rows']:,.0f} hourly means used, {len(found):,} enterprises, "
                f"{outlets:,} outlets, "
                f"tax {sum(entry['tax'] for entry in found):,.2f} 元"
            )
        step = max(1, len(found) // args.check) if args.check else 0
        checked = found[::step][: args.check] if step else []
        for entry in checked:
            assert entry == month_tax(engine, entry["uscc"], 2024, 3), entry["uscc"]
        print(f"{len(checked)} enterprises checked: the same as month_tax gives one at a time")
    median = statistics.median(seconds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'emissions + tax, one month':<32}{median:>8.1f} s  (median of {args.repeats})")
    print(f"{'÷ target 60 s':<32}{median / TARGET_SECONDS:>8.2f}")
    print(f"{'peak memory of the process':<32}{peak:>8.0f} MB")


if __name__ == "__main__":
    main()
