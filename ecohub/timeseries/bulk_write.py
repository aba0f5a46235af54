"""Writing columns of new rows (observations, rollups, station AQI) in bulk inside the
caller's transaction, for bulk imports of history.

PostgreSQL gets one binary ``COPY`` per table whose buffer numpy builds from the columns
in one go (rows with the same NULLs and text widths share a record layout), SQLite one
``executemany`` of plain inserts with timestamps formatted once per distinct instant.
Both write what the SQLAlchemy path writes (timestamps in UTC, booleans as the dialect
stores them). Only for keys the store does not hold: a stored key raises the database's
integrity error and the caller rolls back (and takes the upsert path instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from ecohub.db.types import SQLITE_TIMESTAMP_FORMAT
from ecohub.timeseries.bulk_rollups import AqiColumns, HourlyColumns, RollupColumns

# A column to write: its name, its PostgreSQL type (int2, int4, float8, bool, text,
# timestamptz) and its values: an array, one value for every row, or for text a pair
# (the distinct texts, each row's index into them). Float NaN and text None are NULL.
Column = tuple[str, str, Any]
_PG_EPOCH = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())
_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_TRAILER = b"\xff\xff"
_FIXED = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float8": ">f8", "bool": "u1"}


def insert_observations(
    connection: Connection,
    rows: HourlyColumns,
    *,
    interval: str,
    source: str,
    now: dt.datetime,
    data_flag: str = "N",
) -> int:
    """Insert new observations; returns the number of rows."""
    return write_columns(
        connection,
        "observations",
        len(rows),
        [
            ("point_id", "int4", rows.point),
            ("parameter_code", "text", (rows.codes, rows.code)),
            ("interval", "text", interval),
            ("ts", "timestamptz", rows.ts),
            ("value", "float8", rows.value),
            ("data_flag", "text", data_flag),
            ("quality_flag", "int2", rows.flag),
            ("source", "text", source),
            ("ingested_at", "timestamptz", _epoch(now)),
        ],
    )


def insert_rollups(connection: Connection, rollups: RollupColumns, now: dt.datetime) -> int:
    """Insert new rollup rows; returns the number of rows."""
    return write_columns(
        connection,
        "rollups",
        len(rollups),
        [
            ("point_id", "int4", rollups.point),
            ("parameter_code", "text", (rollups.codes, rollups.code)),
            ("period", "text", rollups.period),
            ("ts", "timestamptz", rollups.ts),
            ("value", "float8", rollups.value),
            ("statistic", "text", (rollups.statistics, rollups.code)),
            ("samples", "int4", rollups.samples),
            ("received", "int4", rollups.received),
            ("valid", "bool", rollups.valid),
            ("basis", "text", _basis(rollups)),
            ("flags", "int2", rollups.flags),
            ("computed_at", "timestamptz", _epoch(now)),
        ],
    )


def _basis(rollups: RollupColumns) -> str | tuple[tuple[str, ...], Any]:
    if rollups.empty is None or not rollups.empty.any():
        return "hour"
    return ("hour", "none"), rollups.empty.astype(np.int64)


def insert_station_aqi(connection: Connection, aqi: AqiColumns, now: dt.datetime) -> int:
    """Insert new station AQI rows; returns the number of rows."""
    return write_columns(
        connection,
        "station_aqi",
        len(aqi),
        [
            ("point_id", "int4", aqi.point),
            ("period", "text", aqi.period),
            ("ts", "timestamptz", aqi.ts),
            ("aqi", "int4", aqi.aqi),
            ("level", "int2", aqi.level),
            ("primary_pollutants", "text", aqi.primary_pollutants),
            ("iaqi", "text", aqi.iaqi),
            ("computed_at", "timestamptz", _epoch(now)),
        ],
    )


def write_columns(connection: Connection, table: str, count: int, columns: list[Column]) -> int:
    """Insert ``count`` rows given as columns into ``table`` in the caller's transaction."""
    if not count:
        return 0
    if not connection.in_transaction():
        connection.begin()  # so that SQLAlchemy commits what the driver cursor writes
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            _copy_binary(cursor, table, count, columns)
        else:
            _insert_sqlite(cursor, table, count, columns)
    finally:
        cursor.close()
    return count


def _epoch(moment: dt.datetime) -> int:
    return int(moment.timestamp())


# --- PostgreSQL ------------------------------------------------------------------------


