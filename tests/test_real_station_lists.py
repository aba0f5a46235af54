"""The official CNEMC station lists: parsing, station history, coverage of the hourly
files, the city table and registry records.

The lists are read from ../shared/data/cnemc/stations/ (tests needing them skip when the
folder is absent). Expected counts, rows and coordinates are typed from the list files;
GB/T 2260 codes are typed from the Ministry of Civil Affairs code list (2024 edition;
莱芜市 and 胶南市 from its revisions of 2019-04 and 2012-10), not from our table.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from ecohub.registry import station_lists as sl
from ecohub.registry import stations as st
from ecohub.registry.schemas import PointIn, RegionIn, SiteIn

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CNEMC = SHARED_DATA / "cnemc"
STATIONS = CNEMC / "stations"


@pytest.fixture(scope="module")
def lists() -> list[sl.StationList]:
    if not STATIONS.is_dir():
        pytest.skip(f"real station lists not found at {STATIONS} (shared/data is absent)")
    return sl.read_station_lists(STATIONS)


@pytest.fixture(scope="module")
def history(lists: list[sl.StationList]) -> st.StationHistory:
    return st.build_history(lists)


@pytest.fixture(scope="module")
def references(lists: list[sl.StationList]) -> list[sl.StationList]:
    live = sl.read_live_feed(CNEMC / "live_publish" / "airnow.json")
    return [*(item for item in lists if item.kind == "match"), live]


def by_source(lists: list[sl.StationList], name: str) -> sl.StationList:
    return next(item for item in lists if item.source == name)


def region(name: str) -> st.CityRegion:
    city = st.city_region(name)
    assert city is not None, name
    return city


# --- parsing --------------------------------------------------------------------------

# Data lines per dated list (wc -l less the header) and the codes listed twice in it.
ROWS = {
    "2016.11.07": (1497, ()),
    "2017.02": (1563, ()),
    "2017.06": (1580, ()),
    "2017.09": (1582, ()),
    "2017.09.22": (1584, ()),
    "2017.10.01": (1586, ()),
    "2017.10.14": (1592, ()),
    "2017.10.29": (1593, ()),
    "2017.12.01": (1596, ()),
    "2017.12.09": (1597, ()),
    "2018.01.19": (1601, ()),
    "2018.02.22": (1602, ()),
    "2018.07.28": (1605, ()),
    "2018.11.08": (1614, ()),
    "2019.08.01": (1633, ("3207A",)),
    "2020.01.01": (1641, ("3207A",)),
    "2020.04.05": (1657, ("1778A", "1947A", "3207A")),
    "2020.05.08": (1670, ("3207A",)),
    "2020.12.06": (1701, ("3207A",)),
    "2021.01.01": (2024, ("1961A", "1966A")),
    "2022.02.13": (2026, ()),
}


def test_every_list_is_read_with_its_rows_and_duplicates(lists: list[sl.StationList]) -> None:
    dated = [item for item in lists if item.kind == "list"]
    assert [item.source for item in dated] == [f"站点列表-{date}起.csv" for date in ROWS]
    for item in dated:
        rows, twice = ROWS[item.source.removeprefix("站点列表-").removesuffix("起.csv")]
        assert len(item.stations) + len(item.duplicates) == rows, item.source
        assert tuple(d.code for d in item.duplicates) == twice, item.source
    assert by_source(lists, "站点列表-2017.09起.csv").valid_from == dt.date(2017, 9, 1)
    assert by_source(lists, "站点列表-2017.09.22起.csv").valid_from == dt.date(2017, 9, 22)
    old = by_source(lists, "站点列表-旧-946个.csv")
    assert (old.kind, len(old.stations), [d.code for d in old.duplicates]) == (
        "old",
        945,
        ["1441A"],
    )
    assert old.stations["1441A"].name == "金阳新区"  # the first of 金阳新区 / 金阳区
    match = by_source(lists, "match1.csv")
    assert len(match.stations) == 1605 and "X1001A" not in match.stations
    assert match.stations["1001A"].city == "北京"


def test_rows_as_listed_with_notes_flags_and_missing_coordinates(
    lists: list[sl.StationList],
) -> None:
    first = by_source(lists, "站点列表-2016.11.07起.csv").stations
    assert first["1028A"].longitude is None and first["1028A"].latitude is None  # ",,"
    assert first["1784A"].name == "环保大楼"  # "环保大楼\u3000" in the file
    in_2020 = by_source(lists, "站点列表-2020.04.05起.csv")
    assert in_2020.stations["1045A"].longitude is None  # "-,-"
    assert in_2020.stations["1002A"].control is True and in_2020.stations["1001A"].control is False
    # 1778A,丰满,吉林,…,Y on line 702 and …,N on line 703: the first row is kept.
    assert in_2020.stations["1778A"].control is True
    assert in_2020.duplicates[0] == sl.Duplicate("1778A", 702, 703, identical=False)
    in_2019 = by_source(lists, "站点列表-2019.08.01起.csv").stations
    chuzhou = in_2019["3207A"]  # 3207A,市政府原办公楼(190307启用),滁州,118.3117,32.3039
    assert (chuzhou.name, chuzhou.notes, chuzhou.opened) == (
        "市政府原办公楼",
        ("190307启用",),
        dt.date(2019, 3, 7),
    )
    assert (chuzhou.source, chuzhou.line) == ("站点列表-2019.08.01起.csv", 1629)
    latest = by_source(lists, "站点列表-2022.02.13起.csv").stations
    assert latest["1013A"].stopped == dt.date(2015, 7, 2)  # 市监测中心(停运150702)
    assert latest["1002A"].name == "定陵" and latest["1002A"].is_control  # 定陵(对照点),…,Y
    assert latest["1436A"].out_of_service and latest["1436A"].stopped is None  # （已停运）


# --- history ----------------------------------------------------------------------------


def test_a_station_that_moved(history: st.StationHistory) -> None:
    versions = history.versions["1001A"]  # 万寿西宫, 北京
    located = [(v.valid_from, v.station.longitude, v.station.latitude) for v in versions[1:]]
    assert located[0] == (dt.date(2016, 11, 7), 116.366, 39.8673)
    assert located[-1] == (dt.date(2021, 1, 1), 116.3621, 39.8784)
    change = next(c for c in st.list_changes(history) if c.valid_from == dt.date(2021, 1, 1))
    move = next(m for m in change.moved if m.code == "1001A")
    assert move.before == (116.366, 39.8673) and move.after == (116.3621, 39.8784)
    assert move.km == pytest.approx(1.28, abs=0.01)


def test_a_latitude_corrected_by_a_later_list(history: st.StationHistory) -> None:
    # 3132A,文明里(启用171012),秦皇岛: 119.5967,37.0308 (2019.08.01), 119.5966,39.9380 (2020.01.01)
    change = next(c for c in st.list_changes(history) if c.valid_from == dt.date(2020, 1, 1))
    move = next(m for m in change.moved if m.code == "3132A")
    assert (move.before, move.after) == ((119.5967, 37.0308), (119.5966, 39.938))
    assert move.km > 300


def test_stations_that_closed(history: st.StationHistory) -> None:
    # 1777A,农科院,吉林,, and 1946A,酒钢耐材公司,嘉峪关,, end with 2020.01.01.
    for code, line in (("1777A", 702), ("1946A", 870)):
        last = history.versions[code][-1]
        assert (last.station.source, last.station.line) == ("站点列表-2020.01.01起.csv", line)
        assert last.valid_to == dt.date(2020, 4, 5)
    change = next(c for c in st.list_changes(history) if c.valid_from == dt.date(2020, 4, 5))
    assert change.closed == ("1777A", "1946A")
    known = st.latest_known(history)
    assert known["1777A"].station.name == "农科院"
    assert known["1289A"].station.source == "站点列表-旧-946个.csv"  # only the old list has it


def test_a_station_that_changed_city(history: st.StationHistory) -> None:
    # 1961A: 环境监测站,章丘,117.541,36.710 (2018.11.08); 东山小学,济南,117.532,36.6868 (2022.02.13)
    cities = [(v.valid_from, v.station.city) for v in history.versions["1961A"]]
    assert cities[-1] == (dt.date(2021, 1, 1), "济南")
    assert ("1961A", "章丘", "济南") in next(
        c.city_changed for c in st.list_changes(history) if c.valid_from == dt.date(2021, 1, 1)
    )
    assert region("章丘").code == "370114"


def test_stop_and_start_notes_decide_what_is_in_force(history: st.StationHistory) -> None:
    day = dt.date(2019, 6, 1)  # the 2018.11.08 list is in force
    assert st.list_in_force(history, day).source == "站点列表-2018.11.08起.csv"
    in_force = st.stations_in_force(history, day)
    listed = st.stations_in_force(history, day, apply_notes=False)
    assert "1013A" in listed and "1013A" not in in_force  # 停运150702 (noted from 2020)
    assert "3151A" not in listed and "3151A" in in_force  # （181229启用） in 2019.08.01
    assert "3662A" not in in_force  # (启用191231)
    # 2923A: 停运160601 in 2020.01.01, corrected to 停运200102 by 2020.04.05.
    assert "2923A" in in_force and "2923A" not in st.stations_in_force(history, dt.date(2020, 6, 1))
    # 1222A: 宿豫区环保局(181206停用) in 2020.01.01 only.
    assert "1222A" not in in_force and "1222A" in st.stations_in_force(
        history, dt.date(2023, 1, 20)
    )
    # Before the first dated list, the old list is in force.
    before = dt.date(2016, 1, 1)
    old = history.lists[0].stations.keys()
    assert st.stations_in_force(history, before, apply_notes=False).keys() == old
    assert "1013A" in old and "1013A" not in st.stations_in_force(history, before)


# --- coverage of the hourly files -----------------------------------------------------


def header_codes(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as file:
        header = next(csv.reader(file))
    return [code for code in header[3:] if code]


def file_day(path: Path) -> dt.date:
    return dt.datetime.strptime(path.stem.removeprefix("china_sites_"), "%Y%m%d").date()


def test_every_code_of_the_hourly_files_resolves(
    history: st.StationHistory, references: list[sl.StationList]
) -> None:
    paths = sorted((CNEMC / "china_sites").glob("china_sites_*.csv"))
    assert len(paths) == 40
    for path in paths:
        codes = header_codes(path)
        resolved = st.resolve_codes(codes, history, references, file_day(path))
        assert [code for code, station in resolved.items() if station is None] == [], path.name
    # SOURCE.md: 26 codes not in 2018.11.08起 on 2019-06-01, 8 not in 2019.08.01起 on 2019-12-10.
    for name, missing in (("china_sites_20190601.csv", 26), ("china_sites_20191210.csv", 8)):
        path = CNEMC / "china_sites" / name
        in_list = st.list_in_force(history, file_day(path)).stations
        assert len(set(header_codes(path)) - set(in_list)) == missing


def aqi_codes(path: Path) -> tuple[set[str], set[str]]:
    """The file's station codes, and those with at least one published AQI."""
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file))
    header = rows[0]
    valued = {
        header[index]
        for row in rows[1:]
        if len(row) > 2 and row[2] == "AQI"
        for index, value in enumerate(row[3:], start=3)
        if index < len(header) and value.strip()
    }
    return {code for code in header[3:] if code}, valued


