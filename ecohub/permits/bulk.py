"""Emissions accounting and the environmental protection tax of every outlet at once: the
month of every outlet a permit in force limits, from a few set-based reads (the hourly
mean rollups, the limits in force, the outlets' points, the shutdown hours) and NumPy,
for the agency's monthly run over thousands of outlets.

The rules are those of the per-outlet path (:func:`ecohub.permits.accounting.account_outlet`
with :func:`ecohub.standards.cems.account_flue_gas` and
:func:`~ecohub.standards.cems.account_wastewater`), applied to many series at once
(:func:`fill_gaps` is ``cems._fill`` over the rows of an array) and giving the same
figures to the last bit: an hour is measured when its hourly mean is valid and a finite
number; an hour with a value flagged ``F`` at one of the outlet's points is shut down and
emits nothing; a run of 1-24 operating hours without a measurement between two measured
hours takes their mean (flue gas only); other hours stay unresolved; masses are summed
hour by hour in order as :class:`~ecohub.standards.cems.Totals` does. The tax of each
enterprise's month is then :func:`ecohub.permits.tax.gather` (supervisory results, flows,
reference-O2 concentrations) and :func:`~ecohub.permits.tax.enterprise_tax`, as
:func:`~ecohub.permits.tax.month_tax` computes it for one enterprise.

On PostgreSQL the hourly means arrive by ``COPY … TO STDOUT (FORMAT BINARY)``, parsed as
fixed-width records; elsewhere by an ordinary query, in batches.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Connection, Engine, cast, func, select

from ecohub.clock import local_zone
from ecohub.permits.accounting import FLOW, AccountingError, PollutantTotals, month_hours
from ecohub.permits.tax import enterprise_tax, gather, province_of
from ecohub.registry.models import (
    Enterprise,
    MonitoringPoint,
    Outlet,
    Parameter,
    Permit,
    PermitLimit,
)
from ecohub.standards import cems
from ecohub.standards.envtax_zones import zones
from ecohub.timeseries.tables import observations, rollups

# How each hour of a quantity was obtained (cems.Basis), as small integers.
MEASURED, SHORT_GAP, SHUTDOWN, UNRESOLVED = 0, 1, 2, 3
# Each outlet kind's mass of one hour from concentration × flow (m³/h): cems.hourly_mass_kg
# (mg/m³, flue gas) and cems.mass_kg (mg/L, waste water).
MASS_FACTOR = {"gas": 1e-6, "water": 1e-3}
OUTLETS_PER_BLOCK = 512
Progress = Callable[[str, int, int], None]


@dataclass
class MonthAccounts:
    """Every outlet a permit in force limits, accounted for one month."""

    year: int
    month: int
    enterprises: list[Any]  # rows: id, uscc, name, region_code (by id)
    outlets: list[Any]  # rows: id, enterprise_id, code, name, kind (by enterprise, code)
    accounted: dict[int, list[PollutantTotals]]  # outlet id → its pollutants, by code
    rollup_rows: int = 0  # valid hourly means used
    shutdown_hours: int = 0  # (point, hour) pairs flagged F


@dataclass
class _Layout:
    """The series of the month: one row per (outlet, pollutant) and per outlet's flow."""

    hours: list[dt.datetime]
    codes: list[str]  # every code read, its index is the code's number
    slots: list[Any]  # the outlets accounted (with points and limits)
    point_ids: np.ndarray  # sorted
    point_slots: np.ndarray  # the slot of each point
    series_of: np.ndarray  # (slot, code number) → series row or -1
    limits: dict[int, dict[str, tuple[float, float | None]]]
    number: dict[str, int] = field(init=False)
    values: np.ndarray = field(init=False)
    measured: np.ndarray = field(init=False)
    owner: np.ndarray = field(init=False)  # the point whose value an hour holds
    shutdown: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.number = {code: index for index, code in enumerate(self.codes)}
        rows = int(self.series_of.max(initial=-1)) + 1
        self.values = np.zeros((rows, len(self.hours)))
        self.measured = np.zeros((rows, len(self.hours)), dtype=bool)
        self.owner = np.full((rows, len(self.hours)), np.iinfo(np.int64).max)
        self.shutdown = np.zeros((len(self.slots), len(self.hours)), dtype=bool)

    def slots_of(self, point_ids: np.ndarray) -> np.ndarray:
        """The slot of each point id, -1 for a point of no outlet accounted."""
        if not len(self.point_ids):
            return np.full(len(point_ids), -1)
        at = np.minimum(np.searchsorted(self.point_ids, point_ids), len(self.point_ids) - 1)
        return np.where(self.point_ids[at] == point_ids, self.point_slots[at], -1)

    def put(self, point_ids: np.ndarray, codes: np.ndarray, hours: np.ndarray, values: Any) -> int:
        """Store a batch of valid hourly means; returns how many belonged to a series.
        Where two points of an outlet both measured an hour, the point with the lowest id
        (the outlet's first registered) is kept, whatever order the batches come in, as in
        the per-outlet path."""
        slots = self.slots_of(point_ids)
        keep = (slots >= 0) & (hours >= 0) & (hours < len(self.hours)) & np.isfinite(values)
        rows = self.series_of[slots[keep], codes[keep]]
        hit = rows >= 0
        rows, at, points = rows[hit], hours[keep][hit], point_ids[keep][hit]
        np.minimum.at(self.owner, (rows, at), points)
        won = self.owner[rows, at] == points
        self.values[rows[won], at[won]] = values[keep][hit][won]
        self.measured[rows, at] = True
        return int(hit.sum())


