"""CNEMC hourly station files for the bulk import: where they come from and how one
becomes columns.

``ecohub import cnemc`` takes files (``china_sites_YYYYMMDD.csv``), folders of them and
archives as they are distributed: ``.tar.xz`` (any compression ``tarfile`` reads),
streamed member by member in archive order without unpacking, and ``.zip``, read member
by member in name order. A file keeps only the hourly types the store holds (PM2.5,
PM10, SO2, NO2, O3, CO; :data:`ecohub.ingest.cnemc.STORED_TYPES`), read by name whatever
the order or number of station columns.

The real files' quirks (``../shared/data/cnemc/SOURCE.md``): CRLF or LF line ends; a
station column repeated in the header (``3207A`` from June 2019, identical values: the
first is read); empty trailing header names (2023-01-21: ignored); a last row cut short
(2023-01-20: its missing cells are missing values); an hour without rows (2019-12-09).
"""

from __future__ import annotations

import datetime as dt
import math
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine

from ecohub.db.quarantine import Rejected, quarantine_rows
from ecohub.ingest.bulk_checks import SeriesRows
from ecohub.ingest.bulk_import import BulkImporter
from ecohub.ingest.cnemc import STORED_TYPES, CnemcFormatError, ImportResult, site_points

# The stored parameter codes in sorted order (the store's key order); rows index them.
STORED_CODES: tuple[str, ...] = tuple(sorted(code for code, _ in STORED_TYPES.values()))
_TYPE_CODE = {
    name.encode(): (STORED_CODES.index(code), factor)
    for name, (code, factor) in STORED_TYPES.items()
}
ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tar", ".zip")
_CST_OFFSET = 8 * 3600
_ORDINAL_1970 = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class StationFile:
    """One file's stored types: per row of the file (a type at an hour) its parameter
    code (index into STORED_CODES) and time (epoch seconds, UTC), and per station
    column its values in the parameter table's units (NaN: missing)."""

    name: str
    stations: list[str]
    code: NDArray[np.int64]
    ts: NDArray[np.int64]
    values: NDArray[np.float64]  # rows × stations

    @property
    def value_count(self) -> int:
        return int(np.count_nonzero(~np.isnan(self.values)))

    def series_rows(
        self, points: dict[str, int]
    ) -> tuple[SeriesRows, NDArray[np.bool_], dict[str, int]]:
        """The values of registered stations as rows sorted by point, code and time;
        for each row whether its key came twice with different values (the last one
        is kept, as the pipeline does); and the number of values of each station that
        is not registered."""
        known = [index for index, code in enumerate(self.stations) if code in points]
        unknown = {
            code: int(np.count_nonzero(~np.isnan(self.values[:, index])))
            for index, code in enumerate(self.stations)
            if code not in points
        }
        unknown = {code: count for code, count in unknown.items() if count}
        ids = np.array([points[self.stations[index]] for index in known], dtype=np.int64)
        by_point = np.argsort(ids, kind="stable")
        columns = np.array(known, dtype=np.int64)[by_point]
        ids = ids[by_point]
        # Rows of the file by code, then time; the last of repeated (code, time) rows.
        order = np.lexsort((np.arange(len(self.ts)), self.ts, self.code))
        code, ts = self.code[order], self.ts[order]
        values = self.values[order][:, columns]
        repeated = np.concatenate([(code[1:] == code[:-1]) & (ts[1:] == ts[:-1]), [False]])
        conflicts = np.zeros(values.shape, dtype=bool)
        if repeated.any():
            values, conflicts, code, ts = _last_of_repeats(values, repeated, code, ts)
        grid = values.T  # stations × rows: each station's series in (code, time) order
        present = ~np.isnan(grid)
        point = np.repeat(ids, len(code)).reshape(grid.shape)[present]
        rows = SeriesRows(
            point,
            np.broadcast_to(code, grid.shape)[present],
            np.broadcast_to(ts, grid.shape)[present],
            grid[present],
            np.zeros(int(present.sum()), dtype=np.int64),
            np.zeros(int(present.sum()), dtype=bool),
        )
        return rows, conflicts.T[present], unknown


def _last_of_repeats(
    values: NDArray[np.float64],
    repeated: NDArray[np.bool_],
    code: NDArray[np.int64],
    ts: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64], NDArray[np.int64]]:
    """Rows of one (code, time) collapsed into one: per station the last present value,
    and whether the present values differed."""
    group = np.concatenate([[0], np.cumsum(~repeated[:-1])])
    kept: list[NDArray[np.float64]] = []
    conflicts: list[NDArray[np.bool_]] = []
    for index in range(int(group[-1]) + 1):
        block = values[group == index]
        last = block[-1].copy()
        for earlier in block[-2::-1]:
            last = np.where(np.isnan(last), earlier, last)
        present = ~np.isnan(block)
        differ = np.array(
            [len(set(block[present[:, s], s].tolist())) > 1 for s in range(block.shape[1])]
        )
        kept.append(last)
        conflicts.append(differ)
    firsts = np.flatnonzero(np.concatenate([[True], ~repeated[:-1]]))
    return np.array(kept), np.array(conflicts), code[firsts], ts[firsts]


