"""The records exchanged with the tax authority (ecohub/permits/exchange_schema.py): valid
records of every kind pass, each bad field is named with its kind, keys are stable, and the
JSON Schemas accept what ``to_json`` writes."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest

from ecohub.permits import exchange_docs
from ecohub.permits import exchange_schema as xs
from ecohub.permits.exchange_schema import Direction, Kind

USCC = "91130200699229617X"  # HJ 608-2017 annex A's unit
PERMIT = "91130200699229617X001P"

EXAMPLES: dict[Kind, dict[str, Any]] = {
    Kind.PERMIT: {
        "permit_no": PERMIT,
        "version": "2",
        "uscc": USCC,
        "unit_name": "河钢股份有限公司唐山分公司",
        "management_class": "重点管理",
        "issuer": "唐山市生态环境局",
        "issued_on": "2023-06-01",
        "valid_from": "2023-06-01",
        "valid_to": "2028-05-31",
        "status": "有效",
    },
    Kind.MONITORING: {
        "report_no": "JC-2024-0311",
        "uscc": USCC,
        "unit_name": "河钢股份有限公司唐山分公司",
        "outlet_code": "DA001",
        "pollutant": "二氧化硫",
        "sampled_on": "2024-03-11",
        "concentration": "23.5",
        "limit": "35",
        "agency": "唐山市生态环境监测中心",
    },
    Kind.PENALTY: {
        "decision_no": "唐环罚〔2024〕12号",
        "uscc": USCC,
        "unit_name": "河钢股份有限公司唐山分公司",
        "decided_on": "2024-04-02",
        "violation": "超标排放大气污染物",
        "legal_basis": "大气污染防治法 第九十九条",
        "fine": "200000",
        "violation_from": "2024-02-01",
        "violation_to": "2024-02-29",
    },
    Kind.REVIEW_REQUEST: {
        "request_no": "FH-2024-007",
        "uscc": USCC,
        "taxpayer_name": "河钢股份有限公司唐山分公司",
        "reason": "纳税申报数据资料异常",
        "period_from": "2024-01-01",
        "period_to": "2024-03-31",
        "declared_quantity": "1200.5",
        "sent_on": "2024-04-20",
        "tax_office": "国家税务总局唐山市税务局",
    },
    Kind.REVIEW_OPINION: {
        "request_no": "FH-2024-007",
        "line": 1,
        "uscc": USCC,
        "received_on": "2024-04-22",
        "replied_on": "2024-05-06",
        "conclusion": "调整排放量",
        "pollutant": "二氧化硫",
        "reviewed_quantity": "1530",
        "opinion": "按自动监测数据核定",
    },
    Kind.TAX_SOURCE: {
        "uscc": USCC,
        "taxpayer_name": "河钢股份有限公司唐山分公司",
        "tax_source_no": "S13020000001",
        "division": "130203",
        "outlet_name": "烧结机头排气筒",
        "street": "唐山市路北区",
        "valid_from": "2024-01-01",
        "category": "大气污染物",
        "pollutant": "二氧化硫",
        "method": "自动监测",
        "standard_concentration": "35",
    },
    Kind.DECLARATION: {
        "uscc": USCC,
        "tax_source_no": "S13020000001",
        "month": "2024-03",
        "outlet_name": "烧结机头排气筒",
        "category": "大气污染物",
        "pollutant": "二氧化硫",
        "method": "自动监测",
        "quantity": "1200.5",
        "equivalent_value": "0.95",
        "equivalents": "1263.68",
        "tax_payable": "6065.66",
        "declared_on": "2024-04-12",
    },
    Kind.TREASURY: {
        "uscc": USCC,
        "voucher_no": "313020024000001234",
        "period_from": "2024-01-01",
        "period_to": "2024-03-31",
        "amount": "18196.98",
        "paid_on": "2024-04-15",
    },
}


def test_every_kind_has_an_example_and_the_eight_kinds_are_there():
    assert set(EXAMPLES) == set(Kind) == set(xs.KINDS)
    assert len(Kind) == 8


def test_directions():
    env = {k for k, layout in xs.KINDS.items() if layout.direction is Direction.ENV_TO_TAX}
    assert env == {Kind.PERMIT, Kind.MONITORING, Kind.PENALTY, Kind.REVIEW_OPINION}


@pytest.mark.parametrize("kind", list(Kind))
def test_valid_records_pass_and_are_normalised(kind: Kind):
    found = xs.validate(kind, EXAMPLES[kind])
    assert list(found) == xs.csv_header(kind)
    for field in xs.KINDS[kind].fields:
        value = found[field.name]
        if value is None:
            assert not field.required
            continue
        expected = {"str": str, "month": str, "date": dt.date, "decimal": Decimal, "int": int}
        assert isinstance(value, expected[field.type]), field.name


def test_normalisation():
    record = dict(EXAMPLES[Kind.PERMIT], uscc=" 91130200699229617x ", version=" 2 ")
    found = xs.validate("permit", record)
    assert found["uscc"] == USCC
    assert found["version"] == 2
    assert found["valid_to"] == dt.date(2028, 5, 31)
    assert found["division"] is None
    assert xs.validate(Kind.MONITORING, EXAMPLES[Kind.MONITORING])["concentration"] == Decimal(
        "23.5"
    )


def _bad(kind: Kind, **changes: Any) -> dict[str, Any]:
    record = dict(EXAMPLES[kind])
    for name, value in changes.items():
        if value is _DROP:
            record.pop(name, None)
        else:
            record[name] = value
    return record


_DROP = object()


@pytest.mark.parametrize(
    ("kind", "field", "value", "why"),
    [
        (Kind.PERMIT, "permit_no", _DROP, "is required"),
        (Kind.PERMIT, "permit_no", "91130200699229617X001", "character"),
        (Kind.PERMIT, "version", "two", "whole number"),
        (Kind.PERMIT, "uscc", "91130200699229617Y", "check"),
        (Kind.PERMIT, "management_class", "登记管理", "must be one of"),
        (Kind.PERMIT, "valid_from", "2023/06/01", "YYYY-MM-DD"),
        (Kind.MONITORING, "outlet_code", "DX001", "DX001"),
        (Kind.MONITORING, "concentration", "n/a", "not a number"),
        (Kind.MONITORING, "concentration", "NaN", "finite"),
        (Kind.MONITORING, "concentration", "-1", ">= 0"),
        (Kind.PENALTY, "decided_on", dt.datetime(2024, 4, 2, 9), "not a date and time"),
        (Kind.PENALTY, "fine", True, "not a number"),
        (Kind.REVIEW_REQUEST, "reason", "其他", "must be one of"),
        (Kind.REVIEW_REQUEST, "tax_office", "  ", "is required"),
        (Kind.REVIEW_OPINION, "line", 1.5, "whole number"),
        (Kind.TAX_SOURCE, "method", "估算", "must be one of"),
        (Kind.TAX_SOURCE, "category", _DROP, "is required"),
        (Kind.DECLARATION, "month", "2024-13", "YYYY-MM"),
        (Kind.DECLARATION, "quantity", None, "is required"),
        (Kind.TREASURY, "amount", 3, None),  # valid: an int is a decimal
        (Kind.TREASURY, "voucher_no", 313020024000001234, "must be text"),
    ],
)
def test_each_bad_field_is_named(kind: Kind, field: str, value: Any, why: str | None):
    record = _bad(kind, **{field: value})
    if why is None:
        xs.validate(kind, record)
        return
    layout = xs.KINDS[kind]
    pattern = rf"^{kind.value} \({layout.zh}\): field '{field}' .*{re.escape(why)}"
    with pytest.raises(ValueError, match=pattern):
        xs.validate(kind, record)


def test_an_unknown_field_and_an_unknown_kind_are_named():
    with pytest.raises(ValueError, match=r"permit \(排污许可\): field 'colour' is not a field"):
        xs.validate("permit", dict(EXAMPLES[Kind.PERMIT], colour="green"))
    with pytest.raises(ValueError, match="kind must be one of permit"):
        xs.validate("invoice", {})


def test_ranges_in_order():
    with pytest.raises(ValueError, match=r"field 'valid_to' 2022-01-01 is before valid_from"):
        xs.validate("permit", dict(EXAMPLES[Kind.PERMIT], valid_to="2022-01-01"))
    with pytest.raises(ValueError, match=r"field 'replied_on'"):
        xs.validate("review_opinion", dict(EXAMPLES[Kind.REVIEW_OPINION], replied_on="2024-04-01"))


def test_keys_are_stable():
    permit = EXAMPLES[Kind.PERMIT]
    assert xs.key_of("permit", permit) == (PERMIT, 2)
    respelled = dict(permit, permit_no=PERMIT.lower(), version=2, issuer=" 唐山市生态环境局 ")
    assert xs.key_of("permit", respelled) == xs.key_of("permit", permit)
    # a changed value outside the key is the same record; a changed key field is another one
    assert xs.key_of("permit", dict(permit, status="变更")) == (PERMIT, 2)
    assert xs.key_of("permit", dict(permit, version=3)) == (PERMIT, 3)
    assert xs.key_of("declaration", EXAMPLES[Kind.DECLARATION]) == (
        USCC,
        "2024-03",
        "S13020000001",
        "二氧化硫",
    )
    assert (
        xs.key_of("supervisory_monitoring", dict(EXAMPLES[Kind.MONITORING], outlet_code="da001"))[1]
        == "DA001"
    )


def test_csv_header():
    assert xs.csv_header("treasury") == [
        "uscc",
        "voucher_no",
        "period_from",
        "period_to",
        "amount",
        "paid_on",
        "arrears",
    ]
    for kind in Kind:
        header = xs.csv_header(kind)
        assert len(header) == len(set(header))
        assert set(xs.KINDS[kind].key) <= set(header)


def test_a_csv_row_of_strings_validates():
    # every value as read from a CSV file: text, optional fields empty
    header = xs.csv_header("declaration")
    row = {name: str(EXAMPLES[Kind.DECLARATION].get(name, "")) for name in header}
    assert xs.validate("declaration", row)["tax_reduced"] is None


def test_json_schema_structure():
    for kind in Kind:
        schema = xs.json_schema(kind)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert list(schema["properties"]) == xs.csv_header(kind)
        assert set(schema["required"]) == {f.name for f in xs.KINDS[kind].fields if f.required}
    amount = xs.json_schema("treasury")["properties"]["amount"]
    assert amount["type"] == "string" and "unit 元" in amount["description"]
    assert xs.json_schema("review_opinion")["properties"]["line"]["type"] == "integer"


def _schema_accepts(schema: dict[str, Any], instance: dict[str, Any]) -> bool:
    """Draft 2020-12 by jsonschema-rs when installed (schemathesis brings it), else the
    structure by hand: required present, no other properties, types, enums and patterns."""
    try:
        import jsonschema_rs
    except ImportError:
        pass
    else:
        return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(instance))
    if set(instance) - set(schema["properties"]) or set(schema["required"]) - set(instance):
        return False
    for name, value in instance.items():
        spec = schema["properties"][name]
        if spec["type"] == "integer" and not isinstance(value, int):
            return False
        if spec["type"] == "string" and not (
            isinstance(value, str) and re.search(spec.get("pattern", ""), value)
        ):
            return False
        if "enum" in spec and value not in spec["enum"]:
            return False
    return True


@pytest.mark.parametrize("kind", list(Kind))
def test_the_json_schema_accepts_the_examples(kind: Kind):
    schema = xs.json_schema(kind)
    written = xs.to_json(kind, EXAMPLES[kind])
    assert _schema_accepts(schema, written)
    assert not _schema_accepts(schema, dict(written, extra="x"))
    required = schema["required"][0]
    assert not _schema_accepts(schema, {k: v for k, v in written.items() if k != required})


def test_to_json_keeps_decimals_exact_and_drops_empty_fields():
    written = xs.to_json("declaration", EXAMPLES[Kind.DECLARATION])
    assert written["tax_payable"] == "6065.66"
    assert written["declared_on"] == "2024-04-12"
    assert "tax_reduced" not in written


def test_review_opinion_due_fifteen_days_after_receipt():
    # 环境保护税法 第二十条: 十五日内; the day of receipt not counted.
    assert xs.review_opinion_due(dt.date(2024, 4, 22)) == dt.date(2024, 5, 7)


def test_format_version():
    assert xs.FORMAT_VERSION == "ecohub-envtax-exchange/1"


def test_schema_document_holds_each_kind_and_validates_a_line_of_each():
    import jsonschema_rs

    document = exchange_docs.schema_document()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["properties"]["format"] == {"const": "ecohub-envtax-exchange/1"}
    assert document["$defs"] == {kind.value: xs.json_schema(kind) for kind in Kind}
    validator = jsonschema_rs.Draft202012Validator(document)
    for kind in Kind:
        line = {
            "format": xs.FORMAT_VERSION,
            "kind": kind.value,
            "record": xs.to_json(kind, EXAMPLES[kind]),
        }
        assert validator.is_valid(line), kind
        assert not validator.is_valid(dict(line, format="ecohub-envtax-exchange/2"))
        # a record under another kind's name fails that kind's schema
        other = Kind.TREASURY if kind is not Kind.TREASURY else Kind.PERMIT
        assert not validator.is_valid(dict(line, kind=other.value)), kind


@pytest.mark.parametrize(
    ("kind", "record", "first", "last", "inside"),
    [
        # a day: in on the period's first and last day, out the day before and after
        (Kind.PENALTY, {"decided_on": "2024-04-01"}, "2024-04-01", "2024-04-30", True),
        (Kind.PENALTY, {"decided_on": "2024-04-30"}, "2024-04-01", "2024-04-30", True),
        (Kind.PENALTY, {"decided_on": "2024-03-31"}, "2024-04-01", "2024-04-30", False),
        (Kind.PENALTY, {"decided_on": "2024-05-01"}, "2024-04-01", "2024-04-30", False),
        # a month covers its days: February 2024 has 29 (a leap year)
        (Kind.DECLARATION, {"month": "2024-02"}, "2024-02-29", "2024-03-31", True),
        (Kind.DECLARATION, {"month": "2023-02"}, "2023-03-01", "2023-03-31", False),
        (Kind.DECLARATION, {"month": "2024-12"}, "2024-12-31", "2025-01-31", True),
        # a range shares a day with the period, or not; an open end runs on
        (
            Kind.TREASURY,
            {"period_from": "2024-01-01", "period_to": "2024-03-31"},
            "2024-03-31",
            "2024-04-30",
            True,
        ),
        (
            Kind.TREASURY,
            {"period_from": "2024-01-01", "period_to": "2024-03-31"},
            "2024-04-01",
            "2024-04-30",
            False,
        ),
        (Kind.TAX_SOURCE, {"valid_from": "2020-01-01"}, "2031-01-01", "2031-01-31", True),
        (Kind.TAX_SOURCE, {"valid_from": "2031-02-01"}, "2031-01-01", "2031-01-31", False),
        (
            Kind.PERMIT,
            {"valid_from": dt.date(2023, 6, 1), "valid_to": dt.date(2028, 5, 31)},
            "2028-05-31",
            "2028-06-30",
            True,
        ),
    ],
)
def test_in_period(kind: Kind, record: dict[str, Any], first: str, last: str, inside: bool):
    found = xs.in_period(kind, record, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    assert found is inside


def test_the_field_tables_list_every_field_with_its_type_and_requirement():
    rows = exchange_docs.field_rows("treasury")
    assert [row["field"] for row in rows] == xs.csv_header("treasury")
    assert rows[4] == {
        "field": "amount",
        "type": "decimal",
        "required": "yes",
        "unit": "元",
        "meaning": "实缴（入库）金额",
        "source": "ecohub",
    }
    meaning = exchange_docs.field_rows("permit")[4]["meaning"]
    assert meaning == "管理类别; one of 重点管理 / 简化管理"
    text = exchange_docs.markdown_tables()
    assert text.count("#### ") == 8
    for kind in Kind:
        for name in xs.csv_header(kind):
            assert f"| `{name}` |" in text
    assert "| `arrears` | decimal | no | 元 | 欠缴税款 | ecohub |" in text
