"""HJ 212 codec: the standard's example, real devices' packets, framing, encoding.

Reference packets:
- HJ 212-2017 Appendix C example (1062 set real-time interval): length 0101, CRC 1C80.
- Packets from real loggers published in open-source HJ 212 parsers on GitHub, with the
  CRC the device sent: a Tianjin air station (C241; its logger counts CRC and CR LF in the
  length), an odour monitor (0F00), an urban air micro-station (AF01), and a waste-water
  packet re-encoded by the T212 parser's writer (1DC0). The same parser's input fixture
  carries the CRC 4980, which does not match its data: it must be rejected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle

import pytest

from ecohub.protocol.hj212 import Frame, FrameError, Framer, crc_hex, parse_cp, parse_packet
from ecohub.protocol.hj212.codes import Command, ExecutionReturn, RequestReturn
from ecohub.protocol.hj212.encode import (
    data_answer,
    execution_result,
    get_device_time,
    get_realtime_interval,
    history_request,
    notice_answer,
    realtime_request,
    request_answer,
    set_device_time,
    set_realtime_interval,
)
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.protocol.hj212.packet import PacketError
from ecohub.protocol.hj212.reassembly import Reassembler
from ecohub.protocol.hj212.values import parse_data_time, upload_values

STANDARD_EXAMPLE = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;"
    b"MN=010000A8900016F000169DC0;Flag=5;CP=&&RtdInterval=30&&1C80\r\n"
)
TIANJIN_AIR = (
    b"##0131ST=22;CN=2011;PW=123456;MN=120112TJTGGN13;CP=&&DataTime=20150811151200;"
    b"PM10-Rtd=89.59,PM10-Flag=N;TSP-Rtd=133.71,TSP-Flag=N&&C241\r\n"
)
ODOUR_MONITOR = (
    b"##0130QN=20200725210900001;ST=27;CN=2011;PW=123456;MN=MK130502VQ0162;Flag=4;"
    b"CP=&&DataTime=20200725210800;a24087-Rtd=10.3,a24087-Flag=N&&0F00\r\n"
)
MICRO_STATION = (
    b"##0317QN=20191018104952418;ST=22;CN=2011;PW=123456;MN=ZX00001;Flag=5;"
    b"CP=&&DataTime=20191018104900;a34002-Rtd=30,a34002-Flag=N;a34004-Rtd=25,a34004-Flag=N;"
    b"a01001-Rtd=13.5,a01001-Flag=N;a01002-Rtd=43.8,a01002-Flag=N;a01008-Rtd=30,a01008-Flag=N;"
    b"a01007-Rtd=3.5,a01007-Flag=N;a34001-Rtd=132,a34001-Flag=N;LA-Rtd=66.8,LA-Flag=N&&AF01\r\n"
)
WASTE_WATER_2005 = (
    b"##0136ST=32;CN=2011;PW=000000;MN=LD130133000015;CP=&&DataTime=20160824003817;"
    b"011-Rtd=231.0,011-Flag=N;B01-Rtd=36.91;060-Rtd=1.803,060-Flag=N&&1dc0\r\n"
)
PUBLISHED_WRONG_CRC = (
    b"##0136ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;"
    b"B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4980\r\n"
)
REAL_PACKETS = [STANDARD_EXAMPLE, TIANJIN_AIR, ODOUR_MONITOR, MICRO_STATION, WASTE_WATER_2005]


def frames(stream: bytes) -> list[Frame | FrameError]:
    framer = Framer()
    return framer.feed(stream) + framer.flush()


def test_crc_of_the_standards_example() -> None:
    data = STANDARD_EXAMPLE[6:-6]
    assert len(data) == 101
    assert crc_hex(data) == "1C80"


@pytest.mark.parametrize("packet", REAL_PACKETS)
def test_real_packets_frame_and_verify(packet: bytes) -> None:
    [frame] = frames(packet)
    assert isinstance(frame, Frame), frame
    assert frame.raw == packet
    parse_packet(frame.data)


def test_logger_counting_trailer_in_length_is_accepted_and_marked() -> None:
    [frame] = frames(TIANJIN_AIR)
    assert isinstance(frame, Frame) and frame.length_counts_trailer


def test_published_packet_with_wrong_crc_is_rejected_with_reason() -> None:
    [error] = frames(PUBLISHED_WRONG_CRC)
    assert isinstance(error, FrameError)
    assert error.kind == "bad_crc"
    assert "CRC 4980 does not match the data (computed 3C00)" in error.reason
    assert error.data is not None and error.data.startswith(b"ST=32")


def test_standard_example_fields() -> None:
    packet = parse_packet(STANDARD_EXAMPLE[6:-6])
    assert (packet.qn, packet.st, packet.cn, packet.pw) == (
        "20160801085857223",
        "32",
        "1062",
        "100000",
    )
    assert packet.mn == "010000A8900016F000169DC0"
    assert packet.flag == 5 and packet.answer_wanted and not packet.is_split
    assert packet.version == 1  # HJ 212-2017
    assert parse_cp(packet.cp).fields == {"RtdInterval": "30"}


@pytest.mark.parametrize("space", ["", " "])
def test_cp_keys_split_at_their_first_dash(space: str) -> None:
    # HJ 212-2017 6.3.3: a pollutant field is code-suffix; anything else is a plain field.
    # With or without spaces (the item-by-item path strips them), the same reading.
    cp = f"DataTime=20240101000000;a-b-c=1,{space}-x=2;y-={space}3;k=a=b;;SB1-RS=0"
    found = parse_cp(cp)
    assert found.fields == {"DataTime": "20240101000000", "-x": "2", "y-": "3", "k": "a=b"}
    assert found.codes == {"a": {"b-c": "1"}, "SB1": {"RS": "0"}}


def test_data_time_is_beijing_time_given_in_utc() -> None:
    moment = parse_data_time("20240101080000")
    assert moment == dt.datetime(2024, 1, 1, 0, 0, tzinfo=dt.UTC)
    # The one UTC object, also across a pipe: datetimes that share their time zone
    # object compare without converting (the writer compares them many times a batch).
    assert moment.tzinfo is dt.UTC
    assert pickle.loads(pickle.dumps(moment)).tzinfo is dt.UTC
    assert parse_data_time("20240101080000123") == moment  # milliseconds dropped


def test_legacy_2005_codes_map_to_2017_codes() -> None:
    packet = parse_packet(WASTE_WATER_2005[6:-6])
    assert packet.version == 0 and packet.flag is None and not packet.answer_wanted
    upload = upload_values(packet.cn, parse_cp(packet.cp))
    assert upload.interval == "rt"
    assert upload.data_time == dt.datetime(2016, 8, 23, 16, 38, 17, tzinfo=dt.UTC)
    assert {(v.parameter_code, v.value, v.data_flag) for v in upload.values} == {
        ("w01018", 231.0, "N"),  # 011 COD
        ("w00000", 36.91, "N"),  # B01 waste-water flow
        ("w21003", 1.803, "N"),  # 060 NH3-N
    }
    assert upload.problems == []


def test_micro_station_values_and_unknown_codes() -> None:
    packet = parse_packet(MICRO_STATION[6:-6])
    upload = upload_values(packet.cn, parse_cp(packet.cp))
    values = {v.parameter_code: v.value for v in upload.values}
    assert values["a34004"] == 25.0 and values["a34002"] == 30.0 and values["a01007"] == 3.5
    # a34001 (TSP) and LA (noise) are not in the shipped parameter table.
    assert sorted(upload.problems) == [
        "unknown parameter code 'LA'",
        "unknown parameter code 'a34001'",
    ]


def test_hour_upload_statistics_and_flags() -> None:
    cp = (
        "DataTime=20160801080000;a21026-Cou=1.25,a21026-Min=10.1,a21026-Avg=12.5,"
        "a21026-Max=15.0,a21026-ZsAvg=20.1,a21026-Flag=N;a34013-Avg=3.2,a34013-Flag=P;"
        "a21002-Avg=abc,a21002-Flag=N;a19001-Avg=9.1,a19001-Flag=Q;SB1-RS=1"
    )
    upload = upload_values("2061", parse_cp(cp))
    assert upload.interval == "hour"
    assert upload.data_time == dt.datetime(2016, 8, 1, 0, 0, tzinfo=dt.UTC)
    got = {(v.parameter_code, v.value, v.data_flag) for v in upload.values}
    assert got == {
        ("a21026", 12.5, "N"),
        ("a21026-Cou", 1.25, "N"),
        ("a21026-Min", 10.1, "N"),
        ("a21026-Max", 15.0, "N"),
        ("a21026-ZsAvg", 20.1, "N"),
        ("a34013", 3.2, "D"),  # 2005's P (power failure) is 2017's D
    }
    assert sorted(upload.problems) == [
        "a19001: unknown data flag 'Q'",
        "a21002-Avg: 'abc' is not a number",
    ]


@pytest.mark.parametrize(
    ("segment", "code"),
    [
        (b"QN=20160801085857223;ST=32;PW=1;MN=X;CP=&&&&", "bad_cn"),
        (b"ST=32;CN=2011;PW=1;CP=&&&&", "bad_mn"),
        (b"QN=2016;ST=32;CN=2011;PW=1;MN=X;CP=&&&&", "bad_qn"),
        (b"ST=32;CN=2011;PW=1;MN=X;Flag=x;CP=&&&&", "bad_flag"),
        (b"ST=32;CN=2011;PW=1;MN=X;PNUM=2;PNO=3;CP=&&&&", "bad_split"),
        (b"ST=32;CN=2011;PW=1;MN=X", "no_cp"),
        (b"ST=32;CN=2011;PW=1;MN=X;CP=&&DataTime=1", "bad_cp"),
        ("ST=32;CN=2011;PW=1;MN=测试;CP=&&&&".encode(), "bad_encoding"),
    ],
)
def test_bad_data_segments_say_why(segment: bytes, code: str) -> None:
    with pytest.raises(PacketError) as error:
        parse_packet(segment)
    assert error.value.code == code


def test_bad_datatime_is_rejected() -> None:
    with pytest.raises(PacketError, match="DataTime"):
        upload_values("2011", parse_cp("DataTime=20161301000000;a21026-Rtd=1"))


# --- framing -----------------------------------------------------------------------


def test_several_packets_in_one_read_and_one_packet_over_many_reads() -> None:
    stream = b"".join(REAL_PACKETS)
    assert [f.raw for f in frames(stream) if isinstance(f, Frame)] == REAL_PACKETS
    framer = Framer()
    got = []
    for byte in stream:
        got += framer.feed(bytes([byte]))
    assert [f.raw for f in got if isinstance(f, Frame)] == REAL_PACKETS
    assert framer.pending == 0


def test_resynchronises_after_garbage_and_cut_packets() -> None:
    stream = (
        b"\x00\xffnoise"
        + STANDARD_EXAMPLE[:40]
        + ODOUR_MONITOR
        + b"\r\n\r\n"
        + b"##12x4junk\r\n"
        + MICRO_STATION
        + b"trailing"
    )
    results = frames(stream)
    assert [r.raw for r in results if isinstance(r, Frame)] == [ODOUR_MONITOR, MICRO_STATION]
    kinds = [r.kind for r in results if isinstance(r, FrameError)]
    assert kinds == ["garbage", "truncated", "bad_length", "garbage"]


def test_a_burst_of_noise_split_across_reads_is_one_error() -> None:
    framer = Framer()
    results = framer.feed(b"noise, part one;")
    results += framer.feed(b" and part two ")
    results += framer.feed(STANDARD_EXAMPLE)
    assert [type(r).__name__ for r in results] == ["FrameError", "Frame"]
    assert results[0].raw == b"noise, part one; and part two "


def test_length_limit_is_enforced() -> None:
    long_data = b"ST=32;CN=2011;PW=1;MN=X;CP=&&" + b"a" * 1100 + b"&&"
    [error] = frames(frame_packet(long_data))
    assert isinstance(error, FrameError) and error.kind == "too_long"
    framer = Framer()
    results = framer.feed(b"##0101" + b"x" * 2000)  # never ends: given up, not buffered
    assert [r.kind for r in results if isinstance(r, FrameError)] == ["too_long"]
    assert framer.pending == 0
    assert isinstance(framer.feed(STANDARD_EXAMPLE)[0], Frame)


def test_lower_case_crc_is_accepted() -> None:
    assert isinstance(frames(STANDARD_EXAMPLE.replace(b"1C80", b"1c80"))[0], Frame)


# --- encoders ----------------------------------------------------------------------

REQUEST = parse_packet(STANDARD_EXAMPLE[6:-6])
NOW = dt.datetime(2016, 8, 1, 0, 58, 57, 223000, tzinfo=dt.UTC)


def _segment(packet: bytes) -> bytes:
    [frame] = frames(packet)
    assert isinstance(frame, Frame)
    return frame.data


def test_answers_copy_qn_mn_and_use_st_91() -> None:
    assert _segment(data_answer(REQUEST)) == (
        b"QN=20160801085857223;ST=91;CN=9014;PW=100000;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
    )
    # Without a QN to copy, the answer has none; another logger's answer has its own MN.
    assert _segment(data_answer(dataclasses.replace(REQUEST, qn=None))) == (
        b"ST=91;CN=9014;PW=100000;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
    )
    other = dataclasses.replace(REQUEST, mn="SIM00000000001", pw="123456", qn="20240101000000001")
    assert _segment(data_answer(other)) == (
        b"QN=20240101000000001;ST=91;CN=9014;PW=123456;MN=SIM00000000001;Flag=4;CP=&&&&"
    )
    assert b"CN=9011" in _segment(request_answer(REQUEST, RequestReturn.BAD_PASSWORD))
    assert b"CP=&&QnRtn=3&&" in _segment(request_answer(REQUEST, RequestReturn.BAD_PASSWORD))
    assert b"CN=9012;" in _segment(execution_result(REQUEST, ExecutionReturn.NO_DATA))
    assert b"CP=&&ExeRtn=100&&" in _segment(execution_result(REQUEST, ExecutionReturn.NO_DATA))
    assert b"CN=9013;" in _segment(notice_answer(REQUEST))


def test_set_realtime_interval_reproduces_the_standards_example() -> None:
    packet = set_realtime_interval("010000A8900016F000169DC0", "100000", 32, 30, now=NOW)
    assert packet == STANDARD_EXAMPLE
    with pytest.raises(ValueError, match="30-3600"):
        set_realtime_interval("X", "1", 32, 5)


def test_commands() -> None:
    mn, pw = "88888880000001", "123456"
    assert b"CN=1011;" in _segment(get_device_time(mn, pw, 32, "w01018", now=NOW))
    assert b"CP=&&PolId=w01018&&" in _segment(get_device_time(mn, pw, 32, "w01018", now=NOW))
    segment = _segment(set_device_time(mn, pw, 32, NOW, now=NOW))
    assert b"CN=1012;" in segment and b"CP=&&SystemTime=20160801085857&&" in segment
    assert b"CN=1061;" in _segment(get_realtime_interval(mn, pw, 32, now=NOW))
    assert b"CN=2011;" in _segment(realtime_request(mn, pw, 32, now=NOW))
    begin = dt.datetime(2016, 8, 1, 0, tzinfo=dt.UTC)
    for cn in (Command.MINUTE_DATA, Command.HOUR_DATA, Command.DAY_DATA):
        segment = _segment(history_request(cn, mn, pw, 32, begin, NOW, now=NOW))
        assert f"CN={int(cn)};".encode() in segment
        assert b"Flag=5;" in segment
        assert b"CP=&&BeginTime=20160801080000;EndTime=20160801085857&&" in segment
    with pytest.raises(ValueError):
        history_request(Command.REALTIME_DATA, mn, pw, 32, begin, NOW)


# --- reassembly --------------------------------------------------------------------


def test_split_packets_are_joined_in_order() -> None:
    head = "QN=20160801085857223;ST=32;CN=2061;PW=1;MN=M1;Flag=7"
    parts = [
        parse_packet(f"{head};PNUM=3;PNO={n};CP=&&DataTime=20160801080000;{cp}&&".encode())
        for n, cp in ((2, "w21003-Avg=2.0"), (1, "w01018-Avg=1.0"), (3, "w21011-Avg=3.0"))
    ]
    assembler = Reassembler()
    assert assembler.add(parts[0], now=0) is None
    assert assembler.add(parts[1], now=1) is None
    joined = assembler.add(parts[2], now=2)
    assert joined is not None and not joined.is_split and joined.answer_wanted
    upload = upload_values(joined.cn, parse_cp(joined.cp))
    assert [v.parameter_code for v in upload.values] == ["w01018", "w21003", "w21011"]
    assert len(assembler) == 0


def test_incomplete_split_sets_expire() -> None:
    assembler = Reassembler(timeout=10)
    part = parse_packet(
        b"QN=20160801085857223;ST=32;CN=2061;PW=1;MN=M1;Flag=7;PNUM=2;PNO=1;CP=&&&&"
    )
    assert assembler.add(part, now=0) is None
    assert assembler.expire(now=5) == []
    assert assembler.expire(now=11) == [[part]]
