"""HJ 212 packets from public repositories (shared/data/hj212/packets.jsonl) through
:mod:`ecohub.protocol.hj212.inspect`, the gateway's codec.

The file gives for each packet an independent check of its length and CRC
(``length_ok``, ``crc_ok``, computed by its collector, not by this codec). Every packet
whose length and CRC are right is accepted; every other one is rejected or tolerated
with the reason those fields give, under the decisions of docs/hj212.md ("Real traffic:
what is accepted and why"):

- a declared length over 1,024 bytes: ``too_long`` (checked first, as the framer does);
- a length of four digits that counts the CRC and CR LF as well: accepted;
- any other wrong length: ``bad_length``; tolerated (a point marked tolerant takes it)
  when the length field only lacks its leading zeros and the CRC is right;
- a wrong CRC with a right length: ``bad_crc``, tolerated.

Then one test per deviation, on packets typed from the file (source in each comment).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecohub.protocol.hj212 import Frame, FrameError, Framer, parse_packet
from ecohub.protocol.hj212.encode import data_answer
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.protocol.hj212.inspect import (
    ACCEPTED,
    REJECTED,
    TOLERATED,
    FrameReport,
    inspect_bytes,
    inspect_frame,
    inspect_lines,
    summarise,
    verdict_key,
)
from ecohub.protocol.hj212.packet import PacketError
from ecohub.protocol.hj212.values import parse_data_time

PACKETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "hj212" / "packets.jsonl"
SHARED_SET_SIZE = 379

# The accept/reject table of the shared set (379 packets), as in docs/hj212.md.
TABLE = {
    "1249993110/IceCoffee.HJ212": {"accepted": 1},
    "Yimning/Daily-Code": {"accepted": 8, "rejected:bad_length": 4},
    "chenqi92/alltobs-hj212": {"accepted": 2},
    "flash520/hj212": {"accepted": 1},
    "gj0312/GB212ReceiverApp": {"accepted": 69},
    "guocay/hj212-protocol": {"accepted": 2, "tolerated:bad_crc": 4},
    "jinuxx/hj212": {"accepted": 3},
    "libem/HJ212-Moniter": {"accepted": 1},
    "liruoyu2008/HJ212Interpreter": {"accepted": 4},
    "mutoushirana/HJ212Virtual": {"accepted": 166},
    "rxlee/hj-t212-parser": {"accepted": 1},
    "sCair/Hj212-Distribute": {
        "accepted": 1,
        "rejected:bad_length": 1,
        "tolerated:bad_length": 23,
    },
    "skylakezf/HJ212_Server": {"accepted": 74, "rejected:bad_length": 2},
    "tang0-0/HJ212-Pack": {"accepted": 2},
    "teafull/hjt212": {"accepted": 2},
    "tonyxia2016/HJ212Receiver": {
        "accepted": 1,
        "rejected:too_long": 2,
        "tolerated:bad_crc": 1,
    },
    "xiaoyao9184/hj-t212-parser": {"accepted": 1, "tolerated:bad_crc": 1},
    "zblzbl1991/hj-212-parser": {"accepted": 2},
}


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    if not PACKETS.exists():
        pytest.skip(f"the shared HJ 212 packets are not here: {PACKETS}")
    with PACKETS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def reports(records: list[dict[str, Any]]) -> list[FrameReport]:
    with PACKETS.open("rb") as lines:
        found = list(inspect_lines(lines, PACKETS.name))
    assert len(found) == len(records)  # one packet per line, none missed, none extra
    return found


def expected(record: dict[str, Any]) -> tuple[str, str | None]:
    """Verdict and reason code from the file's own length and CRC checks."""
    field, data_len, crc_ok = record["len_field"], record["data_len"], record["crc_ok"]
    if len(field) == 4 and int(field) > 1024:
        return REJECTED, "too_long"
    if len(field) == 4 and int(field) == data_len + 6 and crc_ok:
        return ACCEPTED, None  # the length counts the CRC and CR LF too
    if not record["length_ok"]:
        if len(field) < 4 and int(field) == data_len and crc_ok:
            return TOLERATED, "bad_length"  # the leading zeros missing
        return REJECTED, "bad_length"
    if not crc_ok:
        return TOLERATED, "bad_crc"
    return ACCEPTED, None


