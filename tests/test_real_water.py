"""The national surface-water automatic stations' real-time release (CNEMC) and a third
party's river samples, against GB 3838-2002.

The real files are read from ../shared/data/water/ (SOURCE.md there); those tests skip
when the folder is absent. The reader's own tests use small inputs typed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from ecohub.ingest.cnemc_water import (
    ALGAL_PARAMETERS,
    CST,
    LAKE,
    NO_CLASS,
    RIVER,
    SECTION_WATER_BODIES,
    CnemcWaterFormatError,
    SectionRecord,
    is_release,
    read_release,
    section_code,
    water_body,
)
from ecohub.ingest.water_files import validate_water_file
from ecohub.standards.water import assess, automatic_station_class, parameter_class

WATER = Path(__file__).resolve().parents[2] / "shared" / "data" / "water"
RELEASE_JSON = WATER / "cnemc_realtime_20260821_p1_shared.json"
RELEASE_CSV = WATER / "cnemc_realtime_20260821_p1_shared.csv"
CMHWP = WATER / "cmhwp_river_samples_2025_shared.csv"


@pytest.fixture(scope="module")
def water() -> Path:
    if not RELEASE_JSON.exists():
        pytest.skip(f"real water data not present: {WATER} (see shared/data/water/SOURCE.md)")
    return WATER


@pytest.fixture(scope="module")
def release(water: Path) -> list[SectionRecord]:
    return read_release(RELEASE_JSON, year=2026)


def _section(records: list[SectionRecord], province: str, name: str) -> SectionRecord:
    (found,) = [r for r in records if r.province == province and r.name == name]
    return found


# --- the release as published (2026-08-21, page 1 of 4, 辽宁 and 吉林 held out) -----------


def test_release_rows_classes_and_times(release: list[SectionRecord]) -> None:
    assert len(release) == 388
    classes = Counter(record.published_class for record in release)
    assert classes == {NO_CLASS: 1, 1: 14, 2: 83, 3: 107, 4: 112, 5: 46, 6: 25}
    assert len({record.province for record in release}) == 10
    assert len({record.code for record in release}) == 388
    earliest = dt.datetime(2026, 8, 21, 13, tzinfo=CST)
    latest = dt.datetime(2026, 8, 21, 20, tzinfo=CST)
    assert all(earliest <= record.time <= latest for record in release)
    assert release[0].time.utcoffset() == dt.timedelta(hours=8)


def test_json_and_csv_give_the_same_records(water: Path, release: list[SectionRecord]) -> None:
    assert read_release(RELEASE_CSV, year=2026) == release


def test_sections_typed_from_the_file(release: list[SectionRecord]) -> None:
    first = _section(release, "北京市", "鼓楼外大街")
    assert (first.row, first.basin, first.published_class) == (1, "海河流域", 2)
    assert first.values() == {
        "WT": 26.58,
        "pH": 7.6,
        "DO": 6.76,
        "conductivity": 487.06,
        "turbidity": 21.268,
        "CODMn": 2.61,
        "NH3-N": 0.077,
        "TP": 0.035,
        "TN": 5.751,
    }
    assert [r.displayed for r in first.readings if r.parameter in ("pH", "TN")] == ["7.60", "5.75"]
    assert first.water_body == RIVER and first.notes == ()

    shawo = _section(release, "北京市", "沙窝")
    assert shawo.published_class == 6 and shawo.values()["DO"] == 0.8

    # A quality-control note on a cell shown as --: no value, the note kept.
    bali = _section(release, "北京市", "新八里桥")
    assert bali.notes == (("TN", "当天质控不合格"),) and "TN" not in bali.values()

    # The only row without a class has no values at all.
    anguqiao = _section(release, "山西省", "安固桥")
    assert (anguqiao.published_class, anguqiao.readings, anguqiao.basin) == (-1, (), "黄河流域")

    # 原始值 in scientific notation; the displayed chlorophyll-a is rounded.
    tuoshan = _section(release, "江苏省", "拖山")
    assert tuoshan.values()["algal_density"] == 10_080_370.0
    assert tuoshan.values()["chlorophyll_a"] == 0.00162
    assert (tuoshan.water_body, tuoshan.published_class) == (LAKE, 4)

    lake = _section(release, "安徽省", "西半湖湖心")
    assert (lake.published_class, lake.water_body) == (5, LAKE)

    # Names repeat across provinces: 临江 in 上海 and in 浙江 are two sections.
    shanghai, zhejiang = _section(release, "上海市", "临江"), _section(release, "浙江省", "临江")
    assert shanghai.code != zhejiang.code
    assert (shanghai.published_class, zhejiang.published_class) == (4, 2)


def test_published_classes_are_reproduced(water: Path) -> None:
    for path in (RELEASE_JSON, RELEASE_CSV):
        report = validate_water_file(path, year=2026)
        assert (report.compared, report.unclassified, report.rejected_rows) == (387, 1, [])
        assert report.match_rate >= 0.99, report.unexplained
        assert report.matched == 387 and report.unexplained == []
        assert report.water_bodies == {
            "river (default)": 358,
            "river (listed)": 3,
            "lake-reservoir (listed)": 14,
            "lake-reservoir (algal analysers)": 12,
        }


def test_listed_water_bodies_are_the_only_ones_that_reproduce_the_class(
    release: list[SectionRecord],
) -> None:
    for (province, name), kind in SECTION_WATER_BODIES.items():
        record = _section(release, province, name)
        values = record.values()
        as_listed = automatic_station_class(values, lake=kind == LAKE)
        other = automatic_station_class(values, lake=kind != LAKE)
        assert as_listed is not None and other is not None
        assert as_listed.water_class == record.published_class, name
        assert other.water_class != record.published_class, name


def test_algal_analysers_alone_miss_four_sections(release: list[SectionRecord]) -> None:
    """Without the list, chlorophyll-a or algal density published → lake or reservoir
    explains all but four rows: two 千岛湖 points without algal values and two river
    sections with a chlorophyll-a analyser."""
    missed = []
    for record in release:
        if record.published_class == NO_CLASS:
            continue
        measured = {r.parameter for r in record.readings} | {key for key, _ in record.notes}
        found = automatic_station_class(record.values(), lake=bool(ALGAL_PARAMETERS & measured))
        assert found is not None
        if found.water_class != record.published_class:
            missed.append(record.name)
    assert sorted(missed) == sorted(["急水港桥", "小金山", "三潭岛", "新港口"])


def test_total_nitrogen_counts_for_neither_rivers_nor_lakes(release: list[SectionRecord]) -> None:
    river = _section(release, "北京市", "鼓楼外大街")  # TN 5.751: worse than V
    lake = _section(release, "安徽省", "湖滨")  # TN 1.509: V; published IV
    for record, tn_class in ((river, 6), (lake, 5)):
        assert parameter_class("TN", record.values()["TN"]) == tn_class
        assert tn_class > record.published_class


def test_ph_outside_6_to_9_and_unrounded_limits(release: list[SectionRecord]) -> None:
    lizhuang = _section(release, "江苏省", "李庄")  # pH 9.14, everything else III or better
    assert lizhuang.values()["pH"] == 9.14 and lizhuang.published_class == 6
    others = {k: v for k, v in lizhuang.values().items() if k in ("DO", "CODMn", "NH3-N", "TP")}
    assert assess(others).water_class == 3
    # Values are compared as published, not rounded to the limits' precision first.
    assert _section(release, "江苏省", "蔺家坝").values()["DO"] == 1.99  # 2.0 would be V
    assert _section(release, "江苏省", "蔺家坝").published_class == 6
    assert _section(release, "山西省", "郝村").values()["CODMn"] == 6.02  # 6.0 would be III
    assert _section(release, "山西省", "郝村").published_class == 4
    assert _section(release, "江苏省", "钓邾大桥").values()["TP"] == 0.102  # 0.10 would be II
    assert _section(release, "江苏省", "钓邾大桥").published_class == 3


# --- the third party's river samples (graded by their author, not by GB 3838) ----------

CMHWP_GRADES = {
    "Ⅰ类": 1,
    "Ⅱ类": 2,
    "Ⅲ类": 3,
    "Ⅳ类": 4,
    "Ⅴ类": 5,
    "劣Ⅴ类": 6,
    "轻度黑臭": 7,
    "重度黑臭": 8,
}
CMHWP_COLUMNS = {"COD": "COD", "氨氮": "NH3-N", "总磷": "TP", "高锰酸钾": "CODMn"}


@pytest.fixture(scope="module")
def cmhwp(water: Path) -> dict[int, dict[str, str]]:
    with CMHWP.open(encoding="utf-8-sig", newline="") as handle:
        return dict(enumerate(csv.DictReader(handle), start=2))  # by file line


def test_third_party_grades_differ_from_gb3838_per_parameter(
    cmhwp: dict[int, dict[str, str]],
) -> None:
    assert len(cmhwp) == 349
    differ: dict[str, Counter[tuple[int, int]]] = {key: Counter() for key in CMHWP_COLUMNS.values()}
    for row in cmhwp.values():
        for column, key in CMHWP_COLUMNS.items():
            if row[column]:
                theirs = CMHWP_GRADES[row[f"{column}等级"]]
                ours = parameter_class(key, float(row[column]))
                if theirs != ours:
                    differ[key][(theirs, ours)] += 1
    # They never give class I (so every class-I value is their II), and grade NH3-N above
    # 8 and 15 mg/L as 轻度/重度黑臭 where GB 3838 has only 劣V; otherwise they agree.
    assert differ == {
        "COD": {(2, 1): 181},
        "NH3-N": {(2, 1): 164, (7, 6): 6, (8, 6): 3},
        "TP": {(2, 1): 17},
        "CODMn": {(2, 1): 58},
    }


def test_third_party_overall_grades(cmhwp: dict[int, dict[str, str]]) -> None:
    overall: Counter[tuple[int, int]] = Counter()
    for row in cmhwp.values():
        values = {key: float(row[col]) for col, key in CMHWP_COLUMNS.items() if row[col]}
        overall[(CMHWP_GRADES[row["综合水质等级"]], assess(values).water_class)] += 1
    assert sum(n for (theirs, ours), n in overall.items() if theirs == ours) == 333
    assert {pair: n for pair, n in overall.items() if pair[0] != pair[1]} == {
        (2, 1): 7,
        (7, 6): 6,
        (8, 6): 3,
    }


def test_third_party_rows_typed_from_the_file(cmhwp: dict[int, dict[str, str]]) -> None:
    changguangxi = cmhwp[2]  # 2025-01-02 CGX-东北: NH3-N 0.081 labelled II
    assert (changguangxi["编号"], changguangxi["氨氮"], changguangxi["氨氮等级"]) == (
        "CGX-东北",
        "0.081",
        "Ⅱ类",
    )
    assert parameter_class("NH3-N", 0.081) == 1  # GB 3838 class I: ≤ 0.15
    clean = cmhwp[81]  # AA07-01-出水 2025-02-05: every value class I, overall labelled II
    assert clean["综合水质等级"] == "Ⅱ类"
    assert assess({"COD": 8.571, "NH3-N": 0.044, "TP": 0.015, "CODMn": 1.98}).water_class == 1
    assert (clean["COD"], clean["氨氮"], clean["总磷"], clean["高锰酸钾"]) == (
        "8.571",
        "0.044",
        "0.015",
        "1.98",
    )
    severe = cmhwp[253]  # 三节桥3 2025-04-08: NH3-N 22.68 → 重度黑臭; GB 3838 劣V
    assert (severe["氨氮"], severe["氨氮等级"], severe["综合水质等级"]) == (
        "22.68",
        "重度黑臭",
        "重度黑臭",
    )
    assert parameter_class("NH3-N", 22.68) == 6
    light = cmhwp[347]  # AA05-01-出水 2025-03-03: NH3-N 8.282 → 轻度黑臭
    assert (light["氨氮"], light["综合水质等级"]) == ("8.282", "轻度黑臭")


# --- the reader on small inputs -----------------------------------------------------------

THEAD = [
    "省份",
    "流域",
    "断面名称",
    "监测时间",
    "水质类别",
    "pH<br/><span class='unit'>(无量纲)</span>",
    "溶解氧<br/><span class='unit'>(mg/L)</span>",
    "总磷<br/><span class='unit'>(mg/L)</span>",
    "总氮<br/><span class='unit'>(mg/L)</span>",
]
GOOD = [
    "江苏省",
    "太湖流域",
    "某断面",
    "08-21 20:00",
    "3",
    "<span title='原始值：7.6'>7.60</span>",
    "<span title='原始值：5.5'>5.50</span>",
    "<span title='原始值：0.0449'>0.045</span>",
    "<span data-toggle='tooltip' data-placement='right' title='当天质控不合格'>--</span>",
]


def _answer(*rows: Sequence[object]) -> bytes:
    body = {"result": 1, "total": 1, "records": len(rows), "thead": THEAD, "tbody": list(rows)}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def _with(index: int, cell: object) -> list[object]:
    row: list[object] = list(GOOD)
    row[index] = cell
    return row


def test_reads_a_small_answer() -> None:
    (record,) = read_release(_answer(GOOD), year=2025)
    assert record.time == dt.datetime(2025, 8, 21, 20, tzinfo=CST)
    assert record.values() == {"pH": 7.6, "DO": 5.5, "TP": 0.0449}
    assert record.notes == (("TN", "当天质控不合格"),)
    assert record.code == section_code("江苏省", "太湖流域", "某断面")
    assert (record.water_body, record.water_body_basis) == (RIVER, "default")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_with(4, "7"), "tbody row 1, 水质类别: '7' is not 1-6 or -1"),
        (_with(3, "2025-08-21"), "tbody row 1, 监测时间: '2025-08-21' is not 'MM-DD HH:MM'"),
        (_with(3, "02-30 10:00"), "tbody row 1, 监测时间: '02-30 10:00' in 2025"),
        (_with(5, "<span title='原始值：abc'>7.6</span>"), "tbody row 1, pH: 原始值 'abc'"),
        (_with(5, "<span title='原始值：7.9'>7.60</span>"), "pH: 原始值 7.9 is not the value"),
        (_with(6, "n/a"), "tbody row 1, 溶解氧: 'n/a' is not a number or --"),
        (_with(5, "<b>7.6</b>"), "tbody row 1, pH: cannot read the cell '<b>7.6</b>'"),
        (_with(6, 5.5), "tbody row 1, 溶解氧(mg/L): 5.5 is not text"),
        (_with(2, " "), "tbody row 1, 断面名称: empty"),
        (GOOD[:-1], "tbody row 1, 8 cells where thead has 9"),
    ],
)
def test_malformed_rows_name_the_row_and_the_field(row: Sequence[object], message: str) -> None:
    with pytest.raises(CnemcWaterFormatError, match=re.escape(message)):
        read_release(_answer(row), year=2025)


def test_malformed_rows_can_be_set_aside() -> None:
    rejected: list[str] = []
    records = read_release(_answer(GOOD, _with(4, "X"), GOOD), year=2025, rejected=rejected)
    assert [record.row for record in records] == [1, 3]
    assert rejected == ["release: tbody row 2, 水质类别: 'X' is not 1-6 or -1"]


def test_files_of_another_shape() -> None:
    with pytest.raises(CnemcWaterFormatError, match="not JSON"):
        read_release(b"{oops", year=2025)
    with pytest.raises(CnemcWaterFormatError, match="no 'tbody' list"):
        read_release(b'{"result": 1}', year=2025)
    with pytest.raises(
        CnemcWaterFormatError, match="column 流域, 断面名称, 监测时间, 水质类别 missing"
    ):
        read_release(b'{"thead": ["\xe7\x9c\x81\xe4\xbb\xbd"], "tbody": []}', year=2025)
    header = "省份,流域,断面名称,监测时间,水质类别,pH(无量纲)\n"
    with pytest.raises(CnemcWaterFormatError, match="column pH_原始值 missing"):
        read_release(header.encode(), year=2025)


CSV_HEADER = (
    "省份,流域,断面名称,监测时间,水质类别,pH(无量纲),pH_原始值,总氮(mg/L),总氮_原始值,"
    "备注(单元格提示)"
)


def test_csv_rows_and_notes() -> None:
    text = (
        f"{CSV_HEADER}\r\n江苏省,太湖流域,某断面,08-21 20:00,3,7.60,7.6,--,,总氮:当天质控不合格\r\n"
    )
    (record,) = read_release(text.encode("utf-8"), year=2025)
    assert record.values() == {"pH": 7.6} and record.notes == (("TN", "当天质控不合格"),)
    bad_note = text.replace("总氮:当天", "当天")
    with pytest.raises(CnemcWaterFormatError, match=r"row 1 \(line 2\), 备注\(单元格提示\)"):
        read_release(bad_note.encode("utf-8"), year=2025)
    short = f"{CSV_HEADER}\n江苏省,太湖流域,某断面,08-21 20:00,3,7.60\n"
    with pytest.raises(CnemcWaterFormatError, match=r"row 1 \(line 2\), 6 fields where"):
        read_release(short.encode("utf-8"), year=2025)
    orphan = text.replace(",--,,", ",--,1.2,")
    with pytest.raises(CnemcWaterFormatError, match=r"总氮: 原始值 1\.2 but the value shown is --"):
        read_release(orphan.encode("utf-8"), year=2025)


def test_year_defaults_to_the_latest_reading_not_after_tomorrow() -> None:
    new_year = dt.datetime(2027, 1, 1, 0, 30, tzinfo=CST)
    late = _with(3, "12-31 20:00")
    (record,) = read_release(_answer(late), now=new_year)
    assert record.time == dt.datetime(2026, 12, 31, 20, tzinfo=CST)
    (record,) = read_release(_answer(_with(3, "01-01 00:00")), now=new_year)
    assert record.time == dt.datetime(2027, 1, 1, tzinfo=CST)
    (record,) = read_release(_answer(_with(3, "2024-02-29 08:00")), year=2025)
    assert record.time == dt.datetime(2024, 2, 29, 8, tzinfo=CST)


def test_section_code_is_a_documented_hash() -> None:
    key = "北京市\t海河流域\t鼓楼外大街".encode()
    expected = "cnemc-sw-" + hashlib.sha256(key).hexdigest()[:12]
    assert section_code("北京市", "海河流域", "鼓楼外大街") == expected == "cnemc-sw-1a30ccc24dce"
    assert section_code(" 北京市", "海河流域", "鼓楼外大街 ") == expected
    assert len(expected) <= 32  # the registry's site code


def test_water_body_rule() -> None:
    assert water_body("浙江省", "小金山", []) == (LAKE, "listed")
    assert water_body("上海市", "急水港桥", ["chlorophyll_a"]) == (RIVER, "listed")
    assert water_body("江苏省", "某湖心", ["algal_density"]) == (LAKE, "algal analysers")
    assert water_body("江苏省", "某水库", ["TP"]) == (RIVER, "default")
    assert water_body("浙江省", "小金山", [], given=RIVER) == (RIVER, "given")
    with pytest.raises(ValueError, match="water body 'lake'"):
        water_body("浙江省", "小金山", [], given="lake")
    (record,) = read_release(_answer(GOOD), year=2025, water_bodies={_code(): LAKE})
    assert (record.water_body, record.water_body_basis) == (LAKE, "given")


def _code() -> str:
    return section_code("江苏省", "太湖流域", "某断面")


def test_validation_of_a_small_release_and_of_the_generic_layout(tmp_path: Path) -> None:
    # TP 0.0449: river II, lake III; DO 5.5: III → III either way. Published III.
    path = tmp_path / "release.json"
    path.write_bytes(_answer(GOOD, _with(4, "2"), _with(4, "-1")))
    report = validate_water_file(path, year=2025)
    assert (report.compared, report.matched, report.unclassified) == (2, 1, 1)
    assert report.mismatches == {"published II, computed III": 1}
    (line,) = report.unexplained
    assert "row 2" in line and "DO=5.5" in line and "TN=--" in line
    generic = tmp_path / "generic.csv"
    generic.write_text("site,time,class,water_body,TP\nA,2024-01,III,lake-reservoir,0.04\n")
    assert not is_release(generic.read_bytes())
    report = validate_water_file(generic)
    assert (report.compared, report.matched, report.water_bodies) == (1, 1, {"lake-reservoir": 1})
