"""Code tables of HJ 212-2017: system types, command numbers, flags, reply codes."""

from __future__ import annotations

import enum


class SystemType(enum.IntEnum):
    """ST, system code (HJ 212-2017 table 5, excerpt)."""

    SURFACE_WATER = 21
    AIR_QUALITY = 22
    NOISE = 23
    AIR_POLLUTION_SOURCE = 31  # 大气环境污染源
    WATER_POLLUTION_SOURCE = 32  # 地表水体环境污染源
    SYSTEM_INTERACTION = 91  # 系统交互, used by the platform's replies


class Command(enum.IntEnum):
    """CN, command codes (HJ 212-2017 table 6, excerpt)."""

    GET_DEVICE_TIME = 1011
    SET_DEVICE_TIME = 1012
    GET_REALTIME_INTERVAL = 1061
    SET_REALTIME_INTERVAL = 1062
    REALTIME_DATA = 2011
    STOP_REALTIME_DATA = 2012
    DEVICE_STATUS = 2021
    DAY_DATA = 2031
    DAY_RUNNING_TIME = 2041
    MINUTE_DATA = 2051
    HOUR_DATA = 2061
    REQUEST_ANSWER = 9011
    EXECUTION_RESULT = 9012
    NOTICE_ANSWER = 9013
    DATA_ANSWER = 9014


class RequestReturn(enum.IntEnum):
    """QnRtn, the answer to a request (HJ 212-2017 table 8)."""

    READY = 1
    REFUSED = 2
    BAD_PASSWORD = 3
    BAD_MN = 4
    BAD_ST = 5
    BAD_FLAG = 6
    BAD_QN = 7
    BAD_CN = 8
    BAD_CRC = 9
    UNKNOWN_ERROR = 100


class ExecutionReturn(enum.IntEnum):
    """ExeRtn, the result of executing a command (HJ 212-2017 table 9)."""

    SUCCESS = 1
    FAILED = 2
    NO_DATA = 100


FLAG_ANSWER = 0b01  # A: the receiver must answer
FLAG_SPLIT = 0b10  # D: the packet is one of several (PNUM/PNO present)
VERSION_2005 = 0  # protocol version in Flag bits 2-7
VERSION_2017 = 1
