"""Quality flags as data: one bit per check, stored in ``observations.quality_flag``.

A value is valid for statistics (rollups, AQI, rates) when none of its invalidating bits
is set; informational bits are shown but do not exclude the value.
"""

from __future__ import annotations

import enum


class QualityFlag(enum.IntFlag):
    """The checks of :mod:`ecohub.quality.checks`, one bit each (names are stored in docs,
    exports and the API as these lower-case names)."""

    DEVICE_FLAG = 1  # HJ 212 data flag F, M, S, D, C or B: the instrument was not measuring
    RANGE = 2  # outside the parameter's physical/valid range
    NEGATIVE = 4  # negative where the parameter cannot be negative
    SPIKE = 8  # a jump up and back down (or down and up) beyond the rate-of-change limit
    FLAT_LINE = 16  # the same value for longer than the parameter's flat-line duration
    ZERO_FLOW = 32  # concentrations reported while the flow is zero or missing
    FUTURE_TIME = 64  # timestamp later than now plus the clock tolerance
    PAST_TIME = 128  # timestamp before the earliest plausible date (a reset device clock)
    CONFLICTING_DUPLICATE = 256  # the same key arrived again with a different value


# Bits that only inform: the value stays valid (a corrected re-send is usually right).
INFORMATIONAL = QualityFlag.CONFLICTING_DUPLICATE
INVALIDATING = int(~INFORMATIONAL & sum(QualityFlag))

# HJ 212-2017 data flags under which a value is not a measurement of the sample
# (停运, 维护, 手工设定值, 故障, 校准, 通讯异常); N (normal) and T (over the upper limit) are.
INVALID_DATA_FLAGS = frozenset("FMSDCB")


def is_valid(quality_flag: int) -> bool:
    """Whether a value with this flag set counts in statistics."""
    return not quality_flag & INVALIDATING


def describe(quality_flag: int) -> list[str]:
    """The names of the checks that flagged a value, e.g. ``['range', 'spike']``."""
    return [flag.name.lower() for flag in QualityFlag if flag.name and quality_flag & flag.value]
