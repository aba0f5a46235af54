"""Fixed-pollution-source codes (固定污染源代码) and the codes of their outlets and treatment
facilities, per HJ 608-2017 《排污单位编码规则》 and, where it is silent, the 2016 trial
rules for permits, 《固定污染源（水、大气）编码规则（试行）》 (附件4, 2016).

The fixed-source code, also the permit number (the trial rules: "固定污染源主码，也称为排污
许可证代码"), has 22 characters (HJ 608-2017 annex A, tables A.1 and A.2):

- positions 1-18: the unit's unified social credit code (GB 32100, checked with
  :func:`ecohub.registry.uscc.validate_uscc`);
- positions 19-21: the sequence code (顺序码) of the unit's fixed sources, three digits
  (the trial rules: "同一个统一社会信用代码单位的不同固定污染源的顺序号，使用3位阿拉伯数字");
- position 22: the special mark (特别标识码). Annex A's examples, the two sites of 河钢股份
  有限公司唐山分公司, are ``91130200699229617X001P`` and ``91130200699229617X002P``.

As far as the sources show, position 22 is not a computed check character. The trial
rules called it a 校验码 "使用1位阿拉伯数字或字母表示" but gave no algorithm; HJ 608-2017
calls it the special mark, and the three published codes (annex A's two and the trial
rules' ``911302307808371268001P``) all carry ``P`` although their first 21 characters
differ (GB/T 17710 MOD 37,36 over them gives A, 8 and Z). No check algorithm is
implemented: the 22nd character is checked against the marks the sources show
(:data:`SPECIAL_MARKS`, only ``P``; callers may pass others once a source defines them).
A mistyped sequence digit therefore goes undetected. HJ 608-2017 clause 2 cites
GB/T 17710; the clause that applies it was not found.

A unit without a credit code has a substitute main code (the trial rules; whether HJ
608-2017 keeps it was not confirmed): "H9", the issuing authority's six-digit GB/T 2260
division code, then either "0000" and a five-digit sequence within that division, or the
unit's nine-character GB 11714 organisation code, then one lower-case letter other than
o and i ("1位英文字母码（a~z，除o与i之外的24个小写英文字母）").

Outlets (HJ 608-2017 figure 6): "D" (Discharge outlet), an element letter ("Air的首字母A
表示气，Water的首字母W表示水") and a three-digit sequence within the fixed source, e.g.
``DW001``. Treatment facilities (trial rules figure 5): "T" (treatment), an element letter
(A 空气, W 水, N 噪声, S 固体废物) and a three-digit sequence, e.g. ``TA001``. Production
facility codes (six characters: an identifier and a sequence) and monitoring-point codes
are not implemented: their letters were not found in the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ecohub.registry.uscc import InvalidUSCC, validate_uscc

SOURCE_CODE_LENGTH = 22
# HJ 608-2017 annex A, tables A.1 and A.2: position 22, 特别标识码. The sources give no
# meaning for the letter, only that the published codes carry it.
SPECIAL_MARKS: Mapping[str, str] = {"P": "特别标识码（HJ 608-2017 附录A 示例所用）"}

# Trial rules: the substitute main code's last letter, a-z without o and i.
SUBSTITUTE_LETTERS = frozenset("abcdefghjklmnpqrstuvwxyz")
SUBSTITUTE_PREFIX = "H9"
# GB 11714-1997: the organisation code's characters (value = index) and weights of 1-8.
ORGANISATION_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ORGANISATION_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

FACILITY_KINDS: Mapping[str, str] = {"D": "排放口", "T": "污染治理设施"}
# HJ 608-2017 figure 6: the outlet's element letter.
OUTLET_ELEMENTS: Mapping[str, str] = {"A": "气", "W": "水"}
# Trial rules figure 5: the treatment facility's element letter.
TREATMENT_ELEMENTS: Mapping[str, str] = {"A": "空气", "W": "水", "N": "噪声", "S": "固体废物"}

MainCodeForm = Literal["uscc", "organisation-code", "issuer-sequence"]


class InvalidSourceCode(ValueError):
    """A string that is not a valid fixed-source code; the message names the failing part."""


class InvalidFacilityCode(ValueError):
    """A string that is not a valid outlet or treatment-facility code; the message says why."""


@dataclass(frozen=True)
class SourceCode:
    """The parts of a fixed-source code (HJ 608-2017 annex A)."""

    main_code: str  # positions 1-18: the credit code, or the substitute code
    sequence: str  # positions 19-21
    mark: str  # position 22, the special mark
    main_form: MainCodeForm

    @property
    def code(self) -> str:
        return self.main_code + self.sequence + self.mark

    @property
    def uscc(self) -> str | None:
        """The unit's unified social credit code, when the main code is one."""
        return self.main_code if self.main_form == "uscc" else None


