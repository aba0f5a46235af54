"""The national air-quality station lists of CNEMC (全国城市空气质量实时发布平台 站点列表):
parsing (the history across list versions and the registry records are in
:mod:`ecohub.registry.stations`).

Pure: text in, plain data out; no database. Four sources are read:

- the dated lists ``站点列表-<date>起.csv`` (监测点编码, 监测点名称, 城市, 经度, 纬度 and, from
  2020-04-05, 对照点 Y/N), each in force from the date in its name;
- the undated old list ``站点列表-旧-946个.csv`` (transposed: codes, names, cities), taken
  as in force before the first dated list;
- ``match1.csv`` (X + code, city, province, lon, lat) and the live-publication feed
  (GeoJSON), used only to resolve codes the lists lack.

Names carry notes in brackets, kept in ``ListedStation.notes``: ``(20190503启用)`` or
``(新增191218)`` (opened on a date), ``(停运150702)``, ``(已停运)`` (out of service),
``(对照点)`` (control site). Dates of six digits are YYMMDD. The dated notes agree with
the hourly files: a station has no values after its 停运 date or before its 启用 date,
so ``stations_in_force`` applies them, from whichever list carries them.

Within one list a code may appear twice; the first row is kept and the others are
reported (``StationList.duplicates``). Empty or ``-`` coordinates are kept as None.

Cities map to GB/T 2260 regions through ``data/china_cities.csv`` (see its README).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LIST_COLUMNS = ("监测点编码", "监测点名称", "城市", "经度", "纬度")
CONTROL_COLUMN = "对照点"
MATCH_COLUMNS = ("id", "cityid", "provinceid", "lon", "lat")
_CODE = re.compile(r"^[0-9A-Za-z]+$")
_NOTE = re.compile(r"[(（]([^()（）]*)[)）]")
_NOTE_DATE = re.compile(r"(?<!\d)(\d{8}|\d{6})(?!\d)")
_LIST_DATE = re.compile(r"(\d{4})\.(\d{1,2})(?:\.(\d{1,2}))?起")


class StationListError(ValueError):
    """Malformed station-list input, naming the file, the line (or feature) and the field."""

    def __init__(self, source: str, line: int | None, field: str, message: str) -> None:
        self.source, self.line, self.field = source, line, field
        where = f"line {line}, " if line is not None else ""
        super().__init__(f"{source}: {where}{field}: {message}")


@dataclass(frozen=True)
class ListedStation:
    """One station as one source lists it (name without its bracketed notes)."""

    code: str
    name: str
    city: str
    longitude: float | None
    latitude: float | None
    control: bool | None  # the 对照点 column; None where the source has none
    notes: tuple[str, ...]
    source: str
    line: int

    def _dated(self, words: tuple[str, ...]) -> dt.date | None:
        for note in self.notes:
            if any(word in note for word in words):
                day = note_date(note)
                if day is not None:
                    return day
        return None

    @property
    def opened(self) -> dt.date | None:
        """The date of a 启用 / 新增 note."""
        return self._dated(("启用", "新增"))

    @property
    def stopped(self) -> dt.date | None:
        """The date of a 停运 / 停用 note."""
        return self._dated(("停运", "停用"))

    @property
    def out_of_service(self) -> bool:
        """A 停运 / 停用 note, dated or not."""
        return any("停运" in note or "停用" in note for note in self.notes)

    @property
    def is_control(self) -> bool:
        """Marked as a control site, by the 对照点 column or a (对照点) note."""
        return self.control is True or any("对照点" in note for note in self.notes)

    def key(self) -> tuple[object, ...]:
        return (self.name, self.city, self.longitude, self.latitude, self.control, self.notes)


@dataclass(frozen=True)
class Duplicate:
    """A second row for a code within one list (the first row is kept)."""

    code: str
    kept_line: int
    line: int
    identical: bool


@dataclass(frozen=True)
class StationList:
    source: str
    kind: str  # "list" (dated), "old", "match", "live"
    valid_from: dt.date | None
    stations: Mapping[str, ListedStation]
    duplicates: tuple[Duplicate, ...] = ()


def note_date(note: str) -> dt.date | None:
    """The date in a note: YYYYMMDD, or YYMMDD read as 20YY; None if none or invalid."""
    match = _NOTE_DATE.search(note)
    if match is None:
        return None
    text = match.group(1)
    if len(text) == 6:
        text = "20" + text
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def list_date(file_name: str) -> dt.date:
    """The date a list is in force from: ``站点列表-2017.09.22起.csv`` → 2017-09-22; a
    month alone (``2017.02起``) means its first day."""
    match = _LIST_DATE.search(file_name)
    if match is None:
        raise StationListError(file_name, None, "file name", "no <yyyy.mm[.dd]>起 date in it")
    year, month, day = (int(part) if part else 1 for part in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError as error:
        raise StationListError(file_name, None, "file name", str(error)) from None


def _split_name(raw: str) -> tuple[str, tuple[str, ...]]:
    notes = tuple(note.strip() for note in _NOTE.findall(raw))
    return _NOTE.sub("", raw).strip(), notes


def _coordinate(text: str, source: str, line: int, name: str, limit: float) -> float | None:
    text = text.strip()
    if text in ("", "-"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise StationListError(source, line, name, f"{text!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise StationListError(source, line, name, f"{value} is outside ±{limit:g}")
    return value


def _code(text: str, source: str, line: int, name: str) -> str:
    code = text.strip()
    if not _CODE.match(code):
        raise StationListError(source, line, name, f"{text!r} is not a station code")
    return code


def _required(text: str, source: str, line: int, name: str) -> str:
    if not text.strip():
        raise StationListError(source, line, name, "empty")
    return text


def _collect(
    source: str, kind: str, valid_from: dt.date | None, stations: Iterable[ListedStation]
) -> StationList:
    kept: dict[str, ListedStation] = {}
    duplicates = []
    for station in stations:
        first = kept.get(station.code)
        if first is None:
            kept[station.code] = station
        else:
            same = first.key() == station.key()
            duplicates.append(Duplicate(station.code, first.line, station.line, same))
    return StationList(source, kind, valid_from, kept, tuple(duplicates))


def _rows(text: str) -> list[tuple[int, list[str]]]:
    """CSV rows with their line numbers (blank lines dropped), BOM and CRLF accepted."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    rows = []
    for row in reader:
        if len(row) > 1 or (row and row[0].strip()):
            rows.append((reader.line_num, row))
    return rows


