"""Building packets: the platform's answers and its commands to data loggers.

Answers copy the request's QN, MN and PW and use ST=91 (system interaction); the Flag
keeps the sender's protocol version with no answer wanted (HJ 212-2017, 6.6 and
Appendix C).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import lru_cache

from ecohub.protocol.hj212.codes import (
    FLAG_ANSWER,
    VERSION_2017,
    Command,
    ExecutionReturn,
    RequestReturn,
    SystemType,
)
from ecohub.protocol.hj212.framing import frame_packet
from ecohub.protocol.hj212.packet import Packet

CST = dt.timezone(dt.timedelta(hours=8), "CST")


def format_qn(moment: dt.datetime) -> str:
    """QN: request time as YYYYMMDDhhmmsszzz (China Standard Time)."""
    local = moment.astimezone(CST)
    return local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def format_time(moment: dt.datetime) -> str:
    """A CP time (DataTime, SystemTime, BeginTime…) as YYYYMMDDhhmmss in CST."""
    return moment.astimezone(CST).strftime("%Y%m%d%H%M%S")


def encode_cp(
    fields: Iterable[tuple[str, str]] = (),
    codes: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A CP data area: plain fields, then one group per code (``code-suffix=value``)."""
    groups = [f"{key}={value}" for key, value in fields]
    for code, values in (codes or {}).items():
        groups.append(",".join(f"{code}-{suffix}={value}" for suffix, value in values.items()))
    return ";".join(groups)


def data_segment(
    *,
    cn: int | str,
    mn: str,
    pw: str,
    st: int | str,
    cp: str,
    qn: str | None = None,
    flag: int | None = VERSION_2017 << 2,
    pnum: int | None = None,
    pno: int | None = None,
) -> bytes:
    """The data segment with the fields in the standard's order."""
    parts = []
    if qn is not None:
        parts.append(f"QN={qn}")
    parts += [f"ST={int(st)}", f"CN={int(cn)}", f"PW={pw}", f"MN={mn}"]
    if flag is not None:
        parts.append(f"Flag={flag}")
    if pnum is not None and pno is not None:
        parts += [f"PNUM={pnum}", f"PNO={pno}"]
    return (";".join(parts) + f";CP=&&{cp}&&").encode("ascii")


def encode_packet(**kwargs: object) -> bytes:
    """A whole framed packet; takes the arguments of :func:`data_segment`."""
    return frame_packet(data_segment(**kwargs))  # type: ignore[arg-type]


def _answer(request: Packet, cn: Command, cp: str) -> bytes:
    return frame_packet(
        data_segment(
            qn=request.qn,
            st=SystemType.SYSTEM_INTERACTION,
            cn=cn,
            pw=request.pw or "",
            mn=request.mn,
            flag=request.version << 2,
            cp=cp,
        )
    )


def data_answer(request: Packet) -> bytes:
    """9014 数据应答: the platform received an upload that asked for an answer."""
    if request.qn is None:
        return _answer(request, Command.DATA_ANSWER, "")
    # The gateway answers every upload: all but the QN is the same for a logger.
    tail = _data_answer_tail(request.pw or "", request.mn, request.version << 2)
    return frame_packet(b"QN=" + request.qn.encode("ascii") + tail)


@lru_cache(maxsize=65536)
def _data_answer_tail(pw: str, mn: str, flag: int) -> bytes:
    segment = data_segment(
        qn="",
        st=SystemType.SYSTEM_INTERACTION,
        cn=Command.DATA_ANSWER,
        pw=pw,
        mn=mn,
        flag=flag,
        cp="",
    )
    return segment[len(b"QN=") :]


def request_answer(request: Packet, result: RequestReturn = RequestReturn.READY) -> bytes:
    """9011 请求应答 with QnRtn."""
    return _answer(request, Command.REQUEST_ANSWER, f"QnRtn={int(result)}")


def execution_result(request: Packet, result: ExecutionReturn = ExecutionReturn.SUCCESS) -> bytes:
    """9012 执行结果 with ExeRtn."""
    return _answer(request, Command.EXECUTION_RESULT, f"ExeRtn={int(result)}")


def notice_answer(request: Packet) -> bytes:
    """9013 通知应答."""
    return _answer(request, Command.NOTICE_ANSWER, "")


def _command(cn: Command, mn: str, pw: str, st: int, cp: str, now: dt.datetime | None) -> bytes:
    return encode_packet(
        qn=format_qn(now or dt.datetime.now(dt.UTC)),
        st=st,
        cn=cn,
        pw=pw,
        mn=mn,
        flag=(VERSION_2017 << 2) | FLAG_ANSWER,
        cp=cp,
    )


def get_device_time(
    mn: str, pw: str, st: int, pol_id: str | None = None, now: dt.datetime | None = None
) -> bytes:
    """1011 提取现场机时间 (optionally of one instrument, PolId)."""
    cp = f"PolId={pol_id}" if pol_id else ""
    return _command(Command.GET_DEVICE_TIME, mn, pw, st, cp, now)


def set_device_time(
    mn: str,
    pw: str,
    st: int,
    system_time: dt.datetime,
    pol_id: str | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """1012 设置现场机时间 to ``system_time``."""
    fields = ([("PolId", pol_id)] if pol_id else []) + [("SystemTime", format_time(system_time))]
    return _command(Command.SET_DEVICE_TIME, mn, pw, st, encode_cp(fields), now)


def get_realtime_interval(mn: str, pw: str, st: int, now: dt.datetime | None = None) -> bytes:
    """1061 提取实时数据间隔."""
    return _command(Command.GET_REALTIME_INTERVAL, mn, pw, st, "", now)


def set_realtime_interval(
    mn: str, pw: str, st: int, seconds: int, now: dt.datetime | None = None
) -> bytes:
    """1062 设置实时数据间隔 (RtdInterval, seconds; the standard allows 30-3600)."""
    if not 30 <= seconds <= 3600:
        raise ValueError(f"RtdInterval {seconds} s is outside 30-3600")
    return _command(Command.SET_REALTIME_INTERVAL, mn, pw, st, f"RtdInterval={seconds}", now)


HISTORY_COMMANDS = {Command.MINUTE_DATA, Command.HOUR_DATA, Command.DAY_DATA}


def history_request(
    cn: Command,
    mn: str,
    pw: str,
    st: int,
    begin: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
) -> bytes:
    """2051/2061/2031 取历史数据 (补发) for ``begin``–``end``."""
    if cn not in HISTORY_COMMANDS:
        raise ValueError(f"CN {int(cn)} is not a history data command")
    if end < begin:
        raise ValueError("history request ends before it begins")
    cp = encode_cp([("BeginTime", format_time(begin)), ("EndTime", format_time(end))])
    return _command(cn, mn, pw, st, cp, now)


def realtime_request(mn: str, pw: str, st: int, now: dt.datetime | None = None) -> bytes:
    """2011 取污染物实时数据 (ask the logger to start sending real-time data)."""
    return _command(Command.REALTIME_DATA, mn, pw, st, "", now)
