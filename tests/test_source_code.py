"""HJ 608-2017 fixed-source codes (permit numbers), outlet and treatment-facility codes,
checked on the codes the standard and the 2016 trial rules publish."""

from __future__ import annotations

import string

import pytest

from ecohub.registry.source_code import (
    OUTLET_ELEMENTS,
    SPECIAL_MARKS,
    TREATMENT_ELEMENTS,
    InvalidFacilityCode,
    InvalidSourceCode,
    build_source_code,
    is_valid_outlet_code,
    is_valid_source_code,
    is_valid_treatment_code,
    organisation_code_check_character,
    parse_outlet_code,
    parse_source_code,
    parse_treatment_code,
    validate_outlet_code,
    validate_source_code,
    validate_treatment_code,
)

# HJ 608-2017 annex A, tables A.1 and A.2: the two sites (南区, 北区) of 河钢股份有限公司
# 唐山分公司, credit code 91130200699229617X. The trial rules 《固定污染源（水、大气）编码
# 规则（试行）》 (2016) give "该排放口全国唯一代码为 911302307808371268001P…" for a steel
# company's ironmaking outlet; its first 22 characters are the fixed-source code.
PUBLISHED_CODES = [
    "91130200699229617X001P",  # HJ 608-2017 table A.1
    "91130200699229617X002P",  # HJ 608-2017 table A.2
    "911302307808371268001P",  # 2016 trial rules, figure 7 example
]
SEQUENCE_POSITIONS = range(18, 21)  # 0-based positions 19-21: no check covers them

# Credit codes published on business licences (typed again from tests/test_uscc.py).
REAL_USCCS = ["91350100M000100Y43", "914403001922038216", "9144030071526726XG"]


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_published_codes_are_valid(code: str) -> None:
    assert validate_source_code(code) == code
    assert is_valid_source_code(code)


def test_annex_a_parts() -> None:
    # Table A.1: 码位 1~18 credit code, 19-21 顺序码 001, 22 特别标识码 P.
    parts = parse_source_code("91130200699229617X001P")
    assert parts.main_code == "91130200699229617X"
    assert parts.uscc == "91130200699229617X"
    assert parts.main_form == "uscc"
    assert (parts.sequence, parts.mark) == ("001", "P")
    assert parse_source_code("91130200699229617X002P").sequence == "002"


def test_the_special_mark_is_not_a_check_character() -> None:
    # GB/T 17710 (ISO 7064) MOD 37,36 over positions 1-21 gives three different characters
    # for the three published codes, which all carry P: position 22 is a mark, not a check.
    alphabet = string.digits + string.ascii_uppercase

    def mod_37_36(text: str) -> str:
        product = 36
        for char in text:
            product = ((product + alphabet.index(char)) % 36 or 36) * 2 % 37
        return alphabet[(37 - product) % 36]

    assert [mod_37_36(code[:21]) for code in PUBLISHED_CODES] == ["A", "8", "Z"]
    assert {code[21] for code in PUBLISHED_CODES} == {"P"} == set(SPECIAL_MARKS)


def test_lower_case_and_spaces_are_normalised() -> None:
    assert validate_source_code("  91130200699229617x001p ") == "91130200699229617X001P"


@pytest.mark.parametrize("uscc", REAL_USCCS)
def test_codes_built_from_real_credit_codes(uscc: str) -> None:
    code = build_source_code(uscc, 1)
    assert code == uscc + "001P"
    assert parse_source_code(code).uscc == uscc
    assert build_source_code(uscc, 12).endswith("012P")


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_every_single_substitution_outside_the_sequence_is_detected(code: str) -> None:
    for position in range(22):
        for char in string.digits + string.ascii_uppercase + "*-":
            if char == code[position]:
                continue
            corrupted = code[:position] + char + code[position + 1 :]
            if position in SEQUENCE_POSITIONS and char.isdigit():
                # Another sequence number, the code of another site: nothing can tell.
                assert is_valid_source_code(corrupted), corrupted
            else:
                assert not is_valid_source_code(corrupted), corrupted


