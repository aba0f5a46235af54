"""The records EcoHub exchanges with the tax authority for the environmental protection tax
(环境保护税涉税信息共享), as pure rules: eight kinds, their direction, fields, types, units and
keys; validation, the key that makes a re-imported record the same record, the period a record
belongs to (:func:`in_period`), CSV headers and JSON Schemas (draft 2020-12) for the
documentation (:mod:`ecohub.permits.exchange_docs` assembles them with the field tables).

What the texts say:

- 环境保护税法 第十五条 (read at
  http://www.cnsludge.com/wap/index.php?itemid=15082&moduleid=21&page=9): the two authorities
  build a 涉税信息共享平台; the environment side sends 排污许可、污染物排放数据、环境违法和
  受行政处罚情况, the tax side 纳税申报、税款入库、减免税额、欠缴税款以及风险疑点.
- 第二十条, as a tax bureau quotes it (http://guangdong.chinatax.gov.cn/hzhdzfgspt/qzsxxxb_phfj/
  2020-08/21/content_823dfa565131402d85127733178dd587.shtml): the tax office may ask for a
  review (提请复核) when a declaration is abnormal (纳税申报数据资料异常) or not filed in time
  (未按照规定期限办理纳税申报), and the environment side answers within fifteen days of
  receiving it (:func:`review_opinion_due`).
- 财税〔2018〕117号 四 (http://028sld.com/serviceInfo1163.html) asks the authorities to "规范涉税
  信息交换的数据项、交换频率和数据格式"; 税总办发〔2020〕30号 (http://www.fdctax.com/cms/hjbhs/
  52117.htm) speaks of 信息共享 and 比对复核. **No published specification of the platform's
  data items was found**, so the record layouts are EcoHub's own, format :data:`FORMAT_VERSION`.

Where a field is one of the tax forms', it carries the form's wording (``zh``) and says so
(``source``): the 环境保护税税源明细表 (fields (1)-(12) of 税源基础采集信息 and of 申报计算,
read at https://renrendoc.com/paper/197570814.html) and the 纳税申报计算表（大气污染物适用）
(https://m.zixin.com.cn/docdown/3978198.html: 污染物排放量（千克）, 污染当量值（千克）,
污染当量数; 税源编号 "由税务机关的征管系统根据纳税人的排放口信息赋予编号"). The other fields are
EcoHub's (``source`` = ``ecohub``).

Values: ``str`` (stripped, required ones non-empty), ``date`` (ISO ``YYYY-MM-DD``), ``month``
(``YYYY-MM``), ``decimal`` (exact, written as a string in JSON and CSV), ``int``. Codes are
checked where EcoHub writes them: credit codes (GB 32100) everywhere, permit numbers (HJ 608-2017)
and outlet codes (``DW001``) in the records the environment side sends; the tax side's outlet
numbers are taken as written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from ecohub.registry.source_code import validate_outlet_code, validate_source_code
from ecohub.registry.uscc import validate_uscc

FORMAT_VERSION = "ecohub-envtax-exchange/1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# 环境保护税法 第二十条: 生态环境主管部门应当自收到税务机关的数据资料之日起十五日内出具复核意见.
REVIEW_OPINION_DAYS = 15

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DECIMAL_PATTERN = r"^-?\d+(\.\d+)?$"


class Direction(StrEnum):
    ENV_TO_TAX = "env→tax"
    TAX_TO_ENV = "tax→env"


class Kind(StrEnum):
    PERMIT = "permit"  # 排污许可
    MONITORING = "supervisory_monitoring"  # 监督性监测
    PENALTY = "penalty"  # 行政处罚
    REVIEW_REQUEST = "review_request"  # 复核提请
    REVIEW_OPINION = "review_opinion"  # 复核意见
    TAX_SOURCE = "tax_source"  # 基础税源信息
    DECLARATION = "declaration"  # 纳税申报
    TREASURY = "treasury"  # 入库


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # str, date, month, decimal, int
    required: bool
    zh: str
    unit: str | None = None
    choices: tuple[str, ...] | None = None
    check: str | None = None  # uscc, permit_no, outlet_code
    source: str = "ecohub"


@dataclass(frozen=True)
class RecordKind:
    kind: Kind
    zh: str
    direction: Direction
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    basis: str  # the clause that names the kind of information


def _f(name: str, type_: str, required: bool, zh: str, **extra: Any) -> Field:
    return Field(name, type_, required, zh, **extra)


_FORM = "环境保护税税源明细表"
_CALC = "环境保护税纳税申报计算表"
CONCENTRATION = "mg/m³ (大气) or mg/L (水)"
CATEGORIES = ("大气污染物", "水污染物", "固体废物", "噪声")  # 税源明细表 (6)
# 申报计算表 第5栏 and 税源明细表 (10); 抽样测算 from 财税〔2018〕117号.
METHODS = ("自动监测", "监测机构监测", "排污系数", "物料衡算", "抽样测算")

_UNIT = (
    _f("uscc", "str", True, "统一社会信用代码", check="uscc"),
    _f("unit_name", "str", True, "单位名称"),
)
_TAXPAYER = (
    _f("uscc", "str", True, "纳税人识别号（统一社会信用代码）", check="uscc", source=_FORM),
    _f("taxpayer_name", "str", True, "纳税人名称", source=_FORM),
)

KINDS: Mapping[Kind, RecordKind] = {
    Kind.PERMIT: RecordKind(
        Kind.PERMIT,
        "排污许可",
        Direction.ENV_TO_TAX,
        ("permit_no", "version"),
        (
            _f("permit_no", "str", True, "排污许可证编号", check="permit_no"),
            _f("version", "int", True, "版本（每次核发、变更、延续加一）"),
            *_UNIT,
            _f("management_class", "str", True, "管理类别", choices=("重点管理", "简化管理")),
            _f("issuer", "str", True, "核发机关"),
            _f("issued_on", "date", True, "核发日期"),
            _f("valid_from", "date", True, "有效期起"),
            _f("valid_to", "date", True, "有效期止"),
            _f("status", "str", True, "状态", choices=("有效", "变更", "延续", "撤销", "注销")),
            _f("division", "str", False, "生产经营所在区划"),
        ),
        "环境保护税法 第十五条: 排污许可",
    ),
    Kind.MONITORING: RecordKind(
        Kind.MONITORING,
        "监督性监测",
        Direction.ENV_TO_TAX,
        ("report_no", "outlet_code", "pollutant"),
        (
            _f("report_no", "str", True, "监测报告编号"),
            *_UNIT,
            _f("permit_no", "str", False, "排污许可证编号", check="permit_no"),
            _f("outlet_code", "str", True, "排放口编号", check="outlet_code"),
            _f("pollutant", "str", True, "污染物名称"),
            _f("sampled_on", "date", True, "采样日期"),
            _f("concentration", "decimal", True, "监测浓度", unit=CONCENTRATION),
            _f("limit", "decimal", False, "排放标准限值", unit=CONCENTRATION),
            _f("flow", "decimal", False, "废气（废水）流量", unit="m³/h"),
            _f("agency", "str", True, "监测机构"),
        ),
        "环境保护税法 第十五条: 污染物排放数据",
    ),
    Kind.PENALTY: RecordKind(
        Kind.PENALTY,
        "行政处罚",
        Direction.ENV_TO_TAX,
        ("decision_no",),
        (
            _f("decision_no", "str", True, "行政处罚决定书文号"),
            *_UNIT,
            _f("decided_on", "date", True, "处罚决定日期"),
            _f("violation", "str", True, "违法事实"),
            _f("legal_basis", "str", True, "处罚依据"),
            _f("fine", "decimal", False, "罚款金额", unit="元"),
            _f("violation_from", "date", False, "违法行为所属期起"),
            _f("violation_to", "date", False, "违法行为所属期止"),
            _f("outlet_code", "str", False, "排放口编号", check="outlet_code"),
        ),
        "环境保护税法 第十五条: 环境违法和受行政处罚情况; 财税〔2018〕117号 三（四）",
    ),
    Kind.REVIEW_REQUEST: RecordKind(
        Kind.REVIEW_REQUEST,
        "复核提请",
        Direction.TAX_TO_ENV,
        ("request_no",),
        (
            _f("request_no", "str", True, "提请复核编号"),
            *_TAXPAYER,
            _f(
                "reason",
                "str",
                True,
                "提请原因",
                choices=("纳税申报数据资料异常", "未按照规定期限办理纳税申报"),
            ),
            _f("period_from", "date", True, "税款所属期起"),
            _f("period_to", "date", True, "税款所属期止"),
            _f("tax_source_no", "str", False, "税源编号", source=_FORM),
            _f("pollutant", "str", False, "污染物名称", source=_FORM),
            _f("declared_quantity", "decimal", False, "申报污染物排放量", unit="kg"),
            _f("sent_on", "date", True, "提请日期"),
            _f("tax_office", "str", True, "主管税务机关"),
            _f("note", "str", False, "疑点说明"),
        ),
        "环境保护税法 第二十条",
    ),
    Kind.REVIEW_OPINION: RecordKind(
        Kind.REVIEW_OPINION,
        "复核意见",
        Direction.ENV_TO_TAX,
        ("request_no", "line"),
        (
            _f("request_no", "str", True, "提请复核编号"),
            _f("line", "int", True, "意见行号"),
            _f("uscc", "str", True, "统一社会信用代码", check="uscc"),
            _f("received_on", "date", True, "收到提请日期"),
            _f("replied_on", "date", True, "出具复核意见日期"),
            _f(
                "conclusion",
                "str",
                True,
                "复核结论",
                choices=("申报属实", "调整排放量", "无法核实"),
            ),
            _f("tax_source_no", "str", False, "税源编号", source=_FORM),
            _f("pollutant", "str", False, "污染物名称"),
            _f("reviewed_quantity", "decimal", False, "复核污染物排放量", unit="kg"),
            _f("opinion", "str", True, "复核意见"),
        ),
        "环境保护税法 第二十条",
    ),
    Kind.TAX_SOURCE: RecordKind(
        Kind.TAX_SOURCE,
        "基础税源信息",
        Direction.TAX_TO_ENV,
        ("uscc", "tax_source_no"),
        (
            *_TAXPAYER,
            _f("tax_source_no", "str", True, "税源编号（1）", source=_FORM),
            _f("permit_no", "str", False, "排污许可证编号", source=_FORM),
            _f("division", "str", True, "生产经营所在区划", source=_FORM),
            _f("outlet_no", "str", False, "排放口编号（2）", source=_FORM),
            _f("outlet_name", "str", True, "排放口名称或噪声源名称（3）", source=_FORM),
            _f("street", "str", True, "生产经营所在街乡（4）", source=_FORM),
            _f("valid_from", "date", True, "有效期起（5）", source=_FORM),
            _f("valid_to", "date", False, "有效期止（5）", source=_FORM),
            _f("category", "str", True, "污染物类别（6）", choices=CATEGORIES, source=_FORM),
            _f("water_class", "str", False, "水污染物种类（7）", source=_FORM),
            _f("pollutant", "str", True, "污染物名称（8）", source=_FORM),
            _f("method", "str", True, "污染物排放量计算方法（10）", choices=METHODS, source=_FORM),
            _f("standard", "str", False, "执行标准（11）", source=_FORM),
            _f(
                "standard_concentration",
                "decimal",
                False,
                "标准浓度值（12）",
                unit=CONCENTRATION,
                source=_FORM,
            ),
        ),
        "环境保护税法 第十五条 (纳税人信息); 环境保护税税源明细表",
    ),
    Kind.DECLARATION: RecordKind(
        Kind.DECLARATION,
        "纳税申报",
        Direction.TAX_TO_ENV,
        ("uscc", "month", "tax_source_no", "pollutant"),
        (
            _f("uscc", "str", True, "纳税人识别号（统一社会信用代码）", check="uscc", source=_FORM),
            _f("tax_source_no", "str", True, "税源编号（1）", source=_FORM),
            _f("month", "month", True, "税款所属月份（2）", source=_FORM),
            _f("outlet_name", "str", True, "排放口名称或噪声源名称（3）", source=_FORM),
            _f("category", "str", True, "污染物类别（4）", choices=CATEGORIES, source=_FORM),
            _f("pollutant", "str", True, "污染物名称（6）", source=_FORM),
            _f("method", "str", True, "污染物排放量计算方法（8）", choices=METHODS, source=_FORM),
            _f(
                "discharge_volume",
                "decimal",
                False,
                "废气（废水）排放量（9）",
                unit="万标立方米 (废气) or 吨 (废水)",
                source=_FORM,
            ),
            _f(
                "mean_concentration",
                "decimal",
                False,
                "月均浓度（11）",
                unit=CONCENTRATION,
                source=_FORM,
            ),
            _f(
                "max_concentration",
                "decimal",
                False,
                "最高浓度（12）",
                unit=CONCENTRATION,
                source=_FORM,
            ),
            _f("quantity", "decimal", True, "污染物排放量", unit="kg", source=_CALC),
            _f("equivalent_value", "decimal", False, "污染当量值", unit="kg", source=_CALC),
            _f("equivalents", "decimal", False, "污染当量数", source=_CALC),
            _f("tax_payable", "decimal", True, "本期应纳税额", unit="元"),
            _f("tax_reduced", "decimal", False, "本期减免税额", unit="元"),
            _f("declared_on", "date", True, "申报日期"),
        ),
        "环境保护税法 第十五条: 纳税申报、减免税额",
    ),
    Kind.TREASURY: RecordKind(
        Kind.TREASURY,
        "入库",
        Direction.TAX_TO_ENV,
        ("uscc", "voucher_no"),
        (
            _f("uscc", "str", True, "纳税人识别号（统一社会信用代码）", check="uscc"),
            _f("voucher_no", "str", True, "税票号码"),
            _f("period_from", "date", True, "税款所属期起"),
            _f("period_to", "date", True, "税款所属期止"),
            _f("amount", "decimal", True, "实缴（入库）金额", unit="元"),
            _f("paid_on", "date", True, "入库日期"),
            _f("arrears", "decimal", False, "欠缴税款", unit="元"),
        ),
        "环境保护税法 第十五条: 税款入库、欠缴税款",
    ),
}

# Pairs of fields whose first may not come after the second.
_ORDERED = (
    ("valid_from", "valid_to"),
    ("period_from", "period_to"),
    ("violation_from", "violation_to"),
    ("received_on", "replied_on"),
)


def record_kind(kind: Kind | str) -> RecordKind:
    """The layout of one kind of record."""
    try:
        return KINDS[Kind(kind)]
    except ValueError:
        names = ", ".join(k.value for k in Kind)
        raise ValueError(f"kind must be one of {names}; got {kind!r}") from None


def _fail(kind: RecordKind, field: str, why: str) -> ValueError:
    return ValueError(f"{kind.kind.value} ({kind.zh}): field {field!r} {why}")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError("is not a number") from None
    if not number.is_finite():
        raise ValueError("is not a finite number")
    return number


def _typed(field: Field, value: Any) -> Any:
    """``value`` as ``field``'s type; ValueError with the reason (the caller names the field)."""
    if field.type == "str":
        if not isinstance(value, str):
            raise ValueError(f"must be text; got {type(value).__name__}")
        return value.strip()
    if field.type == "date":
        if isinstance(value, dt.datetime):
            raise ValueError("must be a date, not a date and time")
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD; got {value!r}") from None
    if field.type == "month":
        text = str(value).strip()
        if not _MONTH.match(text):
            raise ValueError(f"must be a month YYYY-MM; got {value!r}")
        return text
    if field.type == "decimal":
        return _decimal(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a whole number; got {value!r}")
    text = str(value).strip()
    if not re.fullmatch(r"-?\d+", text):
        raise ValueError(f"must be a whole number; got {value!r}")
    return int(text)


_CHECKS = {
    "uscc": validate_uscc,
    "permit_no": validate_source_code,
    "outlet_code": validate_outlet_code,
}


def _field_value(kind: RecordKind, field: Field, raw: Any) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if field.required:
            raise _fail(kind, field.name, "is required")
        return None
    try:
        value = _typed(field, raw)
        if field.check:
            value = _CHECKS[field.check](value)
    except ValueError as error:
        raise _fail(kind, field.name, str(error)) from None
    if field.choices and value not in field.choices:
        raise _fail(kind, field.name, f"must be one of {', '.join(field.choices)}; got {value!r}")
    if field.type == "decimal" and value < 0:
        raise _fail(kind, field.name, f"must be >= 0; got {value}")
    return value


def validate(kind: Kind | str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record normalised (text stripped, codes upper case, dates as ``date``, decimals as
    ``Decimal``, missing optional fields ``None``), its fields in the layout's order. Raises
    ValueError naming the kind and the field: a missing or ill-typed field, a field the kind
    does not have, a range whose end comes before its start."""
    layout = record_kind(kind)
    names = {f.name for f in layout.fields}
    unknown = sorted(set(record) - names)
    if unknown:
        raise _fail(layout, unknown[0], "is not a field of this kind")
    found = {f.name: _field_value(layout, f, record.get(f.name)) for f in layout.fields}
    for first, second in _ORDERED:
        if found.get(first) and found.get(second) and found[second] < found[first]:
            raise _fail(layout, second, f"{found[second]} is before {first} {found[first]}")
    return found


def key_of(kind: Kind | str, record: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes ``record`` the same record on re-import: the kind's key fields, normalised
    (a credit code in lower case and with spaces gives the same key)."""
    layout = record_kind(kind)
    found = validate(layout.kind, record)
    return tuple(found[name] for name in layout.key)


def csv_header(kind: Kind | str) -> list[str]:
    """The column names of a CSV file of one kind, in the layout's order."""
    return [f.name for f in record_kind(kind).fields]


def to_json(kind: Kind | str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The record validated and written for JSON: dates ISO, decimals as strings (exact),
    missing optional fields left out."""
    found = validate(kind, record)
    out: dict[str, Any] = {}
    for name, value in found.items():
        if value is None:
            continue
        if isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[name] = value
    return out


def _property(field: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": field.zh}
    if field.type == "int":
        schema["type"] = "integer"
    else:
        schema["type"] = "string"
        if field.type == "date":
            schema["format"] = "date"
            schema["pattern"] = r"^\d{4}-\d{2}-\d{2}$"
        elif field.type == "month":
            schema["pattern"] = _MONTH.pattern
        elif field.type == "decimal":
            schema["pattern"] = _DECIMAL_PATTERN
        else:
            schema["minLength"] = 1
    if field.choices:
        schema["enum"] = list(field.choices)
    notes = [f"EcoHub type {field.type}"]
    if field.unit:
        notes.append(f"unit {field.unit}")
    if field.check:
        notes.append(f"checked as {field.check}")
    notes.append(f"source {field.source}")
    schema["description"] = "; ".join(notes)
    return schema


def json_schema(kind: Kind | str) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of one kind as :func:`to_json` writes it, for the docs.
    Code checks (credit code, permit number, outlet code) and date order are :func:`validate`'s,
    not the schema's."""
    layout = record_kind(kind)
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:ecohub:{FORMAT_VERSION}:{layout.kind.value}",
        "title": f"{layout.zh} ({layout.kind.value})",
        "description": (
            f"{layout.direction.value}; key {', '.join(layout.key)}; basis {layout.basis}; "
            f"format {FORMAT_VERSION}"
        ),
        "type": "object",
        "properties": {f.name: _property(f) for f in layout.fields},
        "required": [f.name for f in layout.fields if f.required],
        "additionalProperties": False,
    }


# The fields that place a record in an export's period: (first, last) days of what it covers;
# one field twice for a day, last None for an open end; a month covers all its days.
PERIOD_FIELDS: Mapping[Kind, tuple[str, str | None]] = {
    Kind.PERMIT: ("valid_from", "valid_to"),
    Kind.MONITORING: ("sampled_on", "sampled_on"),
    Kind.PENALTY: ("decided_on", "decided_on"),
    Kind.REVIEW_REQUEST: ("sent_on", "sent_on"),
    Kind.REVIEW_OPINION: ("replied_on", "replied_on"),
    Kind.TAX_SOURCE: ("valid_from", "valid_to"),
    Kind.DECLARATION: ("month", "month"),
    Kind.TREASURY: ("period_from", "period_to"),
}


def _day(value: Any, end: bool) -> dt.date:
    text = str(value)
    if _MONTH.match(text):
        first = dt.date.fromisoformat(f"{text}-01")
        if not end:
            return first
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - dt.timedelta(days=1)
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(text)


def in_period(kind: Kind | str, record: Mapping[str, Any], first: dt.date, last: dt.date) -> bool:
    """Whether ``record`` (as :func:`validate` or :func:`to_json` gives it) belongs to the
    period ``first``..``last``: its day falls in it, or its range (:data:`PERIOD_FIELDS`)
    shares a day with it."""
    start_field, end_field = PERIOD_FIELDS[record_kind(kind).kind]
    start = _day(record[start_field], end=False)
    end_value = record.get(end_field) if end_field else None
    end = _day(end_value, end=True) if end_value else dt.date.max
    return start <= last and end >= first


def review_opinion_due(received_on: dt.date) -> dt.date:
    """The last day of the environment side's review opinion (环境保护税法 第二十条: 十五日内 of
    receiving the request; the day of receipt not counted). A last day on a rest day is not
    moved here."""
    return received_on + dt.timedelta(days=REVIEW_OPINION_DAYS)
