"""Parsing an HJ 212 data segment: the header fields and the CP data area.

The data segment is ``QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;PNUM=…;PNO=…;CP=&&…&&``
(HJ 212-2017, 6.3.2). Inside CP, groups are separated by ``;``, fields of one pollutant
by ``,``, and each field is ``key=value``; a pollutant field's key is the code and a
suffix, as ``w01018-Rtd`` (6.3.3). HJ/T 212-2005 packets have the same shape, often
without QN and Flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ecohub.protocol.hj212.codes import FLAG_ANSWER, FLAG_SPLIT

# QN is YYYYMMDDhhmmsszzz (17 digits); loggers also send Unix time in milliseconds (13),
# longer numbers, or nothing after "QN=". It is only echoed and used as a key.
_QN = re.compile(r"^(?:\d{13,20})?$")
_CN = re.compile(r"^\d{4}$")
_ST = re.compile(r"^\d{2,3}$")  # two digits in the standard; a field logger sends ST=101
MAX_MN_LENGTH = 24  # HJ 212-2017: MN is at most 24 characters
_HEADER_KEYS = frozenset({"QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO"})


class PacketError(ValueError):
    """A data segment that breaks the standard; ``code`` names the cause for quarantine."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Packet:
    """The header of a data segment and its raw CP content."""

    cn: str
    mn: str
    qn: str | None = None
    st: str | None = None
    pw: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    cp: str = ""

    @property
    def answer_wanted(self) -> bool:
        """Flag bit A: the sender waits for an answer."""
        return bool(self.flag is not None and self.flag & FLAG_ANSWER)

    @property
    def is_split(self) -> bool:
        """Flag bit D: one of several packets (PNUM/PNO)."""
        return bool(self.flag is not None and self.flag & FLAG_SPLIT) or (
            self.pnum is not None and self.pnum > 1
        )

    @property
    def version(self) -> int:
        """Protocol version from Flag bits 2-7: 0 = HJ/T 212-2005, 1 = HJ 212-2017."""
        return (self.flag or 0) >> 2


@dataclass(slots=True)
class CpData:
    """The CP data area: plain fields (DataTime, RtdInterval…) and per-code fields."""

    fields: dict[str, str] = field(default_factory=dict)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_packet(data: bytes, *, framed: bool = False) -> Packet:
    """Parse a data segment (the bytes between the length and the CRC).

    ``framed``: the segment comes whole from a packet whose length was checked, so its
    end is known, and a CP data area without its closing ``&&`` (a sender's deviation)
    runs to the end of the segment. A bare segment without it is ``bad_cp``: it may have
    been cut off.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as error:
        raise PacketError(
            "bad_encoding", f"data segment is not ASCII (byte {error.start})"
        ) from error
    marker = text.find("CP=&&")
    if marker < 0:
        raise PacketError("no_cp", "data segment has no 'CP=&&' data area")
    if text.endswith("&&") and len(text) >= marker + 7:
        cp = text[marker + 5 : -2]
    elif framed:
        cp = text[marker + 5 :]
    else:
        raise PacketError("bad_cp", "the CP data area does not end with '&&'")
    header: dict[str, str] = {}
    for item in text[:marker].split(";"):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise PacketError("bad_field", f"header field {item!r} has no '='")
        if key in _HEADER_KEYS:
            header[key] = value
    cn = header.get("CN", "")
    if not _CN.match(cn):
        raise PacketError("bad_cn", f"CN {cn!r} is not a four-digit command code")
    # An empty MN ("MN=", a logger not yet set up) is read as such: it matches no point.
    mn = header.get("MN")
    if mn is None or len(mn) > MAX_MN_LENGTH:
        raise PacketError("bad_mn", f"MN {mn!r} is missing or longer than {MAX_MN_LENGTH}")
    qn = header.get("QN")
    if qn is not None and not _QN.match(qn):
        raise PacketError(
            "bad_qn", f"QN {qn!r} is not YYYYMMDDhhmmsszzz (nor 13-20 digits, nor empty)"
        )
    st = header.get("ST")
    if st is not None and not _ST.match(st):
        raise PacketError("bad_st", f"ST {st!r} is not a system code of two or three digits")
    flag = _int_field(header, "Flag", 0, 255)
    pnum = _int_field(header, "PNUM", 1, 9999)
    pno = _int_field(header, "PNO", 1, 9999)
    if pno is not None and (pnum is None or pno > pnum):
        raise PacketError("bad_split", f"PNO {pno} without PNUM, or beyond PNUM {pnum}")
    return Packet(
        cn=cn, mn=mn, qn=qn, st=st, pw=header.get("PW"), flag=flag, pnum=pnum, pno=pno, cp=cp
    )


def _int_field(header: dict[str, str], key: str, low: int, high: int) -> int | None:
    text = header.get(key)
    if text is None:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise PacketError(f"bad_{key.lower()}", f"{key} {text!r} is not a number {low}-{high}")
    return int(text)


def parse_cp(cp: str) -> CpData:
    """Split a CP data area into plain fields and per-code fields (values kept as text)."""
    if " " in cp or not cp.isprintable():
        return _parse_cp_items(cp)  # it may hold white space to strip
    # What loggers send: one split, and nothing to strip.
    result = CpData()
    fields, codes = result.fields, result.codes
    for item in cp.replace(",", ";").split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise PacketError("bad_cp", f"CP field {item!r} has no '='")
        code, dash, suffix = key.partition("-")
        if dash and code and suffix:
            of_code = codes.get(code)
            if of_code is None:
                of_code = codes[code] = {}
            of_code[suffix] = value
        else:
            fields[key] = value
    return result


def _parse_cp_items(cp: str) -> CpData:
    """:func:`parse_cp` item by item: any CP, with spaces stripped and errors reported."""
    result = CpData()
    for group in cp.split(";"):
        for item in group.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise PacketError("bad_cp", f"CP field {item!r} has no '='")
            key = key.strip()
            code, dash, suffix = key.partition("-")
            if dash and code and suffix:
                result.codes.setdefault(code, {})[suffix] = value.strip()
            else:
                result.fields[key] = value.strip()
    return result