def repository(record: dict[str, Any]) -> str:
    return str(record["source"]).split("@", 1)[0]


def test_packets_are_found_byte_for_byte(
    records: list[dict[str, Any]], reports: list[FrameReport]
) -> None:
    for record, report in zip(records, reports, strict=True):
        assert report.raw == record["raw"].removesuffix("\r\n").encode(), report.where
        assert report.origin == record["source"]
        assert report.cn == record["CN"] and report.st == record["ST"], report.where


def test_every_packet_with_right_length_and_crc_is_accepted(
    records: list[dict[str, Any]], reports: list[FrameReport]
) -> None:
    refused = [
        (report.where, report.reason)
        for record, report in zip(records, reports, strict=True)
        if record["crc_ok"] and record["length_ok"] and not report.ok
    ]
    assert refused == []


def test_every_other_packet_is_refused_with_the_reason_the_file_gives(
    records: list[dict[str, Any]], reports: list[FrameReport]
) -> None:
    for record, report in zip(records, reports, strict=True):
        verdict, reason = expected(record)
        assert report.verdict == verdict, (report.where, report.reason)
        assert (report.reason.code if report.reason else None) == reason, report.where


def test_the_table_per_source(records: list[dict[str, Any]], reports: list[FrameReport]) -> None:
    from_the_file: dict[str, Counter[str]] = {}
    for record in records:
        verdict, reason = expected(record)
        key = verdict if reason is None else f"{verdict}:{reason}"
        from_the_file.setdefault(repository(record), Counter())[key] += 1
    summary = summarise(reports)
    assert summary.by_source == from_the_file
    assert summary.frames == len(records)
    assert summary.accepted + sum(summary.tolerated.values()) + sum(
        summary.rejected.values()
    ) == len(records)
    if len(records) != SHARED_SET_SIZE:
        pytest.skip(f"{len(records)} packets, not the shared set's {SHARED_SET_SIZE}")
    assert {name: dict(counts) for name, counts in summary.by_source.items()} == TABLE
    assert (summary.accepted, dict(summary.tolerated), dict(summary.rejected)) == (
        341,
        {"bad_crc": 6, "bad_length": 23},
        {"bad_length": 7, "too_long": 2},
    )


def test_version_guess_agrees_with_the_files_where_codes_decide(
    records: list[dict[str, Any]], reports: list[FrameReport]
) -> None:
    for record, report in zip(records, reports, strict=True):
        guess = record["version_guess"]
        if guess in ("2017", "2005") and not all(c.startswith("SB") for c in record["codes"]):
            assert report.version == guess, report.where


def test_reports_are_json_and_the_password_masked(reports: list[FrameReport]) -> None:
    for report in reports:
        as_dict = report.to_dict()
        json.dumps(as_dict)
        assert {"ok", "reason", "cn", "mn", "values"} <= as_dict.keys()
        if report.pw:
            assert f"PW={report.pw};" not in as_dict["raw"] and set(as_dict["pw"]) == {"*"}
    json.dumps(summarise(reports).to_dict())


# --- each deviation and its decision -----------------------------------------------------


def test_lower_case_crc_is_accepted() -> None:
    # chenqi92/alltobs-hj212 README.md: a surface-water 2011 packet.
    raw = (
        b"##0109ST=32;CN=2011;PW=123456;MN=NJGDKYYC202101q0001w0001;"
        b"CP=&&DataTime=20210305003817000;ele01-Rtd=1;ele02-Rtd=0&&8c41"
    )
    report = inspect_frame(raw)
    assert report.ok and "crc_lower_case" in report.deviations
    assert "datatime_fraction" in report.deviations  # 17 digits: milliseconds dropped
    assert report.data_time == "2021-03-04T16:38:17+00:00"


def test_qn_of_unix_milliseconds_is_accepted_and_echoed() -> None:
    # mutoushirana/HJ212Virtual Log.txt: the simulator's 9011 answer, QN of 13 digits.
    raw = (
        b"##0080QN=1617937097417;ST=21;CN=9011;PW=123456;MN=DXCBZ000000005;Flag=5;"
        b"CP=&&QnRtn=1&&F6C1"
    )
    report = inspect_frame(raw)
    assert report.ok and report.kind == "answer" and "qn_unix_ms" in report.deviations
    packet = parse_packet(raw[6:-4])
    assert packet.qn == "1617937097417"
    assert data_answer(packet).startswith(b"##") and b"QN=1617937097417;" in data_answer(packet)