def parse_station_list(text: str, source: str, valid_from: dt.date | None = None) -> StationList:
    """A dated list (5 columns, or 6 with 对照点). ``valid_from`` defaults to the date in
    ``source``."""
    valid_from = valid_from or list_date(source)
    rows = _rows(text)
    if not rows:
        raise StationListError(source, 1, "header", "the file is empty")
    header_line, header = rows[0]
    header = [cell.strip() for cell in header]
    if tuple(header[:5]) != LIST_COLUMNS or header[5:] not in ([], [CONTROL_COLUMN]):
        expected = ",".join(LIST_COLUMNS)
        raise StationListError(
            source, header_line, "header", f"expected {expected}[,{CONTROL_COLUMN}]; found {header}"
        )
    has_control = len(header) == 6

    def station(line: int, row: list[str]) -> ListedStation:
        if len(row) != len(header):
            raise StationListError(
                source, line, "row", f"expected {len(header)} fields, found {len(row)}"
            )
        control = None
        if has_control:
            flag = row[5].strip().upper()
            if flag not in ("Y", "N", ""):
                raise StationListError(source, line, CONTROL_COLUMN, f"{row[5]!r} is not Y or N")
            control = {"Y": True, "N": False}.get(flag)
        name, notes = _split_name(_required(row[1], source, line, "监测点名称"))
        return ListedStation(
            code=_code(row[0], source, line, "监测点编码"),
            name=name,
            city=_required(row[2], source, line, "城市").strip(),
            longitude=_coordinate(row[3], source, line, "经度", 180),
            latitude=_coordinate(row[4], source, line, "纬度", 90),
            control=control,
            notes=notes,
            source=source,
            line=line,
        )

    return _collect(source, "list", valid_from, (station(*item) for item in rows[1:]))


