"""GB 32100-2015 unified social credit codes, checked on real published codes."""

from __future__ import annotations

import pytest

from ecohub.registry.uscc import (
    ALPHABET,
    InvalidUSCC,
    is_valid_uscc,
    uscc_check_character,
    validate_uscc,
)

# Codes as published on business licences and in the national enterprise credit
# information publicity system. The first is the worked example of GB 32100-2015.
REAL_CODES = [
    "91350100M000100Y43",  # GB 32100-2015 example
    "914403001922038216",  # Huawei Technologies Co., Ltd.
    "9144030071526726XG",  # Shenzhen Tencent Computer Systems Co., Ltd.
    "91330100799655058B",  # Alibaba (China) Co., Ltd.
    "91110108551385082Q",  # Beijing Xiaomi Technology Co., Ltd.
    "91110000100006485K",
    "911100001011196640",
    "91110000710925462X",
]


def test_weights_are_those_of_the_standard() -> None:
    # GB 32100-2015 clause 4.3 lists the weights of positions 1-17.
    from ecohub.registry.uscc import WEIGHTS

    assert WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_codes_are_valid(code: str) -> None:
    assert validate_uscc(code) == code
    assert uscc_check_character(code[:17]) == code[17]


def test_lower_case_and_spaces_are_normalised() -> None:
    assert validate_uscc("  9144030071526726xg ") == "9144030071526726XG"


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_single_character_substitution_is_detected(code: str) -> None:
    for position in range(18):
        for char in ALPHABET + "IOZSV*a-":
            if char == code[position] or char.upper() == code[position]:
                continue
            corrupted = code[:position] + char + code[position + 1 :]
            assert not is_valid_uscc(corrupted), corrupted


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_adjacent_transposition_is_detected(code: str) -> None:
    for position in range(17):
        if code[position] == code[position + 1]:
            continue
        swapped = code[:position] + code[position + 1] + code[position] + code[position + 2 :]
        assert not is_valid_uscc(swapped), swapped


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("9144030071526726X", "has 17 characters, needs 18"),
        ("9144030071526726XI", "not in the GB 32100-2015 alphabet"),
        ("91A4030071526726XG", "administrative division code"),
        ("9144030071526726XH", "check character is 'H', expected 'G'"),
    ],
)
def test_bad_codes_say_why(code: str, message: str) -> None:
    with pytest.raises(InvalidUSCC, match=message):
        validate_uscc(code)