def test_unpadded_length_is_tolerated_only() -> None:
    # sCair/Hj212-Distribute logs/scada-distribute.log: a 1012 time setting, "##81".
    raw = (
        b"##81QN=;ST=23;CN=1012;PW=123456;MN=0507A010003242;CP=&&SystemTime=20250221141055097&&1DC0"
    )
    [error] = Framer().feed(raw + b"\r\n")
    assert isinstance(error, FrameError) and error.kind == "bad_length" and error.tolerable
    assert error.data == raw[4:-4]
    report = inspect_frame(raw)
    assert report.verdict == TOLERATED and report.reason is not None
    assert report.reason.code == "bad_length"
    assert {"length_unpadded", "qn_empty"} <= report.deviations.keys()
    assert parse_packet(raw[4:-4]).qn == ""  # QN= with nothing: read as sent
    # The same digits that are not the data length, or a wrong CRC: not tolerable.
    for bad in (raw.replace(b"##81", b"##80"), raw[:-4] + b"1DC1"):
        [error] = Framer().feed(bad + b"\r\n")
        assert isinstance(error, FrameError) and error.kind == "bad_length"
        assert not error.tolerable


def test_wrong_length_is_rejected_even_when_the_edit_is_plain() -> None:
    # skylakezf/HJ212_Server server.log: MN=Abc edited to Abbc after length and CRC were
    # computed; with Abc both check out again.
    raw = (
        b"##0175QN=20241203172603223;ST=31;CN=2051;PW=123456;MN=Abbc;Flag=4;"
        b"CP=&&DataTime=20241203172500;a00000-Cou=0.0000,a00000-Min=0.0000,"
        b"a00000-Avg=0.0000,a00000-Max=0.0000,a00000-Flag=D&&FD81"
    )
    report = inspect_frame(raw)
    assert report.verdict == REJECTED and report.reason is not None
    assert report.reason.code == "bad_length"
    assert report.mn == "Abbc" and report.cn == "2051"  # the header, read for display
    assert inspect_frame(raw.replace(b"MN=Abbc", b"MN=Abc")).ok


def test_eighteen_digit_qn_and_sixteen_digit_datatime_are_read() -> None:
    # sCair/Hj212-Distribute HJ212.java: the packet's length and CRC are wrong (rejected),
    # but its QN and DataTime are readable and would be accepted.
    raw = (
        b"##0215QN=202411123203230940;ST=39;CN=2011;PW=123456;MN=0507A010003197;Flag=4;"
        b"CP=&&DataTime=2024112320423050;a01001-Rtd=19.3;a01006-Rtd=101.620;a01007-Rtd=0.0;"
        b"a01008-Rtd=59;a34002-Rtd=19;a34004-Rtd=10;Flag=N&&3240"
    )
    report = inspect_frame(raw)
    assert report.verdict == REJECTED and report.reason is not None
    assert report.reason.code == "bad_length"
    assert parse_packet(raw[6:-4]).qn == "202411123203230940"
    assert parse_data_time("2024112320423050") == dt.datetime(
        2024, 11, 23, 12, 42, 30, tzinfo=dt.UTC
    )
    # Framed again as the sender should have: accepted, with both deviations.
    fixed = inspect_frame(frame_packet(raw[6:-4]))
    assert fixed.ok and {"qn_digits", "datatime_fraction", "cp_bare_flag"} <= set(fixed.deviations)
    assert len(fixed.values) == 6