@pytest.mark.parametrize("name", ["china_sites_20190601.csv", "china_sites_20250120.csv"])
def test_stations_out_of_service_by_their_notes_publish_nothing(
    history: st.StationHistory, name: str
) -> None:
    path = CNEMC / "china_sites" / name
    codes, valued = aqi_codes(path)
    left_out = codes - set(st.stations_in_force(history, file_day(path)))
    assert len(left_out) > 50
    assert left_out & valued == set()


# --- cities -----------------------------------------------------------------------------

# Typed from the MCA code list (2024; 莱芜市 371200 until 2019, 胶南市 370284 until 2012).
OFFICIAL = {
    "北京": ("110000", "北京市", "110000"),
    "石家庄": ("130100", "石家庄市", "130000"),
    "延边州": ("222400", "延边朝鲜族自治州", "220000"),
    "延边朝鲜族自治州": ("222400", "延边朝鲜族自治州", "220000"),
    "甘孜州": ("513300", "甘孜藏族自治州", "510000"),
    "克州": ("653000", "克孜勒苏柯尔克孜自治州", "650000"),
    "巴音郭楞州": ("652800", "巴音郭楞蒙古自治州", "650000"),
    "克拉玛依": ("650200", "克拉玛依市", "650000"),
    "库尔勒": ("652801", "库尔勒市", "650000"),
    "五家渠": ("659004", "五家渠市", "650000"),
    "石河子": ("659001", "石河子市", "650000"),
    "日喀则地区": ("540200", "日喀则市", "540000"),
    "铜仁地区": ("520600", "铜仁市", "520000"),
    "章丘": ("370114", "章丘区", "370000"),
    "海门": ("320614", "海门区", "320000"),
    "瓦房店": ("210281", "瓦房店市", "210000"),
    "莱芜": ("371200", "莱芜市", "370000"),
    "胶南": ("370284", "胶南市", "370000"),
}


