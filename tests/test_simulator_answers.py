"""How a simulated logger recognises the 9014 answer to its upload.

The load generator compares the bytes it reads with the answer this platform sends and
only frames and parses what differs; an answer that differs but is valid (another
gateway's field values, split over reads) must still count, and one for another upload
must not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random

from ecohub.protocol.hj212.encode import data_segment
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.simulate.hj212 import CST, _LoggerLink, build_upload, expected_answer
from ecohub.simulate.points import SimulatedPoint

POINT = SimulatedPoint(mn="88888880000001", password="123456", kind="gas")
QN = "20240101000000001"


def _upload() -> bytes:
    moment = dt.datetime(2024, 1, 1, tzinfo=CST)
    packet, _values = build_upload(POINT, 2011, moment, QN, random.Random(1))
    return packet


def _answer(qn: str, flag: int = 4) -> bytes:
    return frame_packet(
        data_segment(qn=qn, st=91, cn=9014, pw=POINT.password, mn=POINT.mn, flag=flag, cp="")
    )


def _answered(*reads: bytes) -> bool:
    async def run() -> bool:
        link = _LoggerLink()
        answered = link.expect(expected_answer(_upload()))
        for data in reads:
            link.data_received(data)
        return answered.done() and answered.result()

    return asyncio.run(run())


def test_the_expected_answer_is_this_platforms_9014() -> None:
    expected = expected_answer(_upload())
    assert expected.qn == QN
    assert expected.packet == _answer(QN)
    assert _answered(expected.packet)


def test_a_different_but_valid_answer_counts() -> None:
    other = _answer(QN, flag=0)  # an HJ/T 212-2005 style Flag
    assert other != expected_answer(_upload()).packet
    assert _answered(other)


def test_an_answer_split_over_reads_counts() -> None:
    packet = _answer(QN)
    assert _answered(packet[:10], packet[10:])
    assert _answered(b"garbage" + packet)


def test_an_answer_to_another_upload_does_not_count() -> None:
    assert not _answered(_answer("20240101000000999"))
    damaged = bytearray(_answer(QN))
    damaged[-7] ^= 1  # a CRC digit
    assert not _answered(bytes(damaged))