def test_cp_without_closing_ampersands_is_read_when_framed() -> None:
    # sCair/Hj212-Distribute scada-distribute.log has a packet with ";Flag=N" and no
    # closing "&&"; this is the log's 2011 packet of that shape with the "&&" taken off
    # and framed again (length and CRC right, as such a sender computes them).
    segment = (
        b"QN=20250131202809340;ST=39;CN=2011;PW=123456;MN=0507A010003242;Flag=4;"
        b"CP=&&DataTime=20250131202809;a34001-Rtd=92;a34002-Rtd=19;Flag=N"
    )
    with pytest.raises(PacketError) as error:
        parse_packet(segment)  # a bare segment: it may have been cut off
    assert error.value.code == "bad_cp"
    assert parse_packet(segment, framed=True).cp.endswith("a34002-Rtd=19;Flag=N")
    report = inspect_frame(frame_packet(segment))
    assert report.ok and {"cp_not_closed", "cp_bare_flag"} <= report.deviations.keys()
    assert [(v.parameter_code, v.value, v.data_flag) for v in report.values] == [
        ("a34002", 19.0, "N")
    ]


def test_long_password_is_accepted_and_masked() -> None:
    # 1249993110/IceCoffee.HJ212 README.md: a 2061 hourly packet, PW of 24 hex digits.
    raw = (
        b"##0285QN=20190925181031464;ST=22;CN=2061;PW=BF470F88957588DE902D1A52;"
        b"MN=Z13401000010301;Flag=5;CP=&&DataTime=20190924220000;a34006-Avg=2.69700,"
        b"a34006-Flag=N;a34007-Avg=7.96600,a34007-Flag=N;a34048-Avg=3.30600,a34048-Flag=N;"
        b"a34047-Avg=7.35700,a34047-Flag=N;a34049-Avg=10.66300,a34049-Flag=N&&C181"
    )
    report = inspect_frame(raw)
    assert report.ok and report.pw == "BF470F88957588DE902D1A52"
    assert "pw_length" in report.deviations
    shown = report.to_dict()
    assert shown["pw"] == "*" * 24 and "BF470F88" not in shown["raw"]
    assert report.to_dict(show_password=True)["pw"] == "BF470F88957588DE902D1A52"


def test_three_digit_st_is_accepted() -> None:
    # tonyxia2016/HJ212Receiver rx.log: a received 2011 packet with ST=101.
    raw = (
        b"##0234ST=101;CN=2011;PW=123456;MN=41050022000017;CP=&&DataTime=20200922110000;"
        b"a34010-Rtd=2.017,a34010-Flag=N;a34009-Rtd=0.522,a34009-Flag=N;ua19004-Rtd=2.017,"
        b"ua19004-Flag=N;ua19005-Rtd=0.522,ua19005-Flag=N;ua19003-Rtd=2.539,ua19003-Flag=N&&3300"
    )
    report = inspect_frame(raw)
    assert report.ok and report.st == "101" and "st_three_digits" in report.deviations
    with pytest.raises(PacketError) as error:
        parse_packet(raw[6:-4].replace(b"ST=101", b"ST=1011"))
    assert error.value.code == "bad_st"


def test_modbus_crc_is_named_and_tolerated() -> None:
    # tonyxia2016/HJ212Receiver rx.log: 3 of 5 received packets carry the CRC-16/MODBUS of
    # the data, low byte first; this one is 868 bytes (the other two exceed 1,024).
    record_crc = b"A6EC"
    segment = (
        b"ST=31;CN=2011;PW=123456;MN=4201003;CP=&&DataTime=20200923111707;"
        b"112-Rtd=11.285,112-Flag=N;121-Rtd=27.702,121-Flag=N;023-Rtd=4.372,023-Flag=N;"
        b"802-Rtd=12.668,802-Flag=N;803-Rtd=4.314,803-Flag=N;808-Rtd=0.000,808-Flag=N;"
        b"801-Rtd=2.920,801-Flag=N;811-Rtd=266.765,811-Flag=N;810-Rtd=44.881,810-Flag=N;"
        b"812-Rtd=1.508,812-Flag=N;806-Rtd=10.850,806-Flag=N;039-Rtd=14.531,039-Flag=N;"
        b"805-Rtd=23.591,805-Flag=N;817-Rtd=1.583,817-Flag=N;a99949-Rtd=786.913,"
        b"a99949-Flag=N;a99948-Rtd=267.765,a99948-Flag=N;804-Rtd=140.124,804-Flag=N;"
        b"040-Rtd=0.000,040-Flag=N;028-Rtd=0.160,028-Flag=N;029-Rtd=4.685,029-Flag=N;"
        b"030-Rtd=40.235,030-Flag=N;041-Rtd=0.000,041-Flag=N;809-Rtd=1.615,809-Flag=N;"
        b"814-Rtd=4.697,814-Flag=N;038-Rtd=0.881,038-Flag=N;816-Rtd=1.284,816-Flag=N;"
        b"813-Rtd=2.116,813-Flag=N;033-Rtd=0.000,033-Flag=N;036-Rtd=0.000,036-Flag=N;"
        b"807-Rtd=0.000,807-Flag=N;815-Rtd=0.721,815-Flag=N"
    )
    raw = b"##0868" + segment + b"&&" + record_crc
    [error] = Framer().feed(raw + b"\r\n")
    assert isinstance(error, FrameError) and error.kind == "bad_crc" and error.tolerable
    assert error.reason == (
        "CRC A6EC does not match the data (computed 0440); "
        "it is the data's CRC-16/MODBUS (low byte first), not HJ 212's CRC"
    )
    report = inspect_frame(raw)
    assert report.verdict == TOLERATED and "crc_modbus" in report.deviations


