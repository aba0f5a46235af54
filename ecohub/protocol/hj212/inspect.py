"""Inspecting HJ 212 traffic in captures and logs: every packet, and what the gateway
makes of it.

Packets are found wherever they stand in a line: after a log prefix, several to a line,
inside JSON strings, with CR LF, LF or nothing after them; in JSON lines with a ``raw``
field, that field is the packet. Lines are read as bytes, so a packet's bytes stay
exact in any log encoding (GBK, UTF-8…); only the text around it is decoded, leniently.

Each packet goes through the gateway's own codec (:func:`.framing.check_frame`,
:func:`.packet.parse_packet`, :func:`.values.upload_values`), so the verdicts and
reason codes are the gateway's (``bad_crc``, ``bad_length``, ``too_long``, ``bad_qn``…):

- ``accepted``: any registered point's packet like this one is taken;
- ``tolerated``: taken only from a point marked tolerant (``crc_tolerant``): a wrong
  CRC, or a length field without its leading zeros whose value is right;
- ``rejected``: quarantined, whoever sends it.

Whether the MN is registered and the password right is the registry's business, not
the codec's, and is not checked here. Beyond the verdict, each report lists the
deviations from HJ 212-2017 seen in the packet (:data:`DEVIATIONS`), accepted or not;
docs/hj212.md ("Real traffic") gives the decision on each and the packets behind it.

Pure: the caller reads the files, e.g. ``inspect_lines(open(path, "rb"), str(path))``.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ecohub.protocol.hj212.crc import hj212_crc16, modbus_crc_order
from ecohub.protocol.hj212.framing import MAX_DATA_LENGTH, Frame, check_frame
from ecohub.protocol.hj212.packet import CpData, Packet, PacketError, parse_cp, parse_packet
from ecohub.protocol.hj212.values import DATA_COMMANDS, MEASURED_SUFFIXES, Value, upload_values

ACCEPTED = "accepted"
TOLERATED = "tolerated"
REJECTED = "rejected"

# Deviations from HJ 212-2017 an inspection reports, and what the codec does with each.
DEVIATIONS: dict[str, str] = {
    "crc_lower_case": "CRC in lower-case hex: accepted",
    "crc_modbus": "the CRC is the data's CRC-16/MODBUS, not HJ 212's: tolerant points only",
    "crc_mismatch": "the CRC does not match the data: tolerant points only",
    "length_unpadded": "length field without leading zeros, its value right: tolerant points only",
    "length_mismatch": "declared length differs from the data segment's: rejected",
    "length_counts_trailer": "length counts the CRC and CR LF: accepted",
    "too_long": "data segment over 1,024 bytes: rejected",
    "no_crc": "no CRC after the data segment (cut off): rejected",
    "qn_unix_ms": "QN is Unix time in milliseconds (13 digits): accepted",
    "qn_digits": "QN of other than 17 digits (13-20 are accepted)",
    "qn_empty": "QN= with nothing after it: accepted",
    "no_qn_flag": "no QN or no Flag, as HJ/T 212-2005 packets: accepted",
    "st_three_digits": "ST of three digits: accepted",
    "pw_length": "PW not of 6 characters: accepted (the registry compares it)",
    "mn_empty": "MN= is empty: accepted by the codec, matches no point (unknown_mn)",
    "header_extra": "header fields outside the standard's (vendor): ignored",
    "cp_not_closed": "CP without its closing '&&': read to the end of the checked segment",
    "cp_bare_flag": "a Flag in CP not attached to a code: ignored",
    "datatime_fraction": "DataTime with digits past the second: dropped",
    "codes_2005": "HJ/T 212-2005 parameter codes: mapped to 2017 codes",
    "cn_vendor": "command number outside HJ 212's ranges (1xxx, 2xxx, 3xxx, 9xxx): "
    "taken as a command, not stored",
    "request": "a data command without DataTime: the platform's request to a logger",
    "unusable_values": "values with an unknown code, a bad number or an unknown flag: "
    "the rest is stored (partly_unusable)",
    "no_values": "a data upload with no value its command stores",
}

_HEADER_KEYS = ("QN", "ST", "CN", "PW", "MN", "Flag", "PNUM", "PNO")
_START = re.compile(rb"##(?=\d)")
# What ends a packet in a line of text: white space, quotes, escapes, markup, non-ASCII
# bytes, or the next packet's header.
_STOP = re.compile(rb"[\s\"'\\<>`\x00-\x1f\x7f-\xff]|##\d")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_CODE_2017 = re.compile(r"^[a-z]+\d{5}$")  # a21026, w01018, ua19004
_CODE_2005 = re.compile(r"^(?:\d{2,3}|[A-Z]\d{2})$")  # 01, 011, 112, B01, S01
_COMMAND_RANGES = frozenset("1239")


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a packet is not accepted: the gateway's reason code and a sentence."""

    code: str
    text: str