def test_city_codes_agree_with_the_official_list() -> None:
    for name, (code, full_name, province) in OFFICIAL.items():
        city = st.city_region(name)
        assert city is not None, name
        assert (city.code, city.name, city.province_code) == (code, full_name, province), name
    assert region("库尔勒").level == "county-level city"
    assert region("库尔勒市").code == "652801"  # live feed
    assert region("雄安新区").code == ""


def test_city_table_is_consistent() -> None:
    table = st.city_table()
    assert len(table) == 396
    for city in table.values():
        assert city.province_code.endswith("0000") and city.province_name, city.list_name
        if city.code:
            assert len(city.code) == 6 and city.code[:2] == city.province_code[:2], city.list_name
        else:
            assert city.level == "new area", city.list_name


def test_city_table_covers_every_city_of_every_source(
    lists: list[sl.StationList], references: list[sl.StationList]
) -> None:
    names = {s.city for item in [*lists, *references] for s in item.stations.values()}
    assert len(names) > 390
    assert sorted(name for name in names if st.city_region(name) is None) == []
    # match1.csv agrees on the province of each city, but for one row: 3065A is
    # 甘孜藏族自治州 with provinceid 西藏 (甘孜 is in 四川).
    text = (STATIONS / "match1.csv").read_text(encoding="utf-8")
    wrong = [
        row["id"]
        for row in csv.DictReader(text.splitlines())
        if not region(row["cityid"]).province_name.startswith(row["provinceid"])
    ]
    assert wrong == ["X3065A"]