def parse_station_file(data: bytes, name: str) -> StationFile:
    """Read one ``china_sites_YYYYMMDD.csv`` (its bytes); raises CnemcFormatError for
    a file of another shape."""
    lines = data.split(b"\n")
    try:
        header = lines[0].decode("utf-8-sig").rstrip("\r").split(",")
    except UnicodeDecodeError as error:
        raise CnemcFormatError(f"not UTF-8 text: {error}") from error
    if [h.strip() for h in header[:3]] != ["date", "hour", "type"]:
        raise CnemcFormatError(
            f"expected the columns date,hour,type,<stations>; found {header[:3]}"
        )
    columns: list[int] = []
    stations: list[str] = []
    for index, station in enumerate(header[3:]):
        station = station.strip()
        if station and station not in stations:
            columns.append(index)
            stations.append(station)
    width = len(header)
    rows = [line.rstrip(b"\r").split(b",") for line in lines[1:] if _type_of(line) in _TYPE_CODE]
    times = [_epoch(row[0], row[1]) for row in rows]
    rows = [row for row, ts in zip(rows, times, strict=True) if ts is not None]
    if not rows:
        return StationFile(name, stations, *_empty(len(stations)))
    code = np.array([_TYPE_CODE[row[2].strip()][0] for row in rows], dtype=np.int64)
    factor = np.array([_TYPE_CODE[row[2].strip()][1] for row in rows])
    ts = np.array([ts for ts in times if ts is not None], dtype=np.int64)
    cells = [row[3:width] + [b""] * (width - len(row)) for row in rows]
    values = _numbers(cells)[:, columns] * factor[:, None]
    return StationFile(name, stations, code, ts, values)


def _type_of(line: bytes) -> bytes | None:
    """A row's published type (the third field), without splitting the whole row."""
    fields = line.split(b",", 3)
    return fields[2].strip() if len(fields) > 2 else None


def _epoch(date: bytes, hour: bytes) -> int | None:
    """The UTC epoch seconds of a row's Beijing date (YYYYMMDD) and hour; None if
    either is not one."""
    try:
        day = dt.date(int(date[:4]), int(date[4:6]), int(date[6:8]))
        return (day.toordinal() - _ORDINAL_1970) * 86400 + int(hour) * 3600 - _CST_OFFSET
    except ValueError:
        return None


def _numbers(cells: list[list[bytes]]) -> NDArray[np.float64]:
    """The cells as numbers (an empty cell, or one that is not a number, is missing)."""
    text = np.array(cells, dtype=bytes)
    try:
        return np.where(text == b"", b"nan", text).astype(float)
    except ValueError:  # some cell is not a number: cell by cell
        return np.array(
            [[_number(cell) for cell in row] for row in cells], dtype=float
        ).reshape(text.shape)  # fmt: skip


def _number(cell: bytes) -> float:
    try:
        return float(cell) if cell.strip() else math.nan
    except ValueError:
        return math.nan


def _empty(stations: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    none = np.zeros(0, dtype=np.int64)
    return none, none, np.zeros((0, stations))


# --- where the files come from ---------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One file to import: its name (``archive:member`` inside an archive) and its bytes,
    or why it could not be read."""

    name: str
    data: bytes | None = None
    error: str | None = None


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files and archives: folders replaced by the CSV files and archives in them; plain
    files sorted by name (the dates in the names), archives after them in the order
    given."""
    files: list[Path] = []
    archives: list[Path] = []
    for path in paths:
        found = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for item in found:
            if is_archive(item):
                archives.append(item)
            elif item.suffix.lower() == ".csv" or not path.is_dir():
                files.append(item)
    return sorted(files, key=lambda p: (p.name, str(p))) + archives


def count_members(paths: Iterable[Path]) -> int:
    """How many files :func:`members` yields (a tar archive is read through once)."""
    count = 0
    for path in expand(paths):
        if not is_archive(path):
            count += 1
            continue
        try:
            if path.name.lower().endswith(".zip"):
                with zipfile.ZipFile(path) as archive:
                    count += sum(1 for info in archive.infolist() if _is_csv(info.filename))
            else:
                with tarfile.open(path, mode="r|*") as archive:
                    count += sum(1 for info in archive if info.isfile() and _is_csv(info.name))
        except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError):
            count += 1  # reported as one bad file
    return count


