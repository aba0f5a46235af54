"""The CRC of HJ 212-2017 (Appendix A, CRC校验算法), computed over the data segment.

The standard's C reference does, per byte, ``crc = (crc >> 8) ^ byte`` and then eight
rounds of a right shift with the reflected polynomial 0xA001, starting from 0xFFFF.
Because the value entering the eight rounds is always a single byte, each step is one
table lookup: ``crc = TABLE[(crc >> 8) ^ byte]``. Note that this is *not* CRC-16/MODBUS
(which keeps the low byte of the previous register).

Only the register's high byte carries over from one byte to the next, so two bytes are
also one lookup: :data:`PAIR_TABLE` maps the high byte after a byte pair, indexed by the
pair read as a little-endian 16-bit word XOR the high byte before it. The gateway checks
every packet's CRC; this halves the work of the Python loop.

:func:`hj212_crc16` is the same loop in C (``_crc.c``, built at install where there is a
compiler): under load the Python loop took about a seventh of the gateway's CPU time.
:func:`python_crc16` is used where the C module is not built, and tests check both.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def _round8(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


TABLE = tuple(_round8(byte) for byte in range(256))
# word = first + 256 × second; high byte after both = f(high before ^ first, second).
PAIR_TABLE = tuple(TABLE[(TABLE[word & 0xFF] >> 8) ^ (word >> 8)] >> 8 for word in range(1 << 16))
_LITTLE_ENDIAN = sys.byteorder == "little"


def python_crc16(data: bytes) -> int:
    """CRC16 of ``data`` exactly as the HJ 212-2017 reference implementation computes it."""
    if not data:
        return 0xFFFF
    table = TABLE
    high = 0xFF  # the register starts at 0xFFFF
    body = len(data) - 1  # the last byte gives the whole register, not just its high byte
    paired = body - body % 2
    if _LITTLE_ENDIAN and paired:
        pairs = PAIR_TABLE
        for word in memoryview(data)[:paired].cast("H"):
            high = pairs[word ^ high]
    else:
        paired = 0
    for byte in data[paired:body]:
        high = table[high ^ byte] >> 8
    return table[high ^ data[body]]


hj212_crc16: Callable[[bytes], int]
try:
    from ecohub.protocol.hj212._crc import hj212_crc16
except ImportError:  # not built (no compiler at install): the Python loop
    C_CRC = False
    hj212_crc16 = python_crc16
else:
    C_CRC = True


def crc_hex(data: bytes) -> str:
    """The CRC as the four upper-case hex digits a packet carries."""
    return f"{hj212_crc16(data):04X}"


def modbus_crc16(data: bytes) -> int:
    """CRC-16/MODBUS of ``data`` (same polynomial and start, but the whole register carries
    over from byte to byte). Not HJ 212's CRC, but some loggers send it instead: in a
    field capture (tonyxia2016/HJ212Receiver's rx.log) as four hex digits with the low
    byte first, the order Modbus RTU puts it on the wire. A CRC mismatch is checked
    against it to say so in the rejection; only rejected packets pay for this loop."""
    table = TABLE
    register = 0xFFFF
    for byte in data:
        register = (register >> 8) ^ table[(register ^ byte) & 0xFF]
    return register


def modbus_crc_order(data: bytes, crc: int) -> str | None:
    """Whether ``crc`` (the value of a packet's four hex digits) is the CRC-16/MODBUS of
    ``data``: ``"low byte first"``, ``"high byte first"``, or None."""
    register = modbus_crc16(data)
    if crc == (register >> 8) | (register & 0xFF) << 8:
        return "low byte first"
    if crc == register:
        return "high byte first"
    return None