def test_city_stations_leave_out_control_sites(history: st.StationHistory) -> None:
    day = dt.date(2025, 1, 20)
    beijing = st.city_stations(history, day)["110000"]
    assert "1001A" in beijing and "1002A" not in beijing  # 定陵 is Beijing's control site
    assert "1002A" in st.city_stations(history, day, exclude_control=False)["110000"]


# --- registry records ---------------------------------------------------------------------


def test_registry_records_validate_and_cover_every_code(history: st.StationHistory) -> None:
    result = st.registry_records(history)
    kinds = [item["kind"] for item in result.records]
    assert kinds == sorted(kinds, key=["regions", "sites", "points"].index)
    schemas: dict[str, type[BaseModel]] = {"regions": RegionIn, "sites": SiteIn, "points": PointIn}
    for item in result.records:
        schemas[item["kind"]].model_validate(item["record"])
    sites = {item["record"]["code"]: item for item in result.records if item["kind"] == "sites"}
    assert len(sites) == len(st.latest_known(history)) == kinds.count("points")
    regions = {item["record"]["code"] for item in result.records if item["kind"] == "regions"}
    assert {site["record"]["region_code"] for site in sites.values()} - {None} <= regions
    wanshou = sites["1001A"]
    assert wanshou["record"] == {
        "code": "1001A",
        "name": "北京万寿西宫",
        "kind": "air",
        "region_code": "110000",
        "longitude": 116.3621,
        "latitude": 39.8784,
        "status": "active",
        "control_point": False,
    }
    assert wanshou["location"] == "站点列表-2022.02.13起.csv:2"
    assert sites["1777A"]["record"]["status"] == "decommissioned"
    assert sites["1436A"]["record"]["status"] == "suspended"  # 草堂寺（已停运）
    assert result.decommissioned == {"1289A", "1777A", "1892A", "1946A"}
    assert "1002A" in result.control_points and "1001A" not in result.control_points
    assert len(result.control_points) == 250  # the Y flags of 2022.02.13
    assert set(result.unmapped.values()) == {"雄安新区", "西咸新区", "兰州新区", "赣江新区"}
    assert result.as_import_rows()[0][0] == "regions"