@dataclass(frozen=True)
class FacilityCode:
    """The parts of an outlet or treatment-facility code: kind, element and sequence."""

    kind: str  # "D" outlet or "T" treatment facility
    element: str
    sequence: str

    @property
    def code(self) -> str:
        return self.kind + self.element + self.sequence

    @property
    def kind_zh(self) -> str:
        return FACILITY_KINDS[self.kind]

    @property
    def element_zh(self) -> str:
        elements = OUTLET_ELEMENTS if self.kind == "D" else TREATMENT_ELEMENTS
        return elements[self.element]


def _digits(text: str) -> bool:
    """True if ``text`` is ASCII digits only (``str.isdigit`` also takes other scripts')."""
    return text.isascii() and text.isdigit()


def organisation_code_check_character(first8: str) -> str:
    """The check character of a GB 11714-1997 organisation code's first eight characters.

    C9 = 11 - MOD(Σ Ci × Wi, 11), Wi = 3 7 9 10 5 8 4 2; 10 is written ``X``, 11 ``0``.
    """
    if len(first8) != 8:
        raise InvalidSourceCode(f"need 8 characters for an organisation code, got {len(first8)}")
    total = 0
    pairs = zip(first8, ORGANISATION_WEIGHTS, strict=True)
    for position, (char, weight) in enumerate(pairs, start=1):
        if char not in ORGANISATION_ALPHABET:
            raise InvalidSourceCode(
                f"organisation code character {char!r} at position {position} is not allowed"
            )
        total += ORGANISATION_ALPHABET.index(char) * weight
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def _substitute_main_code(main: str, code: str) -> tuple[str, MainCodeForm]:
    """Check a substitute main code (trial rules); return it normalised and its form."""
    body, letter = main[:17].upper(), main[17].lower()
    where = f"fixed-source code {code!r}: substitute main code (positions 1-18) {main!r}"
    if not _digits(body[2:8]):
        raise InvalidSourceCode(
            f"{where}: positions 3-8 must be the issuing authority's six-digit division code"
        )
    if letter not in SUBSTITUTE_LETTERS:
        raise InvalidSourceCode(
            f"{where}: position 18 must be a lower-case letter other than o and i, got {letter!r}"
        )
    identifier = body[8:17]
    if identifier.startswith("0000"):
        if not _digits(identifier):
            raise InvalidSourceCode(
                f"{where}: after 0000, positions 13-17 must be a five-digit sequence"
            )
        return body + letter, "issuer-sequence"
    try:
        expected = organisation_code_check_character(identifier[:8])
    except InvalidSourceCode as error:
        raise InvalidSourceCode(f"{where}: {error} (GB 11714)") from error
    if identifier[8] != expected:
        raise InvalidSourceCode(
            f"{where}: organisation code {identifier!r} has check character "
            f"{identifier[8]!r}, expected {expected!r} (GB 11714): a character is mistyped"
        )
    return body + letter, "organisation-code"


def _main_code(main: str, code: str) -> tuple[str, MainCodeForm]:
    """Check positions 1-18: a credit code, or a substitute code beginning H9."""
    if main[:2].upper() == SUBSTITUTE_PREFIX:
        return _substitute_main_code(main, code)
    try:
        return validate_uscc(main), "uscc"
    except InvalidUSCC as error:
        raise InvalidSourceCode(
            f"fixed-source code {code!r}: main code (positions 1-18) is not a valid unified "
            f"social credit code: {error}"
        ) from error


