"""The CRC of HJ 212-2017 (Appendix A, CRC校验算法), computed over the data segment.

The standard's C reference does, per byte, ``crc = (crc >> 8) ^ byte`` and then eight
rounds of a right shift with the reflected polynomial 0xA001, starting from 0xFFFF.
Because the value entering the eight rounds is always a single byte, each step is one
table lookup: ``crc = TABLE[(crc >> 8) ^ byte]``. Note that this is *not* CRC-16/MODBUS
(which keeps the low byte of the previous register).
"""

from __future__ import annotations


def _round8(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


TABLE = tuple(_round8(byte) for byte in range(256))


def hj212_crc16(data: bytes) -> int:
    """CRC16 of ``data`` exactly as the HJ 212-2017 reference implementation computes it."""
    crc = 0xFFFF
    table = TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


def crc_hex(data: bytes) -> str:
    """The CRC as the four upper-case hex digits a packet carries."""
    return f"{hj212_crc16(data):04X}"