@dataclass(slots=True)
class FrameReport:
    """One packet found in a capture, and the codec's verdict on it."""

    raw: bytes  # the packet exactly, from "##" to the last CRC character
    where: str = ""  # file:line
    origin: str | None = None  # a JSON line's "source" field (owner/name@commit:path)
    context: str = ""  # the text before the packet on its line (a log prefix)
    terminator: str = "none"  # what follows: CRLF, LF, escaped CRLF, escaped LF, none
    verdict: str = REJECTED
    reason: Reason | None = None
    qn: str | None = None
    st: str | None = None
    cn: str | None = None
    pw: str | None = None
    mn: str | None = None
    flag: int | None = None
    pnum: int | None = None
    pno: int | None = None
    version: str = "unknown"  # "2017", "2005" or "unknown" (a guess)
    kind: str = ""  # upload, request, answer, command
    interval: str | None = None  # rt, min, hour, day for an upload
    data_time: str | None = None  # an upload's DataTime, ISO 8601 in UTC
    values: list[Value] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    deviations: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Accepted from any registered point."""
        return self.verdict == ACCEPTED

    @property
    def source(self) -> str:
        """What the packet is counted under: the origin's repository, else the file."""
        if self.origin:
            return self.origin.split("@", 1)[0]
        return self.where.rsplit(":", 1)[0]

    def to_dict(self, show_password: bool = False) -> dict[str, Any]:
        """JSON-serialisable; the password is masked unless ``show_password``."""
        raw = self.raw.decode("ascii", "backslashreplace")
        pw = self.pw
        if pw and not show_password:
            masked = "*" * len(pw)
            raw = raw.replace(f"PW={pw};", f"PW={masked};", 1)
            pw = masked
        return {
            "where": self.where,
            "origin": self.origin,
            "ok": self.ok,
            "verdict": self.verdict,
            "reason": self.reason.code if self.reason else None,
            "reason_text": self.reason.text if self.reason else None,
            "cn": self.cn,
            "st": self.st,
            "mn": self.mn,
            "qn": self.qn,
            "pw": pw,
            "flag": self.flag,
            "pnum": self.pnum,
            "pno": self.pno,
            "version": self.version,
            "kind": self.kind,
            "interval": self.interval,
            "data_time": self.data_time,
            "values": len(self.values),
            "readings": [
                {"code": v.parameter_code, "value": v.value, "flag": v.data_flag}
                for v in self.values
            ],
            "problems": list(self.problems),
            "deviations": dict(self.deviations),
            "terminator": self.terminator,
            "context": self.context,
            "raw": raw,
        }


# --- finding packets ------------------------------------------------------------------


def inspect_lines(lines: Iterable[bytes], name: str = "-") -> Iterator[FrameReport]:
    """Every packet in lines of bytes (a file opened in binary mode, a capture's lines)."""
    for number, line in enumerate(lines, start=1):
        where = f"{name}:{number}"
        record = _json_record(line)
        if record is not None:
            report = _inspect_record(record, where)
            if report is not None:
                yield report
            continue
        for start, end in find_frames(line):
            yield inspect_frame(
                line[start:end],
                where=where,
                context=_context(line[:start]),
                terminator=_terminator(line, end),
            )


def inspect_bytes(data: bytes, name: str = "-") -> Iterator[FrameReport]:
    """Every packet in a whole capture or log held in memory."""
    return inspect_lines(io.BytesIO(data), name)


