"""Enterprise environmental credit against the texts that could be read (issue 27).

《企业环境信用评价办法（试行）》(环发〔2013〕150号) 附件1 "企业环境信用评价指标及评分方法（试行）":
only indicators 1-5 of 21 were found (a stored preview of the .doc), and the national grade
thresholds were not found in two searches (queries in docs/supervision.md), so the packaged
thresholds stay Guangzhou's (穗环〔2015〕210号). These tests pin what was read: the band
limits of indicator 1, where each row was read, which indicators the platform measures and
which the agency enters, the thresholds as stated and the direct-to-red rules.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from ecohub.supervision import credit
from ecohub.supervision import rules as r

HUDONG = "91310115MA1HDEM025"  # enterprise 2 of the demo registry


def test_indicator_1_bands_as_typed_from_annex_1() -> None:
    # 指标1 大气及水污染物达标排放 (15%): 第1档 "每个排污口监督性监测达标率在90%以上（含90%）",
    # 第2档 "达标率为75%（含75%）-90%", 第3档 "低于75%（低于50%为0分）".
    assert credit.compliance_band(1.0) == "1"
    assert credit.compliance_band(0.90) == "1"  # 含90%
    assert credit.compliance_band(0.8999) == "2"
    assert credit.compliance_band(0.75) == "2"  # 含75%
    assert credit.compliance_band(0.7499) == "3"
    assert credit.compliance_band(0.50) == "3"
    assert credit.compliance_band(0.4999) == 0  # 低于50%为0分
    # The bands score their floor: 第1档 80-100 → 80, 第2档 50-79 → 50, 第3档 0-49 → 0.
    assert [r.indicator_score(band) for band in ("1", "2", "3")] == [80, 50, 0]


def test_every_indicator_says_where_it_was_read_and_who_gives_its_result() -> None:
    indicators = r.credit_rules().indicators
    assert all("文档编号 764750" in item.source for item in indicators.values())
    measured = [key for key, item in indicators.items() if item.result_from == "measured"]
    assert measured == [credit.MEASURED_INDICATOR] == ["air_water_compliance"]
    assert {key for key, item in indicators.items() if item.result_from == "agency"} == {
        "general_solid_waste",
        "hazardous_waste",
        "noise",
        "siting_ecology",
    }
    # Four categories of 附件1; of the rows read, 1-4 are 污染防治 and 5 生态保护.
    assert {item.number: item.category for item in indicators.values()} == {
        1: "污染防治",
        2: "污染防治",
        3: "污染防治",
        4: "污染防治",
        5: "生态保护",
    }


def test_every_grade_rule_has_a_source() -> None:
    table = r.credit_rules()
    assert all(t.source for t in table.thresholds)
    assert all(rule.source.startswith("http") for rule in table.direct.values())


def test_guangzhou_thresholds_as_stated() -> None:
    # 穗环〔2015〕210号: 良好 80-100, 警示 60-79, 不良 60 分以下 (every indicator at one score:
    # the weighted mean is that score).
    keys = r.credit_rules().indicators
    assert r.credit_grade(dict.fromkeys(keys, 80)).grade == "blue"
    assert r.credit_grade(dict.fromkeys(keys, 79)).grade == "yellow"
    assert r.credit_grade(dict.fromkeys(keys, 60)).grade == "yellow"
    assert r.credit_grade(dict.fromkeys(keys, 59)).grade == "red"
    # 诚信 = 100 分且符合绿色附加指标2项及以上.
    assert r.credit_grade(dict.fromkeys(keys, 100), green_extras=2).grade == "green"
    assert r.credit_grade(dict.fromkeys(keys, 99), green_extras=2).grade == "blue"


def test_total_load_exceeded_is_red_whatever_the_scores() -> None:
    # 一票否决（五）"主要污染物排放总量超过控制指标的" → 直接评定为环保不良企业.
    keys = r.credit_rules().indicators
    grade = r.credit_grade(dict.fromkeys(keys, 100), {"total_load_exceeded"}, green_extras=3)
    assert (grade.grade, grade.score) == ("red", None)
    assert grade.name_zh == "环保不良企业（红牌）"
    assert "主要污染物排放总量超过控制指标的" in grade.explanation
    # 一票否决（二）as the 四平 reprint of the national list has it.
    text = r.credit_rules().direct["built_without_eia_approval"].text
    assert text.replace("，", ",") == "建设项目环境影响评价文件未按规定通过审批,擅自开工建设的"


@pytest.mark.usefixtures("points")
def test_a_rating_explains_who_gave_each_result(engine: Engine) -> None:
    # No data stored: indicator 1 cannot be measured, so the agency gives all five.
    given = {"air_water_compliance": "1", "general_solid_waste": "1", "hazardous_waste": 100}
    given |= {"noise": "2", "siting_ecology": "1"}
    rated = credit.rate(engine, HUDONG, 2024, "agency:t", given)
    rows = {row["key"]: row for row in rated["explanation"]["indicators"]}
    assert rows["air_water_compliance"]["result_from"] == "measured"
    assert rows["air_water_compliance"]["evidence"]["measured_hours"] == 0
    assert rows["noise"]["result_from"] == "agency"
    assert rows["noise"]["evidence"] == "agency finding"
    # (15×80 + 5×80 + 5×100 + 4×50 + 2×80) / 31 = 2460 / 31 = 79.35 → 警示 (60-79).
    assert rated["explanation"]["score"] == "79.35" and rated["grade"] == "yellow"
    assert Decimal(rated["explanation"]["score"]) < 80
