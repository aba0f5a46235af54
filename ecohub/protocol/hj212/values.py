"""From a data upload (CN 2011/2051/2061/2031) to the values the store keeps.

Each pollutant group gives one value per statistic. The primary value (``-Rtd`` for
real-time data, ``-Avg`` for minute/hour/day data) is stored under the parameter's
HJ 212-2017 code; the others under the code and the suffix, e.g. ``a21026-Cou``
(emitted mass in the period), ``a21026-Max``, ``a21026-ZsAvg`` (converted to the
reference O2 content). HJ/T 212-2005 codes are mapped to 2017 codes.

DataTime is the logger's local time, which HJ 212 takes to be Beijing time (UTC+8).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from ecohub.protocol.hj212.codes import Command
from ecohub.protocol.hj212.packet import CpData, PacketError
from ecohub.registry.parameters import canonical_parameter_code

CST = dt.timezone(dt.timedelta(hours=8), "CST")

# CN of a data upload → interval kind of the store.
DATA_COMMANDS: dict[str, str] = {
    str(int(Command.REALTIME_DATA)): "rt",
    str(int(Command.MINUTE_DATA)): "min",
    str(int(Command.HOUR_DATA)): "hour",
    str(int(Command.DAY_DATA)): "day",
}
PRIMARY_SUFFIX = {"rt": "Rtd", "min": "Avg", "hour": "Avg", "day": "Avg"}
SECONDARY_SUFFIXES = {
    "rt": ("ZsRtd",),
    "min": ("Min", "Max", "Cou", "ZsMin", "ZsAvg", "ZsMax"),
    "hour": ("Min", "Max", "Cou", "ZsMin", "ZsAvg", "ZsMax"),
    "day": ("Min", "Max", "Cou", "ZsMin", "ZsAvg", "ZsMax"),
}
# Every statistic an upload of each interval kind may carry, the primary one first.
MEASURED_SUFFIXES = {
    interval: (primary, *SECONDARY_SUFFIXES[interval])
    for interval, primary in PRIMARY_SUFFIX.items()
}
VALID_FLAGS = frozenset("NFMSDCTB")
# HJ/T 212-2005 has P (power failure), which HJ 212-2017 folds into D (fault).
LEGACY_FLAGS = {"P": "D"}


class Value(NamedTuple):
    """One storable value of an upload (a tuple: uploads carry thousands per second)."""

    parameter_code: str  # HJ 212-2017 code, with a statistic suffix for non-primary values
    value: float
    data_flag: str


@dataclass(slots=True)
class Upload:
    """The values of one data upload, and what in it could not be used."""

    interval: str
    data_time: dt.datetime
    values: list[Value] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unknown codes, bad numbers, flags


@lru_cache(maxsize=4096)  # loggers report the same minutes: most DataTimes repeat
def parse_data_time(text: str) -> dt.datetime:
    """DataTime as YYYYMMDDhhmmss (some loggers add one to three digits of the second,
    which are dropped), read as Beijing time and returned in UTC.

    UTC, because every timestamp the store and the pipeline handle is in UTC, with the one
    ``datetime.UTC`` object as its time zone: Python compares two aware datetimes field by
    field only when they share the time zone object, and otherwise converts both to UTC
    first. A batch from several uploads compares and hashes its timestamps many times
    (grouping, look-ups by time); with a time zone per unpickled upload that took
    1.8 µs per value in one of those steps alone."""
    if not 14 <= len(text) <= 17 or not text.isdigit():
        raise PacketError("bad_datatime", f"DataTime {text!r} is not YYYYMMDDhhmmss")
    try:
        local = dt.datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            tzinfo=CST,
        )
    except ValueError as error:
        raise PacketError("bad_datatime", f"DataTime {text!r} is not a valid time") from error
    return local.astimezone(dt.UTC)


def upload_values(cn: str, cp: CpData) -> Upload:
    """The storable values of a data upload's CP; raises PacketError if it has none."""
    interval = DATA_COMMANDS.get(cn)
    if interval is None:
        raise PacketError("not_data", f"CN {cn} is not a data upload")
    if "DataTime" not in cp.fields:
        raise PacketError("no_datatime", "data upload without DataTime")
    upload = Upload(interval=interval, data_time=parse_data_time(cp.fields["DataTime"]))
    primary = PRIMARY_SUFFIX[interval]
    suffixes = MEASURED_SUFFIXES[interval]
    for raw_code, fields in cp.codes.items():
        measured = [suffix for suffix in suffixes if suffix in fields]
        if not measured:
            continue  # device status (SB1-RS), running time (-RT), info (-Info)
        code = canonical_parameter_code(raw_code)
        if code is None:
            upload.problems.append(f"unknown parameter code {raw_code!r}")
            continue
        flag = fields.get("Flag", "N")
        if flag not in VALID_FLAGS:  # rare: spaces, lower case, empty or a 2005 flag
            flag = fields["Flag"].strip().upper() or "N"
            flag = LEGACY_FLAGS.get(flag, flag)
            if flag not in VALID_FLAGS:
                upload.problems.append(f"{raw_code}: unknown data flag {fields['Flag']!r}")
                continue
        for suffix in measured:
            text = fields[suffix]
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                upload.problems.append(f"{raw_code}-{suffix}: {text!r} is not a number")
                continue
            name = code if suffix == primary else f"{code}-{suffix}"
            upload.values.append(Value(name, number, flag))
    return upload