def fill_gaps(
    values: np.ndarray, measured: np.ndarray, shutdown: np.ndarray, short_gap_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``cems._fill`` without a fallback over the rows of 2-D arrays (series × hours): the
    value used for each hour and its basis (:data:`MEASURED`, :data:`SHORT_GAP`,
    :data:`SHUTDOWN`, :data:`UNRESOLVED`). A gap is a run of operating hours without a
    measurement; it takes the mean of the measured hours directly before and after it
    when it lasts at most ``short_gap_max`` hours (per row; negative: never)."""
    n = values.shape[1]
    measured = measured & ~shutdown
    gap = ~measured & ~shutdown
    index = np.arange(n)
    before = np.maximum.accumulate(np.where(gap, -1, index), axis=1)
    after = np.minimum.accumulate(np.where(gap, n, index)[:, ::-1], axis=1)[:, ::-1]
    low, high = np.maximum(before, 0), np.minimum(after, n - 1)
    short = (
        gap
        & (before >= 0)
        & (after < n)
        & np.take_along_axis(measured, low, axis=1)
        & np.take_along_axis(measured, high, axis=1)
        & (after - before - 1 <= short_gap_max[:, None])
    )
    with np.errstate(over="ignore"):  # as Python's float: an overflow gives inf
        means = (
            np.take_along_axis(values, low, axis=1) + np.take_along_axis(values, high, axis=1)
        ) / 2
    used = np.where(measured, values, np.where(short, means, np.nan))
    basis = np.select([shutdown, measured, short], [SHUTDOWN, MEASURED, SHORT_GAP], UNRESOLVED)
    return used, basis.astype(np.int8)


# --- reads -----------------------------------------------------------------------------


def _registry(connection: Connection, first: dt.date, last: dt.date) -> dict[str, Any]:
    """The limits in force (the latest permit's where several are, as the per-outlet
    path), their outlets' enterprises with all their outlets, the points, the names."""
    in_force = (Permit.valid_from <= last, Permit.valid_to >= first)
    limits: dict[int, dict[str, tuple[float, float | None]]] = defaultdict(dict)
    for outlet_id, code, limit, annual in connection.execute(
        select(
            PermitLimit.outlet_id,
            PermitLimit.parameter_code,
            PermitLimit.concentration_limit,
            PermitLimit.annual_mass_limit_kg,
        )
        .join(Permit, Permit.id == PermitLimit.permit_id)
        .where(*in_force)
        .order_by(Permit.valid_from, Permit.id)
    ):
        limits[outlet_id][code] = (limit, annual)
    limited = select(PermitLimit.outlet_id).join(Permit, Permit.id == PermitLimit.permit_id)
    owners = select(Outlet.enterprise_id).where(Outlet.id.in_(limited.where(*in_force)))
    enterprises = connection.execute(
        select(Enterprise.id, Enterprise.uscc, Enterprise.name, Enterprise.region_code)
        .where(Enterprise.id.in_(owners))
        .order_by(Enterprise.id)
    ).all()
    outlets = connection.execute(
        select(Outlet.id, Outlet.enterprise_id, Outlet.code, Outlet.name, Outlet.kind)
        .where(Outlet.enterprise_id.in_(owners))
        .order_by(Outlet.enterprise_id, Outlet.code)
    ).all()
    points = connection.execute(
        select(MonitoringPoint.id, MonitoringPoint.outlet_id).where(
            MonitoringPoint.outlet_id.in_(select(Outlet.id).where(Outlet.enterprise_id.in_(owners)))
        )
    ).all()
    codes = sorted({code for found in limits.values() for code in found})
    names = {
        code: (name, unit)
        for code, name, unit in connection.execute(
            select(Parameter.code, Parameter.name_zh, Parameter.unit).where(
                Parameter.code.in_(codes)
            )
        )
    }
    return {
        "limits": dict(limits),
        "enterprises": enterprises,
        "outlets": outlets,
        "points": points,
        "names": names,
    }


def _layout(found: dict[str, Any], hours: list[dt.datetime]) -> _Layout:
    """The outlets with points and limits in force, and the row of each of their series."""
    points_of: dict[int, list[int]] = defaultdict(list)
    for point_id, outlet_id in found["points"]:
        points_of[outlet_id].append(point_id)
    for outlet in found["outlets"]:
        if outlet.kind not in FLOW:
            raise AccountingError(f"outlet {outlet.code}: kind {outlet.kind!r} has no flow")
    slots = [o for o in found["outlets"] if points_of.get(o.id) and found["limits"].get(o.id)]
    codes = sorted(
        {code for o in slots for code in found["limits"][o.id]} | {FLOW[o.kind][0] for o in slots}
    )
    number = {code: index for index, code in enumerate(codes)}
    series_of = np.full((len(slots), len(codes)), -1, dtype=np.int64)
    pairs = [
        (slot, number[code])
        for slot, outlet in enumerate(slots)
        for code in (*sorted(found["limits"][outlet.id]), FLOW[outlet.kind][0])
    ]
    for row, (slot, code) in enumerate(pairs):
        series_of[slot, code] = row
    owned = sorted((p, slot) for slot, o in enumerate(slots) for p in points_of[o.id])
    return _Layout(
        hours=hours,
        codes=codes,
        slots=slots,
        point_ids=np.array([p for p, _ in owned], dtype=np.int64),
        point_slots=np.array([s for _, s in owned], dtype=np.int64),
        series_of=series_of,
        limits=found["limits"],
    )


# COPY's binary format (PostgreSQL docs, "COPY", Binary Format): a 19-byte header, then per
# tuple the field count and each field's length and bytes, then -1 as a 16-bit trailer.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_RECORD = np.dtype(
    [
        ("fields", ">i2"),
        ("n_point", ">i4"),
        ("point", ">i4"),
        ("n_code", ">i4"),
        ("code", ">i2"),
        ("n_ts", ">i4"),
        ("ts", ">i8"),  # timestamptz: microseconds since 2000-01-01 00:00 UTC
        ("n_value", ">i4"),
        ("value", ">f8"),
    ]
)
_POSTGRES_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_HOUR_US = 3_600_000_000
_BATCH_BYTES = 16 << 20
_COPY = """COPY (
    SELECT point_id, (array_position(%(codes)s::text[], parameter_code::text) - 1)::int2,
           ts, value
    FROM rollups
    WHERE period = 'hour' AND statistic = 'mean' AND valid AND value IS NOT NULL
      AND parameter_code = ANY(%(codes)s::text[]) AND point_id = ANY(%(points)s::int4[])
      AND ts >= %(first)s AND ts <= %(last)s
) TO STDOUT (FORMAT BINARY)"""


