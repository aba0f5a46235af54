"""Unified social credit codes (统一社会信用代码) per GB 32100-2015.

A code has 18 characters: the registration authority (1), the organisation kind (1),
the GB/T 2260 administrative division of registration (6), the GB 11714 organisation
code (9) and a check character (1), all from a 31-character alphabet that leaves out
I, O, Z, S and V.
"""

from __future__ import annotations

# GB 32100-2015 table 3: the code characters and the value each stands for.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
# GB 32100-2015 clause 4.3: the weight of position i (1-based) is 3^(i-1) mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


class InvalidUSCC(ValueError):
    """A string that is not a valid unified social credit code; the message says why."""


def uscc_check_character(first17: str) -> str:
    """The check character for the first 17 characters of a code (GB 32100-2015, 4.3).

    C18 = 31 - MOD(Σ Ci × Wi, 31), with 31 written as ``0``.
    """
    if len(first17) != 17:
        raise InvalidUSCC(f"need 17 characters to compute a check character, got {len(first17)}")
    total = 0
    for position, (char, weight) in enumerate(zip(first17, WEIGHTS, strict=True), start=1):
        if char not in _VALUE:
            raise InvalidUSCC(f"character {char!r} at position {position} is not allowed")
        total += _VALUE[char] * weight
    return ALPHABET[(31 - total % 31) % 31]


def validate_uscc(code: str) -> str:
    """Return ``code`` normalised (stripped, upper case) if valid; raise ``InvalidUSCC``.

    Checks the length, the alphabet, the six-digit division code in positions 3–8 and
    the check character.
    """
    normalised = code.strip().upper()
    if len(normalised) != 18:
        raise InvalidUSCC(
            f"unified social credit code {code!r} has {len(normalised)} characters, needs 18"
        )
    for position, char in enumerate(normalised, start=1):
        if char not in _VALUE:
            raise InvalidUSCC(
                f"unified social credit code {code!r}: character {char!r} at position "
                f"{position} is not in the GB 32100-2015 alphabet (no I, O, Z, S, V)"
            )
    if not normalised[2:8].isdigit():
        raise InvalidUSCC(
            f"unified social credit code {code!r}: positions 3-8 must be the six-digit "
            f"administrative division code, got {normalised[2:8]!r}"
        )
    expected = uscc_check_character(normalised[:17])
    if normalised[17] != expected:
        raise InvalidUSCC(
            f"unified social credit code {code!r}: check character is {normalised[17]!r}, "
            f"expected {expected!r} (GB 32100-2015): a character is mistyped"
        )
    return normalised


def is_valid_uscc(code: str) -> bool:
    """True if ``code`` is a valid unified social credit code."""
    try:
        validate_uscc(code)
    except InvalidUSCC:
        return False
    return True
