"""Property tests of the HJ 212 codec (hypothesis)."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecohub.protocol.hj212 import Frame, FrameError, Framer, crc, parse_cp, parse_packet
from ecohub.protocol.hj212.crc import hj212_crc16, python_crc16
from ecohub.protocol.hj212.encode import data_segment, encode_cp
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.protocol.hj212.packet import PacketError, _parse_cp_items

_token = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=12)
_code = st.from_regex(r"[aw][0-9]{5}", fullmatch=True)
_number = st.decimals(min_value=-1e6, max_value=1e6, places=3, allow_nan=False).map(str)


@st.composite
def packets(draw: st.DrawFn) -> dict[str, object]:
    codes = draw(
        st.dictionaries(
            _code,
            st.fixed_dictionaries({"Rtd": _number, "Flag": st.sampled_from("NFMSDCTB")}),
            max_size=6,
        )
    )
    return {
        "qn": draw(st.one_of(st.none(), st.from_regex(r"[0-9]{17}", fullmatch=True))),
        "st": draw(st.sampled_from([21, 22, 23, 31, 32, 91])),
        "cn": draw(st.sampled_from([2011, 2051, 2061, 2031, 9014, 1062])),
        "pw": draw(_token),
        "mn": draw(
            st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=24)
        ),
        "flag": draw(st.one_of(st.none(), st.integers(0, 255))),
        "cp": encode_cp([("DataTime", draw(st.from_regex(r"20[0-9]{12}", fullmatch=True)))], codes),
        "codes": codes,
    }


def _valid_frame(frame: Frame) -> bool:
    return hj212_crc16(frame.data) == int(frame.raw[-6:-2], 16)


@given(packets())
def test_encode_frame_parse_round_trip(fields: dict[str, object]) -> None:
    codes = fields.pop("codes")
    raw = frame_packet(data_segment(**fields))  # type: ignore[arg-type]
    [frame] = Framer().feed(raw)
    assert isinstance(frame, Frame)
    packet = parse_packet(frame.data)
    assert (packet.qn, packet.st, packet.cn, packet.pw, packet.mn, packet.flag) == (
        fields["qn"],
        str(fields["st"]),
        str(fields["cn"]),
        fields["pw"],
        fields["mn"],
        fields["flag"],
    )
    assert parse_cp(packet.cp).codes == codes


def _cp_or_error(parse: object, cp: str) -> object:
    try:
        found = parse(cp)  # type: ignore[operator]
    except PacketError as error:
        return error.reason
    return found.fields, found.codes


@settings(max_examples=500)
@given(st.text(alphabet="aw01-=;,.E+N& \t\x1f\xa0", max_size=40))
def test_cp_read_by_its_fast_path_as_item_by_item(cp: str) -> None:
    """parse_cp reads a CP without white space in one split: the same fields, codes and
    errors as the item-by-item reading that strips it."""
    assert _cp_or_error(parse_cp, cp) == _cp_or_error(_parse_cp_items, cp)


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_bytes_never_raise_nor_yield_bad_frames(chunks: list[bytes]) -> None:
    framer = Framer()
    for chunk in chunks:
        for result in framer.feed(chunk):
            assert isinstance(result, FrameError) or _valid_frame(result)
    framer.flush()


@settings(max_examples=15, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(packets(), min_size=3, max_size=3), st.data())
def test_every_single_byte_corruption_spares_the_other_packets(
    fields: list[dict[str, object]], data: st.DataObject
) -> None:
    raws = []
    for item in fields:
        item = dict(item)
        item.pop("codes")
        raws.append(frame_packet(data_segment(**item)))  # type: ignore[arg-type]
    stream = b"".join(raws)
    bounds = []
    offset = 0
    for raw in raws:
        bounds.append((offset, offset + len(raw)))
        offset += len(raw)
    for position in range(len(stream)):
        # Bytes with a meaning to the framer are the dangerous ones: try them more often.
        replacement = data.draw(
            st.one_of(st.sampled_from(b"#\r\n0&;=,"), st.integers(0, 255)).filter(
                lambda b, p=position: b != stream[p]
            )
        )
        corrupted = stream[:position] + bytes([replacement]) + stream[position + 1 :]
        framer = Framer()
        results = framer.feed(corrupted) + framer.flush()
        good = [r for r in results if isinstance(r, Frame)]
        assert all(_valid_frame(frame) for frame in good)
        untouched = [
            raw for raw, (lo, hi) in zip(raws, bounds, strict=True) if not lo <= position < hi
        ]
        got = [frame.raw for frame in good]
        for raw in untouched:
            assert raw in got, (position, replacement)


def test_every_corruption_of_real_packets_spares_the_others() -> None:
    """Exhaustive: every position, every byte value, in a stream of real packets."""
    from tests.test_hj212_codec import ODOUR_MONITOR, STANDARD_EXAMPLE, WASTE_WATER_2005

    raws = [STANDARD_EXAMPLE, ODOUR_MONITOR, WASTE_WATER_2005]
    stream = b"".join(raws)
    starts = [0, len(raws[0]), len(raws[0]) + len(raws[1]), len(stream)]
    for position in range(len(stream)):
        hit = next(i for i in range(3) if starts[i] <= position < starts[i + 1])
        for replacement in range(256):
            if replacement == stream[position]:
                continue
            corrupted = stream[:position] + bytes([replacement]) + stream[position + 1 :]
            framer = Framer()
            results = framer.feed(corrupted) + framer.flush()
            good = [r.raw for r in results if isinstance(r, Frame)]
            assert all(_valid_frame(r) for r in results if isinstance(r, Frame))
            for index, raw in enumerate(raws):
                if index != hit:
                    assert raw in good, (position, replacement)


def _reference_crc16(data: bytes) -> int:
    """HJ 212-2017 Appendix A's C routine, transcribed bit by bit."""
    crc_reg = 0xFFFF
    for byte in data:
        crc_reg = (crc_reg >> 8) ^ byte
        for _ in range(8):
            check = crc_reg & 0x0001
            crc_reg >>= 1
            if check == 0x0001:
                crc_reg ^= 0xA001
    return crc_reg


@given(st.binary(max_size=600))
def test_table_crc_equals_the_standards_routine(data: bytes) -> None:
    assert python_crc16(data) == _reference_crc16(data)


@given(st.binary(max_size=1100))
def test_c_crc_equals_the_standards_routine(data: bytes) -> None:
    compiled = pytest.importorskip(
        "ecohub.protocol.hj212._crc", reason="the C CRC is not built (no compiler at install)"
    )
    assert compiled.hj212_crc16(data) == _reference_crc16(data)
    assert compiled.hj212_crc16(bytearray(data)) == compiled.hj212_crc16(memoryview(data))


def test_the_gateway_uses_the_c_crc_where_it_is_built() -> None:
    compiled = pytest.importorskip(
        "ecohub.protocol.hj212._crc", reason="the C CRC is not built (no compiler at install)"
    )
    assert crc.C_CRC and hj212_crc16 is compiled.hj212_crc16
    with pytest.raises(TypeError):
        compiled.hj212_crc16("text is not bytes")  # type: ignore[arg-type]
