"""HJ 212-2017 (and HJ/T 212-2005) data-logger protocol: pure codec, no I/O.

- :mod:`.crc` — the standard's CRC16;
- :mod:`.framing` — cutting a byte stream into packets, with resynchronisation;
- :mod:`.packet` — parsing the data segment and its CP data area;
- :mod:`.values` — turning a data upload into storable values;
- :mod:`.encode` — the platform's answers (9011-9014) and commands (1011/1012,
  1061/1062, 2011, history requests 2051/2061/2031);
- :mod:`.reassembly` — joining split packets (PNUM/PNO);
- :mod:`.inspect` — finding packets in captures and logs, and the codec's verdict on each.
"""

from ecohub.protocol.hj212.crc import crc_hex, hj212_crc16
from ecohub.protocol.hj212.framing import Frame, FrameError, Framer, frame_packet
from ecohub.protocol.hj212.packet import CpData, Packet, PacketError, parse_cp, parse_packet

__all__ = [
    "CpData",
    "Frame",
    "FrameError",
    "Framer",
    "Packet",
    "PacketError",
    "crc_hex",
    "frame_packet",
    "hj212_crc16",
    "parse_cp",
    "parse_packet",
]
