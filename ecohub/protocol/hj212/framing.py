"""Cutting a TCP byte stream into HJ 212 packets.

A packet is ``##`` + four decimal digits (the data segment's length) + the data segment +
four hex digits of CRC + ``\\r\\n`` (HJ 212-2017, 6.3). TCP delivers bytes, not packets:
one read may hold several packets (粘包) and one packet may span many reads (拆包).

The data segment is printable ASCII and never holds ``##`` or a line break, so a frame
candidate runs from ``##`` to the first ``\\r\\n``; a new ``##`` before it means the first
packet was cut off. Every candidate is checked (length digits, declared length, CRC) and
anything that fails becomes a :class:`FrameError` with the raw bytes and the reason; the
framer then carries on from the next ``##``, so one bad packet never costs the next one.
Nothing raises out of :meth:`Framer.feed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecohub.protocol.hj212.crc import hj212_crc16, modbus_crc_order

HEADER = b"##"
FOOTER = b"\r\n"
MAX_DATA_LENGTH = 1024  # HJ 212-2017, 6.3.2: 0 ≤ n ≤ 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class Frame:
    """A packet whose length and CRC check out."""

    data: bytes  # the data segment
    raw: bytes  # the whole packet as received
    length_counts_trailer: bool = False  # a known device quirk: length includes CRC+CRLF


@dataclass(frozen=True, slots=True)
class FrameError:
    """Bytes that are not a valid packet, with why.

    ``kind`` is one of ``garbage``, ``truncated``, ``bad_length``, ``too_long``,
    ``bad_crc``. ``data`` is set when the packet is whole and breaks only a rule that a
    point marked tolerant may waive (see :attr:`tolerable`): then it is the data segment.
    """

    kind: str
    reason: str
    raw: bytes
    data: bytes | None = None

    @property
    def tolerable(self) -> bool:
        """A gateway may accept this packet from a point marked tolerant: a wrong CRC
        (``bad_crc``, the length checked), or a length field written without its leading
        zeros whose value is right (``bad_length``, the CRC checked)."""
        return self.data is not None


class Framer:
    """Incremental framer: feed it bytes as they arrive, get frames and errors back."""

    def __init__(self, max_data_length: int = MAX_DATA_LENGTH) -> None:
        self.max_data_length = max_data_length
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[Frame | FrameError]:
        """Add received bytes; return every complete frame or error they finish."""
        self._buffer += chunk
        results: list[Frame | FrameError] = []
        buffer = self._buffer
        limit = self.max_data_length + 12  # header, length, CRC and footer
        position = 0
        while True:
            start = buffer.find(HEADER, position)
            if start < 0:
                # Hold line noise until the next header so that a burst of it is reported
                # once, however the reads cut it; give it up only past the size limit.
                if len(buffer) - position > limit:
                    keep_from = len(buffer) - 1 if buffer.endswith(b"#") else len(buffer)
                    _garbage(results, buffer[position:keep_from])
                    position = keep_from
                break
            start = _last_header(buffer, start)
            _garbage(results, buffer[position:start])
            end = buffer.find(FOOTER, start + 2)
            restart = buffer.find(HEADER, start + 2)
            if restart >= 0:
                restart = _last_header(buffer, restart)
            if restart >= 0 and (end < 0 or restart < end):
                raw = bytes(buffer[start:restart])
                results.append(
                    FrameError("truncated", "packet cut off: a new '##' began before its end", raw)
                )
                position = restart
                continue
            if end < 0:
                if len(buffer) - start > limit:
                    raw = bytes(buffer[start:])
                    results.append(
                        FrameError(
                            "too_long",
                            f"no end of packet within {limit} bytes "
                            f"(data segment limit {self.max_data_length})",
                            raw,
                        )
                    )
                    position = len(buffer)
                else:
                    position = start
                break
            results.append(check_frame(bytes(buffer[start : end + 2]), self.max_data_length))
            position = end + 2
        del buffer[:position]
        return results

    def flush(self) -> list[FrameError]:
        """At end of stream: whatever is left is a truncated packet (or garbage)."""
        left = bytes(self._buffer)
        self._buffer.clear()
        if not left.strip(b"\r\n\x00 "):
            return []
        if left.startswith(HEADER):
            return [FrameError("truncated", "connection ended inside a packet", left)]
        return [FrameError("garbage", "bytes outside any packet", left)]


def check_frame(raw: bytes, max_data_length: int = MAX_DATA_LENGTH) -> Frame | FrameError:
    """Check one whole packet, from ``##`` to its CR LF: length digits, declared length,
    CRC (either case). The framer runs every packet through this; so does
    :mod:`.inspect` for packets found in logs."""
    length_text = raw[2:6]
    if len(raw) < 12 or not length_text.isdigit():
        return _bad_length_field(raw)
    declared = int(length_text)
    data = raw[6:-6]
    crc_text = raw[-6:-2]
    if declared > max_data_length:
        return FrameError(
            "too_long",
            f"declared data length {declared} exceeds the limit {max_data_length}",
            raw,
        )
    quirk = False
    if declared != len(data):
        if declared == len(data) + 6:
            quirk = True  # some loggers count the CRC and CR LF in the length
        else:
            return FrameError(
                "bad_length",
                f"declared data length {declared} but the data segment has {len(data)} bytes",
                raw,
            )
    if not all(byte in _HEX for byte in crc_text):
        return FrameError("bad_crc", f"CRC field {crc_text!r} is not four hex digits", raw, data)
    expected = hj212_crc16(data)
    if int(crc_text, 16) != expected:
        return FrameError("bad_crc", _crc_mismatch(crc_text, data, expected), raw, data)
    return Frame(data=data, raw=raw, length_counts_trailer=quirk)


def _crc_mismatch(crc_text: bytes, data: bytes, expected: int) -> str:
    reason = f"CRC {crc_text.decode()} does not match the data (computed {expected:04X})"
    order = modbus_crc_order(data, int(crc_text, 16))
    if order is not None:
        reason += f"; it is the data's CRC-16/MODBUS ({order}), not HJ 212's CRC"
    return reason


def _bad_length_field(raw: bytes) -> FrameError:
    """A length field that is not four digits. One sender writes it without leading zeros
    (``##81QN=…``, sCair/Hj212-Distribute's log): when those digits are the data
    segment's length and the CRC checks out, the error carries the data segment, which a
    point marked tolerant may accept."""
    field = raw[2:6]
    digits = len(field) - len(field.lstrip(b"0123456789"))
    if 0 < digits < 4 and len(raw) >= 2 + digits + 6:
        data = raw[2 + digits : -6]
        crc_text = raw[-6:-2]
        if (
            int(raw[2 : 2 + digits]) == len(data)
            and all(byte in _HEX for byte in crc_text)
            and int(crc_text, 16) == hj212_crc16(data)
        ):
            return FrameError(
                "bad_length",
                f"length field {raw[2 : 2 + digits]!r} is not four digits "
                "(its value is the data length and the CRC checks out)",
                raw,
                data,
            )
    return FrameError("bad_length", f"length field {field!r} is not four decimal digits", raw)


def _last_header(buffer: bytearray, start: int) -> int:
    """In a run of '#', the header is the last two (a corrupted byte may add one before)."""
    while buffer[start + 2 : start + 3] == b"#":
        start += 1
    return start


def _garbage(results: list[Frame | FrameError], raw: bytes | bytearray) -> None:
    # Line breaks and NULs between packets are common keep-alive noise, not errors.
    if raw.strip(b"\r\n\x00 "):
        results.append(FrameError("garbage", "bytes outside any packet", bytes(raw)))


def frame_packet(data: bytes) -> bytes:
    """Wrap a data segment into a packet: header, length, CRC and footer."""
    if len(data) > 9999:
        raise ValueError(f"data segment of {len(data)} bytes cannot be framed (max 9999)")
    return b"##%04d%s%04X\r\n" % (len(data), data, hj212_crc16(data))