def _records(chunk: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    found = np.frombuffer(chunk, dtype=_RECORD)
    widths = (found["n_point"] != 4) | (found["n_code"] != 2) | (found["n_ts"] != 8)
    if (found["fields"] != 4).any() or widths.any() or (found["n_value"] != 8).any():
        raise AccountingError("unexpected record in the COPY of the hourly means")
    return (
        found["point"].astype(np.int64),
        found["code"].astype(np.int64),
        found["ts"].astype(np.int64),
        found["value"].astype(np.float64),
    )


def _postgres_batches(
    connection: Connection, layout: _Layout
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The valid hourly means of the layout's series: (point, code number, hour, value)."""
    start = (layout.hours[0] - _POSTGRES_EPOCH) // dt.timedelta(microseconds=1)
    params = {
        "codes": layout.codes,
        "points": layout.point_ids.tolist(),
        "first": layout.hours[0],
        "last": layout.hours[-1],
    }
    buffer, header = bytearray(), True
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor, cursor.copy(_COPY, params) as copy:
        for block in copy:
            buffer += block
            if header:
                if len(buffer) < 19:
                    continue
                if bytes(buffer[:11]) != _SIGNATURE:
                    raise AccountingError("the hourly means did not arrive as a binary COPY")
                del buffer[: 19 + int.from_bytes(buffer[15:19], "big")]
                header = False
            if len(buffer) >= _BATCH_BYTES:
                size = len(buffer) // _RECORD.itemsize * _RECORD.itemsize
                chunk = bytes(buffer[:size])
                del buffer[:size]
                points, codes, ts, values = _records(chunk)
                yield points, codes, _hour_numbers(ts - start), values
    size = len(buffer) - 2  # the trailer
    if header or size < 0 or size % _RECORD.itemsize or bytes(buffer[size:]) != b"\xff\xff":
        raise AccountingError("the COPY of the hourly means ended early")
    if size:
        points, codes, ts, values = _records(bytes(buffer[:size]))
        yield points, codes, _hour_numbers(ts - start), values


def _hour_numbers(offsets_us: np.ndarray) -> np.ndarray:
    """The hour of each offset from the month's first hour, -1 when not on the hour."""
    return np.where(offsets_us % _HOUR_US == 0, offsets_us // _HOUR_US, -1)


def _generic_batches(
    connection: Connection, layout: _Layout
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """As :func:`_postgres_batches`, by an ordinary query (SQLite)."""
    number = {code: index for index, code in enumerate(layout.codes)}
    hour_of = {at: index for index, at in enumerate(layout.hours)}
    query = select(
        rollups.c.point_id, rollups.c.parameter_code, rollups.c.ts, rollups.c.value
    ).where(
        rollups.c.period == "hour",
        rollups.c.statistic == "mean",
        rollups.c.valid.is_(True),
        rollups.c.value.is_not(None),
        rollups.c.parameter_code.in_(layout.codes),
        rollups.c.ts >= layout.hours[0],
        rollups.c.ts <= layout.hours[-1],
    )
    result = connection.execution_options(yield_per=100_000).execute(query)
    for rows in result.partitions():
        yield (
            np.array([row[0] for row in rows], dtype=np.int64),
            np.array([number[row[1]] for row in rows], dtype=np.int64),
            np.array([hour_of.get(row[2], -1) for row in rows], dtype=np.int64),
            np.array([row[3] for row in rows], dtype=np.float64),
        )


def _read_shutdown(connection: Connection, layout: _Layout) -> int:
    """Mark the hours with a value flagged ``F`` (停运) at an outlet's points; returns
    how many (point, hour) pairs were read."""
    if connection.dialect.name == "postgresql":
        seconds: Any = func.floor(func.date_part("epoch", observations.c.ts))
    else:
        seconds = func.strftime("%s", observations.c.ts)  # whole seconds
    hour = cast(seconds, BigInteger) // 3600
    rows = connection.execute(
        select(observations.c.point_id, hour)
        .distinct()
        .where(
            observations.c.data_flag == "F",
            observations.c.ts >= layout.hours[0],
            observations.c.ts < layout.hours[-1] + dt.timedelta(hours=1),
        )
    ).all()
    if not rows:
        return 0
    points = np.array([row[0] for row in rows], dtype=np.int64)
    first = int(layout.hours[0].timestamp()) // 3600
    hours = np.array([row[1] for row in rows], dtype=np.int64) - first
    slots = layout.slots_of(points)
    keep = (slots >= 0) & (hours >= 0) & (hours < len(layout.hours))
    layout.shutdown[slots[keep], hours[keep]] = True
    return len(rows)


# --- accounting ------------------------------------------------------------------------


def _account_block(
    layout: _Layout, slots: range, names: dict[str, tuple[str, str]]
) -> dict[int, list[PollutantTotals]]:
    """The pollutants of the outlets in ``slots``, accounted."""
    outlets = [layout.slots[slot] for slot in slots]
    kinds = [outlet.kind for outlet in outlets]
    gap = int(cems.thresholds()["short_gap_max_hours"])
    short = np.array([gap if kind == "gas" else -1 for kind in kinds])
    stopped = layout.shutdown[slots.start : slots.stop]
    flow_rows = [
        layout.series_of[slot, layout.number[FLOW[kind][0]]]
        for slot, kind in zip(slots, kinds, strict=True)
    ]
    # The flow in m³/h before anything else, as the per-outlet path's cems.Hour carries it.
    with np.errstate(over="ignore"):
        flow_values = (
            layout.values[flow_rows] * np.array([FLOW[kind][1] for kind in kinds])[:, None]
        )
    flow_measured = layout.measured[flow_rows] & np.isfinite(flow_values)
    flows, flow_basis = fill_gaps(flow_values, flow_measured, stopped, short)
    owner, rows, codes = [], [], []
    for local, (slot, outlet) in enumerate(zip(slots, outlets, strict=True)):
        for code in sorted(layout.limits[outlet.id]):
            owner.append(local)
            rows.append(layout.series_of[slot, layout.number[code]])
            codes.append(code)
    at = np.array(owner, dtype=np.int64)
    concentrations, basis = fill_gaps(
        layout.values[rows], layout.measured[rows], stopped[at], short[at]
    )
    shut = stopped[at]
    unresolved = ~shut & ((basis == UNRESOLVED) | (flow_basis[at] == UNRESOLVED))
    both = (basis == MEASURED) & (flow_basis[at] == MEASURED)
    mass_factor = np.array([MASS_FACTOR[kind] for kind in kinds])[at]
    with np.errstate(invalid="ignore", over="ignore"):
        masses = concentrations * flows[at] * mass_factor[:, None]
    masses = np.where(shut | unresolved, 0.0, masses)
    # Summed hour by hour in order, as cems.Totals.add does (not NumPy's pairwise sum).
    mass_kg = np.cumsum(masses, axis=1)[:, -1]
    counts = {
        "hours_measured": both.sum(axis=1),
        "hours_substituted": (~shut & ~unresolved & ~both).sum(axis=1),
        "hours_shutdown": shut.sum(axis=1),
        "hours_unresolved": unresolved.sum(axis=1),
    }
    share = cems.thresholds()["max_missing_share"]
    out: dict[int, list[PollutantTotals]] = {outlet.id: [] for outlet in outlets}
    for index, code in enumerate(codes):
        outlet = outlets[owner[index]]
        totals = cems.Totals(
            mass_kg=float(mass_kg[index]),
            **{key: int(value[index]) for key, value in counts.items()},
        )
        # Python's own sum of the measured hours, as the per-outlet path takes the mean.
        measured = concentrations[index][basis[index] == MEASURED].tolist()
        limit, annual = layout.limits[outlet.id][code]
        name, unit = names.get(code, (code, ""))
        out[outlet.id].append(
            PollutantTotals(
                parameter_code=code,
                name=name,
                unit=unit,
                limit=limit,
                annual_mass_limit_kg=annual,
                totals=totals,
                usable_as_basis=cems.Accounting((), totals, share).usable_as_basis,
                mean_concentration=sum(measured) / len(measured) if measured else None,
                highest_concentration=max(measured) if measured else None,
            )
        )
    return out


def account_month(
    engine: Engine, year: int, month: int, *, progress: Progress | None = None
) -> MonthAccounts:
    """Every outlet a permit in force in the month limits, accounted (Beijing calendar),
    each pollutant as :meth:`PollutantPeriod.summary` of the per-outlet path gives it.
    ``progress(what, done, total)`` is called as the reads and the outlets advance."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2200:
        raise AccountingError(f"month {year}-{month:02d} is not a month")
    hours = month_hours(year, month)
    zone = local_zone()
    report: Progress = progress or (lambda what, done, total: None)
    with engine.connect() as connection:
        found = _registry(
            connection, hours[0].astimezone(zone).date(), hours[-1].astimezone(zone).date()
        )
        layout = _layout(found, hours)
        expected = layout.values.size
        read = 0
        if layout.slots:
            batches = (
                _postgres_batches(connection, layout)
                if connection.dialect.name == "postgresql"
                else _generic_batches(connection, layout)
            )
            for points, codes, at, values in batches:
                read += layout.put(points, codes, at, values)
                report("hourly means", read, expected)
            shutdown = _read_shutdown(connection, layout)
        else:
            shutdown = 0
    accounted: dict[int, list[PollutantTotals]] = {o.id: [] for o in found["outlets"]}
    report("outlets", 0, len(layout.slots))
    for start in range(0, len(layout.slots), OUTLETS_PER_BLOCK):
        block = range(start, min(start + OUTLETS_PER_BLOCK, len(layout.slots)))
        accounted.update(_account_block(layout, block, found["names"]))
        report("outlets", block.stop, len(layout.slots))
    return MonthAccounts(
        year=year,
        month=month,
        enterprises=list(found["enterprises"]),
        outlets=list(found["outlets"]),
        accounted=accounted,
        rollup_rows=read,
        shutdown_hours=shutdown,
    )


def month_all(
    engine: Engine,
    year: int,
    month: int,
    *,
    rate: dict[str, float] | None = None,
    zone: str | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """The month's emissions and tax of every enterprise with an outlet a permit in force
    limits, each as :func:`ecohub.permits.tax.month_tax` gives it for that enterprise
    (every outlet of the enterprise, its accounting and every step), by enterprise id.
    ``rate`` as :func:`~ecohub.permits.tax.month_tax` takes it; ``zone`` for the
    enterprises of the provinces with that rate zone (the others' zones are derived from
    their divisions where tabled)."""
    accounts = account_month(engine, year, month, progress=progress)
    outlets_of: dict[int, list[Any]] = defaultdict(list)
    for outlet in accounts.outlets:
        outlets_of[outlet.enterprise_id].append(outlet)
    with engine.connect() as connection:
        inputs = gather(
            connection,
            {enterprise.id: enterprise.uscc for enterprise in accounts.enterprises},
            accounts.outlets,
            accounts.accounted,
            year,
            month,
        )
    out = []
    if progress is not None:
        progress("tax", 0, len(accounts.enterprises))
    for done, enterprise in enumerate(accounts.enterprises, start=1):
        out.append(
            enterprise_tax(
                enterprise,
                year,
                month,
                outlets_of[enterprise.id],
                accounts.accounted,
                inputs,
                rate=rate,
                zone=zone if zone in zones(province_of(enterprise.region_code)) else None,
            )
        )
        if progress is not None and (done % 500 == 0 or done == len(accounts.enterprises)):
            progress("tax", done, len(accounts.enterprises))
    return out