def test_over_1024_bytes_is_too_long(records: list[dict[str, Any]]) -> None:
    # tonyxia2016/HJ212Receiver rx.log: 2005-style uploads of 1,025 and 1,623 bytes.
    long_ones = [r for r in records if len(r["len_field"]) == 4 and int(r["len_field"]) > 1024]
    assert sorted(r["data_len"] for r in long_ones) == [1025, 1623]
    for record in long_ones:
        report = inspect_frame(record["raw"].encode())
        assert report.verdict == REJECTED and report.reason is not None
        assert report.reason.code == "too_long"
        assert "crc_modbus" in report.deviations  # the device's other deviation
        # With a larger limit (Framer(max_data_length=…)), a tolerant point takes them.
        assert inspect_frame(record["raw"].encode(), max_data_length=2048).verdict == TOLERATED


def test_2005_codes_and_an_empty_mn() -> None:
    # Yimning/Daily-Code rtuacq_protocol_*.c: a 2005 CEMS packet with "PW=;MN=".
    raw = (
        b"##0316ST=31;CN=2011;PW=;MN=;CP=&&DataTime=20200718123600;01-ZsRtd=2.47,01-Rtd=1.48,"
        b"01-Flag=N;02-ZsRtd=5.08,02-Rtd=3.05,02-Flag=N;03-ZsRtd=0.61,03-Rtd=0.37,03-Flag=N;"
        b"S01-Rtd=20.7,S01-Flag=N;S02-Rtd=3.27,S02-Flag=N;S03-Rtd=40.35,S03-Flag=N;"
        b"S05-Rtd=0,S05-Flag=N;S08-Rtd=0.1,S08-Flag=N;B02-ZsRtd=6.46,B02-Rtd=7.43,"
        b"B02-Flag=N&&7640"
    )
    report = inspect_frame(raw)
    assert report.ok and report.version == "2005" and report.mn == ""
    assert {"mn_empty", "codes_2005", "no_qn_flag"} <= report.deviations.keys()
    assert {v.parameter_code: v.value for v in report.values} == {
        "a34013": 1.48,  # 01 smoke dust
        "a34013-ZsRtd": 2.47,
        "a21026": 3.05,  # 02 SO2
        "a21026-ZsRtd": 5.08,
        "a21002": 0.37,  # 03 NOx
        "a21002-ZsRtd": 0.61,
        "a19001": 20.7,  # S01 O2
        "a01011": 3.27,  # S02 flue gas velocity
        "a01012": 40.35,  # S03 flue gas temperature
        "a01014": 0.0,  # S05 flue gas humidity
        "a01013": 0.1,  # S08 flue gas pressure
        "a00000": 7.43,  # B02 flue gas flow
        "a00000-ZsRtd": 6.46,
    }
    with pytest.raises(PacketError) as error:  # no MN field at all stays bad_mn
        parse_packet(raw[6:-4].replace(b"MN=;", b""))
    assert error.value.code == "bad_mn"


