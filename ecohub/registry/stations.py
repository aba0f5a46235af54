"""The national air-quality station lists of CNEMC (全国城市空气质量实时发布平台 站点列表):
a station history across list versions (stations opening, moving, closing), the cities
as GB/T 2260 regions, and registry records; the lists are parsed by
:mod:`ecohub.registry.station_lists`.

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
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import TypedDict

from ecohub.registry.station_lists import (
    ListedStation,
    StationList,
    StationListError,
)

# --- history -------------------------------------------------------------------------


@dataclass(frozen=True)
class StationVersion:
    """A station as listed, in force from ``valid_from`` (None: the undated old list) to
    ``valid_to`` (exclusive; None: still in the latest list). ``station`` is its row in
    the last list that has it so."""

    station: ListedStation
    valid_from: dt.date | None
    valid_to: dt.date | None


@dataclass(frozen=True)
class StationHistory:
    lists: tuple[StationList, ...]  # the old list (if any), then the dated lists by date
    versions: Mapping[str, tuple[StationVersion, ...]]

    @property
    def latest(self) -> StationList:
        return self.lists[-1]


def build_history(lists: Iterable[StationList]) -> StationHistory:
    """Versions per code over the old and dated lists (other kinds are ignored)."""
    ordered = [item for item in lists if item.kind == "old"]
    ordered += sorted(
        (item for item in lists if item.kind == "list"),
        key=lambda item: item.valid_from or dt.date.min,
    )
    if not ordered:
        raise ValueError("no station list to build a history from")
    versions: dict[str, list[StationVersion]] = {}
    open_: dict[str, StationVersion] = {}
    for station_list in ordered:
        start = station_list.valid_from
        for code in list(open_):
            if code not in station_list.stations:
                _close(versions, open_.pop(code), start)
        for code, station in station_list.stations.items():
            current = open_.get(code)
            if current is not None and current.station.key() == station.key():
                open_[code] = StationVersion(station, current.valid_from, None)
                versions[code][-1] = open_[code]
                continue
            if current is not None:
                _close(versions, current, start)
            open_[code] = StationVersion(station, start, None)
            versions.setdefault(code, []).append(open_[code])
    return StationHistory(tuple(ordered), {code: tuple(items) for code, items in versions.items()})


def _close(
    versions: dict[str, list[StationVersion]], version: StationVersion, end: dt.date | None
) -> None:
    items = versions[version.station.code]
    items[-1] = StationVersion(version.station, version.valid_from, end)


def latest_known(history: StationHistory) -> dict[str, StationVersion]:
    """The last version of every code ever listed (closed stations included)."""
    return {code: items[-1] for code, items in history.versions.items()}


def list_in_force(history: StationHistory, day: dt.date) -> StationList:
    """The dated list in force on ``day`` (the old list before the first dated one)."""
    chosen = history.lists[0]
    for station_list in history.lists:
        if station_list.valid_from is not None and station_list.valid_from <= day:
            chosen = station_list
    if chosen.valid_from is not None and chosen.valid_from > day:
        return StationList("", "none", None, {})
    return chosen


def out_of_service_spans(
    versions: Sequence[StationVersion],
) -> list[tuple[dt.date | None, dt.date | None]]:
    """When a station was out of service by its notes: for each run of consecutive
    versions noted 停运/停用, from the date of the run's last dated note (later lists
    correct earlier dates), else from the run's first list, to the end of the run (None:
    still so in the latest list)."""
    spans: list[tuple[dt.date | None, dt.date | None]] = []
    run: list[StationVersion] = []
    for version in [*versions, None]:
        if version is not None and version.station.out_of_service:
            if run and run[-1].valid_to != version.valid_from:
                spans.append(_span(run))
                run = []
            run.append(version)
        elif run:
            spans.append(_span(run))
            run = []
    return spans


def _span(run: list[StationVersion]) -> tuple[dt.date | None, dt.date | None]:
    dated = [v.station.stopped for v in run if v.station.stopped is not None]
    return (dated[-1] if dated else run[0].valid_from, run[-1].valid_to)


def _out_of_service(versions: Sequence[StationVersion], day: dt.date) -> bool:
    return any(
        (start or dt.date.min) <= day < (end or dt.date.max)
        for start, end in out_of_service_spans(versions)
    )


def stations_in_force(
    history: StationHistory, day: dt.date, *, apply_notes: bool = True
) -> dict[str, ListedStation]:
    """The stations operating on ``day``: those of the list in force; with ``apply_notes``
    (default), less those out of service on ``day`` by the 停运/停用 notes of any list
    (``out_of_service_spans``) or with an opening dated after ``day``, and plus those a
    later list first names with an opening dated on or before ``day``."""
    in_force = list_in_force(history, day)
    stations = dict(in_force.stations)
    if not apply_notes:
        return stations
    for code, versions in history.versions.items():
        station = stations.get(code)
        if station is None:
            later = [v for v in versions if v.valid_from and v.valid_from > day]
            first = later[0].station if later else None
            if (
                first
                and first.opened
                and first.opened <= day
                and not _out_of_service(versions, day)
            ):
                stations[code] = first
            continue
        if _out_of_service(versions, day) or (station.opened and station.opened > day):
            del stations[code]
    return stations


# --- changes between list versions ------------------------------------------------------


@dataclass(frozen=True)
class Move:
    code: str
    before: tuple[float, float]
    after: tuple[float, float]
    km: float


@dataclass(frozen=True)
class ListChange:
    """What changed from ``previous`` to ``source`` (in force from ``valid_from``)."""

    previous: str
    source: str
    valid_from: dt.date | None
    opened: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()  # the opened codes that an earlier list had
    closed: tuple[str, ...] = ()
    moved: tuple[Move, ...] = ()
    located: tuple[str, ...] = ()  # coordinates given where the previous list had none
    unlocated: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str, str], ...] = ()
    city_changed: tuple[tuple[str, str, str], ...] = ()  # code, before, after
    control_changed: tuple[str, ...] = ()
    marked_out_of_service: tuple[str, ...] = ()


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lon, lat) points, mean Earth radius 6371.0 km."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _point(station: ListedStation) -> tuple[float, float] | None:
    if station.longitude is None or station.latitude is None:
        return None
    return (station.longitude, station.latitude)


def list_changes(history: StationHistory) -> list[ListChange]:
    """One ``ListChange`` per consecutive pair of lists."""
    changes = []
    seen: set[str] = set()
    for before, after in zip(history.lists, history.lists[1:], strict=False):
        seen |= set(before.stations)
        old, new = before.stations, after.stations
        both = sorted(set(old) & set(new))
        opened = tuple(sorted(set(new) - set(old)))
        moved, located, unlocated = [], [], []
        for code in both:
            a, b = _point(old[code]), _point(new[code])
            if a and b and a != b:
                moved.append(Move(code, a, b, distance_km(a, b)))
            elif b and not a:
                located.append(code)
            elif a and not b:
                unlocated.append(code)
        changes.append(
            ListChange(
                previous=before.source,
                source=after.source,
                valid_from=after.valid_from,
                opened=opened,
                reopened=tuple(code for code in opened if code in seen),
                closed=tuple(sorted(set(old) - set(new))),
                moved=tuple(moved),
                located=tuple(located),
                unlocated=tuple(unlocated),
                renamed=tuple(
                    (code, old[code].name, new[code].name)
                    for code in both
                    if old[code].name != new[code].name
                ),
                city_changed=tuple(
                    (code, old[code].city, new[code].city)
                    for code in both
                    if old[code].city != new[code].city
                ),
                control_changed=tuple(
                    code
                    for code in both
                    if None not in (old[code].control, new[code].control)
                    and old[code].control != new[code].control
                ),
                marked_out_of_service=tuple(
                    code
                    for code in both
                    if new[code].out_of_service and not old[code].out_of_service
                ),
            )
        )
    return changes


def resolve_codes(
    codes: Iterable[str],
    history: StationHistory,
    references: Sequence[StationList] = (),
    day: dt.date | None = None,
) -> dict[str, ListedStation | None]:
    """Each code's station: in force on ``day`` (if given), else the version nearest in
    time (the latest when no day is given), else the first reference that lists it
    (``match1.csv``, the live feed); None if no source has it."""
    found: dict[str, ListedStation | None] = {}
    in_force = stations_in_force(history, day) if day else {}
    for code in codes:
        if code in in_force:
            found[code] = in_force[code]
        elif code in history.versions:
            versions = history.versions[code]
            if day is None:
                found[code] = versions[-1].station
            else:
                found[code] = min(versions, key=lambda v: _days_apart(v, day)).station
        else:
            found[code] = next(
                (item.stations[code] for item in references if code in item.stations), None
            )
    return found


def _days_apart(version: StationVersion, day: dt.date) -> int:
    start = version.valid_from or dt.date.min
    end = version.valid_to or dt.date.max
    if start <= day < end:
        return 0
    return (start - day).days if day < start else (day - end).days + 1


# --- cities and registry records ---------------------------------------------------------


@dataclass(frozen=True)
class CityRegion:
    """A list city and its GB/T 2260 region (``code`` empty for a new area)."""

    list_name: str
    code: str
    name: str
    level: str
    province_code: str
    province_name: str
    within_code: str
    note: str
    line: int


def parse_city_table(text: str, source: str = "china_cities.csv") -> dict[str, CityRegion]:
    """The city table by list name ('#' lines are comments)."""
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1)]
    body = [(number, line) for number, line in lines if line and not line.startswith("#")]
    reader = csv.DictReader(line for _, line in body)
    table: dict[str, CityRegion] = {}
    for (number, _), row in zip(body[1:], reader, strict=True):
        cell = {key: (value or "").strip() for key, value in row.items()}
        city = CityRegion(
            list_name=cell["list_name"],
            code=cell["code"],
            name=cell["name"],
            level=cell["level"],
            province_code=cell["province_code"],
            province_name=cell["province_name"],
            within_code=cell["within_code"],
            note=cell["note"],
            line=number,
        )
        if city.code and not re.fullmatch(r"\d{6}", city.code):
            raise StationListError(source, number, "code", f"{city.code!r} is not six digits")
        if city.list_name in table:
            raise StationListError(source, number, "list_name", f"{city.list_name} twice")
        table[city.list_name] = city
    return table


@cache
def city_table() -> dict[str, CityRegion]:
    """``ecohub/registry/data/china_cities.csv``."""
    text = (files("ecohub.registry") / "data" / "china_cities.csv").read_text("utf-8")
    return parse_city_table(text)


def city_region(name: str, table: Mapping[str, CityRegion] | None = None) -> CityRegion | None:
    """The region of a city as a list, match1 or the live feed spells it (the feed adds 市)."""
    table = city_table() if table is None else table
    name = name.strip()
    return table.get(name) or table.get(name.removesuffix("市"))


def city_stations(
    history: StationHistory,
    day: dt.date,
    table: Mapping[str, CityRegion] | None = None,
    *,
    exclude_control: bool = True,
) -> dict[str, tuple[str, ...]]:
    """Station codes per city region code on ``day`` (stations in force, control sites
    left out where the list marks them); cities without a region code are keyed by their
    list name."""
    grouped: dict[str, list[str]] = {}
    for code, station in stations_in_force(history, day).items():
        if exclude_control and station.is_control:
            continue
        region = city_region(station.city, table)
        key = region.code if region and region.code else station.city
        grouped.setdefault(key, []).append(code)
    return {key: tuple(sorted(codes)) for key, codes in sorted(grouped.items())}


class RegistryRecord(TypedDict):
    kind: str  # "regions", "sites", "points"
    location: str  # file:line the record comes from
    record: dict[str, object]


@dataclass
class StationImport:
    """Registry records for ``ecohub.registry.importer.import_records``, in dependency
    order: regions (provinces, then cities), sites, points."""

    records: list[RegistryRecord] = field(default_factory=list)
    control_points: frozenset[str] = frozenset()
    decommissioned: frozenset[str] = frozenset()
    suspended: frozenset[str] = frozenset()
    unmapped: dict[str, str] = field(default_factory=dict)  # code → city without a region

    def as_import_rows(self) -> list[tuple[str, str, dict[str, object]]]:
        """(kind, location, record) as ``import_records`` takes them."""
        return [(item["kind"], item["location"], item["record"]) for item in self.records]


def region_records(table: Mapping[str, CityRegion]) -> list[RegistryRecord]:
    """One region per province, then one per city code (municipalities are provinces)."""
    provinces: dict[str, RegistryRecord] = {}
    cities: dict[str, RegistryRecord] = {}
    for city in sorted(table.values(), key=lambda item: item.line):
        location = f"china_cities.csv:{city.line}"
        if city.province_code not in provinces:
            province: dict[str, object] = {
                "code": city.province_code,
                "name": city.province_name,
                "parent_code": None,
                "level": "province",
            }
            provinces[city.province_code] = RegistryRecord(
                kind="regions", location=location, record=province
            )
        if city.code and city.code != city.province_code and city.code not in cities:
            record: dict[str, object] = {
                "code": city.code,
                "name": city.name,
                "parent_code": city.province_code,
                "level": "city",
            }
            cities[city.code] = RegistryRecord(kind="regions", location=location, record=record)
    return [*provinces.values(), *cities.values()]


def registry_records(
    history: StationHistory, table: Mapping[str, CityRegion] | None = None
) -> StationImport:
    """Regions, sites and points for every code ever listed, from its latest version.

    A site is named city + station name, lies in its city's region, and is
    ``decommissioned`` when the latest list lacks it, ``suspended`` when the latest list
    marks it 停运/停用, else ``active``, and is a control site when its latest listing marks
    it so (also returned in ``control_points``). Each site has one point (code = station
    code, hourly)."""
    table = city_table() if table is None else table
    result = StationImport(records=region_records(table))
    latest_codes = set(history.latest.stations)
    sites: list[RegistryRecord] = []
    points: list[RegistryRecord] = []
    control: set[str] = set()
    decommissioned: set[str] = set()
    suspended: set[str] = set()
    for code, version in sorted(latest_known(history).items()):
        station = version.station
        region = city_region(station.city, table)
        if region is None or not region.code:
            result.unmapped[code] = station.city
        if code not in latest_codes:
            status = "decommissioned"
            decommissioned.add(code)
        elif station.out_of_service:
            status = "suspended"
            suspended.add(code)
        else:
            status = "active"
        if station.is_control:
            control.add(code)
        name = f"{station.city}{station.name}" or code
        location = f"{station.source}:{station.line}"
        site: dict[str, object] = {
            "code": code,
            "name": name,
            "kind": "air",
            "region_code": region.code if region and region.code else None,
            "longitude": station.longitude,
            "latitude": station.latitude,
            "status": status,
            "control_point": bool(station.is_control),
        }
        point: dict[str, object] = {
            "code": code,
            "name": name,
            "site_code": code,
            "interval_seconds": 3600,
        }
        sites.append(RegistryRecord(kind="sites", location=location, record=site))
        points.append(RegistryRecord(kind="points", location=location, record=point))
    result.records += sites + points
    result.control_points = frozenset(control)
    result.decommissioned = frozenset(decommissioned)
    result.suspended = frozenset(suspended)
    return result