def find_frames(line: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each packet in a line: from ``##`` and a digit to the last CRC
    character.

    A packet ends where the text around it begins (white space, a quote, a backslash of
    an escaped ``\\r\\n``, a non-ASCII byte, the next ``##``). Where the declared length
    points to a CRC that checks out, that end is taken instead, so a data segment holding
    spaces or non-ASCII bytes is kept whole; where the run of text goes on past the CRC
    (``…&&1C80,``), the packet ends after the last ``&&`` and four hex digits.
    """
    position = 0
    while True:
        match = _START.search(line, position)
        if match is None:
            return
        start = match.start()
        stop = _STOP.search(line, start + 2)
        token_end = stop.start() if stop else len(line)
        end = _frame_end(line, start, token_end)
        yield start, end
        position = max(end, start + 2)


def _frame_end(line: bytes, start: int, token_end: int) -> int:
    head = line[start + 2 : start + 6]
    if head.isdigit():  # the declared length, where its CRC checks out
        end = start + 6 + int(head) + 4
        if end <= len(line) and _crc_checks(line[start + 6 : end - 4], line[end - 4 : end]):
            return end
    token = line[start:token_end]
    if len(token) > 6 and all(byte in _HEX for byte in token[-4:]):
        return token_end
    closing = token.rfind(b"&&")
    crc_text = token[closing + 2 : closing + 6]
    if closing >= 0 and len(crc_text) == 4 and all(byte in _HEX for byte in crc_text):
        return start + closing + 6
    return token_end


def _crc_checks(data: bytes, crc_text: bytes) -> bool:
    return all(byte in _HEX for byte in crc_text) and int(crc_text, 16) == hj212_crc16(data)


def _json_record(line: bytes) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith(b"{"):
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("raw"), str):
        return record
    return None


def _inspect_record(record: dict[str, Any], where: str) -> FrameReport | None:
    """A JSON line whose ``raw`` is one packet, from ``##`` to the CRC and any line break."""
    try:  # bytes a JSON writer kept as surrogates (Python's surrogateescape) come back
        raw = record["raw"].encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = record["raw"].encode("utf-8", "surrogatepass")
    start = raw.find(b"##")
    if start < 0:
        return None
    end = len(raw)
    while end > start and raw[end - 1 : end] in (b"\r", b"\n"):
        end -= 1
    origin = record.get("source")
    return inspect_frame(
        raw[start:end],
        where=where,
        origin=origin if isinstance(origin, str) else None,
        context=_context(raw[:start]),
        terminator=_terminator(raw, end),
    )


def _context(prefix: bytes, limit: int = 80) -> str:
    """The text before a packet, decoded leniently (logs are UTF-8 or GBK)."""
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError:
        text = prefix.decode("gb18030", "replace")
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


def _terminator(line: bytes, end: int) -> str:
    after = line[end : end + 4]
    if after.startswith(b"\r\n"):
        return "CRLF"
    if after.startswith(b"\n"):
        return "LF"
    if after == b"\\r\\n":
        return "escaped CRLF"
    if after.startswith(b"\\n"):
        return "escaped LF"
    return "none"


# --- judging one packet -----------------------------------------------------------------


def inspect_frame(
    raw: bytes,
    *,
    where: str = "",
    origin: str | None = None,
    context: str = "",
    terminator: str = "none",
    max_data_length: int = MAX_DATA_LENGTH,
) -> FrameReport:
    """The codec's verdict on one packet (from ``##`` to the CRC; a CR LF after it, if
    any, is ignored), with its header, values and deviations."""
    raw = raw.removesuffix(b"\r\n")
    report = FrameReport(
        raw=raw, where=where, origin=origin, context=context, terminator=terminator
    )
    deviations = report.deviations
    digits = len(raw[2:6]) - len(raw[2:6].lstrip(b"0123456789"))
    segment = raw[2 + digits : -4]
    if len(raw) < 2 + digits + 4 or not all(byte in _HEX for byte in raw[-4:]):
        _deviate(deviations, "no_crc")
        report.reason = Reason("truncated", "no CRC after the data segment: cut off")
        _read_header(report, raw[2 + digits :])
        return report
    checked = check_frame(raw + b"\r\n", max_data_length)
    _framing_deviations(deviations, raw, segment, digits, max_data_length)
    if isinstance(checked, Frame):
        data: bytes | None = checked.data
    else:
        report.reason = Reason(checked.kind, checked.reason)
        data = checked.data
    if data is None:
        _read_header(report, segment)
        return report
    try:
        packet = parse_packet(data, framed=True)
    except PacketError as error:
        report.reason = report.reason or Reason(error.code, error.reason)
        _read_header(report, data)
        return report
    _take_header(report, packet, data)
    refusal = _read_cp(report, packet)
    if refusal is not None:
        report.reason = report.reason or refusal
        return report
    report.verdict = ACCEPTED if isinstance(checked, Frame) else TOLERATED
    return report


def _deviate(deviations: dict[str, str], code: str, detail: str = "") -> None:
    deviations[code] = f"{detail}: {DEVIATIONS[code]}" if detail else DEVIATIONS[code]


def _framing_deviations(
    deviations: dict[str, str], raw: bytes, segment: bytes, digits: int, max_data_length: int
) -> None:
    crc_text = raw[-4:]
    if crc_text != crc_text.upper():
        _deviate(deviations, "crc_lower_case", crc_text.decode())
    if digits != 4:
        if digits and int(raw[2 : 2 + digits]) == len(segment):
            _deviate(deviations, "length_unpadded", f"##{raw[2 : 2 + digits].decode()}")
        else:
            _deviate(deviations, "length_mismatch", f"length field {raw[2:6]!r}")
    else:
        declared = int(raw[2:6])
        if declared > max_data_length:
            _deviate(deviations, "too_long", f"{declared} bytes declared")
        if declared == len(segment) + 6:
            _deviate(deviations, "length_counts_trailer", f"{declared} = {len(segment)} + 6")
        elif declared != len(segment):
            _deviate(deviations, "length_mismatch", f"{declared} declared, {len(segment)} sent")
    if hj212_crc16(segment) != int(crc_text, 16):
        order = modbus_crc_order(segment, int(crc_text, 16))
        if order is not None:
            _deviate(deviations, "crc_modbus", f"{crc_text.decode()}, {order}")
        else:
            _deviate(deviations, "crc_mismatch", f"{crc_text.decode()} sent")


def _take_header(report: FrameReport, packet: Packet, data: bytes) -> None:
    for name in ("qn", "st", "cn", "pw", "mn", "flag", "pnum", "pno"):
        setattr(report, name, getattr(packet, name))
    deviations = report.deviations
    qn = packet.qn
    if qn is None or packet.flag is None:
        _deviate(deviations, "no_qn_flag")
    if qn == "":
        _deviate(deviations, "qn_empty")
    elif qn is not None and len(qn) == 13:
        _deviate(deviations, "qn_unix_ms", qn)
    elif qn is not None and len(qn) != 17:
        _deviate(deviations, "qn_digits", f"{len(qn)} digits")
    if packet.st is not None and len(packet.st) == 3:
        _deviate(deviations, "st_three_digits", f"ST={packet.st}")
    if packet.pw is not None and len(packet.pw) != 6:
        _deviate(deviations, "pw_length", f"{len(packet.pw)} characters")
    if packet.mn == "":
        _deviate(deviations, "mn_empty")
    text = data.decode("ascii")
    marker = text.find("CP=&&")
    extra = [
        item.partition("=")[0]
        for item in text[:marker].split(";")
        if item.strip() and item.partition("=")[0].strip() not in _HEADER_KEYS
    ]
    if extra:
        _deviate(deviations, "header_extra", ", ".join(extra))
    if not text.endswith("&&") or len(text) < marker + 7:
        _deviate(deviations, "cp_not_closed")
    if packet.cn[0] not in _COMMAND_RANGES:
        _deviate(deviations, "cn_vendor", f"CN={packet.cn}")


def _read_cp(report: FrameReport, packet: Packet) -> Reason | None:
    """Values of an upload, or the kind of command; a Reason where the gateway refuses."""
    cn = packet.cn
    interval = DATA_COMMANDS.get(cn)
    try:
        cp = parse_cp(packet.cp)
    except PacketError as error:
        if interval is not None:
            return Reason(error.code, error.reason)
        cp = None  # a command's CP is logged by the gateway, not read
    if cp is not None:
        report.version = guess_version(packet.flag, cp)
        if "Flag" in cp.fields:
            _deviate(report.deviations, "cp_bare_flag", f"Flag={cp.fields['Flag']}")
        if any(_CODE_2005.match(code) for code in cp.codes):
            _deviate(report.deviations, "codes_2005")
    else:
        report.version = guess_version(packet.flag, CpData())
    if interval is None:
        report.kind = "answer" if cn in ("9011", "9012", "9013", "9014") else "command"
        return None
    assert cp is not None
    if "DataTime" not in cp.fields:
        if not cp.codes and set(cp.fields) <= {"BeginTime", "EndTime"}:
            report.kind = "request"  # 2011 start real-time data, 2051/2061/2031 history
            _deviate(report.deviations, "request", f"CN={cn}")
            return None
        return Reason("no_datatime", "data upload without DataTime")
    data_time = cp.fields["DataTime"]
    try:
        upload = upload_values(cn, cp)
    except PacketError as error:
        return Reason(error.code, error.reason)
    report.kind = "upload"
    report.interval = upload.interval
    report.data_time = upload.data_time.isoformat()
    report.values = upload.values
    report.problems = upload.problems
    if len(data_time) > 14:
        _deviate(report.deviations, "datatime_fraction", f"DataTime={data_time}")
    if upload.problems:
        _deviate(report.deviations, "unusable_values", f"{len(upload.problems)}")
    elif not upload.values:
        suffixes = "/".join(MEASURED_SUFFIXES[upload.interval])
        _deviate(report.deviations, "no_values", f"CN {cn} stores -{suffixes}")
    return None


def _read_header(report: FrameReport, data: bytes) -> None:
    """The header of a packet the codec refused, read as far as it goes (for display)."""
    text = data.decode("ascii", "replace")
    marker = text.find("CP=")
    for item in (text[:marker] if marker >= 0 else text).split(";"):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key in ("QN", "ST", "CN", "PW", "MN"):
            setattr(report, key.lower(), value)
        elif key in ("Flag", "PNUM", "PNO") and value.isdigit():
            setattr(report, key.lower(), int(value))
    if marker >= 0:
        try:
            cp = parse_cp(text[marker + 5 :].removesuffix("&&"))
        except PacketError:
            cp = CpData()
        report.version = guess_version(report.flag, cp)


def guess_version(flag: int | None, cp: CpData) -> str:
    """HJ 212-2017 or HJ/T 212-2005, guessed: by the parameter codes if one kind
    dominates (``a21026``/``w01018`` against ``01``/``011``/``B01``/``S01``), else by
    Flag's version bits (000001 = 2017), else ``unknown``."""
    new = sum(1 for code in cp.codes if _CODE_2017.match(code))
    old = sum(1 for code in cp.codes if _CODE_2005.match(code))
    if new != old:
        return "2017" if new > old else "2005"
    if flag is not None and flag >> 2 == 1:
        return "2017"
    return "unknown"


# --- summary ------------------------------------------------------------------------


@dataclass(slots=True)
class Summary:
    """Counts over many packets: verdicts, reasons, deviations, per source."""

    frames: int = 0
    accepted: int = 0
    tolerated: Counter[str] = field(default_factory=Counter)  # by reason code
    rejected: Counter[str] = field(default_factory=Counter)  # by reason code
    values: int = 0
    deviations: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, Counter[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "accepted": self.accepted,
            "tolerated": dict(sorted(self.tolerated.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "values": self.values,
            "deviations": dict(sorted(self.deviations.items())),
            "by_source": {name: dict(sorted(c.items())) for name, c in self.by_source.items()},
        }

    def lines(self) -> list[str]:
        """A plain-text table: one row per source, then the totals."""
        keys = {key for counts in self.by_source.values() for key in counts} - {"accepted"}
        columns = ["accepted", *sorted(keys)]
        width = max([len("source"), len("total")] + [len(n) for n in self.by_source])
        rows = [" ".join([f"{'source':<{width}}", *(f"{c:>{len(c)}}" for c in columns)])]
        totals: Counter[str] = Counter()
        for name in sorted(self.by_source):
            counts = self.by_source[name]
            totals.update(counts)
            rows.append(
                " ".join([f"{name:<{width}}", *(f"{counts[c]:>{len(c)}}" for c in columns)])
            )
        rows.append(" ".join([f"{'total':<{width}}", *(f"{totals[c]:>{len(c)}}" for c in columns)]))
        return rows


def verdict_key(report: FrameReport) -> str:
    """``accepted``, or the verdict and reason code: ``tolerated:bad_crc``,
    ``rejected:bad_length``."""
    if report.ok or report.reason is None:
        return report.verdict
    return f"{report.verdict}:{report.reason.code}"


def summarise(
    reports: Iterable[FrameReport], source: Callable[[FrameReport], str] | None = None
) -> Summary:
    """Count packets by verdict and reason, overall and per source (the JSON origin's
    repository or the file, unless ``source`` says otherwise)."""
    summary = Summary()
    for report in reports:
        summary.frames += 1
        if report.ok:
            summary.accepted += 1
            summary.values += len(report.values)
        elif report.verdict == TOLERATED and report.reason is not None:
            summary.tolerated[report.reason.code] += 1
        else:
            summary.rejected[report.reason.code if report.reason else "unknown"] += 1
        summary.deviations.update(report.deviations.keys())
        name = source(report) if source else report.source
        summary.by_source.setdefault(name, Counter())[verdict_key(report)] += 1
    return summary