def test_vendor_commands_are_commands() -> None:
    # Yimning/Daily-Code: a vendor 5011 request with extra header fields.
    raw = b"##0065ST=32;CN=5011;PW=123456;MN=00000000000001;SC=;A=;CP=&&DataTime=&&EE01"
    report = inspect_frame(raw)
    assert report.ok and report.kind == "command" and report.values == []
    assert report.deviations.keys() >= {"cn_vendor", "header_extra"}
    assert report.deviations["header_extra"].startswith("SC, A:")


def test_data_commands_without_datatime_are_requests() -> None:
    # teafull/hjt212 encoder_test.go (2051 history request) and zblzbl1991/hj-212-parser
    # (2011 with an empty CP, as encode.realtime_request builds it).
    history = (
        b"##0124QN=20040516010101001;ST=32;CN=2051;PW=123456;MN=88888880000001;Flag=3;"
        b"CP=&&BeginTime=20040506111000,EndTime=20040506151000&&6B80"
    )
    start = (
        b"##0087QN=20201015123632010;ST=80;CN=2011;PW=123456;MN=410183160889201000212505;"
        b"Flag=4;CP=&&&&2080"
    )
    for raw in (history, start):
        report = inspect_frame(raw)
        assert report.ok and report.kind == "request" and report.values == []


def test_an_upload_with_nothing_to_store_is_flagged() -> None:
    # zblzbl1991/hj-212-parser MapperTest: a 2011 electricity upload (100000-Ia …, no Rtd).
    raw = (
        b"##0635QN=20201015123632010;ST=80;CN=2011;PW=123456;MN=410183160889201000212505;"
        b"Flag=5;CP=&&DataTime=20201015123000;100000-Ia=401.400,100000-Ib=394.000,"
        b"100000-Ic=382.000,100000-Ua=231.0,100000-Ub=231.4,100000-Uc=232.3,"
        b"100000-Pt=267.3919,100000-Pa=90.8620,100000-Pb=89.2773,100000-Pc=87.2527,"
        b"100000-Pdem=1.1268,100000-Ept=162762.484,100000-Epa=58128.980,"
        b"100000-Epb=55640.578,100000-Epc=48992.922,100000-Eg1=16698.939,100000-Eg2=1.260,"
        b"100000-Eg3=37.600,100000-Eg4=2.960,100000-Pa_ave=0.3964,100000-Pb_ave=0.3860,"
        b"100000-Pc_ave=0.3713,100000-Tpa=25.3,100000-Tpb=25.3,100000-Tpc=25.3,"
        b"100000-Pga=11.5,100000-Pgb=11.7,100000-Pgc=10.5,100000-Flag=N&&8201"
    )
    report = inspect_frame(raw)
    assert report.ok and report.kind == "upload" and report.values == []
    assert report.problems == [] and "no_values" in report.deviations


def test_wrong_crc_published_as_such_is_tolerated_only() -> None:
    # xiaoyao9184/hj-t212-parser PackLevelDeserializerTest.testFeature_DATA_CRC: the
    # source expects a CRC error.
    raw = (
        b"##0139ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817000;"
        b"B01-Rtd=36.91;011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&4981"
    )
    report = inspect_frame(raw)
    assert report.verdict == TOLERATED and report.reason is not None
    assert report.reason.text == "CRC 4981 does not match the data (computed 4980)"
    assert verdict_key(report) == "tolerated:bad_crc"
    assert len(report.values) == 3  # what a tolerant point would store


# --- finding packets in captures and logs --------------------------------------------

SIM_ANSWER = (
    b"##0080QN=1617937097417;ST=21;CN=9011;PW=123456;MN=DXCBZ000000005;Flag=5;CP=&&QnRtn=1&&F6C1"
)
STANDARD_EXAMPLE = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    b"Flag=5;CP=&&RtdInterval=30&&1C80"
)


def test_a_gbk_log_line_keeps_the_packet_exact() -> None:
    # The line shape of mutoushirana/HJ212Virtual's Log.txt (GBK).
    prefix = (
        "INFO  2021-04-09 10:58:17,423 [11   ] Redflag.Slave.Virtual.ViewModels.MainViewModel"
        " - 【2021-04-09 10:58:17】收到数据："
    )
    log = prefix.encode("gbk") + SIM_ANSWER + b"\r\n" + "其他".encode("gbk") + b"\r\n"
    [report] = inspect_bytes(log, "Log.txt")
    assert report.raw == SIM_ANSWER and report.ok
    assert report.where == "Log.txt:1" and report.terminator == "CRLF"
    assert report.context.endswith("【2021-04-09 10:58:17】收到数据：")