@pytest.mark.parametrize("code", PUBLISHED_CODES)
def test_every_adjacent_transposition_outside_the_sequence_is_detected(code: str) -> None:
    for position in range(21):
        if code[position] == code[position + 1]:
            continue
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        inside = position in SEQUENCE_POSITIONS and position + 1 in SEQUENCE_POSITIONS
        assert is_valid_source_code(swapped) == inside, swapped


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("91130200699229617X001", "has 21 characters, needs 22"),
        ("91130200699229617X0001P", "has 23 characters, needs 22"),
        ("91130200699229617I001P", r"main code \(positions 1-18\).*not in the GB 32100"),
        ("91130200699229617Y001P", r"main code .*check character is 'Y', expected 'X'"),
        ("91A30200699229617X001P", "main code .*administrative division code"),
        ("91130200699229617X0O1P", r"sequence part \(positions 19-21\).*'0O1'"),
        ("91130200699229617X001Q", r"position 22 is the special mark .*'P', got 'Q'"),
        ("91130200699229617X0011", "position 22 is the special mark"),
    ],
)
def test_bad_codes_say_why(code: str, message: str) -> None:
    with pytest.raises(InvalidSourceCode, match=message):
        validate_source_code(code)


def test_other_marks_only_when_the_caller_names_them() -> None:
    code = "91130200699229617X001Q"
    assert not is_valid_source_code(code)
    assert validate_source_code(code, marks={"P": "", "Q": ""}) == code


def test_organisation_check_character_on_codes_inside_credit_codes() -> None:
    # Positions 9-17 of a credit code are the unit's GB 11714 organisation code.
    for uscc in [*REAL_USCCS, "91130200699229617X", "911302307808371268"]:
        organisation = uscc[8:17]
        assert organisation_code_check_character(organisation[:8]) == organisation[8], uscc


def test_substitute_main_codes_of_the_trial_rules() -> None:
    # "H9" + division + "0000" + five-digit sequence + a letter (no o, i), or
    # "H9" + division + organisation code + a letter: built by hand from the clause.
    by_sequence = parse_source_code("H9110105000012345a001P")
    assert (by_sequence.main_form, by_sequence.uscc) == ("issuer-sequence", None)
    by_organisation = parse_source_code("H9110108551385082b002P")
    assert by_organisation.main_form == "organisation-code"
    assert by_organisation.main_code == "H9110108551385082b"
    # The letter is lower case whatever the case typed.
    assert validate_source_code("h9110108551385082B002p") == "H9110108551385082b002P"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("H9110105000012345o001P", "lower-case letter other than o and i, got 'o'"),
        ("H911010500001234Xa001P", "five-digit sequence"),
        ("H911A105000001234Xa01P", "six-digit division code"),
        ("H9110108551385083b002P", "organisation code '551385083' has check character '3'"),
    ],
)
def test_bad_substitute_codes_say_why(code: str, message: str) -> None:
    with pytest.raises(InvalidSourceCode, match=message):
        validate_source_code(code)


def test_outlet_codes() -> None:
    # Trial rules: "某钢铁联合有限责任公司炼铁行业某废水排放口代码为 DW001".
    outlet = parse_outlet_code("DW001")
    assert (outlet.kind, outlet.kind_zh, outlet.element, outlet.element_zh) == (
        "D",
        "排放口",
        "W",
        "水",
    )
    assert outlet.sequence == "001"
    assert validate_outlet_code(" da012 ") == "DA012"
    assert parse_outlet_code("DA012").element_zh == "气"
    assert dict(OUTLET_ELEMENTS) == {"A": "气", "W": "水"}  # HJ 608-2017 figure 6


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("DA01", "has 4 characters, needs 5"),
        ("DA0001", "has 6 characters, needs 5"),
        ("TA001", "must begin with 'D', got 'T'"),
        ("DN001", "element letter 'N' is not one of A 气, W 水"),
        ("DAO01", "three-digit sequence, got 'O01'"),
    ],
)
def test_bad_outlet_codes_say_why(code: str, message: str) -> None:
    assert not is_valid_outlet_code(code)
    with pytest.raises(InvalidFacilityCode, match=message):
        validate_outlet_code(code)


def test_treatment_facility_codes() -> None:
    # Trial rules figure 5: "T", "A" (空气), "001": 第1号空气治理设施.
    facility = parse_treatment_code("TA001")
    assert (facility.kind_zh, facility.element_zh, facility.sequence) == (
        "污染治理设施",
        "空气",
        "001",
    )
    assert [validate_treatment_code(f"T{letter}003") for letter in "AWNS"] == [
        "TA003",
        "TW003",
        "TN003",
        "TS003",
    ]
    assert set(TREATMENT_ELEMENTS) == {"A", "W", "N", "S"}
    assert not is_valid_treatment_code("DA001")
    with pytest.raises(InvalidFacilityCode, match="element letter 'X'"):
        validate_treatment_code("TX001")