def parse_source_code(code: str, *, marks: Mapping[str, str] = SPECIAL_MARKS) -> SourceCode:
    """The parts of a fixed-source code; raise ``InvalidSourceCode`` naming the failing part.

    Checks the length (22), the main code (a GB 32100 credit code, or a substitute code),
    the sequence (three digits) and the special mark (one of ``marks``). Spaces around the
    code are dropped and letters made upper case, except a substitute code's last letter,
    which is lower case.
    """
    stripped = code.strip()
    if len(stripped) != SOURCE_CODE_LENGTH:
        raise InvalidSourceCode(
            f"fixed-source code {code!r} has {len(stripped)} characters, needs 22 "
            f"(18 main code + 3 sequence + 1 special mark, HJ 608-2017 annex A)"
        )
    main, form = _main_code(stripped[:18], code)
    sequence, mark = stripped[18:21], stripped[21].upper()
    if not _digits(sequence):
        raise InvalidSourceCode(
            f"fixed-source code {code!r}: sequence part (positions 19-21) must be three "
            f"digits, got {sequence!r}"
        )
    if mark not in marks:
        allowed = ", ".join(repr(known) for known in sorted(marks))
        raise InvalidSourceCode(
            f"fixed-source code {code!r}: position 22 is the special mark (特别标识码), "
            f"one of {allowed}, got {stripped[21]!r}"
        )
    return SourceCode(main_code=main, sequence=sequence, mark=mark, main_form=form)


def validate_source_code(code: str, *, marks: Mapping[str, str] = SPECIAL_MARKS) -> str:
    """Return ``code`` normalised if it is a valid fixed-source code (permit number);
    raise ``InvalidSourceCode`` naming the failing part (see :func:`parse_source_code`)."""
    return parse_source_code(code, marks=marks).code


def is_valid_source_code(code: str, *, marks: Mapping[str, str] = SPECIAL_MARKS) -> bool:
    """True if ``code`` is a valid fixed-source code."""
    try:
        parse_source_code(code, marks=marks)
    except InvalidSourceCode:
        return False
    return True


def build_source_code(
    main_code: str, sequence: int, mark: str = "P", *, marks: Mapping[str, str] = SPECIAL_MARKS
) -> str:
    """The code of a unit's ``sequence``-th fixed source (0-999), checked like any code."""
    if not 0 <= sequence <= 999:
        raise InvalidSourceCode(f"sequence {sequence} does not fit in three digits")
    return validate_source_code(f"{main_code.strip()}{sequence:03d}{mark}", marks=marks)


def _parse_facility(code: str, kind: str, elements: Mapping[str, str]) -> FacilityCode:
    """Check ``kind`` + element letter + three-digit sequence and return the parts."""
    normalised = code.strip().upper()
    name = FACILITY_KINDS[kind]
    if len(normalised) != 5:
        raise InvalidFacilityCode(
            f"{name} code {code!r} has {len(normalised)} characters, needs 5 "
            f"({kind} + element letter + three-digit sequence)"
        )
    if normalised[0] != kind:
        raise InvalidFacilityCode(
            f"{name} code {code!r} must begin with {kind!r}, got {normalised[0]!r}"
        )
    if normalised[1] not in elements:
        allowed = ", ".join(f"{letter} {zh}" for letter, zh in elements.items())
        raise InvalidFacilityCode(
            f"{name} code {code!r}: element letter {normalised[1]!r} is not one of {allowed}"
        )
    sequence = normalised[2:]
    if not _digits(sequence):
        raise InvalidFacilityCode(
            f"{name} code {code!r}: positions 3-5 must be a three-digit sequence, got {sequence!r}"
        )
    return FacilityCode(kind=kind, element=normalised[1], sequence=sequence)


def parse_outlet_code(code: str) -> FacilityCode:
    """The parts of an outlet code such as ``DA001`` (HJ 608-2017 figure 6)."""
    return _parse_facility(code, "D", OUTLET_ELEMENTS)


def validate_outlet_code(code: str) -> str:
    """Return an outlet code normalised, or raise ``InvalidFacilityCode`` saying why."""
    return parse_outlet_code(code).code


def is_valid_outlet_code(code: str) -> bool:
    """True if ``code`` is a valid outlet code."""
    try:
        parse_outlet_code(code)
    except InvalidFacilityCode:
        return False
    return True


def parse_treatment_code(code: str) -> FacilityCode:
    """The parts of a treatment-facility code such as ``TA001`` (trial rules figure 5)."""
    return _parse_facility(code, "T", TREATMENT_ELEMENTS)


def validate_treatment_code(code: str) -> str:
    """Return a treatment-facility code normalised, or raise ``InvalidFacilityCode``."""
    return parse_treatment_code(code).code


def is_valid_treatment_code(code: str) -> bool:
    """True if ``code`` is a valid treatment-facility code."""
    try:
        parse_treatment_code(code)
    except InvalidFacilityCode:
        return False
    return True
