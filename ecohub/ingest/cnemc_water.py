"""The national surface-water automatic stations' real-time release (国家地表水水质自动监测
实时数据发布系统, CNEMC, https://szzdjc.cnemc.cn:8070/GJZ/Business/Publish/Main.html), read
into plain per-section records, with the water-body kind (river, or lake and reservoir) that
GB 3838-2002 Table 1 needs for total phosphorus.

Two forms give the same records:

- the API answer (``POST /GJZ/Ajax/Publish.ashx``, action ``getRealDatas``) as JSON:
  ``result``, ``total``, ``records``, ``thead`` (column titles, HTML) and ``tbody`` (one list
  of cells a section). A value cell is ``<span title='原始值：26.58'>26.6</span>``: the title
  carries the unrounded value, the text the displayed one. ``--`` is no value; a ``--`` with
  a tooltip (``<span data-toggle='tooltip' … title='当天质控不合格'>--</span>``) carries a note.
- the same rows as CSV: ``省份, 流域, 断面名称, 监测时间, 水质类别``, per parameter
  ``<name>(<unit>)`` (displayed) and ``<name>_原始值`` (unrounded), and
  ``备注(单元格提示)``, the notes as ``总氮:当天质控不合格`` separated by ``;``.

Columns are found by their titles; identity columns are required, parameter columns
optional (the publisher has added and dropped some over the years), others ignored.

- **Section code.** The release has none. A section is what the publisher lists: province,
  basin and name (names repeat across provinces: 临江 is in 上海 and in 浙江). The code is
  ``cnemc-sw-`` and the first 12 hexadecimal digits of the SHA-256 of
  ``province + TAB + basin + TAB + name`` (UTF-8, NFC, stripped): deterministic, 21
  characters, recomputable anywhere (:func:`section_code`). A renamed section or basin gets
  a new code; map it onto the old one in the registry.
- **Time.** ``MM-DD HH:MM``, Beijing time, without a year: the year is an argument; without
  it, the year of ``now`` in Beijing, or the year before when that puts the reading more
  than a day after ``now`` (a release read on 1 January showing ``12-31 20:00``). Pass the
  year for archived files. ``YYYY-MM-DD HH:MM`` is read as it is.
- **Class.** ``水质类别`` 1-6 (6 = 劣V) as published, or -1 (no class).
- **Values.** The unrounded 原始值 where published, else the displayed value; the displayed
  text is kept. A 原始值 more than one unit of the displayed last digit away from the
  displayed value is an error.
- **Water body.** :func:`water_body`: a section listed in :data:`SECTION_WATER_BODIES` (the
  release's own grading proves its kind), else lake or reservoir when it publishes
  chlorophyll-a or algal density (the analysers of lake and reservoir stations), else river.

Malformed input raises :class:`CnemcWaterFormatError` naming the row and the field, or,
with ``rejected=[]``, skips the row and appends the message.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import html
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CST = dt.timezone(dt.timedelta(hours=8), "CST")
RIVER = "river"
LAKE = "lake-reservoir"
WATER_BODIES = (RIVER, LAKE)
NO_CLASS = -1
CODE_PREFIX = "cnemc-sw-"


@dataclass(frozen=True)
class ReleaseParameter:
    """One parameter column of the release."""

    title: str  # as published, without the unit
    key: str  # EcoHub key (GB 3838 keys where Table 1 has the parameter)
    unit: str
    hj212: str | None  # HJ 212-2017 code, where the registry's table has it


PARAMETERS = (
    ReleaseParameter("水温", "WT", "℃", "w01010"),
    ReleaseParameter("pH", "pH", "dimensionless", "w01001"),
    ReleaseParameter("溶解氧", "DO", "mg/L", "w01009"),
    ReleaseParameter("电导率", "conductivity", "μS/cm", "w01014"),
    ReleaseParameter("浊度", "turbidity", "NTU", None),
    ReleaseParameter("高锰酸盐指数", "CODMn", "mg/L", "w01019"),
    ReleaseParameter("氨氮", "NH3-N", "mg/L", "w21003"),
    ReleaseParameter("总磷", "TP", "mg/L", "w21011"),
    ReleaseParameter("总氮", "TN", "mg/L", "w21001"),
    ReleaseParameter("叶绿素α", "chlorophyll_a", "mg/L", None),
    ReleaseParameter("藻密度", "algal_density", "cells/L", None),
)
_BY_TITLE = {parameter.title: parameter for parameter in PARAMETERS}
_ORDER = {parameter.key: index for index, parameter in enumerate(PARAMETERS)}
ALGAL_PARAMETERS = frozenset({"chlorophyll_a", "algal_density"})
IDENTITY_COLUMNS = ("省份", "流域", "断面名称", "监测时间", "水质类别")
NOTES_COLUMN = "备注(单元格提示)"

# Sections whose kind the release's own grading proves (2026-08-21, 20:00): the published
# class follows from the TP limits of this kind only (docs/standards.md). Lakes and
# reservoirs the algal rule would miss or get anyway, and river sections that publish
# chlorophyll-a, or whose name says reservoir.
SECTION_WATER_BODIES: dict[tuple[str, str], str] = {
    ("河北省", "南刘庄"): LAKE,  # 白洋淀; TP 0.036: river II, lake III; published III
    ("河北省", "光淀张庄"): LAKE,  # 白洋淀; TP 0.029
    ("黑龙江省", "三道"): LAKE,  # TP 0.137: river III, lake V; published V
    ("黑龙江省", "电视塔"): LAKE,  # TP 0.128
    ("江苏省", "锡东水厂"): LAKE,  # 太湖; TP 0.033
    ("江苏省", "拖山"): LAKE,  # 太湖; TP 0.071
    ("江苏省", "五里湖心"): LAKE,  # 五里湖 (蠡湖); TP 0.060
    ("江苏省", "乌龟山南"): LAKE,  # 太湖; TP 0.037
    ("浙江省", "小金山"): LAKE,  # 千岛湖; TP 0.015: river I, lake II; no algal values
    ("浙江省", "三潭岛"): LAKE,  # 千岛湖; TP 0.012; no algal values
    ("安徽省", "湖滨"): LAKE,  # 巢湖; TP 0.098
    ("安徽省", "黄麓"): LAKE,  # 巢湖; TP 0.061
    ("安徽省", "西半湖湖心"): LAKE,  # 巢湖; TP 0.104
    ("安徽省", "龟山"): LAKE,  # 巢湖; TP 0.065
    ("上海市", "急水港桥"): RIVER,  # TP 0.098: river III, lake IV; published III; has Chl-a
    ("浙江省", "新港口"): RIVER,  # TP 0.070: river II, lake IV; published II; has Chl-a
    ("黑龙江省", "音河水库"): RIVER,  # TP 0.119: river III, lake V; published III
}


class CnemcWaterFormatError(ValueError):
    """Input that is not the real-time release, or a malformed row of it."""


@dataclass(frozen=True)
class Reading:
    """One published value of a section."""

    parameter: str  # EcoHub key (PARAMETERS)
    value: float  # the unrounded 原始值 where published, else the displayed value
    displayed: str  # the text the release shows


@dataclass(frozen=True)
class SectionRecord:
    """One row of the release: a section and its latest reading."""

    row: int  # 1-based data row (JSON: tbody index + 1; CSV: line − 1)
    code: str  # section_code(province, basin, name)
    province: str
    basin: str  # 流域
    name: str  # 断面名称
    water_body: str  # RIVER or LAKE
    water_body_basis: str  # given, listed, algal analysers, default
    time: dt.datetime  # aware, Beijing time
    published_class: int  # 1-6 (6 = 劣V), NO_CLASS (-1) for none
    readings: tuple[Reading, ...]
    notes: tuple[tuple[str, str], ...]  # (parameter key, note), e.g. ("TN", "当天质控不合格")

    @property
    def lake(self) -> bool:
        return self.water_body == LAKE

    def values(self) -> dict[str, float]:
        return {reading.parameter: reading.value for reading in self.readings}


def section_code(province: str, basin: str, name: str) -> str:
    """The deterministic code of a section: ``cnemc-sw-`` + 12 hex digits of the SHA-256
    of ``province\\tbasin\\tname`` (UTF-8, NFC, stripped)."""
    key = "\t".join(unicodedata.normalize("NFC", part.strip()) for part in (province, basin, name))
    return CODE_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def water_body(
    province: str, name: str, measured: Iterable[str], given: str | None = None
) -> tuple[str, str]:
    """The kind of water a section lies on, and why: ``given`` (the registry's), the
    section's entry in :data:`SECTION_WATER_BODIES`, lake or reservoir when ``measured``
    (parameters with a value or a note) includes chlorophyll-a or algal density, else
    river."""
    if given is not None:
        if given not in WATER_BODIES:
            raise ValueError(f"water body {given!r} is not one of {WATER_BODIES}")
        return given, "given"
    listed = SECTION_WATER_BODIES.get((province.strip(), name.strip()))
    if listed is not None:
        return listed, "listed"
    if ALGAL_PARAMETERS.intersection(measured):
        return LAKE, "algal analysers"
    return RIVER, "default"


def is_release(data: bytes) -> bool:
    """Whether ``data`` looks like the release (its JSON answer or its CSV form)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return b'"tbody"' in data
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return first.startswith(",".join(IDENTITY_COLUMNS[:3]))


def read_release(
    source: Path | str | bytes,
    *,
    year: int | None = None,
    now: dt.datetime | None = None,
    water_bodies: Mapping[str, str] | None = None,
    rejected: list[str] | None = None,
) -> list[SectionRecord]:
    """The records of one release file (JSON or CSV, told apart by content).

    ``water_bodies`` maps section codes to a kind known elsewhere (the registry). With a
    ``rejected`` list, malformed rows are skipped and described there; without it the first
    one raises :class:`CnemcWaterFormatError`. A file of another shape always raises.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    label = "release" if isinstance(source, bytes) else Path(source).name
    if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        rows = _json_rows(data, label)
    else:
        rows = _csv_rows(data, label)
    records = []
    for where, row, cells in rows:
        try:
            records.append(_record(row, cells, year, now, water_bodies))
        except CnemcWaterFormatError as error:
            message = f"{label}: {where}, {error}"
            if rejected is None:
                raise CnemcWaterFormatError(message) from None
            rejected.append(message)
    return records


# A row as read from either form, before interpretation: the identity fields' text, each
# parameter's (displayed text, 原始值 text or None), and the notes by parameter key.
@dataclass
class _Cells:
    identity: dict[str, str]
    values: dict[str, tuple[str, str | None]]  # key → (displayed, original or None)
    notes: dict[str, str]


def _json_rows(data: bytes, label: str) -> list[tuple[str, int, _Cells | str]]:
    try:
        answer = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CnemcWaterFormatError(f"{label}: not JSON: {error}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("tbody"), list):
        raise CnemcWaterFormatError(f"{label}: no 'tbody' list (not a getRealDatas answer)")
    thead = answer.get("thead")
    if not isinstance(thead, list) or not all(isinstance(title, str) for title in thead):
        raise CnemcWaterFormatError(f"{label}: no 'thead' list of column titles")
    titles = [_plain(title) for title in thead]
    columns = _columns(titles, label)
    rows: list[tuple[str, int, _Cells | str]] = []
    for index, cells in enumerate(answer["tbody"], start=1):
        where = f"tbody row {index}"
        if not isinstance(cells, list) or len(cells) != len(titles):
            size = len(cells) if isinstance(cells, list) else type(cells).__name__
            rows.append((where, index, f"{size} cells where thead has {len(titles)}"))
            continue
        try:
            rows.append((where, index, _json_cells(cells, titles, columns)))
        except CnemcWaterFormatError as error:
            rows.append((where, index, str(error)))
    return rows


def _json_cells(cells: list[Any], titles: list[str], columns: dict[str, int]) -> _Cells:
    for title, cell in zip(titles, cells, strict=True):
        if not isinstance(cell, str):
            raise CnemcWaterFormatError(f"{title}: {cell!r} is not text")
    identity = {name: _plain(cells[columns[name]]) for name in IDENTITY_COLUMNS}
    values: dict[str, tuple[str, str | None]] = {}
    notes: dict[str, str] = {}
    for parameter in PARAMETERS:
        if parameter.title not in columns:
            continue
        displayed, original, note = _json_value_cell(
            cells[columns[parameter.title]], parameter.title
        )
        values[parameter.key] = (displayed, original)
        if note:
            notes[parameter.key] = note
    return _Cells(identity, values, notes)


_SPAN = re.compile(r"<span\b([^>]*)>(.*?)</span>", re.S)
_ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
_TAG = re.compile(r"<[^>]*>")
_ORIGINAL = re.compile(r"原始值\s*[：:]\s*(.*)", re.S)
_NOTE = re.compile(r"([^:：]+)[:：](.*)", re.S)


def _plain(text: str) -> str:
    """Text without tags and entities, stripped (column titles, names)."""
    return html.unescape(_TAG.sub("", text)).strip()


def _json_value_cell(cell: str, title: str) -> tuple[str, str | None, str | None]:
    """(displayed text, 原始值 text or None, note or None) of one JSON value cell."""
    text = cell.strip()
    match = _SPAN.fullmatch(text)
    if match is None:
        if "<" in text:
            raise CnemcWaterFormatError(f"{title}: cannot read the cell {cell!r}")
        return html.unescape(text), None, None
    attributes = {name: a if a else b for name, a, b in _ATTRIBUTE.findall(match[1])}
    inner = _plain(match[2])
    tooltip = html.unescape(attributes.get("title", "")).strip()
    original = _ORIGINAL.fullmatch(tooltip)
    if original is not None:
        return inner, original[1].strip(), None
    return inner, None, tooltip or None


def _csv_rows(data: bytes, label: str) -> list[tuple[str, int, _Cells | str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CnemcWaterFormatError(f"{label}: not UTF-8: {error}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise CnemcWaterFormatError(f"{label}: empty file")
    header = [title.strip() for title in header]
    columns = _columns(header, label)
    originals = {}
    for parameter in PARAMETERS:
        if parameter.title in columns:
            name = f"{parameter.title}_原始值"
            if name not in header:
                raise CnemcWaterFormatError(f"{label}: column {name} missing")
            originals[parameter.key] = header.index(name)
    notes_at = header.index(NOTES_COLUMN) if NOTES_COLUMN in header else None
    rows: list[tuple[str, int, _Cells | str]] = []
    index = 0
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        index += 1
        where = f"row {index} (line {reader.line_num})"
        if len(cells) != len(header):
            rows.append((where, index, f"{len(cells)} fields where the header has {len(header)}"))
            continue
        try:
            rows.append((where, index, _csv_cells(cells, columns, originals, notes_at)))
        except CnemcWaterFormatError as error:
            rows.append((where, index, str(error)))
    return rows


def _csv_cells(
    cells: list[str], columns: dict[str, int], originals: dict[str, int], notes_at: int | None
) -> _Cells:
    identity = {name: cells[columns[name]].strip() for name in IDENTITY_COLUMNS}
    values = {
        parameter.key: (
            cells[columns[parameter.title]].strip(),
            cells[originals[parameter.key]].strip() or None,
        )
        for parameter in PARAMETERS
        if parameter.key in originals
    }
    notes: dict[str, str] = {}
    for part in (cells[notes_at] if notes_at is not None else "").split(";"):
        if not part.strip():
            continue
        match = _NOTE.fullmatch(part.strip())
        parameter = _BY_TITLE.get(match[1].strip()) if match else None
        if match is None or parameter is None:
            raise CnemcWaterFormatError(
                f"{NOTES_COLUMN}: {part.strip()!r} is not '<parameter>:<note>'"
            )
        notes[parameter.key] = match[2].strip()
    return _Cells(identity, values, notes)


def _columns(titles: Sequence[str], label: str) -> dict[str, int]:
    """Column index by title (the unit cut off a parameter's title); identity required."""
    columns: dict[str, int] = {}
    for index, title in enumerate(titles):
        name = title.split("(", 1)[0].strip() if title.endswith(")") else title
        if name in IDENTITY_COLUMNS or (name in _BY_TITLE and "_原始值" not in title):
            columns.setdefault(name, index)
    missing = [name for name in IDENTITY_COLUMNS if name not in columns]
    if missing:
        raise CnemcWaterFormatError(f"{label}: column {', '.join(missing)} missing")
    return columns


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_TIME = re.compile(r"(?:(\d{4})-)?(\d{1,2})-(\d{1,2}) (\d{1,2}):(\d{2})")


def _record(
    row: int,
    cells: _Cells | str,
    year: int | None,
    now: dt.datetime | None,
    water_bodies: Mapping[str, str] | None,
) -> SectionRecord:
    if isinstance(cells, str):
        raise CnemcWaterFormatError(cells)
    province, basin, name = (cells.identity[key] for key in IDENTITY_COLUMNS[:3])
    for field_name, text in zip(IDENTITY_COLUMNS[:3], (province, basin, name), strict=True):
        if not text or text == "--":
            raise CnemcWaterFormatError(f"{field_name}: empty")
    time = _time(cells.identity["监测时间"], year, now)
    published = _class(cells.identity["水质类别"])
    readings = []
    for key, (displayed, original) in cells.values.items():
        reading = _reading(key, displayed, original)
        if reading is not None:
            readings.append(reading)
    readings.sort(key=lambda reading: _ORDER[reading.parameter])
    notes = tuple(sorted(cells.notes.items(), key=lambda item: _ORDER[item[0]]))
    code = section_code(province, basin, name)
    measured = [reading.parameter for reading in readings] + list(cells.notes)
    kind, basis = water_body(province, name, measured, (water_bodies or {}).get(code))
    return SectionRecord(
        row=row,
        code=code,
        province=province,
        basin=basin,
        name=name,
        water_body=kind,
        water_body_basis=basis,
        time=time,
        published_class=published,
        readings=tuple(readings),
        notes=notes,
    )


def _time(text: str, year: int | None, now: dt.datetime | None) -> dt.datetime:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise CnemcWaterFormatError(f"监测时间: {text!r} is not 'MM-DD HH:MM'")
    month, day, hour, minute = (int(match[index]) for index in (2, 3, 4, 5))
    given = int(match[1]) if match[1] else year
    if given is not None:
        return _moment(given, month, day, hour, minute, text)
    reference = (now or dt.datetime.now(CST)).astimezone(CST)
    moment = _moment(reference.year, month, day, hour, minute, text)
    if moment > reference + dt.timedelta(days=1):
        moment = _moment(reference.year - 1, month, day, hour, minute, text)
    return moment


def _moment(year: int, month: int, day: int, hour: int, minute: int, text: str) -> dt.datetime:
    try:
        return dt.datetime(year, month, day, hour, minute, tzinfo=CST)
    except ValueError as error:
        raise CnemcWaterFormatError(f"监测时间: {text!r} in {year}: {error}") from None


def _class(text: str) -> int:
    text = str(text).strip()
    if text.lstrip("-").isdigit() and int(text) in (NO_CLASS, 1, 2, 3, 4, 5, 6):
        return int(text)
    raise CnemcWaterFormatError(f"水质类别: {text!r} is not 1-6 or -1")


def _reading(key: str, displayed: str, original: str | None) -> Reading | None:
    title = next(parameter.title for parameter in PARAMETERS if parameter.key == key)
    shown = _NUMBER.fullmatch(displayed) is not None
    if not shown and displayed not in ("--", ""):
        raise CnemcWaterFormatError(f"{title}: {displayed!r} is not a number or --")
    if original is None:
        return Reading(key, float(displayed), displayed) if shown else None
    if _NUMBER.fullmatch(original) is None:
        raise CnemcWaterFormatError(f"{title}: 原始值 {original!r} is not a number")
    if not shown:
        raise CnemcWaterFormatError(f"{title}: 原始值 {original} but the value shown is --")
    value = float(original)
    if abs(value - float(displayed)) > _last_digit(displayed) * (1 + 1e-9):
        raise CnemcWaterFormatError(
            f"{title}: 原始值 {original} is not the value shown, {displayed}"
        )
    return Reading(key, value, displayed)


def _last_digit(number: str) -> float:
    """One unit of the last digit of a decimal number as written (1 for integers)."""
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.split(".", 1)[1]) if "." in mantissa else 0
    return float(10.0 ** (int(exponent or 0) - decimals))