def parse_old_station_list(text: str, source: str) -> StationList:
    """The transposed old list: a line of codes, one of names, one of cities."""
    rows = _rows(text)
    if len(rows) != 3:
        raise StationListError(
            source, None, "layout", f"expected 3 lines (codes, names, cities); found {len(rows)}"
        )
    (_, codes), (names_line, names), (cities_line, cities) = rows
    for line, cells, what in ((names_line, names, "names"), (cities_line, cities, "cities")):
        if len(cells) != len(codes):
            raise StationListError(
                source, line, what, f"{len(cells)} fields for {len(codes)} codes"
            )
    stations = []
    for index, (code, raw_name, city) in enumerate(zip(codes, names, cities, strict=True)):
        column = f"column {index + 1}"
        name, notes = _split_name(_required(raw_name, source, names_line, f"name, {column}"))
        stations.append(
            ListedStation(
                code=_code(code, source, rows[0][0], f"code, {column}"),
                name=name,
                city=_required(city, source, cities_line, f"city, {column}").strip(),
                longitude=None,
                latitude=None,
                control=None,
                notes=notes,
                source=source,
                line=rows[0][0],
            )
        )
    return _collect(source, "old", None, stations)


def parse_match_table(text: str, source: str) -> StationList:
    """``match1.csv``: id (X + code, an R artefact), cityid, provinceid, lon, lat."""
    rows = _rows(text)
    if not rows or tuple(cell.strip() for cell in rows[0][1]) != MATCH_COLUMNS:
        found = rows[0][1] if rows else []
        raise StationListError(
            source, 1, "header", f"expected {','.join(MATCH_COLUMNS)}; found {found}"
        )
    stations = []
    for line, row in rows[1:]:
        if len(row) != 5:
            raise StationListError(source, line, "row", f"expected 5 fields, found {len(row)}")
        stations.append(
            ListedStation(
                code=_code(row[0].strip().removeprefix("X"), source, line, "id"),
                name="",
                city=_required(row[1], source, line, "cityid").strip(),
                longitude=_coordinate(row[3], source, line, "lon", 180),
                latitude=_coordinate(row[4], source, line, "lat", 90),
                control=None,
                notes=(),
                source=source,
                line=line,
            )
        )
    return _collect(source, "match", None, stations)


def parse_live_feed(text: str, source: str) -> StationList:
    """The live-publication feed as GeoJSON; ``line`` in errors is the feature number."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise StationListError(source, error.lineno, "json", error.msg) from None
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list):
        raise StationListError(source, None, "features", "not a GeoJSON FeatureCollection")
    stations = []
    timepoint = None
    for number, feature in enumerate(features, start=1):
        if not isinstance(feature, dict):
            raise StationListError(source, number, "feature", "not a GeoJSON Feature")
        properties = feature.get("properties") or {}
        coordinates = (feature.get("geometry") or {}).get("coordinates") or [None, None]
        for name in ("stationcode", "positionname", "area"):
            if not isinstance(properties.get(name), str):
                raise StationListError(source, number, name, "missing")
        if len(coordinates) != 2:
            raise StationListError(source, number, "coordinates", f"{coordinates!r}")
        lon, lat = (
            _coordinate(str(value) if value is not None else "", source, number, axis, limit)
            for value, axis, limit in zip(coordinates, ("lon", "lat"), (180, 90), strict=True)
        )
        name, notes = _split_name(properties["positionname"])
        stations.append(
            ListedStation(
                _code(properties["stationcode"], source, number, "stationcode"),
                name,
                properties["area"].strip(),
                lon,
                lat,
                None,
                notes,
                source,
                number,
            )
        )
        timepoint = timepoint or properties.get("timepoint")
    try:
        valid_from = dt.date.fromisoformat(str(timepoint)[:10]) if timepoint else None
    except ValueError:
        raise StationListError(source, 1, "timepoint", f"{timepoint!r} is not a date") from None
    return _collect(source, "live", valid_from, stations)


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise StationListError(path.name, line, "encoding", "not UTF-8") from None


def read_station_lists(folder: Path) -> list[StationList]:
    """Every list of a ``stations/`` folder: the old list first, then the dated lists by
    date, then ``match1.csv`` if present."""
    dated = [parse_station_list(_read(path), path.name) for path in folder.glob("站点列表-*起.csv")]
    lists = [
        parse_old_station_list(_read(path), path.name) for path in folder.glob("站点列表-旧-*.csv")
    ]
    lists += sorted(dated, key=lambda item: item.valid_from or dt.date.min)
    match = folder / "match1.csv"
    if match.exists():
        lists.append(parse_match_table(_read(match), match.name))
    return lists


def read_live_feed(path: Path) -> StationList:
    return parse_live_feed(_read(path), path.name)