def members(paths: Iterable[Path]) -> Iterator[Member]:
    """Every CSV file of ``paths`` (see :func:`expand`) with its bytes, one at a time."""
    for path in expand(paths):
        if not is_archive(path):
            try:
                yield Member(path.name, path.read_bytes())
            except OSError as error:
                yield Member(path.name, error=str(error))
        elif path.name.lower().endswith(".zip"):
            yield from _zip_members(path)
        else:
            yield from _tar_members(path)


def _is_csv(name: str) -> bool:
    return name.lower().endswith(".csv") and not Path(name).name.startswith(".")


def _tar_members(path: Path) -> Iterator[Member]:
    """Stream a tar archive (``r|*``: any compression, no seeking, nothing unpacked)."""
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for info in archive:
                if not (info.isfile() and _is_csv(info.name)):
                    continue
                name = f"{path.name}:{info.name}"
                handle = archive.extractfile(info)
                if handle is None:
                    yield Member(name, error="not a regular file")
                    continue
                yield Member(name, handle.read())
    except (OSError, tarfile.TarError, EOFError) as error:
        yield Member(path.name, error=f"unreadable archive: {error}")


def _zip_members(path: Path) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        yield Member(path.name, error=f"unreadable archive: {error}")
        return
    with archive:
        for info in sorted(archive.infolist(), key=lambda item: item.filename):
            if info.is_dir() or not _is_csv(info.filename):
                continue
            name = f"{path.name}:{info.filename}"
            try:
                yield Member(name, archive.read(info))
            except (OSError, zipfile.BadZipFile, EOFError, RuntimeError) as error:
                yield Member(name, error=f"unreadable member: {error}")


def read_member(member: Member) -> StationFile:
    """Parse a member; raises CnemcFormatError when it cannot be read."""
    if member.data is None:
        raise CnemcFormatError(member.error or "unreadable")
    return parse_station_file(member.data, member.name)


# --- the import ----------------------------------------------------------------------


def import_station_files(
    engine: Engine,
    paths: Iterable[Path],
    *,
    points: dict[str, int] | None = None,
    on_file: Callable[[str, int], None] | None = None,
    writers: int | None = None,
    thresholds_path: str | None = None,
) -> ImportResult:
    """Import every CNEMC file of ``paths`` (files, folders, archives) through the bulk
    path (:class:`~ecohub.ingest.bulk_import.BulkImporter`). A file or member that
    cannot be read is reported by name and quarantined, and the others are imported;
    values of stations without a monitoring point of the same code are skipped and
    quarantined once per station and file. ``on_file(name, values)`` follows each file."""
    points = site_points(engine) if points is None else points
    importer = BulkImporter(
        engine, STORED_CODES, source="cnemc", writers=writers, thresholds_path=thresholds_path
    )
    result = ImportResult()
    try:
        for member in members(paths):
            values = _import_member(engine, importer, member, points, result)
            if on_file is not None:
                on_file(member.name, values)
        bulk = importer.finish()
    except BaseException:
        importer.abort()
        raise
    result.written = bulk.written
    result.unchanged = bulk.unchanged
    result.flagged = bulk.flagged
    result.reflagged = bulk.reflagged
    result.days = {
        "bulk": bulk.days_bulk,
        "already stored": bulk.days_unchanged,
        "pipeline": bulk.days_pipeline,
    }
    return result


def _import_member(
    engine: Engine,
    importer: BulkImporter,
    member: Member,
    points: dict[str, int],
    result: ImportResult,
) -> int:
    """One file into the importer; returns its number of values (0 if rejected)."""
    try:
        parsed = read_member(member)
    except CnemcFormatError as error:
        result.bad_files.append((member.name, str(error)))
        quarantine_rows(
            engine,
            [
                Rejected(
                    source="cnemc",
                    reason_code="bad_file",
                    reason=f"{member.name}: {error}",
                    raw=member.name,
                )
            ],
        )
        return 0
    rows, conflicts, unknown = parsed.series_rows(points)
    result.files += 1
    result.values_read += parsed.value_count
    if unknown:
        result.unknown_stations |= set(unknown)
        quarantine_rows(
            engine,
            [
                Rejected(
                    source="cnemc",
                    reason_code="unknown_station",
                    reason=f"{member.name}: station {station} is not a registered monitoring "
                    f"point; {count} values skipped",
                    raw=f"{member.name}:{station}",
                    point_code=station,
                )
                for station, count in sorted(unknown.items())
            ],
        )
    importer.add(rows, conflicts)
    return parsed.value_count


def header_stations(paths: Iterable[Path]) -> set[str]:
    """The station codes named in the files' headers (for ``--register-unknown``)."""
    codes: set[str] = set()
    for member in members(paths):
        if member.data is None:
            continue
        header = member.data[: member.data.find(b"\n")].decode("utf-8-sig", errors="replace")
        codes |= {name.strip() for name in header.rstrip("\r").split(",")[3:] if name.strip()}
    return codes