def test_several_packets_in_a_line_and_source_literals() -> None:
    line = (
        b'log.info("x"); String a = "' + STANDARD_EXAMPLE + b'\\r\\n"; // and '
        + SIM_ANSWER + SIM_ANSWER + b", then " + STANDARD_EXAMPLE + b",\n"
    )  # fmt: skip
    found = list(inspect_bytes(line))
    assert [r.raw for r in found] == [STANDARD_EXAMPLE, SIM_ANSWER, SIM_ANSWER, STANDARD_EXAMPLE]
    assert [r.terminator for r in found] == ["escaped CRLF", "none", "none", "none"]
    assert all(r.ok for r in found)


def test_a_packet_holding_spaces_is_kept_whole_by_its_length() -> None:
    segment = b"ST=32;CN=2011;PW=123456;MN=M1;CP=&&DataTime=20240101000000;w01018-Rtd= 12.5&&"
    packet = frame_packet(segment).removesuffix(b"\r\n")
    [report] = inspect_bytes(b"2024-01-01 recv " + packet + b" from 10.0.0.1\n")
    assert report.raw == packet and report.ok
    assert [(v.parameter_code, v.value) for v in report.values] == [("w01018", 12.5)]


def test_a_cut_off_packet_in_a_log_is_truncated() -> None:
    cut = STANDARD_EXAMPLE[: STANDARD_EXAMPLE.index(b"MN=") + 3]
    [report] = inspect_bytes(b"recv: " + cut + b"\n")
    assert report.verdict == REJECTED and report.reason is not None
    assert report.reason.code == "truncated" and report.cn == "1062"


def test_json_lines_with_a_raw_field_and_a_summary() -> None:
    lines = [
        json.dumps({"raw": STANDARD_EXAMPLE.decode() + "\r\n", "source": "a/b@1:x"}).encode(),
        json.dumps({"raw": SIM_ANSWER.decode()[:-1] + "0"}).encode(),
        b'{"msg": "sent ' + STANDARD_EXAMPLE + b'"}',
    ]
    found = list(inspect_lines(lines, "capture.jsonl"))
    assert [r.verdict for r in found] == [ACCEPTED, TOLERATED, ACCEPTED]
    assert found[0].terminator == "CRLF" and found[0].source == "a/b"
    summary = summarise(found)
    assert summary.accepted == 2 and summary.tolerated == {"bad_crc": 1}
    assert summary.by_source == {
        "a/b": {"accepted": 1},
        "capture.jsonl": {"accepted": 1, "tolerated:bad_crc": 1},
    }
    text = "\n".join(summary.lines())
    assert "capture.jsonl" in text and text.splitlines()[-1].split() == ["total", "2", "1"]


def test_framer_and_inspection_agree_on_stream_packets(reports: list[FrameReport]) -> None:
    """The file's packets sent as one TCP stream: the framer passes exactly those that
    inspection does not refuse for their length or CRC."""
    stream = b"".join(report.raw + b"\r\n" for report in reports)
    framer = Framer()
    results = framer.feed(stream) + framer.flush()
    assert [result.raw for result in results] == [report.raw + b"\r\n" for report in reports]
    framing = {"bad_crc", "bad_length", "too_long"}
    for report, result in zip(reports, results, strict=True):
        refused = report.reason is not None and report.reason.code in framing
        assert isinstance(result, Frame) != refused, report.where


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=80),
            st.sampled_from(
                [
                    STANDARD_EXAMPLE,
                    SIM_ANSWER,
                    b"##",
                    b"##0",
                    b"##81",
                    b"&&",
                    b"\r\n",
                    b"\n",
                    b"\\r\\n",
                    b"CP=&&",
                    b"1C80",
                    b'{"raw": "##0',
                    b"\xb1\xa8",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_any_bytes_inspect_without_error(parts: list[bytes]) -> None:
    data = b"".join(parts)
    for report in inspect_bytes(data):
        assert report.raw.startswith(b"##")
        json.dumps(report.to_dict())
        assert report.raw in data or b'"raw"' in data  # a JSON string may escape bytes