# --- malformed input --------------------------------------------------------------------

HEADER = "监测点编码,监测点名称,城市,经度,纬度,对照点\n"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("code,name,city,lon,lat\n", "line 1, header"),
        (HEADER + "9001A,甲,某市,116.1,39.9,N\n9002A,乙,某市,116.2\n", "line 3, row"),
        (HEADER + "9001A,甲,某市,东经116,39.9,N\n", "line 2, 经度"),
        (HEADER + "9001A,甲,某市,116.1,95.0,N\n", "line 2, 纬度"),
        (HEADER + "9001A,甲,某市,116.1,39.9,是\n", "line 2, 对照点"),
        (HEADER + "\n\n9001A,甲,,116.1,39.9,N\n", "line 4, 城市"),
        (HEADER + ",甲,某市,116.1,39.9,N\n", "line 2, 监测点编码"),
        ("", "line 1, header"),
    ],
)
def test_malformed_list_names_file_line_and_field(body: str, where: str) -> None:
    with pytest.raises(sl.StationListError) as caught:
        sl.parse_station_list(body, "站点列表-2030.01.01起.csv")
    assert str(caught.value).startswith(f"站点列表-2030.01.01起.csv: {where}:")


def test_malformed_other_sources_name_file_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(sl.StationListError, match=r"^old\.csv: line 2, names: 1 fields for 2"):
        sl.parse_old_station_list("9001A,9002A\n甲\n某市,某市\n\n", "old.csv")
    with pytest.raises(sl.StationListError, match=r"^match1\.csv: line 3, lat: 'x'"):
        sl.parse_match_table(
            "id,cityid,provinceid,lon,lat\nX9001A,某,某,1,2\nX9002A,某,某,1,x\n", "match1.csv"
        )
    with pytest.raises(sl.StationListError, match=r"^feed\.json: line 2, area: missing"):
        features = [
            {"geometry": {"coordinates": [1, 2]}, "properties": properties}
            for properties in (
                {"stationcode": "9001A", "positionname": "甲", "area": "某市"},
                {"stationcode": "9002A", "positionname": "乙"},
            )
        ]
        text = json.dumps({"type": "FeatureCollection", "features": features})
        sl.parse_live_feed(text, "feed.json")
    with pytest.raises(sl.StationListError, match=r"^站点列表-2017\.13起\.csv: file name"):
        sl.parse_station_list(HEADER, "站点列表-2017.13起.csv")
    (tmp_path / "站点列表-2030.01.01起.csv").write_bytes(
        HEADER.encode() + b"9001A,\xff\xfe,x,1,2,N\n"
    )
    with pytest.raises(sl.StationListError, match=r"起\.csv: line 2, encoding: not UTF-8"):
        sl.read_station_lists(tmp_path)


def test_crlf_bom_and_blank_lines_are_accepted() -> None:
    text = "\ufeff" + HEADER.replace("\n", "\r\n") + "9001A,甲(对照点),某市,-,-,Y\r\n\r\n"
    parsed = sl.parse_station_list(text, "站点列表-2030.01.01起.csv")
    station = parsed.stations["9001A"]
    assert (station.name, station.notes, station.longitude, station.control, station.line) == (
        "甲",
        ("对照点",),
        None,
        True,
        2,
    )
