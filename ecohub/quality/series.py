"""The data model the quality checks and every door share: one observation — a value of
one parameter at one monitoring point at one time, with its HJ 212 data flag (HJ
212-2017 table 7) and the platform's quality flags (:mod:`ecohub.quality.flags`).

Kept apart from the checks (SaQC's core idea: data and flags on one side, the families
of checks on the other) and from the store that writes it.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple


class Observation(NamedTuple):
    """One value of one parameter at one monitoring point, as written to the store."""

    point_id: int
    parameter_code: str
    interval: str  # rt, min, hour or day (HJ 212 CN 2011, 2051, 2061, 2031)
    ts: dt.datetime  # aware, UTC
    value: float | None
    data_flag: str = "N"
    quality_flag: int = 0
    source: str = "api"