def _copy_binary(cursor: Any, table: str, count: int, columns: list[Column]) -> None:
    """One binary COPY: rows are grouped by record layout (which values are NULL, how
    long each text is) and each group becomes one numpy record array."""
    arrays = [_pg_values(kind, values, count) for _name, kind, values in columns]
    layout = np.zeros((count, len(columns)), dtype=np.int64)
    for index, ((_name, kind, _values), array) in enumerate(zip(columns, arrays, strict=True)):
        if kind == "text":
            layout[:, index] = array[1]
        elif kind in ("float8", "int4") and array.dtype.kind == "f":
            layout[:, index] = np.isnan(array)
    shapes, group = _layouts(layout)
    listed = ", ".join(name for name, _kind, _values in columns)
    with cursor.copy(f"COPY {table} ({listed}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(_HEADER)
        for index, shape in enumerate(shapes):
            rows = np.flatnonzero(group == index)
            copy.write(_records(columns, arrays, shape, rows))
        copy.write(_TRAILER)


def _layouts(layout: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The distinct rows of ``layout`` and each row's index among them (one number per
    row from the columns that vary: np.unique over rows sorts far slower)."""
    varying = np.flatnonzero(layout.min(axis=0) != layout.max(axis=0))
    if not len(varying):
        return layout[:1], np.zeros(len(layout), dtype=np.int64)
    key = np.zeros(len(layout), dtype=np.int64)
    for column in varying:
        values = layout[:, column] + 1  # NULL text length is -1
        key = key * (int(values.max()) + 1) + values
    _distinct, first, group = np.unique(key, return_index=True, return_inverse=True)
    return layout[first], group.reshape(-1)


def _pg_values(kind: str, values: Any, count: int) -> Any:
    """Values as numpy arrays ready for a record: text as (bytes, lengths), timestamps
    as microseconds since 2000-01-01."""
    if kind == "text":
        distinct, index = _categories(values, count)
        encoded = [None if item is None else item.encode("utf-8") for item in distinct]
        lengths = np.array([-1 if item is None else len(item) for item in encoded], dtype=np.int64)
        width = max(1, int(lengths.max(initial=0)))
        texts = np.array([item or b"" for item in encoded], dtype=f"S{width}")
        return texts[index], lengths[index]
    array = np.broadcast_to(np.asarray(values), (count,))
    if kind == "timestamptz":
        return (array.astype(np.int64) - _PG_EPOCH) * 1_000_000
    return array


def _categories(values: Any, count: int) -> tuple[Sequence[str | None], Any]:
    """Text values as (distinct texts, each row's index into them)."""
    if values is None or isinstance(values, str):
        return [values], np.zeros(count, dtype=np.int64)
    if isinstance(values, tuple):
        return values[0], values[1]
    return list(values), np.arange(count)


def _records(columns: list[Column], arrays: list[Any], shape: NDArray[Any], rows: Any) -> bytes:
    fields: list[tuple[str, str]] = [("count", ">i2")]
    fill: dict[str, Any] = {"count": len(columns)}
    for index, ((_name, kind, _values), array) in enumerate(zip(columns, arrays, strict=True)):
        if kind == "text":
            width = int(shape[index])
            fields.append((f"n{index}", ">i4"))
            fill[f"n{index}"] = width
            if width > 0:
                fields.append((f"v{index}", f"S{width}"))
                fill[f"v{index}"] = array[0][rows].astype(f"S{width}")
            continue
        if kind in ("float8", "int4") and array.dtype.kind == "f" and shape[index]:
            fields.append((f"n{index}", ">i4"))
            fill[f"n{index}"] = -1  # NULL
            continue
        numpy_type = ">i8" if kind == "timestamptz" else _FIXED[kind]
        fields.append((f"n{index}", ">i4"))
        fill[f"n{index}"] = np.dtype(numpy_type).itemsize
        fields.append((f"v{index}", numpy_type))
        fill[f"v{index}"] = array[rows] if array.ndim else array
    records = np.empty(len(rows), dtype=np.dtype(fields))
    for name, value in fill.items():
        records[name] = value
    return records.tobytes()


# --- SQLite ----------------------------------------------------------------------------


def _insert_sqlite(cursor: Any, table: str, count: int, columns: list[Column]) -> None:
    """One executemany; values shared by every row are written into the statement (each
    bound value costs the driver a call per row)."""
    listed = ", ".join(name for name, _kind, _values in columns)
    marks = []
    bound = []
    for _name, kind, values in columns:
        literal = _sqlite_literal(kind, values)
        if literal is None:
            marks.append("?")
            bound.append(_sqlite_values(kind, values, count))
        else:
            marks.append(literal)
    cursor.executemany(
        f"INSERT INTO {table} ({listed}) VALUES ({', '.join(marks)})", zip(*bound, strict=True)
    )


def _sqlite_literal(kind: str, values: Any) -> str | None:
    """SQL text of a value shared by every row (None: values differ per row)."""
    if kind == "text" and isinstance(values, tuple) and len(values[0]) == 1:
        values = values[0][0]
    if isinstance(values, np.ndarray | tuple | list) or values is None:
        return None
    if kind == "timestamptz":
        values = _sqlite_time(int(values))
    if isinstance(values, str):
        return "'" + values.replace("'", "''") + "'"
    return repr(int(values)) if kind in ("int2", "int4", "bool") else repr(float(values))


def _sqlite_values(kind: str, values: Any, count: int) -> list[Any]:
    if kind == "text":
        distinct, index = _categories(values, count)
        if len(distinct) == 1:
            return [distinct[0]] * count
        texts: list[Any] = np.array(distinct, dtype=object)[index].tolist()
        return texts
    if not isinstance(values, np.ndarray):
        if kind == "timestamptz":
            values = _sqlite_time(int(values))
        return [values] * count
    if kind == "timestamptz":
        instants, inverse = np.unique(values, return_inverse=True)
        formatted = np.array([_sqlite_time(int(value)) for value in instants], dtype=object)
        stamps: list[Any] = formatted[inverse.reshape(-1)].tolist()
        return stamps
    if kind == "float8" or (kind == "int4" and values.dtype.kind == "f"):
        as_objects = values.astype(object)
        as_objects[np.isnan(values)] = None
        if kind == "int4":
            present = ~np.isnan(values)
            as_objects[present] = values[present].astype(np.int64).tolist()
        numbers: list[Any] = as_objects.tolist()
        return numbers
    if kind == "bool":
        flags: list[Any] = values.astype(np.int64).tolist()
        return flags
    plain: list[Any] = values.tolist()
    return plain


def _sqlite_time(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime(SQLITE_TIMESTAMP_FORMAT)
